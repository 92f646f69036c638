"""gpu-run --out-jsonl: one JSON line per instance with its results.jsonl row, stdout and stderr; the
same as --out writes in its files, bytes kept exactly, and rows for every instance after Ctrl-C."""

from __future__ import annotations

import base64
import io
import json
import random
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLI_BACKEND_ARGS, REPO
from tests.test_cli import exit_with_first_digit, gpu_run, loud_output, loud_program, module
from tests.test_cli_errors import interrupt_stop_program, stop_program
from tests.test_wasi import Program
from wasmgpu import cli

FIB = str(REPO / "examples" / "fib.wasm")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def same_as_out_dir(capsysbinary, tmp_path: Path, *argv: str, n: int) -> list[dict]:
    """Runs argv with --out and with --out-jsonl; checks that each line holds what --out wrote (the
    files and the results.jsonl row, but the timing and fuel) and that both exit alike; returns the lines."""
    out_dir, jsonl = tmp_path / "out", tmp_path / "sub" / "all.jsonl"
    status, out, _ = gpu_run(capsysbinary, "-n", str(n), "--out", str(out_dir), *argv)
    status_j, out_j, _ = gpu_run(capsysbinary, "-n", str(n), "--out-jsonl", str(jsonl), *argv)
    assert (status_j, out_j) == (status, out)
    lines = rows(jsonl)
    assert [r["instance"] for r in lines] == list(range(n))
    for line, row in zip(lines, rows(out_dir / "results.jsonl"), strict=True):
        i = row["instance"]
        assert line.pop("stdout").encode() == (out_dir / f"{i}.stdout").read_bytes()
        assert line.pop("stderr").encode() == (out_dir / f"{i}.stderr").read_bytes()
        # The fuel a run uses may differ between two runs (a program's HashMap seeded by random_get).
        assert {**line, "wall_time": 0, "fuel_used": 0} == {**row, "wall_time": 0, "fuel_used": 0}
    assert [p.name for p in jsonl.parent.iterdir()] == ["all.jsonl"]  # no temporary file left
    return rows(jsonl)


def test_charcount_batch_matches_out_dir(tmp_path, capsysbinary) -> None:
    wasm = REPO / "examples" / "charcount" / "charcount.wasm"
    for i in range(3):
        (tmp_path / "in" / str(i)).mkdir(parents=True)
        (tmp_path / "in" / str(i) / "input.txt").write_text("hello " * (i + 1) + "é" * i)
    lines = same_as_out_dir(capsysbinary, tmp_path / "run", "--dir", f"{tmp_path / 'in'}/{{i}}::.", str(wasm), n=3)
    assert all(r["stdout"].startswith("Found ") and r["exit_code"] == 0 for r in lines)


def test_exit_codes_and_traps_match_out_dir(tmp_path, capsysbinary) -> None:
    lines = same_as_out_dir(capsysbinary, tmp_path / "a", str(module(tmp_path, exit_with_first_digit())), "{i}",
                            n=3)
    assert [(r["exit_code"], r["stdout"]) for r in lines] == [(0, "0\n"), (1, "1\n"), (2, "2\n")]
    p = Program()
    wat = p.wat(f'(func (export "_start") (call $print {p.s("so far" + chr(10))}) unreachable)')
    lines = same_as_out_dir(capsysbinary, tmp_path / "b", str(module(tmp_path, wat, "trap.wasm")), n=1)
    assert lines[0]["exit_code"] == 134 and lines[0]["stdout"] == "so far\n"
    assert "wasm trap: wasm `unreachable` instruction executed" in lines[0]["stderr"]


def test_bytes_that_are_not_utf8_come_back_exactly(tmp_path, capsysbinary) -> None:
    p = Program()
    raw = bytes(range(256)) + b"\xc3"  # a lone lead byte at the end too
    wat = p.wat(f'(func (export "_start") (call $print {p.s(raw)}) (call $eprint {p.s("ok é")}))')
    (tmp_path / "bytes.wat").write_text(wat)
    jsonl = tmp_path / "o.jsonl"
    status, out, err = gpu_run(capsysbinary, "--out-jsonl", str(jsonl), str(tmp_path / "bytes.wat"))
    assert (status, out, err) == (0, b"", b"")  # one instance: captured, not streamed
    [line] = rows(jsonl)
    assert "stdout" not in line and base64.b64decode(line["stdout_b64"]) == raw
    assert line["stderr"] == "ok é" and "stderr_b64" not in line


def test_output_past_the_memory_budget_is_spooled(tmp_path, capsysbinary, monkeypatch) -> None:
    monkeypatch.setattr(cli, "HELD_PER_STREAM", 10_000)
    jsonl = tmp_path / "o.jsonl"
    status, _, _ = gpu_run(capsysbinary, "-n", "2", "--out-jsonl", str(jsonl), str(module(tmp_path, loud_program(3))))
    assert status == 0
    assert [(r["stdout"].encode(), r["stderr"]) for r in rows(jsonl)] == [(loud_output(3), "end\n")] * 2


def test_bytes_fields_are_the_same_in_any_chunks() -> None:
    rng = random.Random(5)
    for _ in range(300):
        text = "".join(rng.choice("a\n\"\\\x01é€😀") for _ in range(rng.randint(0, 20)))
        data = text.encode() if rng.random() < 0.5 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        cuts = sorted(rng.sample(range(len(data) + 1), rng.randint(0, min(4, len(data) + 1))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        buf = io.StringIO()
        cli.write_bytes_field(buf, "stdout", lambda chunks=chunks: iter(chunks))
        field = json.loads("{" + buf.getvalue()[2:] + "}")
        try:
            assert field == {"stdout": data.decode()}, chunks
        except UnicodeDecodeError:
            assert base64.b64decode(field["stdout_b64"]) == data, chunks


def test_out_and_out_jsonl_together_is_a_usage_error(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "--out", str(tmp_path / "d"),
                           "--out-jsonl", str(tmp_path / "f"), FIB],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "gpu-run: error: argument --out-jsonl: not allowed with argument --out"
    assert not (tmp_path / "d").exists() and not (tmp_path / "f").exists()


def test_out_jsonl_that_is_a_directory_is_refused_before_the_run(tmp_path, capsys) -> None:
    assert cli.main([*CLI_BACKEND_ARGS, "-n", "2", "--out-jsonl", str(tmp_path), FIB]) == 1
    assert capsys.readouterr().err.splitlines() == [f"gpu-run: error: --out-jsonl {str(tmp_path)!r} is a directory"]


def test_ctrl_c_before_the_batch_runs_still_writes_every_row(tmp_path, monkeypatch, capsys) -> None:
    def interrupted_load(data, path, opts):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_module", interrupted_load)
    jsonl = tmp_path / "new" / "o.jsonl"  # its directory not made yet
    assert cli.main([*CLI_BACKEND_ARGS, "-n", "3", "--out-jsonl", str(jsonl), FIB]) == 130
    assert capsys.readouterr().err == "gpu-run: interrupted\n"
    assert [(r["instance"], r["interrupted"], r["exit_code"], r["stdout"]) for r in rows(jsonl)] == \
        [(i, True, 130, "") for i in range(3)]


def test_ctrl_c_stops_the_batch_and_keeps_its_output(tmp_path) -> None:
    wasm = module(tmp_path, stop_program())
    work, jsonl = tmp_path / "work", tmp_path / "o.jsonl"
    work.mkdir()
    proc, stderr, _ = interrupt_stop_program(work, "-n", "3", "--out-jsonl", str(jsonl), "--dir", f"{work}::.",
                                             str(wasm), "{i}")
    assert proc.returncode == 130, stderr.decode()
    lines = rows(jsonl)
    assert [(r["instance"], r["interrupted"], r["stdout"]) for r in lines] == \
        [(0, False, "started\n"), (1, True, "started\n"), (2, True, "started\n")]
    assert [r["trap"] for r in lines] == [None, "interrupted", "interrupted"]


def test_help_names_the_encoding() -> None:
    text = " ".join(cli.build_parser().format_help().split())
    assert "--out-jsonl FILE" in text and '"stdout_b64"' in text


def test_out_jsonl_follows_links_and_writes_through_what_is_no_regular_file(tmp_path, capsysbinary) -> None:
    """A link's target gets the lines and the link stays; a FIFO (as a device such as /dev/stdout) is
    written through, never replaced by a regular file."""
    import os
    import threading

    link, target = tmp_path / "link.jsonl", tmp_path / "target.jsonl"
    link.symlink_to(target.name)
    status, _, _ = gpu_run(capsysbinary, "-n", "2", "--out-jsonl", str(link), FIB)
    assert status == 0 and link.is_symlink() and len(rows(target)) == 2
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    status, _, _ = gpu_run(capsysbinary, "-n", "3", "--out-jsonl", str(fifo), FIB)
    reader.join(30)
    assert status == 0 and fifo.is_fifo() and len(got[0].splitlines()) == 3


def test_a_batchs_spool_takes_at_most_its_room_then_writes_fail(tmp_path, capsysbinary, monkeypatch) -> None:
    """The output a batch spools to a temporary directory (the user asked for no files there) stops at its
    room (half the free space): later writes fail with ENOSPC, and gpu-run says so."""
    monkeypatch.setattr(cli, "spool_room", lambda path: 4 << 20)
    wasm = module(tmp_path, """(module (import "wasi_snapshot_preview1" "fd_write"
        (func $w (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 2)
      (func (export "_start") (local $e i32)
        (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 65536))
        (block (loop (local.set $e (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (br_if 1 (local.get $e)) (br 0)))
        (if (i32.ne (local.get $e) (i32.const 51)) (then unreachable))))""")  # 51: WASI's ENOSPC
    jsonl = tmp_path / "all.jsonl"
    status, _, err = gpu_run(capsysbinary, "-n", "2", "--out-jsonl", str(jsonl), str(wasm))
    assert status == 0 and b"later writes failed with ENOSPC" in err
    assert sum(len(r["stdout"]) for r in rows(jsonl)) <= 4 << 20


def test_result_row_text_is_json_dumps_of_the_row() -> None:
    """The direct text of a plain exit's row is exactly json.dumps of result_row, and every other kind of
    ending still goes through json.dumps."""
    import random

    from wasmgpu.cli import result_row, result_row_text
    from wasmgpu.wasi.command import Outcome

    rng = random.Random(3)
    cases = [Outcome(rng.randrange(10**7), exit_code=rng.choice([None, 0, 1, 255]),
                     fuel_used=rng.choice([None, 0, rng.randrange(1 << 62)]),
                     wall_time=rng.choice([0.0, rng.random() * 100, 1e-7, 123456.7891234]))
             for _ in range(2000)]
    cases += [Outcome(1, trap="unreachable", backtrace=["0x1 - m!f"]), Outcome(2, error="bad"),
              Outcome(3, values=(7,)), Outcome(4, timed_out=True), Outcome(5, interrupted=True)]
    for o in cases:
        for types in (None, (0x7F,)):
            assert result_row_text(o, types) == json.dumps(result_row(o, types))
