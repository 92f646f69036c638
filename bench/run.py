#!/usr/bin/env python3
"""wasmgpu benchmarks: aggregate instances per second, side by side.

    python3 bench/run.py [--instances N] [--only NAME[,NAME]] [--json FILE]
                         [--backends cuda,cpu,wasmtime,native]

For every program in bench/wasm/ (each exports `run(seed: i32) -> i64`, a checksum), and for each backend:

  cuda      wasmgpu on the GPU: N instances in one batch (default 135168: 1024 threads x 132 SMs)
  cpu       wasmgpu's CPU backend on all cores (N sized so one run takes about --cpu-seconds, at most
            --cpu-instances)
  wasmtime  wasmtime (PyPI) on all cores: one process per core, each compiles the module once and
            calls run(seed) for its share of the seeds (N sized like the CPU backend's)
  native    the C program compiled natively for CUDA (bench/native/NAME.cu), one instance per thread

Instance i runs run(i). Each measurement: a warm-up run at the measured N, then the best of --repeat
timed runs (fewer once their total passes --budget seconds). Rates are instances per second, so
backends measured at different N compare. Every backend's checksums are compared on the seeds it
shares with the others. Also reported: translation time (engine.load + first instantiate), the first
call, launch overhead (a trivial call over N instances), and device memory per instance from the
store's arrays. Exit status 1 when any result disagrees or a requested backend fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
ALL_BACKENDS = ("cuda", "cpu", "wasmtime", "native")
# Store options for big batches: the programs need far less (measured: at most 256 slots, depth 32).
STORE_OPTIONS = {"stack_slots": 1024, "max_depth": 256}
# The longest wait for builds a warm-up run started in the background, before the timed runs.
BUILD_WAIT_S = 300.0
STORE_OVERRIDES: dict[str, dict[str, int]] = {}
MASK64 = (1 << 64) - 1

# (module (memory 1) (func (export "run") (param i32) (result i64) (i64.const 0))), assembled by hand:
# the launch-overhead probe, the same signature as the benchmarks.
TRIVIAL_WASM = bytes.fromhex(
    "0061736d01000000"  # magic, version
    "01060160017f017e"  # type: (i32) -> i64
    "03020100"  # function 0: type 0
    "0503010001"  # memory: min 1 page
    "0707010372756e0000"  # export "run" = func 0
    "0a0601040042000b"  # code: i64.const 0; end
)


# --------------------------------------------------------------------------------------------------
# Benchmarks


@dataclass
class Benchmark:
    name: str
    wasm: Path
    source: Path | None
    native: Path | None  # the CUDA wrapper, for C programs

    @property
    def lang(self) -> str:
        return {".c": "C", ".rs": "Rust"}.get(self.source.suffix, "?") if self.source else "?"

    @property
    def summary(self) -> str:
        """The first line of the source's leading comment."""
        if self.source is None:
            return ""
        for line in self.source.read_text().splitlines():
            text = line.strip().lstrip("/*!").strip()
            if text:
                return text
        return ""

    def store_options(self, override: dict[str, int]) -> dict[str, int]:
        return {**STORE_OPTIONS, **STORE_OVERRIDES.get(self.name, {}), **override}


def discover() -> list[Benchmark]:
    out = []
    for wasm in sorted((BENCH_DIR / "wasm").glob("*.wasm")):
        name = wasm.stem
        source = next((p for p in (BENCH_DIR / "programs" / f"{name}{ext}" for ext in (".c", ".rs")) if p.exists()),
                      None)
        native = BENCH_DIR / "native" / f"{name}.cu"
        out.append(Benchmark(name, wasm, source, native if native.exists() else None))
    return out


# --------------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Measurement:
    backend: str
    n: int = 0
    times: list[float] = field(default_factory=list)
    first_call_s: float | None = None
    load_s: float | None = None
    instantiate_s: float | None = None
    compile_s: float | None = None  # wasmtime: module compile (slowest worker); native: nvcc / NVRTC
    memory: dict[str, float] | None = None
    results: np.ndarray | None = None  # uint64 checksum per seed 0..len-1
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    tier: str | None = None  # wasmgpu: the tier the store ran ("compiled" includes its build in translation)

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times else None

    @property
    def rate(self) -> float | None:
        return self.n / self.best if self.best else None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n, "instances_per_s": self.rate, "best_s": self.best,
                             "median_s": statistics.median(self.times) if self.times else None,
                             "times_s": self.times, "first_call_s": self.first_call_s}
        if self.load_s is not None:
            d["load_s"] = self.load_s
            d["instantiate_s"] = self.instantiate_s
            d["translate_s"] = self.load_s + (self.instantiate_s or 0.0)
        if self.compile_s is not None:
            d["compile_s"] = self.compile_s
        if self.tier is not None:
            d["tier"] = self.tier
        if self.memory is not None:
            d["bytes_per_instance"] = self.memory
        if self.results is not None:
            d["checksums_first"] = [f"{int(v):#018x}" for v in self.results[:4]]
        if self.error:
            d["error"] = self.error
            d["traceback"] = self.traceback
        if self.note:
            d["note"] = self.note
        return d


def timed_runs(once, repeat: int, budget: float) -> list[float]:
    """Up to `repeat` timed runs; stop early when the next would take the total past `budget`."""
    times: list[float] = []
    for i in range(repeat):
        if i and sum(times) + times[-1] > budget:
            break
        times.append(once())
    return times


def choose_cpu_n(per_instance_s: float, target_s: float, cap: int, workers: int, least: int) -> int:
    """N for a run of about target_s, a multiple of the workers, at least `least`, at most `cap`."""
    n = int(target_s / max(per_instance_s, 1e-9))
    n = max(least, n - n % workers)
    return max(1, min(cap, n))


def u64_array(values: list[int]) -> np.ndarray:
    return np.array([v & MASK64 for v in values], dtype=np.uint64)


def store_memory(store: Any) -> dict[str, float]:
    """Bytes per instance of the store's arrays: call stack slots, frames, linear memories (capacity),
    tables, and the other per-instance arrays (state, globals, sizes, ...)."""
    n = store.n

    def nbytes(a: Any) -> int:
        return int(getattr(a, "nbytes", 0) or 0)

    parts = {
        "slots": nbytes(getattr(store, "slots", None)),
        "frames": nbytes(getattr(store, "frames", None)),
        "memories": sum(nbytes(m.data.data) for m in getattr(store, "mems", [])),
        "tables": sum(nbytes(t.data) for t in getattr(store, "tables", [])),
    }
    other = 0
    for key, val in vars(store).items():
        shape = getattr(val, "shape", None)
        if key in ("slots", "frames", "code", "code_offsets") or not isinstance(shape, tuple):
            continue
        if n in shape:
            other += nbytes(val)
    parts["other"] = other
    out = {k: v / n for k, v in parts.items()}
    out["total"] = sum(parts.values()) / n
    out["memory_pages"] = max((nbytes(m.data.data) // n // 65536 for m in getattr(store, "mems", [])), default=0)
    return out


class WasmgpuRunner:
    """wasmgpu on one backend (cuda or cpu)."""

    def __init__(self, backend: str, workers: int, memory_layout: str | None = None) -> None:
        from wasmgpu.runtime.engine import Engine

        t = time.perf_counter()
        if backend == "cpu":
            from wasmgpu.runtime.backends import CpuBackend

            self.engine = Engine(CpuBackend(threads=workers))
        else:
            self.engine = Engine(backend, memory_layout)
        self.startup_s = time.perf_counter() - t
        self.name = backend
        self.workers = workers
        self.is_gpu = backend == "cuda"

    def sync(self) -> None:
        if self.is_gpu:
            self.engine.backend.xp.cuda.Device().synchronize()

    def release(self) -> None:
        if self.is_gpu:
            self.engine.backend.xp.get_default_memory_pool().free_all_blocks()

    def _instantiate(self, wasm: bytes, n: int, opts: dict[str, int]) -> tuple[Any, float, float]:
        t0 = time.perf_counter()
        module = self.engine.load(wasm)
        t1 = time.perf_counter()
        batch = module.instantiate(n, **opts)
        batch.store.prepare()  # a compiled tier builds here: counted as translation
        self.sync()
        return batch, t1 - t0, time.perf_counter() - t1

    def _call(self, batch: Any, args: list[tuple[int]]) -> tuple[float, list[Any]]:
        t = time.perf_counter()
        res = batch.call("run", args)
        self.sync()
        return time.perf_counter() - t, res

    @staticmethod
    def _checksums(res: list[Any]) -> np.ndarray:
        for i, r in enumerate(res):
            if r.trap is not None or not r.values:
                raise RuntimeError(f"seed {i}: {r.trap or f'exit {r.exit_code}'}"
                                   + (f" ({'; '.join(r.backtrace[:3])})" if r.backtrace else ""))
        return u64_array([r.values[0] for r in res])

    def measure(self, bench: Benchmark, n: int, opts: dict[str, int], repeat: int, budget: float,
                cpu_target: float | None = None) -> Measurement:
        m = Measurement(self.name)
        wasm = bench.wasm.read_bytes()
        if cpu_target is not None:  # size N by a calibration run (which also warms the code)
            # The CPU VM hands out instances in chunks of 16 (OpenMP dynamic): fill every thread.
            n_cal = min(n, 16 * self.workers)
            batch, _, _ = self._instantiate(wasm, n_cal, opts)
            for _ in range(2):  # the second call is the warm one
                dt, res = self._call(batch, [(s,) for s in range(n_cal)])
                self._checksums(res)
            batch = None
            n = choose_cpu_n(dt / n_cal, cpu_target, n, self.workers, 32 * self.workers)
        m.n = n
        args = [(s,) for s in range(n)]
        batch, m.load_s, m.instantiate_s = self._instantiate(wasm, n, opts)
        try:
            m.first_call_s, res = self._call(batch, args)
            m.results = self._checksums(res)
            m.tier = batch.store.tier_used
            if self.is_gpu:
                # A build the warm-up started in the background (the other memory layout's VM, under
                # --memory-layout auto) is what a user's next run would find done: the timed runs follow it.
                from wasmgpu.vm import background

                background.wait(BUILD_WAIT_S)

            def once() -> float:
                dt, res = self._call(batch, args)
                if not np.array_equal(self._checksums(res), m.results):
                    raise RuntimeError("checksums changed between runs of the same batch")
                return dt

            if m.first_call_s > budget:
                m.times = [m.first_call_s]
                m.note = "slow: only the warm-up run was timed (it took longer than --budget)"
            else:
                m.times = timed_runs(once, repeat, budget)
            m.memory = store_memory(batch.store)
        finally:
            batch = None  # free the store's arrays before the next benchmark
            self.release()
        return m

    def launch_overhead(self, n: int, repeat: int = 5) -> dict[str, float]:
        batch, load_s, inst_s = self._instantiate(TRIVIAL_WASM, n, dict(STORE_OPTIONS))
        args = [(s,) for s in range(n)]
        first, res = self._call(batch, args)
        self._checksums(res)
        times = [self._call(batch, args)[0] for _ in range(repeat)]
        mem = store_memory(batch.store)
        del batch
        self.release()
        return {"n": n, "best_s": min(times), "median_s": statistics.median(times), "first_call_s": first,
                "us_per_instance": min(times) / n * 1e6, "translate_s": load_s + inst_s,
                "bytes_per_instance": mem["total"]}


# -- wasmtime on every core: one process per core, fed through pipes --------------------------------


def _wasmtime_worker(conn: Any) -> None:
    import wasmtime

    engine = wasmtime.Engine()
    loaded: dict[str, tuple[Any, Any]] = {}
    while True:
        msg = conn.recv()
        try:
            if msg[0] == "stop":
                return
            if msg[0] == "load":
                t = time.perf_counter()
                module = wasmtime.Module(engine, msg[2])
                store = wasmtime.Store(engine)
                run = wasmtime.Instance(store, module, []).exports(store)["run"]
                loaded[msg[1]] = (store, run)
                conn.send(("ok", time.perf_counter() - t))
            elif msg[0] == "unload":
                loaded.pop(msg[1], None)
                conn.send(("ok", 0.0))
            elif msg[0] == "run":
                store, run = loaded[msg[1]]
                out = []
                for s in msg[2]:
                    out.append(run(store, s))
                conn.send(("ok", out))
        except Exception as e:  # a trap, a bad module: the parent reports it
            conn.send(("error", f"{type(e).__name__}: {e}"))


class WasmtimePool:
    name = "wasmtime"

    def __init__(self, workers: int) -> None:
        import wasmtime  # noqa: F401  (fail here, in the parent, when it is missing)

        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        t = time.perf_counter()
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_wasmtime_worker, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.workers = workers
        self._broadcast([("unload", "")] * workers)  # wait until every worker is up
        self.startup_s = time.perf_counter() - t

    def _broadcast(self, msgs: list[tuple]) -> list[Any]:
        for conn, msg in zip(self.conns, msgs, strict=True):
            conn.send(msg)
        replies = [conn.recv() for conn in self.conns]
        errors = [r[1] for r in replies if r[0] != "ok"]
        if errors:
            raise RuntimeError(errors[0])
        return [r[1] for r in replies]

    def load(self, key: str, wasm: bytes) -> float:
        return max(self._broadcast([("load", key, wasm)] * self.workers))

    def unload(self, key: str) -> None:
        self._broadcast([("unload", key)] * self.workers)

    def run(self, key: str, n: int) -> tuple[float, np.ndarray]:
        chunks = np.array_split(np.arange(n), self.workers)
        t = time.perf_counter()
        outs = self._broadcast([("run", key, c.tolist()) for c in chunks])
        dt = time.perf_counter() - t
        return dt, u64_array([v for out in outs for v in out])

    def measure(self, bench: Benchmark, cap: int, repeat: int, budget: float, cpu_target: float) -> Measurement:
        m = Measurement(self.name)
        key = str(bench.wasm)
        m.compile_s = self.load(key, bench.wasm.read_bytes())
        try:
            n_cal = min(cap, max(2 * self.workers, 8))
            for _ in range(2):  # the second run is the warm one
                dt, _ = self.run(key, n_cal)
            m.n = choose_cpu_n(dt / n_cal, cpu_target, cap, self.workers, 4 * self.workers)
            m.first_call_s, m.results = self.run(key, m.n)

            def once() -> float:
                dt, res = self.run(key, m.n)
                if not np.array_equal(res, m.results):
                    raise RuntimeError("checksums changed between runs")
                return dt

            m.times = timed_runs(once, repeat, budget)
        finally:
            self.unload(key)
        return m

    def launch_overhead(self, n: int, repeat: int = 5) -> dict[str, float]:
        self.load("trivial", TRIVIAL_WASM)
        first, _ = self.run("trivial", n)
        times = [self.run("trivial", n)[0] for _ in range(repeat)]
        self.unload("trivial")
        return {"n": n, "best_s": min(times), "median_s": statistics.median(times), "first_call_s": first,
                "us_per_instance": min(times) / n * 1e6}

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


# -- the C programs compiled natively for CUDA ------------------------------------------------------

NVCC_FLAGS = ["-O3", "-fmad=false", "-Xptxas", "-v"]  # no fused multiply-add: the wasm build has none
BLOCK = 128


def _inline_includes(path: Path, seen: set[Path] | None = None) -> str:
    """The source with its local #include "..." files pasted in (NVRTC gets one string)."""
    seen = set() if seen is None else seen
    out = []
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("#include \"") and s.endswith("\""):
            inc = (path.parent / s[len("#include \""):-1]).resolve()
            if inc not in seen:
                seen.add(inc)
                out.append(_inline_includes(inc, seen))
            continue
        out.append(line)
    return "\n".join(out)


def _ptxas_summary(log: str) -> str:
    """', R registers, F B stack frame' for bench_kernel, from `ptxas -v` output."""
    at = log.find("Function properties for bench_kernel")
    if at < 0:
        return ""
    part = log[at:]
    frame = part.split("\n", 2)[1].split(" bytes stack frame")[0].strip() if "\n" in part else "?"
    regs = part.split("Used ", 1)[1].split(" registers")[0] if "Used " in part else "?"
    return f", {regs} registers, {frame} B stack frame"


class NativeCuda:
    name = "native"

    def __init__(self) -> None:
        import cupy

        self.cp = cupy
        self.arch = cupy.cuda.Device().compute_capability
        self.nvcc = shutil.which("nvcc") or (shutil.which("nvcc", path="/usr/local/cuda/bin"))
        root = os.environ.get("WASMGPU_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wasmgpu")
        self.cache = Path(root) / "bench"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.how = ""

    def compile(self, bench: Benchmark) -> tuple[Any, float, str]:
        """(kernel, seconds, a note on the build: compiler, registers, stack frame)."""
        assert bench.native is not None
        source = _inline_includes(bench.native)
        t = time.perf_counter()
        if self.nvcc:
            flags = [f"-arch=sm_{self.arch}", *NVCC_FLAGS]
            version = subprocess.run([self.nvcc, "--version"], capture_output=True, text=True).stdout
            key = hashlib.sha256("\0".join([source, *flags, version]).encode()).hexdigest()[:16]
            cubin = self.cache / f"{bench.name}-{key}.cubin"
            log_path = cubin.with_suffix(".log")
            if not cubin.exists():
                tmp = cubin.with_suffix(f".{os.getpid()}.tmp")
                proc = subprocess.run([self.nvcc, "-cubin", *flags, str(bench.native), "-o", str(tmp)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"nvcc failed:\n{proc.stderr[-3000:]}")
                log_path.write_text(proc.stderr)
                os.replace(tmp, cubin)
            module = self.cp.RawModule(path=str(cubin))
            how = f"nvcc sm_{self.arch}" + _ptxas_summary(log_path.read_text() if log_path.exists() else "")
        else:
            module = self._nvrtc(source)
            how = f"NVRTC sm_{self.arch}"
        kernel = module.get_function("bench_kernel")
        return kernel, time.perf_counter() - t, how

    def _nvrtc(self, source: str) -> Any:
        from cupy.cuda import nvrtc

        options = ["--std=c++14", "--fmad=false", "--prec-div=true", "--prec-sqrt=true",
                   f"--gpu-architecture=sm_{self.arch}"]
        # NVRTC has no headers: declare the device memcpy / memset the bulk-memory program uses.
        decls = ("extern \"C\" __device__ void *memcpy(void *, const void *, unsigned long);\n"
                 "extern \"C\" __device__ void *memset(void *, int, unsigned long);\n")
        last = ""
        for src in (source, decls + source):
            prog = nvrtc.createProgram(src, "bench.cu", [], [])
            try:
                nvrtc.compileProgram(prog, options)
            except nvrtc.NVRTCError as e:
                last = f"{e}\n{nvrtc.getProgramLog(prog)}"
                continue
            cubin = nvrtc.getCUBIN(prog)
            nvrtc.destroyProgram(prog)
            path = self.cache / f"nvrtc-{hashlib.sha256(src.encode()).hexdigest()[:16]}.cubin"
            path.write_bytes(cubin)
            return self.cp.RawModule(path=str(path))
        raise RuntimeError(f"NVRTC failed: {last[-3000:]}")

    def _stack_limit(self, kernel: Any) -> int | None:
        """Recursive programs need call stack beyond the static frame: give every thread 8 KiB more.
        Returns the limit to restore afterwards (the driver reserves it for every resident thread)."""
        rt = self.cp.cuda.runtime
        limit_id = getattr(rt, "cudaLimitStackSize", 0)
        local = int(getattr(kernel, "local_size_bytes", 0) or 0)
        want = local + 8192
        old = rt.deviceGetLimit(limit_id)
        if old >= want:
            return None
        rt.deviceSetLimit(limit_id, want)
        return old

    def _restore_stack_limit(self, old: int | None) -> None:
        if old is not None:
            rt = self.cp.cuda.runtime
            rt.deviceSetLimit(getattr(rt, "cudaLimitStackSize", 0), old)

    def measure(self, bench: Benchmark, n: int, repeat: int, budget: float) -> Measurement:
        cp = self.cp
        m = Measurement(self.name, n=n)
        kernel, m.compile_s, how = self.compile(bench)
        m.note = how
        old_limit = self._stack_limit(kernel)
        try:
            return self._measure(kernel, m, n, repeat, budget)
        finally:
            self._restore_stack_limit(old_limit)
            cp.get_default_memory_pool().free_all_blocks()

    def _measure(self, kernel: Any, m: Measurement, n: int, repeat: int, budget: float) -> Measurement:
        cp = self.cp
        seeds = cp.arange(n, dtype=cp.int32)
        out = cp.empty(n, dtype=cp.int64)
        grid = ((n + BLOCK - 1) // BLOCK,)
        start, stop = cp.cuda.Event(), cp.cuda.Event()

        def launch() -> tuple[float, np.ndarray]:
            out.fill(0x5A5A5A5A5A5A5A5A)  # poison: every output must be written again
            start.record()
            kernel(grid, (BLOCK,), (seeds, out, np.int32(n)))
            stop.record()
            stop.synchronize()
            return cp.cuda.get_elapsed_time(start, stop) / 1e3, cp.asnumpy(out).view(np.uint64)

        t = time.perf_counter()
        launch()
        m.first_call_s = time.perf_counter() - t
        dt, m.results = launch()
        m.times.append(dt)
        # Cheap next to the interpreters: more runs than they get, for a steadier best, within the budget.
        for _ in range(max(repeat, 10) - 1):
            if sum(m.times) + m.times[-1] > budget:
                break
            dt, res = launch()
            if not np.array_equal(res, m.results):
                raise RuntimeError("checksums changed between launches")
            m.times.append(dt)
        return m


# --------------------------------------------------------------------------------------------------
# Reporting


def fmt_rate(r: float | None) -> str:
    if r is None:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if r >= div:
            return f"{r / div:.3g}{unit}"
    return f"{r:.3g}"


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    if s < 1:
        return f"{s * 1e3:.1f}ms"
    return f"{s:.2f}s"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    for div, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= div:
            return f"{b / div:.1f}{unit}"
    return f"{b:.0f}B"


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def ratio(a: Measurement | None, b: Measurement | None) -> float | None:
    if a is None or b is None or a.rate is None or b.rate is None:
        return None
    return a.rate / b.rate


RATIOS = (("cuda", "wasmtime"), ("cuda", "native"), ("cpu", "wasmtime"))


def geomeans(results: dict[str, dict[str, Measurement]]) -> dict[str, float | None]:
    out = {}
    for a, b in RATIOS:
        rs = [ratio(ms.get(a), ms.get(b)) for ms in results.values()]
        out[f"{a}/{b}"] = geomean([r for r in rs if r is not None])
    return out


def compare(ms: dict[str, Measurement]) -> tuple[bool, str]:
    """Every pair of backends on the seeds both ran: (all agree, a short verdict)."""
    have = [(k, m.results) for k, m in ms.items() if m.results is not None]
    problems = []
    compared = 0
    for i in range(len(have)):
        for j in range(i + 1, len(have)):
            (a, ra), (b, rb) = have[i], have[j]
            k = min(len(ra), len(rb))
            diff = np.nonzero(ra[:k] != rb[:k])[0]
            compared = max(compared, k)
            if len(diff):
                s = int(diff[0])
                problems.append(f"{a}!={b} on {len(diff)}/{k} seeds (seed {s}: {int(ra[s]):#x} vs {int(rb[s]):#x})")
    if problems:
        return False, "; ".join(problems)
    if len(have) < 2:
        return True, "only one backend" if have else "no results"
    return True, f"ok ({len(have)} backends, up to {compared} seeds)"


def print_report(benches: list[Benchmark], results: dict[str, dict[str, Measurement]], backends: list[str],
                 verdicts: dict[str, tuple[bool, str]], overhead: dict[str, Any], out: Any = sys.stdout) -> None:
    w = max([len(b.name) for b in benches] + [9])
    ratio_cols = [(a, b) for a, b in RATIOS if a in backends and b in backends]
    head = f"{'benchmark':<{w}} " + " ".join(f"{b + ' /s':>12}" for b in backends)
    head += " " + " ".join(f"{a + '/' + b:>14}" for a, b in ratio_cols) + "  results"
    print("\ninstances per second (N per backend in the JSON; best of the timed runs)", file=out)
    print(head, file=out)
    print("-" * len(head), file=out)
    for bench in benches:
        ms = results.get(bench.name, {})
        cells = []
        for b in backends:
            m = ms.get(b)
            cells.append(f"{'ERR' if m and m.error else (fmt_rate(m.rate) if m else '-'):>12}")
        rcells = []
        for a, b in ratio_cols:
            r = ratio(ms.get(a), ms.get(b))
            rcells.append(f"{(f'{r:.3g}' if r is not None else '-'):>14}")
        verdict = verdicts.get(bench.name, (True, ""))[1]
        print(f"{bench.name:<{w}} " + " ".join(cells) + " " + " ".join(rcells) + "  " + verdict, file=out)
    geo = geomeans(results)
    gcells = [f"{geo[f'{a}/{b}']:.3g}" if geo[f"{a}/{b}"] else "-" for a, b in ratio_cols]
    print(f"{'geomean':<{w}} " + " " * (13 * len(backends) - 1) + " " + " ".join(f"{c:>14}" for c in gcells),
          file=out)

    ours = [b for b in ("cuda", "cpu") if b in backends]
    if ours:
        print("\nwasmgpu per module: translation (engine.load + first instantiate at N, with the build of a "
              "compiled tier), first call, device bytes per instance (slots + frames + memories + other), tier",
              file=out)
        head2 = f"{'benchmark':<{w}} " + " ".join(
            f"{b + ' N':>8} {b + ' transl':>12} {b + ' 1st':>9} {b + ' B/inst':>12} {'tier':>8}" for b in ours)
        print(head2, file=out)
        print("-" * len(head2), file=out)
        for bench in benches:
            row = []
            for b in ours:
                m = results.get(bench.name, {}).get(b)
                if m is None or m.load_s is None:
                    row.append(f"{'-':>8} {'-':>12} {'-':>9} {'-':>12} {'-':>8}")
                    continue
                mem = m.memory or {}
                row.append(f"{m.n:>8} {fmt_s(m.load_s + (m.instantiate_s or 0)):>12} {fmt_s(m.first_call_s):>9} "
                           f"{fmt_bytes(mem.get('total')):>12} {m.tier or '-':>8}")
            print(f"{bench.name:<{w}} " + " ".join(row), file=out)
        for b in ours:
            mems = [results[x.name][b].memory for x in benches if b in results.get(x.name, {})
                    and results[x.name][b].memory]
            if mems:
                m0 = mems[0]
                print(f"  {b}: per instance slots {fmt_bytes(m0['slots'])}, frames {fmt_bytes(m0['frames'])}, "
                      f"memories {fmt_bytes(min(x['memories'] for x in mems))}.."
                      f"{fmt_bytes(max(x['memories'] for x in mems))}, other {fmt_bytes(m0['other'])}", file=out)
    if overhead:
        print("\nlaunch overhead (a trivial call over N instances, best of 5)", file=out)
        for b, o in overhead.items():
            if "error" in o:
                print(f"  {b:<9} ERROR {o['error']}", file=out)
            else:
                print(f"  {b:<9} N={o['n']:<7} {fmt_s(o['best_s']):>9} per call, {o['us_per_instance']:.3f} us "
                      "per instance", file=out)
    errors = [(bench, b, m.error) for bench, ms in results.items() for b, m in ms.items() if m.error]
    notes = [(bench, b, m.note) for bench, ms in results.items() for b, m in ms.items() if m.note and not m.error]
    if errors:
        print("\nerrors:", file=out)
        for bench, b, e in errors:
            print(f"  {bench} / {b}: {e}", file=out)
    if notes:
        print("\nnotes:", file=out)
        for bench, b, note in notes:
            print(f"  {bench} / {b}: {note}", file=out)


# --------------------------------------------------------------------------------------------------
# Driver


class Progress:
    def __init__(self, total: int) -> None:
        self.bar = None
        self.total = total
        self.done = 0
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=sys.stderr, unit="run", disable=None, dynamic_ncols=True)
            if self.bar.disable:
                self.bar = None
        except ImportError:
            pass

    def start(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_description(what)

    def step(self, line: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {line}", file=sys.stderr, flush=True)

    def log(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "cpu": platform.processor()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        info["wasmtime"] = version("wasmtime")
    except Exception:
        pass
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["gpu_sms"] = props.get("multiProcessorCount")
        info["cupy"] = cupy.__version__
    except Exception:
        pass
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--instances", "-n", type=int, default=135168,
                   help="instances per batch on the GPU backends; also caps the CPU backends' N (default 135168)")
    p.add_argument("--cpu-instances", type=int, default=8192, help="most instances for cpu and wasmtime (8192)")
    p.add_argument("--cpu-seconds", type=float, default=1.0,
                   help="size N on cpu and wasmtime so one timed run takes about this long (1.0)")
    p.add_argument("--only", default="", help="comma-separated benchmark names")
    p.add_argument("--backends", default=",".join(ALL_BACKENDS), help=f"subset of {','.join(ALL_BACKENDS)}")
    p.add_argument("--json", default="", help="write every figure to this file")
    p.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up; the best counts (3)")
    p.add_argument("--budget", type=float, default=30.0,
                   help="seconds of timed runs per benchmark and backend before stopping early (30)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="cores for wasmtime processes and the CPU backend's threads (all)")
    p.add_argument("--stack-slots", type=int, help="store option for every benchmark (default 1024)")
    p.add_argument("--max-depth", type=int, help="store option for every benchmark (default 256)")
    p.add_argument("--fuel-slice", type=int, help="store option: instructions per launch")
    p.add_argument("--memory-layout", choices=("interleaved", "contiguous", "auto"), default=None,
                   help="the cuda backend's linear memory layout (default: contiguous)")
    p.add_argument("--deadline", type=float, default=0.0,
                   help="seconds: start no measurement after this; the report covers what ran (0: none)")
    p.add_argument("--skip", default="", metavar="BACKEND:NAME[,...]",
                   help="measurements to leave out, as native:bulkmem (a native bulkmem run takes minutes)")
    p.add_argument("--no-overhead", action="store_true", help="skip the launch-overhead probe")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
    benches = discover()
    if args.list:
        for b in benches:
            print(f"{b.name:<12} {b.lang:<5} {'native' if b.native else '      '} {b.summary}")
        return 0
    if args.only:
        want = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = sorted(set(want) - {b.name for b in benches})
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(b.name for b in benches)})",
                  file=sys.stderr)
            return 2
        benches = [b for b in benches if b.name in want]
    backends = [x.strip() for x in args.backends.split(",") if x.strip()]
    bad = [b for b in backends if b not in ALL_BACKENDS]
    if bad or not backends:
        print(f"unknown backend(s): {', '.join(bad)} (expected some of {','.join(ALL_BACKENDS)})", file=sys.stderr)
        return 2
    override = {k: v for k, v in (("stack_slots", args.stack_slots), ("max_depth", args.max_depth),
                                  ("fuel_slice", args.fuel_slice)) if v is not None}
    cpu_cap = max(1, min(args.cpu_instances, args.instances))
    t_start = time.perf_counter()

    # Start what is available; say why for what is not.
    runners: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    meta: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "store_options": STORE_OPTIONS,
                            "startup_s": {}}
    if "cuda" in backends or "native" in backends:
        from wasmgpu.runtime.backends import cuda_available

        gpu = cuda_available()
    else:
        gpu = False
    for b in backends:
        try:
            if b in ("cuda", "native") and not gpu:
                raise RuntimeError("no CUDA device visible through CuPy")
            if b == "native" and not any(x.native for x in benches):
                raise RuntimeError("no benchmark with a native build selected")
            if b in ("cuda", "cpu"):
                runners[b] = WasmgpuRunner(b, args.workers, args.memory_layout if b == "cuda" else None)
            elif b == "wasmtime":
                runners[b] = WasmtimePool(args.workers)
            else:
                runners[b] = NativeCuda()
            meta["startup_s"][b] = getattr(runners[b], "startup_s", None)
        except Exception as e:
            skipped[b] = f"{type(e).__name__}: {e}"
            print(f"skipping backend {b}: {skipped[b]}", file=sys.stderr)
    active = [b for b in backends if b in runners]
    meta["skipped_backends"] = skipped

    results: dict[str, dict[str, Measurement]] = {}
    verdicts: dict[str, tuple[bool, str]] = {}
    overhead: dict[str, Any] = {}

    def write_json(done: bool) -> None:
        if not args.json:
            return
        elapsed = time.perf_counter() - t_start
        doc = {
            "meta": {**meta, "elapsed_s": elapsed, "complete": done, "time": time.strftime("%Y-%m-%d %H:%M:%S %z")},
            "launch_overhead": overhead,
            "geomean": geomeans(results),
            "benchmarks": {
                bench.name: {
                    "lang": bench.lang, "summary": bench.summary,
                    "agree": verdicts.get(bench.name, (True, ""))[0],
                    "verdict": verdicts.get(bench.name, (True, ""))[1],
                    "ratios": {f"{a}/{b}": ratio(results[bench.name].get(a), results[bench.name].get(b))
                               for a, b in RATIOS},
                    "backends": {b: m.to_json() for b, m in results[bench.name].items()},
                }
                for bench in benches if bench.name in results
            },
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, path)

    skip = set(filter(None, args.skip.split(",")))

    def past_deadline() -> bool:
        return bool(args.deadline) and time.perf_counter() - t_start > args.deadline

    steps = sum(1 for bench in benches for b in active if b != "native" or bench.native)
    progress = Progress(steps + (0 if args.no_overhead else len([b for b in active if b != "native"])))
    ok = True
    try:
        if not args.no_overhead:
            for b in active:
                if b == "native":
                    continue
                progress.start(f"launch overhead / {b}")
                n = args.instances if b == "cuda" else cpu_cap
                try:
                    overhead[b] = runners[b].launch_overhead(n)
                    progress.step(f"launch overhead {b}: {fmt_s(overhead[b]['best_s'])} for {n} instances")
                except Exception as e:
                    overhead[b] = {"error": f"{type(e).__name__}: {e}"}
                    progress.step(f"launch overhead {b}: ERROR {overhead[b]['error']}")
                    ok = False
        for bench in benches:
            ms: dict[str, Measurement] = {}
            for b in active:
                if b == "native" and not bench.native:
                    continue
                progress.start(f"{bench.name} / {b}")
                t = time.perf_counter()
                if f"{b}:{bench.name}" in skip:
                    ms[b] = Measurement(b, note="not run: --skip")
                    progress.step(f"{bench.name:<11} {b:<9} skipped (--skip)")
                    continue
                if past_deadline():
                    ms[b] = Measurement(b, note=f"not run: past --deadline {args.deadline:g} s")
                    progress.step(f"{bench.name:<11} {b:<9} skipped (deadline)")
                    continue
                try:
                    if b == "cuda":
                        m = runners[b].measure(bench, args.instances, bench.store_options(override), args.repeat,
                                               args.budget)
                    elif b == "cpu":
                        m = runners[b].measure(bench, cpu_cap, bench.store_options(override), args.repeat,
                                               args.budget, cpu_target=args.cpu_seconds)
                    elif b == "wasmtime":
                        m = runners[b].measure(bench, cpu_cap, args.repeat, args.budget, args.cpu_seconds)
                    else:
                        m = runners[b].measure(bench, args.instances, args.repeat, args.budget)
                except Exception as e:
                    m = Measurement(b, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
                    progress.log(m.traceback)
                    ok = False
                ms[b] = m
                what = (f"ERROR {m.error}" if m.error else
                        f"N={m.n} best {fmt_s(m.best)} -> {fmt_rate(m.rate)}/s ({len(m.times)} timed)")
                progress.step(f"{bench.name:<11} {b:<9} {what}  [{fmt_s(time.perf_counter() - t)}]")
            results[bench.name] = ms
            verdicts[bench.name] = compare(ms)
            if not verdicts[bench.name][0]:
                ok = False
                progress.log(f"{bench.name}: RESULTS DISAGREE: {verdicts[bench.name][1]}")
            write_json(False)
    finally:
        progress.close()
        if "wasmtime" in runners:
            runners["wasmtime"].close()

    print_report(benches, results, active, verdicts, overhead)
    for b, why in skipped.items():
        print(f"skipped {b}: {why}")
    print(f"total {time.perf_counter() - t_start:.1f} s; {'all results agree' if ok else 'FAILURES above'}")
    write_json(True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
