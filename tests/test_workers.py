"""gpu-run --workers K: a batch cut into instance ranges run by worker processes gives what one process
gives: the same output files, results, messages, exit status, stdin and limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import BACKEND, CLI_BACKEND_ARGS, REPO
from tests.test_cli import exit_with_first_digit, gpu_run, module
from tests.test_wasi import Program, cat_program, echo_program
from wasmgpu import workers

N = 37  # not a multiple of the worker counts: ranges of unequal size


def results(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("wall_time")
    return rows


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != "results.jsonl"}


def both(tmp_path, capsysbinary, monkeypatch, wat: str, *argv: str, stdin: bytes = b"", k: int = 3):
    """gpu-run with one process and with k workers, each writing --out to its own directory."""
    wasm = module(tmp_path, wat)
    runs = []
    for w in (1, k):
        out = tmp_path / f"out{w}"
        status, stdout, stderr = gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), "--out", str(out),
                                         *argv[:-1], str(wasm), *argv[-1:], stdin=stdin, monkeypatch=monkeypatch)
        runs.append((status, stdout, stderr.replace(str(out).encode(), b"OUT"), results(out / "results.jsonl"),
                     files(out)))
    return runs


def test_ranges_cover_the_batch_in_order() -> None:
    for n in (1, 2, 7, 4096, 100_001):
        for k in (1, 2, 3, 8):
            parts = workers.ranges(n, k)
            assert parts[0][0] == 0 and parts[-1][1] == n and len(parts) == k
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
            assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


def test_outputs_and_results_match_one_process(tmp_path, capsysbinary, monkeypatch) -> None:
    one, many = both(tmp_path, capsysbinary, monkeypatch, echo_program(), "--env", "K=v{i}", "arg{i}")
    assert one == many
    assert many[3][10]["exit_code"] == len(f"prog.wasmarg{10}") % 100
    assert b"\narg10\n" in many[4]["10.stdout"] and many[4]["10.stdout"].endswith(b"\nK=v10\n")
    assert len(many[4]) == 2 * N


def test_exit_codes_and_failure_messages_match(tmp_path, capsysbinary, monkeypatch) -> None:
    one, many = both(tmp_path, capsysbinary, monkeypatch, exit_with_first_digit(), "{i}")
    assert one == many
    assert many[0] == 1  # the first instance that failed: instance 1 exits with 1
    assert [r["exit_code"] for r in many[3]] == [int(str(i)[0]) for i in range(N)]


def test_traps_are_reported_per_instance(tmp_path, capsysbinary, monkeypatch) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start") (local $a i32)
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (local.set $a (i32.load (i32.const 8196)))
      (if (i32.eq (i32.load8_u (local.get $a)) (i32.const 55)) (then unreachable)))""")
    one, many = both(tmp_path, capsysbinary, monkeypatch, wat, "{i}")
    assert one == many
    assert many[0] == 134 and b"unreachable" in many[4]["7.stderr"]
    assert [r["trap"] is not None for r in many[3]] == [str(i)[0] == "7" for i in range(N)]


def test_traps_in_out_jsonl_rows_written_by_workers(tmp_path, capsysbinary, monkeypatch) -> None:
    """Workers write their ranges' --out-jsonl rows, failure messages in stderr: as one process does."""
    p = Program()
    wasm = module(tmp_path, p.wat("""(func (export "_start") (local $a i32)
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (local.set $a (i32.load (i32.const 8196)))
      (if (i32.eq (i32.load8_u (local.get $a)) (i32.const 55)) (then unreachable)))"""))
    seen = []
    for w in (1, 3):
        jsonl = tmp_path / f"all{w}.jsonl"
        status, out, err = gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), "--out-jsonl", str(jsonl),
                                   str(wasm), "{i}", monkeypatch=monkeypatch)
        shown = gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), str(wasm), "{i}", monkeypatch=monkeypatch)
        seen.append((status, out, err.replace(str(jsonl).encode(), b"J"), results(jsonl), shown))
    assert seen[0] == seen[1]
    assert seen[1][0] == 134 and "unreachable" in seen[1][3][7]["stderr"] and seen[1][3][8]["stderr"] == ""
    failed = sum(str(i)[0] == "7" for i in range(N))
    assert seen[1][4][2].count(b"Error: failed to run main module") == failed  # each message shown once


def test_stdin_reaches_every_instance(tmp_path, capsysbinary, monkeypatch) -> None:
    text = b"the same bytes for all\n" * 50
    one, many = both(tmp_path, capsysbinary, monkeypatch, cat_program(), "x", stdin=text)
    assert one == many
    assert all(many[4][f"{i}.stdout"].startswith(text) for i in range(N))


def test_out_jsonl_and_grouped_output_match(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, echo_program())
    seen = []
    for w in (1, 4):
        jsonl = tmp_path / f"all{w}.jsonl"
        status, out, err = gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), "--out-jsonl", str(jsonl),
                                   str(wasm), "a{i}", monkeypatch=monkeypatch)
        rows = results(jsonl)
        shown = gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), str(wasm), "a{i}", monkeypatch=monkeypatch)
        seen.append((status, out, err.replace(str(jsonl).encode(), b"J"), rows, shown))
    assert seen[0] == seen[1]
    assert "\na5\n" in seen[1][3][5]["stdout"] and seen[1][3][5]["stderr"] == "done\n"
    assert b"[36] done\n" in seen[1][4][2]


def test_invoke_results_come_back_in_order(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, '(module (func (export "sq") (param i64) (result i64) '
                            '(i64.mul (local.get 0) (local.get 0))))')
    shown = [gpu_run(capsysbinary, "--workers", str(w), "-n", str(N), "--invoke", "sq", str(wasm), "{i}",
                     monkeypatch=monkeypatch) for w in (1, 3)]
    assert shown[0] == shown[1]
    assert shown[1][1].decode().splitlines()[:3] == ["0: 0", "1: 1", "2: 4"]


def test_an_instantiation_failure_is_reported_once(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, '(module (func $s unreachable) (start $s) (func (export "_start")))')
    seen = [gpu_run(capsysbinary, "--workers", str(w), "-n", "9", str(wasm), monkeypatch=monkeypatch)
            for w in (1, 3)]
    assert seen[0] == seen[1] and seen[1][0] == 134 and b"failed to instantiate" in seen[1][2]


def test_bad_worker_counts_are_refused(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, echo_program())
    status, _, err = gpu_run(capsysbinary, "--workers", "0", str(wasm), monkeypatch=monkeypatch)
    assert status == 2 or (status == 1 and b"--workers must be at least 1" in err)


def planned(monkeypatch, backend: str, cores: int, n: int, asked: int | None = None) -> int | None:
    """plan_workers for a batch of n on a host of `cores`, stdin readable once, `--workers asked`."""
    class Opts:
        workers = asked
    Opts.backend = backend
    monkeypatch.setattr(workers, "_stdin_kind", lambda ahead=True: "none")
    monkeypatch.setattr(workers.os, "cpu_count", lambda: cores)
    return workers.plan_workers(Opts(), n, False)


def test_default_on_the_cpu_is_a_worker_per_core_for_large_batches(monkeypatch) -> None:
    """Off the GPU a batch of 10,000 or more runs in a worker per core (at most 8, one per 5,000 instances);
    a smaller one in gpu-run's own process."""
    assert planned(monkeypatch, "cpu", 16, 100_000) == 8
    assert planned(monkeypatch, "cpu", 16, 15_000) == 3
    assert planned(monkeypatch, "cpu", 16, 9_999) is None
    assert planned(monkeypatch, "cpu", 2, 100_000) == 2
    assert planned(monkeypatch, "cpu", 2, 100_000, asked=4) == 4
    assert planned(monkeypatch, "cpu", 2, 3, asked=4) == 3
    assert planned(monkeypatch, "cpu", 2, 1, asked=4) is None


def test_default_on_a_gpu_is_at_most_four_workers(monkeypatch) -> None:
    """On a GPU the workers' kernels take turns: at most GPU_WORKERS (4), within half the cores."""
    assert planned(monkeypatch, "cuda", 16, 1_000_000) == 4
    assert planned(monkeypatch, "cuda", 16, 10_000) == 2
    assert planned(monkeypatch, "cuda", 4, 1_000_000) == 2


def spinner(tmp_path: Path) -> Path:
    """Instance 0 (argument "0") exits at once, the others loop until stopped."""
    p = Program()
    return module(tmp_path, p.wat("""(func (export "_start")
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (if (i32.eqz (i32.load8_u offset=1 (i32.load (i32.const 8196)))) (then
        (if (i32.eq (i32.load8_u (i32.load (i32.const 8196))) (i32.const 48)) (then (call $proc_exit (i32.const 0))))))
      (loop $l (br $l)))"""))


def test_timeout_stops_every_worker(tmp_path) -> None:
    wasm, out = spinner(tmp_path), tmp_path / "out"
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "--workers", "2", "-n", "6",
                           "--timeout", "1", "--out", str(out), str(wasm), "{i}"], cwd=REPO, capture_output=True)
    assert time.monotonic() - t < 60
    rows = results(out / "results.jsonl")
    assert [r["timed_out"] for r in rows] == [False] + [True] * 5
    assert proc.returncode == 134, proc.stderr


def test_ctrl_c_reaches_the_workers(tmp_path) -> None:
    wasm, out = spinner(tmp_path), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "--workers", "2", "-n", "6",
                             "--out", str(out), str(wasm), "{i}"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # Time for the workers to start their batches and instance 0 to end (a Ctrl-C before then stops them too:
    # see _merge). A CUDA worker's start (a context and the VM module) took over 4 s with 16 test processes
    # sharing the GPU.
    time.sleep(4 if BACKEND == "cpu" else 15)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    assert proc.returncode == 130, err
    rows = results(out / "results.jsonl")
    assert len(rows) == 6 and all(r["interrupted"] for r in rows[1:]) and rows[0]["exit_code"] == 0
    assert not any(p for p in os.listdir(tmp_path) if p.endswith(".tmp"))


def test_a_worker_that_fails_runs_its_range_again(tmp_path, capsysbinary, monkeypatch) -> None:
    """A worker that ends without a result (out of device memory while others held theirs, a crash) has its
    instances run again in a worker alone; the outputs are those of one process."""
    started = []
    real = workers._start

    def flaky(threads: int, *rest, **kw):  # the first worker started exits at once, reading its job and saying nothing
        started.append(threads)
        if len(started) == 1:
            return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.buffer.read()"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return real(threads, *rest, **kw)

    monkeypatch.setattr(workers, "_start", flaky)
    one, many = both(tmp_path, capsysbinary, monkeypatch, echo_program(), "x{i}")
    assert len(started) == 4  # three workers, then the first one's range again
    assert b"gpu-run: worker 0 (instances 0 to 11) failed (no result); running them again alone\n" in many[2]
    assert one[0] == many[0] and one[3:] == many[3:]


def test_seeded_batches_are_the_same_in_workers(tmp_path, capsysbinary, monkeypatch) -> None:
    """--seed keys each instance's clock and random bytes by its index in the batch, whichever process runs it."""
    p = Program()
    wat = p.wat(f"""(func (export "_start")
      {p.report("random", "(call $random_get (i32.const 300) (i32.const 8))")}
      (call $print (i32.const 300) (i32.const 8))
      {p.report("clock", "(call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 400))")}
      (call $print (i32.const 400) (i32.const 8)))""")
    one, many = both(tmp_path, capsysbinary, monkeypatch, wat, "--seed", "77", "x")
    assert one == many
    assert len({many[4][f"{i}.stdout"] for i in range(N)}) == N


def test_the_gpu_check_without_cupy_agrees_with_cupys() -> None:
    """The parent of the workers decides on the GPU without importing CuPy; it must see what CuPy sees."""
    from wasmgpu.runtime.backends import cuda_available, cuda_present

    assert cuda_present() == cuda_available()


def test_no_gpu_is_said_without_importing_cupy(monkeypatch) -> None:
    """--backend auto on a host with CuPy but no GPU or driver: the driver's count says so, CuPy stays out."""
    from wasmgpu.runtime import backends

    looked_up = []

    class Untouched:
        def __getattr__(self, name: str) -> object:
            looked_up.append(name)
            raise AttributeError(name)

    monkeypatch.setattr(backends, "cuda_present", lambda: False)
    monkeypatch.setitem(sys.modules, "cupy", Untouched())
    assert not backends.cuda_available() and looked_up == []


def test_the_parent_shows_the_workers_progress(tmp_path, capsysbinary, monkeypatch) -> None:
    """With --progress, each worker reports its finished instances and fuel after its launches; the parent's
    one bar adds them up."""
    from wasmgpu import cli

    seen: list[tuple[int, float]] = []
    closed = []

    class Bar:
        def close(self) -> None:
            closed.append(True)

    def fake_bar(n: int, asked: bool | None = None):
        assert n == N and asked is True
        return Bar(), lambda finished, fuel: seen.append((finished, fuel))

    monkeypatch.setattr(cli, "progress_bar", fake_bar)
    wasm = module(tmp_path, exit_with_first_digit())
    status, _, err = gpu_run(capsysbinary, "--workers", "3", "--progress", "-n", str(N), "--out",
                             str(tmp_path / "o"), str(wasm), "{i}", monkeypatch=monkeypatch)
    assert status == 1, err
    assert sum(k for k, _ in seen) == N and closed == [True]
    fuels = [f for _, f in seen]
    assert fuels[-1] > 0 and all(f >= 0 for f in fuels)


def test_outcomes_cross_the_pipe_in_columns_unchanged() -> None:
    """pack_outcomes/unpack_outcomes: every kind of ending comes back equal, in order."""
    import pickle

    from wasmgpu.wasi.command import Outcome, pack_outcomes, unpack_outcomes

    sent = [Outcome(5, exit_code=0, fuel_used=10, wall_time=0.5), Outcome(6, exit_code=3),
            Outcome(7, trap="unreachable", backtrace=["0x1 - m!f"], wall_time=0.25),
            Outcome(8, error="invalid exit status"), Outcome(9, values=(1, 2)), Outcome(10, timed_out=True),
            Outcome(11, interrupted=True), Outcome(12, exit_code=None, fuel_used=None),
            Outcome(13, exit_code=0, values=())]
    assert unpack_outcomes(pickle.loads(pickle.dumps(pack_outcomes(sent)))) == sent
    # A command's instances (each returned nothing) go in columns, none of them whole, and come back equal.
    exits = [Outcome(k, exit_code=k % 3, values=() if k % 2 else None, fuel_used=2**64 - 1 - k, wall_time=k / 7)
             for k in range(1000)]
    packed = pack_outcomes(exits)
    assert not packed["rare"]
    assert unpack_outcomes(pickle.loads(pickle.dumps(packed))) == exits


def test_a_ctrl_c_between_waves_is_noted_not_raised() -> None:
    """sigint_deferred: the first SIGINT while a wave's outputs are written is noted (the next wave stops);
    a second raises KeyboardInterrupt."""
    import pytest

    from wasmgpu.wasi.command import STOP_HEARD, sigint_deferred

    STOP_HEARD[0] = False
    try:
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert STOP_HEARD[0]
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
    finally:
        STOP_HEARD[0] = False


def test_max_children_is_the_batchs_room_not_each_workers(monkeypatch) -> None:
    """--max-children keeps a large batch in one process by default (its room is shared by all its
    instances); asked workers divide it, each keeping room for one."""
    import argparse

    class Opts:
        workers = None
        backend = "cpu"
        max_children = 100
    monkeypatch.setattr(workers, "_stdin_kind", lambda ahead=True: "none")
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 16)
    assert workers.plan_workers(Opts(), 100_000, False) is None
    assert workers.children_shares(argparse.Namespace(max_children=100), 3) == [33, 33, 34]
    assert workers.children_shares(argparse.Namespace(max_children=2), 3) == [1, 1, 1]
    assert workers.children_shares(argparse.Namespace(max_children=0), 2) == [None, None]


def test_verbose_counts_the_workers_start_and_exit(tmp_path, capsysbinary, monkeypatch) -> None:
    """-v's parts of a batch in workers begin with their start (spawn to main) and the module's loading,
    and end with their exit (result written to the parent having it), each a time of every worker."""
    wasm = module(tmp_path, echo_program())
    _, _, err = gpu_run(capsysbinary, "-v", "--workers", "2", "-n", "6", "--out", str(tmp_path / "o"), str(wasm),
                        monkeypatch=monkeypatch)
    [parts] = [line for line in err.decode().splitlines() if line.startswith("gpu-run: parts (summed")]
    names = [p.rsplit(" ", 2)[0] for p in parts.split(": ", 2)[2].split(", ")]
    assert names[:3] == ["worker start", "module", "engine"] and names[-1] == "worker exit", names
    start = float(parts.split("worker start ")[1].split(" ")[0])
    assert 0 < start < 60, parts
    [spread] = [line for line in err.decode().splitlines() if line.startswith("gpu-run: worker processes done")]
    first, last = (float(w) for w in spread.split("after ")[1].removesuffix(" s").split(" to "))
    assert 0 < first <= last < 60, spread


def test_a_worker_told_to_make_the_gpus_context_early_runs_without_one(tmp_path, capsysbinary, monkeypatch) -> None:
    """A worker for the GPU starts its context on a thread first (WARM_CONTEXT_VAR); where the driver has no
    GPU that thread does nothing, and the worker runs its range as any other."""
    monkeypatch.setattr(workers, "uses_gpu", lambda backend: True)
    started = []
    real_start = workers._start

    def start(*args, **kwargs):
        started.append(kwargs.get("gpu"))
        return real_start(*args, **kwargs)

    monkeypatch.setattr(workers, "_start", start)
    one, many = both(tmp_path, capsysbinary, monkeypatch, echo_program(), "arg{i}")
    assert one == many and started == [True] * 3


def test_the_early_context_is_the_one_cuda_uses() -> None:
    """warm_context makes the GPU's primary context before CuPy is touched, with the flags a shared GPU
    asks for; without a GPU it does nothing and waiting for it returns."""
    from wasmgpu.runtime import cuda_driver

    env = dict(os.environ, **{cuda_driver.SHARED_DEVICE_VAR: "1"})
    code = ("import ctypes, sys\nfrom wasmgpu.runtime import cuda_driver as c\n"
            "assert 'cupy' not in sys.modules\nc.warm_context()\nc.context_warmed()\n"
            "cuda = c._cuda_driver()\nif cuda is None or c.cuda_device_count() == 0:\n    print('none')\n"
            "else:\n    dev, flags, active = ctypes.c_int(), ctypes.c_uint(), ctypes.c_int()\n"
            "    assert cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0\n"
            "    assert cuda.cuDevicePrimaryCtxGetState(dev, ctypes.byref(flags), ctypes.byref(active)) == 0\n"
            "    print(active.value, flags.value & c.CU_CTX_SCHED_BLOCKING_SYNC)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    expected = "none" if cuda_driver.cuda_device_count() == 0 else f"1 {cuda_driver.CU_CTX_SCHED_BLOCKING_SYNC}"
    assert out.stdout.strip() == expected


def test_a_pipe_written_whole_is_given_to_the_workers(monkeypatch) -> None:
    """A pipe on stdin that its writer already ended (`cat in.txt | gpu-run -n 100000`) is read ahead and
    given whole to the workers, so that the batch is planned in workers; one still being written leaves the
    batch to gpu-run's own process, which streams it, the bytes read ahead first."""
    import io

    from wasmgpu.wasi import command

    data = b"piped to every instance\n" * 5000  # more than a pipe's buffer
    for ended in (True, False):
        r, w = os.pipe()
        if ended:  # the writer, as `cat` would be, writing all as fast as it is read
            writer = threading.Thread(target=lambda w=w: (os.write(w, data), os.close(w)))
            writer.start()
        else:
            os.write(w, data[:1000])
        stdin = io.TextIOWrapper(os.fdopen(r, "rb"))
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(command, "_HOST_STDIN", None)
        try:
            assert workers._stdin_kind() == ("read" if ended else None)
            if ended:
                assert workers._read_stdin() == data
                writer.join()
            else:
                rest = threading.Thread(target=lambda w=w: (os.write(w, data[1000:]), os.close(w)))
                rest.start()  # more than the pipe holds: written while the instances read
                get = command.stdin_for_batch(2)
                for i in range(2):
                    reader, got = get(i), b""
                    while chunk := reader.read(4096):
                        got += chunk
                    assert got == data
                rest.join()
        finally:
            stdin.close()
