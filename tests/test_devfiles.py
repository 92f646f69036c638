"""Preopened files served on the device (wasi/devfiles.py, vm/wasi_files.h) against wasmtime.

tests/corpus/src/devfiles.c runs scripted sequences of raw WASI calls (its scenarios) on a prepared
directory and prints every result. Each scenario runs as one instance of a single store through the
Python API, once with the device serving what it can (fast) and once with the host serving everything,
and under wasmtime (the reference); stdout, the exit and the files left must agree. The device run also
records which calls reached the host, to show that the scenarios run on the device path. Then instances
of one store changing a directory others read (a shared root, nested roots, a writer served by the host),
gpu-run batches (per-instance directories with file sizes around the snapshot's limits; one directory
shared by a writer and its readers) and Rust std programs.

Scenarios that differ from wasmtime are marked xfail(strict=True) with the reason; those that differ on
the host path too are not the device's doing (see the reasons).
"""

from __future__ import annotations

import difflib
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CLI_BACKEND_ARGS
from tests.test_wasi import _WT_ENGINE, run_wasmtime_module
from wasmgpu.compiler.vm_abi import WF_FILES
from wasmgpu.wasi import Wasi, WasiContext

wasmtime = pytest.importorskip("wasmtime", reason="the wasmtime package (the reference runtime) is not installed")

REPO = Path(__file__).resolve().parent.parent
MODULE = REPO / "tests" / "corpus" / "wasm" / "devfiles.wasm"
RS_MODULE = REPO / "tests" / "corpus" / "wasm" / "rs_devfiles.wasm"
CHARCOUNT = REPO / "examples" / "charcount"
A_TXT = b"Hello, device files!\nline two\nthree 33\n"  # 39 bytes: devfiles.c compares stats with a.txt's
OLD_NS = 978_307_200 * 10**9  # 2001-01-01, the tree's file times: under relatime a read then updates atime


# ---------------------------------------------------------------- the directories


def make_tree(where: Path) -> Path:
    """The directory the scenarios of devfiles.c expect, at where/dir (where/outside.txt beside it)."""
    root = where / "dir"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "m").mkdir()
    (where / "outside.txt").write_bytes(b"outside the sandbox\n")
    (root / "a.txt").write_bytes(A_TXT)
    os.link(root / "a.txt", root / "hard.txt")
    (root / "b.txt").write_bytes(bytes(range(256)) * 3 + b"tail of b\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "one.txt").write_bytes(b"1")
    (root / "big.bin").write_bytes(random.Random(7).randbytes(100_000))
    (root / "sub" / "x.txt").write_bytes(b"x in sub\n")
    (root / "sub" / "deep" / "y.txt").write_bytes(b"y deep down\n")
    (root / "unicode-\u00e9.txt").write_bytes(b"accented name\n")
    (root / "sp ace.txt").write_bytes(b"a space\n")
    for k in range(14):
        (root / "m" / f"f{k:02d}.txt").write_bytes(f"file {k}\n".encode())
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(OLD_NS, OLD_NS))
    for name, target in (("link_in", "a.txt"), ("link_out", "../outside.txt"), ("link_abs", "/etc/hostname"),
                         ("link_dir", "sub"), ("link_loop", "link_loop"), ("link_none", "nowhere")):
        os.symlink(target, root / name)
    return root


def small_dir(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "a.txt").write_text(f"a.txt of {text}\n")
    (path / "c.txt").write_text(f"c.txt of {text}\n")
    return path


def tree_files(root: Path) -> dict[str, object]:
    """Every path under root: its bytes, 'dir', or ('link', target)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            out[rel] = ("link", os.readlink(p)) if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def reads_update_atime(where: Path) -> bool:
    """Whether reading a file whose atime is not newer than its mtime updates it here (relatime, strictatime)."""
    probe = where / "atime.probe"
    probe.write_bytes(b"x")
    os.utime(probe, ns=(OLD_NS, OLD_NS))
    probe.read_bytes()
    return probe.stat().st_atime_ns != OLD_NS


# ---------------------------------------------------------------- running a module


_MODULES: dict[Path, wasmtime.Module] = {}


def run_wasmtime_prog(module: Path, argv: list[str], preopens: list[tuple[Path, str]], io_dir: Path,
                      tag: str = "") -> tuple[int | str, bytes, bytes]:
    """As `wasmtime run --dir HOST::GUEST... MODULE ARGS`: (exit code or 'trap: ...', stdout, stderr)."""
    if module not in _MODULES:
        _MODULES[module] = wasmtime.Module.from_file(_WT_ENGINE, str(module))
    return run_wasmtime_module(_MODULES[module], io_dir, argv, (), preopens, tag=tag)


@dataclass
class ApiRun:
    stdouts: list[bytes]
    codes: list[int | str | None]
    host_calls: list[list[str]]  # per instance: the WASI functions the host served, in order
    device_files: bool  # the snapshot was built (a file function was linked for the device)
    flags: list[int] = field(default_factory=list)  # per instance: WF_* bits before the run


def run_api(engine, module: Path, argvs: list[list[str]], preopens: list[list[tuple[Path, str]]], *,
            fast: bool = True, stdin: bytes = b"") -> ApiRun:
    """The module in one store of len(argvs) instances through the Python API."""
    contexts = [WasiContext(args=argv, preopens=[(str(h), g) for h, g in pre], stdin=stdin)
                for argv, pre in zip(argvs, preopens, strict=True)]
    compiled = engine.load(module.read_bytes())
    store = engine.store(len(contexts))
    wasi = Wasi(store, contexts, fast=fast)
    calls: list[list[str]] = [[] for _ in contexts]
    serve = wasi._callback

    def logged(name: str):
        inner = serve(name)

        def callback(index: int, args: tuple[int, ...]) -> tuple[int, ...]:
            calls[index].append(name)
            return inner(index, args)

        return callback

    wasi._callback = logged  # type: ignore[method-assign]
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    files = wasi.fast is not None and wasi.fast.files is not None
    flags = [int(f) for f in wasi.fast._flags] if wasi.fast is not None else [0] * len(contexts)
    try:
        results = store.call(instance.exports["_start"], [()] * len(contexts))
    finally:
        wasi.close()
    codes = [r.exit_code if r.trap is None else f"trap: {r.trap}" for r in results]
    assert sum(map(len, calls)) == wasi.calls
    return ApiRun([bytes(c.stdout.data) for c in contexts], codes, calls, files, flags)


def run_cli(module: Path, args: list[str], preopens: list[tuple[Path | str, str]], extra: list[str] = ()
            ) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, *extra]
    for host, guest in preopens:
        cmd += ["--dir", f"{host}::{guest}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([*cmd, str(module), *args], cwd=REPO, capture_output=True, env=env, timeout=300)


def diff(label: str, want: bytes, got: bytes) -> str:
    a = want.decode("utf-8", "backslashreplace").splitlines(keepends=True)
    b = got.decode("utf-8", "backslashreplace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"{label} (reference)", f"{label} (got)", n=1))
    return "".join(lines[:60]) or f"{label}: {want!r} != {got!r}\n"


def batch_rows(out: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return {row["instance"]: row for row in rows}


# ---------------------------------------------------------------- the scenarios

FAULTS = ["fault_prestat", "fault_prestat_far", "fault_dirname", "fault_open_out", "fault_open_path",
          "fault_read_iovs", "fault_read_buf", "fault_read_nread", "fault_pread_nread", "fault_seek", "fault_tell",
          "fault_filestat", "fault_fdstat", "fault_unaligned"]
# name -> the program's arguments
SCENARIOS: dict[str, list[str]] = {name: [name] for name in [
    "basic", "iovecs", "pread", "preadfar", "seek", "seekfar", "stat", "reuse", "reuse_desc", "many", "paths",
    "badf", "dirfd", "prestat", "prestat_file", "rights", "syncflags", "renumber", "handover", "advise",
    "allocate", "set_times", "sync", "set_size", "set_flags", "poll", "overwrite", "rename", "atime", "closepre",
    "two", "five", "libc", "readdir", "libc_readdir", "badwhence", "badadvise", "badrights", *FAULTS]}
# One instance through many scenarios: the device's numbering and positions carried along, then the hand-over
# (stat's path_filestat_get) with four files open, then the host for the rest.
SEQUENCE = ["basic", "prestat", "reuse_desc", "basic", "stat", "handover", "many", "libc", "basic", "seek", "pread"]
SCENARIOS["sequence"] = SEQUENCE
SCENARIOS["sequence_nofd"] = ["nofd", *SEQUENCE]  # the same, descriptor numbers not printed
SCENARIOS["no_preopen"] = ["prestat", "basic"]  # fd 3 is no directory
SCENARIOS["abs_guest"] = ["prestat", "basic", "paths"]  # the preopen's guest name is /sandbox
# Files and directories made new: on the device (make), then listed, stat'ed or opened on the host.
SCENARIOS["make"] = ["make"]
SCENARIOS["make_back"] = ["make_back"]
SCENARIOS["make_list"] = ["make", "libc_readdir", "stat"]
SCENARIOS["make_many"] = ["make_many"]  # past the device's buffer, then past its slots
SCENARIOS["make_names"] = ["make_names"]  # past the device's slots
SCENARIOS["make_nested"] = ["make_nested"]  # a second preopen inside the first: made through either
SCENARIOS["make_replace"] = ["make_replace"]  # files of the snapshot truncated
SCENARIOS["make_replace_only"] = ["make_replace", "make"]
SCENARIOS["make_exists"] = ["make_exists"]  # names that exist: EEXIST
SCENARIOS["make_readback"] = ["make_readback"]  # a new file read back, holes and all
SCENARIOS["make_temp"] = ["make_temp"]  # a temporary file, unlinked
SCENARIOS["make_reopen"] = ["make_reopen"]  # a new file opened again to write, as a WAV writer does
SCENARIOS["make_reopen_host"] = ["make_reopen_host"]  # opened again where the host answers
SCENARIOS["make_reopen_size"] = ["make_reopen_size"]  # opened again to read only, then truncated

# The host path gives the same answer: the device only follows it (wasi/preview1.py, wasi/fds.py).
HOST_TOO = {
    "iovecs": "fd_read/fd_pread with several iovecs: wasmtime fills only the first non-empty one (a short "
              "read), wasmgpu (host and device) fills them all",
    "prestat_file": "fd_prestat_dir_name on stdio or an open regular file: wasmtime ENOTDIR (54), wasmgpu EBADF "
                    "(8)",
    "badwhence": "fd_seek whence 3: wasmtime traps (invalid enum value), wasmgpu returns EINVAL",
    "badadvise": "fd_advise advice 9: wasmtime traps (invalid enum value), wasmgpu returns EINVAL",
    "badrights": "path_open with rights ~0 (undefined bits): wasmtime traps, wasmgpu opens the file",
    "syncflags": "path_open of a file with fdflags SYNC, RSYNC or DSYNC: wasmtime ENOTSUP (58), wasmgpu opens it",
    "poll": "poll_oneoff FD_READ on regular files: wasmtime reports nbytes=1, wasmgpu the bytes left (33, 778)",
    **{f: "an out-of-bounds or misaligned guest pointer: wasmtime 50 traps, wasmgpu returns EFAULT (or, "
          "misaligned, succeeds)" for f in FAULTS},
}
# The device (or the SnapshotFile entries it leaves to the host) answers differently from wasmtime.
FAR = ("fd_read at a position of 2**63 reached by fd_seek: wasmtime EINVAL; the device hands the read to the "
       "host, whose reopened descriptor cannot lseek(2) there (ext4: 16 TiB), so it keeps the snapshot's bytes "
       "and reads 0 bytes")
DEVICE_ONLY = {
    "seekfar": FAR,
    "atime": "access times: the snapshot reads every file of the preopen when the run starts, which updates "
             "their atime (relatime): a file the guest never read, or one whose hard link was scanned first, "
             "shows a new atime where wasmtime and the host path show the old one",
}
# The device differs from the host path where the host path differs from wasmtime.
DEVICE_VS_HOST = {
    **DEVICE_ONLY,
    "seekfar": "the host path's fd_seek goes through lseek(2), which refuses positions past the file system's "
               "limit (ext4: 16 TiB): SET 2**63-1 is EINVAL there, but accepted by wasmtime and the device; "
               "the device's fd_read at that position differs from wasmtime in turn (" + FAR + ")",
}


# Scenarios the device serves whole: no host call at all.
DEVICE_WHOLE = ["basic", "iovecs", "reuse_desc", "prestat", "prestat_file", "fault_prestat",
                "fault_prestat_far", "fault_dirname", "fault_unaligned", "libc_readdir", "make", "make_exists",
                "make_reopen"]


def scenario_preopens(name: str, where: Path) -> list[tuple[Path, str]]:
    """The preopens of a scenario's run; the first's host directory is the tree compared afterwards (made,
    but not preopened, for no_preopen)."""
    pre = [(make_tree(where), "/sandbox" if name == "abs_guest" else ".")]
    if name == "two":
        pre.append((small_dir(where / "second", "second"), "data"))
    if name == "five":
        pre += [(small_dir(where / f"d{k}", f"d{k}"), f"d{k}") for k in range(1, 5)]
    if name == "make_nested":
        pre.append((pre[0][0] / "sub", "s"))
    return pre


def preopened(name: str, pre: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    return [] if name == "no_preopen" else pre


@dataclass
class Side:
    stdout: bytes
    code: int | str | None
    files: dict[str, object]
    host_calls: list[str] = field(default_factory=list)
    flags: int = 0


@dataclass
class Runs:
    wasmtime: dict[str, Side]
    device: dict[str, Side]
    host: dict[str, Side]
    atime_updates: bool  # reads update atime where the trees are (relatime): the 'atime' scenario can differ


@pytest.fixture(scope="module")
def runs(engine, tmp_path_factory) -> Runs:
    """Every scenario under wasmtime, and as the instances of one store on the device and on the host."""
    base = tmp_path_factory.mktemp("devfiles")
    names = list(SCENARIOS)
    ref = {}
    for name in names:
        pre = scenario_preopens(name, base / "wasmtime" / name)
        code, out, _ = run_wasmtime_prog(MODULE, ["devfiles.wasm", *SCENARIOS[name]], preopened(name, pre),
                                         base / "io", tag=name)
        ref[name] = Side(out, code, tree_files(pre[0][0]))
    sides = []
    for fast in (True, False):
        pres = [scenario_preopens(name, base / f"fast{fast}" / name) for name in names]
        got = run_api(engine, MODULE, [["devfiles.wasm", *SCENARIOS[n]] for n in names],
                      [preopened(n, pre) for n, pre in zip(names, pres, strict=True)], fast=fast)
        assert got.device_files == fast, "the snapshot is built when a file function is linked for the device"
        sides.append({name: Side(got.stdouts[k], got.codes[k], tree_files(pres[k][0][0]), got.host_calls[k],
                                 got.flags[k]) for k, name in enumerate(names)})
    return Runs(ref, sides[0], sides[1], reads_update_atime(base))


def compare(label: str, want: Side, got: Side) -> None:
    problems = []
    if isinstance(want.code, str) != isinstance(got.code, str) or not isinstance(want.code, str) \
            and want.code != got.code:
        problems.append(f"exit: {want.code!r} != {got.code!r}")
    if want.stdout != got.stdout:
        problems.append(diff("stdout", want.stdout, got.stdout))
    if want.files != got.files:
        for name in sorted(set(want.files) | set(got.files)):
            a, b = want.files.get(name, "<absent>"), got.files.get(name, "<absent>")
            if a != b:
                problems.append(f"file {name}: {str(a)[:200]} != {str(b)[:200]}")
    if problems:
        pytest.fail(f"{label}\n" + "\n".join(problems), pytrace=False)


def params(xfails: dict[str, str]) -> list:
    """The scenarios, those in `xfails` marked so; 'atime' is marked at run time (see mark_atime)."""
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=xfails[n])) if n in xfails and n != "atime"
            else n for n in SCENARIOS]


def mark_atime(request, runs: Runs, name: str) -> None:
    if name == "atime" and runs.atime_updates:  # else (noatime) the snapshot's reads change nothing either
        request.applymarker(pytest.mark.xfail(strict=True, reason=DEVICE_ONLY["atime"]))


@pytest.mark.parametrize("name", params({**HOST_TOO, **DEVICE_ONLY}))
def test_scenario_matches_wasmtime(runs: Runs, name: str, request) -> None:
    mark_atime(request, runs, name)
    compare(f"{name}: the device run differs from wasmtime", runs.wasmtime[name], runs.device[name])


@pytest.mark.parametrize("name", params(DEVICE_VS_HOST))
def test_scenario_device_matches_host(runs: Runs, name: str, request) -> None:
    mark_atime(request, runs, name)
    compare(f"{name}: the device run differs from the host's", runs.host[name], runs.device[name])


def test_scenarios_run_on_the_device(runs: Runs) -> None:
    """The device served the files: WF_FILES was set before the run (not with 5 preopens), pure reads made
    no host call, and the calls the device leaves to the host came where expected."""
    device, host = runs.device, runs.host
    for name, side in device.items():
        assert bool(side.flags & WF_FILES) == (name != "five"), name
    for name in DEVICE_WHOLE:
        assert device[name].host_calls == [], name
        assert len(host[name].host_calls) > 10, name
    # the 9th file open at once is the host's, not one before
    assert device["many"].host_calls[0] == "path_open"
    opens = [line for line in device["many"].stdout.decode().splitlines() if line.startswith("open ")]
    assert len(opens) == 19 and all(" e=0 " in line for line in opens)
    # a negative seek leaves the position to the host (EINVAL), and a host call on the preopen or stdio
    # takes nothing over: the file opened before is still read on the device after them
    assert device["seek"].host_calls[0] == "fd_seek"
    # (the preopen's and fd 1's own calls; the device answers the fdstat of the preopen and of stdio itself)
    assert device["dirfd"].host_calls[:6] == ["fd_read", "fd_seek", "fd_tell", "fd_filestat_get", "fd_pread",
                                              "fd_seek"]  # fd 3's, then fd 1's
    assert device["dirfd"].host_calls[6] == "fd_read"  # "sub" opens on the device; reading it is the hand-over
    # wasi-libc's stdio: open() asks the preopen's fdstat (the device answers it); then only the open of a
    # missing file (ENOENT) is the host's
    assert device["libc"].host_calls == ["path_open"]
    assert host["libc"].host_calls.count("fd_read") > 90
    # directories: listed, opened and stat'ed on the device, paths relative to them too; a name the snapshot
    # lacks is the hand-over, and only the listing of sub after it is the host's
    calls = device["readdir"].host_calls
    assert calls[:4] == ["path_open", "path_open", "path_open", "fd_readdir"], calls[:5]
    assert calls.count("fd_readdir") <= 4 and host["readdir"].host_calls.count("fd_readdir") > 20
    assert "fd_readdir" in host["readdir"].host_calls
    # no preopen: fd_prestat_get answers EBADF on the device; path_open on fd 3 is the host's
    assert device["no_preopen"].host_calls[0] == "path_open"
    # the long sequence: stat's path_filestat_get is the device's too; its first host call is the stat of a
    # file made on the device and opened again to read, with three more files open on the device
    seq = device["sequence"].host_calls
    assert seq[0] == "fd_filestat_get" and "path_filestat_get" in host["sequence"].host_calls, seq[:8]
    # made on the device until a path below a file made there (the host's ENOTDIR), with new files still
    # open there; once something was made, listings and a directory's stat are the host's
    assert device["make_back"].host_calls[0] == "path_open"
    assert device["make_list"].host_calls[0] == "fd_readdir"
    # a write past the buffer is the host's, and so is everything after it
    assert device["make_many"].host_calls[0] == "fd_write", device["make_many"].host_calls[:4]
    assert device["make_names"].host_calls[:2] == ["path_open", "fd_write"], device["make_names"].host_calls[:4]
    assert device["make_names"].stdout.count(b" -> e=0") == 60
    # two files of the snapshot replaced on the device, three writes; then, a file replaced, opening the
    # snapshot's files is the host's (empty.txt), and so is everything after it
    # read back from its records on the device; a write-only file's read is the host's (EBADF)
    assert device["make_readback"].host_calls[0] == "fd_read"
    assert device["make_readback"].stdout.count(b"read ") + device["make_readback"].stdout.count(b"pread ") > 4
    # a temporary file lives and dies on the device; unlinking one still open is the host's
    assert device["make_temp"].host_calls[0] == "path_unlink_file"
    assert b"unlink tmp.txt again -> e=44" in device["make_temp"].stdout
    calls = device["make_replace"].host_calls
    assert calls[0] == "path_open" and calls.count("fd_write") == 2, calls  # empty.txt's and a.txt's


# ---------------------------------------------------------------- instances changing what others read

WATCH_CASES: dict[str, str | None] = {
    "same_root": None,
    "nested_roots": None,  # writer: ROOT as '.', unlinks sub/x.txt; reader: ROOT/sub as '.'
    "writer_on_host": None,  # a writer whose files the host serves (5 preopens) still demotes the readers
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=v)) if v else k
                                  for k, v in WATCH_CASES.items()])
def test_a_file_removed_by_another_instance_is_not_opened_afterwards(engine, tmp_path, case: str) -> None:
    """Instance 0 unlinks a file, instance 1 lists its directory (fd_readdir, the host's, which takes none of
    its descriptors over) and opens the file, round after round: once the listing lacks the file, no open
    may succeed (wasmtime, or any order of the two programs, never shows that)."""
    root = make_tree(tmp_path)
    writer: list[tuple[Path, str]] = [(root, ".")]
    reader: list[tuple[Path, str]] = [(root, ".")]
    name, target = "one.txt", "one.txt"
    if case == "nested_roots":
        reader, name, target = [(root / "sub", ".")], "x.txt", "sub/x.txt"
    if case == "writer_on_host":
        writer += [(small_dir(tmp_path / f"d{k}", f"d{k}"), f"d{k}") for k in range(1, 5)]
    got = run_api(engine, MODULE, [["devfiles.wasm", "unlink", target], ["devfiles.wasm", "watch", name]],
                  [writer, reader])
    assert got.codes == [0, 0]
    assert got.stdouts[0] == f"== unlink\nunlink {target} -> e=0\n".encode()
    assert got.flags[1] & WF_FILES and bool(got.flags[0] & WF_FILES) == (case != "writer_on_host")
    seen = got.stdouts[1].decode().splitlines()[1:]
    assert seen and seen[-1] == f"watch {name}: listed=0 opened=0", seen
    assert f"watch {name}: listed=0 opened=1" not in seen, seen


# ---------------------------------------------------------------- gpu-run batches

SIZES = [0, 1, 100_000, (5 << 20) + 3]  # the last above the snapshot's 4 MiB: the host's


def sized_dir(path: Path, i: int) -> Path:
    """Instance i's directory: data.bin of SIZES[i % 4] bytes of its own, n0.txt... n{i % 6 - 1}.txt."""
    path.mkdir(parents=True)
    rng = random.Random(i)
    (path / "data.bin").write_bytes(rng.randbytes(SIZES[i % 4]))
    for k in range(i % 6):
        (path / f"n{k}.txt").write_text(f"n{k} of instance {i}\n" * (k + 1))
    return path


def test_batch_with_a_directory_per_instance(engine, tmp_path) -> None:
    """16 instances, --dir 'ROOT/{i}::.': each reads its own files (0 B to 5 MB) as wasmtime does, and those
    that write (every third) leave the same files. The same batch through the API shows where the host
    took over: a 5 MB file from its open, the others at the first call the device leaves to it."""
    n = 16
    for side in ("ref", "gpu", "api"):
        for i in range(n):
            sized_dir(tmp_path / side / str(i), i)
    out = tmp_path / "out"
    proc = run_cli(MODULE, ["sizes", "{i}"], [(tmp_path / "gpu" / "{i}", ".")],
                   ["--instances", str(n), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rows = batch_rows(out)
    problems = []
    for i in range(n):
        code, stdout, _ = run_wasmtime_prog(MODULE, ["devfiles.wasm", "sizes", str(i)],
                                            [(tmp_path / "ref" / str(i), ".")], tmp_path / "io", tag=f"{i}.")
        got = (out / f"{i}.stdout").read_bytes()
        if rows[i].get("exit_code") != code or got != stdout:
            problems.append(f"instance {i}: exit {rows[i]} (wasmtime {code})\n" + diff("stdout", stdout, got))
        if tree_files(tmp_path / "ref" / str(i)) != tree_files(tmp_path / "gpu" / str(i)):
            problems.append(f"instance {i}: the files left differ")
    assert not problems, "\n".join(problems)
    text = (out / "3.stdout").read_text()
    assert f"total={SIZES[3]}" in text and "at 3000000" in text
    api = run_api(engine, MODULE, [["devfiles.wasm", "sizes", str(i)] for i in range(n)],
                  [[(tmp_path / "api" / str(i), ".")] for i in range(n)])
    assert api.stdouts == [(out / f"{i}.stdout").read_bytes() for i in range(n)]
    for i, calls in enumerate(api.host_calls):
        first = {0: ["fd_seek"], 1: ["fd_seek"], 2: ["path_open"], 3: ["path_open", "fd_filestat_get"]}[i % 4]
        assert calls[:len(first)] == first, (i, calls[:4])  # seek END -2 before 0 B; n{k}.txt missing; 5 MB


def shared_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "shared.txt").write_bytes(b"before\n")
    (path / "doomed.txt").write_bytes(b"to be removed\n")
    (path / "other.txt").write_bytes(b"untouched\n")
    return path


def reader_states(text: str) -> list[tuple[str, int]]:
    """A reader's output (devfiles.c s_share): the (content, doomed.txt exists) states it saw, in order."""
    lines = text.splitlines()
    assert lines[0] == "== share" and len(lines) % 2 == 1, text
    states = []
    for seen, doomed in zip(lines[1::2], lines[2::2], strict=True):
        assert seen in ("reader sees before", "reader sees after"), text  # whole contents, never a mix
        assert doomed in ("reader doomed=0", "reader doomed=1"), text
        states.append((seen.split()[-1], int(doomed[-1])))
    return states


def test_batch_sharing_a_directory(tmp_path) -> None:
    """8 instances, one --dir: instance 0 replaces shared.txt (rename over) and unlinks doomed.txt while the
    others read them round after round. The writer prints what wasmtime prints; a reader sees whole
    contents, and never the old state again once it saw the new (wasmtime: 8 programs in any order)."""
    n = 8
    root = shared_dir(tmp_path / "gpu")
    out = tmp_path / "out"
    proc = run_cli(MODULE, ["share", "{i}"], [(root, ".")], ["--instances", str(n), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert all(row["exit_code"] == 0 for row in batch_rows(out).values())
    ref = shared_dir(tmp_path / "ref")
    code, want, _ = run_wasmtime_prog(MODULE, ["devfiles.wasm", "share", "0"], [(ref, ".")], tmp_path / "io")
    assert code == 0 and (out / "0.stdout").read_bytes() == want, diff("writer", want, (out / "0.stdout").read_bytes())
    assert b'writer old fd fd=4 want=100 -> e=0 got[4]="ore\\x0a"' in want  # the replaced file, still open
    for i in range(1, n):
        states = reader_states((out / f"{i}.stdout").read_text())
        order = [("before", 1), ("after", 1), ("before", 0), ("after", 0)]
        for (c0, d0), (c1, d1) in zip(states, states[1:], strict=False):
            assert not (c0 == "after" and c1 == "before") and not (d0 == 0 and d1 == 1), (i, states)
        assert all(s in order for s in states) and states[-1] == ("after", 0), (i, states)
    for i in range(1, n):  # the readers after the writer, under wasmtime
        run_wasmtime_prog(MODULE, ["devfiles.wasm", "share", str(i)], [(ref, ".")], tmp_path / "io", tag=f"{i}.")
    assert tree_files(root) == tree_files(ref) == {"shared.txt": b"after\n", "other.txt": b"untouched\n"}


# ---------------------------------------------------------------- Rust std


def rust_dir(path: Path, i: int = 0) -> Path:
    (path / "data").mkdir(parents=True)
    (path / "input.txt").write_text(f"first line here {i}\nsecond line\n\nthird and last line without newline")
    (path / "data" / "numbers.bin").write_bytes(b"".join((k * k + i).to_bytes(4, "little") for k in range(100)))
    return path


def test_rust_std_reads_on_the_device(engine, tmp_path) -> None:
    """tests/corpus/src/rs_devfiles.rs: std's reads, metadata and seeks on the device up to the 9th file open
    at once, then the host's, as wasmtime prints them."""
    got = run_api(engine, RS_MODULE, [["rs_devfiles.wasm"]], [[(rust_dir(tmp_path / "gpu"), ".")]])
    code, want, _ = run_wasmtime_prog(RS_MODULE, ["rs_devfiles.wasm"], [(rust_dir(tmp_path / "ref"), ".")],
                                      tmp_path / "io")
    assert (got.codes[0] or 0) == code == 0
    assert got.stdouts[0] == want, diff("stdout", want, got.stdouts[0])
    assert tree_files(tmp_path / "gpu") == tree_files(tmp_path / "ref")
    assert got.flags[0] & WF_FILES and got.host_calls[0][:1] == ["path_open"]  # the 9th handle
    assert b"first line h\n" in want and b"seek before start: Err(InvalidInput)" in want


def test_rust_std_batch(tmp_path) -> None:
    """The same program as a gpu-run batch, a directory per instance."""
    n = 4
    out = tmp_path / "out"
    for i in range(n):
        rust_dir(tmp_path / "gpu" / str(i), i)
    proc = run_cli(RS_MODULE, [], [(tmp_path / "gpu" / "{i}", ".")], ["--instances", str(n), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    for i in range(n):
        ref = rust_dir(tmp_path / "ref" / str(i), i)
        code, want, _ = run_wasmtime_prog(RS_MODULE, ["rs_devfiles.wasm"], [(ref, ".")], tmp_path / "io", f"{i}.")
        got = (out / f"{i}.stdout").read_bytes()
        assert code == 0 and got == want, diff(f"instance {i}", want, got)
        assert tree_files(tmp_path / "gpu" / str(i)) == tree_files(ref)


def test_charcount_reads_on_the_device(engine, tmp_path) -> None:
    """examples/charcount (std::fs::read_to_string) with --dir: no host call at all, wasmtime's output, alone
    and as a batch sharing the directory."""
    module = CHARCOUNT / "charcount.wasm"
    code, want, _ = run_wasmtime_prog(module, ["charcount.wasm"], [(CHARCOUNT, ".")], tmp_path / "io")
    assert code == 0 and want.startswith(b"Found ")
    got = run_api(engine, module, [["charcount.wasm"]] * 3, [[(CHARCOUNT, ".")]] * 3)
    assert got.stdouts == [want] * 3 and got.host_calls == [[]] * 3
    out = tmp_path / "out"
    proc = run_cli(module, [], [(CHARCOUNT, ".")], ["--instances", "4", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert [(out / f"{i}.stdout").read_bytes() for i in range(4)] == [want] * 4


def test_sharers_are_the_same_directory_or_one_inside_or_around(tmp_path: Path) -> None:
    """A change through WASI demotes the instances whose preopens nest with the writer's; siblings whose
    names share a prefix (a/b, a/bc) do not nest."""
    from wasmgpu.wasi import devfiles
    from wasmgpu.wasi.context import WasiContext
    from wasmgpu.wasi.devfiles import DeviceFiles

    for sub in ["a/b/c", "a/bc", "x"]:
        (tmp_path / sub).mkdir(parents=True)
    subs = ["a", "a/b", "a/bc", "a/b/c", "x", "x"]
    files = DeviceFiles.__new__(DeviceFiles)
    files.contexts = [WasiContext(preopens=[(str(tmp_path / s), ".")]) for s in subs]
    want = {"a": [0, 1, 2, 3], "a/b": [0, 1, 3], "a/bc": [0, 2], "a/b/c": [0, 1, 3], "x": [4, 5]}
    # from the descriptor tables, and from the preopens found beforehand (eligible), alike
    for per_instance in ([None] * len(subs), [devfiles.eligible(c) for c in files.contexts]):
        files.roots_of, files.sharers, files.nested = [], {}, set()
        files._find_sharers(per_instance)
        assert {str(Path(k).relative_to(tmp_path)): v for k, v in files.sharers.items()} == want
        assert {str(Path(k).relative_to(tmp_path)) for k in files.nested} == {"a", "a/b", "a/bc", "a/b/c"}


def test_the_snapshot_takes_at_most_root_max_bytes_of_a_preopen(tmp_path: Path, monkeypatch) -> None:
    """A large directory given to a program is not read whole before it starts: past ROOT_MAX bytes its
    files stay on the host (whose path_open serves them as before)."""
    from wasmgpu.wasi import devfiles
    from wasmgpu.wasi.fds import DirEntry

    for k in range(5):
        (tmp_path / f"f{k}.bin").write_bytes(bytes([k]) * 100)
    monkeypatch.setattr(devfiles, "ROOT_MAX", 250)
    found = devfiles.snapshot([DirEntry(str(tmp_path), ".")], 1 << 30).files()
    files = [f for f in found if f.listing is None]
    assert len(files) == 2 and all(f.data == bytes([int(f.path[1:2])]) * 100 for f in files)
    # the listing is whole all the same: it names the files the snapshot has no bytes of
    [root] = [f for f in found if f.listing is not None]
    assert root.path == b"" and [name for name, _, _ in root.listing] == [f"f{k}.bin".encode() for k in range(5)]
    monkeypatch.setattr(devfiles, "ROOT_MAX", 1 << 20)
    found = devfiles.snapshot([DirEntry(str(tmp_path), ".")], 1 << 30).files()
    assert sorted(f.path for f in found if f.listing is None) == [f"f{k}.bin".encode() for k in range(5)]


def test_the_snapshot_leaves_access_times_alone(tmp_path: Path) -> None:
    """Reading a preopen for the snapshot marks neither its files nor its directories as read (O_NOATIME,
    for the files' owner): the guest may never open them, and on a batch's fresh input directories each
    access time is a write to the file system's journal."""
    from wasmgpu.wasi import devfiles
    from wasmgpu.wasi.fds import DirEntry

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "input.txt").write_bytes(b"data")
    past = 1_000_000_000
    for p in (tmp_path / "sub" / "input.txt", tmp_path / "sub", tmp_path):
        os.utime(p, (past, past))  # atime not after mtime: a plain read would update it (relatime)
    found = devfiles.snapshot([DirEntry(str(tmp_path), ".")], 1 << 30).files()
    assert [f.data for f in found if f.path == b"sub/input.txt"] == [b"data"]
    if os.stat(tmp_path).st_uid == os.geteuid():
        assert [int(os.stat(p).st_atime) for p in (tmp_path / "sub" / "input.txt", tmp_path / "sub", tmp_path)] \
            == [past] * 3


def test_a_large_subtree_does_not_keep_the_files_beside_it_out(tmp_path: Path, monkeypatch) -> None:
    """The snapshot's entry budget goes to a directory's own files before the directories below it: a
    preopen holding a large tree (a job's earlier outputs, named before the input) still has its input
    on the device."""
    from wasmgpu.wasi import devfiles
    from wasmgpu.wasi.fds import DirEntry

    for k in range(6):
        (tmp_path / "in" / str(k)).mkdir(parents=True)
        (tmp_path / "in" / str(k) / "x.txt").write_bytes(b"x")
    (tmp_path / "input.txt").write_bytes(b"wanted")
    monkeypatch.setattr(devfiles, "ENTRIES_MAX", 3)
    found = devfiles.snapshot([DirEntry(str(tmp_path), ".")], 1 << 30).files()
    files = sorted(f.path for f in found if f.listing is None)
    assert files == [b"in/0/x.txt", b"in/1/x.txt", b"input.txt"]
    assert [f.data for f in found if f.path == b"input.txt" and f.listing is None] == [b"wanted"]


def test_a_directory_gone_before_the_host_takes_it_over(tmp_path: Path) -> None:
    """A directory the device opened is opened again by the host at the hand-over; one removed meanwhile
    becomes a descriptor that finds nothing (its calls fail with an errno), never the wrong directory."""
    from wasmgpu.wasi import abi
    from wasmgpu.wasi.fds import DirEntry
    from wasmgpu.wasi.preview1 import open_directory

    (tmp_path / "sub").mkdir()
    root = DirEntry(str(tmp_path), ".")
    kept = open_directory(root, "sub")
    assert kept.fd is not None and [n for n, _, _ in kept.listing(0)] == [".", ".."]
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone").rmdir()
    gone = open_directory(root, "gone")
    assert gone.fd is None and gone.fdstat()[0] == abi.FILETYPE_DIRECTORY
    with pytest.raises(OSError):
        gone.listing(0)
    (tmp_path / "gone").mkdir()  # another directory at the path since: still not reached
    from wasmgpu.wasi.memory import WasiError

    with pytest.raises(WasiError) as e:
        gone.listing(0)
    assert e.value.errno == abi.ENOENT
    kept.close()


def test_rust_std_lists_directories_on_the_device(engine, tmp_path) -> None:
    """tests/corpus/src/rs_readdir.rs: std's read_dir, each entry's metadata (a path_filestat_get relative to
    the directory's descriptor) and reads, on the device until the listing of a missing directory."""
    module = REPO / "tests" / "corpus" / "wasm" / "rs_readdir.wasm"
    for where in ("gpu", "ref"):
        root = make_tree(tmp_path / where)
        for name in ("link_in", "link_out", "link_abs", "link_dir", "link_loop", "link_none"):
            (root / name).unlink()  # std's metadata follows links: leave them to test_wasi
    got = run_api(engine, module, [["rs_readdir.wasm"]], [[(tmp_path / "gpu" / "dir", ".")]])
    code, want, _ = run_wasmtime_prog(module, ["rs_readdir.wasm"], [(tmp_path / "ref" / "dir", ".")], tmp_path / "io")
    assert (got.codes[0] or 0) == code == 0
    assert got.stdouts[0] == want, diff("stdout", want, got.stdouts[0])
    assert b'  "x.txt" file len=9' in want and b"missing: Err(NotFound)" in want
    assert got.host_calls[0][:1] == ["path_open"] and "fd_readdir" not in got.host_calls[0]


# ---------------------------------------------------------------- random call sequences

def test_random_call_sequences_give_the_hosts_answers(engine, tmp_path) -> None:
    """tests/corpus/src/wasi_random.c: 48 instances, each a random sequence of file calls (opens of files and
    directories, reads, listings at odd sizes and cookies, seeks, stats, closes, reads of stdin) on one shared
    tree; the device run prints what the host run prints, byte for byte, and the device did serve part of it."""
    module = REPO / "tests" / "corpus" / "wasm" / "wasi_random.wasm"
    root = make_tree(tmp_path / "tree")
    argvs = [["wasi_random.wasm", str(seed), "60", *(["easy"] if seed % 2 else [])] for seed in range(48)]
    stdin = bytes(range(256)) * 2  # read in pieces among the other calls: on the device until one sees fd 0
    fast = run_api(engine, module, argvs, [[(root, ".")]] * len(argvs), stdin=stdin)
    host = run_api(engine, module, argvs, [[(root, ".")]] * len(argvs), fast=False, stdin=stdin)
    assert tree_files(root) == tree_files(make_tree(tmp_path / "fresh")), "the runs changed the tree"
    for k in range(len(argvs)):
        assert fast.codes[k] == host.codes[k], (k, fast.codes[k], host.codes[k])
        assert fast.stdouts[k] == host.stdouts[k], f"seed {k}\n" + diff("stdout", host.stdouts[k], fast.stdouts[k])
    # the easy sequences stay on the device for a while: their first host call comes late, if at all
    firsts = [len(fast.host_calls[k]) for k in range(1, len(argvs), 2)]
    hosts = [len(host.host_calls[k]) for k in range(1, len(argvs), 2)]
    assert sum(firsts) < sum(hosts) * 0.6, (firsts, hosts)


def test_files_made_on_the_device_go_only_to_the_directory_scanned(engine, tmp_path: Path) -> None:
    """What an instance made on the device is made on the host below the directory the snapshot was taken
    of: a directory swapped in at the preopen's path meanwhile gets nothing, and the instance's stderr says
    what was not made (the guest was told it succeeded)."""
    root = make_tree(tmp_path / "a")
    contexts = [WasiContext(args=["devfiles.wasm", "make"], preopens=[(str(root), ".")])]
    compiled = engine.load(MODULE.read_bytes())
    store = engine.store(1)
    wasi = Wasi(store, contexts)
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    assert wasi.fast is not None and wasi.fast.files is not None and wasi.fast.files.ov_cap > 0
    root.rename(tmp_path / "a" / "moved")
    swapped = tmp_path / "a" / "dir"
    swapped.mkdir()
    try:
        [result] = store.call(instance.exports["_start"], [()])
    finally:
        wasi.close()
    assert result.trap is None and result.exit_code == 0
    assert b"open out/in/new.txt -> e=0" in bytes(contexts[0].stdout.data)
    assert list(swapped.iterdir()) == [] and not (tmp_path / "a" / "moved" / "out").exists()
    err = bytes(contexts[0].stderr.data).decode()
    assert "out: written by this instance, but not made on the host" in err, err
    assert "top.txt: written by this instance, but not made on the host" in err, err


def test_random_sequences_that_make_files_give_the_hosts_answers(engine, tmp_path) -> None:
    """wasi_random.c with "make": 32 instances, each on a tree of its own, random sequences of file calls that
    also create, truncate, write and seek in new files and make directories (new names, names made twice,
    names the tree has, names below ones not made); the device run prints what the host run prints and
    leaves the same trees, and the device made part of them itself."""
    module = REPO / "tests" / "corpus" / "wasm" / "wasi_random.wasm"
    argvs = [["wasi_random.wasm", str(seed), "80", "make", *(["easy"] if seed % 2 else [])] for seed in range(32)]
    runs = []
    for side in ("fast", "host"):
        roots = [make_tree(tmp_path / side / str(k)) for k in range(len(argvs))]
        got = run_api(engine, module, argvs, [[(root, ".")] for root in roots], fast=side == "fast")
        runs.append((got, [tree_files(root) for root in roots]))
    (fast, fast_trees), (host, host_trees) = runs
    for k in range(len(argvs)):
        assert fast.codes[k] == host.codes[k], (k, fast.codes[k], host.codes[k])
        assert fast.stdouts[k] == host.stdouts[k], f"seed {k}\n" + diff("stdout", host.stdouts[k], fast.stdouts[k])
        assert fast_trees[k] == host_trees[k], f"seed {k}: the trees differ"
    # the easy sequences (new names below the snapshot's directories, writes to the files made) make part of
    # their directories on the device: fewer mkdirs reached the host than the guests made
    easy = range(1, len(argvs), 2)
    mkdirs = sum(fast.stdouts[k].count(b" mkdir ") for k in easy)
    assert sum(fast.host_calls[k].count("path_create_directory") for k in easy) < mkdirs
    assert sum(map(len, (fast.host_calls[k] for k in easy))) < 0.9 * sum(map(len, (host.host_calls[k] for k in easy)))


def test_what_the_device_made_is_made_when_a_run_is_cut_off(engine, tmp_path: Path) -> None:
    """An instance still running when its run stops (here an interrupt after the first launch) has what it
    made on the device made on the host when its WASI is closed, as its host calls would have left it."""
    wat = """(module
      (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "spun")
      (func (export "_start") (drop (call $mkdir (i32.const 3) (i32.const 16) (i32.const 4))) (loop $l (br $l))))"""
    root = tmp_path / "root"
    root.mkdir()
    compiled = engine.load(wasmtime.wat2wasm(wat))
    store = engine.store(1)
    wasi = Wasi(store, [WasiContext(preopens=[(str(root), ".")])])
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    assert wasi.fast is not None and wasi.fast.files is not None and wasi.fast.files.ov_cap > 0

    def stop() -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            store.call(instance.exports["_start"], [()], on_slice=stop)
        assert not (root / "spun").exists()  # made on the device, not yet on the host
    finally:
        wasi.close()
    assert (root / "spun").is_dir()


def test_roots_inside_one_another_share_what_is_made_there() -> None:
    """Which instances see a change made below a root (DeviceFiles._find_sharers): those whose roots are it, inside
    it or around it, "/" around everything, and never a sibling whose name only starts the same."""
    from wasmgpu.wasi.devfiles import DeviceFiles
    from wasmgpu.wasi.fds import DirEntry

    paths = ["/a", "/a/b", "/a-b", "/a/b/c", "/x", "/", "/ab"]
    files = DeviceFiles.__new__(DeviceFiles)
    files.contexts, files.roots_of, files.sharers, files.nested = [WasiContext() for _ in paths], [], {}, set()
    entries = []
    for p in paths:
        e = DirEntry.__new__(DirEntry)
        e.root, e.name = p, "."
        entries.append([e])
    files._find_sharers(entries)
    assert files.sharers == {"/": [0, 1, 2, 3, 4, 5, 6], "/a": [0, 1, 3, 5], "/a/b": [0, 1, 3, 5],
                             "/a/b/c": [0, 1, 3, 5], "/a-b": [2, 5], "/ab": [5, 6], "/x": [4, 5]}
    assert files.nested == set(paths)
