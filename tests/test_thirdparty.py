"""The third-party programs of the whole-job benchmark (bench/thirdparty.py): the table, the fetch's
checks (on a local archive, no network), and, where .thirdparty/ already holds a module, two instances
of it on the CPU backend checked against wasmtime through bench/jobs.py."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

JOBS = REPO / "bench" / "jobs.py"


def _load() -> ModuleType:
    name = "bench_thirdparty"  # the name bench/jobs.py loads it under: one copy of the module
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "thirdparty.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tp() -> ModuleType:
    return _load()


def test_table_is_pinned_and_inputs_differ_per_instance(tp: ModuleType) -> None:
    assert len(tp.PROGRAMS) >= 2
    for p in tp.PROGRAMS.values():
        assert p.registry in ("pypi", "npm"), p.name
        assert re.fullmatch(r"[0-9a-f]{64}", p.sha256) and re.fullmatch(r"[0-9a-f]{64}", p.wasm_sha256), p.name
        assert p.version in p.url and p.member.endswith(".wasm"), p.name
        a, b = p.inputs(0), p.inputs(1)
        assert a != b and a == p.inputs(0), p.name  # differ per instance, deterministic
        assert all(0 < len(v) < 64 * 1024 for v in a.values()), p.name


def _local_program(tp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sha256: str | None = None):
    wasm = b"\0asm\1\0\0\0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/tiny.wasm", wasm)
    archive = tmp_path / "src" / "tiny-1.0-py3-none-any.whl"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    monkeypatch.setattr(tp, "CACHE", tmp_path / "cache")
    base = next(iter(tp.PROGRAMS.values()))
    return dataclasses.replace(base, name="tiny", version="1.0", url=archive.as_uri(), member="pkg/tiny.wasm",
                               sha256=sha256 or hashlib.sha256(archive.read_bytes()).hexdigest(),
                               wasm_sha256=hashlib.sha256(wasm).hexdigest()), wasm


def test_fetch_checks_the_hash_and_caches(tp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p, wasm = _local_program(tp, tmp_path, monkeypatch)
    path = tp.fetch_one(p)
    assert path.read_bytes() == wasm and path.parent == tmp_path / "cache"
    Path(p.url.removeprefix("file://")).unlink()  # cached: no second download
    assert tp.fetch_one(p) == path


def test_fetch_refuses_a_wrong_hash(tp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p, _ = _local_program(tp, tmp_path, monkeypatch, sha256="0" * 64)
    with pytest.raises(tp.FetchError, match="expected 0000"):
        tp.fetch_one(p)
    assert not p.archive.exists() and not p.wasm.exists()  # nothing kept
    missing = dataclasses.replace(p, url=(tmp_path / "nothing.whl").as_uri())
    with pytest.raises(tp.FetchError, match="could not download"):
        tp.fetch_one(missing)


def _cached() -> list[str]:
    return [p.name for p in _load().PROGRAMS.values() if p.wasm.exists()]


@pytest.mark.parametrize("program", _cached() or [pytest.param("-", marks=pytest.mark.skip(
    reason=".thirdparty/ holds no module: python3 bench/thirdparty.py fetches them"))])
def test_two_instances_match_wasmtime(program: str, tmp_path: Path) -> None:
    pytest.importorskip("wasmtime")
    out = tmp_path / "jobs.json"
    proc = subprocess.run(
        [sys.executable, str(JOBS), "--programs", program, "--instances", "2", "--engines", "cpu,wasmtime",
         "--jobs", "2", "--workdir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = {r["engine"]: r for r in json.loads(out.read_text())["runs"]}
    assert runs["wasmtime"]["status"] == "ok" and runs["wasmtime"]["nonzero_exits"] == 0, runs
    assert runs["cpu"]["status"] == "ok" and runs["cpu"]["mismatches"] == 0, runs
