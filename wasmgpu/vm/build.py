"""Compiling the one interpreter source: the host C++ compiler for the CPU, NVRTC for CUDA.

Artifacts are cached by a hash of the sources and the flags.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WasmGpuError

VM_DIR = Path(__file__).resolve().parent
HOST_FLAGS = ["-O3", "-std=c++17", "-fopenmp", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"]
# No fused multiply-add contraction, IEEE division and square root: results must be bit-exact.
NVRTC_FLAGS = ("--std=c++17", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false")


class BuildError(WasmGpuError):
    """The interpreter failed to compile."""


def cache_dir() -> Path:
    root = os.environ.get("WASMGPU_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wasmgpu")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


INCLUDED = ("isa.h", "wasi_fast.h")  # vm.h's own headers


def vm_source(entry: str, compiled: str = "") -> str:
    """The interpreter with its headers inlined (NVRTC gets one string); `compiled` is a store's code as C
    (compiler/to_c.py), which then runs instead of the interpreter's loop."""
    vm = (VM_DIR / "vm.h").read_text()
    for name in INCLUDED:
        vm = vm.replace(f'#include "{name}"', (VM_DIR / name).read_text())
    if compiled:
        vm = "#define VM_STEP vm_step_compiled\n" + vm + "\n" + compiled
    return vm + "\n" + (VM_DIR / entry).read_text().replace('#include "vm.h"', "")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def load_host_library(interleaved: bool = False, defines: tuple[str, ...] = (), compiled: str = "") -> ctypes.CDLL:
    """The CPU interpreter; `interleaved` builds it with the GPU's memory layout (for tests), `defines`
    adds preprocessor symbols (e.g. WG_OPCOUNT for bench/opcount.py), `compiled` a store's code as C."""
    source = vm_source("cpu.cpp", compiled)
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"
    # A compiled store's step is one large function: -O1 builds it in a fraction of -O3's time.
    host = ["-O1" if compiled and f == "-O3" else f for f in HOST_FLAGS]
    flags = [*host, *(["-DWG_INTERLEAVED"] if interleaved else []), *(f"-D{d}" for d in defines)]
    lib = cache_dir() / f"vm-{_digest(source, compiler, *flags)}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "vm.cpp"
            src.write_text(source)
            out = Path(tmp) / "vm.so"
            proc = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True, text=True)
            if proc.returncode != 0:
                what = "compiled code" if compiled else "interpreter"
                raise BuildError(f"compiling the CPU {what} failed:\n{proc.stderr[-4000:]}")
            # Atomic rename: concurrent test workers may build the same library.
            tmp_lib = lib.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(out, tmp_lib)
            os.replace(tmp_lib, lib)
    dll = ctypes.CDLL(str(lib))
    dll.vm_run.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
    dll.vm_run.restype = None
    return dll


@dataclass
class CudaKernel:
    """A built vm_kernel, and its parameter block in constant memory (cuda.cu wg_params), where each
    launch's block is copied first."""

    function: Any  # cupy.RawKernel
    params: Any  # cupy.cuda.MemoryPointer

    @property
    def num_regs(self) -> int:
        return int(self.function.num_regs)

    @property
    def local_size_bytes(self) -> int:
        return int(self.function.local_size_bytes)


def load_cuda_kernel(compiled: str = "", defines: tuple[str, ...] = ()) -> CudaKernel:
    """Compile with NVRTC ourselves: CuPy's own compile path adds -ftz=true, which flushes subnormals.
    `defines`: preprocessor symbols (WG_CONTIGUOUS for the contiguous memory layout)."""
    import cupy
    from cupy.cuda import nvrtc

    arch = cupy.cuda.Device().compute_capability
    # WASMGPU_NVRTC_DEFINES (say "WG_MIN_BLOCKS=10") builds engine variants for A/B runs.
    extra = (*defines, *os.environ.get("WASMGPU_NVRTC_DEFINES", "").split())
    options = (*NVRTC_FLAGS, *(f"-D{d}" for d in extra), f"--gpu-architecture=sm_{arch}")
    source = vm_source("cuda.cu", compiled)
    cubin = cache_dir() / f"vm-{_digest(source, *options, str(nvrtc.getVersion()))}.cubin"
    if not cubin.exists():
        prog = nvrtc.createProgram(source, "wasmgpu_vm.cu", [], [])
        try:
            nvrtc.compileProgram(prog, list(options))
        except nvrtc.NVRTCError as e:
            raise BuildError(f"compiling the CUDA interpreter failed: {e}\n{nvrtc.getProgramLog(prog)}") from e
        data = nvrtc.getCUBIN(prog)
        nvrtc.destroyProgram(prog)
        tmp = cubin.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cubin)
    module = cupy.RawModule(path=str(cubin))
    return CudaKernel(module.get_function("vm_kernel"), module.get_global("wg_params"))
