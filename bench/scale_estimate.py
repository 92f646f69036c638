#!/usr/bin/env python3
"""A paper estimate of a batch's wall time over G GPUs (gpu-run --devices on one host, --ray over hosts of 8),
from one GPU's measured rate and the sharding overheads measured on the hosts at hand.

    python3 bench/scale_estimate.py [--instances 1000000] [--rate 6250] [--work-s 0] [--gpus 1,8,64]

Model: T(G) = start + ray_start + N / (G * rate) + work / G + N * driver, where `driver` is the per-instance
work left on the one process that merges the ranges (outcomes and results.jsonl; with Ray also writing each
instance's two output files, which come back through the object store). Efficiency is T(1) / (G * T(G)).
The defaults are measurements (bench/README-jobs.md, "Past one GPU"); change them to model another program.
"""

from __future__ import annotations

import argparse


def wall(n: int, g: int, rate: float, work: float, start: float, driver: float, ray_start: float) -> float:
    return start + ray_start + n / (g * rate) + work / g + n * driver


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=6250.0,
                   help="instances/s of one H200 with 16 host cores (charcount at 100,000 in 8 workers)")
    p.add_argument("--work-s", type=float, default=0.0, help="GPU seconds of compute on one GPU beyond that rate")
    p.add_argument("--start", type=float, default=1.0, help="worker start, CUDA context, cached build (s)")
    p.add_argument("--driver-us", type=float, default=10.0, help="merge cost per instance in the driver (us)")
    p.add_argument("--file-us", type=float, default=40.0,
                   help="one output file created by the Ray driver (us; 19-73 on the H200 host's disk)")
    p.add_argument("--ray-start", type=float, default=3.0, help="ray.init and task dispatch (s)")
    p.add_argument("--gpus", default="1,8,64")
    a = p.parse_args()
    gpus = [int(g) for g in a.gpus.split(",")]
    print(f"N = {a.instances:,}, {a.rate:,.0f} inst/s per GPU, {a.work_s:g} s of extra GPU work")
    print(f"{'mode':<34} {'GPUs':>5} {'wall s':>8} {'inst/s':>10} {'efficiency':>10}")
    modes = [("--devices (one host)", a.driver_us * 1e-6, 0.0),
             ("--ray, files through the driver", (a.driver_us + 2 * a.file_us) * 1e-6, a.ray_start),
             ("--ray --out-jsonl", 2 * a.driver_us * 1e-6, a.ray_start)]
    for name, driver, ray_start in modes:
        one = wall(a.instances, 1, a.rate, a.work_s, a.start, driver, ray_start)
        for g in gpus:
            if name.startswith("--devices") and g > 8:
                continue  # the largest host lent has 8
            t = wall(a.instances, g, a.rate, a.work_s, a.start, driver, ray_start)
            print(f"{name:<34} {g:>5} {t:>8.1f} {a.instances / t:>10,.0f} {one / (g * t):>10.0%}")


if __name__ == "__main__":
    main()
