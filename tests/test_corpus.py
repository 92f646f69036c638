"""Differential tests over the program corpus: `gpu-run` against wasmtime.

Every case of tests/corpus/cases.json runs its WASI program twice, each in fresh
temporary directories: under the wasmtime library (the reference, configured as
`wasmtime run` would be) and under `python -m wasmgpu.cli` (gpu-run) as a
subprocess. stdout, stderr, the exit code and the files left in the preopened
directory must match. Traps only need to fail on both sides (with the same
stdout, and, for Rust panics, the panic message in both stderrs). Cases with a
"batch" entry also run as one `gpu-run --instances N --out DIR` and are compared
instance by instance with N reference runs.

The backend comes from WASMGPU_TEST_BACKEND (default: cpu).
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CLI_BACKEND_ARGS

wasmtime = pytest.importorskip("wasmtime", reason="the wasmtime package (the reference runtime) is not installed; "
                               "pip install wasmtime to run the corpus tests")

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
GPU_RUN_TIMEOUT = int(os.environ.get("WASMGPU_CORPUS_TIMEOUT", "300"))

CASES: list[dict] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))["cases"]


def module_path(case: dict) -> Path:
    """The case's module as a path relative to the repository root."""
    m = case.get("module", case["name"])
    if m.endswith(".wasm"):
        return Path(m)
    return Path("tests/corpus/wasm") / f"{m}.wasm"


@dataclass
class Outcome:
    exit_code: int
    stdout: bytes
    stderr: bytes
    trap: str | None = None
    files: dict[str, bytes | None] = field(default_factory=dict)


def snapshot(root: Path | None) -> dict[str, bytes | None]:
    """Every path under root, relative, mapped to its bytes (None for a directory)."""
    if root is None:
        return {}
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def make_preopen(case: dict, where: Path) -> Path | None:
    spec = case.get("preopen")
    if spec is None:
        return None
    where.mkdir(parents=True)
    for d in spec.get("dirs", []):
        (where / d).mkdir(parents=True, exist_ok=True)
    for rel, text in spec.get("files", {}).items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_bytes(text.encode("utf-8"))
    return where


def guest_dir(case: dict, where: Path) -> Path | None:
    """The host directory to preopen (fresh, or the case's fixed host_dir)."""
    if "host_dir" in case:
        return REPO / case["host_dir"]
    return make_preopen(case, where)


def guest_path(case: dict) -> str:
    """The name the guest sees the preopened directory under."""
    return case.get("preopen", {}).get("guest", ".")


def stdin_text(case: dict) -> str:
    return case.get("stdin", "") * case.get("stdin_repeat", 1)


# ---------------------------------------------------------------- the reference

_ENGINE = None
_MODULES: dict[Path, object] = {}


def reference_module(rel: Path):
    global _ENGINE
    if _ENGINE is None:
        config = wasmtime.Config()
        config.wasm_exceptions = True  # cpp_exceptions, c_setjmp
        _ENGINE = wasmtime.Engine(config)
    if rel not in _MODULES:
        _MODULES[rel] = wasmtime.Module.from_file(_ENGINE, str(REPO / rel))
    return _MODULES[rel]


def run_reference(rel: Path, args: list[str], env: dict[str, str], stdin: str, preopen: Path | None,
                  io_dir: Path, tag: str = "", guest: str = ".") -> Outcome:
    """Run the module as `wasmtime run [--dir HOST::GUEST] [--env K=V] MODULE ARGS` would."""
    module = reference_module(rel)
    io_dir.mkdir(parents=True, exist_ok=True)
    stdin_f, stdout_f, stderr_f = (io_dir / f"{tag}stdin", io_dir / f"{tag}stdout", io_dir / f"{tag}stderr")
    stdin_f.write_bytes(stdin.encode("utf-8"))
    cfg = wasmtime.WasiConfig()
    cfg.argv = [rel.name, *args]           # wasmtime gives the module's base name as argv[0]
    cfg.env = list(env.items())
    cfg.stdin_file = str(stdin_f)
    cfg.stdout_file = str(stdout_f)
    cfg.stderr_file = str(stderr_f)
    if preopen is not None:
        cfg.preopen_dir(str(preopen), guest)
    store = wasmtime.Store(_ENGINE)
    store.set_wasi(cfg)
    linker = wasmtime.Linker(_ENGINE)
    linker.define_wasi()
    code, trap = 0, None
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        code = e.code
    except wasmtime.Trap as e:
        code = 134                                 # wasmtime run aborts on a trap
        lines = [ln.strip() for ln in str(e).splitlines() if "wasm trap" in ln]
        trap = lines[-1] if lines else str(e.trap_code)
    del store
    return Outcome(code, stdout_f.read_bytes(), stderr_f.read_bytes(), trap)


# ---------------------------------------------------------------- gpu-run

def gpu_run_command(rel: Path, args: list[str], env: dict[str, str], preopen: Path | None,
                    extra: list[str] = (), guest: str = ".") -> list[str]:
    cmd = [sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, *extra]
    if preopen is not None:
        host = preopen.relative_to(REPO) if preopen.is_relative_to(REPO) else preopen
        cmd += ["--dir", f"{host}::{guest}"]
    for k, v in env.items():
        cmd += ["--env", f"{k}={v}"]
    return [*cmd, str(rel), *args]


def run_gpu(cmd: list[str], stdin: str) -> subprocess.CompletedProcess:
    pyenv = dict(os.environ)
    pyenv["PYTHONPATH"] = str(REPO) + os.pathsep + pyenv.get("PYTHONPATH", "")
    try:
        return subprocess.run(cmd, cwd=REPO, input=stdin.encode("utf-8"), capture_output=True, env=pyenv,
                              timeout=GPU_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gpu-run took more than {GPU_RUN_TIMEOUT} s: {' '.join(cmd)}")


# ---------------------------------------------------------------- comparing

def show(data: bytes, limit: int = 3000) -> str:
    text = data.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def diff(name: str, want: bytes, got: bytes) -> str:
    a = want.decode("utf-8", "backslashreplace").splitlines(keepends=True)
    b = got.decode("utf-8", "backslashreplace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"{name} (wasmtime)", f"{name} (gpu-run)", n=2))
    text = "".join(lines[:80]) + (f"... ({len(lines)} diff lines)\n" if len(lines) > 80 else "")
    return text or f"{name}: {want!r} != {got!r}\n"


def panic_line(stderr: bytes) -> str | None:
    for line in stderr.decode("utf-8", "replace").splitlines():
        if "panicked at" in line:
            return line.strip()
    return None


def not_run(got: Outcome) -> bool:
    """gpu-run refused the module or its options (exit 2, an error that is no trap), so a failure proves nothing."""
    err = got.stderr.decode("utf-8", "replace")
    return got.exit_code == 2 and "error" in err and "trap" not in err


def compare(case: dict, ref: Outcome, got: Outcome, cmd: list[str]) -> None:
    expect = case.get("expect", "ok")
    problems: list[str] = []
    if expect in ("trap", "panic"):
        assert ref.exit_code != 0, f"the reference did not fail (exit {ref.exit_code}); fix the case"
        if got.exit_code == 0:
            problems.append(f"gpu-run exited 0, wasmtime trapped ({ref.trap})")
        elif not_run(got):
            problems.append(f"gpu-run did not run the module (wasmtime trapped: {ref.trap})")
        if ref.stdout != got.stdout:
            problems.append(diff("stdout", ref.stdout, got.stdout))
        if expect == "panic":
            line = panic_line(ref.stderr)
            assert line, f"no panic message in the reference stderr: {show(ref.stderr)}"
            if line not in got.stderr.decode("utf-8", "replace"):
                problems.append(f"panic line {line!r} missing from gpu-run stderr:\n{show(got.stderr)}")
    else:
        assert ref.trap is None, f"the reference trapped ({ref.trap}); fix the case"
        assert (ref.exit_code != 0) == (expect == "exit"), f"reference exit code {ref.exit_code} for expect={expect}"
        if ref.exit_code != got.exit_code:
            problems.append(f"exit code: wasmtime {ref.exit_code}, gpu-run {got.exit_code}")
        if ref.stdout != got.stdout:
            problems.append(diff("stdout", ref.stdout, got.stdout))
        if ref.stderr != got.stderr:
            problems.append(diff("stderr", ref.stderr, got.stderr))
    if ref.files != got.files:
        names = sorted(set(ref.files) | set(got.files))
        for n in names:
            a, b = ref.files.get(n, "<absent>"), got.files.get(n, "<absent>")
            if a != b:
                problems.append(f"file {n}: wasmtime {a if not isinstance(a, bytes) else show(a, 300)!r} "
                                f"gpu-run {b if not isinstance(b, bytes) else show(b, 300)!r}")
    if problems:
        pytest.fail(f"{case['name']}: gpu-run differs from wasmtime\n$ {' '.join(cmd)}\n"
                    + "\n".join(problems) + f"\n--- gpu-run stderr ---\n{show(got.stderr)}", pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus(case: dict, tmp_path: Path) -> None:
    rel = module_path(case)
    args, env, stdin, guest = case.get("args", []), case.get("env", {}), stdin_text(case), guest_path(case)

    ref_dir = guest_dir(case, tmp_path / "ref" / "dir")
    before = snapshot(ref_dir) if "host_dir" in case else None
    ref = run_reference(rel, args, env, stdin, ref_dir, tmp_path / "ref" / "io", guest=guest)
    ref.files = snapshot(ref_dir)

    gpu_dir = guest_dir(case, tmp_path / "gpu" / "dir")
    cmd = gpu_run_command(rel, args, env, gpu_dir, guest=guest)
    proc = run_gpu(cmd, stdin)
    got = Outcome(proc.returncode, proc.stdout, proc.stderr, files=snapshot(gpu_dir))
    if before is not None:
        assert ref.files == before, "the program changed its fixed host_dir"
    compare(case, ref, got, cmd)


BATCH_CASES = [c for c in CASES if "batch" in c]


def substitute(value: str, i: int) -> str:
    return value.replace("{i}", str(i))


@pytest.mark.parametrize("case", BATCH_CASES, ids=[c["name"] for c in BATCH_CASES])
def test_corpus_batch(case: dict, tmp_path: Path) -> None:
    rel = module_path(case)
    batch = case["batch"]
    n = batch["instances"]
    args = batch.get("args", case.get("args", []))
    env = batch.get("env", case.get("env", {}))
    out = tmp_path / "out"
    cmd = gpu_run_command(rel, args, env, None, ["--instances", str(n), "--out", str(out)])
    proc = run_gpu(cmd, "")
    problems: list[str] = []
    results_file = out / "results.jsonl"
    if not results_file.is_file():
        pytest.fail(f"no {results_file.name} written (exit {proc.returncode})\n$ {' '.join(cmd)}\n"
                    f"{show(proc.stderr)}", pytrace=False)
    rows = {}
    for line in results_file.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["instance"]] = row
    if sorted(rows) != list(range(n)):
        problems.append(f"results.jsonl covers instances {sorted(rows)[:10]}..., want 0..{n - 1}")
    for i in range(n):
        ref = run_reference(rel, [substitute(a, i) for a in args], {k: substitute(v, i) for k, v in env.items()},
                            "", None, tmp_path / "ref", tag=f"{i}.")
        row = rows.get(i)
        if row is None:
            continue
        if ref.trap is not None:
            if not row.get("trap") or row.get("exit_code") == 0:
                problems.append(f"instance {i}: wasmtime trapped ({ref.trap}), gpu-run gave {row}")
        elif row.get("trap") or row.get("exit_code") != ref.exit_code:
            problems.append(f"instance {i}: wasmtime exit {ref.exit_code}, gpu-run gave {row}")
        stdout_file = out / f"{i}.stdout"
        got_stdout = stdout_file.read_bytes() if stdout_file.is_file() else b"<no file>"
        if got_stdout != ref.stdout:
            problems.append(f"instance {i}:\n" + diff("stdout", ref.stdout, got_stdout))
        stderr_file = out / f"{i}.stderr"   # optional; compared when gpu-run writes it
        if stderr_file.is_file():
            got_stderr = stderr_file.read_bytes()
            line = panic_line(ref.stderr)
            if ref.trap is None and got_stderr != ref.stderr:
                problems.append(f"instance {i}:\n" + diff("stderr", ref.stderr, got_stderr))
            elif line and line not in got_stderr.decode("utf-8", "replace"):
                problems.append(f"instance {i}: panic line {line!r} missing from {stderr_file.name}")
        if len(problems) > 10:
            break
    if problems:
        pytest.fail(f"{case['name']} x{n}: gpu-run differs from wasmtime\n$ {' '.join(cmd)}\n" + "\n".join(problems)
                    + f"\n--- gpu-run stderr ---\n{show(proc.stderr)}", pytrace=False)


def test_corpus_is_complete() -> None:
    """Every source has its committed module and at least one case; every case's module exists."""
    sources = {p.stem for p in (CORPUS / "src").iterdir() if p.suffix in (".c", ".cpp", ".rs")}
    modules = {p.stem for p in (CORPUS / "wasm").glob("*.wasm")}
    assert sources == modules, f"no module for {sources - modules}, no source for {modules - sources}"
    used = {module_path(c).stem for c in CASES}
    # Programs that wasmtime-py cannot run as a command (threads, gpu imports), tested against their known
    # answers elsewhere.
    elsewhere = {"c_threads": "tests/test_threads.py", "c_spawn": "tests/test_processes.py",
                 "c_memory64": "tests/test_memory64.py"}
    for name, where in elsewhere.items():
        assert name in (REPO / where).read_text(), (name, where)
    assert sources - set(elsewhere) <= used, f"programs with no case: {sources - used - set(elsewhere)}"
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for c in CASES:
        assert (REPO / module_path(c)).is_file(), c["name"]
        assert c.get("expect", "ok") in ("ok", "exit", "trap", "panic"), c["name"]
