#!/usr/bin/env python3
"""How long a fresh process takes to reach a usable GPU: CuPy's import and the CUDA context one after the
other, against the context made on a thread (runtime/cuda_driver.py warm_context) while CuPy is imported;
then whole gpu-run processes of one instance, which pay the same start.

    python3 bench/cuda_start.py [--rounds 3] [--module examples/fib.wasm]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each prints the seconds from its first statement to a context CuPy can use (a 4-byte allocation made).
SEQUENTIAL = """
import time; t = time.perf_counter()
import cupy
cupy.zeros(1, dtype=cupy.int32)
print(time.perf_counter() - t)
"""
OVERLAPPED = """
import time; t = time.perf_counter()
from wasmgpu.runtime.cuda_driver import context_warmed, warm_context
warm_context()
import cupy
context_warmed()
cupy.zeros(1, dtype=cupy.int32)
print(time.perf_counter() - t)
"""


def timed(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--module", default=str(ROOT / "examples" / "fib.wasm"))
    args = p.parse_args()
    timed(SEQUENTIAL)  # the first process after boot also reads the libraries from disk
    for label, code in (("import, then context", SEQUENTIAL), ("context on a thread", OVERLAPPED)) * args.rounds:
        print(f"{label:22s} {timed(code):.3f} s")
    for _ in range(args.rounds):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--backend", "cuda", args.module], cwd=ROOT,
                       capture_output=True, check=True)
        print(f"gpu-run, one instance   {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
