"""Running a visual program: instantiate N instances, wire present() and the gpu intrinsics, call the
entry, write the frames (PNG per frame, GIF per instance on request, sheet.png)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import WasmGpuError
from ..runtime.engine import Engine
from ..runtime.store import CallResult, FuncExtern, Instance
from ..wasm.types import Module
from .frames import FrameCollector, uses_graphics


def find_entry(instance: Instance, entry: str | None = None) -> FuncExtern:
    """The function to call: `entry` when given, else the export `main`, else `_start`."""
    names = [entry] if entry else ["main", "_start"]
    for name in names:
        func = instance.exports.get(name)
        if isinstance(func, FuncExtern):
            return func
    raise WasmGpuError(f"the module exports no function named {' or '.join(repr(n) for n in names)}")


def run_visual(engine: Engine, wasm_bytes: bytes, instances: int, frames_dir: str | Path | None = None,
               gif: bool = False, entry: str | None = None, *, args: list[tuple[int, ...]] | None = None,
               collector: FrameCollector | None = None, fuel: int | None = None,
               **store_options: Any) -> list[CallResult]:
    """Run a module that draws with env.present in `instances` instances; one CallResult per instance.

    Frames go to `frames_dir` as `<instance>-<frame>.png` while the program runs (none are kept in
    memory), then `<instance>.gif` (with gif=True) and `sheet.png`. Pass your own `collector` to keep
    frames in memory or watch them (on_frame); its out_dir, when set, is where the files go.
    `args` are the entry's arguments per instance (default: none). An exported `_initialize` runs first.
    """
    module = engine.load(wasm_bytes).module
    if collector is None:
        collector = FrameCollector(instances, frames_dir, gif=gif)
    elif collector.n != instances:
        raise WasmGpuError(f"a frame collector for {collector.n} instances, {instances} instances asked for")
    store = engine.store(instances, **store_options)
    try:
        instance = store.instantiate(module, collector.imports(store))
        collector.bind(instance)
        init = instance.exports.get("_initialize")
        if isinstance(init, FuncExtern) and not init.type.params:
            for r in store.call(init, [()] * instances):
                r.unwrap()
        func = find_entry(instance, entry)
        if args is None:
            if func.type.params:
                raise WasmGpuError(f"the entry takes {len(func.type.params)} argument(s): pass args")
            args = [()] * instances
        results = store.call(func, args, fuel=fuel)
        if collector.out_dir is not None:
            collector.finish(gif=gif or collector.gif)
        return results
    finally:
        collector.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """gpu-run's options for visual programs: --frames DIR and --gif."""
    parser.add_argument("--frames", type=Path, default=None, metavar="DIR",
                        help="write each frame a guest shows with env.present(ptr, width, height) to "
                        "DIR/<instance>-<frame>.png, and DIR/sheet.png with the last frame of every instance")
    parser.add_argument("--gif", action="store_true",
                        help="also write an animated GIF per instance, DIR/<instance>.gif (needs --frames)")


def collector_for(opts: argparse.Namespace, module: Module, n: int) -> FrameCollector | None:
    """gpu-run's frame collector: one when --frames is given or the module imports env.present or a
    gpu intrinsic (frames are then counted, not kept); None otherwise."""
    frames_dir = getattr(opts, "frames", None)
    gif = bool(getattr(opts, "gif", False))
    if gif and frames_dir is None:
        raise WasmGpuError("--gif needs --frames DIR (the GIFs are written there)")
    if frames_dir is None and not uses_graphics(module):
        return None
    return FrameCollector(n, frames_dir, keep=False, gif=gif)


__all__ = ["add_arguments", "collector_for", "find_entry", "run_visual"]
