"""gpu-run never answers with a Python traceback: bad numbers are usage errors, files and directories
that cannot be used are one line, Ctrl-C stops a batch and keeps its results, long backtraces are capped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

from tests.conftest import CLI_BACKEND_ARGS
from tests.test_wasi import Program, open_call
from wasmgpu import cli
from wasmgpu.errors import BACKTRACE_HEAD, BACKTRACE_TAIL, WasmGpuError
from wasmgpu.wasi import abi
from wasmgpu.wasm import opcodes as wo

REPO = Path(__file__).resolve().parent.parent


def module(tmp_path: Path, wat: str, name: str = "prog.wasm") -> Path:
    path = tmp_path / name
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def quick(tmp_path: Path) -> Path:
    return module(tmp_path, '(module (memory (export "memory") 1) (func (export "_start")))', "quick.wasm")


def gpu_run_process(*argv: str, env: dict[str, str] | None = None,
                    timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, *argv], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-run: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("argv, words", [
    (["--fuel", "-5"], "fuel must be between 0 and"),
    (["--fuel", str(1 << 64)], "fuel must be between 0 and"),
    (["--fuel", "lots"], "fuel must be an integer"),
    (["--instances", "0"], "number of instances must be between 1"),
    (["-n", "-3"], "number of instances must be between 1"),
    (["-n", "1e3"], "number of instances must be an integer"),
    (["--timeout", "nan"], "timeout must be a number of seconds above 0"),
    (["--timeout", "inf"], "timeout must be a number of seconds above 0"),
    (["--timeout", "-1"], "timeout must be a number of seconds above 0"),
    (["--timeout", "0"], "timeout must be a number of seconds above 0"),
    (["--timeout", "1e300"], "at most"),
    (["--timeout", "soon"], "timeout must be a number of seconds"),
    (["--seed", "-1"], "seed must be between 0 and"),
    (["--seed", "abc"], "seed must be an integer"),
    (["--max-memory", "4Q"], "invalid size"),
    (["--max-memory", "0"], "size must be above 0"),
    (["--max-memory=-1G"], "invalid size"),
    (["--env", "=value"], "non-empty KEY"),
    (["--dir", "::guest"], "both non-empty"),
    (["--fuel", "\u0663"], "fuel must be an integer"),  # an Arabic-Indic 3: int() would take it
    (["--max-memory", "\u0663G"], "invalid size"),
    (["--timeout", "\u0663"], "timeout must be a number of seconds"),
    (["-n", "1_000"], "number of instances must be an integer"),
])
def test_bad_numbers_are_usage_errors(tmp_path, capsys, argv, words) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*CLI_BACKEND_ARGS, *argv, str(quick(tmp_path))])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: gpu-run") and "Traceback" not in err
    option = argv[0].split("=")[0].lstrip("-")
    assert "gpu-run: error: argument " in err and option in err and words in err, err


def test_bad_numbers_from_the_shell(tmp_path) -> None:
    proc = gpu_run_process("--fuel", "-5", "--timeout", "nan", str(quick(tmp_path)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("gpu-run: error: argument --fuel")


def test_invoke_arguments_out_of_their_type_are_refused_not_wrapped() -> None:
    assert cli.parse_value("4294967295", wo.I32_T) == 0xFFFFFFFF and cli.parse_value("-1", wo.I32_T) == 0xFFFFFFFF
    assert cli.parse_value("0x10", wo.I64_T) == 16 and cli.parse_value(str(-(1 << 63)), wo.I64_T) == 1 << 63
    for text, ty in (("4294967298", wo.I32_T), ("-2147483649", wo.I32_T), (str(1 << 64), wo.I64_T),
                     ("\u0663", wo.I32_T), ("\u0663.5", wo.F64_T)):
        with pytest.raises(WasmGpuError, match="is not a valid"):
            cli.parse_value(text, ty)


def test_good_numbers_are_accepted() -> None:
    assert cli.fuel_arg("0") == 0 and cli.fuel_arg(str((1 << 64) - 2)) == (1 << 64) - 2
    assert cli.timeout_arg("0.25") == 0.25 and cli.instances_arg(" 12 ") == 12 and cli.seed_arg("9") == 9
    sizes = {"1073741824": 1 << 30, "4G": 4 << 30, "512M": 512 << 20, "64k": 64 << 10, "2GiB": 2 << 30,
             "1T": 1 << 40, "100B": 100}
    assert {text: cli.size_arg(text) for text in sizes} == sizes


@pytest.mark.parametrize("case", ["missing", "directory", "device", "not wasm", "unreadable", "bad dir",
                                  "dir is a file", "out is a file", "out below a file"])
def test_files_that_cannot_be_used_are_one_line(tmp_path, case) -> None:
    wasm = quick(tmp_path)
    argv = [str(wasm)]
    if case == "missing":
        argv = [str(tmp_path / "nope.wasm")]
        want = "No such file or directory"
    elif case == "directory":
        argv = [str(tmp_path)]
        want = "is a directory"
    elif case == "device":
        argv = ["/dev/zero"]  # endless: refused rather than read
        want = "not a regular file"
    elif case == "not wasm":
        (tmp_path / "text.wasm").write_text("hello\n")
        argv = [str(tmp_path / "text.wasm")]
        want = "cannot load module"
    elif case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        wasm.chmod(0)
        want = "Permission denied"
    elif case == "bad dir":
        argv = ["--dir", str(tmp_path / "missing"), str(wasm)]
        want = "does not exist"
    elif case == "dir is a file":
        argv = ["--dir", str(wasm), str(wasm)]
        want = "is not a directory"
    elif case == "out below a file":
        (tmp_path / "file").write_text("")
        argv = ["--out-jsonl", str(tmp_path / "file" / "all.jsonl"), str(wasm)]
        want = "is not a directory"
    else:
        (tmp_path / "file").write_text("")
        argv = ["--out", str(tmp_path / "file"), str(wasm)]
        want = "is not a directory"
    line = one_line_error(gpu_run_process(*argv))
    assert line.startswith("gpu-run: error: ") and want in line, line


def test_unexpected_exception_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    def broken(opts):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "run_module", broken)
    monkeypatch.delenv("WASMGPU_DEBUG", raising=False)
    assert cli.main([str(quick(tmp_path))]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.splitlines() == ["gpu-run: internal error: RuntimeError: boom (WASMGPU_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("WASMGPU_DEBUG", "1")
    assert cli.main([str(quick(tmp_path))]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "gpu-run: internal error: RuntimeError" in err


def test_max_memory_reaches_the_engine(tmp_path, capsys, monkeypatch) -> None:
    seen = []

    class Engine(cli.Engine):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kw) -> None:
            seen.append(kw.get("max_memory"))
            super().__init__(*args, **kw)

    monkeypatch.setattr(cli, "Engine", Engine)
    assert cli.main([*CLI_BACKEND_ARGS, "--max-memory", "4G", str(quick(tmp_path))]) == 0
    assert cli.main([*CLI_BACKEND_ARGS, str(quick(tmp_path))]) == 0
    assert seen == [4 << 30, None]


def test_max_memory_too_small_is_one_line(tmp_path) -> None:
    line = one_line_error(gpu_run_process("--max-memory", "1K", str(quick(tmp_path))))
    assert line.startswith("gpu-run: error: ") and "--max-memory" in line


def stop_program() -> str:
    """Creates `ready` in its directory, then by argv[1]: "0" prints and exits, "1" sleeps for a minute,
    anything else spins."""
    p = Program()
    oflags = abi.OFLAGS_CREAT
    return p.wat(f"""(func (export "_start") (local $a i32)
      (drop {open_call("(i32.const 3)", p.s("ready"), oflags)})
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (local.set $a (i32.load8_u (i32.load (i32.const 8196))))
      (call $print {p.s("started" + chr(10))})
      (if (i32.eq (local.get $a) (i32.const 48)) (then (call $proc_exit (i32.const 0))))
      (if (i32.eq (local.get $a) (i32.const 49)) (then
        (i64.store (i32.const 400) (i64.const 1))
        (i32.store8 (i32.const 408) (i32.const 0))
        (i32.store (i32.const 416) (i32.const 1))
        (i64.store (i32.const 424) (i64.const 60000000000))
        (drop (call $poll_oneoff (i32.const 400) (i32.const 500) (i32.const 1) (i32.const 100)))))
      (loop (br 0)))""")


def interrupt_stop_program(work: Path, *argv: str) -> tuple[subprocess.Popen, bytes, float]:
    """gpu-run ARGV on stop_program with `work` preopened, Ctrl-C once instance 0 has made work/ready:
    the process, its stderr, and the seconds from the signal to its exit."""
    proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (work / "ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        time.sleep(0.3)  # instance 0 exits right after creating the file
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=10)
        return proc, stderr, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_stops_the_batch_and_keeps_results(tmp_path) -> None:
    wasm = module(tmp_path, stop_program())
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    n = 4
    proc, stderr, took = interrupt_stop_program(work, "-n", str(n), "--out", str(out), "--dir", f"{work}::.",
                                                str(wasm), "{i}")
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert took < 2.0
    assert "Traceback" not in text and "gpu-run: interrupted: 1 of 4 instance(s) had finished" in text
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["instance"] for r in rows] == list(range(n))
    assert (rows[0]["exit_code"], rows[0]["trap"], rows[0]["interrupted"]) == (0, None, False)
    for r in rows[1:]:
        assert (r["interrupted"], r["trap"], r["exit_code"]) == (True, "interrupted", 130)
    assert all((out / f"{i}.stdout").read_bytes() == b"started\n" for i in range(n))


def test_ctrl_c_before_the_batch_runs_still_writes_results(tmp_path, monkeypatch, capsys) -> None:
    def interrupted_load(data, path, opts):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_module", interrupted_load)
    out = tmp_path / "out"  # not made yet
    assert cli.main([*CLI_BACKEND_ARGS, "-n", "3", "--out", str(out), str(quick(tmp_path))]) == 130
    assert capsys.readouterr().err == "gpu-run: interrupted\n"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["instance"], r["interrupted"]) for r in rows] == [(0, True), (1, True), (2, True)]


def test_fuel_used_of_finished_instances_in_a_timed_out_batch(tmp_path, capsys) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start") (local $a i32) (local $k i32)
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (local.set $a (i32.load8_u (i32.load (i32.const 8196))))
      (if (i32.eq (local.get $a) (i32.const 48)) (then
        (loop (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br_if 0 (i32.lt_u (local.get $k) (i32.const 1000))))
        (return)))
      (loop (br 0)))""")
    out = tmp_path / "out"
    status = cli.main([*CLI_BACKEND_ARGS, "-n", "2", "--timeout", "0.3", "--out", str(out),
                       str(module(tmp_path, wat)), "{i}"])
    assert status == 134
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert rows[0]["exit_code"] == 0 and not rows[0]["timed_out"]
    assert 990 <= rows[0]["fuel_used"] < 1100  # about one unit per back-edge of the loop
    assert rows[1]["timed_out"] and 0 < rows[1]["fuel_used"] < 1 << 62


RECURSE = """(module (memory (export "memory") 1)
  (func $down (param i32) (result i32) (i32.add (call $down (local.get 0)) (i32.const 1)))
  (func (export "_start") (drop (call $down (i32.const 0))))
  (func (export "deep") (result i32) (call $down (i32.const 0))))"""


def test_stack_exhaustion_backtrace_is_capped(tmp_path, capsys) -> None:
    wasm = module(tmp_path, RECURSE)
    shown = BACKTRACE_HEAD + BACKTRACE_TAIL
    status = cli.main([*CLI_BACKEND_ARGS, str(wasm)])
    err = capsys.readouterr().err
    assert status == 134 and "call stack exhausted" in err
    frames = [line for line in err.splitlines() if re.match(r" {7}\s+\d+: ", line)]
    assert len(frames) == shown, err
    assert [line for line in err.splitlines() if line.strip().startswith("... ") and "more frames" in line]
    status = cli.main([*CLI_BACKEND_ARGS, "--invoke", "deep", str(wasm)])
    err = capsys.readouterr().err
    # wasmtime's message: 5 lines before the frames, the trap after them.
    assert status == 134 and len(err.splitlines()) == 5 + shown + 1 + 1 and "more frames" in err
    out = tmp_path / "out"
    cli.main([*CLI_BACKEND_ARGS, "-n", "2", "--out", str(out), str(wasm)])
    capsys.readouterr()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(len(r["backtrace"]) == shown + 1 for r in rows)


def test_no_std_main_with_argc_argv_is_called_with_zeros(tmp_path, capsys) -> None:
    wat = """(module (memory (export "memory") 1)
      (func $__original_main (result i32) (i32.const 7))
      (func (export "main") (param i32 i32) (result i32)
        (i32.add (call $__original_main) (i32.add (local.get 0) (local.get 1)))))"""
    wasm = module(tmp_path, wat)
    assert cli.main([*CLI_BACKEND_ARGS, str(wasm)]) == 0
    assert capsys.readouterr().out == "7\n"
    assert cli.main([*CLI_BACKEND_ARGS, str(wasm), "1", "2"]) == 0  # explicit arguments are still passed
    assert capsys.readouterr().out == "10\n"
    assert cli.main([*CLI_BACKEND_ARGS, "--invoke", "main", str(wasm)]) == 1  # an explicit --invoke gets none
    assert "main takes 2 argument(s), 0 given" in capsys.readouterr().err


def test_undecodable_arguments_reach_the_guest_as_bytes(tmp_path) -> None:
    from tests.test_wasi import echo_program

    wasm = module(tmp_path, echo_program())
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "--env", "K=v\udcfe",
                           str(wasm), b"a\xffb".decode(errors="surrogateescape")],
                          capture_output=True, cwd=REPO, timeout=60)
    assert b"Traceback" not in proc.stderr
    assert b"\na\xffb\n" in proc.stdout and b"\nK=v\xfe\n" in proc.stdout


def test_atomics_run_and_name_their_feature_when_it_is_off(tmp_path) -> None:
    wasm = module(tmp_path, """(module (memory 1 1 shared)
      (func (export "main") (result i32) (i32.atomic.rmw.add (i32.const 0) (i32.const 7))))""")
    proc = gpu_run_process(str(wasm))
    assert proc.returncode == 0 and proc.stdout == "0\n", proc.stderr
    line = one_line_error(gpu_run_process("-W", "threads=n", str(wasm)))
    assert "atomic memory instructions need the threads feature, which is off" in line
    assert "at byte offset 0x" in line and "illegal opcode" not in line


def test_a_huge_batch_is_refused_in_one_line_at_once() -> None:
    begin = time.monotonic()
    proc = gpu_run_process("--instances", "600000000", "examples/fib.wasm")
    line = one_line_error(proc)
    assert "600000000 instances need at least" in line and "available (--max-memory)" in line
    assert time.monotonic() - begin < 10  # about 0.4 s, most of it Python's start
    # The same before any worker process starts (on a GPU, gpu-run plans workers for a batch this large).
    begin = time.monotonic()
    again = one_line_error(gpu_run_process("--workers", "8", "--instances", "600000000", "examples/fib.wasm"))
    assert again.split(";")[0] == line.split(";")[0] and "available (--max-memory)" in again
    assert time.monotonic() - begin < 10


@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_closed_stdout_or_stderr_changes_no_exit_status(tmp_path, closed: str) -> None:
    """Started with stdout or stderr closed, gpu-run runs on: what would go there is lost, the status is the
    run's (0 for a result, 134 for a trap), never an internal error."""
    fib = str(Path(__file__).resolve().parent.parent / "examples" / "fib.wasm")
    trap = module(tmp_path, '(module (func (export "f") (result i32) (i32.div_u (i32.const 1) (i32.const 0))))')
    base = [sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS]
    runs = (([*base, "-n", "3", "--invoke", "fib", fib, "3"], 0), ([*base, "-v", "--invoke", "f", str(trap)], 134))
    for argv, want in runs:
        cmd = " ".join(f"'{a}'" for a in argv)
        proc = subprocess.run(f"exec {closed}; {cmd}", shell=True, capture_output=True, text=True, timeout=120)
        assert proc.returncode == want, (closed, argv, proc.stdout, proc.stderr)
        assert "internal error" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("n", [1, 2])
def test_a_read_of_a_silent_pipe_ends_at_the_timeout(tmp_path, n: int) -> None:
    """stdin from a pipe whose writer neither writes nor ends: --timeout stops the instances waiting for it
    (as a sleep), rather than gpu-run waiting for the writer."""
    wasm = module(tmp_path, """(module (import "wasi_snapshot_preview1" "fd_read"
        (func $read (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1)
      (func (export "_start") (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 100))
        (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))""")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "-n", str(n), "--timeout", "1",
                             str(wasm)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, text=True)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        err = proc.stderr.read()  # until gpu-run ends: its stdin, the pipe, stays open and silent meanwhile
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdin.close()
    assert proc.returncode == 134 and "the timeout of 1 s was reached" in err and time.monotonic() - start < 30
