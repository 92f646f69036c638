#!/usr/bin/env python3
"""Dynamic opcode counts of the benchmarks, from an instrumented CPU build of the interpreter.

    python3 bench/opcount.py [--instances N] [--top K]

Prints, per benchmark and over all of them (each benchmark weighted equally), the share of executed
bytecode instructions per opcode: the data behind the hot set of the dispatch switch (isa.py HOT).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from wasmgpu.compiler.isa import OP_NAMES  # noqa: E402
from wasmgpu.runtime.backends import CpuBackend  # noqa: E402
from wasmgpu.runtime.engine import Engine  # noqa: E402
from wasmgpu.vm.build import load_host_library  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=2)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    backend = CpuBackend(threads=1)
    backend.lib = load_host_library(defines=("WG_OPCOUNT",))
    counts = (ctypes.c_uint64 * len(OP_NAMES)).in_dll(backend.lib, "wg_opcount")
    engine = Engine(backend)
    total = np.zeros(len(OP_NAMES))
    for wasm in sorted((BENCH_DIR / "wasm").glob("*.wasm")):
        ctypes.memset(counts, 0, ctypes.sizeof(counts))
        batch = engine.load(wasm.read_bytes()).instantiate(args.instances, stack_slots=1024, max_depth=256)
        batch.call("run", [(i,) for i in range(args.instances)])
        c = np.array(counts[:], dtype=np.float64)
        share = c / c.sum()
        total += share
        top = np.argsort(-share)[: args.top]
        print(f"{wasm.stem:11s} {c.sum() / args.instances / 1e6:8.1f} M ops/instance: "
              + ", ".join(f"{OP_NAMES[k]} {share[k]:.1%}" for k in top))
    total /= total.sum()
    order = np.argsort(-total)
    cum = np.cumsum(total[order])
    print("all (equal weight):")
    for rank, k in enumerate(order):
        if total[k] == 0:
            break
        print(f"  {rank:3d} {OP_NAMES[k]:22s} {total[k]:7.3%}  cumulative {cum[rank]:7.3%}")


if __name__ == "__main__":
    main()
