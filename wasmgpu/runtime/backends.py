"""The two places the interpreter runs: host cores (ctypes) and an NVIDIA GPU (CuPy)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import WasmGpuError
from .tuning import WindowTuner


class Backend:
    name = "abstract"
    xp: Any = np
    # Slot and frame layout: instance-minor on the GPU so converged lanes coalesce.
    instance_minor = False
    # Linear memory layout (vm.h): 4-byte words interleaved across instances, or each instance's bytes
    # together ("contiguous").
    memory_layout = "contiguous"

    @property
    def defines(self) -> tuple[str, ...]:
        """The VM build's preprocessor symbols for this layout (vm.h)."""
        return ("WG_CONTIGUOUS",) if self.memory_layout == "contiguous" else ()

    def ptr(self, arr: Any) -> int:
        raise NotImplementedError

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner | None:
        """What picks `near` (and the fuel slice) for each launch of n instances; None: the defaults."""
        return None

    def compile(self, source: str) -> Any:
        """A store's code compiled to C (compiler/to_c.py), built for this backend (once per source): what
        `run` takes as `code`."""
        cache = self.__dict__.setdefault("_compiled", {})
        if source not in cache:
            cache[source] = self._build(source)
        return cache[source]

    def _build(self, source: str) -> Any:
        raise WasmGpuError(f"the {self.name} backend has no compiled tier")

    def run(self, params: Any, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None) -> np.ndarray | None:
        """One launch; `near` is the reconvergence window (vm.h) and `trial` a trial launch's (window,
        every), for backends that run warps (CudaBackend.run); `code` a compiled store's (else the
        interpreter runs)."""
        raise NotImplementedError

    def to_host(self, arr: Any) -> np.ndarray:
        return np.asarray(arr)

    def device_memory(self) -> int | None:
        return None


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
        if not interleaved and self.memory_layout != "contiguous":
            raise WasmGpuError("the cpu backend keeps each instance's memory contiguous (cpu-interleaved "
                               "has the GPU's interleaved memory)")
        self.lib = load_host_library(interleaved, self.defines)
        if interleaved:
            self.name = "cpu-interleaved"
        self.threads = threads or os.cpu_count() or 1

    def ptr(self, arr: np.ndarray) -> int:
        return arr.ctypes.data

    def _build(self, source: str) -> Any:
        from ..vm.build import load_host_library

        return load_host_library(self.instance_minor, self.defines, compiled=source)

    def run(self, params: np.ndarray, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None) -> np.ndarray | None:
        (code or self.lib).vm_run(params.ctypes.data, n, self.threads if n > 1 else 1)
        return None


class CudaBackend(Backend):
    name = "cuda"
    instance_minor = True
    block = 128

    def __init__(self, memory_layout: str | None = None) -> None:
        try:
            import cupy
        except ImportError as e:
            raise WasmGpuError("the CUDA backend needs CuPy (pip install cupy-cuda12x)") from e
        from ..vm.build import load_cuda_kernel

        self.xp = cupy
        # Contiguous by default: measured faster on 8 of the 10 benchmarks (bench/NOTES.md, session 13).
        self.memory_layout = _layout(memory_layout, "contiguous")
        self.kernel = load_cuda_kernel(defines=self.defines)
        # WASMGPU_NEAR fixes the window (A/B runs, bench/NOTES.md) instead of measuring per launch.
        near = os.environ.get("WASMGPU_NEAR", "")
        if near and not (near.isdigit() and int(near) < 1 << 32):
            raise WasmGpuError(f"WASMGPU_NEAR must be a window of 0 to 2^32 - 1 code words, not {near!r}")
        self.near = int(near) if near else -1

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner | None:
        blocks = -(-n // self.block)
        if self.near >= 0 or blocks < 2:  # a trial needs blocks under each window
            return None
        trial = int(os.environ.get("WASMGPU_TRIAL_FUEL", WindowTuner.trial_fuel))  # for A/B runs
        return WindowTuner(every=min(WindowTuner.every, blocks), trial_fuel=min(trial, fuel_slice),
                           run_fuel=fuel_slice)

    def ptr(self, arr: Any) -> int:
        return int(arr.data.ptr)

    def _build(self, source: str) -> Any:
        from ..vm.build import load_cuda_kernel

        return load_cuda_kernel(source, self.defines)

    def run(self, params: Any, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: Any = None) -> np.ndarray | None:
        """`trial` = (window, every): every `every`-th block runs under that window; returns each block's
        start time (ns)."""
        grid = (n + self.block - 1) // self.block
        if near is None:
            near = self.near if self.near >= 0 else WindowTuner.default
        window, every = trial or (0, 0)
        start = self.xp.full(grid, np.iinfo(np.uint64).max, dtype=np.uint64) if trial else None
        kernel = code or self.kernel
        kernel.params.copy_from_device_async(params.data, params.nbytes)
        kernel.function((grid,), (self.block,), (np.uint32(near), np.uint32(window), np.uint32(every),
                                                 start if start is not None else np.uint64(0)))
        self.xp.cuda.runtime.deviceSynchronize()
        return None if start is None else self.to_host(start)

    def to_host(self, arr: Any) -> np.ndarray:
        return self.xp.asnumpy(arr)

    def device_memory(self) -> int | None:
        free, _total = self.xp.cuda.runtime.memGetInfo()
        return int(free)


def cuda_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device: all mean "no"
        return False


MEMORY_LAYOUTS = ("interleaved", "contiguous")


def _layout(asked: str | None, default: str) -> str:
    if asked is None:
        return default
    if asked not in MEMORY_LAYOUTS:
        raise WasmGpuError(f"unknown memory layout {asked!r} (expected interleaved or contiguous)")
    return asked


def make_backend(name: str, memory_layout: str | None = None) -> Backend:
    """`memory_layout`: None for the backend's own (cuda and cpu: contiguous; cpu-interleaved: interleaved)."""
    if name == "auto":
        name = "cuda" if cuda_available() else "cpu"
    if name == "cpu":
        return CpuBackend(memory_layout=memory_layout)
    if name == "cpu-interleaved":
        return CpuBackend(interleaved=True, memory_layout=memory_layout)
    if name == "cuda":
        return CudaBackend(memory_layout)
    raise WasmGpuError(f"unknown backend {name!r} (expected auto, cpu or cuda)")
