"""WASI preview1 against wasmtime: the same WAT programs and the same calls, compared.

Two kinds of tests:
- programs: small WAT modules exporting _start that call WASI directly run under the wasmtime
  library (the reference) and as a batch under wasmgpu; stdout, exit codes and the files left
  behind must match, instance by instance.
- probes: a module that re-exports every WASI function, so a test can make single calls with
  chosen arguments on both sides and compare errnos and the bytes written (sandbox escapes,
  errors, struct layouts).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
import wasmtime

from wasmgpu.errors import LinkError
from wasmgpu.wasi import BufferSink, Wasi, WasiContext, abi
from wasmgpu.wasm import opcodes as wo

N = 40
WT = {wo.I32_T: "i32", wo.I64_T: "i64"}
_WT_ENGINE = wasmtime.Engine()
_WT_MODULES: dict[str, wasmtime.Module] = {}


def wt_module(wat: str) -> wasmtime.Module:
    if wat not in _WT_MODULES:
        _WT_MODULES[wat] = wasmtime.Module(_WT_ENGINE, wat)
    return _WT_MODULES[wat]


def imports_wat(names=None) -> str:
    out = []
    for name, (params, results) in abi.SIGNATURES.items():
        if names is not None and name not in names:
            continue
        ps = " ".join(WT[p] for p in params)
        rs = " ".join(WT[r] for r in results)
        out.append(f'(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {ps}) (result {rs})))')
    return "\n".join(out)


# -- WAT programs -------------------------------------------------------------------------------
# Memory map: 0..1023 scratch (iovec at 0, nwritten at 8, digits at 32..63, results from 100),
# string constants from 1024, buffers from 8192.
PRELUDE = r"""
(func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
  (i32.store (i32.const 0) (local.get $ptr)) (i32.store (i32.const 4) (local.get $len))
  (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
(func $print (param $ptr i32) (param $len i32) (drop (call $write (i32.const 1) (local.get $ptr) (local.get $len))))
(func $eprint (param $ptr i32) (param $len i32) (drop (call $write (i32.const 2) (local.get $ptr) (local.get $len))))
(func $strlen (param $p i32) (result i32) (local $n i32)
  (block $done (loop $next
    (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
    (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $next)))
  (local.get $n))
(func $print_u32 (param $v i32) (local $at i32)
  (local.set $at (i32.const 63))
  (loop $digit
    (local.set $at (i32.sub (local.get $at) (i32.const 1)))
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
    (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
    (br_if $digit (local.get $v)))
  (call $print (local.get $at) (i32.sub (i32.const 63) (local.get $at))))
(func $report (param $ptr i32) (param $len i32) (param $v i32)
  (call $print (local.get $ptr) (local.get $len))
  (i32.store8 (i32.const 64) (i32.const 61)) (call $print (i32.const 64) (i32.const 1))
  (call $print_u32 (local.get $v))
  (i32.store8 (i32.const 64) (i32.const 10)) (call $print (i32.const 64) (i32.const 1)))
"""


class Program:
    """A WAT command: the prelude, string constants placed by s(), and a body."""

    def __init__(self) -> None:
        self.data: list[tuple[int, bytes]] = []
        self.next = 1024

    def s(self, text: str | bytes) -> str:
        raw = text.encode() if isinstance(text, str) else text
        self.data.append((self.next, raw))
        addr = self.next
        self.next += len(raw) + 1
        return f"(i32.const {addr}) (i32.const {len(raw)})"

    def report(self, label: str, expr: str) -> str:
        return f"(call $report {self.s(label)} {expr})"

    def wat(self, body: str, pages: int = 2) -> str:
        def esc(b: bytes) -> str:
            return "".join(f"\\{c:02x}" for c in b)

        data = "\n".join(f'(data (i32.const {a}) "{esc(b)}")' for a, b in self.data)
        return f'(module {imports_wat()}\n(memory (export "memory") {pages})\n{PRELUDE}\n{data}\n{body})'


def echo_program() -> str:
    """Prints argv and environ one per line, then exits with (total bytes of the arguments) % 100."""
    p = Program()
    body = f"""
(func $lines (param $count i32) (param $array i32) (result i32) (local $i i32) (local $s i32) (local $sum i32)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
    (local.set $s (i32.load (i32.add (local.get $array) (i32.shl (local.get $i) (i32.const 2)))))
    (call $print (local.get $s) (call $strlen (local.get $s)))
    (local.set $sum (i32.add (local.get $sum) (call $strlen (local.get $s))))
    (call $print {p.s(chr(10))})
    (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $next)))
  (local.get $sum))
(func (export "_start") (local $sum i32)
  {p.report("args_sizes_get", "(call $args_sizes_get (i32.const 100) (i32.const 104))")}
  {p.report("argc", "(i32.load (i32.const 100))")}
  {p.report("argv_buf_size", "(i32.load (i32.const 104))")}
  {p.report("args_get", "(call $args_get (i32.const 8192) (i32.const 12288))")}
  (local.set $sum (call $lines (i32.load (i32.const 100)) (i32.const 8192)))
  {p.report("environ_sizes_get", "(call $environ_sizes_get (i32.const 100) (i32.const 104))")}
  {p.report("envc", "(i32.load (i32.const 100))")}
  {p.report("environ_get", "(call $environ_get (i32.const 8192) (i32.const 12288))")}
  (drop (call $lines (i32.load (i32.const 100)) (i32.const 8192)))
  (call $eprint {p.s("done" + chr(10))})
  (call $proc_exit (i32.rem_u (local.get $sum) (i32.const 100))))
"""
    return p.wat(body)


RW = abi.R_FD_READ | abi.R_FD_WRITE | abi.R_FD_SEEK | abi.R_FD_TELL | abi.RIGHTS["FD_FILESTAT_GET"]


def open_call(dirfd: str, path: str, oflags: int, rights: int = RW, inheriting: int = 0) -> str:
    """path_open(dirfd, follow, path, oflags, rights, inheriting, fdflags 0, fd out at 100)."""
    return (f"(call $path_open {dirfd} (i32.const 1) {path} (i32.const {oflags}) (i64.const {rights}) "
            f"(i64.const {inheriting}) (i32.const 0) (i32.const 100))")


def files_program() -> str:
    """Files and directories in the preopen (fd 3), every errno printed; argv[1] names the file."""
    p = Program()
    name = "(i32.load (i32.const 8196))"  # argv[1]
    name_len = f"(call $strlen {name})"
    dir_rights = abi.R_FD_READDIR | abi.RIGHTS["PATH_OPEN"]
    body = f"""
(func (export "_start") (local $fd i32) (local $dir i32)
  (drop (call $args_get (i32.const 8192) (i32.const 12288)))
  ;; create, write, seek back, read, tell, stat, close
  {p.report("open", open_call("(i32.const 3)", f"{name} {name_len}", 9))}
  (local.set $fd (i32.load (i32.const 100)))
  {p.report("fd", "(local.get $fd)")}
  ;; one iovec per write: wasmtime writes only the first buffer of several (a short write)
  (i32.store (i32.const 16) {name}) (i32.store (i32.const 20) {name_len})
  {p.report("write", "(call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 104))")}
  {p.report("written", "(i32.load (i32.const 104))")}
  {p.report("seek", "(call $fd_seek (local.get $fd) (i64.const 1) (i32.const 0) (i32.const 112))")}
  {p.report("pos", "(i32.load (i32.const 112))")}
  (i32.store (i32.const 16) (i32.const 16384)) (i32.store (i32.const 20) (i32.const 100))
  {p.report("read", "(call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 104))")}
  {p.report("nread", "(i32.load (i32.const 104))")}
  (call $print (i32.const 16384) (i32.load (i32.const 104)))
  (call $print {p.s(chr(10))})
  {p.report("tell", "(call $fd_tell (local.get $fd) (i32.const 112))")}
  {p.report("at", "(i32.load (i32.const 112))")}
  {p.report("filestat", "(call $fd_filestat_get (local.get $fd) (i32.const 128))")}
  {p.report("type", "(i32.load8_u (i32.const 144))")}
  {p.report("size", "(i32.load (i32.const 160))")}
  {p.report("pwrite", "(call $fd_pwrite (local.get $fd) (i32.const 16) (i32.const 1) (i64.const 2) (i32.const 104))")}
  {p.report("set_size", "(call $fd_filestat_set_size (local.get $fd) (i64.const 4))")}
  {p.report("close", "(call $fd_close (local.get $fd))")}
  {p.report("close again", "(call $fd_close (local.get $fd))")}
  ;; directories
  {p.report("mkdir", f"(call $path_create_directory (i32.const 3) {p.s('sub')})")}
  {p.report("mkdir again", f"(call $path_create_directory (i32.const 3) {p.s('sub')})")}
  {p.report("open sub", open_call("(i32.const 3)", p.s("sub"), 2, dir_rights, abi.RIGHTS_ALL))}
  (local.set $dir (i32.load (i32.const 100)))
  {p.report("open inner", open_call("(local.get $dir)", p.s("inner.txt"), 1))}
  (drop (call $write (i32.load (i32.const 100)) {p.s('inner' + chr(10))}))
  {p.report("close inner", "(call $fd_close (i32.load (i32.const 100)))")}
  {p.report("readdir", "(call $fd_readdir (local.get $dir) (i32.const 16384) (i32.const 4096) (i64.const 0) "
            "(i32.const 104))")}
  {p.report("bufused", "(i32.load (i32.const 104))")}
  ;; entries "." (25 bytes), ".." (26), then "inner.txt" at 16384 + 51
  {p.report("third d_type", "(i32.load8_u (i32.const 16455))")}
  (call $print (i32.const 16459) (i32.load (i32.const 16451)))
  (call $print {p.s(chr(10))})
  {p.report("rename", f"(call $path_rename (i32.const 3) {name} {name_len} (local.get $dir) {p.s('moved')})")}
  {p.report("stat moved", f"(call $path_filestat_get (i32.const 3) (i32.const 1) {p.s('sub/moved')} (i32.const 128))")}
  {p.report("moved size", "(i32.load (i32.const 160))")}
  {p.report("symlink", f"(call $path_symlink {p.s('moved')} (local.get $dir) {p.s('link')})")}
  {p.report("readlink", f"(call $path_readlink (local.get $dir) {p.s('link')} (i32.const 16384) (i32.const 64) "
            "(i32.const 104))")}
  (call $print (i32.const 16384) (i32.load (i32.const 104)))
  (call $print {p.s(chr(10))})
  {p.report("stat link", f"(call $path_filestat_get (local.get $dir) (i32.const 0) {p.s('link')} (i32.const 128))")}
  {p.report("link type", "(i32.load8_u (i32.const 144))")}
  {p.report("stat through", f"(call $path_filestat_get (local.get $dir) (i32.const 1) {p.s('link')} (i32.const 128))")}
  {p.report("through type", "(i32.load8_u (i32.const 144))")}
  {p.report("unlink link", f"(call $path_unlink_file (local.get $dir) {p.s('link')})")}
  {p.report("hard link", f"(call $path_link (local.get $dir) (i32.const 0) {p.s('moved')} (i32.const 3) "
            f"{p.s('hard')})")}
  {p.report("rmdir nonempty", f"(call $path_remove_directory (i32.const 3) {p.s('sub')})")}
  {p.report("unlink dir", f"(call $path_unlink_file (i32.const 3) {p.s('sub')})")}
  {p.report("unlink missing", f"(call $path_unlink_file (i32.const 3) {p.s('missing')})")}
  {p.report("open missing", open_call("(i32.const 3)", p.s("missing"), 0))}
  {p.report("excl", open_call("(i32.const 3)", p.s("hard"), 5))}
  {p.report("mkdir tmp", f"(call $path_create_directory (local.get $dir) {p.s('tmp')})")}
  {p.report("rmdir tmp", f"(call $path_remove_directory (local.get $dir) {p.s('tmp')})")}
  {p.report("close dir", "(call $fd_close (local.get $dir))")})
"""
    return p.wat(body)


def cat_program() -> str:
    """Copies stdin to stdout in 7-byte reads; the byte count goes to stderr."""
    p = Program()
    body = f"""
(func (export "_start") (local $total i32)
  (block $eof (loop $more
    (i32.store (i32.const 16) (i32.const 16384)) (i32.store (i32.const 20) (i32.const 7))
    (br_if $eof (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 104)))
    (br_if $eof (i32.eqz (i32.load (i32.const 104))))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 104))))
    (call $print (i32.const 16384) (i32.load (i32.const 104)))
    (br $more)))
  (call $eprint {p.s("bytes ")})
  (drop (call $write (i32.const 2) {p.s("")}))
  (call $report {p.s("total")} (local.get $total)))
"""
    return p.wat(body)


# -- running both sides --------------------------------------------------------------------------
def run_wasmtime(wat: str, tmp: Path, args=("prog",), env=(), preopen: Path | None = None, stdin: bytes = b"",
                 guest: str = ".") -> tuple[int | str, bytes, bytes]:
    return run_wasmtime_module(wt_module(wat), tmp, args, env, [(preopen, guest)] if preopen is not None else [],
                               stdin)


def run_wasmtime_module(module: wasmtime.Module, tmp: Path, args=("prog",), env=(),
                        preopens: Sequence[tuple[Path, str]] = (), stdin: bytes = b"",
                        tag: str = "") -> tuple[int | str, bytes, bytes]:
    """As `wasmtime run --dir HOST::GUEST... MODULE ARGS` (module made on _WT_ENGINE): (exit code or
    'trap: ...', stdout, stderr), through files in `tmp` named `<tag>stdin` and so on."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = wasmtime.WasiConfig()
    cfg.argv = list(args)
    cfg.env = list(env)
    (tmp / f"{tag}stdin").write_bytes(stdin)
    cfg.stdin_file = str(tmp / f"{tag}stdin")
    cfg.stdout_file = str(tmp / f"{tag}stdout")
    cfg.stderr_file = str(tmp / f"{tag}stderr")
    for host, guest in preopens:
        cfg.preopen_dir(str(host), guest)
    store = wasmtime.Store(_WT_ENGINE)
    store.set_wasi(cfg)
    linker = wasmtime.Linker(_WT_ENGINE)
    linker.define_wasi()
    code: int | str = 0
    try:
        linker.instantiate(store, module).exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        code = e.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        code = "trap: " + str(e).strip().splitlines()[-1]
    del store
    return code, (tmp / f"{tag}stdout").read_bytes(), (tmp / f"{tag}stderr").read_bytes()


def run_gpu(engine, wat: str, contexts: list[WasiContext], fetch_ahead: bool | None = None, fast: bool = True,
            **kw):
    compiled = engine.load(wasmtime.wat2wasm(wat))
    store = engine.store(len(contexts))
    if fetch_ahead is not None:  # the device's way of serving a round's reads, on any backend
        store.fetch_ahead = fetch_ahead
    wasi = Wasi(store, contexts, fast=fast)
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    try:
        return store.call(instance.exports["_start"], [()] * len(contexts), **kw)
    finally:
        wasi.close()


def code_of(result) -> int | str:
    if result.exit_code is not None:
        return result.exit_code
    if result.trap is not None:
        return "trap: " + result.trap
    return 0


def tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = ("link:" + os.readlink(p)) if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


# -- programs ----------------------------------------------------------------------------------
def test_args_env_and_exit_codes_batch(engine, tmp_path) -> None:
    wat = echo_program()
    args = [["prog", f"a{i}", "x" * (i % 7), "ünï"] for i in range(N)]
    envs = [[("K", str(i)), ("EMPTY", ""), ("EQ", "a=b")] for i in range(N)]
    contexts = [WasiContext(args=a, env=e) for a, e in zip(args, envs, strict=True)]
    results = run_gpu(engine, wat, contexts)
    for i in range(N):
        code, out, err = run_wasmtime(wat, tmp_path / str(i), args[i], envs[i])
        assert code_of(results[i]) == code, i
        assert bytes(contexts[i].stdout.data) == out, i
        assert bytes(contexts[i].stderr.data) == err == b"done\n"
    assert len({code_of(r) for r in results}) > 5


@pytest.mark.parametrize("fetch_ahead", [None, True])
def test_files_and_directories_match_wasmtime(engine, tmp_path, fetch_ahead) -> None:
    got = check_files_program(engine, tmp_path, 3, fetch_ahead)
    assert b"open=0" in got and b"inner.txt" in got


def check_files_program(engine, tmp_path: Path, n: int, fetch_ahead: bool | None = None) -> bytes:
    """files_program in n instances, each in its own directory, against wasmtime: stdout, exit code and the
    directory left behind, instance by instance; the last instance's stdout."""
    wat = files_program()
    ref_root, gpu_root = tmp_path / "ref", tmp_path / "gpu"
    contexts = []
    for i in range(n):
        (gpu_root / str(i)).mkdir(parents=True)
        contexts.append(WasiContext(args=["prog", f"file{i}.txt"], preopens=[(str(gpu_root / str(i)), ".")]))
    results = run_gpu(engine, wat, contexts, fetch_ahead)
    for i in range(n):
        (ref_root / str(i)).mkdir(parents=True)
        code, out, _ = run_wasmtime(wat, tmp_path / "io" / str(i), ["prog", f"file{i}.txt"],
                                    preopen=ref_root / str(i))
        got = bytes(contexts[i].stdout.data)
        assert got.decode() == out.decode(), i
        assert code_of(results[i]) == code == 0
        assert tree(gpu_root / str(i)) == tree(ref_root / str(i))
    return got


def test_stdin_is_the_same_for_every_instance(engine, tmp_path) -> None:
    wat = cat_program()
    data = "".join(f"line {k} ✓\n" for k in range(50)).encode()
    contexts = [WasiContext(stdin=data) for _ in range(4)]
    results = run_gpu(engine, wat, contexts)
    code, out, err = run_wasmtime(wat, tmp_path, stdin=data)
    for ctx, r in zip(contexts, results, strict=True):
        assert code_of(r) == code == 0
        assert bytes(ctx.stdout.data) == out == data + f"total={len(data)}\n".encode()
        assert bytes(ctx.stderr.data) == err


def test_trap_keeps_the_output_written_before(engine, tmp_path) -> None:
    p = Program()
    wat = p.wat(f'(func (export "_start") (call $print {p.s("before" + chr(10))}) unreachable)')
    [r] = run_gpu(engine, wat, [ctx := WasiContext()])
    code, out, _ = run_wasmtime(wat, tmp_path)
    assert r.trap == "unreachable" and str(code).startswith("trap")
    assert bytes(ctx.stdout.data) == out == b"before\n"


@pytest.mark.parametrize("code", [0, 7, 125, 126, 255])
def test_proc_exit_codes(engine, tmp_path, code) -> None:
    wat = Program().wat(f'(func (export "_start") (call $proc_exit (i32.const {code})))')
    [r] = run_gpu(engine, wat, [WasiContext()])
    ref, _, _ = run_wasmtime(wat, tmp_path)
    if code < 126:
        assert r.exit_code == ref == code
    else:  # wasmtime: an error, not an exit
        assert "invalid exit status" in str(ref)
        assert r.trap is not None and "invalid exit status" in r.trap


@pytest.mark.parametrize("fetch_ahead", [None, True])
def test_guest_pointers_are_bounds_checked(engine, fetch_ahead) -> None:
    """Out-of-bounds pointers give EFAULT (21), never a crash, and nothing is written."""
    p = Program()
    end = 2 * 65536
    calls = {
        "iov array": f"(call $fd_write (i32.const 1) (i32.const {end - 4}) (i32.const 1) (i32.const 100))",
        "iov buffer": f"(i32.store (i32.const 16) (i32.const {end - 2})) (i32.store (i32.const 20) (i32.const 3)) "
                      "(call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 100))",
        "nwritten": f"(i32.store (i32.const 16) (i32.const 1024)) (i32.store (i32.const 20) (i32.const 1)) "
                    f"(call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const {end - 3}))",
        "huge count": "(call $fd_write (i32.const 1) (i32.const 16) (i32.const 0x20000000) (i32.const 100))",
        "args_get": f"(call $args_get (i32.const {end}) (i32.const 200))",
        "args sizes": "(call $args_sizes_get (i32.const 0xffffffff) (i32.const 200))",
        "random": f"(call $random_get (i32.const {end - 4}) (i32.const 5))",
        "clock": f"(call $clock_time_get (i32.const 0) (i64.const 0) (i32.const {end - 4}))",
        "fdstat": f"(call $fd_fdstat_get (i32.const 1) (i32.const {end - 8}))",
        "path": f"(call $path_open (i32.const 3) (i32.const 0) (i32.const {end - 1}) (i32.const 2) (i32.const 0)"
                " (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 100))",
        "poll": f"(call $poll_oneoff (i32.const {end - 48}) (i32.const 0) (i32.const 2) (i32.const 100))",
    }
    body = "\n".join(p.report(k, v) for k, v in calls.items())
    wat = p.wat(f'(func (export "_start") {body})')
    [r] = run_gpu(engine, wat, [ctx := WasiContext(args=["a"], preopens=[(".", ".")])], fetch_ahead)
    assert r.exit_code is None and r.trap is None
    lines = bytes(ctx.stdout.data).decode().splitlines()
    assert lines == [f"{k}=21" for k in calls]


def test_fetched_reads_see_the_rounds_own_writes(engine) -> None:
    """A round's reads fetched ahead (store.prefetch) come from the fetch, and a write in the round makes
    what it overlaps be read again."""
    compiled = engine.load(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))
    store = engine.store(3)
    store.fetch_ahead = True
    mem = store.instantiate(compiled.module, {}).exports["memory"]
    store.write_memory(mem, 1, 100, b"abcdef")
    with store.host_round():
        store.prefetch([(mem.addr, 1, 100, 6), (mem.addr, 0, 100, 6), (mem.addr, 2, 65530, 6)])
        assert {key[1] for key in store._round.fetched} == {0, 1, 2}
        assert bytes(store.read_memory(mem, 1, 101, 3)) == b"bcd"
        store.write_memory(mem, 1, 102, b"XY")
        assert bytes(store.read_memory(mem, 1, 100, 6)) == b"abXYef"
        assert bytes(store.read_memory(mem, 0, 100, 6)) == bytes(6)
    assert bytes(store.read_memory(mem, 1, 100, 6)) == b"abXYef"


def test_memory_grown_after_instantiation_is_seen(engine) -> None:
    """The store replaces its memory array on growth: WASI must read the new one."""
    p = Program()
    wat = p.wat(f"""(func (export "_start")
      (drop (memory.grow (i32.const 5)))
      (i32.store (i32.const 300000) (i32.const 0x0a4b4f))
      (drop (call $write (i32.const 1) (i32.const 300000) (i32.const 3)))
      {p.report("random", "(call $random_get (i32.const 327000) (i32.const 16))")})""", pages=1)
    contexts = [WasiContext() for _ in range(3)]
    results = run_gpu(engine, wat, contexts)
    assert all(r.values == () for r in results)
    assert all(bytes(c.stdout.data) == b"OK\nrandom=0\n" for c in contexts)


def test_seeded_clocks_and_random_are_deterministic(engine) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start")
      (drop (call $random_get (i32.const 200) (i32.const 16)))
      (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 216)))
      (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 224)))
      (i64.store (i32.const 400) (i64.const 0))
      (i32.store8 (i32.const 408) (i32.const 0))
      (i32.store (i32.const 416) (i32.const 1))
      (i64.store (i32.const 424) (i64.const 5000000))
      (drop (call $poll_oneoff (i32.const 400) (i32.const 500) (i32.const 1) (i32.const 100)))
      (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 232)))
      (drop (call $write (i32.const 1) (i32.const 200) (i32.const 40))))""")
    runs = []
    for _ in range(2):
        contexts = [WasiContext.seeded(42, i) for i in range(3)]
        run_gpu(engine, wat, contexts)
        runs.append([bytes(c.stdout.data) for c in contexts])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3  # each instance its own random stream
    rnd, real, mono, after = struct.unpack("<16sQQQ", runs[0][0])
    assert real > 1_700_000_000 * 10**9 and after - mono >= 5_000_000


def test_poll_oneoff_clock_and_fd_events(engine, tmp_path) -> None:
    p = Program()
    sub = abi.SUBSCRIPTION
    subs = (sub.pack(11, abi.EVENTTYPE_CLOCK, abi.SUBSCRIPTION_CLOCK.pack(1, 1_000_000, 0, 0))
            + sub.pack(22, abi.EVENTTYPE_FD_WRITE, struct.pack("<I", 1).ljust(32, b"\0")))
    esc = "".join(f"\\{b:02x}" for b in subs)
    wat = p.wat(f"""(data (i32.const 4096) "{esc}")
      (func (export "_start")
        {p.report("only clock", "(call $poll_oneoff (i32.const 4096) (i32.const 5000) (i32.const 1) (i32.const 100))")}
        {p.report("n", "(i32.load (i32.const 100))")}
        {p.report("userdata", "(i32.load (i32.const 5000))")}
        {p.report("error", "(i32.load16_u (i32.const 5008))")}
        {p.report("type", "(i32.load8_u (i32.const 5010))")}
        {p.report("both", "(call $poll_oneoff (i32.const 4096) (i32.const 5000) (i32.const 2) (i32.const 100))")}
        {p.report("n", "(i32.load (i32.const 100))")}
        {p.report("userdata", "(i32.load (i32.const 5000))")}
        {p.report("type", "(i32.load8_u (i32.const 5010))")}
        {p.report("none", "(call $poll_oneoff (i32.const 4096) (i32.const 5000) (i32.const 0) (i32.const 100))")})""")
    [r] = run_gpu(engine, wat, [ctx := WasiContext()])
    code, out, _ = run_wasmtime(wat, tmp_path)
    assert code_of(r) == code == 0
    assert bytes(ctx.stdout.data).decode() == out.decode()


# -- linking -----------------------------------------------------------------------------------
def test_every_preview1_function_links(engine) -> None:
    wat = Program().wat('(func (export "_start"))')
    compiled = engine.load(wasmtime.wat2wasm(wat))
    assert len([i for i in compiled.module.imports if i.module == abi.MODULE]) == len(abi.SIGNATURES) == 46
    [r] = run_gpu(engine, wat, [WasiContext()])
    assert r.values == ()


def test_unknown_wasi_import_is_a_link_error_naming_it(engine) -> None:
    compiled = engine.load(wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "fd_frobnicate" (func (param i32) (result i32))))'))
    wasi = Wasi(engine.store(1), [WasiContext()])
    with pytest.raises(LinkError, match="fd_frobnicate"):
        wasi.imports(compiled.module)


def test_wrong_signature_is_a_link_error(engine) -> None:
    compiled = engine.load(wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32))))'))
    wasi = Wasi(engine.store(1), [WasiContext()])
    with pytest.raises(LinkError, match=r"fd_write.*\(i32, i32, i32\)"):
        wasi.imports(compiled.module)


# -- probes: single calls on both sides ---------------------------------------------------------
def probe_wat() -> str:
    lines = [f'(module {imports_wat()} (memory (export "memory") 2)']
    for name, (params, results) in abi.SIGNATURES.items():
        ps = " ".join(WT[p] for p in params)
        rs = " ".join(WT[r] for r in results)
        gets = " ".join(f"(local.get {k})" for k in range(len(params)))
        lines.append(f'(func (export "{name}") (param {ps}) (result {rs}) (call ${name} {gets}))')
    return "\n".join(lines) + ")"


class WasmtimeProbe:
    def __init__(self, root: Path, preopen: str = "sandbox") -> None:
        cfg = wasmtime.WasiConfig()
        cfg.argv = ["probe"]
        cfg.preopen_dir(str(root / preopen), ".")
        self.store = wasmtime.Store(_WT_ENGINE)
        self.store.set_wasi(cfg)
        linker = wasmtime.Linker(_WT_ENGINE)
        linker.define_wasi()
        self.exports = linker.instantiate(self.store, wt_module(probe_wat())).exports(self.store)
        self.mem = self.exports["memory"]

    def write(self, addr: int, data: bytes) -> None:
        self.mem.write(self.store, data, addr)

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.mem.read(self.store, addr, addr + n))

    def call(self, name: str, *args: int) -> int:
        return self.exports[name](self.store, *args)


class GpuProbe:
    def __init__(self, engine, root: Path, preopen: str = "sandbox") -> None:
        compiled = engine.load(wasmtime.wat2wasm(probe_wat()))
        self.store = engine.store(1)
        self.wasi = Wasi(self.store, [WasiContext(args=["probe"], preopens=[(str(root / preopen), ".")])])
        self.instance = self.store.instantiate(compiled.module, self.wasi.imports(compiled.module))
        self.wasi.bind(self.instance)
        self.mem = self.instance.exports["memory"]

    def write(self, addr: int, data: bytes) -> None:
        self.store.write_memory(self.mem, 0, addr, data)

    def read(self, addr: int, n: int) -> bytes:
        return self.store.read_memory(self.mem, 0, addr, n).tobytes()

    def call(self, name: str, *args: int) -> int:
        [r] = self.store.call(self.instance.exports[name], [tuple(a & (2**64 - 1) for a in args)])
        assert r.trap is None, r.trap
        return r.values[0]


def make_tree(root: Path) -> None:
    """sandbox/ (the preopen) with files, links inside and links out; secret files beside it."""
    sb = root / "sandbox"
    (sb / "sub" / "deeper").mkdir(parents=True)
    (root / "secret").write_text("secret")
    (root / "outside_dir").mkdir()
    (root / "outside_dir" / "secret2").write_text("secret2")
    (sb / "f.txt").write_text("hello")
    links = {"to_parent_file": "../secret", "to_abs": "/etc/passwd", "to_outside_dir": "../outside_dir",
             "to_root": "/", "in_sub": "sub", "to_f": "f.txt", "dangling": "nowhere", "chain1": "chain2",
             "chain2": "sub/../../secret", "loop1": "loop2", "loop2": "loop1", "dangling_out": "../created_outside",
             "sub/up_two": "../..", "sub/up_one": "..", "sub/deeper/back": "../../f.txt"}
    for name, target in links.items():
        os.symlink(target, sb / name)


@pytest.fixture
def probes(engine, tmp_path):
    ref_root, gpu_root = tmp_path / "ref", tmp_path / "gpu"
    make_tree(ref_root)
    make_tree(gpu_root)
    ref, gpu = WasmtimeProbe(ref_root), GpuProbe(engine, gpu_root)
    yield ref, gpu, ref_root, gpu_root
    gpu.wasi.close()


def both(probes, name: str, *args: int, strings: dict[int, bytes] | None = None, out: tuple[int, int] | None = None):
    """Make the same call on both sides; return (errno, bytes at `out`) after asserting they agree."""
    ref, gpu = probes[0], probes[1]
    answers = []
    for side in (ref, gpu):
        for addr, data in (strings or {}).items():
            side.write(addr, data)
        if out is not None:
            side.write(out[0], bytes(out[1]))
        errno = side.call(name, *args)
        answers.append((errno, side.read(*out) if out else b""))
    assert answers[0][0] == answers[1][0], f"{name}{args}: wasmtime {answers[0]}, wasmgpu {answers[1]}"
    return answers[1]


def open_path(probes, path: str, follow: bool = True, oflags: int = 0, rights: int = RW, fd: int = 3) -> int:
    raw = path.encode()
    errno, _ = both(probes, "path_open", fd, int(follow), 1000, len(raw), oflags, rights, 0, 0, 900,
                    strings={1000: raw}, out=(900, 4))
    return errno


ESCAPES = ["../secret", "/etc/passwd", "/", "sub/../../secret", "sub/deeper/../../../secret", "..",
           "to_parent_file", "to_abs", "to_root", "to_outside_dir/secret2", "to_outside_dir", "chain1",
           "sub/up_two", "sub/up_two/secret", "in_sub/up_two/secret", "dangling_out"]


@pytest.mark.parametrize("path", ESCAPES)
def test_sandbox_open_cannot_escape(probes, path) -> None:
    assert open_path(probes, path) == abi.EPERM
    assert open_path(probes, path, oflags=abi.OFLAGS_CREAT) == abi.EPERM
    assert not (probes[3] / "created_outside").exists()


def test_sandbox_links_inside_work_and_loops_fail(probes) -> None:
    assert open_path(probes, "to_f") == 0
    assert open_path(probes, "sub/deeper/back") == 0
    assert open_path(probes, "sub/up_one/f.txt") == 0
    assert open_path(probes, "in_sub/deeper/../../f.txt") == 0
    assert open_path(probes, "to_f", follow=False) == abi.ELOOP
    assert open_path(probes, "to_parent_file", follow=False) == abi.ELOOP  # the link itself, not its target
    assert open_path(probes, "loop1") == abi.ELOOP
    assert open_path(probes, "dangling") == abi.ENOENT
    assert open_path(probes, "f.txt/") == abi.ENOTDIR
    assert open_path(probes, "") == abi.ENOENT


def test_sandbox_subdirectory_fd_cannot_climb_out(probes) -> None:
    assert open_path(probes, "sub", oflags=abi.OFLAGS_DIRECTORY, rights=abi.R_FD_READDIR) == 0
    (fd,) = struct.unpack("<I", probes[1].read(900, 4))
    # As in wasmtime (cap-std), an opened directory is a sandbox of its own: not even its parent is reachable.
    assert open_path(probes, "deeper/../../f.txt", fd=fd) == abi.EPERM
    assert open_path(probes, "../f.txt", fd=fd) == abi.EPERM
    assert open_path(probes, "up_one/f.txt", fd=fd) == abi.EPERM
    assert open_path(probes, "up_two/secret", fd=fd) == abi.EPERM
    assert open_path(probes, "deeper/../deeper", fd=fd, rights=abi.R_FD_READ) == 0


@pytest.mark.parametrize("call", ["mkdir", "unlink", "rmdir", "stat", "readlink", "rename_from", "rename_to",
                                  "link_to", "symlink_at", "set_times"])
@pytest.mark.parametrize("path", ["../secret", "/tmp/x", "to_outside_dir/secret2", "sub/up_two/secret"])
def test_sandbox_path_operations_cannot_escape(probes, call, path) -> None:
    raw = path.encode()
    s = {1000: raw, 1100: b"f.txt"}
    n = len(raw)
    args = {
        "mkdir": ("path_create_directory", 3, 1000, n),
        "unlink": ("path_unlink_file", 3, 1000, n),
        "rmdir": ("path_remove_directory", 3, 1000, n),
        "stat": ("path_filestat_get", 3, 1, 1000, n, 2000),
        "readlink": ("path_readlink", 3, 1000, n, 2000, 64, 900),
        "rename_from": ("path_rename", 3, 1000, n, 3, 1100, 5),
        "rename_to": ("path_rename", 3, 1100, 5, 3, 1000, n),
        "link_to": ("path_link", 3, 0, 1100, 5, 3, 1000, n),
        "symlink_at": ("path_symlink", 1100, 5, 3, 1000, n),
        "set_times": ("path_filestat_set_times", 3, 1, 1000, n, 0, 0, abi.FSTFLAGS_MTIM_NOW),
    }[call]
    errno, _ = both(probes, args[0], *args[1:], strings=s)
    assert errno == abi.EPERM
    for root in probes[2:]:
        assert (root / "secret").read_text() == "secret"
        assert (root / "outside_dir" / "secret2").read_text() == "secret2"
        assert (root / "sandbox" / "f.txt").read_text() == "hello"
        assert sorted(p.name for p in root.iterdir()) == ["outside_dir", "sandbox", "secret"]


def test_sandbox_symlink_targets(probes) -> None:
    """Absolute link targets are refused; relative ones that point out may be made but never followed."""
    s = {1000: b"/etc/passwd", 1100: b"abs", 1200: b"../secret", 1300: b"up"}
    assert both(probes, "path_symlink", 1000, 11, 3, 1100, 3, strings=s)[0] == abi.EPERM
    assert both(probes, "path_symlink", 1200, 9, 3, 1300, 2, strings=s)[0] == 0
    assert open_path(probes, "up") == abi.EPERM
    errno, target = both(probes, "path_readlink", 3, 1300, 2, 2000, 64, 900, strings=s, out=(2000, 9))
    assert (errno, target) == (0, b"../secret")


def test_readlink_absolute_target_reveals_no_host_path(probes) -> None:
    """As wasmtime: EPERM for a link to an absolute path, whatever the buffer, and nothing written."""
    s = {1000: b"to_abs", 1100: b"to_root", 1200: b"sub/../to_abs"}
    for addr, n in ((1000, 6), (1100, 7), (1200, 13)):
        for buf_len in (0, 3, 64):
            errno, out = both(probes, "path_readlink", 3, addr, n, 2000, buf_len, 900, strings=s, out=(2000, 68))
            assert (errno, out) == (abi.EPERM, bytes(68))
    # A relative target is the guest's to read, even one that points out (it is never followed).
    errno, out = both(probes, "path_readlink", 3, 1000, 10, 2000, 64, 900, strings={1000: b"sub/up_two"},
                      out=(2000, 6))
    assert (errno, out) == (0, b"../..\0")


LINK_CASES = [("f.txt", "l1", 0), ("f.txt", "f.txt", abi.EEXIST), ("f.txt", "sub", abi.EEXIST),
              ("sub", "l2", abi.EPERM), ("missing", "l3", abi.ENOENT), ("f.txt", "l4/", abi.ENOENT),
              ("f.txt/", "l5", abi.ENOTDIR), ("sub/", "l6", abi.EPERM), ("f.txt", "missing/x", abi.ENOENT),
              ("to_f", "l7", 0), ("dangling", "l8", 0), ("loop1", "l9", 0), ("f.txt", "dangling", abi.EEXIST),
              (".", "l10", abi.EPERM), ("f.txt", ".", abi.EEXIST), ("f.txt", "..", abi.EPERM),
              ("to_abs", "l11", 0), ("to_parent_file", "l12", 0), ("f.txt", "in_sub/", abi.EEXIST),
              ("f.txt", "dangling/", abi.ENOENT), ("f.txt", "", abi.ENOENT), ("f.txt/.", "l16", abi.ENOTDIR),
              ("sub/up_one/f.txt", "sub/deeper/l17", 0), ("f.txt", "f.txt/x", abi.ENOTDIR)]


@pytest.mark.parametrize("follow", [0, abi.LOOKUPFLAGS_SYMLINK_FOLLOW])
def test_path_link_errnos(probes, follow) -> None:
    """path_link's errnos as wasmtime's; following the source's link is refused (EINVAL) before any lookup."""
    for old, new, want in LINK_CASES:
        a, b = old.encode(), new.encode()
        errno, _ = both(probes, "path_link", 3, follow, 1000, len(a), 3, 1100, len(b), strings={1000: a, 1100: b})
        assert errno == (abi.EINVAL if follow else want), (old, new)
    s = {1000: b"f.txt", 1100: b"nn"}
    assert both(probes, "path_link", 99, follow, 1000, 5, 3, 1100, 2, strings=s)[0] == abi.EBADF
    assert both(probes, "path_link", 3, follow, 1000, 5, 1, 1100, 2, strings=s)[0] == abi.EBADF
    for root in probes[2:]:
        made = sorted(p.name for p in (root / "sandbox").iterdir() if p.name[0] == "l" and p.name[1:].isdigit())
        assert made == ([] if follow else ["l1", "l11", "l12", "l7", "l8", "l9"])
        if not follow:
            assert os.path.samefile(root / "sandbox" / "sub" / "deeper" / "l17", root / "sandbox" / "f.txt")
            assert os.readlink(root / "sandbox" / "l11") == "/etc/passwd"  # the link itself, not its target


SLASH_CASES = [  # (call, path, errno): a trailing slash follows no link where wasmtime follows none
    ("mkdir", "f.txt/", abi.EEXIST), ("mkdir", "dangling/", abi.EEXIST), ("mkdir", "to_abs/", abi.EEXIST),
    ("mkdir", "loop1/", abi.EEXIST), ("mkdir", "new_dir/", 0),
    ("rmdir", "empty/", abi.EINVAL), ("rmdir", "to_empty/", abi.EINVAL), ("rmdir", "f.txt/", abi.ENOTDIR),
    ("rmdir", "dangling/", abi.ENOENT), ("rmdir", "new_dir", 0),
    ("rename_from", "in_sub/", abi.ENOTDIR), ("rename_from", "dangling/", abi.ENOTDIR),
    ("rename_from", "sub/up_one/", abi.ENOTDIR), ("rename_to", "to_empty/", abi.ENOTDIR),
    ("rename_to", "sub/up_two/", abi.ENOTDIR), ("rename_to", ".", abi.EBUSY),
    ("creat", "f.txt/", abi.EISDIR), ("creat", "to_abs/", abi.EISDIR), ("creat", "sub/up_two/", abi.EISDIR),
    ("creat", "to_slash", abi.EISDIR), ("creat", "./", abi.EISDIR), ("excl", "./", abi.EEXIST),
    ("excl", "sub/", abi.EISDIR), ("excl", "dangling", abi.EEXIST), ("excl", "to_abs", abi.EEXIST),
    ("excl", "loop1", abi.EEXIST), ("excl", "to_f", abi.EEXIST), ("unlink", "to_empty/", abi.EISDIR),
]


def test_trailing_slash_and_exclusive_create_errnos(probes) -> None:
    """Errnos (and the tree left) as wasmtime's where a trailing slash or O_EXCL meets a link."""
    for root in probes[2:]:
        (root / "sandbox" / "empty").mkdir()
        os.symlink("empty", root / "sandbox" / "to_empty")
        os.symlink("nothing_yet/", root / "sandbox" / "to_slash")
    for call, path, want in SLASH_CASES:
        raw = path.encode()
        n = len(raw)
        args = {
            "mkdir": ("path_create_directory", 3, 1000, n),
            "rmdir": ("path_remove_directory", 3, 1000, n),
            "unlink": ("path_unlink_file", 3, 1000, n),
            "rename_from": ("path_rename", 3, 1000, n, 3, 1100, 3),
            "rename_to": ("path_rename", 3, 1100, 5, 3, 1000, n),
            "creat": ("path_open", 3, 1, 1000, n, abi.OFLAGS_CREAT, RW, 0, 0, 900),
            "excl": ("path_open", 3, 1, 1000, n, abi.OFLAGS_CREAT | abi.OFLAGS_EXCL, RW, 0, 0, 900),
        }[call]
        s = {1000: raw, 1100: b"empty" if call == "rename_to" else b"new"}
        assert both(probes, *args, strings=s)[0] == want, (call, path)
    trees = [sorted((str(p.relative_to(root)), p.is_symlink()) for p in root.rglob("*")) for root in probes[2:]]
    assert trees[0] == trees[1]
    assert not (probes[3] / "sandbox" / "nothing_yet").exists() and (probes[3] / "sandbox" / "sub").is_dir()


def test_probe_errnos_and_layouts(probes) -> None:
    """Assorted calls whose errnos and output bytes must equal wasmtime's."""
    assert both(probes, "fd_prestat_get", 3, 900, out=(900, 8)) == (0, abi.PRESTAT.pack(0, 1))
    assert both(probes, "fd_prestat_dir_name", 3, 900, 1, out=(900, 1)) == (0, b".")
    assert both(probes, "fd_prestat_dir_name", 3, 900, 0)[0] == abi.ENAMETOOLONG
    assert both(probes, "fd_prestat_get", 4, 900)[0] == abi.EBADF
    assert both(probes, "fd_prestat_get", 1, 900)[0] == abi.EBADF
    for fd in (0, 1, 2, 3):
        both(probes, "fd_fdstat_get", fd, 904, out=(904, 24))
    assert open_path(probes, "f.txt", rights=abi.R_FD_READ) == 0
    fd = struct.unpack("<I", probes[1].read(900, 4))[0]
    both(probes, "fd_fdstat_get", fd, 904, out=(904, 24))
    assert both(probes, "fd_write", fd, 0, 0, 960)[0] == abi.EBADF  # read-only
    assert both(probes, "fd_seek", fd, -1, 0, 960)[0] == abi.EINVAL
    assert both(probes, "fd_seek", fd, 2, 0, 960, out=(960, 8)) == (0, struct.pack("<Q", 2))
    assert both(probes, "fd_seek", fd, -1, 2, 960, out=(960, 8)) == (0, struct.pack("<Q", 4))
    assert both(probes, "fd_seek", 1, 0, 0, 960)[0] == abi.ESPIPE
    assert both(probes, "fd_seek", 3, 0, 0, 960)[0] == abi.EBADF
    assert both(probes, "fd_read", 3, 0, 0, 960)[0] == abi.EBADF
    assert both(probes, "fd_fdstat_set_flags", fd, abi.FDFLAGS_APPEND)[0] == 0
    assert both(probes, "fd_fdstat_set_flags", fd, abi.FDFLAGS_DSYNC)[0] == abi.EINVAL
    assert both(probes, "fd_fdstat_set_flags", 1, abi.FDFLAGS_NONBLOCK)[0] == abi.EBADF
    assert both(probes, "fd_fdstat_set_rights", fd, 0, 0)[0] == abi.ENOTSUP
    assert both(probes, "fd_allocate", fd, 0, 10)[0] == abi.ENOTSUP
    assert both(probes, "fd_advise", fd, 0, 10, 1)[0] == 0
    assert both(probes, "fd_renumber", fd, 77)[0] == abi.EBADF
    assert both(probes, "fd_close", fd)[0] == 0
    assert both(probes, "fd_close", fd)[0] == abi.EBADF
    assert both(probes, "fd_pread", 0, 0, 0, 0, 960)[0] == abi.ESPIPE
    assert both(probes, "sock_accept", 3, 0, 960)[0] == abi.ENOTSOCK
    assert both(probes, "sock_shutdown", 1, 1)[0] == abi.ENOTSOCK
    assert both(probes, "sock_recv", 99, 0, 0, 0, 960, 964)[0] == abi.EBADF
    assert both(probes, "proc_raise", 6)[0] == abi.ENOTSUP
    assert both(probes, "sched_yield")[0] == 0
    assert both(probes, "poll_oneoff", 0, 1000, 0, 960)[0] == abi.EINVAL
    s = {1000: b"f.txt", 1100: b"sub", 1200: b".", 1300: b"sub/", 1400: b"missing/x"}
    assert both(probes, "path_readlink", 3, 1000, 5, 2000, 10, 900, strings=s)[0] == abi.EINVAL
    assert both(probes, "path_create_directory", 3, 1100, 3, strings=s)[0] == abi.EEXIST
    assert both(probes, "path_create_directory", 3, 1200, 1, strings=s)[0] == abi.EEXIST
    assert both(probes, "path_remove_directory", 3, 1200, 1, strings=s)[0] == abi.EINVAL
    assert both(probes, "path_remove_directory", 3, 1000, 5, strings=s)[0] == abi.ENOTDIR
    assert both(probes, "path_unlink_file", 3, 1300, 4, strings=s)[0] == abi.EISDIR
    assert both(probes, "path_create_directory", 3, 1400, 9, strings=s)[0] == abi.ENOENT
    assert open_path(probes, "sub", rights=RW) == abi.EISDIR
    assert open_path(probes, "f.txt", oflags=abi.OFLAGS_DIRECTORY) == abi.ENOTDIR
    assert open_path(probes, "f.txt", oflags=abi.OFLAGS_CREAT | abi.OFLAGS_EXCL) == abi.EEXIST
    assert open_path(probes, "dangling", oflags=abi.OFLAGS_CREAT) == 0  # creates the link's target
    assert (probes[3] / "sandbox" / "nowhere").exists()


def test_descriptor_numbers_are_reused_like_wasmtime(probes) -> None:
    fds = []
    for _ in range(4):
        assert open_path(probes, "f.txt", rights=abi.R_FD_READ) == 0
        fds.append(struct.unpack("<I", probes[1].read(900, 4))[0])
    assert fds == [4, 5, 6, 7]
    for fd in (6, 4, 5):
        assert both(probes, "fd_close", fd)[0] == 0
    numbers = []
    for _ in range(4):
        assert open_path(probes, "f.txt", rights=abi.R_FD_READ) == 0
        sides = [struct.unpack("<I", side.read(900, 4))[0] for side in probes[:2]]
        assert sides[0] == sides[1], f"wasmtime gave fd {sides[0]}, wasmgpu {sides[1]}"
        numbers.append(sides[0])
    assert numbers == [6, 5, 4, 8]  # the largest freed number first, then new ones


def test_output_sinks_are_per_instance() -> None:
    sink = BufferSink()
    ctx = WasiContext(stdout=sink)
    ctx.fds.get(1).write(b"abc")
    assert bytes(sink.data) == b"abc" and bytes(ctx.stderr.data) == b""


def read_only_program() -> str:
    """A file opened read-only: reads, seeks from each origin, pread, tell, stat, and what it refuses."""
    p = Program()
    rights = abi.R_FD_READ | abi.R_FD_SEEK | abi.R_FD_TELL | abi.RIGHTS["FD_FILESTAT_GET"]
    body = f"""
(func (export "_start") (local $fd i32)
  {p.report("open", open_call("(i32.const 3)", p.s("data.txt"), 0, rights))}
  (local.set $fd (i32.load (i32.const 100)))
  (i32.store (i32.const 16) (i32.const 16384)) (i32.store (i32.const 20) (i32.const 5))
  {p.report("read", "(call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 104))")}
  (call $print (i32.const 16384) (i32.load (i32.const 104)))
  {p.report("seek end", "(call $fd_seek (local.get $fd) (i64.const -3) (i32.const 2) (i32.const 112))")}
  {p.report("pos", "(i32.load (i32.const 112))")}
  {p.report("read", "(call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 104))")}
  (call $print (i32.const 16384) (i32.load (i32.const 104)))
  {p.report("seek cur", "(call $fd_seek (local.get $fd) (i64.const -100) (i32.const 1) (i32.const 112))")}
  {p.report("pread", "(call $fd_pread (local.get $fd) (i32.const 16) (i32.const 1) (i64.const 2) (i32.const 104))")}
  (call $print (i32.const 16384) (i32.load (i32.const 104)))
  {p.report("tell", "(call $fd_tell (local.get $fd) (i32.const 112))")}
  {p.report("at", "(i32.load (i32.const 112))")}
  {p.report("filestat", "(call $fd_filestat_get (local.get $fd) (i32.const 128))")}
  {p.report("size", "(i32.load (i32.const 160))")}
  {p.report("write", "(call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 104))")}
  {p.report("set_size", "(call $fd_filestat_set_size (local.get $fd) (i64.const 4))")}
  {p.report("close", "(call $fd_close (local.get $fd))")})
"""
    return p.wat(body)


@pytest.mark.parametrize("scarce", [False, True])
def test_read_only_files_match_wasmtime_with_and_without_host_descriptors(engine, tmp_path, monkeypatch,
                                                                          scarce) -> None:
    """With host descriptors scarce (a batch of 20,000 open files), a read-only file is served from its bytes."""
    from wasmgpu.wasi import fds

    if scarce:
        monkeypatch.setattr(fds.HOST_FDS, "limit", 0)
    wat = read_only_program()
    n = 2
    contexts = []
    for i in range(n):
        (tmp_path / "gpu" / str(i)).mkdir(parents=True)
        (tmp_path / "gpu" / str(i) / "data.txt").write_bytes(b"hello, file %d!\n" % i)
        contexts.append(WasiContext(preopens=[(str(tmp_path / "gpu" / str(i)), ".")]))
    results = run_gpu(engine, wat, contexts)
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "data.txt").write_bytes(b"hello, file 1!\n")
    code, out, _ = run_wasmtime(wat, tmp_path / "io", preopen=tmp_path / "ref")
    assert code_of(results[1]) == code == 0
    assert bytes(contexts[1].stdout.data).decode() == out.decode()
    assert b"hello" in out and b"read=0" in out
    assert fds.HOST_FDS.held == 0  # every descriptor given back


def test_stdin_is_read_as_asked_and_what_all_have_read_is_dropped(monkeypatch) -> None:
    """A batch's shared stdin: read in pieces as instances ask (a pipe need not have ended), bytes every
    instance passed dropped, so that one instance streams any amount; one that falls too far behind the
    others gets EIO, not the host's memory."""
    import errno
    import io

    from wasmgpu.wasi.command import InstanceStdin, SharedStdin

    monkeypatch.setattr(SharedStdin, "DROP_AT", 1 << 16)
    data = bytes(range(256)) * (1 << 14)  # 4 MiB
    shared = SharedStdin(io.BufferedReader(io.BytesIO(data)), 2)
    a, b = InstanceStdin(shared, 0), InstanceStdin(shared, 1)
    got_a, peak = bytearray(), 0
    while chunk := a.read(5000):
        got_a += chunk
        b.read(5000)
        peak = max(peak, len(shared.data))
    assert got_a == data and b.pos == len(data) and b.read(100) == b""
    assert peak < 1 << 21
    monkeypatch.setattr(SharedStdin, "KEEP", 1 << 18)
    shared = SharedStdin(io.BufferedReader(io.BytesIO(data)), 2)
    fast, slow = InstanceStdin(shared, 0), InstanceStdin(shared, 1)
    assert slow.read(10) == data[:10]
    with pytest.raises(OSError) as e:
        while fast.read(1 << 16):
            pass
    assert e.value.errno == errno.EIO and slow.read(10) == data[10:20]


def test_stdin_keeps_nothing_for_ended_instances_and_all_for_later_waves(monkeypatch) -> None:
    """An instance that ended (its share closed) holds no bytes back; one whose wave has not started yet
    gets every byte from the first, however far the others read."""
    import io

    from wasmgpu.wasi.command import InstanceStdin, SharedStdin

    monkeypatch.setattr(SharedStdin, "DROP_AT", 1 << 16)
    monkeypatch.setattr(SharedStdin, "KEEP", 1 << 18)
    data = bytes(range(256)) * (1 << 12)  # 1 MiB
    shared = SharedStdin(io.BufferedReader(io.BytesIO(data)), 3)
    reader, ended = InstanceStdin(shared, 0), InstanceStdin(shared, 1)
    assert ended.read(10) == data[:10]
    ended.close()
    got = bytearray()
    while len(got) < 3 << 16 and (chunk := reader.read(1 << 15)):  # drops tried at each 64 KiB: none made
        got += chunk
    assert shared.base == 0
    later = InstanceStdin(shared, 2)  # the next wave's instance
    assert later.read(10) == data[:10]
    while chunk := reader.read(1 << 15):
        got += chunk
        later.read(1 << 15)
    assert got == data and shared.base > 1 << 16  # once all have a share, ended ones keep nothing back


def test_preopen_roots_resolve_as_realpath_from_the_working_directory_of_the_moment(tmp_path, monkeypatch) -> None:
    """preopen_root keeps the real path of each parent directory: a relative preopen is still found from the
    working directory it is made in, and a link or ".." anywhere resolves as os.path.realpath does."""
    from wasmgpu.wasi.context import preopen_root

    for d in ("a/x", "b/x"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "link").symlink_to("a")
    for cwd in ("a", "b", "a"):
        monkeypatch.chdir(tmp_path / cwd)
        for host in ("x", "./x", "x/", "../a/x", "../link/x", "../link", ".", "..", "missing",
                     str(tmp_path / "link" / "x"), str(tmp_path / cwd / "x")):
            root, info = preopen_root(host)
            assert root == os.path.realpath(host), (cwd, host)
            assert (info is None) == (not os.path.exists(host)), (cwd, host)
            assert info is None or (info.st_dev, info.st_ino) == (os.stat(host).st_dev, os.stat(host).st_ino)
