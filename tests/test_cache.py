"""The compile cache (vm/build.py): entries written atomically, checked before they are loaded, and a
damaged entry rebuilt rather than trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wasmgpu.vm import build

TINY = 'extern "C" int answer() { return %d; }\n'
RUNTIME = 'extern "C" void vm_run(void*, unsigned, int) {}\n'

# A child process loads a compiled store's host library with tiny sources in place of the store's code and
# the runtime it is linked to (a build of under a second), calls it and prints the answer: a truncated
# library would kill it with SIGBUS.
LOADER = """
import sys
from wasmgpu.vm import build
build.vm_source = lambda entry: {runtime!r}
build.host_units = lambda compiled: [{source!r}]
print(build.load_host_library(compiled="x").answer())
"""


def load_in_child(cache: Path, value: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WASMGPU_CACHE": str(cache)}
    code = LOADER.format(source=TINY % value, runtime=RUNTIME)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.suffix == ".so")


@pytest.fixture
def counted(tmp_path):
    """A cache entry in tmp_path built by a counting builder."""
    calls = []

    def make() -> bytes:
        calls.append(1)
        return b"artifact %d " % len(calls) * 1000

    return tmp_path / "vm-key.so", make, calls


def test_entry_is_stored_with_its_record_and_reused(counted) -> None:
    entry, make, calls = counted
    first = build.cached(entry, make)
    assert first.read_bytes() == b"artifact 1 " * 1000 and first.name.startswith("vm-key-")
    record = json.loads(Path(str(entry) + ".json").read_text())
    assert record["file"] == first.name and record["size"] == len(first.read_bytes())
    assert build.cached(entry, make) == first and len(calls) == 1
    assert not [p for p in entry.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing", "bad record", "empty record"])
def test_damaged_entry_is_rebuilt(counted, damage) -> None:
    entry, make, calls = counted
    path = build.cached(entry, make)
    record = Path(str(entry) + ".json")
    if damage == "truncate":
        os.truncate(path, 100)
    elif damage == "garbage":
        data = bytearray(path.read_bytes())
        data[10:20] = b"\xff" * 10  # same size, other bytes
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "missing":
        path.unlink()
    elif damage == "bad record":
        record.write_text('{"file": "../elsewhere.so", "size": 1, "sha256": "00"}')
    else:
        record.write_bytes(b"")
    again = build.cached(entry, make)
    assert len(calls) == 2
    assert again.read_bytes() == b"artifact 2 " * 1000
    assert build.cached(entry, make) == again and len(calls) == 2


def test_failed_build_leaves_no_entry(counted) -> None:
    entry, _, _ = counted

    def fail() -> bytes:
        raise build.BuildError("no compiler")

    with pytest.raises(build.BuildError):
        build.cached(entry, fail)
    assert list(entry.parent.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_host_library_is_rebuilt_and_loads(tmp_path, damage) -> None:
    first = load_in_child(tmp_path, 41)
    assert first.returncode == 0 and first.stdout.strip() == "41", first.stderr
    [lib] = entries(tmp_path)
    if damage == "truncate":
        os.truncate(lib, lib.stat().st_size // 3)  # a partly written file: SIGBUS at dlopen when trusted
    else:
        lib.write_bytes(b"\x7fELF" + os.urandom(4096))
    second = load_in_child(tmp_path, 41)
    assert second.returncode == 0 and second.stdout.strip() == "41", second.stderr
    [rebuilt] = entries(tmp_path)
    assert rebuilt.stat().st_size > 4100 and rebuilt.read_bytes()[:4] == b"\x7fELF"


def test_cache_follows_xdg_cache_home(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WASMGPU_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_dir() == tmp_path / "wasmgpu"


def test_a_missing_compiler_is_one_line(tmp_path) -> None:
    env = {**os.environ, "WASMGPU_CACHE": str(tmp_path), "CXX": str(tmp_path / "no-such-c++")}
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--backend", "cpu", "examples/fib.wasm"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "needs a C++ compiler" in proc.stderr and "no-such-c++" in proc.stderr


def test_the_cache_keeps_within_its_cap_dropping_the_least_recently_used(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setenv("WASMGPU_CACHE_MAX", str(2500))
    paths = []
    for k in range(3):
        paths.append(build.store_entry(tmp_path / f"vm-e{k}.so", bytes([k]) * 1000))
        os.utime(tmp_path / f"vm-e{k}.so.json", (k + 1, k + 1))  # entry k used at time k + 1
    # Three 1000-byte entries (and their records) exceed 2,500 bytes: the oldest went, the newest stayed.
    assert not paths[0].exists() and paths[2].exists()
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2500
    # Loading an entry marks it used: the next one stored pushes out the other, older one.
    assert build.verified_entry(tmp_path / "vm-e1.so") == paths[1]
    build.store_entry(tmp_path / "vm-e3.so", b"\3" * 1000)
    assert paths[1].exists() and not paths[2].exists()


def test_gpu_run_clear_cache_needs_no_module(tmp_path) -> None:
    (tmp_path / "vm-x.so").write_bytes(b"x" * 10)
    env = {**os.environ, "WASMGPU_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--clear-cache"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 file(s)" in proc.stderr and list(tmp_path.iterdir()) == []


def test_trimming_passes_over_files_another_process_renamed_meanwhile(tmp_path, monkeypatch) -> None:
    # A concurrent builder's temporary file is listed, then renamed before it is looked at: that failed
    # a build with FileNotFoundError when two processes filled one cache (the fuzzer's workers, pytest's).
    (tmp_path / ".vm-x.so.json.abc.tmp").write_bytes(b"{}")
    listed = build._files(tmp_path)
    (tmp_path / ".vm-x.so.json.abc.tmp").unlink()
    monkeypatch.setattr(build, "_files", lambda root: listed)
    build.trim_cache(tmp_path, 0)


# A process asking the cache for an entry whose build takes a second, noting each build it makes.
BUILDER = """
import sys, time
from pathlib import Path
from wasmgpu.vm import build
def make():
    with open(sys.argv[2], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)
    return b"artifact" * 100
print(build.cached(Path(sys.argv[1]) / "vm-shared.so", make).read_bytes() == b"artifact" * 100)
"""


def test_processes_asking_for_one_entry_build_it_once(tmp_path) -> None:
    """Worker processes that start together and ask for the same build: one builds it, the others wait for
    it and load it, and no lock file is left."""
    log = tmp_path / "builds.log"
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path), str(log)], stdout=subprocess.PIPE,
                              text=True, cwd=root) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert outs == ["True\n"] * 4 and log.read_text() == "built\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lock-")]
