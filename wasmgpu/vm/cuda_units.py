"""A compiled store built for the GPU as separate units: NVRTC compiles each group of pieces and the step
function apart (relocatable device code, `-rdc=true`), all at once, and a linker joins their cubins with the
runtime's, compiled once (vm/build.py).

One NVRTC program holding every piece took minutes (its optimizer works on the whole program at once);
units of a few hundred KB of C each take seconds, and the slowest unit bounds the build
(bench/NOTES.md). The libraries are called through ctypes, which lets go of the GIL for each call, but
NVRTC serializes part of its work across a process's threads (16 threads compiled resvg's units 8x as fast
as one): a store of more than a few units compiles each in a process of its own (`python -m
wasmgpu.vm.cuda_units`, with this process's NVRTC). Linking uses nvJitLink where it is found, else the
driver's linker (in a context of the first GPU, taken for the link if the thread has none).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .build import BuildError

# Registers per thread of vm_kernel: its __launch_bounds__ (128 threads, WG_MIN_BLOCKS blocks of them per
# multiprocessor) cap them in a whole program; a unit compiled apart must be told, or the link refuses it.
REGISTER_FILE = 65536
BLOCK_THREADS = 128


def min_blocks(cuda_source: str, defines: Sequence[str]) -> int:
    """The blocks of vm_kernel that each multiprocessor holds at least (its launch bounds' WG_MIN_BLOCKS;
    a define WG_MIN_BLOCKS=k overrides the source's)."""
    blocks = next((int(d.split("=", 1)[1]) for d in defines if d.startswith("WG_MIN_BLOCKS=")), None)
    if blocks is None:
        m = re.search(r"#define WG_MIN_BLOCKS (\d+)", cuda_source)
        blocks = int(m.group(1)) if m else 1
    return blocks


def register_cap(cuda_source: str, defines: Sequence[str]) -> int:
    """The register cap of vm_kernel's launch bounds, for `defines`."""
    return REGISTER_FILE // (BLOCK_THREADS * min_blocks(cuda_source, defines)) & ~7


def _loaded(fragment: str) -> str | None:
    """The path of a shared library this process has loaded whose name holds `fragment`."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if fragment in os.path.basename(path):
                    return path
    except OSError:
        pass
    return None


def library(stem: str) -> ctypes.CDLL | None:
    """CUDA's library `lib<stem>.so`: the one this process loaded already (CuPy's NVRTC, so that the cache
    key's NVRTC version is the compiler's), else one from NVIDIA's wheels (`nvidia-cuda-nvrtc`,
    `nvidia-nvjitlink`: no GPU needed) or the loader's path, else None."""
    names = [p for p in [_loaded(f"lib{stem}.so")] if p]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        names += sorted(str(p) for p in Path(root).glob(f"*/lib/lib{stem}.so*"))
    found = ctypes.util.find_library(stem)
    if found:
        names.append(found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _read(size_of: Callable[..., int], read: Callable[..., int], handle: ctypes.c_void_p) -> bytes:
    """What a pair of NVRTC or nvJitLink calls gives: its size from the first, its bytes from the second."""
    size = ctypes.c_size_t()
    size_of(handle, ctypes.byref(size))
    out = ctypes.create_string_buffer(size.value)
    read(handle, out)
    return out.raw


def _text(size_of: Callable[..., int], read: Callable[..., int], handle: ctypes.c_void_p) -> str:
    """A log (NUL-terminated), its last 4,000 characters."""
    return _read(size_of, read, handle).rstrip(b"\0").decode(errors="replace")[-4000:]


def _compile(lib: ctypes.CDLL, source: str, options: Sequence[str], name: str) -> bytes:
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None) != 0:
        raise BuildError(f"NVRTC could not take unit {name}")
    try:
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        if lib.nvrtcCompileProgram(prog, len(options), opts) != 0:
            log = _text(lib.nvrtcGetProgramLogSize, lib.nvrtcGetProgramLog, prog)
            raise BuildError(f"compiling {name} failed:\n{log}")
        return _read(lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN, prog)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _link_nvjitlink(lib: ctypes.CDLL, cubins: Sequence[bytes], arch: int) -> bytes:
    handle = ctypes.c_void_p()
    opts = (ctypes.c_char_p * 1)(f"-arch=sm_{arch}".encode())
    if lib.nvJitLinkCreate(ctypes.byref(handle), 1, opts) != 0:
        raise BuildError("nvJitLink could not start a link")
    try:
        for k, cubin in enumerate(cubins):
            if lib.nvJitLinkAddData(handle, 1, cubin, ctypes.c_size_t(len(cubin)), f"unit{k}".encode()) != 0:
                raise BuildError(f"nvJitLink refused unit {k}")
        if lib.nvJitLinkComplete(handle) != 0:
            log = _text(lib.nvJitLinkGetErrorLogSize, lib.nvJitLinkGetErrorLog, handle)
            raise BuildError(f"linking the units failed:\n{log}")
        return _read(lib.nvJitLinkGetLinkedCubinSize, lib.nvJitLinkGetLinkedCubin, handle)
    finally:
        lib.nvJitLinkDestroy(ctypes.byref(handle))


# cuLinkCreate's option CU_JIT_TARGET (CUjit_option 9), whose value is the compute capability (90 for sm_90).
_CU_JIT_TARGET = 9


def _link_driver(cubins: Sequence[bytes], arch: int) -> bytes:
    cuda = ctypes.CDLL("libcuda.so.1")
    # The driver's linker needs a current context, which a build in a background process has not made: one of
    # the first GPU's is taken for the link and let go after. The target is `arch`, not that GPU's.
    current, made = ctypes.c_void_p(), None
    if cuda.cuInit(0) != 0 or cuda.cuCtxGetCurrent(ctypes.byref(current)) != 0:
        raise BuildError("the CUDA driver could not start, to link the units")
    if not current.value:
        device, context = ctypes.c_int(), ctypes.c_void_p()
        if (cuda.cuDeviceGet(ctypes.byref(device), 0) != 0
                or cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device) != 0):
            raise BuildError("the CUDA driver could not make a context, to link the units")
        made = device
        cuda.cuCtxSetCurrent(context)
    state = ctypes.c_void_p()
    try:
        options = (ctypes.c_int * 1)(_CU_JIT_TARGET)
        values = (ctypes.c_void_p * 1)(arch)
        if cuda.cuLinkCreate_v2(1, options, values, ctypes.byref(state)) != 0:
            raise BuildError("the CUDA driver could not start a link")
        try:
            for k, cubin in enumerate(cubins):
                # CU_JIT_INPUT_CUBIN is 0
                if cuda.cuLinkAddData_v2(state, 0, cubin, ctypes.c_size_t(len(cubin)), f"unit{k}".encode(), 0, None,
                                         None) != 0:
                    raise BuildError(f"the CUDA driver's linker refused unit {k}")
            out, size = ctypes.c_void_p(), ctypes.c_size_t()
            if cuda.cuLinkComplete(state, ctypes.byref(out), ctypes.byref(size)) != 0:
                raise BuildError("the CUDA driver could not link the units")
            return ctypes.string_at(out, size.value)  # the driver's buffer lives until cuLinkDestroy
        finally:
            cuda.cuLinkDestroy(state)
    finally:
        if made is not None:
            cuda.cuCtxSetCurrent(None)
            release = getattr(cuda, "cuDevicePrimaryCtxRelease_v2", None) or cuda.cuDevicePrimaryCtxRelease
            release(made)


def _nvrtc() -> ctypes.CDLL:
    lib = library("nvrtc")
    if lib is None:
        raise BuildError("NVRTC's library was not found (CuPy's, or pip install nvidia-cuda-nvrtc)")
    return lib


def compile_unit(source: str, options: Sequence[str], name: str = "unit.cu") -> bytes:
    """One NVRTC program's cubin (BuildError with NVRTC's log where it fails)."""
    return _compile(_nvrtc(), source, options, name)


# Stores of more units than this compile each in a process of its own (a process starts in about 0.3 s).
APART_UNITS = 4


def _compile_apart(lib: ctypes.CDLL, source: str, options: Sequence[str], name: str) -> bytes:
    """_compile in a child process (this module run as a program), with the NVRTC library `lib` is."""
    try:
        # From the package's root: `-m` finds this copy there first (the working directory may hold another).
        proc = subprocess.run([sys.executable, "-m", "wasmgpu.vm.cuda_units"], capture_output=True,
                              cwd=Path(__file__).resolve().parents[2],
                              input=pickle.dumps((lib._name, source, list(options), name)))
    except OSError as e:
        raise BuildError(f"compiling {name}: no process to compile it in ({e.strerror})") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace")[-4000:] or f"its process ended with {proc.returncode}"
        raise BuildError(detail if detail.startswith("compiling ") else f"compiling {name} failed:\n{detail}")
    if not proc.stdout.startswith(b"\x7fELF"):
        raise BuildError(f"compiling {name}: its process gave no cubin ({proc.stdout[:80]!r})")
    return proc.stdout


def build_units(units: Sequence[str], options: Sequence[str], arch: int, linked: Sequence[bytes] = ()) -> bytes:
    """One cubin from `units` (CUDA C sources), each compiled with `options` plus -rdc, in parallel, and the
    relocatable cubins `linked`."""
    lib = _nvrtc()
    opts = [*options, "-rdc=true"]
    workers = max(1, min(len(units), os.cpu_count() or 1, 16))
    compile_one = _compile_apart if len(units) > APART_UNITS else _compile
    with ThreadPoolExecutor(max_workers=workers) as pool:
        cubins = list(pool.map(lambda k: compile_one(lib, units[k], opts, f"unit{k}.cu"), range(len(units))))
    cubins += linked
    jit = library("nvJitLink")
    if jit is not None and hasattr(jit, "nvJitLinkCreate"):  # some releases export versioned names only
        return _link_nvjitlink(jit, cubins, arch)
    return _link_driver(cubins, arch)


__all__ = ["build_units", "compile_unit", "library", "register_cap"]

if __name__ == "__main__":  # _compile_apart's child: the unit on stdin, its cubin to stdout
    _path, _source, _options, _name = pickle.loads(sys.stdin.buffer.read())
    try:
        sys.stdout.buffer.write(_compile(ctypes.CDLL(_path), _source, _options, _name))
    except BuildError as _e:
        sys.stderr.write(str(_e))
        sys.exit(1)
