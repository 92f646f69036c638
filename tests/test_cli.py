"""gpu-run: the WASI command mode against wasmtime, batches, limits, and the --invoke mode."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from tests.conftest import CLI_BACKEND_ARGS
from tests.test_wasi import Program, cat_program, echo_program, files_program, run_wasmtime, tree
from wasmgpu import cli

N = 40


def gpu_run(capsysbinary, *argv: str, stdin: bytes = b"", monkeypatch=None) -> tuple[int, bytes, bytes]:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    status = cli.main([*CLI_BACKEND_ARGS, *argv])
    out, err = capsysbinary.readouterr()
    return status, out, err


def module(tmp_path: Path, wat: str, name: str = "prog.wasm") -> Path:
    path = tmp_path / name
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def exit_with_first_digit() -> str:
    """Prints argv[1] and exits with its first character's digit value."""
    p = Program()
    return p.wat(f"""(func (export "_start") (local $a i32)
      (drop (call $args_get (i32.const 8192) (i32.const 12288)))
      (local.set $a (i32.load (i32.const 8196)))
      (call $print (local.get $a) (call $strlen (local.get $a)))
      (call $print {p.s(chr(10))})
      (call $proc_exit (i32.sub (i32.load8_u (local.get $a)) (i32.const 48))))""")


def test_command_matches_wasmtime(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, echo_program())
    args, env = ["one", "twö", "", "--flag=x"], [("A", "1"), ("B", "x=y")]
    status, out, err = gpu_run(capsysbinary, "--env", "A=1", "--env", "B=x=y", str(wasm), *args,
                               monkeypatch=monkeypatch)
    code, ref_out, ref_err = run_wasmtime(echo_program(), tmp_path / "ref", ["prog.wasm", *args], env)
    assert (status, out, err) == (code, ref_out, ref_err)
    assert out.startswith(b"args_sizes_get=0\nargc=5\n") and b"\nprog.wasm\n" in out


def test_env_without_value_passes_the_hosts(tmp_path, capsysbinary, monkeypatch) -> None:
    monkeypatch.setenv("GPU_RUN_TEST_VAR", "from host")
    wasm = module(tmp_path, echo_program())
    _, out, _ = gpu_run(capsysbinary, "--env", "GPU_RUN_TEST_VAR", "--env", "NOT_SET_ANYWHERE_X", str(wasm))
    assert b"\nGPU_RUN_TEST_VAR=from host\n" in out and b"NOT_SET_ANYWHERE_X" not in out


def test_argv0_is_the_module_base_name(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, echo_program(), "named.wasm")
    _, out, _ = gpu_run(capsysbinary, str(wasm))
    assert b"\nnamed.wasm\n" in out and str(tmp_path).encode() not in out
    _, out, _ = gpu_run(capsysbinary, "--argv0", "custom", str(wasm))
    assert b"\ncustom\n" in out


def test_stdin_passes_through(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, cat_program())
    data = b"".join(b"line %d\n" % k for k in range(100))
    status, out, err = gpu_run(capsysbinary, str(wasm), stdin=data, monkeypatch=monkeypatch)
    code, ref_out, ref_err = run_wasmtime(cat_program(), tmp_path / "ref", stdin=data)
    assert (status, out, err) == (code, ref_out, ref_err) == (0, data + b"total=%d\n" % len(data), b"bytes ")


def test_dir_and_files_left_behind(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, files_program())
    (tmp_path / "gpu").mkdir()
    (tmp_path / "ref").mkdir()
    status, out, _ = gpu_run(capsysbinary, "--dir", f"{tmp_path / 'gpu'}::.", str(wasm), "data.txt")
    code, ref_out, _ = run_wasmtime(files_program(), tmp_path / "io", ["prog.wasm", "data.txt"],
                                    preopen=tmp_path / "ref")
    assert (status, out) == (code, ref_out)
    assert tree(tmp_path / "gpu") == tree(tmp_path / "ref") != {}


def test_dir_guest_name(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat(f"""(func (export "_start")
      {p.report("prestat", "(call $fd_prestat_get (i32.const 3) (i32.const 100))")}
      {p.report("len", "(i32.load (i32.const 104))")}
      (drop (call $fd_prestat_dir_name (i32.const 3) (i32.const 8192) (i32.load (i32.const 104))))
      (call $print (i32.const 8192) (i32.load (i32.const 104)))
      {p.report("", "(call $fd_prestat_get (i32.const 4) (i32.const 100))")})""")
    wasm = module(tmp_path, wat)
    _, out, _ = gpu_run(capsysbinary, "--dir", f"{tmp_path}::/data/x", str(wasm))
    assert out == b"prestat=0\nlen=7\n/data/x=8\n"
    _, out, _ = gpu_run(capsysbinary, "--dir", ".", str(wasm))
    assert out == b"prestat=0\nlen=1\n.=8\n"


def test_batch_with_out_dir_matches_wasmtime_per_instance(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, files_program())
    for i in range(N):
        (tmp_path / f"w{i}").mkdir()
        (tmp_path / f"r{i}").mkdir()
    out_dir = tmp_path / "out"
    status, out, err = gpu_run(capsysbinary, "-n", str(N), "--out", str(out_dir),
                               "--dir", f"{tmp_path}/w{{i}}::.", str(wasm), "file{i}.txt")
    assert status == 0 and out == b""
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert [r["instance"] for r in rows] == list(range(N))
    for i, row in enumerate(rows):
        code, ref_out, ref_err = run_wasmtime(files_program(), tmp_path / "io" / str(i),
                                              ["prog.wasm", f"file{i}.txt"], preopen=tmp_path / f"r{i}")
        assert row["exit_code"] == code == 0 and row["trap"] is None
        assert row["wall_time"] >= 0 and row["fuel_used"] > 0
        assert (out_dir / f"{i}.stdout").read_bytes() == ref_out
        assert (out_dir / f"{i}.stderr").read_bytes() == ref_err
        assert tree(tmp_path / f"w{i}") == tree(tmp_path / f"r{i}")
        assert f"\nile{i}.txt\n" in (out_dir / f"{i}.stdout").read_text()  # read back from offset 1


def test_batch_args_env_and_exit_status(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, echo_program())
    status, out, err = gpu_run(capsysbinary, "-n", str(N), "--env", "K=v{i}", str(wasm), "a{i}", "{i}{i}")
    lines = out.decode().splitlines()
    for i in range(N):
        mine = [line[len(f"[{i}] "):] for line in lines if line.startswith(f"[{i}] ")]
        args = ["prog.wasm", f"a{i}", f"{i}{i}"]
        code, ref_out, _ = run_wasmtime(echo_program(), tmp_path / str(i), args, [("K", f"v{i}")])
        assert mine == ref_out.decode().splitlines()
        if i == 0:
            assert status == code  # the first instance exits non-zero: its code is the batch's
    assert err.decode().splitlines() == [f"[{i}] done" for i in range(N)]


def test_batch_status_is_the_first_nonzero(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, exit_with_first_digit())
    out_dir = tmp_path / "out"
    status, _, _ = gpu_run(capsysbinary, "-n", "5", "--out", str(out_dir), str(wasm), "{i}")
    assert status == 1
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert [r["exit_code"] for r in rows] == [0, 1, 2, 3, 4]
    status, out, _ = gpu_run(capsysbinary, "-n", "3", str(wasm), "0")
    assert status == 0 and out == b"[0] 0\n[1] 0\n[2] 0\n"


def test_single_instance_streams_output(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat(f'(func (export "_start") (call $print {p.s("no newline")}) (call $eprint {p.s("err")}))')
    status, out, err = gpu_run(capsysbinary, str(module(tmp_path, wat)))
    assert (status, out, err) == (0, b"no newline", b"err")


def test_trap_message_and_status(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat(f'(func $boom unreachable) (func (export "_start") (call $print {p.s("so far" + chr(10))}) '
                '(call $boom))')
    status, out, err = gpu_run(capsysbinary, str(module(tmp_path, wat)))
    assert status == 134 and out == b"so far\n"
    text = err.decode()
    assert text.startswith("Error: failed to run main module `")
    assert "wasm trap: wasm `unreachable` instruction executed" in text
    assert "error while executing at wasm backtrace:" in text and re.search(r"\n {11}0: +0x[0-9a-f]+ - ", text)


def test_batch_trap_messages_are_prefixed(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat('(func (export "_start") (drop (i32.div_u (i32.const 1) (i32.const 0))))')
    status, _, err = gpu_run(capsysbinary, "-n", "2", str(module(tmp_path, wat)))
    assert status == 134
    lines = err.decode().splitlines()
    assert all(line.startswith(("[0] ", "[1] ")) for line in lines)
    assert "[1]     2: wasm trap: integer divide by zero" in lines


def test_invalid_exit_status_is_an_error(tmp_path, capsysbinary) -> None:
    wat = Program().wat('(func (export "_start") (call $proc_exit (i32.const 200)))')
    status, _, err = gpu_run(capsysbinary, str(module(tmp_path, wat)))
    assert status == 1 and b"exit with invalid exit status outside of [0..126)" in err


def test_fuel_and_timeout_stop_runaway_instances(tmp_path, capsysbinary) -> None:
    wat = Program().wat('(func (export "_start") (loop (br 0)))')
    wasm = module(tmp_path, wat)
    status, _, err = gpu_run(capsysbinary, "--fuel", "5000", "-n", "2", "--out", str(tmp_path / "o"), str(wasm))
    assert status == 134 and b"all fuel consumed" in err
    rows = [json.loads(line) for line in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert [r["fuel_used"] for r in rows] == [5000, 5000]
    status, _, err = gpu_run(capsysbinary, "--timeout", "0.2", str(wasm))
    assert status == 134 and b"interrupt" in err and b"timeout" in err


def test_seed_makes_runs_identical(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start")
      (drop (call $random_get (i32.const 200) (i32.const 16)))
      (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 216)))
      (drop (call $write (i32.const 1) (i32.const 200) (i32.const 24))))""")
    wasm = module(tmp_path, wat)

    def outputs(seed: str, run: int) -> list[bytes]:
        out = tmp_path / f"o{seed}-{run}"
        assert gpu_run(capsysbinary, "--seed", seed, "-n", "3", "--out", str(out), str(wasm))[0] == 0
        return [(out / f"{i}.stdout").read_bytes() for i in range(3)]

    first = outputs("9", 0)
    assert first == outputs("9", 1)
    assert len(set(first)) == 3 and all(len(b) == 24 for b in first)
    assert outputs("10", 0) != first


def test_invoke_mode_is_kept(tmp_path, capsysbinary) -> None:
    fib = """(module (func $fib (export "fib") (param i32) (result i32)
      (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
        (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                       (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
      (func (export "main") (result i32) (i32.const 7)))"""
    wasm = module(tmp_path, fib)
    assert gpu_run(capsysbinary, "--invoke", "fib", str(wasm), "10") == (0, b"55\n", b"")
    assert gpu_run(capsysbinary, str(wasm)) == (0, b"7\n", b"")
    status, out, _ = gpu_run(capsysbinary, "-n", "3", "--invoke", "fib", str(wasm), "{i}")
    assert (status, out) == (0, b"0: 0\n1: 1\n2: 1\n")


def test_invoke_on_a_command_module_with_wasi(tmp_path, capsysbinary) -> None:
    p = Program()
    wat = p.wat(f'(func (export "_start") unreachable) (func (export "hello") (param i32) (result i32) '
                f'(call $print {p.s("hi" + chr(10))}) (i32.add (local.get 0) (i32.const 1)))')
    assert gpu_run(capsysbinary, "--invoke", "hello", str(module(tmp_path, wat)), "41") == (0, b"hi\n42\n", b"")


def test_unknown_wasi_import_is_reported(tmp_path, capsysbinary) -> None:
    wat = """(module (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))
      (memory (export "memory") 1) (func (export "_start")))"""
    status, _, err = gpu_run(capsysbinary, str(module(tmp_path, wat)))
    assert status == 1 and b"fd_teleport" in err


def test_bad_dir_is_reported(tmp_path, capsysbinary) -> None:
    wasm = module(tmp_path, echo_program())
    status, _, err = gpu_run(capsysbinary, "--dir", str(tmp_path / "missing"), str(wasm))
    assert status == 1 and b"missing" in err


@pytest.mark.parametrize("n", [1, 3])
def test_stdin_is_given_to_every_instance(tmp_path, capsysbinary, monkeypatch, n) -> None:
    wasm = module(tmp_path, cat_program())
    status, out, _ = gpu_run(capsysbinary, "-n", str(n), str(wasm), stdin=b"abc\n", monkeypatch=monkeypatch)
    want = b"abc\ntotal=4\n"
    if n > 1:
        want = b"".join(b"[%d] abc\n[%d] total=4\n" % (i, i) for i in range(n))
    assert (status, out) == (0, want)


def sleep_program(ns: int) -> str:
    """Sleeps `ns` nanoseconds on the monotonic clock through poll_oneoff, then prints the errno."""
    p = Program()
    return p.wat(f"""(func (export "_start")
      (i64.store (i32.const 400) (i64.const 1))
      (i32.store8 (i32.const 408) (i32.const 0))
      (i32.store (i32.const 416) (i32.const 1))
      (i64.store (i32.const 424) (i64.const {ns}))
      {p.report("poll", "(call $poll_oneoff (i32.const 400) (i32.const 500) (i32.const 1) (i32.const 100))")})""")


def test_sleeps_of_a_batch_overlap(tmp_path, capsysbinary) -> None:
    import time

    wasm = module(tmp_path, sleep_program(300_000_000))
    start = time.monotonic()
    status, out, _ = gpu_run(capsysbinary, "-n", "8", str(wasm))
    took = time.monotonic() - start
    assert status == 0 and out == b"".join(b"[%d] poll=0\n" % i for i in range(8))
    assert 0.3 <= took < 1.5


def test_timeout_cuts_a_long_sleep(tmp_path, capsysbinary) -> None:
    import time

    wasm = module(tmp_path, sleep_program(30_000_000_000))
    start = time.monotonic()
    status, _, err = gpu_run(capsysbinary, "--timeout", "0.3", "-n", "2", "--out", str(tmp_path / "o"), str(wasm))
    assert time.monotonic() - start < 5
    assert status == 134 and b"timeout" in err
    rows = [json.loads(line) for line in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert all(r["timed_out"] and "interrupt" in r["trap"] for r in rows)


def test_progress_bar_on_a_terminal(tmp_path, capsysbinary, monkeypatch) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setattr(cli.Output, "_tty", staticmethod(lambda stream: stream is sys.stderr))
    bar, update = cli.progress_bar(3)
    assert bar is not None
    bar.close()
    wasm = module(tmp_path, exit_with_first_digit())
    status, out, _ = gpu_run(capsysbinary, "-n", "3", str(wasm), "0")
    assert status == 0 and out == b"[0] 0\n[1] 0\n[2] 0\n"


def loud_program(chunks: int) -> str:
    """Writes `chunks` times 64 KiB of 64-byte lines to stdout (the first line of chunk c ends with the
    digit c % 10), then `end` to stderr."""
    p = Program()
    return p.wat(f"""(func (export "_start") (local $k i32) (local $c i32)
      (memory.fill (i32.const 65536) (i32.const 97) (i32.const 65536))
      (loop $lines
        (i32.store8 (i32.add (i32.const 65536) (i32.add (local.get $k) (i32.const 63))) (i32.const 10))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br_if $lines (i32.lt_u (local.get $k) (i32.const 65536))))
      (loop $chunks
        (i32.store8 (i32.const 65598) (i32.add (i32.const 48) (i32.rem_u (local.get $c) (i32.const 10))))
        (drop (call $write (i32.const 1) (i32.const 65536) (i32.const 65536)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br_if $chunks (i32.lt_u (local.get $c) (i32.const {chunks}))))
      (call $eprint {p.s("end" + chr(10))}))""", pages=3)


def loud_output(chunks: int) -> bytes:
    line = b"a" * 63 + b"\n"
    return b"".join(b"a" * 62 + b"%d\n" % (c % 10) + line * 1023 for c in range(chunks))


# Runs a command with stdout and stderr to files and prints its status and peak RSS (KiB). A child's peak
# counts the memory of the process it was forked from, so this small process forks gpu-run, not pytest.
RSS_PROBE = """
import os, subprocess, sys
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    proc = subprocess.Popen(sys.argv[3:], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def gpu_run_rss(tmp_path: Path, *argv: str) -> tuple[int, bytes, bytes, float]:
    """gpu-run in a child process: status, stdout, stderr and its peak RSS in MiB."""

    out, err = tmp_path / "rss.stdout", tmp_path / "rss.stderr"
    probe = subprocess.run([sys.executable, "-c", RSS_PROBE, str(out), str(err), sys.executable, "-m",
                            "wasmgpu.cli", *CLI_BACKEND_ARGS, *argv], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parent.parent)
    status, rss = probe.stdout.split()
    return int(status), out.read_bytes(), err.read_bytes(), int(rss) / 1024


def test_batch_output_is_spooled_exactly_within_bounded_memory(tmp_path) -> None:
    """4 instances write 10 MiB each: shown grouped (no --out) and in the --out files, byte for byte,
    while the host holds at most a few MiB of it (held in full, the RSS grew by about 100 MiB)."""
    n, chunks = 4, 160
    small = module(tmp_path, loud_program(1), "small.wasm")
    loud = module(tmp_path, loud_program(chunks), "loud.wasm")
    # The interpreter, built once before measuring: a child's peak RSS includes the compiler's.
    tier = ["--tier", "interp"]
    assert gpu_run_rss(tmp_path, *tier, str(small))[0] == 0
    status, out, err, base_rss = gpu_run_rss(tmp_path, *tier, "-n", str(n), str(small))
    assert status == 0 and len(out) == n * (65536 + 4 * 1024)
    status, out, err, rss = gpu_run_rss(tmp_path, *tier, "-n", str(n), str(loud))
    assert status == 0 and err == b"".join(b"[%d] end\n" % i for i in range(n))
    want = loud_output(chunks)
    lines = want.split(b"\n")[:-1]
    assert out == b"".join(b"".join(b"[%d] " % i + line + b"\n" for line in lines) for i in range(n))
    assert rss < base_rss + 40, (rss, base_rss)
    status, out, err, rss = gpu_run_rss(tmp_path, *tier, "-n", str(n), "--out", str(tmp_path / "o"), str(loud))
    assert status == 0 and out == b""
    assert all((tmp_path / "o" / f"{i}.stdout").read_bytes() == want for i in range(n))
    assert all((tmp_path / "o" / f"{i}.stderr").read_bytes() == b"end\n" for i in range(n))
    assert rss < base_rss + 40, (rss, base_rss)


def test_spool_sinks_keep_order_within_their_budget(tmp_path) -> None:
    import random

    from wasmgpu.wasi.context import OutputBudget, SpoolSink

    rng = random.Random(7)
    budget = OutputBudget(total=4000)
    sinks = [SpoolSink(tmp_path / f"{i}", limit=1500, budget=budget, keep_empty=False) for i in range(50)]
    want = [bytearray() for _ in sinks]
    peak = 0
    for _ in range(3000):
        i = rng.randrange(len(sinks))
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        sinks[i].write(data)
        want[i] += data
        peak = max(peak, budget.held)
        assert budget.held == sum(len(s.data) for s in sinks)
    assert peak <= 4000 and any(s.created for s in sinks)
    assert [b"".join(s.chunks(size=100)) for s in sinks] == [bytes(w) for w in want]
    assert all(len(s) == len(w) for s, w in zip(sinks, want, strict=True))
    quiet = SpoolSink(tmp_path / "quiet", budget=budget, keep_empty=False)
    quiet.write(b"x")
    quiet.flush_to_file()
    assert (tmp_path / "quiet").read_bytes() == b"x"
    unused = SpoolSink(tmp_path / "unused", keep_empty=False)
    unused.flush_to_file()
    kept = SpoolSink(tmp_path / "kept")
    kept.flush_to_file()
    assert not (tmp_path / "unused").exists() and (tmp_path / "kept").read_bytes() == b""


def test_ended_sinks_files_are_written_on_a_thread(tmp_path) -> None:
    """FileWriter: ended instances' files are made on a thread of its own, each with its bytes (an empty
    one too, where kept); reading a sink waits for its file; a failed write is raised, not lost."""
    from wasmgpu.wasi.context import FileWriter, OutputBudget, SpoolSink

    budget = OutputBudget(total=1 << 20)
    sinks = [SpoolSink(tmp_path / f"{i}.out", limit=64, budget=budget) for i in range(30)]
    for i, sink in enumerate(sinks):
        sink.write(b"x" * (i * 5))  # past the limit: some spilled already, some held
    writer = FileWriter()
    writer.submit(sinks)
    assert budget.held == 0
    assert [b"".join(s.chunks()) for s in sinks] == [b"x" * (i * 5) for i in range(30)]
    writer.wait()
    assert [(tmp_path / f"{i}.out").read_bytes() for i in range(30)] == [b"x" * (i * 5) for i in range(30)]
    # Past `held` bytes handed over, a submit waits for the writes before it.
    small = FileWriter(held=100)
    for k in range(5):
        sink = SpoolSink(tmp_path / f"b{k}.out", budget=budget)
        sink.write(b"z" * 60)
        small.submit([sink])
        assert sum(n for _, n in small._pending) <= 100
    small.wait()
    assert [(tmp_path / f"b{k}.out").read_bytes() for k in range(5)] == [b"z" * 60] * 5
    lost = SpoolSink(tmp_path / "no such dir" / "0.out")
    lost.write(b"y")
    writer.submit([lost])
    with pytest.raises(FileNotFoundError):
        writer.wait()


def test_sinks_of_a_shard_share_one_file_and_keep_order(tmp_path) -> None:
    """A spool's sinks append to one file (no file per instance); each reads back exactly its own bytes,
    also through the reader a parent process makes over the file from the index."""
    import random

    from wasmgpu.wasi.context import OutputBudget, ShardFile, SpoolSink, flush_sinks

    rng = random.Random(11)
    budget = OutputBudget(total=3000)
    shard = ShardFile(str(tmp_path / "shard"))
    sinks = [SpoolSink(tmp_path / f"{i}", limit=1200, budget=budget, keep_empty=False, shard=shard)
             for i in range(40)]
    want = [bytearray() for _ in sinks]
    for _ in range(2500):
        i = rng.randrange(len(sinks))
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
        sinks[i].write(data)
        want[i] += data
        assert budget.held == sum(len(s.data) for s in sinks) <= 3000
    assert any(s.segments for s in sinks)
    assert [b"".join(s.chunks(size=7)) for s in sinks] == [bytes(w) for w in want]
    flush_sinks(sinks)
    shard.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"]
    again = ShardFile(str(tmp_path / "shard"), existing=True)
    for sink, w in zip(sinks, want, strict=True):
        reader = SpoolSink(tmp_path / "x", keep_empty=False, shard=again)
        reader.segments = list(sink.segments)
        assert b"".join(reader.chunks()) == bytes(w)
    again.close()


def test_write_prefixed_is_the_same_in_any_chunks() -> None:
    import random

    def whole(data: bytes, prefix: str) -> bytes:
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        return b"".join(prefix.encode() + line + b"\n" for line in lines)

    rng = random.Random(3)
    for _ in range(500):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(data) + 1), rng.randint(0, min(5, len(data) + 1))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        for prefix in ("", "[3] "):
            buf = io.BytesIO()
            cli.write_prefixed(buf, chunks, prefix)
            assert buf.getvalue() == (whole(data, prefix) if prefix else data), (chunks, prefix)


def test_results_jsonl_holds_the_typed_values_returned(capsysbinary, tmp_path) -> None:
    wasm = module(tmp_path, """(module (func (export "f") (param i32) (result i32 i64 f32 f64)
      (i32.sub (i32.const 0) (local.get 0)) (i64.const -5) (f32.div (f32.const 0) (f32.const 0)) (f64.const 1.5)))""")
    status, _, err = gpu_run(capsysbinary, "-n", "2", "--out", str(tmp_path / "out"), "--invoke", "f", str(wasm), "{i}")
    assert status == 0, err
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["results"] for r in rows] == [[0, -5, "nan", 1.5], [-1, -5, "nan", 1.5]]


def test_verbose_says_where_the_batch_ran(tmp_path, capsysbinary, monkeypatch) -> None:
    wasm = module(tmp_path, echo_program())
    _, _, err = gpu_run(capsysbinary, "-v", "-n", "3", "--out", str(tmp_path / "o"), str(wasm),
                        monkeypatch=monkeypatch)
    lines = err.decode().splitlines()
    assert any(re.fullmatch(r"gpu-run: backend (cpu|cpu-interleaved|cuda), tier (interp|compiled); 3 instance\(s\) "
                            r"in 1 wave\(s\)", line) for line in lines), lines
    assert any(re.fullmatch(r"gpu-run: (cache hit|built): vm-\w+\.(so|cubin) \(\d+\.\d\d s\)", line) for line in lines)
    assert any(re.fullmatch(r"gpu-run: time: load \d+\.\d\d s, run \d+\.\d\d s, outputs \d+\.\d\d s", line)
               for line in lines), lines
    # Where the run's time went, part by part, in the order they happen (the program makes no host call),
    # and how many launches there were.
    [parts] = [line for line in lines if line.startswith("gpu-run: parts: ")]
    names = [re.fullmatch(r"(.+) \d+\.\d\d s( \(\d+\))?", p)[1]  # type: ignore[index]
             for p in parts.removeprefix("gpu-run: parts: ").split(", ")]
    assert names == ["engine", "store", "output sinks", "contexts", "wasi", "instantiate", "launches",
                     "after launches", "outputs"]
    assert re.search(r"launches \d+\.\d\d s \([1-9]\d*\)", parts), parts


def test_progress_counts_instances_and_fuel(tmp_path) -> None:
    from wasmgpu.runtime.engine import Engine
    from wasmgpu.wasi.command import run_batch

    seen: list[tuple[int, float]] = []
    engine = Engine(CLI_BACKEND_ARGS[1])
    wat = """(module (func (export "f") (param i32) (local i32)
      (loop (local.set 1 (i32.add (local.get 1) (i32.const 1))) (br_if 0 (i32.lt_u (local.get 1) (local.get 0))))))"""
    store = engine.store(40, fuel_slice=64)
    inst = store.instantiate(engine.load(wasmtime.wat2wasm(wat)).module, {})
    outcomes = run_batch(store, None, inst.exports["f"], [(30 * i,) for i in range(40)], fuel=10**6,
                         progress=lambda k, fuel: seen.append((k, fuel)))
    assert all(o.trap is None for o in outcomes)
    assert sum(k for k, _ in seen) == 40 and len(seen) > 3  # a launch per slice of 64 fuel
    fuels = [f for _, f in seen]
    assert fuels == sorted(fuels) and fuels[-1] == sum(o.fuel_used for o in outcomes)


def test_progress_bar_follows_the_flag(monkeypatch) -> None:
    assert cli.progress_bar(10, False) == (None, None)
    bar, update = cli.progress_bar(10, True)
    assert bar is not None
    update(3, 1234.0)
    assert bar.n == 3 and "fuel 1.23e+03" in str(bar)
    bar.close()
    monkeypatch.setattr(cli.Output, "_tty", staticmethod(lambda stream: False))
    assert cli.progress_bar(10) == (None, None)
