"""The best time of a CUDA kernel's launches, for the micro-benchmarks (bench/slot_storage.py, bench/mem_layout.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def best_launch_seconds(cp: Any, kern: Any, grid: tuple[int, ...], call: tuple[Any, ...], timed: int,
                        reset: Callable[[], None] | None = None) -> float:
    """One warm-up launch (it loads the module), then the fastest of `timed` launches in blocks of 128,
    timed with CUDA events; `reset` runs before every launch, outside the timing."""
    best = float("inf")
    for rep in range(timed + 1):
        if reset:
            reset()
        t0, t1 = cp.cuda.Event(), cp.cuda.Event()
        t0.record()
        kern(grid, (128,), call)
        t1.record()
        t1.synchronize()
        if rep:
            best = min(best, cp.cuda.get_elapsed_time(t0, t1) / 1e3)
    return best
