#!/usr/bin/env python3
"""Fit the cost terms of bench/simt.py's warp model to the session-4 H200 A/B runs (h200-s4-ab.log).

    python3 bench/simt.py -n 64 --fuel 60000 --rules 0:32,0:128,0:256,0:512,0:1024,0:4294967295,1:1024:32,1:1024 \
        --only fib,interp,json,mandel --json bench/results/simt-s4-a.json   (and qsort,rs_hashmap,sieve,hash64: -b)
    python3 bench/results/simt_fit_s4.py

A step costs 1 + BO x distinct ops + BF x distinct (pc, frame) pairs + BC x distinct pcs; every rule that votes
costs 1 + E more, and rules with a group-size condition 1 + E2 on top. Grid search on squared log error.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
# G fuel/s at 60000 fuel per instance, N = 135168, from h200-s4-ab.log: the old engine (round 3), windows
# (rounds 4 and 5), lowest-pc-first (round 2, with its own old-engine figures), group rules (round 7, against
# its own 0:1024 run).
OLD = dict(fib=18.764, interp=2.290, json=2.842, mandel=10.507, qsort=2.582, rs_hashmap=0.729, sieve=55.209)
WINDOWS = {
    "0:32:0": dict(fib=16.020, interp=7.207, json=3.276, mandel=13.320, qsort=3.816, rs_hashmap=1.018, sieve=48.320),
    "0:128:0": dict(fib=16.045, interp=7.061, json=4.700, mandel=13.536, qsort=2.342, rs_hashmap=1.012, sieve=48.233),
    "0:256:0": dict(fib=16.146, interp=3.684, json=3.252, mandel=13.324, qsort=2.339, rs_hashmap=1.133, sieve=48.238),
    "0:512:0": dict(fib=15.982, interp=3.688, json=3.263, mandel=13.542, qsort=2.341, rs_hashmap=1.324, sieve=48.193),
    "0:1024:0": dict(fib=15.948, interp=3.681, json=3.275, mandel=13.332, qsort=2.340, rs_hashmap=2.258, sieve=48.332),
}
OLD_R2 = dict(fib=18.714, interp=2.302, json=2.845, mandel=10.448, qsort=2.596, rs_hashmap=0.728, sieve=55.205)
LOWEST_R2 = dict(fib=15.965, interp=3.711, json=3.299, mandel=13.281, qsort=2.352, rs_hashmap=2.851, sieve=49.163)
NEW_R7 = dict(fib=16.138, interp=3.620, json=3.212, mandel=12.930, qsort=2.293, rs_hashmap=2.202, sieve=47.986)
GROUP_R7 = {
    "1:1024:32": dict(fib=15.884, interp=7.514, json=3.189, mandel=11.459, qsort=3.191, rs_hashmap=0.752, sieve=42.721),
    "1:1024:0": dict(fib=14.636, interp=7.615, json=3.283, mandel=9.287, qsort=3.179, rs_hashmap=0.728, sieve=43.951),
}


def measured() -> dict[str, dict[str, float]]:
    g = {r: {b: v[b] / OLD[b] for b in v} for r, v in WINDOWS.items()}
    g["0:4294967295:0"] = {b: LOWEST_R2[b] / OLD_R2[b] for b in LOWEST_R2}
    for r, v in GROUP_R7.items():
        g[r] = {b: v[b] / NEW_R7[b] * g["0:1024:0"][b] for b in v}
    return g


def main() -> None:
    raw = {**json.loads((HERE / "simt-s4-a.json").read_text()), **json.loads((HERE / "simt-s4-b.json").read_text())}
    g = measured()
    points = [(b, r, g[r][b]) for r in g for b in g[r] if r in raw.get(b, {})]

    def speed(b: str, r: str, p: tuple[float, ...]) -> float:
        bo, bf, bc, e, e2 = p

        def cost(rule: str) -> float:
            steps, _lane_ops, pcs, ops, frames = raw[b][rule][:5]
            return steps + bo * ops + bf * frames + bc * pcs

        return cost("0:0:0") / cost(r) / (1 + e) / (1 + e2 if not r.startswith("0:") else 1)

    grid = itertools.product([0, .1, .2, .4, .8, 1.6], [0, .1, .2, .4, .8, 1.6], [0, .1, .2, .4, .8],
                             [0, .05, .1, .15, .2], [0, .05, .1, .2])
    err, p = min((sum((math.log(speed(b, r, p)) - math.log(y)) ** 2 for b, r, y in points), p) for p in grid)
    print(f"{len(points)} points; best BO, BF, BC, E, E2 = {p}; rms log error {math.sqrt(err / len(points)):.3f}")
    print("measured / modeled speed against the old engine:")
    for b in sorted({b for b, _, _ in points}):
        print(f"  {b:11s}" + "  ".join(f"{r}: {g[r][b]:.2f}/{speed(b, r, p):.2f}" for r in g if r in raw[b]))


if __name__ == "__main__":
    main()
