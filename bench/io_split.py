"""How much of a whole job (bench/jobs.py) its files cost: gpu-run on one program at N instances with
inputs per instance (`--dir ROOT/{i}::.`, as jobs.py) or one input directory shared by all, and outputs
as two files per instance (`--out`) or one JSONL file (`--out-jsonl`): the four wall times, and -v's parts.

    python3 bench/io_split.py [--program charcount] [--instances 100000] [--backend cuda] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jobs  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--program", default="charcount", choices=sorted(jobs.PROGRAMS))
    p.add_argument("--instances", type=int, default=100000)
    p.add_argument("--backend", default="cuda")
    p.add_argument("--workdir", type=Path, default=None)
    a = p.parse_args()
    prog = jobs.PROGRAMS[a.program]
    work = Path(tempfile.mkdtemp(prefix="io-split-", dir=a.workdir))
    try:
        with multiprocessing.Pool(os.cpu_count()) as pool:
            jobs.generate_inputs(pool, prog.name, work / "in", a.instances, os.cpu_count() or 1)
        shared = work / "in" / "0"
        subprocess.run(["sync"], check=False)
        print(f"{prog.name} at {a.instances:,} on {a.backend}:")
        for inputs in ("per instance", "shared"):
            for outputs in ("--out", "--out-jsonl"):
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                target = str(out / "all.jsonl") if outputs == "--out-jsonl" else str(out)
                out.mkdir()
                where = f"{work / 'in'}/{{i}}::." if inputs == "per instance" else f"{shared}::."
                cmd = [sys.executable, "-m", "wasmgpu.cli", "-v", "--backend", a.backend, "-n", str(a.instances),
                       "--dir", where, outputs, target, str(prog.wasm), *prog.args]
                t = time.monotonic()
                done = subprocess.run(cmd, capture_output=True, text=True)
                wall = time.monotonic() - t
                parts = [line for line in done.stderr.splitlines() if "parts:" in line]
                print(f"  inputs {inputs:12} {outputs:11} {wall:7.2f} s  exit {done.returncode}  "
                      f"{parts[-1].split('parts: ')[1] if parts else done.stderr[-300:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
