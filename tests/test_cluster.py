"""Past one process: gpu-run --devices (a worker per GPU) and --ray (ranges as Ray tasks) give what one
process gives, byte for byte, and recover a range whose worker dies."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CLI_BACKEND_ARGS, REPO
from tests.test_cli import gpu_run, module, sleep_program
from tests.test_wasi import echo_program
from wasmgpu import workers
from wasmgpu.wasi.command import pack_outcomes

N = 9


def run(tmp_path: Path, wasm: Path, out: str, *argv: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "-n", str(N), "--out",
                           str(tmp_path / out), *argv, str(wasm), "arg{i}"], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def outputs(root: Path) -> tuple[list[dict], dict[str, bytes]]:
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_time")
    return rows, {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != "results.jsonl"}


def test_a_local_ray_cluster_gives_the_outputs_of_one_process(tmp_path) -> None:
    pytest.importorskip("ray")
    wasm = module(tmp_path, echo_program())
    one = run(tmp_path, wasm, "one", "--env", "K=v{i}")
    ray = run(tmp_path, wasm, "ray", "--env", "K=v{i}", "--ray", "local", "--workers", "2", "-v")
    assert one.returncode == ray.returncode != 0  # echo's exit status: its arguments' length % 100
    assert outputs(tmp_path / "one") == outputs(tmp_path / "ray")
    assert len(outputs(tmp_path / "ray")[1]) == 2 * N
    assert "over 2 Ray tasks" in ray.stderr and f"{N} instance(s) in 2 range(s)" in ray.stderr, ray.stderr


def test_a_killed_ray_worker_has_its_range_run_again(tmp_path) -> None:
    """Each range sleeps 4 s; one task's worker process is killed while it runs: Ray runs it again and the
    batch ends with every instance's output."""
    pytest.importorskip("ray")
    wasm = module(tmp_path, sleep_program(4_000_000_000))
    proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "-n", "4", "--out",
                             str(tmp_path / "out"), "--ray", "local", "--workers", "2", str(wasm)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        found = subprocess.run(["pgrep", "-f", "ray::run_shard"], capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(1.0)  # well inside the range's sleep
            killed = int(found[0])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    _, err = proc.communicate(timeout=240)
    assert killed is not None, err
    assert proc.returncode == 0, err
    rows, files = outputs(tmp_path / "out")
    assert [r["exit_code"] for r in rows] == [0] * 4
    assert all(files[f"{i}.stdout"] == b"poll=0\n" for i in range(4))


def test_ray_and_device_options_are_checked(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, echo_program())
    status, _, err = gpu_run(capsysbinary, "--ray", "local", "--devices", "all", str(wasm), monkeypatch=monkeypatch)
    assert status == 1 and b"--ray and --devices" in err
    status, _, err = gpu_run(capsysbinary, "--backend", "cpu", "--devices", "0", str(wasm), monkeypatch=monkeypatch)
    assert status == 1 and b"--devices chooses GPUs: it needs the cuda backend" in err
    if importlib.util.find_spec("ray") is not None:  # an address that takes no connection: refused at once
        status, _, err = gpu_run(capsysbinary, "--ray", "127.0.0.1:1", str(wasm), monkeypatch=monkeypatch)
        assert status == 1 and b"--ray 127.0.0.1:1: cannot reach the cluster: Connection refused" in err


def test_devices_are_named_as_the_worker_sees_them(monkeypatch) -> None:
    class Opts:
        backend = "cuda"
        devices = "all"

    monkeypatch.setattr(workers, "cuda_device_count", lambda: 3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert workers.choose_devices(Opts()) == ["0", "1", "2"]
    Opts.devices = "2,0"
    assert workers.choose_devices(Opts()) == ["2", "0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5, 7,GPU-abc")  # the numbers count the GPUs this process sees
    assert workers.choose_devices(Opts()) == ["GPU-abc", "5"]
    for bad, why in (("3", "there is no GPU 3"), ("1,1", "names a GPU twice"), ("x", "takes all or GPU numbers")):
        Opts.devices = bad
        with pytest.raises(workers.WasmGpuError, match=why):
            workers.choose_devices(Opts())
    monkeypatch.setattr(workers, "cuda_device_count", lambda: 0)
    with pytest.raises(workers.WasmGpuError, match="no GPU found"):
        workers.choose_devices(Opts())


def test_workers_spread_over_the_devices(monkeypatch) -> None:
    """A worker per GPU at least; a single GPU other than this process's first is reached through one."""
    class Opts:
        backend = "cuda"
        workers = None
        device_ids = ["0", "1", "2", "3"]

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert workers.plan_workers(Opts(), 100, False) == 4
    assert workers.plan_workers(Opts(), 2, False) == 2
    Opts.device_ids = ["1"]
    assert workers.plan_workers(Opts(), 100, False) == 1
    Opts.device_ids = ["0"]
    assert workers.plan_workers(Opts(), 100, False) is None
    Opts.device_ids = ["0", "1"]
    with pytest.raises(workers.WasmGpuError, match="--devices: a module that shows frames"):
        workers.plan_workers(Opts(), 100, True)


def test_a_batch_over_several_devices_matches_one_process(tmp_path, capsysbinary, monkeypatch) -> None:
    """The ranges of two (pretend) GPUs: each worker sees only its own, the outputs are one process's, and
    -v says what each GPU ran. On this machine the workers run the CPU backend."""
    from tests.test_workers import results

    wasm = module(tmp_path, echo_program())
    # The pretend GPUs' workers run the CPU backend, whatever backend the tests are given.
    cpu = ("--backend", "cpu")
    status, _, _ = gpu_run(capsysbinary, *cpu, "-n", str(N), "--out", str(tmp_path / "one"), str(wasm), "a{i}",
                           monkeypatch=monkeypatch)
    seen: list[str | None] = []
    real = workers._start

    def start(threads: int, progress_fd: int | None = None, device: str | None = None, gpu: bool = False):
        seen.append(device)
        return real(threads, progress_fd, device, gpu)

    monkeypatch.setattr(workers, "choose_devices", lambda opts: ["4", "6"])
    monkeypatch.setattr(workers, "_start", start)
    status2, _, err = gpu_run(capsysbinary, *cpu, "-v", "-n", str(N), "--out", str(tmp_path / "two"), str(wasm),
                              "a{i}", monkeypatch=monkeypatch)
    assert status == status2 and sorted(seen) == ["4", "6"]
    assert results(tmp_path / "one" / "results.jsonl") == results(tmp_path / "two" / "results.jsonl")
    assert outputs(tmp_path / "one")[1] == outputs(tmp_path / "two")[1]
    assert b"GPU 4: 4 instance(s) in 1 range(s)" in err and b"GPU 6: 5 instance(s) in 1 range(s)" in err


def test_the_api_chooses_a_gpu_only_on_cuda() -> None:
    from wasmgpu.runtime.backends import CpuBackend
    from wasmgpu.runtime.engine import Engine

    with pytest.raises(workers.WasmGpuError, match="device=1 chooses a GPU: the cpu backend has none"):
        Engine("cpu", device=1)
    with pytest.raises(workers.WasmGpuError, match="not of a Backend object"):
        Engine(CpuBackend(), device=0)


def test_workers_fewer_than_the_gpus_asked_for_are_refused() -> None:
    class Opts:
        backend = "cuda"
        workers = 1
        device_ids = ["0", "1"]

    with pytest.raises(workers.WasmGpuError, match="--workers 1 is fewer than the 2 GPUs of --devices"):
        workers.plan_workers(Opts(), 100, False)


def test_failed_ranges_run_again_on_the_next_gpu(monkeypatch, capsys) -> None:
    """Each failed range moves to the GPU after its own, whatever the other retries did."""
    import argparse

    calls: list[list[str | None]] = []

    def run_jobs(jobs, threads, sigints, progress=None):
        calls.append([j.device for j in jobs])
        retry = len(calls) == 1
        done = {"outcomes": pack_outcomes([]), "types": (), "report": None}
        out = [{"error": "out of memory", "retry": True} if retry else done for _ in jobs]
        return out, [None] * len(jobs)

    monkeypatch.setattr(workers, "_run_jobs", run_jobs)
    opts = argparse.Namespace()
    jobs = [workers.Job(opts, b"", k * 5, k * 5 + 5, b"", None, "", False, 1, 1, d) for k, d in enumerate("01")]
    workers._run_all(jobs, 2, [0], None, None)
    assert calls == [["0", "1"], ["1"], ["0"]]
    err = capsys.readouterr().err
    assert "worker 1 on GPU 1 (instances 5 to 9) failed (out of memory); running them again alone on GPU 0" in err


def test_ray_ranges_see_the_drivers_environment(monkeypatch) -> None:
    """--env KEY and -S inherit-env take their values from the machine gpu-run started on, untouched by the
    {i} substitution of the command line (a Ray node has an environment of its own)."""
    import argparse

    from wasmgpu import cli, cluster

    monkeypatch.setenv("FOO", "a{i}b")
    monkeypatch.setenv("V_3", "three")
    opts = argparse.Namespace(dir=["in/{i}"], env=["FOO", "V_{i}", "K=v{i}"], inherit_env=False)
    shipped = cluster.portable(opts)
    assert shipped.dir == [f"{os.path.abspath('in/{i}')}::in/{{i}}"] and shipped.env == opts.env
    monkeypatch.delenv("FOO")
    monkeypatch.delenv("V_3")
    given = [kv for kv in (cli.parse_env(cli.substitute(e, 3), shipped.host_env) for e in shipped.env) if kv]
    assert given == [("FOO", "a{i}b"), ("V_3", "three"), ("K", "v3")]
