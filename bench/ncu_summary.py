#!/usr/bin/env python3
"""Sum the Nsight Compute CSVs of scripts/ncu_pair.sh over each run's kernels and print them side by side.

    python3 bench/ncu_summary.py DIR [NAME ...]   (DIR holds ncu-NAME-ours.csv and ncu-NAME-native.csv)

Counters are summed over the profiled kernels, ratios (stalls, percentages, warps per cycle) averaged
weighted by each kernel's time. "Lanes per warp instruction" is thread instructions over warp instructions:
32 when every lane of every warp runs every instruction.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def kernels(path: Path) -> list[dict[str, float]]:
    """One dict per profiled kernel: metric name -> value."""
    rows = list(csv.reader(path.read_text(errors="replace").splitlines()))
    head = next((k for k, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None:
        return []
    names = rows[head]
    out = []
    for r in rows[head + 2:]:  # the row after the names holds the units
        if len(r) != len(names):
            continue
        vals = {}
        for name, v in zip(names, r, strict=True):
            try:
                vals[name] = float(v.replace(",", ""))
            except ValueError:
                pass
        out.append(vals)
    return out


def summary(ks: list[dict[str, float]]) -> dict[str, float]:
    total_t = sum(k.get("gpu__time_duration.sum", 0.0) for k in ks) or 1.0
    out: dict[str, float] = {}
    for name in sorted({n for k in ks for n in k}):
        if "__" not in name:
            continue
        if name.endswith(".sum") and "pct" not in name and "per_" not in name:
            out[name] = sum(k.get(name, 0.0) for k in ks)
        else:
            out[name] = sum(k.get(name, 0.0) * k.get("gpu__time_duration.sum", 0.0) for k in ks) / total_t
    inst = out.get("smsp__inst_executed.sum", 0.0)
    if inst:
        out["lanes per warp instruction"] = out.get("smsp__thread_inst_executed.sum", 0.0) / inst
    return out


def main() -> None:
    d = Path(sys.argv[1])
    names = sys.argv[2:] or sorted({p.name.split("-")[1] for p in d.glob("ncu-*-ours.csv")})
    for name in names:
        ours, native = (kernels(d / f"ncu-{name}-{side}.csv") for side in ("ours", "native"))
        a, b = summary(ours), summary(native)
        print(f"=== {name}: kernels {len(ours)} ours / {len(native)} native")
        for m in sorted(set(a) | set(b)):
            x, y = a.get(m), b.get(m)
            short = m.replace("smsp__average_warps_issue_stalled_", "stall ").replace("_per_issue_active.ratio", "")
            fx = f"{x:.4g}" if x is not None else "-"
            fy = f"{y:.4g}" if y is not None else "-"
            print(f"  {short:52s} {fx:>12s} {fy:>12s}")


if __name__ == "__main__":
    main()
