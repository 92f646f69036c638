"""WASI in the typed Python API (Linker.define_wasi, WasiConfig, Batch.wasi), compared with wasmtime-py's
Linker.define_wasi and Store.set_wasi on the same programs and inputs, instance by instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wasmtime

import wasmgpu.runtime.engine as wg
from tests.conftest import REPO
from tests.test_wasi import Program, cat_program, code_of, echo_program, open_call, run_wasmtime
from wasmgpu.errors import LinkError, ProcExit, WasmGpuError
from wasmgpu.runtime.api import BatchWasi, WasiConfig
from wasmgpu.wasi import abi

CHARCOUNT = REPO / "examples" / "charcount" / "charcount.wasm"

EXIT3 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $proc_exit (i32.const 3)) (unreachable)))"""


def charcount_wasmtime(directory: Path, io: Path) -> tuple[int, bytes]:
    """The reference: charcount under wasmtime-py with `directory` preopened as ".": exit code and stdout."""
    cfg = wasmtime.WasiConfig()
    cfg.argv = ["charcount"]
    cfg.preopen_dir(str(directory), ".")
    cfg.stdout_file = str(io)
    store = wasmtime.Store()
    store.set_wasi(cfg)
    linker = wasmtime.Linker(store.engine)
    linker.define_wasi()
    code = 0
    try:
        linker.instantiate(store, wasmtime.Module.from_file(store.engine, str(CHARCOUNT))).exports(store)["_start"](
            store)
    except wasmtime.ExitTrap as e:
        code = e.code
    del store  # closes the stdout file
    return code, io.read_bytes()


def test_charcount_per_instance_directories_match_wasmtime(engine, tmp_path) -> None:
    texts = ["", "aaaa", "hello, world\n", "ünïcödé ✓ " * 50]
    dirs = []
    for i, text in enumerate(texts):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "input.txt").write_text(text)
        dirs.append(tmp_path / str(i))
    linker = wg.Linker(engine)
    linker.define_wasi([WasiConfig(argv=["charcount"], preopen_dirs=[(d, ".")]) for d in dirs])
    with linker.instantiate(wg.Module.from_file(engine, CHARCOUNT), len(texts)) as batch:
        results = batch.call("_start")
    for i, d in enumerate(dirs):
        code, want = charcount_wasmtime(d, tmp_path / f"{i}.stdout")
        assert code_of(results[i]) == code == 0, results[i]
        assert batch.wasi.stdout(i) == want and want.startswith(b"Found "), i
        assert batch.wasi.stderr(i) == b""
    assert len({bytes(s) for s in batch.wasi.stdouts}) == len(texts)  # each read its own directory


def test_proc_exit_is_an_exit_code_for_every_instance(engine) -> None:
    linker = wg.Linker(engine)
    linker.define_wasi()  # as wasmtime's: no argument, a default configuration
    with linker.instantiate(wg.Module(engine, EXIT3), 5) as batch:
        results = batch.call("_start")
    assert [(r.exit_code, r.trap) for r in results] == [(3, None)] * 5
    store = wasmtime.Store()
    store.set_wasi(wasmtime.WasiConfig())
    wt = wasmtime.Linker(store.engine)
    wt.define_wasi()
    with pytest.raises(wasmtime.ExitTrap) as info:
        wt.instantiate(store, wasmtime.Module(store.engine, EXIT3)).exports(store)["_start"](store)
    assert info.value.code == 3


def test_args_and_env_per_instance_match_wasmtime(engine, tmp_path) -> None:
    wat = echo_program()  # prints argv and environ, exits with the arguments' length % 100
    n = 6
    argv = [["echo", f"a{i}", "x" * i, "ünï"] for i in range(n)]
    envs = [{"K": str(i), "EMPTY": "", "EQ": "a=b"} for i in range(n)]
    linker = wg.Linker(engine)
    linker.define_wasi(lambda i: WasiConfig(argv=argv[i], env=envs[i]))  # a callable: instance -> config
    with linker.instantiate(wg.Module(engine, wat), n) as batch:
        results = batch.call("_start")
    for i in range(n):
        code, out, err = run_wasmtime(wat, tmp_path / str(i), argv[i], list(envs[i].items()))
        assert (code_of(results[i]), batch.wasi.stdout(i), batch.wasi.stderr(i)) == (code, out, err), i
    assert f"a{n - 1}".encode() in batch.wasi.stdout(n - 1) and b"K=0\n" in batch.wasi.stdout(0)


def test_stdin_per_instance_and_inherited_output(engine, tmp_path, capfdbinary) -> None:
    wat = cat_program()  # stdin to stdout; "bytes " to stderr
    stdins = [b"", b"one line\n", bytes(range(256)) * 3]
    linker = wg.Linker(engine)
    linker.define_wasi([WasiConfig(stdin=stdins[0]), WasiConfig(stdin=stdins[1], inherit_stdout=True),
                        WasiConfig(stdin=stdins[2], inherit_stderr=True)])
    with linker.instantiate(wg.Module(engine, wat), 3) as batch:
        results = batch.call("_start")
    want = [run_wasmtime(wat, tmp_path / str(i), stdin=s) for i, s in enumerate(stdins)]
    assert [code_of(r) for r in results] == [w[0] for w in want] == [0, 0, 0]
    # An inherited stream is this process's own (nothing kept); the others are captured.
    assert batch.wasi.stdouts == [want[0][1], b"", want[2][1]]
    assert batch.wasi.stderrs == [want[0][2], want[1][2], b""]
    captured = capfdbinary.readouterr()
    assert captured.out == want[1][1] and captured.err == want[2][2] == b"bytes "


def test_a_seed_repeats_clock_and_random_bytes(engine) -> None:
    p = Program()
    wat = p.wat(f"""(func (export "_start")
      (drop (call $random_get (i32.const 200) (i32.const 16)))
      (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 216)))
      (call $print (i32.const 200) (i32.const 24))
      (call $print {p.s("end")}))""")
    mod = wg.Module(engine, wat)

    def run(**kw: object) -> list[bytes]:
        linker = wg.Linker(engine)
        linker.define_wasi(WasiConfig(**kw))  # type: ignore[arg-type]
        with linker.instantiate(mod, 3) as batch:
            assert all(r.exit_code is None and r.trap is None for r in batch.call("_start"))
            return batch.wasi.stdouts

    seeded = run(seed=7)
    assert seeded == run(seed=7) and len(set(seeded)) == 3  # the same run again; each instance its own stream
    assert seeded != run(seed=8) and run() != run()
    assert all(len(s) == 27 and s.endswith(b"end") for s in seeded)


def test_unknown_wasi_imports_do_not_link(engine, tmp_path) -> None:
    mod = wg.Module(engine, """(module (import "wasi_snapshot_preview1" "no_such_call" (func (param i32)))
      (memory (export "memory") 1) (func (export "_start")))""")
    linker = wg.Linker(engine)
    linker.define_wasi(WasiConfig(preopen_dirs=[(tmp_path, ".")]))
    with pytest.raises(LinkError, match=r"unknown import: `wasi_snapshot_preview1::no_such_call` \(function\) is "
                                        r"not a WASI preview1 function this runtime provides"):
        linker.instantiate(mod, 2)


def test_linker_functions_and_wasi_together(engine) -> None:
    mod = wg.Module(engine, """(module
      (import "env" "code" (func $code (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $proc_exit (call $code))))""")
    linker = wg.Linker(engine)
    linker.define_func("env", "code", ([], ["i32"]), lambda i: 10 + i, access_instance=True)
    linker.define_wasi()
    with linker.instantiate(mod, 4) as batch:
        assert [r.exit_code for r in batch.call("_start")] == [10, 11, 12, 13]

    def exit_plus_100(code: int) -> None:
        raise ProcExit(code + 100)

    # A function defined by name replaces WASI's of that name.
    linker.define_func("wasi_snapshot_preview1", "proc_exit", (["i32"], []), exit_plus_100)
    with linker.instantiate(mod, 2) as batch:
        assert [r.exit_code for r in batch.call("_start")] == [110, 111]
    # A batch of a linker without define_wasi has no WASI side.
    plain = wg.Linker(engine)
    assert plain.instantiate(wg.Module(engine, '(module (func (export "f")))'), 2).wasi is None


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_closing_the_batch_releases_the_files_its_guests_opened(engine, tmp_path) -> None:
    p = Program()
    rights = abi.R_FD_READ | abi.R_FD_WRITE
    wat = p.wat(f"""(func (export "_start")
      {p.report("open", open_call("(i32.const 3)", p.s("left-open.txt"), abi.OFLAGS_CREAT, rights))})""")
    n = 3
    for i in range(n):
        (tmp_path / str(i)).mkdir()
    linker = wg.Linker(engine)
    linker.define_wasi(lambda i: WasiConfig(preopen_dirs=[(tmp_path / str(i), ".")]))
    before = open_fds()
    batch = linker.instantiate(wg.Module(engine, wat), n)
    with batch:
        assert all(r.exit_code is None and r.trap is None for r in batch.call("_start"))
        assert open_fds() >= before + n  # each guest holds its file open
    assert open_fds() == before
    assert batch.wasi.stdouts == [b"open=0\n"] * n  # the output outlives the contexts
    assert all((tmp_path / str(i) / "left-open.txt").exists() for i in range(n))
    batch.close()  # again: nothing to do


def test_configurations_that_do_not_fit(engine, tmp_path) -> None:
    linker = wg.Linker(engine)
    mod = wg.Module(engine, EXIT3)
    linker.define_wasi([WasiConfig(), WasiConfig()])
    with pytest.raises(WasmGpuError, match="define_wasi was given 2 configurations for a batch of 3 instances"):
        linker.instantiate(mod, 3)
    with pytest.raises(TypeError, match="configuration 1 is a dict, not a WasiConfig"):
        linker.define_wasi([WasiConfig(), {"argv": ["x"]}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a WasiConfig, a sequence of them"):
        linker.define_wasi(5)  # type: ignore[arg-type]
    linker.define_wasi(lambda i: WasiConfig() if i else None)
    with pytest.raises(TypeError, match="the callable returned a NoneType for instance 0"):
        linker.instantiate(mod, 2)
    with pytest.raises(TypeError, match="WasiConfig.argv: expected a sequence of strings"):
        WasiConfig(argv="prog")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="WasiConfig.stdin: expected bytes"):
        WasiConfig(stdin="text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"WasiConfig.preopen_dirs: expected \(host directory, guest name\) pairs"):
        WasiConfig(preopen_dirs=[str(tmp_path)])  # type: ignore[list-item]
    # A preopen that is not there names its instance; the contexts made before it are closed.
    (tmp_path / "0").mkdir()
    linker.define_wasi(lambda i: WasiConfig(preopen_dirs=[(tmp_path / str(i), ".")]))
    with pytest.raises(WasmGpuError, match=r"WASI configuration of instance 1: preopened directory .* does not "
                                           r"exist"):
        linker.instantiate(mod, 2)


def test_batch_wasi_is_the_api_object(engine) -> None:
    linker = wg.Linker(engine)
    linker.define_wasi(WasiConfig(argv=["p"], env=[("A", "1")]))  # env as pairs, as wasmtime's
    with linker.instantiate(wg.Module(engine, EXIT3), 2) as batch:
        assert isinstance(batch.wasi, BatchWasi) and len(batch.wasi.contexts) == 2
        assert batch.wasi.contexts[1].args == [b"p"] and batch.wasi.contexts[1].env == [b"A=1"]
    assert batch.wasi.closed


def test_unwrap_of_an_exit_raises_proc_exit_with_its_code() -> None:
    from wasmgpu.errors import ProcExit
    from wasmgpu.runtime.objects import CallResult

    with pytest.raises(ProcExit) as e:
        CallResult(exit_code=3).unwrap()
    assert e.value.code == 3
    assert CallResult(values=(1, 2)).unwrap() == (1, 2)
