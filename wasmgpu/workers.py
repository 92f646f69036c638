"""Worker processes for a large batch on one machine.

gpu-run's host work is per instance and in Python (WASI contexts, host calls, output files), so one
process keeps one core busy while the device waits on it. With workers the batch is cut into contiguous
instance ranges, and each range is run by its own process (`serve` in a fresh interpreter: a CUDA
context does not survive fork) exactly as gpu-run would run it alone, in waves where it does not
fit, each with its share of the device's memory. A worker writes its instances' output itself (--out
files, else a spool file of its own) and its range's result rows; the
parent merges the outcomes in instance order, copies the rows and reports them as one run.

The job goes to a worker pickled on its stdin, the outcome comes back pickled on its stdout (the
worker's own prints go to stderr). Workers run in their own session, so that a terminal's Ctrl-C
reaches the parent only, which passes each one on; they end with the parent.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ResourceLimitError, WasmGpuError
from .runtime.backends import HOST_THREADS_VAR
from .runtime.cuda_driver import SHARED_DEVICE_VAR, WARM_CONTEXT_VAR, cuda_device_count
from .wasi.command import (
    STOP_HEARD,
    host_stdin,
    pack_outcomes,
    quiet_stop,
    sigint_deferred,
    unpack_outcomes,
)

# A worker costs a process start, imports, a device context and its memory (1.5-3 s of host time, and
# the workers' starts contend): worth it only for this many instances or more each. On the H200, charcount
# at 10,000 took 3.9 s in 2 workers, 6.5 s in 4 and 8.7 s in 8; at 100,000, 16 s in 8 and 46 s in one.
MIN_PER_WORKER = 5000
MAX_WORKERS = 8
# On a GPU the workers' kernels take turns (no MPS), so that each worker more makes the others' launches
# wait: on an H100, charcount at 100,000 (an input directory each) took 12.4 s in 8 workers, 8.7 s in 4,
# 9.5 s in 2 and 13.3 s in one (bench/NOTES.md).
GPU_WORKERS = 4  # per GPU
# Where a worker writes its progress reports for the parent (a descriptor number it inherits).
PROGRESS_FD_VAR = "WASMGPU_PROGRESS_FD"
# WASMGPU_PROFILE_DIR=DIR: each worker runs under cProfile and leaves its statistics in DIR.
PROFILE_DIR_VAR = "WASMGPU_PROFILE_DIR"
# Stdin is read once by the parent and given whole to every worker: a regular file of at most this size.
MAX_SHARED_STDIN = 64 << 20


@dataclass
class Job:
    """What a worker runs: instances lo .. hi of the batch gpu-run was asked for."""

    opts: argparse.Namespace
    module: bytes
    lo: int
    hi: int
    stdin: bytes
    deadline: float | None  # time.monotonic() (the system's, shared by processes) at which to stop
    sink_dir: str  # where the instances' output files go (Output.sink_dir)
    keep_empty: bool
    held: int  # output bytes the worker may hold in memory (the rest goes to the files as it comes)
    share: int  # the worker's part of the device memory: 1/share of what is free, or of --max-memory
    device: str | None = None  # the GPU it runs on, as CUDA_VISIBLE_DEVICES names it (None: the first one)
    rows: str | None = None  # where the worker writes its range's rows of results.jsonl or --out-jsonl
    children: int | None = None  # its part of --max-children (None: no children asked for)


def choose_devices(opts: argparse.Namespace) -> list[str] | None:
    """--devices: the GPUs the batch runs on, as a worker process's CUDA_VISIBLE_DEVICES names them (the
    numbers count the GPUs this process sees, as CUDA does); None without the option."""
    spec = getattr(opts, "devices", None)
    if spec is None:
        return None
    if opts.backend in ("cpu", "cpu-interleaved"):
        raise WasmGpuError("--devices chooses GPUs: it needs the cuda backend")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = cuda_device_count()
    if count == 0:
        raise WasmGpuError("--devices: no GPU found" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None
                                                        else ""))
    if spec.strip() == "all":
        ids = list(range(count))
    else:
        try:
            ids = [int(part) for part in spec.split(",")]
        except ValueError:
            raise WasmGpuError(f"--devices takes all or GPU numbers separated by commas, not {spec!r}") from None
        bad = [d for d in ids if not 0 <= d < count]
        if bad:
            raise WasmGpuError(f"--devices: there is no GPU {bad[0]} (this machine shows {count}: 0 to {count - 1})")
        if len(set(ids)) != len(ids):
            raise WasmGpuError(f"--devices names a GPU twice: {spec!r}")
    names = [v.strip() for v in visible.split(",")] if visible is not None else []
    return [names[d] if d < len(names) else str(d) for d in ids]


def _default_device() -> str:
    """The name of the GPU a process uses unless told otherwise (the first one it sees)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[0].strip() if visible else "0"


def plan_workers(opts: argparse.Namespace, n: int, graphics: bool, reads_stdin: bool = True) -> int | None:
    """How many worker processes run the batch (None: gpu-run runs it itself); `reads_stdin`: the module can
    read stdin (a pipe is then read ahead to see whether it ended)."""
    asked = getattr(opts, "workers", None)
    if asked is not None and asked < 1:
        raise WasmGpuError("--workers must be at least 1")
    devices = getattr(opts, "device_ids", None) or []
    if asked is None:
        # --max-children's room is shared by all the batch's instances, which one process alone can give.
        if n >= 2 * MIN_PER_WORKER and _stdin_kind(reads_stdin) is not None and not getattr(opts, "max_children", 0):
            # On a GPU at most GPU_WORKERS each, within half the cores; on the CPU each worker's instances
            # run on its share of the cores, its host work beside them.
            cores = os.cpu_count() or 1
            gpus = max(1, len(devices))
            most = min(GPU_WORKERS * gpus, cores // 2) if uses_gpu(opts.backend) else min(MAX_WORKERS, cores)
            asked = min(max(1, most), n // MIN_PER_WORKER)
        else:
            asked = 1
        asked = max(asked, len(devices))  # every GPU asked for gets a worker
    elif asked < len(devices):
        raise WasmGpuError(f"--workers {asked} is fewer than the {len(devices)} GPUs of --devices")
    workers = min(asked, n)
    # One GPU other than this process's own is reached through a worker that sees only that one.
    elsewhere = devices[:1] != [_default_device()]
    if workers < 2 and not (devices and elsewhere):
        return None
    if graphics or getattr(opts, "frames", None) is not None:
        if getattr(opts, "workers", None) is not None or devices:
            raise WasmGpuError(f"{'--devices' if devices else '--workers'}: a module that shows frames runs in "
                               "one process, on the first GPU")
        return None
    return workers


def uses_gpu(backend: str) -> bool:
    """Whether a process on `backend` will use a GPU (auto: where one is present)."""
    if backend == "auto":
        from .runtime.backends import cuda_present

        return cuda_present()
    return backend == "cuda"


def _stdin_kind(ahead: bool = True) -> str | None:
    """How the host's stdin can be given to every worker: "none" (a terminal or nothing: instances read no
    bytes), "read" (what reads_at_once, a pipe read ahead to its end, or a stream without a descriptor: read
    once, whole); None: a pipe still being written (or not read ahead: `ahead` false) or another device, which
    gpu-run alone reads as the instances ask."""
    if sys.stdin is None or getattr(sys.stdin, "closed", False):
        return "none"
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return "read"
    try:
        if os.isatty(fd):
            return "none"
        return "read" if host_stdin(_stdin_stream(), ahead).ready(MAX_SHARED_STDIN) else None
    except OSError:
        return "none"


def _stdin_stream() -> Any:
    return getattr(sys.stdin, "buffer", sys.stdin)


def _read_stdin() -> bytes:
    """The bytes every instance reads on stdin (a pipe is read to its end first, from what was read ahead)."""
    if _stdin_kind() == "none":
        return b""
    shared = host_stdin(_stdin_stream(), True, take=True)
    try:
        while not shared.eof and len(shared.data) <= MAX_SHARED_STDIN:
            shared.fill(shared.end + shared.READ_MAX)
        data = bytes(shared.data)
    except (OSError, ValueError):
        return b""
    if len(data) > MAX_SHARED_STDIN:
        raise WasmGpuError(f"--workers: stdin is larger than {MAX_SHARED_STDIN >> 20} MiB (it is given whole "
                           "to every worker): use --workers 1")
    return data


def children_shares(opts: argparse.Namespace, k: int) -> list[int | None]:
    """--max-children divided among k ranges, their sum the batch's where it is at least k (each range has
    room for one at least), None each without the option: C children alive at once in the batch, wherever
    they run."""
    c = getattr(opts, "max_children", 0) or 0
    return [max(1, c * (j + 1) // k - c * j // k) for j in range(k)] if c else [None] * k


def ranges(n: int, k: int) -> list[tuple[int, int]]:
    """[0, n) cut into k contiguous ranges whose sizes differ by at most one."""
    return [(n * j // k, n * (j + 1) // k) for j in range(k)]


def run_workers(opts: argparse.Namespace, module: bytes, workers: int, out: Any,
                deadline: float | None) -> tuple[list[Any], tuple[int, ...]]:
    """Run the batch in `workers` processes; every instance's outcome in order, and the result types."""
    from .cli import HELD_TOTAL  # noqa: PLC0415 - cli imports this module

    stdin = _read_stdin()
    assert out.sink_dir is not None
    devices = getattr(opts, "device_ids", None) or [None]
    # Workers go to the GPUs in turn; each gets its share of its own GPU's memory.
    on = [devices[k % len(devices)] for k in range(workers)]
    room = children_shares(opts, workers)
    jobs = [Job(opts, module, lo, hi, stdin, deadline, out.sink_dir, out.keep_empty, HELD_TOTAL // workers,
                on.count(on[k]), on[k], None if out.rows_dir is None else f"{out.rows_dir}/rows-{lo}",
                room[k]) for k, (lo, hi) in enumerate(ranges(opts.instances, workers))]
    sigints = [0]
    from .cli import progress_bar  # noqa: PLC0415

    bar, update = progress_bar(opts.instances, opts.progress)
    progress = Progress(update, {job.lo: job.device for job in jobs if job.device is not None}) \
        if update is not None else None
    try:
        return _run_all(jobs, workers, sigints, progress, out)
    finally:
        if bar is not None:
            bar.close()


def _run_all(jobs: list[Job], workers: int, sigints: list[int], progress: Progress | None, out: Any) -> tuple[
        list[Any], tuple[int, ...]]:
    from .cli import HELD_TOTAL  # noqa: PLC0415

    results, procs = _run_jobs(jobs, max(1, (os.cpu_count() or 1) // workers), sigints, progress)
    # A worker that ran out of memory (perhaps only while the others held theirs) or crashed runs its range
    # again alone, with all of the device: an error it meets again is the run's.
    devices = list(dict.fromkeys(j.device for j in jobs))
    for k, r in enumerate(results):
        if sigints[0] or not (r is None or "internal" in r or r.get("retry")):
            continue
        why = "no result" if r is None else r.get("error") or r.get("internal")
        job = jobs[k]
        where = "" if job.device is None else f" on GPU {job.device}"
        # Again on the next GPU, where there are several: the one it failed on may be what failed.
        job.device = devices[(devices.index(job.device) + 1) % len(devices)]
        again_on = "" if len(devices) < 2 else f" on GPU {job.device}"
        print(f"gpu-run: worker {k}{where} (instances {job.lo} to {job.hi - 1}) failed ({why}); running them "
              f"again alone{again_on}", file=sys.stderr)
        job.share, job.held = 1, HELD_TOTAL
        if progress is not None and job.device is not None:
            progress.devices[job.lo] = job.device
        again, started = _run_jobs([jobs[k]], os.cpu_count() or 1, sigints, progress)
        results[k], procs[k] = again[0], started[0]
    return _merge(results, jobs, procs, out, getattr(jobs[0].opts, "report", None))


def _run_jobs(jobs: list[Job], threads: int, sigints: list[int],
              progress: Progress | None = None) -> tuple[list[Any], list[subprocess.Popen[bytes]]]:
    """Each job in a worker process of its own, at once: their results (None where a worker gave none)."""
    procs, readers = [], []
    gpu = uses_gpu(jobs[0].opts.backend)
    spawned = []  # time.monotonic() at each worker's spawn: the clock is the system's, the same in the worker
    for job in jobs:
        spawned.append(time.monotonic())
        if progress is None:
            procs.append(_start(threads, device=job.device, gpu=gpu))
            continue
        r, w = os.pipe()
        try:
            procs.append(_start(threads, w, device=job.device, gpu=gpu))
        finally:
            os.close(w)
        readers.append(progress.follow(job.lo, r))
    results: list[Any] = [None] * len(jobs)

    def talk(k: int) -> None:
        started = time.perf_counter()
        try:
            data, _ = procs[k].communicate(pickle.dumps(jobs[k]))
            results[k] = pickle.loads(data) if data else None
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            results[k] = {"internal": f"worker {k}: {type(e).__name__}: {e}"}
        r = results[k]
        if isinstance(r, dict):
            r["seconds"] = time.perf_counter() - started
            if "report" in r and "began" in r:
                r["report"].phases["worker start"] += max(0.0, r["began"] - spawned[k])
                r["report"].phases["worker exit"] += max(0.0, time.monotonic() - r["done"])

    threads_ = [threading.Thread(target=talk, args=(k,), daemon=True) for k in range(len(jobs))]
    with _forward_sigint(procs, sigints):
        for t in threads_:
            t.start()
        for t in threads_:
            while t.is_alive():
                t.join(0.1)
    for t in readers:  # the last reports, read to the pipe's end
        t.join(5)
    return results, procs


def engine_out_of_memory(opts: argparse.Namespace) -> tuple[type[BaseException], ...]:
    """What the backend's array library raises when its memory runs out (CuPy's own error on the GPU)."""
    if opts.backend in ("cpu", "cpu-interleaved"):
        return ()
    try:
        import cupy  # noqa: PLC0415

        return (cupy.cuda.memory.OutOfMemoryError,)
    except ImportError:
        return ()


# A worker's first statements: where it will use the GPU, the context is made on a thread while the rest of
# the worker's modules are imported (runtime/cuda_driver.py).
WORKER_BOOT = (f"import os\nif os.environ.get({WARM_CONTEXT_VAR!r}):\n"
               "    from wasmgpu.runtime.cuda_driver import warm_context\n    warm_context()\n"
               "from wasmgpu.workers import serve\nserve()")


def _start(threads: int, progress_fd: int | None = None, device: str | None = None,
           gpu: bool = False) -> subprocess.Popen[bytes]:
    """A worker process that keeps at most `threads` host threads busy (and reports its progress on
    progress_fd, where given), on GPU `device` alone where given; `gpu`: it will use a GPU."""
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    env[HOST_THREADS_VAR] = str(threads)
    env.pop(PROGRESS_FD_VAR, None)
    if progress_fd is not None:
        env[PROGRESS_FD_VAR] = str(progress_fd)
    env[SHARED_DEVICE_VAR] = "1"
    env.pop(WARM_CONTEXT_VAR, None)
    if gpu:
        env[WARM_CONTEXT_VAR] = "1"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS: unused here, and its idle threads spin
    # The package as this process found it, whether installed or run from a checkout.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.Popen([sys.executable, "-c", WORKER_BOOT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, start_new_session=True, preexec_fn=_die_with_parent,
                            pass_fds=() if progress_fd is None else (progress_fd,))


class Progress:
    """The parent's progress bar over the workers': each reports, after its launches, the instances it
    newly finished and the fuel its current wave has spent (on a pipe of its own, read by a thread here)."""

    def __init__(self, update: Callable[..., None], devices: dict[int, str] | None = None) -> None:
        self.update = update
        self.lock = threading.Lock()
        self.fuel: dict[int, tuple[float, float]] = {}  # worker -> (fuel of its finished waves, of this one)
        self.devices = devices or {}  # worker -> its GPU, where the batch is spread over several
        self.finished: dict[str, int] = dict.fromkeys(self.devices.values(), 0)  # by GPU

    def follow(self, k: int, fd: int) -> threading.Thread:
        def read() -> None:
            with os.fdopen(fd, "rb") as f:
                for line in f:
                    try:
                        finished, fuel = int(line.split()[0]), float(line.split()[1])
                    except (ValueError, IndexError):
                        continue
                    with self.lock:
                        done, now = self.fuel.get(k, (0.0, 0.0))
                        self.fuel[k] = (done + now, fuel) if fuel < now else (done, fuel)  # a new wave
                        spent = sum(a + b for a, b in self.fuel.values())
                        if len(self.finished) < 2:
                            self.update(finished, spent)
                            continue
                        self.finished[self.devices[k]] += finished
                        self.update(finished, spent, " ".join(f"GPU {d}: {c}" for d, c in self.finished.items()))

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def progress_writer(fd: int) -> Callable[[int, float], None]:
    """A worker's progress callback: a line to the parent per report (lost, not fatal, once it is gone)."""
    def update(finished: int, fuel: float) -> None:
        with contextlib.suppress(OSError):
            os.write(fd, f"{finished} {fuel:.0f}\n".encode())

    return update


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):  # Linux only: elsewhere a worker outlives a killed parent
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _forward_sigint(procs: list[subprocess.Popen[bytes]], count: list[int]) -> Any:
    """Each Ctrl-C the parent gets goes to every worker: the first stops their batches in order (their
    outcomes say interrupted), the second stops them at once (and raises KeyboardInterrupt here).
    count[0]: the Ctrl-Cs so far."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        count[0] += 1
        for p in procs:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGINT)
        if count[0] == 1:
            with contextlib.suppress(OSError):
                if os.isatty(2):
                    os.write(2, b"\ngpu-run: stopping (Ctrl-C again to quit at once)\n")
        else:
            for p in procs:
                with contextlib.suppress(OSError):
                    p.kill()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _on_gpu(job: Job, result: dict[str, Any]) -> str | None:
    return None if job.device is None else f"GPU {job.device}"


def _merge(results: list[Any], jobs: list[Job], procs: list[subprocess.Popen[bytes]], out: Any,
           report: Any = None, place: Callable[[Job, dict[str, Any]], str | None] = _on_gpu,
           ) -> tuple[list[Any], tuple[int, ...]]:
    """The workers' outcomes joined, or the first failure among them raised as gpu-run would raise it; the
    instances of a worker that Ctrl-C stopped before its batch ran are interrupted. Each worker's report
    goes into `report`, with where it ran (`place`, for -v) where that is worth saying."""
    from .cli import Failed  # noqa: PLC0415
    from .wasi.command import INTERRUPTED, Outcome  # noqa: PLC0415

    outcomes: list[Any] = []
    types: tuple[int, ...] = ()
    for k, r in enumerate(results):
        if r is None:
            code = procs[k].returncode
            raise WasmGpuError(f"worker process {k} ended without a result (exit status {code})")
        if "failed" in r:
            raise Failed(*r["failed"])
        if "error" in r:
            raise WasmGpuError(r["error"])
        if "interrupted" in r:
            outcomes += [Outcome(i, trap=INTERRUPTED, interrupted=True) for i in range(jobs[k].lo, jobs[k].hi)]
            continue
        if "internal" in r:
            raise RuntimeError(r["internal"])
        outcomes += unpack_outcomes(r["outcomes"])
        types = r["types"]
        if r.get("spool") is not None:
            out.adopt(r["spool"])
        if r.get("rows") is not None:
            out.rows[jobs[k].lo] = (jobs[k].hi, r["rows"])
        if report is not None:
            report.merge(r["report"])
            report.worker_seconds.append(r.get("seconds", 0.0))
            where = place(jobs[k], r)
            if where is not None:
                report.shards.append((where, jobs[k].hi - jobs[k].lo, r.get("seconds", 0.0)))
    return outcomes, types


# -- the worker's side -------------------------------------------------------------------------------------


def run_job(job: Job) -> dict[str, Any]:
    """Run a job as gpu-run runs a batch; the outcomes, or what stopped it."""
    from . import cli  # noqa: PLC0415
    from .vm.build import BUILD_EVENTS  # noqa: PLC0415

    opts = job.opts
    if job.children is not None:
        opts.max_children = job.children
    opts.worker = True  # no progress bar of its own: reports to the parent's, where it shows one
    fd = os.environ.get(PROGRESS_FD_VAR)
    opts.progress_report = progress_writer(int(fd)) if fd and fd.isdigit() else None
    opts.report = cli.RunReport()
    STOP_HEARD[0] = False  # a Ray worker process runs one task after another
    quiet_stop()  # the parent says that it heard Ctrl-C
    try:
        with cli.timed(opts, "module"):
            module = cli.load_module(job.module, opts.module, opts)
            command = cli.runs_command(opts, module)
        with cli.timed(opts, "engine"):
            engine = cli.make_engine(opts, module, job.hi - job.lo, job.share)
        limit = engine.backend.memory_budget() if opts.max_memory is None else opts.max_memory
        engine.max_memory = limit // job.share
        rows = cli.RangeRows(job.rows, opts, command)
        # A Ctrl-C between waves stops the next one rather than the writing of this one's outputs; the
        # ExitStack closes first, so its finish() is covered too.
        with sigint_deferred(), contextlib.ExitStack() as stack:
            def output() -> Any:
                out = cli.Output.shard(job.lo, job.hi, job.sink_dir, job.keep_empty, job.held, rows)

                def finish() -> None:
                    with cli.timed(opts, "outputs"):
                        out.finish()

                stack.callback(finish)
                return out

            outcomes, types, out = cli.run_range(opts, engine, module, command, job.lo, job.hi,
                                                 lambda i: job.stdin, job.deadline, output)
        opts.report.builds[:0] = BUILD_EVENTS
        return {"outcomes": pack_outcomes(outcomes), "types": types, "report": opts.report,
                "spool": out.spool_index(), "rows": job.rows}
    except cli.Failed as e:
        return {"failed": (e.message, e.status)}
    except ResourceLimitError as e:  # perhaps only while the other workers held their memory
        return {"error": str(e), "retry": True}
    except WasmGpuError as e:
        return {"error": str(e)}
    except KeyboardInterrupt:
        return {"interrupted": True}
    except OSError as e:
        return {"error": cli.os_error_text(e)}
    except (MemoryError, *engine_out_of_memory(opts)):
        return {"error": "out of memory (fewer --instances may fit)", "retry": True}
    except Exception as e:  # noqa: BLE001 - reported by the parent as gpu-run's internal error
        return {"internal": cli.internal_error(e)}


def main() -> int:
    began = time.monotonic()  # after the imports: the parent counts from the spawn to here as its start
    job = pickle.load(sys.stdin.buffer)
    result_fd = os.dup(1)
    os.dup2(2, 1)  # whatever else is printed goes to stderr, not into the result
    where = os.environ.get(PROFILE_DIR_VAR)
    if where:  # where a worker's time goes, among the others (bench/job_profile.py --profile-workers)
        import cProfile  # noqa: PLC0415

        profile = cProfile.Profile()
        try:
            result = profile.runcall(run_job, job)
        finally:
            try:
                profile.dump_stats(os.path.join(where, f"worker-{job.lo}.prof"))
            except OSError as e:  # the statistics are lost, not the worker's result
                print(f"gpu-run: worker profile not written: {e}", file=sys.stderr)
    else:
        result = run_job(job)
    # The parent counts from here to having the result as the worker's exit (the result's transfer, the end).
    result.update(began=began, done=time.monotonic())
    with os.fdopen(result_fd, "wb") as f:
        pickle.dump(result, f)
    return 0


def serve() -> None:
    """A worker process's life: its job run, then its end."""
    code = main()
    # Everything the worker wrote is closed and its result sent: the interpreter's teardown (every
    # instance's objects freed one by one, the array library's own) would only keep the parent waiting.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    serve()
