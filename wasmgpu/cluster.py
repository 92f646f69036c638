"""gpu-run --ray: one batch spread over a Ray cluster.

The batch is cut into instance ranges as for worker processes (workers.py). Each range is a Ray task that
runs it as a worker process would (workers.run_job), with its instances' output files in a scratch
directory of its node, and returns its outcomes with those files through Ray's object store. This side
writes the files where gpu-run alone would have and merges the outcomes in instance order. Ray runs a task
again when its worker process dies (a lost node, a killed process); a range that still fails is reported
with its instances.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from . import workers
from .errors import WasmGpuError
from .runtime.backends import CUDA_MEMORY_VAR, HOST_THREADS_VAR
from .wasi.command import parse_dir

# Runs of a task after its worker process died, before its range counts as failed.
TASK_RETRIES = 3
# Seconds to wait for a cluster's address to take a connection.
CONNECT_TIMEOUT = 10.0


def run_on_ray(opts: argparse.Namespace, module: bytes, out: Any, deadline: float | None) -> tuple[
        list[Any], tuple[int, ...], int]:
    """Every instance's outcome in order, the result types, and the number of ranges the batch ran in."""
    from .cli import HELD_TOTAL, progress_bar  # noqa: PLC0415 - cli imports this module

    if opts.workers is not None and opts.workers < 1:
        raise WasmGpuError("--workers must be at least 1")
    ray = _import_ray()
    _connect(ray, opts.ray)
    try:
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        if opts.backend == "cuda" and gpus == 0:
            raise WasmGpuError(f"--ray {opts.ray}: the cluster has no GPU, and --backend cuda needs one")
        on_gpu = gpus > 0 and opts.backend in ("auto", "cuda")
        count = max(1, min(opts.workers or (gpus if on_gpu else cpus), opts.instances))
        # A GPU range has its GPU's memory; CPU ranges share their node's memory with as many others as the
        # node has CPUs (one range per CPU at a time).
        node_cpus = max([int(n.get("Resources", {}).get("CPU", 1)) for n in ray.nodes() if n.get("Alive")] or [1])
        share = 1 if on_gpu else max(1, node_cpus)
        stdin = workers._read_stdin()
        # The deadline as wall-clock time, which the nodes share (their monotonic clocks are their own): a
        # range that waited in Ray's queue has only what is left of it.
        until = None if deadline is None else time.time() + max(deadline - time.monotonic(), 1e-3)
        shipped = portable(opts)
        room = workers.children_shares(opts, count)
        jobs = [workers.Job(shipped, b"", lo, hi, stdin, None, "", out.keep_empty, HELD_TOTAL // count, share,
                            children=room[k]) for k, (lo, hi) in enumerate(workers.ranges(opts.instances, count))]
        # Host threads per range: its node's cores shared by the ranges that run there at once.
        threads = max(1, cpus // max(1, gpus if on_gpu else cpus))
        task = ray.remote(run_shard).options(num_cpus=1, num_gpus=1 if on_gpu else 0, max_retries=TASK_RETRIES)
        module_ref = ray.put(module)
        refs = {task.remote(job, module_ref, until, os.getcwd(), threads): k for k, job in enumerate(jobs)}
        bar, update = progress_bar(opts.instances, opts.progress)
        results: list[Any] = [None] * len(jobs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                k = refs[done[0]]
                try:
                    result, files = ray.get(done[0])
                except ray.exceptions.RayError as e:  # failed after its retries
                    result, files = {"error": f"instances {jobs[k].lo} to {jobs[k].hi - 1} were lost on the Ray "
                                     f"cluster: {_first_line(e)}"}, {}
                for name, data in files.items():
                    (Path(out.sink_dir) / name).write_bytes(data)
                results[k] = result
                if update is not None:
                    update(jobs[k].hi - jobs[k].lo, 0.0)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        outcomes, types = workers._merge(results, jobs, [], out, getattr(opts, "report", None),
                                         lambda job, r: f"node {r.get('node', '?')}")
        return outcomes, types, count
    finally:
        ray.shutdown()


def run_shard(job: workers.Job, module: bytes, until: float | None, cwd: str,
              threads: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A Ray task: one range of the batch run on this node; its result and its instances' output files.
    Ray reuses its worker processes: what this changes of the process is put back."""
    from .vm.build import BUILD_EVENTS  # noqa: PLC0415

    started = time.perf_counter()
    here, threads_before = os.getcwd(), os.environ.get(HOST_THREADS_VAR)
    BUILD_EVENTS.clear()  # what earlier tasks in this process built was reported by them
    try:
        if os.path.isdir(cwd):  # a node that shares the driver's file system, as a local cluster does
            os.chdir(cwd)
        os.environ[HOST_THREADS_VAR] = str(threads)
        job.module = module
        job.deadline = None if until is None else time.monotonic() + max(until - time.time(), 1e-3)
        with tempfile.TemporaryDirectory(prefix="gpu-run-range-") as sink:
            job.sink_dir = sink
            result = workers.run_job(job)
            files = {name: (Path(sink) / name).read_bytes() for name in os.listdir(sink)}
    finally:
        os.chdir(here)
        if threads_before is None:
            os.environ.pop(HOST_THREADS_VAR, None)
        else:
            os.environ[HOST_THREADS_VAR] = threads_before
    result["node"] = socket.gethostname()
    result["seconds"] = time.perf_counter() - started
    return result, files


def portable(opts: argparse.Namespace) -> argparse.Namespace:
    """The options as another node needs them: preopened directories as absolute paths (the guest's names
    unchanged), and this host's environment, which `--env KEY` and -S inherit-env pass on from."""
    shipped = copy.copy(opts)
    dirs = []
    for spec in opts.dir:
        host, guest = parse_dir(spec)
        dirs.append(f"{os.path.abspath(host)}::{guest}")
    shipped.dir = dirs
    shipped.host_env = dict(os.environ)
    shipped.report = None
    return shipped


def _import_ray() -> Any:
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise WasmGpuError("--ray needs Ray: pip install 'wasmgpu[ray]'") from None
    return ray


def _connect(ray: Any, address: str) -> None:
    """Join the cluster at `address`, or start a Ray instance on this machine for `local`."""
    root = str(Path(__file__).resolve().parent.parent)  # the package as found here, installed or a checkout
    path = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": root + (os.pathsep + path if path else "")}
    if CUDA_MEMORY_VAR in os.environ:  # the tasks' stores hold their memories as this process's would
        env[CUDA_MEMORY_VAR] = os.environ[CUDA_MEMORY_VAR]
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                              runtime_env={"env_vars": env})
    _reachable(address)
    try:
        if address == "local":
            ray.init(**kw)
        else:
            ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise WasmGpuError(f"--ray {address}: cannot reach the cluster: {_first_line(e)}") from None


def _reachable(address: str) -> None:
    """A HOST:PORT address (or ray://HOST:PORT) that takes no connection is refused at once: Ray itself
    retries it for minutes."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # local, auto, or a form Ray checks itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise WasmGpuError(f"--ray {address}: cannot reach the cluster: {e.strerror or e}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
