"""python -m wasmgpu.graphics MODULE --instances N --frames DIR [--gif]: run a visual program.

The same as gpu-run does for a module that draws with env.present, without WASI; handy to
render a batch's frames and sheet.png in one command.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import WasmGpuError
from ..runtime.engine import Engine
from .frames import FrameCollector
from .run import add_arguments, run_visual


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wasmgpu.graphics",
                                description="Run a module that shows frames with env.present(ptr, width, height) "
                                "in N instances; write its frames, GIFs and sheet.png.")
    p.add_argument("--backend", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--instances", "-n", type=int, default=1)
    p.add_argument("--invoke", metavar="NAME", default=None, help="the function to call (default: main, else _start)")
    p.add_argument("--fuel", type=int, default=None)
    add_arguments(p)
    p.add_argument("module", type=Path)
    p.add_argument("args", nargs="*", type=lambda s: int(s, 0), help="i32 arguments of the function")
    opts = p.parse_args(argv)
    try:
        if opts.gif and opts.frames is None:
            raise WasmGpuError("--gif needs --frames DIR")
        engine = Engine(opts.backend)
        n = opts.instances
        collector = FrameCollector(n, opts.frames, keep=False, gif=opts.gif)
        start = time.perf_counter()
        args = [tuple(a & 0xFFFFFFFF for a in opts.args)] * n if opts.args else None
        results = run_visual(engine, opts.module.read_bytes(), n, opts.frames, opts.gif, opts.invoke, args=args,
                             collector=collector, fuel=opts.fuel)
        took = time.perf_counter() - start
    except (WasmGpuError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for i, r in enumerate(results):
        if r.trap is not None:
            status = 1
            print(f"{i}: error: wasm trap: {r.trap}", file=sys.stderr)
    print(f"{collector.summary()} on {engine.backend.name}, {took:.2f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
