"""How fast this host's file system creates small files: one process or several, into one directory or
each into its own, as gpu-run's --out (one directory) and a guest's own files (a directory per
instance) do. Each process creates its share of `--files` files (open O_CREAT|O_TRUNC, one small write,
close); the aggregate rate is printed per scenario.

    python3 bench/fs_create.py [--files 200000] [--dir /tmp] [--procs 1,4,8,16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time


def _make(task: tuple[str, int, int, bool]) -> float:
    root, lo, hi, own_dirs = task
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    started = time.perf_counter()
    for i in range(lo, hi):
        if own_dirs:
            os.mkdir(f"{root}/{i}")
            path = f"{root}/{i}/out.txt"
        else:
            path = f"{root}/{i}.stdout"
        fd = os.open(path, flags, 0o666)
        os.write(fd, b"Found 70 unique chars\n")
        os.close(fd)
    return time.perf_counter() - started


def scenario(root: str, files: int, procs: int, own_dirs: bool) -> float:
    os.sync()  # what the scenario before wrote is on disk first
    tasks = [(root, files * k // procs, files * (k + 1) // procs, own_dirs) for k in range(procs)]
    started = time.perf_counter()
    if procs == 1:
        _make(tasks[0])
    else:
        with mp.get_context("fork").Pool(procs) as pool:
            pool.map(_make, tasks)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=200_000)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--procs", default="1,4,8,16")
    p.add_argument("--rounds", type=int, default=2, help="each scenario this many times, in turn with the others")
    a = p.parse_args()
    # Nothing is deleted until the end: deleting many files makes the file system slower for a while
    # (discards, the journal), which would count against whichever scenario came next.
    roots = []
    try:
        for rnd in range(a.rounds):
            for own in (False, True):
                for procs in (int(x) for x in a.procs.split(",")):
                    roots.append(tempfile.mkdtemp(dir=a.dir, prefix="fs-create-"))
                    wall = scenario(roots[-1], a.files, procs, own)
                    where = "a directory each (mkdir + file)" if own else "one directory"
                    print(f"round {rnd + 1}: {a.files} files, {procs:2d} processes, {where}: {wall:.2f} s, "
                          f"{a.files / wall / 1000:.1f}k files/s", flush=True)
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
