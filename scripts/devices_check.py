#!/usr/bin/env python3
"""On a GPU machine: the charcount example as a batch over every GPU (`--devices all`) gives the outputs of
one process on one GPU, byte for byte; the API's Engine(device=k) runs on GPU k and refuses one that is not
there. Prints both wall times and what -v says per GPU.

    python3 scripts/devices_check.py [WORKDIR] [--instances N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wasmgpu.errors import WasmGpuError  # noqa: E402
from wasmgpu.runtime.backends import cuda_device_count  # noqa: E402
from wasmgpu.runtime.engine import Engine, Module  # noqa: E402

WASM = REPO / "examples" / "charcount" / "charcount.wasm"


def outputs(root: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in root.iterdir() if p.name != "results.jsonl"}
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_time")
        row.pop("fuel_used")  # the program's HashMap is seeded from random_get: its work varies by run
    files["results"] = json.dumps(rows).encode()
    return files


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workdir", nargs="?", type=Path, default=None)
    p.add_argument("--instances", type=int, default=4000)
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="wasmgpu-devices-"))
    shutil.rmtree(work, ignore_errors=True)
    for i in range(args.instances):
        (work / "in" / str(i)).mkdir(parents=True)
        (work / "in" / str(i) / "input.txt").write_text(f"instance {i} " * (1 + i % 50))
    gpus = cuda_device_count()
    print(f"GPUs: {gpus}")
    runs = {}
    for name, extra in (("one", ["--workers", "1"]), ("all", ["--devices", "all", "--workers", str(2 * gpus)])):
        cmd = [sys.executable, "-m", "wasmgpu.cli", "-v", "--backend", "cuda", "-n", str(args.instances), "--dir",
               f"{work}/in/{{i}}::.", "--out", str(work / name), *extra, str(WASM), "input.txt"]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        runs[name] = time.perf_counter() - t
        print(f"{' '.join(extra)}: exit {r.returncode}, {runs[name]:.2f} s")
        print("  " + "\n  ".join(line for line in r.stderr.splitlines() if "cache" not in line))
        if r.returncode != 0:
            return 1
    same = outputs(work / "one") == outputs(work / "all")
    print(f"outputs of --devices all {'match' if same else 'DIFFER FROM'} one process's")
    engine = Engine("cuda", device=0)
    batch = Module(engine, '(module (func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))'
                   ).instantiate(5)
    got = [r.values for r in batch.call("f", [(i,) for i in range(5)])]
    print(f"Engine('cuda', device=0): {got}")
    same = same and got == [(3 * i,) for i in range(5)]
    try:
        Engine("cuda", device=gpus)
        print(f"Engine('cuda', device={gpus}) was NOT refused")
        same = False
    except WasmGpuError as e:
        print(f"Engine('cuda', device={gpus}) refused: {e}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
