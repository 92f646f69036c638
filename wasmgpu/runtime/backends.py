"""The two places the interpreter runs: host cores (ctypes) and an NVIDIA GPU (CuPy)."""

from __future__ import annotations

import mmap
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ResourceLimitError, WasmGpuError
from .cuda_driver import (
    SHARED_DEVICE_VAR,
    context_warmed,
    cuda_device_count,
    cuda_total_memory,
    sleep_while_waiting,
)
from .tuning import WindowTuner

# How often the host looks at the mailbox while a launch runs (s).
MAIL_POLL_S = 50e-6

if TYPE_CHECKING:
    from ..vm.build import StoreCode
    from .mailbox import Serving as Serve


class Backend:
    name = "abstract"
    xp: Any = np
    # Slot and frame layout: instance-minor on the GPU so converged lanes coalesce.
    instance_minor = False
    # Linear memory layout (vm.h): 4-byte words interleaved across instances, each instance's bytes together
    # ("contiguous"), or "auto": stores start contiguous and a long run tries the other (tuning.LayoutTrial).
    memory_layout = "contiguous"

    @property
    def start_layout(self) -> str:
        """The layout stores start in."""
        return "contiguous" if self.memory_layout == "auto" else self.memory_layout

    @property
    def layout_trials(self) -> bool:
        """Whether stores may move to the other layout while they run."""
        return self.memory_layout == "auto"

    @staticmethod
    def defines_for(layout: str) -> tuple[str, ...]:
        """The VM build's preprocessor symbols for a layout (vm.h)."""
        return ("WG_CONTIGUOUS",) if layout == "contiguous" else ()

    @property
    def defines(self) -> tuple[str, ...]:
        return self.defines_for(self.start_layout)

    def interpreter(self, layout: str, cached_only: bool = False) -> Any:
        """The interpreter built for `layout` (what `run` takes as `code`), loaded once; with `cached_only`,
        None unless it is built already."""
        loaded = self.__dict__.setdefault("_interpreters", {})
        if layout not in loaded:
            built = self._load_interpreter(layout, cached_only)
            if built is None:
                return None
            loaded[layout] = built
        return loaded[layout]

    def _load_interpreter(self, layout: str, cached_only: bool) -> Any:
        raise NotImplementedError

    def free_memory(self) -> int | None:
        """Device memory a new array could have now (free, and what the array pool holds); None where arrays
        live in host memory."""
        return None


    def ptr(self, arr: Any) -> int:
        raise NotImplementedError

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner | None:
        """What picks `near` (and the fuel slice) for each launch of n instances; None: the defaults."""
        return None

    # Threads a block of a launch has (a tuner's trial compares blocks).
    block = 1

    def instances_per_block(self, n: int, code: Any = None) -> int:
        """The instances each block of a launch of n runs `code` in (tuning.trial_gain's blocks)."""
        return self.block

    # Whether auto builds large stores in the background for the next run (vm/background.py).
    background_builds = False
    # What the backend's builds target, where not the host's CPU: the GPU's compute capability ("90").
    arch = ""
    # Whether a run that moves to its compiled code measures it against the interpreter (tuning.TierTrial):
    # on the CPU compiled code ran every program measured faster.
    tier_trials = False

    def compile(self, code: StoreCode, cached_only: bool = False, layout: str | None = None) -> Any:
        """A store's code compiled to C (compiler/to_c.py), built for this backend and `layout` (None: the
        start layout; once per key): what `run` takes as `code`. With `cached_only`, None unless a build is in
        the compile cache."""
        cache = self.__dict__.setdefault("_compiled", {})
        layout = layout or self.start_layout
        if (code.key, layout) not in cache:
            built = self._build(code, cached_only, layout)
            if built is None:
                return None
            cache[code.key, layout] = built
        return cache[code.key, layout]

    def _build(self, source: StoreCode, cached_only: bool, layout: str) -> Any:
        raise WasmGpuError(f"the {self.name} backend has no compiled tier")

    def run(self, params: Any, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None, serve: Serve | None = None) -> np.ndarray | None:
        """One launch; `near` is the reconvergence window (vm.h) and `trial` a trial launch's (window,
        every), for backends that run warps (CudaBackend.run); `code` a compiled store's (else the
        interpreter runs); `serve`, called while the launch runs, serves the mailbox (runtime/mailbox.py)."""
        raise NotImplementedError

    def host_shared(self, nbytes: int) -> tuple[np.ndarray, int]:
        """nbytes of zeroed host memory that a launch reads and writes while it runs (the mailbox), and its
        address there."""
        buf = np.zeros(nbytes, dtype=np.uint8)
        return buf, buf.ctypes.data

    def to_host(self, arr: Any) -> np.ndarray:
        return np.asarray(arr)

    def device_memory(self) -> int | None:
        return None

    # Whether zeros() only reserves: pages are committed when first touched (the store's budget then counts
    # what is sure to be touched, and linear memories reserve their growth up front).
    lazy = False
    # log2 of how much less address space than budget.py's RESERVE_PER_* a lazy backend's memories reserve.
    reserve_shift = 0
    # What the store's budget is spent on, for messages.
    memory_kind = "host memory"

    # What the array library raises when memory runs out.
    out_of_memory: tuple[type[BaseException], ...] = (MemoryError,)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A zeroed array; the backend's allocation failure becomes a ResourceLimitError."""
        try:
            return self.xp.zeros(shape, dtype=dtype)
        except self.out_of_memory as e:
            raise ResourceLimitError(f"could not allocate {format_bytes(_nbytes(shape, dtype))} of "
                                     f"{self.memory_kind}") from e

    def memory_budget(self) -> int:
        """The default store budget (bytes): a safe share of the memory the backend's arrays live in."""
        return int(HOST_BUDGET_SHARE * host_memory_available())


# The default budget's share of what is available: the rest is left to the host (Python objects per instance,
# the WASI layer, other processes) or to the CUDA context.
HOST_BUDGET_SHARE = 0.6
DEVICE_BUDGET_SHARE = 0.8
# numpy asks for transparent huge pages on its large arrays; touching one 8-byte slot of an instance then
# commits 2 MiB, so a store's reserved stacks and memories were committed in full. Arrays at least this large
# are mapped here instead, without huge pages.
LAZY_MIN_BYTES = 1 << 20
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)  # Linux's value; the module lacks it before 3.13


def _nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    return int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


HOST_THREADS_VAR = "WASMGPU_HOST_THREADS"
# How a CUDA store holds its large arrays (linear memories, stacks): "device", allocated whole; "managed", in
# managed memory, whose pages the driver populates, zeroed, where the GPU first touches them, so that a batch
# whose instances touch little of their memory runs in fewer waves; "auto" (the default), managed for a
# batch that gpu-run would otherwise run in waves (cli.wants_managed), else device.
CUDA_MEMORY_VAR = "WASMGPU_CUDA_MEMORY"
CUDA_MEMORY_MODES = ("auto", "device", "managed")


def cuda_memory_mode() -> str:
    mode = os.environ.get(CUDA_MEMORY_VAR, "auto")
    if mode not in CUDA_MEMORY_MODES:
        raise WasmGpuError(f"{CUDA_MEMORY_VAR} must be auto, device or managed, not {mode!r}")
    return mode


def host_threads() -> int:
    """The host threads this process keeps busy at most: its share of the cores when it is one of several
    worker processes (workers.py sets the variable), else every core."""
    try:
        return max(1, int(os.environ[HOST_THREADS_VAR]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def host_memory_available() -> int:
    """MemAvailable from /proc/meminfo, lowered to the cgroup's limit where one is set and lower."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            avail = 1 << 32
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit.isdigit():
            avail = min(avail, max(0, int(limit) - used))
    except OSError:
        pass
    return avail


def lazy_zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Zeros in an anonymous private mapping: address space only, each page committed when first touched
    (MAP_NORESERVE: no commit charge for the untouched rest; no huge pages, so a touch commits 4 KiB)."""
    nbytes = _nbytes(shape, dtype)
    if nbytes < LAZY_MIN_BYTES:
        return np.zeros(shape, dtype=dtype)
    try:
        mm = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE)
    except OSError as e:
        raise ResourceLimitError(f"could not reserve {format_bytes(nbytes)} of address space: {e.strerror}") from e
    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_NOHUGEPAGE"):
        mm.madvise(mmap.MADV_NOHUGEPAGE)  # THP "always" would commit 2 MiB per touch
    return np.frombuffer(mm, dtype=dtype).reshape(shape)  # the array keeps the mapping alive


class CpuBackend(Backend):
    name = "cpu"
    xp = np

    def __init__(self, threads: int | None = None, interleaved: bool = False, memory_layout: str | None = None) -> None:
        """`interleaved`: the GPU's instance-minor slots and frames and its interleaved memory layout on the
        CPU, so tests without a GPU cover them; with memory_layout="contiguous", the slots and frames only
        (the GPU's default)."""
        from ..vm.build import load_host_library

        self.instance_minor = interleaved
        self.memory_layout = _layout(memory_layout, "interleaved" if interleaved else "contiguous")
        if not interleaved and self.memory_layout == "auto":
            self.memory_layout = "contiguous"  # the only one its build has
        if not interleaved and self.memory_layout != "contiguous":
            raise WasmGpuError("the cpu backend keeps each instance's memory contiguous (cpu-interleaved "
                               "has the GPU's interleaved memory)")
        self.lib = load_host_library(interleaved, self.defines)
        self._interpreters = {self.start_layout: self.lib}  # Backend.interpreter's
        if interleaved:
            self.name = "cpu-interleaved"
        self.threads = threads or host_threads()
        # OpenMP's threads made now, with their stacks, before stores reserve the address space: under an
        # address-space limit (ulimit -v) libgomp would otherwise end the process when it makes them.
        self.lib.vm_run(None, 0, self.threads)

    lazy = True

    def ptr(self, arr: np.ndarray) -> int:
        return arr.ctypes.data

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return lazy_zeros(shape, dtype)

    background_builds = True

    def _build(self, source: StoreCode, cached_only: bool, layout: str) -> Any:
        from ..vm.build import load_host_library

        return load_host_library(self.instance_minor, self.defines_for(layout), compiled=source,
                                 cached_only=cached_only)

    def _load_interpreter(self, layout: str, cached_only: bool) -> Any:
        from ..vm.build import load_host_library

        return load_host_library(self.instance_minor, self.defines_for(layout), cached_only=cached_only)

    def run(self, params: np.ndarray, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None, serve: Serve | None = None) -> np.ndarray | None:
        args = (params.ctypes.data, n, self.threads if n > 1 else 1)
        if serve is None:
            (code or self.lib).vm_run(*args)
            return None
        # The launch on a thread of its own (ctypes lets go of the interpreter's lock), served from this one.
        launch = threading.Thread(target=(code or self.lib).vm_run, args=args, daemon=True)
        launch.start()
        try:
            while launch.is_alive():
                if not serve.poll(lambda: not launch.is_alive()):
                    launch.join(MAIL_POLL_S)
        finally:  # never left running behind the caller (an exception, an interrupt)
            if launch.is_alive():
                serve.close()
                launch.join()
        return None


class CudaBackend(Backend):
    name = "cuda"
    instance_minor = True
    block = 128

    def __init__(self, memory_layout: str | None = None, device: int | None = None,
                 managed: bool | None = None) -> None:
        """`managed`: linear memories and stacks in managed memory (None: as WASMGPU_CUDA_MEMORY says)."""
        try:
            import cupy
        except ImportError as e:
            raise WasmGpuError("the CUDA backend needs CuPy: pip install 'wasmgpu[cuda12]' (CUDA 12 drivers) or "
                               "'wasmgpu[cuda13]' (CUDA 13)") from e
        from ..vm.build import VM_DIR, load_cuda_kernel, variant_defines
        from ..vm.cuda_units import min_blocks

        context_warmed()  # before any CUDA call here, which would make the context itself
        if device is not None:
            # CuPy's current device is per thread: this engine's arrays and kernels go to the calling
            # thread's, so it becomes `device` here (one thread per GPU drives several).
            count = cupy.cuda.runtime.getDeviceCount()
            if not 0 <= device < count:
                raise WasmGpuError(f"there is no GPU {device} (this process sees {count})")
            cupy.cuda.Device(device).use()

        if os.environ.get(SHARED_DEVICE_VAR):
            sleep_while_waiting(cupy.cuda.runtime.getDevice())
        self.xp = cupy
        self.out_of_memory = (MemoryError, cupy.cuda.memory.OutOfMemoryError)
        # Auto by default: contiguous (where stores start) was faster on 8 of the 10 benchmarks, interleaved
        # up to 4.4x on programs whose lanes touch the same addresses in step; the trial found the latter on
        # the GPU and cost the others 2% (bench/NOTES.md).
        self.lazy = cuda_memory_mode() == "managed" if managed is None else managed
        # Managed pages are populated where first touched: interleaved words keep what the instances touch
        # together (contiguous memories took a page fault per instance for a data segment: 9x slower).
        self.memory_layout = _layout(memory_layout, "interleaved" if self.lazy else "auto")
        if self.lazy and self.memory_layout != "interleaved":
            raise WasmGpuError(f"managed memory ({CUDA_MEMORY_VAR}) keeps memories interleaved, not "
                               f"{self.memory_layout}")
        self.kernel = load_cuda_kernel(defines=self.defines)
        self._interpreters = {self.start_layout: self.kernel}  # Backend.interpreter's
        self.arch = str(cupy.cuda.Device().compute_capability)
        # WASMGPU_NEAR fixes the window (A/B runs, bench/NOTES.md) instead of measuring per launch.
        near = os.environ.get("WASMGPU_NEAR", "")
        if near and not (near.isdigit() and int(near) < 1 << 32):
            raise WasmGpuError(f"WASMGPU_NEAR must be a window of 0 to 2^32 - 1 code words, not {near!r}")
        self.near = int(near) if near else -1
        # Warps the GPU holds at once, at least: vm_kernel's launch bounds give each multiprocessor min_blocks.
        sms = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["multiProcessorCount"]
        blocks = min_blocks((VM_DIR / "cuda.cu").read_text(), variant_defines())
        self.resident_warps = sms * blocks * (self.block // 32)
        per_warp = os.environ.get("WASMGPU_PER_WARP", "")
        if per_warp and not (per_warp.isdigit() and 1 <= int(per_warp) <= 32):
            raise WasmGpuError(f"WASMGPU_PER_WARP must be 1 to 32 instances a warp, not {per_warp!r}")
        self.fixed_per_warp = int(per_warp) if per_warp else 0

    def per_warp(self, n: int, compiled: bool = False) -> int:
        """Instances per warp in a launch of n (vm_kernel's per_warp). Under the interpreter, lanes of a warp
        at different ops run their handlers one after another, so n instances fewer than the GPU holds
        warps of take one warp each, up to 32 a warp as n reaches 32 times that; a store's compiled code
        keeps 32 a warp, where spreading measured faster on one program and slower on another
        (bench/NOTES.md). WASMGPU_PER_WARP fixes it (32: every lane an instance)."""
        if self.fixed_per_warp:
            return self.fixed_per_warp
        return 32 if compiled else min(32, max(1, -(-n // self.resident_warps)))

    def instances_per_block(self, n: int, code: Any = None) -> int:
        return self.block // 32 * self.per_warp(n, (code or self.kernel).compiled)

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner | None:
        blocks = -(-n // self.instances_per_block(n))
        # A trial needs blocks under each window, packed or spread (compiled code is packed); a warp of one
        # instance has no lanes to wait for.
        if self.near >= 0 or -(-n // self.block) < 2 or self.per_warp(n) == 1:
            return None
        trial = int(os.environ.get("WASMGPU_TRIAL_FUEL", WindowTuner.trial_fuel))  # for A/B runs
        return WindowTuner(every=min(WindowTuner.every, blocks), trial_fuel=min(trial, fuel_slice),
                           run_fuel=fuel_slice)

    def ptr(self, arr: Any) -> int:
        return int(arr.data.ptr)

    # Managed memory's reservations take address space on the host and the GPU: an eighth of the host's.
    reserve_shift = 3

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        nbytes = _nbytes(shape, dtype)
        if not self.lazy or nbytes < LAZY_MIN_BYTES:
            return super().zeros(shape, dtype)
        cupy = self.xp
        try:  # not cleared here: the driver zeroes each page it populates
            ptr = cupy.cuda.malloc_managed(nbytes)
        except (MemoryError, cupy.cuda.runtime.CUDARuntimeError) as e:
            raise ResourceLimitError(f"could not reserve {format_bytes(nbytes)} of managed memory") from e
        return cupy.ndarray(shape, dtype, memptr=ptr)

    background_builds = True  # for stores that profile first (params.BACKGROUND_MIN_WORDS)
    tier_trials = True

    def _build(self, source: StoreCode, cached_only: bool, layout: str) -> Any:
        from ..vm.build import load_cuda_kernel

        return load_cuda_kernel(source, self.defines_for(layout), cached_only=cached_only)

    def _load_interpreter(self, layout: str, cached_only: bool) -> Any:
        from ..vm.build import load_cuda_kernel

        return load_cuda_kernel(defines=self.defines_for(layout), cached_only=cached_only)

    def run(self, params: Any, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None, serve: Serve | None = None) -> np.ndarray | None:
        """`trial` = (window, every): every `every`-th block runs under that window; returns each block's
        start time (ns)."""
        kernel = code or self.kernel
        grid = -(-n // self.instances_per_block(n, kernel))
        if near is None:
            near = self.near if self.near >= 0 else WindowTuner.default
        window, every = trial or (0, 0)
        start = self.xp.full(grid, np.iinfo(np.uint64).max, dtype=np.uint64) if trial else None
        kernel.params.copy_from_device_async(params.data, params.nbytes)
        args = (np.uint32(near), np.uint32(window), np.uint32(every), start if start is not None else np.uint64(0),
                np.uint32(self.per_warp(n, kernel.compiled)))
        if serve is None:
            kernel.function((grid,), (self.block,), args)
            self.xp.cuda.runtime.deviceSynchronize()
        else:
            self._run_served(kernel, grid, args, serve)
        return None if start is None else self.to_host(start)

    def _run_served(self, kernel: Any, grid: int, args: tuple[Any, ...], serve: Serve) -> None:
        """The launch on a stream of its own, which the default stream's copies do not wait for: the host
        serves the mailbox with them while the kernel runs."""
        cuda = self.xp.cuda
        stream = self.__dict__.get("_mail_stream")
        if stream is None:
            stream = self._mail_stream = cuda.Stream(non_blocking=True)
        ready = cuda.Event(disable_timing=True)
        ready.record()  # what the default stream has queued (the parameter block, the state) comes first
        stream.wait_event(ready)
        with stream:
            kernel.function((grid,), (self.block,), args)
        ended = cuda.Event(disable_timing=True)
        ended.record(stream)
        try:
            while not ended.done:
                if not serve.poll(lambda: ended.done):
                    time.sleep(MAIL_POLL_S)
        finally:  # never left running behind the caller (an exception, an interrupt)
            if not ended.done:
                serve.close()
            ended.synchronize()

    def host_shared(self, nbytes: int) -> tuple[np.ndarray, int]:
        # Pinned and mapped: the GPU reaches it over the bus at the host's own address (unified addressing).
        cuda = self.xp.cuda
        mem = cuda.PinnedMemory(nbytes, cuda.runtime.hostAllocMapped | cuda.runtime.hostAllocPortable)
        buf = np.frombuffer(cuda.PinnedMemoryPointer(mem, 0), dtype=np.uint8, count=nbytes)
        buf[:] = 0  # the array holds the pointer object, which holds the allocation
        return buf, int(mem.ptr)

    def to_host(self, arr: Any) -> np.ndarray:
        return self.xp.asnumpy(arr)

    def device_memory(self) -> int | None:
        free, _total = self.xp.cuda.runtime.memGetInfo()
        return int(free)

    memory_kind = "GPU memory"

    def free_memory(self) -> int:
        # Free device memory plus what CuPy's pool holds and would hand out again.
        return (self.device_memory() or 0) + self.xp.get_default_memory_pool().free_bytes()

    def memory_budget(self) -> int:
        return int(DEVICE_BUDGET_SHARE * self.free_memory())


def cuda_present() -> bool:
    """cuda_available() without importing CuPy (half a second): CuPy is installed and the driver counts a
    device. For a process that only decides whether others will use the GPU (workers.py)."""
    import importlib.util

    return importlib.util.find_spec("cupy") is not None and cuda_device_count() > 0


def batch_memory_bound(backend: str, devices: int, max_memory: int | None) -> tuple[int, bool, str]:
    """What the stores of a whole batch may take together at most (bytes; --max-memory, or the budgets'
    share of every GPU's whole memory, or of the host's), whether the backend's arrays only reserve, and
    what memory it is; without making a backend (no CUDA context)."""
    gpu = backend == "cuda" or backend == "auto" and cuda_device_count() > 0
    if gpu:
        bound = int(DEVICE_BUDGET_SHARE * cuda_total_memory()) * max(devices, 1)
    else:
        bound = int(HOST_BUDGET_SHARE * host_memory_available())
    kind = CudaBackend.memory_kind if gpu else CpuBackend.memory_kind
    lazy = cuda_memory_mode() == "managed" if gpu else CpuBackend.lazy
    return (bound if max_memory is None else max_memory), lazy, kind


def cuda_available() -> bool:
    if not cuda_present():  # said without CuPy's import, which takes half a second
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device: all mean "no"
        return False


MEMORY_LAYOUTS = ("interleaved", "contiguous", "auto")


def _layout(asked: str | None, default: str) -> str:
    if asked is None:
        return default
    if asked not in MEMORY_LAYOUTS:
        raise WasmGpuError(f"unknown memory layout {asked!r} (expected interleaved, contiguous or auto)")
    return asked


def make_backend(name: str, memory_layout: str | None = None, device: int | None = None,
                 managed: bool | None = None) -> Backend:
    """`memory_layout`: None for the backend's own (cuda: auto, interleaved in managed memory; cpu: contiguous;
    cpu-interleaved: interleaved);
    `device`: the GPU for cuda (None: the calling thread's current one); `managed`: CudaBackend's."""
    if name == "auto":
        name = "cuda" if cuda_available() else "cpu"
    if device is not None and name != "cuda":
        raise WasmGpuError(f"device={device} chooses a GPU: the {name} backend has none")
    if name == "cpu":
        return CpuBackend(memory_layout=memory_layout)
    if name == "cpu-interleaved":
        return CpuBackend(interleaved=True, memory_layout=memory_layout)
    if name == "cuda":
        return CudaBackend(memory_layout, device, managed)
    raise WasmGpuError(f"unknown backend {name!r} (expected auto, cpu or cuda)")
