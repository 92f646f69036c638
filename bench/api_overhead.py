#!/usr/bin/env python3
"""The Python API's host cost of one call over a batch: a trivial export called over N instances with
NumPy arguments (a BatchResult back) and with a tuple per instance (a CallResult each), less the time in
launches. Prints the median of `--repeat` calls of each.

    python3 bench/api_overhead.py [--backend cuda|cpu] [--instances 135168] [--repeat 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wasmgpu.runtime.engine import Engine, Module  # noqa: E402

WAT = '(module (func (export "f") (param i32 f64) (result i32) (i32.add (local.get 0) (i32.const 1))))'


def measure(batch, args, repeat: int, launches: list[float]) -> tuple[float, float]:
    """Median seconds of a whole call, and of the call less its launches."""
    whole, host = [], []
    for _ in range(repeat):
        launches.clear()
        t = time.perf_counter()
        batch.call("f", args)
        whole.append(time.perf_counter() - t)
        host.append(whole[-1] - sum(launches))
    return statistics.median(whole), statistics.median(host)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="auto")
    p.add_argument("--instances", type=int, default=135_168)
    p.add_argument("--repeat", type=int, default=11)
    opts = p.parse_args()
    engine = Engine(opts.backend)
    batch = Module(engine, WAT).instantiate(opts.instances)
    launches: list[float] = []
    run = engine.backend.run

    def timed_run(*a, **kw):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return run(*a, **kw)
        finally:
            launches.append(time.perf_counter() - t)

    engine.backend.run = timed_run  # type: ignore[method-assign]
    n = opts.instances
    arrays = [np.arange(n, dtype=np.int32), np.ones(n)]
    tuples = [(i, 1.0) for i in range(n)]
    batch.call("f", arrays)  # the first call builds and loads what the others reuse
    print(f"backend {engine.backend.name}, N = {n}, median of {opts.repeat}")
    for name, args in (("numpy", arrays), ("tuples", tuples)):
        whole, host = measure(batch, args, opts.repeat, launches)
        print(f"{name:7s} call {whole * 1e3:8.1f} ms   host side (less launches) {host * 1e3:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
