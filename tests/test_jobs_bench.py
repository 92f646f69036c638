"""The whole-job benchmark (bench/jobs.py): end to end at a tiny N on the CPU backend and wasmtime, and
the pieces that report a mismatch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

JOBS = REPO / "bench" / "jobs.py"


@pytest.fixture(scope="module")
def jobs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_jobs", JOBS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_harness_runs_and_outputs_match_wasmtime(tmp_path: Path) -> None:
    pytest.importorskip("wasmtime")
    out = tmp_path / "jobs.json"
    proc = subprocess.run(
        [sys.executable, str(JOBS), "--programs", "c_files,rs_stdin", "--instances", "4", "--engines", "cpu,wasmtime",
         "--jobs", "2", "--workdir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    runs = json.loads(out.read_text())["runs"]
    assert {(r["program"], r["engine"]) for r in runs} == {
        (p, e) for p in ("c_files", "rs_stdin") for e in ("cpu", "wasmtime")}
    for r in runs:
        assert r["status"] == "ok" and r["n"] == 4 and r["rate"] > 0 and r["nonzero_exits"] == 0, r
        if r["engine"] == "cpu":
            assert r["reference"] == "wasmtime" and r["mismatches"] == 0, r
            assert r["maxrss_bytes"] > 1 << 20
    table = proc.stdout.splitlines()
    assert table[0].split()[:4] == ["program", "N", "cpu", "inst/s"]
    assert sum("cpu ok" in line for line in table) == 2


def test_inputs_differ_per_instance_and_are_small(jobs: ModuleType) -> None:
    for program in ("charcount", "c_files", "rs_lines", "c_readdir"):
        a, b = jobs.instance_files(program, 0), jobs.instance_files(program, 1)
        assert a != b, program
        assert a == jobs.instance_files(program, 0), "inputs are deterministic"
        assert all(1024 <= len(v) <= 4096 + 64 for v in a.values()), program  # +64: 'é' is two bytes
    assert "sub/inner.txt" in jobs.instance_files("c_readdir", 3)
    assert jobs.chunks(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert jobs.chunks(2, 8) == [(0, 1), (1, 2)]


def test_a_difference_names_the_instance_and_what_differs(jobs: ModuleType, tmp_path: Path) -> None:
    for engine, (text, extra) in {"a": (b"one\ntwo\n", True), "b": (b"one\nTWO\n", False)}.items():
        (tmp_path / engine / "in" / "0").mkdir(parents=True)
        (tmp_path / engine / "out").mkdir()
        (tmp_path / engine / "in" / "0" / "stats.txt").write_bytes(text)
        if extra:
            (tmp_path / engine / "in" / "0" / "stray.txt").write_bytes(b"")
        (tmp_path / engine / "out" / "0.stdout").write_bytes(text)
    a = jobs.read_instance(tmp_path / "a" / "in", tmp_path / "a" / "out", 0, 0)
    b = jobs.read_instance(tmp_path / "b" / "in", tmp_path / "b" / "out", 0, 1)
    diff = jobs.describe_difference(a, b)
    assert "exit code 0 vs 1" in diff
    assert "stdout line 2: b'two' vs b'TWO'" in diff
    assert "only here: ['stray.txt']" in diff and "contents differ: ['stats.txt']" in diff
    assert jobs._digest(a) != jobs._digest(b)
    assert jobs.describe_difference(a, a) == "no difference"


def test_the_deadline_estimate_uses_start_up_and_per_instance_cost(jobs: ModuleType) -> None:
    assert jobs.estimate([(1, 0.5), (4, 0.6)], 10**6) is None  # too small to extrapolate from
    assert jobs.estimate([(1, 0.5), (1000, 2.5)], 11000) == pytest.approx(2.5 + 10000 * 2.0 / 999)
    assert jobs.estimate([(1000, 2.0)], 10000) == pytest.approx(20.0)
