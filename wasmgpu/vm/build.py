"""Compiling the one interpreter source: the host C++ compiler for the CPU, NVRTC for CUDA.

Artifacts are cached by a hash of the sources and the flags. A cache entry is two files: the artifact,
named by its own content hash (`vm-<key>-<sha>.so`), and a record (`vm-<key>.so.json`) with its name,
size and SHA-256. Both are written atomically (a temporary file in the cache directory, fsync, rename)
and the artifact is checked against the record before it is loaded: a truncated library would kill
the process with SIGBUS at dlopen, and any other damage would fail to load forever. An entry that
does not check out is removed and rebuilt.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compiler.to_c import PART_BREAK, TIER_QUERY
from ..compiler.vm_abi import GPU_NATIVE_DEPTH
from ..errors import WasmGpuError

VM_DIR = Path(__file__).resolve().parent
HOST_FLAGS = ["-O3", "-std=c++17", "-fopenmp", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"]
# No fused multiply-add contraction, IEEE division and square root: results must be bit-exact.
NVRTC_FLAGS = ("--std=c++17", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false")


class BuildError(WasmGpuError):
    """The interpreter failed to compile."""


@dataclass(frozen=True)
class StoreCode:
    """A store's code as C (compiler/to_c.py), made only when it has to be built: `key` names it (one key,
    one text), so that a cached build is found without generating seconds of C for a large module."""

    key: str
    make: Callable[[], str]
    pieces: bool = False  # whether the C holds each function as a piece of its own (params.in_pieces)
    interpreted: frozenset[int] = frozenset()  # functions without a piece (params.left_to_interpreter)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.environ.get("WASMGPU_CACHE") or os.path.join(base, "wasmgpu")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


# vm.h's own headers, each after the one including it
INCLUDED = ("isa.h", "simd.h", "wasi_fast.h", "wasi_files.h", "processes.h")


def _headers() -> str:
    vm = (VM_DIR / "vm.h").read_text()
    for name in INCLUDED:
        vm = vm.replace(f'#include "{name}"', (VM_DIR / name).read_text())
    return vm


def vm_source(entry: str) -> str:
    """The interpreter with its headers inlined (NVRTC gets one string): the whole program where no store's
    code is compiled, and the runtime a compiled store's code links to (runtime_unit)."""
    return _headers() + "\n" + (VM_DIR / entry).read_text().replace('#include "vm.h"', "")


def host_units(compiled: str) -> list[str]:
    """The translation units of the CPU build of a store's code (step_units, linked to the runtime built
    once). Without code (the interpreter): two units."""
    if not compiled:  # the interpreter, and apart its SIMD and atomic ops (vm.h outside_exec), built side by side
        return ["#define WG_OUTSIDE_APART 1\n" + vm_source("cpu.cpp"), "#define WG_OUTSIDE_UNIT 1\n" + _headers()]
    return step_units(compiled, "cpu.cpp")


# The GPU's units are relocatable device code (WG_RDC: the headers' helpers static, one copy per unit).
UNIT_PREFIX = {"cuda.cu": "#define WG_RDC 1\n", "cpu.cpp": ""}


def _runtime_prefix(entry: str, hybrid: bool = False) -> str:
    return (f"{UNIT_PREFIX[entry]}#define VM_STEP vm_step_compiled\n#define WG_STEP_APART 1\n"
            + ("#define WG_HYBRID 1\n" if hybrid else ""))


def _step_prefix(entry: str) -> str:
    return f"{UNIT_PREFIX[entry]}#define VM_STEP vm_step_compiled\n#define WG_PIECES_UNIT 1\n"


def unit_recipe(entry: str) -> str:
    """What a compiled store's units are made of besides the sources (the cache keys' part for it)."""
    return _runtime_prefix(entry) + _step_prefix(entry) + PART_BREAK


def runtime_unit(entry: str = "cuda.cu", hybrid: bool = False) -> str:
    """The runtime without a store's code (on the GPU vm_kernel, on the CPU vm_run; vm_launch, the imports
    the device serves), built once and linked to each store's step_units (WG_STEP_APART); `hybrid` with the
    interpreter, for the stores whose code is compiled in part (StoreCode.interpreted)."""
    return _runtime_prefix(entry, hybrid) + vm_source(entry)


def is_hybrid(compiled: str | StoreCode) -> bool:
    """Whether a store's code leaves functions to the interpreter (to_c.compile_store's `interpreted`)."""
    return bool(compiled.interpreted) if isinstance(compiled, StoreCode) else TIER_QUERY in compiled


def step_units(compiled: str, entry: str = "cuda.cu") -> list[str]:
    """A store's code as units to link to runtime_unit(entry): each group of pieces, then the step function
    with the tables (the last unit), or the whole code where it was not compiled in pieces."""
    headers = _step_prefix(entry) + _headers()
    parts = compiled.split(PART_BREAK)
    if len(parts) < 3:
        return [f"{headers}\n{compiled}"]
    common, groups, step = parts[0], parts[1:-1], parts[-1]
    return [f"{headers}\n{common}\n{g}" for g in [*groups, step]]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _atomic_write(path: Path, data: bytes) -> None:
    """`path` holds `data` in full or is left as it was: concurrent builders and crashes never leave a
    partial file under the final name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would differ from a plain write's mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _discard(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass


def _record_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".json")


def _read_record(record: Path) -> tuple[Path, int, str]:
    """The artifact a record names (a file beside it), its size and SHA-256; OSError, ValueError, KeyError
    or TypeError for a record that is missing or damaged."""
    meta = json.loads(record.read_bytes())
    name, size, digest = str(meta["file"]), int(meta["size"]), str(meta["sha256"])
    if Path(name).name != name:
        raise ValueError(f"{record} names a file elsewhere")
    return record.parent / name, size, digest


def verified_entry(entry: Path) -> Path | None:
    """The artifact of cache entry `entry` (e.g. cache_dir()/"vm-<key>.so") when its record is intact and
    the file matches the record's size and SHA-256; else None, with whatever was there removed."""
    record = _record_path(entry)
    try:
        path, size, digest = _read_record(record)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        _discard(record)
        return None
    if not path.name.startswith(entry.stem):  # the record names a file of this entry only
        _discard(record)
        return None
    try:
        data = path.read_bytes()
    except OSError:
        _discard(record)
        return None
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        _discard(record, path)
        return None
    try:
        os.utime(record)  # used now: the cap removes the entries used least recently first
    except OSError:
        pass
    return path


def store_entry(entry: Path, data: bytes) -> Path:
    """Write `data` as cache entry `entry`: the artifact first, then the record that vouches for it; then
    the least recently used entries go until the cache is within its cap."""
    digest = hashlib.sha256(data).hexdigest()
    path = entry.with_name(f"{entry.stem}-{digest[:16]}{entry.suffix}")
    _atomic_write(path, data)
    _atomic_write(_record_path(entry), json.dumps({"file": path.name, "size": len(data), "sha256": digest}).encode())
    trim_cache(entry.parent, cache_cap(), keep=path)
    return path


def cache_cap() -> int:
    """The most bytes the cache keeps: WASMGPU_CACHE_MAX, else 4 GiB (a compiled store of a large module
    is tens of MB; the interpreter builds a few MB each)."""
    text = os.environ.get("WASMGPU_CACHE_MAX", "")
    try:
        return int(text) if text else 4 << 30
    except ValueError:
        raise WasmGpuError(f"WASMGPU_CACHE_MAX must be a number of bytes, not {text!r}") from None


def _files(root: Path) -> list[os.DirEntry[str]]:
    with os.scandir(root) as it:
        return [e for e in it if e.is_file(follow_symlinks=False)]


def _stats(root: Path) -> list[tuple[os.DirEntry[str], os.stat_result]]:
    """The files in `root` with their stat, leaving out those gone meanwhile: other processes building into
    the same cache rename their temporary files and remove entries at any time."""
    out = []
    for e in _files(root):
        try:
            out.append((e, e.stat(follow_symlinks=False)))
        except OSError:
            pass
    return out


def trim_cache(root: Path, cap: int, keep: Path | None = None) -> None:
    """Remove the artifacts used least recently (a record's time is set when its artifact is loaded), and
    their records, until the files in `root` take at most `cap` bytes; `keep` stays whatever its age."""
    files = _stats(root)
    total = sum(info.st_size for _, info in files)
    if total <= cap:
        return
    records = [e for e, _ in sorted((f for f in files if f[0].name.endswith(".json")), key=lambda f: f[1].st_mtime)]
    for record in records:
        if total <= cap:
            break
        try:
            artifact: Path | None = _read_record(Path(record.path))[0]
        except (OSError, ValueError, KeyError, TypeError):
            artifact = None
        if artifact == keep:
            continue
        for path in (Path(record.path), artifact):
            if path is not None:
                try:
                    size = path.stat().st_size
                    path.unlink()
                    total -= size
                except OSError:
                    pass


def clear_cache() -> tuple[int, int]:
    """Remove every file of the cache: how many, and their bytes."""
    count = size = 0
    root = cache_dir()
    for e in _files(root):
        try:
            n = e.stat(follow_symlinks=False).st_size
            os.unlink(e.path)
        except OSError:
            continue
        count, size = count + 1, size + n
    return count, size


@dataclass
class BuildEvent:
    """One artifact asked of the cache: its file name, whether it was there, the seconds it took (or that
    its build went to the background: vm/background.py)."""

    name: str
    hit: bool
    seconds: float
    background: bool = False
    took_over: bool = False  # a background build that this run moved to, `seconds` after it started
    meanwhile: str = "this run interprets until it is ready"  # what a run does while its background build goes

    def describe(self) -> str:
        if self.took_over:
            return f"the compiled code took over from the interpreter: {self.name} ({self.seconds:.2f} s in)"
        if self.background:
            return f"building in the background: {self.name} ({self.meanwhile})"
        return f"{'cache hit' if self.hit else 'built'}: {self.name} ({self.seconds:.2f} s)"


# What this process asked of the compile cache, in order (gpu-run -v reports it).
BUILD_EVENTS: list[BuildEvent] = []


def cached(entry: Path, build: Callable[[], bytes]) -> Path:
    """The verified artifact of `entry`, built by `build` (and stored) when missing or damaged: by one
    process at a time, the others waiting for it (a batch's worker processes all start by asking for the
    same interpreter or compiled store, which each would otherwise build at once)."""
    start = time.perf_counter()
    path = verified_entry(entry)
    hit = path is not None
    if path is None:
        with _building(entry):
            path = verified_entry(entry)  # built by another process while this one waited
            hit = path is not None
            if path is None:
                path = store_entry(entry, build())
    BUILD_EVENTS.append(BuildEvent(entry.name, hit, time.perf_counter() - start))
    return path


@contextmanager
def _building(entry: Path) -> Iterator[None]:
    """Holding the lock on building cache entry `entry`: an empty file beside it, removed by its holder when
    done (a process that comes later finds the entry itself; one that waited looks again). The lock goes
    with the process however it ends. Where no lock can be had, each process builds its own, as before."""
    lock = entry.with_name(f".lock-{entry.name}")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


def host_library(source: str | list[str] | Callable[[], list[str]], flags: list[str], what: str, need: str,
                 prefix: str = "vm", key: str = "", cached_only: bool = False,
                 runtime: bool = False, hybrid: bool = False) -> ctypes.CDLL | None:
    """C++ `source` (or translation units, compiled in parallel and linked) built with the host compiler into
    a shared library (cached), and loaded. `what` names it in errors; `need` begins the sentence said when
    no compiler can be run ("the CPU backend needs"). Units given as a function are made only for a build,
    the cache entry then named by `key`. `cached_only`: None where the cache does not hold it. `runtime`:
    linked with runtime_unit("cpu.cpp", hybrid), compiled once with the same flags (a store's step_units)."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"
    given = [] if callable(source) else [source] if isinstance(source, str) else source
    runtime_source = runtime_unit("cpu.cpp", hybrid) if runtime else ""
    entry = cache_dir() / f"{prefix}-{_digest(*(given or [key]), runtime_source, compiler, *flags)}.so"

    def run(args: list[str]) -> None:
        try:
            proc = subprocess.run([compiler, *args], capture_output=True, text=True)
        except OSError as e:
            raise BuildError(f"{need} a C++ compiler with OpenMP (g++), and {compiler!r} could not be run "
                             f"({e.strerror}); install g++ or name one in CXX") from None
        if proc.returncode != 0:
            raise BuildError(f"compiling {what} failed:\n{proc.stderr[-4000:]}")

    compile_flags = [f for f in flags if f != "-shared"]

    def compile_object(text: str, name: str, tmp: str) -> Path:
        src = Path(tmp) / f"{name}.cpp"
        src.write_text(text)
        run([*compile_flags, "-c", str(src), "-o", str(src.with_suffix(".o"))])
        return src.with_suffix(".o")

    def runtime_object() -> Path:
        """runtime_unit("cpu.cpp") compiled with these flags, from the compile cache (built once)."""
        def build() -> bytes:
            with tempfile.TemporaryDirectory() as tmp:
                return compile_object(runtime_source, "runtime", tmp).read_bytes()

        return cached(cache_dir() / f"runtime-{_digest(runtime_source, compiler, *compile_flags)}.o", build)

    def build() -> bytes:
        units = source() if callable(source) else given
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "lib.so"
            if len(units) == 1 and not runtime:
                src = Path(tmp) / "unit0.cpp"
                src.write_text(units[0])
                run([*flags, str(src), "-o", str(out)])
                return out.read_bytes()
            # At most 16 compilers at once: each takes a few hundred MB.
            with ThreadPoolExecutor(max_workers=min(len(units), os.cpu_count() or 1, 16)) as pool:
                objs = list(pool.map(lambda k: compile_object(units[k], f"unit{k}", tmp), range(len(units))))
            if runtime:
                objs.append(runtime_object())
            run([*flags, *map(str, objs), "-o", str(out)])
            return out.read_bytes()

    if cached_only:
        path = verified_entry(entry)
        if path is None:
            return None
        BUILD_EVENTS.append(BuildEvent(entry.name, True, 0.0))
        return ctypes.CDLL(str(path))
    return ctypes.CDLL(str(cached(entry, build)))


def load_host_library(interleaved: bool = False, defines: tuple[str, ...] = (), compiled: str | StoreCode = "",
                      cached_only: bool = False) -> ctypes.CDLL | None:
    """The CPU interpreter; `interleaved` builds it with the GPU's memory layout (for tests), `defines`
    adds preprocessor symbols (e.g. WG_OPCOUNT for bench/opcount.py), `compiled` a store's code as C."""
    # libgomp's workers spin after each launch by default, on a core that the host's work between launches
    # (or a background build) needs; it reads this when it is first loaded.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # A compiled store's step is one large function: -O1 builds it in a fraction of -O3's time.
    host = ["-O1" if compiled and f == "-O3" else f for f in HOST_FLAGS]
    flags = [*host, *(["-DWG_INTERLEAVED"] if interleaved else []), *(f"-D{d}" for d in defines)]
    what = "the CPU " + ("compiled code" if compiled else "interpreter")
    if isinstance(compiled, StoreCode):
        # The key also names the interpreter's sources the units are made with.
        key = _digest(compiled.key, vm_source("cpu.cpp"), unit_recipe("cpu.cpp"))
        dll = host_library(lambda: host_units(compiled.make()), flags, what, "the CPU backend needs", key=key,
                           cached_only=cached_only, runtime=True, hybrid=is_hybrid(compiled))
    else:
        dll = host_library(host_units(compiled), flags, what, "the CPU backend needs", cached_only=cached_only,
                           runtime=bool(compiled), hybrid=is_hybrid(compiled))
    if dll is None:
        return None
    dll.vm_run.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
    dll.vm_run.restype = None
    return dll


# ptxas keeps each function's constants (jump tables, wide immediates) in one bank that a kernel's functions
# share, 64 KB: resvg's 2,500 pieces averaged about 45 B each, rs_hashmap's 147 about 21 B. A store of more
# pieces than this is built without them (--disable-optimizer-constants), or its link fails.
CONSTANT_PIECES = 512


def _runtime_cubin(options: list[str], version: str, hybrid: bool = False) -> bytes:
    """runtime_unit compiled (relocatable) with `options` by NVRTC `version`, from the compile cache."""
    from .cuda_units import compile_unit

    source = runtime_unit(hybrid=hybrid)
    entry = cache_dir() / f"runtime-{_digest(source, *options, version)}.cubin"
    return cached(entry, lambda: compile_unit(source, [*options, "-rdc=true"], "runtime.cu")).read_bytes()


@dataclass
class CudaKernel:
    """A built vm_kernel, and its parameter block in constant memory (cuda.cu wg_params), where each
    launch's block is copied first."""

    function: Any  # cupy.RawKernel
    params: Any  # cupy.cuda.MemoryPointer
    compiled: bool = False  # a store's code (else the interpreter)

    @property
    def num_regs(self) -> int:
        return int(self.function.num_regs)

    @property
    def local_size_bytes(self) -> int:
        return int(self.function.local_size_bytes)


def variant_defines() -> list[str]:
    """WASMGPU_NVRTC_DEFINES (say "WG_MIN_BLOCKS=10"): the CUDA build's symbols for engine variants (A/B runs)."""
    return os.environ.get("WASMGPU_NVRTC_DEFINES", "").split()


def load_cuda_kernel(compiled: str | StoreCode = "", defines: tuple[str, ...] = (), *, cached_only: bool = False,
                     arch: str | None = None, build_only: bool = False) -> CudaKernel | None:
    """Compile with NVRTC ourselves: CuPy's own compile path adds -ftz=true, which flushes subnormals.
    `defines`: preprocessor symbols (WG_CONTIGUOUS for the contiguous memory layout). With `cached_only`,
    None unless the build is in the compile cache; with `build_only`, built into the cache and not loaded
    (None), for a thread that builds for another (which gives `arch`, its device's compute capability)."""
    import cupy
    from cupy.cuda import nvrtc

    arch = arch or cupy.cuda.Device().compute_capability
    extra = (*defines, *variant_defines())
    # WASMGPU_NVRTC_OPTIONS (say "-lineinfo") adds options, for compute-sanitizer's source lines.
    options = (*NVRTC_FLAGS, *(f"-D{d}" for d in extra), *os.environ.get("WASMGPU_NVRTC_OPTIONS", "").split(),
               f"--gpu-architecture=sm_{arch}")
    from .cuda_units import build_units, register_cap

    # A compiled store's code is built alone, under vm_kernel's register cap, and linked to the runtime built
    # once (runtime_unit): the key names how the units are made too.
    source = vm_source("cuda.cu")
    cap = register_cap(source, extra)
    recipe = (unit_recipe("cuda.cu"), f"--maxrregcount={cap}") if compiled else ()
    key = _digest(compiled.key if isinstance(compiled, StoreCode) else compiled, source, *recipe)
    entry = cache_dir() / f"vm-{_digest(key, *options, str(nvrtc.getVersion()))}.cubin"

    def build() -> bytes:
        text = compiled.make() if isinstance(compiled, StoreCode) else compiled
        capped = [*options, f"--maxrregcount={cap}"]
        if text:
            runtime = _runtime_cubin(capped, str(nvrtc.getVersion()), is_hybrid(compiled))
            units = step_units(text)
            many = text.split(PART_BREAK, 1)[0].count("PIECE WgRet wgf_") > CONSTANT_PIECES
            return build_units(units, [*capped, *(["--ptxas-options=--disable-optimizer-constants"] if many else [])],
                               int(arch), linked=[runtime])
        prog = nvrtc.createProgram(source, "wasmgpu_vm.cu", [], [])
        try:
            nvrtc.compileProgram(prog, list(options))
        except nvrtc.NVRTCError as e:
            raise BuildError(f"compiling the CUDA interpreter failed: {e}\n{nvrtc.getProgramLog(prog)}") from e
        data = bytes(nvrtc.getCUBIN(prog))
        nvrtc.destroyProgram(prog)
        return data

    if cached_only and verified_entry(entry) is None:
        return None
    cubin = cached(entry, build)
    if build_only:
        return None
    if compiled:
        _stack_for(cubin.read_bytes(), extra)
    module = cupy.RawModule(path=str(cubin))
    return CudaKernel(module.get_function("vm_kernel"), module.get_global("wg_params"), bool(compiled))


CUDA_LIMIT_STACK_SIZE = 0  # cudaLimit's cudaLimitStackSize


def _stack_for(cubin: bytes, defines: Sequence[str]) -> None:
    """The GPU's per-thread stack made deep enough for a compiled store whose pieces call each other as C
    (WG_NATIVE_DEPTH of them, a define's value or GPU_NATIVE_DEPTH): the limit is the context's, raised
    only. Where the device cannot give that much, the store is not run compiled (BuildError)."""
    import cupy

    from .cubin import native_stack_bytes

    depth = GPU_NATIVE_DEPTH
    for d in defines:
        if d.startswith("WG_NATIVE_DEPTH="):
            depth = int(d.split("=", 1)[1])
    need = native_stack_bytes(cubin, depth)
    runtime = cupy.cuda.runtime
    if need > runtime.deviceGetLimit(CUDA_LIMIT_STACK_SIZE):
        try:
            runtime.deviceSetLimit(CUDA_LIMIT_STACK_SIZE, need)
        except runtime.CUDARuntimeError as e:
            raise BuildError(f"the GPU could not give a compiled store's calls {need} bytes of stack a thread: "
                             f"{e}") from e
