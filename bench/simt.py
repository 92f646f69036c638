#!/usr/bin/env python3
"""A model of warp divergence, on the CPU: how reconvergence rules would do, without a GPU.

    python3 bench/simt.py [--instances N] [--fuel K] [--rules K:D,...] [--only NAME[,NAME]]

Runs the benchmarks' instances in warps of 32, op by op, with an instrumented CPU build of the
interpreter (cpu.cpp wg_simt_run). In each step a lane runs one op unless it waits: a lane waits when
0 < its pc - the warp's lowest pc <= D and, for K > 0, the lowest pc holds at least 1/K as many lanes as
the lane's own pc (K = 0: no such condition), or when 0 < pc - lowest pc <= A. Rules are K:D or K:D:A;
the CUDA build's rule is 0:1024. Prints the modeled speed of each rule against nobody waiting, and the
geometric mean. The cost of a step, fitted to H200 A/B runs (56 fixed-fuel ratios, rms
error 22%): 1 + 0.1 x distinct ops (handlers run one after another) + 0.4 x distinct (pc, frame) pairs
(slot accesses that do not coalesce) + 0.1 x distinct pcs; 20% more for the vote, 10% more for a
group-size condition.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from wasmgpu.compiler.vm_abi import P_N, P_STATE, S_FIELDS, S_PC, S_STATUS, STATUS  # noqa: E402
from wasmgpu.runtime.backends import CpuBackend  # noqa: E402
from wasmgpu.runtime.engine import Engine  # noqa: E402
from wasmgpu.vm.build import load_host_library  # noqa: E402

# The cost terms, fitted to H200 A/B runs: per distinct op, per distinct
# (pc, frame) pair, per distinct pc; the vote; a group-size condition.
COST_OPS, COST_FRAMES, COST_PCS, COST_VOTE, COST_GROUP = 0.1, 0.4, 0.1, 0.2, 0.1


class SimtBackend(CpuBackend):
    """The CPU backend with its launches run by the warp model."""

    def __init__(self) -> None:
        super().__init__(threads=1)
        self.lib = load_host_library(defines=("WG_SIMT",))
        self.lib.wg_simt_run.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                         ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.wg_simt_run.restype = None
        self.rule = (0, 0, 0)
        self.regroup = False
        self.stats = np.zeros(6, dtype=np.uint64)

    def run(self, params: np.ndarray, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: object = None) -> None:
        k, d, d_all = self.rule
        order = None
        if self.regroup:
            # Each launch's warps formed from instances sorted by where they stand (running ones first, then by
            # pc): lanes at one pc start the slice in one warp.
            count = int(params[P_N])
            state = np.ctypeslib.as_array((ctypes.c_uint32 * (S_FIELDS * count)).from_address(int(params[P_STATE])))
            pc = state[S_PC * count:S_PC * count + n].astype(np.uint64)
            running = state[S_STATUS * count:S_STATUS * count + n] == STATUS["RUNNING"]
            order = np.ascontiguousarray(np.argsort(np.where(running, pc, 1 << 40), kind="stable"), dtype=np.uint32)
        self.lib.wg_simt_run(params.ctypes.data, n, d, k, d_all, self.stats.ctypes.data,
                             None if order is None else order.ctypes.data)


def _inf(d: int) -> str:
    return "inf" if d >= 1 << 31 else str(d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=64)
    p.add_argument("--fuel", type=int, default=60000, help="fuel per instance (0: whole runs)")
    p.add_argument("--rules", default="0:32,0:128,0:1024,1:1024,1:1024:32")
    p.add_argument("--only", default="")
    p.add_argument("--slice", type=int, help="fuel per launch (the store's default otherwise)")
    p.add_argument("--regroup", action="store_true", help="before each launch, put the instances that stand at "
                   "one pc in one warp (sorted by pc)")
    p.add_argument("--json", help="write the raw counts here: steps, lane-ops, distinct pcs, ops, (pc, frame) pairs, "
                   "steps with every lane at one pc")
    args = p.parse_args()
    rules = [tuple(int(x) for x in (r + ":0:0").split(":")[:3]) for r in args.rules.split(",")]
    backend = SimtBackend()
    backend.regroup = args.regroup
    opts = {"stack_slots": 1024, "max_depth": 256, **({"fuel_slice": args.slice} if args.slice else {})}
    engine = Engine(backend)
    names = [s for s in args.only.split(",") if s]
    print(f"{args.instances} instances in warps of 32, fuel {args.fuel or 'unlimited'}; modeled speed against "
          "nobody waiting; columns K:D:A")
    print(f"{'':11s}" + "".join(f"{k}:{_inf(d)}:{_inf(a)}".ljust(12) for k, d, a in rules))
    logs = [0.0] * len(rules)
    raw: dict[str, dict[str, list[int]]] = {}
    count = 0
    for wasm in sorted((BENCH_DIR / "wasm").glob("*.wasm")):
        if names and wasm.stem not in names:
            continue
        module = engine.load(wasm.read_bytes())
        times = []
        for rule in [(0, 0, 0), *rules]:
            backend.rule = rule
            backend.stats[:] = 0
            batch = module.instantiate(args.instances, **opts)
            batch.call("run", [(i,) for i in range(args.instances)], fuel=args.fuel or None)
            steps, _lane_ops, pcs, ops, frames, _one_pc = (float(x) for x in backend.stats)
            raw.setdefault(wasm.stem, {})[':'.join(map(str, rule))] = [int(x) for x in backend.stats]
            vote = (1 + COST_VOTE if rule[1] or rule[2] else 1) * (1 + COST_GROUP if rule[0] else 1)
            times.append((steps + COST_OPS * ops + COST_FRAMES * frames + COST_PCS * pcs) * vote)
        speed = [times[0] / t for t in times[1:]]
        logs = [a + math.log(s) for a, s in zip(logs, speed, strict=True)]
        count += 1
        print(f"{wasm.stem:11s}" + "".join(f"{s:<12.2f}" for s in speed), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    print(f"{'geomean':11s}" + "".join(f"{math.exp(a / count):<12.2f}" for a in logs))


if __name__ == "__main__":
    main()
