"""gpu-run as wasmtime users expect it: backtraces frame for frame as wasmtime's, wasmtime's exit codes, text
modules, --version, and wasmtime's -W/-S spellings of the options both have."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import wasmtime

import wasmgpu
from tests.conftest import CLI_BACKEND_ARGS
from tests.test_wasi import Program, echo_program
from wasmgpu import cli

REPO = Path(__file__).resolve().parent.parent

NESTED = """(module $demo
  (func $inner (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func $middle (param i32) (result i32) (call $inner (local.get 0)))
  (func (export "main") (result i32) (call $middle (i32.const 0))))"""

# Function names but no module name; an indirect call, and a call with arguments and results around it.
UNREACHABLE = """(module
  (type $v (func))
  (table 2 funcref) (elem (i32.const 1) $boom)
  (func $boom unreachable)
  (func $through (param i32 i64) (result i64)
    (call_indirect (type $v) (local.get 0)) (i64.add (local.get 1) (i64.const 1)))
  (func $outer (result i64) (i64.mul (call $through (i32.const 1) (i64.const 5)) (i64.const 3)))
  (func (export "run") (result i64) (block (result i64) (call $outer))))"""

# No name section at all: frames are `<unknown>!<wasm function N>`.
ANONYMOUS = """(module
  (func (param i32) (result i32) (i32.rem_s (local.get 0) (i32.const 0)))
  (func (param i32) (result i32) (i32.add (i32.const 1) (call 0 (local.get 0))))
  (func (export "go") (result i32) (call 1 (i32.const 7))))"""


def module(tmp_path: Path, wat: str, name: str = "prog.wasm") -> Path:
    path = tmp_path / name
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def gpu_run_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, *argv], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env=env if env is not None else dict(os.environ))


def frame_lines(text: str) -> list[str]:
    """The numbered frame lines of a backtrace (wasmtime's `    0:     0x36 - mod!inner`, or `    0: mod!f`
    for a function that could not be entered)."""
    return [line for line in text.splitlines() if re.match(r"\s+\d+: (?: *0x[0-9a-f]+ - |\S+!)", line)]


def our_frames(err: str) -> list[str]:
    """gpu-run's frame lines, without the 7 columns anyhow's `    1: ` cause indents them by."""
    lines = frame_lines(err)
    assert lines and all(line.startswith(" " * 7) for line in lines), err
    return [line[7:] for line in lines]


def wasmtime_trap(wasm: bytes, name: str) -> wasmtime.Trap:
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    with pytest.raises(wasmtime.Trap) as info:
        inst.exports(store)[name](store)
    return info.value


@pytest.mark.parametrize("wat, export", [(NESTED, "main"), (UNREACHABLE, "run"), (ANONYMOUS, "go")])
def test_backtrace_frames_match_wasmtime(tmp_path, capsys, wat, export) -> None:
    wasm = module(tmp_path, wat)
    want = frame_lines(str(wasmtime_trap(wasm.read_bytes(), export)))
    assert len(want) >= 3
    status = cli.main([*CLI_BACKEND_ARGS, "--invoke", export, str(wasm)])
    err = capsys.readouterr().err
    assert status == 134
    assert our_frames(err) == want, err
    head = f"Error: failed to run main module `{wasm}`\n\nCaused by:\n    0: failed to invoke `{export}`\n"
    assert err.startswith(head), err


# Function names wasmtime shows demangled: legacy Rust symbols (escapes, `..`, an LLVM suffix, a closure), a
# lone C++ builtin-type code; and names it leaves alone.
NAMES = ["_ZN4core9panicking5panic17h0123456789abcdefE", "_ZN4test4main17habcdef0123456789E.llvm.123",
         "_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h4a8b1c2d3e4f5a6bE",
         "_ZN63_$LT$alloc..alloc..Global$u20$as$u20$core..alloc..Allocator$GT$10deallocate17h0011223344556677E",
         "_ZN4test4main17habcdef0123456789E.1", "_ZN3foo9$LT$T$GT$3bar", "f", "main", "__original_main", "x"]


def test_function_names_are_demangled_as_wasmtime_does(tmp_path, capsys) -> None:
    chain = "".join(f'(func $"{name}" (call {k + 1}))' for k, name in enumerate(NAMES))
    wat = f'(module {chain} (func $last unreachable) (func (export "go") (call 0)))'
    wasm = module(tmp_path, wat)
    want = frame_lines(str(wasmtime_trap(wasm.read_bytes(), "go")))
    assert len(want) == len(NAMES) + 2 and "core::panicking::panic::h0123456789abcdef" in want[-2]
    assert cli.main([*CLI_BACKEND_ARGS, "--invoke", "go", str(wasm)]) == 134
    assert our_frames(capsys.readouterr().err) == want


def test_backtrace_of_a_command_and_of_a_host_error_match_wasmtime(tmp_path, capsys) -> None:
    """A trap in a WASI command, and an error raised by an import (proc_exit with an invalid status), whose
    innermost frame is the call to the import."""
    p = Program()
    for body, cause in (("(i32.const 0) (drop) unreachable", "wasm trap: wasm `unreachable` instruction executed"),
                        ("(call $proc_exit (i32.const 300))", "exit with invalid exit status outside of [0..126)")):
        # Straight-line code: after a branch, Cranelift may attribute a trap to the branch instead.
        wat = p.wat(f"""(func $fail (param i32) {body})
                        (func $work (call $print {p.s("hi")}) (call $fail (i32.const 1)))
                        (func (export "_start") (call $work))""")
        wasm = module(tmp_path, wat)
        store = wasmtime.Store()
        store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(store.engine)
        linker.define_wasi()
        inst = linker.instantiate(store, wasmtime.Module(store.engine, wasm.read_bytes()))
        with pytest.raises((wasmtime.Trap, wasmtime.WasmtimeError)) as info:
            inst.exports(store)["_start"](store)
        want = frame_lines(str(info.value))
        status = cli.main([*CLI_BACKEND_ARGS, str(wasm)])
        err = capsys.readouterr().err
        assert status == (134 if "trap" in cause else 1)
        assert our_frames(err) == want and len(want) == 3, (err, str(info.value))
        assert err.rstrip().endswith("    2: " + cause)


def test_stack_overflow_backtrace_starts_as_wasmtimes(tmp_path, capsys) -> None:
    """The callee that could not be entered first, without an offset, then the calls; the depths differ, so
    the innermost frames are compared (wasmtime shows 20, as gpu-run does before `... N more frames`)."""
    wat = """(module (func $down (param i32) (result i32) (i32.add (call $down (local.get 0)) (i32.const 1)))
      (func (export "deep") (result i32) (call $down (i32.const 0))))"""
    wasm = module(tmp_path, wat)
    want = frame_lines(str(wasmtime_trap(wasm.read_bytes(), "deep")))
    assert want[0] == "    0: <unknown>!down" and len(want) >= 10
    assert cli.main([*CLI_BACKEND_ARGS, "--invoke", "deep", str(wasm)]) == 134
    ours = [line[7:] for line in capsys.readouterr().err.splitlines() if re.match(r" {7}\s+\d+: ", line)]
    assert ours[:len(want)] == want


def test_results_keep_wasmtime_frames_and_the_exit_status(tmp_path, capsys) -> None:
    wasm = module(tmp_path, NESTED)
    out = tmp_path / "out"
    status = cli.main([*CLI_BACKEND_ARGS, "-n", "2", "--out", str(out), str(wasm)])
    capsys.readouterr()
    want = [line.split(":", 1)[1].strip() for line in frame_lines(str(wasmtime_trap(wasm.read_bytes(), "main")))]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert status == 134 and [r["exit_code"] for r in rows] == [134, 134]
    assert [r["backtrace"] for r in rows] == [want, want]
    assert want[0].endswith(" - demo!inner")


def test_exit_codes_are_wasmtimes(tmp_path) -> None:
    """134 for a trap (command, --invoke, main without _start, start function), 1 for gpu-run's own errors,
    2 for usage errors only: a guest that exits 2 is no longer confused with an error of gpu-run's."""
    exits = Program().wat('(func (export "_start") (call $proc_exit (i32.const 2)))')
    start_trap = '(module (func $s unreachable) (start $s) (func (export "_start")))'
    link = '(module (import "env" "missing" (func)) (func (export "_start")))'
    cases = [
        ([str(module(tmp_path, exits, "exits.wasm"))], 2, ""),
        ([str(module(tmp_path, NESTED, "nested.wasm"))], 134, "wasm trap: integer divide by zero"),
        (["--invoke", "run", str(module(tmp_path, UNREACHABLE, "u.wasm"))], 134, "`unreachable`"),
        ([str(module(tmp_path, start_trap, "start.wasm"))], 134, "failed to instantiate"),
        ([str(module(tmp_path, link, "link.wasm"))], 1, "gpu-run: error: "),
        ([str(tmp_path / "absent.wasm")], 1, "gpu-run: error: "),
        (["--max-memory", "1K", str(module(tmp_path, NESTED, "nested.wasm"))], 1, "--max-memory"),
        (["--invoke", "nothing", str(module(tmp_path, NESTED, "nested.wasm"))], 1, "no function named"),
        (["--fuel", "lots", str(module(tmp_path, NESTED, "nested.wasm"))], 2, "usage: gpu-run"),
    ]
    for argv, status, words in cases:
        proc = gpu_run_process(*argv)
        assert proc.returncode == status and words in proc.stderr and "Traceback" not in proc.stderr, (argv, proc)


def test_invoke_traps_record_134_in_results(tmp_path, capsys) -> None:
    wasm = module(tmp_path, UNREACHABLE)
    out = tmp_path / "out"
    assert cli.main([*CLI_BACKEND_ARGS, "-n", "3", "--out", str(out), "--invoke", "run", str(wasm)]) == 134
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["exit_code"], r["trap"]) for r in rows] == [(134, "wasm `unreachable` instruction executed")] * 3
    assert "[2]     0: failed to invoke `run`" in capsys.readouterr().err


def test_text_modules_run(tmp_path) -> None:
    wat = '(module (func (export "main") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))'
    (tmp_path / "triple.wat").write_text(wat)
    (tmp_path / "text.wasm").write_text(";; a text module under a binary name\n" + wat)
    for name in ("triple.wat", "text.wasm"):
        proc = gpu_run_process(str(tmp_path / name), "14")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "42\n", "")
    (tmp_path / "nested.wat").write_text(NESTED)
    proc = gpu_run_process(str(tmp_path / "nested.wat"))
    assert proc.returncode == 134 and "demo!inner" in proc.stderr


def test_text_module_parse_error_is_one_line(tmp_path) -> None:
    (tmp_path / "bad.wat").write_text('(module\n  (func (export "f")\n    (i32.bogus)))\n')
    proc = gpu_run_process(str(tmp_path / "bad.wat"))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"gpu-run: error: cannot load module '{tmp_path / 'bad.wat'}': bad.wat:3:6: ")


def test_text_modules_without_wasmtime_say_what_to_install(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "m.wat").write_text('(module (func (export "main")))')
    monkeypatch.setitem(sys.modules, "wasmtime", None)  # makes `import wasmtime` raise ImportError
    assert cli.main([*CLI_BACKEND_ARGS, str(tmp_path / "m.wat")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "text modules need the wasmtime package (pip install wasmtime)" in err
    monkeypatch.undo()
    binary = module(tmp_path, '(module (func (export "main") (result i32) (i32.const 5)))')
    monkeypatch.setitem(sys.modules, "wasmtime", None)
    assert cli.main([*CLI_BACKEND_ARGS, str(binary)]) == 0  # a binary module needs no wasmtime
    assert capsys.readouterr().out == "5\n"


def test_version(capsys) -> None:
    try:
        want = metadata.version("wasmgpu")
    except metadata.PackageNotFoundError:
        want = "0.1.0"
    assert wasmgpu.__version__ == want
    for flag in ("-V", "--version"):
        with pytest.raises(SystemExit) as info:
            cli.main([flag])
        assert info.value.code == 0 and capsys.readouterr().out == f"gpu-run {want}\n"


def test_no_arguments_prints_the_usage_and_a_hint() -> None:
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert lines[0].startswith("usage: gpu-run ") and "gpu-run --help" in lines[1]
    assert "required" not in proc.stderr


def loop_module(tmp_path: Path) -> Path:
    return module(tmp_path, '(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))',
                  "loop.wasm")


def test_w_fuel_and_timeout(tmp_path, capsys) -> None:
    wasm = loop_module(tmp_path)
    for n, opt in enumerate((["-W", "fuel=3000"], ["--fuel", "3000"])):
        out = tmp_path / f"o{n}"
        assert cli.main([*CLI_BACKEND_ARGS, *opt, "--out", str(out), str(wasm)]) == 134
        assert json.loads((out / "results.jsonl").read_text())["fuel_used"] == 3000
    assert "all fuel consumed" in capsys.readouterr().err
    out = tmp_path / "twice"
    assert cli.main([*CLI_BACKEND_ARGS, "-W", "fuel=10", "-W", "fuel=2000", "--out", str(out), str(wasm)]) == 134
    assert json.loads((out / "results.jsonl").read_text())["fuel_used"] == 2000  # the last one given
    assert cli.main([*CLI_BACKEND_ARGS, "-W", "timeout=200ms", str(wasm)]) == 134
    assert "timeout of 0.2 s" in capsys.readouterr().err


def test_durations() -> None:
    got = {text: cli.duration_arg(text) for text in ("10", "10s", "500ms", "250us", "1500000ns", "1.5s")}
    assert got == pytest.approx({"10": 10, "10s": 10, "500ms": 0.5, "250us": 250e-6, "1500000ns": 1.5e-3,
                                 "1.5s": 1.5})


def test_w_memory_and_stack_reach_the_store(tmp_path, capsys, monkeypatch) -> None:
    seen: list[tuple[int | None, int | None]] = []

    class Engine(cli.Engine):  # type: ignore[misc, valid-type]
        def store(self, n: int = 1, **options):
            seen.append((self.max_memory, options.get("stack_slots")))
            return super().store(n, **options)

    monkeypatch.setattr(cli, "Engine", Engine)
    quick = module(tmp_path, '(module (func (export "_start")))')
    assert cli.main([*CLI_BACKEND_ARGS, "-W", "max-memory-size=4294967296,max-wasm-stack=65536", str(quick)]) == 0
    assert cli.main([*CLI_BACKEND_ARGS, "-W", "max-memory-size=2G", str(quick)]) == 0
    assert seen == [(4 << 30, 8192), (2 << 30, None)]
    deep = """(module (func $down (param i32) (result i32) (i32.add (call $down (local.get 0)) (i32.const 1)))
      (func (export "main") (result i32) (call $down (i32.const 0))))"""
    wasm = module(tmp_path, deep, "deep.wasm")
    assert cli.main([*CLI_BACKEND_ARGS, "-W", "max-wasm-stack=16K", str(wasm)]) == 134
    assert "call stack exhausted" in capsys.readouterr().err


def test_s_inherit_env(tmp_path) -> None:
    wasm = module(tmp_path, echo_program())
    # A small environment: echo_program holds environ in 4 KiB.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("WASMGPU_")}
    env["GPU_RUN_INHERITED"] = "from host"
    env["GPU_RUN_BOTH"] = "host"
    proc = gpu_run_process("-S", "inherit-env", "--env", "GPU_RUN_BOTH=given", str(wasm), env=env)
    lines = proc.stdout.splitlines()
    assert "GPU_RUN_INHERITED=from host" in lines and "GPU_RUN_BOTH=given" in lines, proc
    assert "GPU_RUN_BOTH=host" not in lines and f"PATH={env['PATH']}" in lines
    proc = gpu_run_process("-S", "inherit-env=n", str(wasm), env=env)
    assert "GPU_RUN_INHERITED=from host" not in proc.stdout.splitlines() and "envc=0" in proc.stdout


@pytest.mark.parametrize("argv, words", [
    (["-W", "bogus=1"], "unknown WebAssembly option -W 'bogus'"),
    (["-S", "teleport"], "unknown WASI option -S 'teleport'"),
    (["-W", "gc=y"], "-W gc is a wasmtime option that gpu-run does not support"),
    (["-S", "tcp"], "-S tcp is a wasmtime option that gpu-run does not support"),
    (["-W", "fuel"], "-W fuel needs a value"),
    (["-W", "fuel=-1"], "argument -W fuel: fuel must be between 0 and"),
    (["-W", "timeout=soon"], "argument -W timeout: invalid duration 'soon'"),
    (["-W", "max-wasm-stack=16"], "the stack must be between"),
    (["-W", "fuel=5", "--fuel", "6"], "-W fuel and --fuel set the same limit"),
])
def test_bad_w_and_s_options_are_usage_errors(tmp_path, capsys, argv, words) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*CLI_BACKEND_ARGS, *argv, str(tmp_path / "any.wasm")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("usage: gpu-run") and words in err, err


def test_proposal_switches_take_wasmtimes_spelling(tmp_path, capsysbinary) -> None:
    """Extended constant expressions and multi-memory are on, as in wasmtime; -W KEY=n turns one off."""
    from tests.test_cli import gpu_run, module

    wasm = module(tmp_path, '(module (memory 1) (memory 1) (global $a i32 (i32.const 6)) '
                  '(global $b i32 (i32.mul (global.get $a) (i32.add (i32.const 3) (i32.const 4)))) '
                  '(func (export "main") (result i32) (global.get $b)))')
    assert gpu_run(capsysbinary, str(wasm))[:2] == (0, b"42\n")
    status, _, err = gpu_run(capsysbinary, "-W", "extended-const=n", str(wasm))
    assert status == 1 and b"unknown global 0" in err
    status, _, err = gpu_run(capsysbinary, "-W", "multi-memory=n", str(wasm))
    assert status == 1 and b"multiple memories" in err
