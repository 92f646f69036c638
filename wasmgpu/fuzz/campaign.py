"""A fuzzing campaign: modules generated (or read from a corpus), compared in worker processes.

Each worker keeps one engine for all its modules. The parent knows which module every worker is on, so a
worker that dies (a crash in the engine) or overruns the time limit is replaced and its module reported.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import generate, oracle
from .compare import INCONCLUSIVE, INVALID, MISMATCH, PASS, UNSUPPORTED, Outcome

BACKENDS = ("cpu", "cpu-interleaved", "cuda")
TIERS = ("interp", "compiled")


@dataclass
class Settings:
    backend: str = "cpu"
    tier: str = "interp"
    instances: int = 2
    fuel: int = 1_000_000
    seed: int = 0
    corpus: list[Path] = field(default_factory=list)
    mutate: bool = False  # damage each generated module a little: the decoders and validators compared
    extra: tuple[str, ...] = ()  # generate.OPTIONAL features to generate too


@dataclass
class Result:
    index: int
    name: str
    outcome: Outcome
    wasm: bytes | None = None  # kept for a mismatch, or for --save-corpus
    refs: bool = False  # generated with reference types


def make_engine(backend: str, memory_layout: str | None = None) -> Any:
    """The engine a campaign (or a test of it) checks: the proposals the oracle takes too."""
    from ..runtime.backends import CpuBackend, make_backend
    from ..runtime.engine import Engine

    # One thread per worker: the workers are the parallelism.
    if backend == "cpu":
        return Engine(CpuBackend(threads=1), features=oracle.FEATURES)
    if backend == "cpu-interleaved":
        return Engine(CpuBackend(threads=1, interleaved=True), features=oracle.FEATURES)
    return Engine(make_backend(backend, memory_layout), features=oracle.FEATURES)


def module_wasm(s: Settings, index: int) -> tuple[str, list[bytes]]:
    """The name of module `index` and its candidate binaries (see generate.candidates)."""
    if s.corpus:
        path = s.corpus[index]
        return path.stem, [path.read_bytes()]
    cands = generate.candidates(s.seed, index, s.extra)
    if s.mutate and cands:
        return f"s{s.seed}-{index}-m", [generate.mutate(cands[-1], s.seed, index)]
    return f"s{s.seed}-{index}", cands


def check_module(engine: Any, s: Settings, index: int) -> Result:
    from .compare import run_module

    name, cands = module_wasm(s, index)
    if not cands:
        return Result(index, name, Outcome(INVALID, "wasm-opt failed", "generator"))
    out = None
    for j, wasm in enumerate(cands):
        out = run_module(engine, wasm, instances=s.instances, fuel=s.fuel, tier=s.tier)
        # A generated module wasmtime refuses (and we do too) is made again without reference types.
        if out.status != INVALID or j == len(cands) - 1:
            return Result(index, name, out, wasm, refs=not s.corpus and j == 0 and len(cands) > 1)
    assert out is not None
    return Result(index, name, out)


def _worker(wid: int, s: Settings, tasks: Any, results: Any, keep_all: bool, build_cache: str | None) -> None:
    engine = make_engine(s.backend)
    if build_cache is not None:
        # Each module's compiled code is built once and never again: keep those builds out of the user's
        # cache (the interpreter, loaded above, comes from there).
        os.environ["WASMGPU_CACHE"] = build_cache
    done = 0
    while True:
        index = tasks.get()
        if index is None:
            return
        done += 1
        if build_cache is not None and done % 100 == 0:
            engine = make_engine(s.backend)  # the backend holds every library it built: let them go
        results.put(("start", wid, index, None))
        try:
            r = check_module(engine, s, index)
        except Exception as e:  # a bug in the harness or the engine: reported, and the campaign goes on
            r = Result(index, f"#{index}", Outcome(MISMATCH, f"exception {type(e).__name__}: {e}",
                                                   f"exception:{type(e).__name__}"))
        if r.outcome.status != MISMATCH and not keep_all:
            r.wasm = None
        results.put(("done", wid, index, r))


class Campaign:
    def __init__(self, s: Settings, jobs: int, count: int | None, hours: float | None, out: Path | None,
                 save_corpus: Path | None, timeout: float, verbose: bool) -> None:
        self.s, self.jobs, self.count, self.out, self.save = s, jobs, count, out, save_corpus
        self.deadline = time.monotonic() + hours * 3600 if hours else None
        self.timeout, self.verbose = timeout, verbose
        self.counts: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.unsupported: Counter[str] = Counter()
        self.inconclusive: Counter[str] = Counter()  # why: fuel, stack, timeout, harness
        self.refs = 0
        self.calls = 0

    def _more(self, issued: int) -> bool:
        if self.deadline is not None:
            return time.monotonic() < self.deadline and (self.count is None or issued < self.count)
        return issued < (self.count or 0)

    def run(self) -> int:
        # A forked child cannot use a CUDA context its parent made: workers on the GPU start afresh.
        ctx = mp.get_context("fork" if sys.platform != "win32" and self.s.backend != "cuda" else "spawn")
        tasks, results = ctx.Queue(), ctx.Queue()
        keep_all = self.save is not None
        build_cache = tempfile.mkdtemp(prefix="wasmgpu-fuzz-") if self.s.tier == "compiled" else None
        try:
            return self._run(ctx, tasks, results, keep_all, build_cache)
        finally:
            if build_cache is not None:
                shutil.rmtree(build_cache, ignore_errors=True)

    def _run(self, ctx: Any, tasks: Any, results: Any, keep_all: bool, build_cache: str | None) -> int:
        workers: dict[int, Any] = {}
        current: dict[int, tuple[int, float]] = {}  # worker -> (module, started)

        def spawn(wid: int) -> None:
            p = ctx.Process(target=_worker, args=(wid, self.s, tasks, results, keep_all, build_cache), daemon=True)
            p.start()
            workers[wid] = p

        for w in range(self.jobs):
            spawn(w)
        issued = done = 0
        t0 = time.monotonic()
        last_report = t0
        # Keep a few modules queued per worker, no more: long mode stops issuing at its deadline.
        while True:
            while self._more(issued) and issued - done < 2 * self.jobs:
                tasks.put(issued)
                issued += 1
            if done >= issued and not self._more(issued):
                break
            try:
                kind, wid, index, r = results.get(timeout=1.0)
            except queue.Empty:
                kind = None
            if kind == "start":
                current[wid] = (index, time.monotonic())
            elif kind == "done":
                current.pop(wid, None)
                self.record(r)
                done += 1
            now = time.monotonic()
            for wid, p in list(workers.items()):
                task = current.get(wid)
                overdue = task is not None and now - task[1] > self.timeout
                if p.is_alive() and not overdue:
                    continue
                if overdue:
                    p.kill()
                p.join()
                if task is not None:
                    current.pop(wid)
                    self.record(self._lost(task[0], "timeout" if overdue else f"worker died ({p.exitcode})"))
                    done += 1
                spawn(wid)
            if self.verbose and now - last_report > 30:
                last_report = now
                print(f"[{now - t0:.0f}s] {self.summary(done)}", file=sys.stderr, flush=True)
        for _ in workers:
            tasks.put(None)
        for p in workers.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        elapsed = time.monotonic() - t0
        self.report(done, elapsed)
        return 1 if self.counts[MISMATCH] else 0

    def _lost(self, index: int, why: str) -> Result:
        name, cands = module_wasm(self.s, index)
        wasm = cands[-1] if cands else None
        if why == "timeout":
            return Result(index, name, Outcome(INCONCLUSIVE, f"over the time limit ({self.timeout:.0f} s)",
                                               "timeout"), wasm)
        return Result(index, name, Outcome(MISMATCH, f"the engine crashed: {why}", "crash"), wasm)

    def record(self, r: Result) -> None:
        o = r.outcome
        self.counts[o.status] += 1
        self.refs += r.refs
        self.calls += o.calls
        if o.status == UNSUPPORTED:
            self.unsupported[o.detail[:80]] += 1
        if o.status == INCONCLUSIVE:
            self.inconclusive[o.key] += 1
        if o.status == MISMATCH or (o.status == INCONCLUSIVE and o.key == "timeout"):
            self.keys[o.key] += 1
            self.examples.setdefault(o.key, f"{r.name}: {o.detail}")
            if self.out is not None and r.wasm is not None:
                self.write_case(r)
            if self.verbose:
                print(f"{o.status.upper()} {r.name}: {o.detail}", file=sys.stderr, flush=True)
        if self.save is not None and r.wasm is not None:
            self.save.mkdir(parents=True, exist_ok=True)
            (self.save / f"{r.name}.wasm").write_bytes(r.wasm)

    def write_case(self, r: Result) -> None:
        assert self.out is not None and r.wasm is not None
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{r.name}.wasm").write_bytes(r.wasm)
        wat = generate.wasm2wat(r.wasm)
        if wat is not None:
            (self.out / f"{r.name}.wat").write_text(wat)
        s = self.s
        (self.out / f"{r.name}.txt").write_text(
            f"{r.outcome.status}: {r.outcome.key}\n{r.outcome.detail}\n\n"
            f"backend {s.backend}, tier {s.tier}, {s.instances} instances, fuel {s.fuel}\n"
            f"again: python3 -m wasmgpu.fuzz --corpus {self.out / (r.name + '.wasm')} --backend {s.backend} "
            f"--tier {s.tier} --instances {s.instances}\n")

    def summary(self, n: int) -> str:
        def part(label: str, status: str) -> str:
            c = self.counts[status]
            return f"{label} {c} ({100 * c / max(n, 1):.2f}%)"
        text = (f"modules {n}, {part('passed', PASS)}, {part('mismatched', MISMATCH)}, "
                f"{part('inconclusive', INCONCLUSIVE)}, {part('unsupported', UNSUPPORTED)}")
        if self.counts[INVALID]:
            text += f", {part('invalid', INVALID)}"
        return text

    def report(self, n: int, elapsed: float) -> None:
        s = self.s
        print(f"backend {s.backend}, tier {s.tier}, {s.instances} instances, {self.calls} export calls compared, "
              f"{self.refs} modules with reference types, {elapsed:.0f} s")
        for key, c in self.keys.most_common():
            print(f"  {c} x {key}: {self.examples[key][:400]}")
        if self.inconclusive:
            print("  inconclusive: " + ", ".join(f"{c} {why}" for why, c in self.inconclusive.most_common()))
        for why, c in self.unsupported.most_common():
            print(f"  unsupported {c} x: {why}")
        if self.counts[UNSUPPORTED]:
            print(f"  note: {self.counts[UNSUPPORTED]} modules use features the engine does not support; "
                  "they are not counted as passes")
        print(self.summary(n))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m wasmgpu.fuzz",
                                description="Differential fuzzing of wasmgpu against wasmtime with binaryen's "
                                            "random modules (wasm-opt -ttf).")
    p.add_argument("--count", type=int, default=None, help="modules to run (default 100; with --hours: no limit)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed: module i comes from bytes seeded by (S, i)")
    p.add_argument("--hours", type=float, default=None, help="long mode: run until this many hours have passed")
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--tier", choices=TIERS, default="interp")
    p.add_argument("--instances", type=int, default=2, help="instances per module, all given the same inputs")
    p.add_argument("--fuel", type=int, default=1_000_000, help="fuel per export call on both engines")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one module may take")
    p.add_argument("--out", type=Path, default=None, help="write mismatches here (.wasm, .wat, .txt)")
    p.add_argument("--save-corpus", type=Path, default=None, help="write every module run here")
    p.add_argument("--corpus", type=Path, nargs="+", default=None,
                   help="run these .wasm files (or folders of them) instead of generating")
    p.add_argument("--mutate", action="store_true",
                   help="change a few bytes of each generated module: compares what each engine accepts")
    for name in generate.OPTIONAL:
        p.add_argument(f"--{name}", action="store_true", help=f"generate modules with {name} instructions too")
    p.add_argument("-v", "--verbose", action="store_true", help="print mismatches and progress as they come")
    a = p.parse_args(argv)
    for name in ("count", "instances", "fuel", "jobs"):
        v = getattr(a, name)
        if v is not None and v < (0 if name == "count" else 1):
            p.error(f"--{name} must be at least {0 if name == 'count' else 1}")
    if a.hours is not None and a.hours <= 0:
        p.error("--hours must be positive")
    if a.timeout <= 0:
        p.error("--timeout must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if not oracle.available():
        print("wasmgpu.fuzz: wasmtime is not installed (python3 -m pip install wasmtime)", file=sys.stderr)
        return 2
    s = Settings(a.backend, a.tier, a.instances, a.fuel, a.seed, mutate=a.mutate,
                 extra=tuple(f for f in generate.OPTIONAL if getattr(a, f)))
    count = a.count
    if a.corpus:
        files: list[Path] = []
        for path in a.corpus:
            if path.is_dir():
                files += sorted(path.glob("*.wasm"))
            elif path.is_file():
                files.append(path)
            else:
                print(f"wasmgpu.fuzz: no such file or folder: {path}", file=sys.stderr)
                return 2
        if not files:
            print("wasmgpu.fuzz: the corpus has no .wasm files", file=sys.stderr)
            return 2
        s.corpus = files
        count = len(files) if count is None else min(count, len(files))
        hours = None
    else:
        if generate.wasm_opt() is None:
            print("wasmgpu.fuzz: wasm-opt (binaryen) is not on PATH; install binaryen, or run a saved corpus "
                  "with --corpus", file=sys.stderr)
            return 2
        hours = a.hours
        if count is None and hours is None:
            count = 100
    if a.backend == "cuda":
        try:
            from ..runtime.backends import cuda_available
            if not cuda_available():
                print("wasmgpu.fuzz: no CUDA device here (--backend cuda)", file=sys.stderr)
                return 2
        except ImportError:
            pass
    return Campaign(s, a.jobs, count, hours, a.out, a.save_corpus, a.timeout, a.verbose).run()
