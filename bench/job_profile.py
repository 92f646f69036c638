#!/usr/bin/env python3
"""Where one whole job's time goes: makes a program's inputs as bench/jobs.py does, then runs gpu-run
on them with -v (the step times), once per worker count asked, and once under cProfile in one process.

    python3 bench/job_profile.py PROGRAM N [--backend cuda] [--workers 1,2] [--profile] [--top 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jobs  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("program", choices=sorted(jobs.PROGRAMS))
    p.add_argument("n", type=int)
    p.add_argument("--backend", default="cuda")
    p.add_argument("--workers", default="", help="comma-separated worker counts to time (default: gpu-run's own)")
    p.add_argument("--profile", action="store_true", help="also one run in one process under cProfile")
    p.add_argument("--profile-workers", type=int, default=0, metavar="W",
                   help="also one run in W worker processes, each under cProfile; their statistics merged")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--jsonl", action="store_true",
                   help="outputs to one --out-jsonl file, and the inputs made once (for programs that write only to "
                        "stdout): no run follows another's removal of 100,000s of files, which slows the file system")
    p.add_argument("--variant", action="append", default=[], metavar="'LABEL: [VAR=VALUE ...] [ARG ...]'",
                   help="also time each worker count with these environment variables and gpu-run arguments "
                        "(repeatable; the same inputs)")
    args = p.parse_args()
    variants = [("", {}, [])]
    for v in args.variant:
        label, _, rest = v.partition(":")
        words = rest.split()
        env = dict(w.split("=", 1) for w in words if "=" in w and w.split("=", 1)[0].isupper())
        variants.append((label.strip(), env, [w for w in words if w.split("=", 1)[0] not in env]))
    program = jobs.PROGRAMS[args.program]
    work = Path(tempfile.mkdtemp(prefix="wasmgpu-profile-"))
    try:
        root = work / "in"

        def fresh_inputs() -> None:
            """Every run starts from new inputs: some programs write into their directories (c_files' mkdir
            would fail on a second run)."""
            shutil.rmtree(root, ignore_errors=True)
            with multiprocessing.Pool(os.cpu_count()) as pool:
                jobs.generate_inputs(pool, program.name, root, args.n, os.cpu_count() or 1)

        stdin = work / "stdin.txt"
        stdin.write_bytes(jobs.stdin_text() if program.stdin else b"")
        base = jobs.gpu_run_cmd(program, args.backend, args.n, root, work / "out", None)
        if args.jsonl:
            at = base.index("--out")
            base[at:at + 2] = ["--out-jsonl", str(work / "out.jsonl")]
            fresh_inputs()
        counts = [w for w in args.workers.split(",") if w] or [""]
        for label, env, extra in variants:
            for w in counts:
                if not args.jsonl:
                    fresh_inputs()
                shutil.rmtree(work / "out", ignore_errors=True)
                cmd = base[:3] + ["-v"] + (["--workers", w] if w else []) + extra + base[3:]
                t = time.perf_counter()
                with stdin.open("rb") as f:
                    r = subprocess.run(cmd, stdin=f, capture_output=True, text=True, env={**os.environ, **env})
                print(f"{label + ', ' if label else ''}workers {w or 'default'}: {time.perf_counter() - t:.2f} s, "
                      f"exit {r.returncode}")
                print("  " + "\n  ".join(r.stderr.strip().splitlines()[-6:]))
        if args.profile_workers:
            fresh_inputs()
            shutil.rmtree(work / "out", ignore_errors=True)
            where = work / "worker-profiles"
            where.mkdir()
            cmd = base[:3] + ["-v", "--workers", str(args.profile_workers)] + base[3:]
            t = time.perf_counter()
            with stdin.open("rb") as f:
                r = subprocess.run(cmd, stdin=f, capture_output=True, text=True,
                                   env={**os.environ, "WASMGPU_PROFILE_DIR": str(where)})
            took = time.perf_counter() - t
            print(f"{args.profile_workers} workers under cProfile: {took:.2f} s, exit {r.returncode}")
            print("  " + "\n  ".join(r.stderr.strip().splitlines()[-3:]))
            files = sorted(str(f) for f in where.iterdir())
            if files:
                stats = pstats.Stats(*files)
                print(f"the {len(files)} workers' statistics, summed")
                stats.sort_stats("cumulative").print_stats(args.top)
                stats.sort_stats("tottime").print_stats(args.top)
        if args.profile:
            fresh_inputs()
            shutil.rmtree(work / "out", ignore_errors=True)
            prof = work / "prof"
            cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "wasmgpu.cli", "--workers", "1",
                   *base[3:]]
            t = time.perf_counter()
            with stdin.open("rb") as f:
                subprocess.run(cmd, stdin=f, capture_output=True)
            print(f"under cProfile, 1 process: {time.perf_counter() - t:.2f} s")
            stats = pstats.Stats(str(prof))
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
