#!/usr/bin/env python3
"""Compile the interpreter for a GPU architecture without a GPU, and count what is in its machine code.

    python3 bench/sass.py [--arch 90] [--nvrtc PATH/libnvrtc.so] [--nvdisasm PATH] [--out FILE]

Uses the NVRTC library given (or CuPy's) with the flags the CUDA backend uses, then nvdisasm (or
cuobjdump) for the disassembly: prints registers and spills, and the instruction mix (BRX is an indexed
jump: a switch compiled as a jump table; many ISETP/BRA pairs mean a compare tree).
"""

from __future__ import annotations

import argparse
import ctypes
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wasmgpu.vm.build import NVRTC_FLAGS, VM_DIR, step_units, vm_source  # noqa: E402
from wasmgpu.vm.cuda_units import register_cap  # noqa: E402


def compile_cubin(lib: ctypes.CDLL, source: str, options: list[str]) -> bytes:
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"vm.cu", 0, None, None):
        raise SystemExit("nvrtcCreateProgram failed")
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    if rc:
        raise SystemExit(f"compile failed:\n{log.value.decode()}")
    lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetCUBIN(prog, buf)
    return buf.raw


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="90")
    p.add_argument("--nvrtc", default="", help="path of libnvrtc.so (default: CuPy's)")
    p.add_argument("--nvdisasm", default=shutil.which("nvdisasm") or "")
    p.add_argument("--out", default="", help="write the disassembly here")
    p.add_argument("--define", "-D", action="append", default=[], help="a macro for a variant (WG_MIN_BLOCKS=10)")
    kernel = p.add_mutually_exclusive_group()
    kernel.add_argument("--wasm", default="", help="the compiled tier's kernel for this module instead")
    kernel.add_argument("--compiled", default="", help="the compiled tier's C from this file instead (a variant)")
    args = p.parse_args()
    lib = ctypes.CDLL(args.nvrtc or "libnvrtc.so")
    options = [*NVRTC_FLAGS, *(f"-D{d}" for d in args.define), f"--gpu-architecture=sm_{args.arch}",
               "--ptxas-options=-v"]
    compiled = Path(args.compiled).read_text() if args.compiled else ""
    if args.wasm:  # the compiled tier's kernel for this module (compiler/to_c.py)
        from wasmgpu.runtime.backends import CpuBackend
        from wasmgpu.runtime.engine import Engine

        batch = Engine(CpuBackend(interleaved=True)).load(Path(args.wasm).read_bytes()).instantiate(1, tier="interp")
        compiled = batch.store.compiled_source()
    # A compiled store's step function is its last unit, compiled apart as in the build (relocatable, under
    # vm_kernel's register cap, which WG_MIN_BLOCKS sets).
    source = step_units(compiled)[-1] if compiled else vm_source("cuda.cu")
    cap = register_cap((VM_DIR / "cuda.cu").read_text(), args.define)
    cubin = compile_cubin(lib, source, [*options, *(["-rdc=true", f"--maxrregcount={cap}"] if compiled else [])])
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        res = subprocess.run([args.nvdisasm, "-c", "-hex", f.name] if args.nvdisasm.endswith("nvdisasm")
                             else [args.nvdisasm, "--dump-sass", f.name], capture_output=True, text=True)
        info = subprocess.run([args.nvdisasm.replace("nvdisasm", "cuobjdump"), "--dump-resource-usage", f.name],
                              capture_output=True, text=True).stdout
    sass = res.stdout
    if args.out:
        Path(args.out).write_text(sass)
    print(" ".join(line.strip() for line in info.splitlines() if "REG" in line or "STACK" in line))
    ops = Counter(m.group(1).split(".")[0] for m in
                  re.finditer(r"^\s+(?:/\*[0-9a-f]+\*/\s+)?(?:@!?U?P[T0-9]\s+)?([A-Z][A-Z0-9_.]+)\b", sass, re.M))
    total = sum(ops.values())
    print(f"{total} instructions; BRX {ops['BRX']}, ISETP {ops['ISETP']}, BRA {ops['BRA']}, "
          f"LDL {ops['LDL']}, STL {ops['STL']}")
    print("most common:", ", ".join(f"{o} {c}" for o, c in ops.most_common(15)))


if __name__ == "__main__":
    main()
