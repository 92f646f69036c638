"""Batches larger than the memory budget run in waves: same outputs, in instance order."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from tests.test_cli import gpu_run

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
