"""Batches larger than the memory budget run in waves: same outputs, in instance order."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from tests.test_cli import gpu_run
from wasmgpu import cli

ID = '(module (memory 64) (func (export "id") (param i32) (result i32) local.get 0))'


def test_a_batch_past_the_budget_runs_in_waves_in_order(capsysbinary, tmp_path: Path) -> None:
    wasm = tmp_path / "id.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(ID))
    # 100 instances of 4 MiB each cannot fit in 30 MiB together; a few at a time can.
    status, out, err = gpu_run(capsysbinary, "--max-memory", "30M", "--instances", "100", "--invoke", "id",
                               str(wasm), "{i}")
    assert status == 0, err
    assert b"running them in waves of" in err
    assert out.decode().splitlines() == [f"{i}: {i}" for i in range(100)]


def test_waves_keep_each_instance_its_files_and_output(capsysbinary, tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / "in" / str(i)).mkdir(parents=True)
        (tmp_path / "in" / str(i) / "input.txt").write_text("ab" * (i + 1))
    out_dir = tmp_path / "out"
    status, _, err = gpu_run(capsysbinary, "--max-memory", "4M", "--instances", "40", "--dir",
                             f"{tmp_path}/in/{{i}}::.", "--out", str(out_dir), "examples/charcount/charcount.wasm")
    assert status == 0, err
    assert b"running them in waves of" in err
    for i in range(40):
        assert (out_dir / f"{i}.stdout").read_text() == "Found 2 unique chars\n", i
    assert len((out_dir / "results.jsonl").read_text().splitlines()) == 40


def test_each_instance_context_is_made_once_when_the_batch_is_split(capsysbinary, monkeypatch,
                                                                     tmp_path: Path) -> None:
    """A batch past the budget is split before the instances' contexts and files are made, not after: the
    contexts of a 40-instance batch in waves are made for 40 instances, not 40 and then again per wave."""
    made: list[int] = []
    real = cli.make_contexts

    def counted(opts, out, stdin, lo, hi):  # noqa: ANN001, ANN202 - cli.make_contexts' own signature
        made.append(hi - lo)
        return real(opts, out, stdin, lo, hi)

    monkeypatch.setattr(cli, "make_contexts", counted)
    for i in range(40):
        (tmp_path / "in" / str(i)).mkdir(parents=True)
        (tmp_path / "in" / str(i) / "input.txt").write_text("abc")
    status, out, err = gpu_run(capsysbinary, "--max-memory", "4M", "--instances", "40", "--dir",
                               f"{tmp_path}/in/{{i}}::.", "examples/charcount/charcount.wasm")
    assert status == 0, err
    assert b"running them in waves of" in err
    assert out.decode().count("Found 3 unique chars") == 40
    assert sum(made) == 40 and len(made) > 1, made


SEE = r"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "0.stdout")
  (data (i32.const 16) "none\n")
  (data (i32.const 32) "seen:")
  (func $say (param i32 i32)
    (i32.store (i32.const 80) (local.get 0)) (i32.store (i32.const 84) (local.get 1))
    (drop (call $write (i32.const 1) (i32.const 80) (i32.const 1) (i32.const 88))))
  (func (export "_start")
    (if (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0)
                    (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64))
      (then (call $say (i32.const 16) (i32.const 5)) (return)))
    (call $say (i32.const 32) (i32.const 5))
    (i32.store (i32.const 80) (i32.const 128)) (i32.store (i32.const 84) (i32.const 64))
    (drop (call $read (i32.load (i32.const 64)) (i32.const 80) (i32.const 1) (i32.const 88)))
    (call $say (i32.const 128) (i32.load (i32.const 88)))))
"""


def test_a_later_wave_sees_the_out_files_of_an_earlier_one_whole(capsysbinary, tmp_path: Path) -> None:
    """Where the --out directory is preopened, a wave starts once the ended waves' files are made (they are
    made on a thread while a wave runs): each instance of a later wave reads instance 0's stdout whole."""
    wasm = tmp_path / "see.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SEE))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    status, _, err = gpu_run(capsysbinary, "--max-memory", "2M", "--instances", "200", "--dir", f"{out_dir}::.",
                             "--out", str(out_dir), str(wasm))
    assert status == 0, err
    assert b"running them in waves of" in err
    seen = [(out_dir / f"{i}.stdout").read_text() for i in range(200)]
    first = seen.count("none\n")
    assert 0 < first < 200 and seen[first:] == ["seen:none\n"] * (200 - first)


def test_errors_that_no_wave_size_helps_come_before_the_budget(capsysbinary, tmp_path: Path) -> None:
    """The budget is checked before the contexts, but not before what instantiation says first: a memory past
    the per-instance limit, and (for one instance) an import nothing provides, are refused as such."""
    big = tmp_path / "big64.wasm"
    big.write_bytes(wasmtime.wat2wasm('(module (memory i64 2000000) (func (export "id") (param i32) (result i32)'
                                      ' local.get 0))'))
    status, _, err = gpu_run(capsysbinary, "-n", "4", "--invoke", "id", str(big), "5")
    assert status != 0 and b"exceeds the limit of" in err and b"waves" not in err, err
    missing = tmp_path / "missing.wasm"
    missing.write_bytes(wasmtime.wat2wasm('(module (import "env" "nope" (func)) (memory 64)'
                                          ' (func (export "id") (param i32) (result i32) local.get 0))'))
    status, _, err = gpu_run(capsysbinary, "--max-memory", "300K", "-n", "1", "--invoke", "id", str(missing), "5")
    assert status != 0 and b"env::nope" in err, err
