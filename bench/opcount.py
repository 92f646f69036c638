#!/usr/bin/env python3
"""Dynamic opcode counts of the benchmarks, from an instrumented CPU build of the interpreter.

    python3 bench/opcount.py [--instances N] [--top K] [--by-function] [--only NAME[,NAME]]

Prints, per benchmark and over all of them (each benchmark weighted equally), the share of executed
bytecode instructions per opcode: the data behind the hot set of the dispatch switch (isa.py HOT).
With --by-function, per benchmark its top functions instead: share of instructions, size in code words,
and calls per instance (runs of each function's first instruction: a loop that starts there adds its
iterations).
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
from wasmgpu.runtime.store import Store  # noqa: E402
from wasmgpu.vm.build import load_host_library  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=2)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--by-function", action="store_true")
    p.add_argument("--only", default="", help="comma-separated benchmark names")
    args = p.parse_args()
    backend = CpuBackend(threads=1)
    backend.lib = load_host_library(defines=("WG_OPCOUNT",))
    counts = (ctypes.c_uint64 * len(OP_NAMES)).in_dll(backend.lib, "wg_opcount")
    per_pc = (ctypes.c_uint64 * (1 << 20)).in_dll(backend.lib, "wg_pccount")
    engine = Engine(backend)
    total = np.zeros(len(OP_NAMES))
    only = set(filter(None, args.only.split(",")))
    for wasm in sorted((BENCH_DIR / "wasm").glob("*.wasm")):
        if only and wasm.stem not in only:
            continue
        ctypes.memset(counts, 0, ctypes.sizeof(counts))
        ctypes.memset(per_pc, 0, ctypes.sizeof(per_pc))
        batch = engine.load(wasm.read_bytes()).instantiate(args.instances, stack_slots=1024, max_depth=256,
                                                           tier="interp")  # the counts are the interpreter's
        batch.call("run", [(i,) for i in range(args.instances)])
        if args.by_function:
            by_function(wasm.stem, batch.store, np.array(per_pc[:], dtype=np.float64) / args.instances, args.top)
            continue
        c = np.array(counts[:], dtype=np.float64)
        share = c / c.sum()
        total += share
        top = np.argsort(-share)[: args.top]
        print(f"{wasm.stem:11s} {c.sum() / args.instances / 1e6:8.1f} M ops/instance: "
              + ", ".join(f"{OP_NAMES[k]} {share[k]:.1%}" for k in top))
    if args.by_function:
        return
    total /= total.sum()
    order = np.argsort(-total)
    cum = np.cumsum(total[order])
    print("all (equal weight):")
    for rank, k in enumerate(order):
        if total[k] == 0:
            break
        print(f"  {rank:3d} {OP_NAMES[k]:22s} {total[k]:7.3%}  cumulative {cum[rank]:7.3%}")


def by_function(name: str, store: Store, per_pc: np.ndarray, top: int) -> None:
    """A benchmark's functions by their share of executed instructions."""
    ends = [e for e, _ in store.entries[1:]] + [len(store.code)]  # entries: (pc, function), sorted by pc
    rows = [(per_pc[e:end].sum(), end - e, per_pc[e], store.funcs[i].name)
            for (e, i), end in zip(store.entries, ends, strict=True)]
    total = per_pc.sum()
    print(f"{name}: {total / 1e6:.1f} M ops/instance in {len(rows)} functions")
    for ops, size, calls, fname in sorted(rows, reverse=True)[:top]:
        print(f"  {ops / total:6.1%} {size:6d} words {calls:12.0f} calls  {fname}")


if __name__ == "__main__":
    main()
