"""Host calls served while the launch runs (runtime/mailbox.py, vm.h mailbox_call): the lanes wait in the
mailbox instead of ending the launch, move the calls' guest memory themselves, and give the same results as
without it; a lane the host is slow to answer (or declines) ends its launch and is served after it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import wasmgpu.runtime.engine as wg
import wasmgpu.runtime.mailbox as mailbox
from tests.test_wasi import Program, check_files_program, code_of, open_call, run_gpu, run_wasmtime
from wasmgpu.errors import WasmGpuError
from wasmgpu.wasi import WasiContext
from wasmgpu.wasi.fast import FastPaths
from wasmgpu.wasm.types import FuncType, Limits, MemoryType

LOOP = """(module
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (func (export "run") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (call $inc (local.get 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1)))"""

# One write of BIG bytes from memory (a pattern the program makes), then one read of BIG bytes of stdin,
# written back to stderr: each far larger than a small pool.
BIG = 150_001


def big_program() -> str:
    p = Program()
    body = f"""
(func (export "_start") (local $k i32)
  (loop $fill
    (i32.store8 (i32.add (i32.const 65536) (local.get $k)) (i32.add (i32.mul (local.get $k) (i32.const 7))
                                                                  (i32.shr_u (local.get $k) (i32.const 9))))
    (local.set $k (i32.add (local.get $k) (i32.const 1)))
    (br_if $fill (i32.lt_u (local.get $k) (i32.const {BIG}))))
  (drop (call $write (i32.const 1) (i32.const 65536) (i32.const {BIG})))
  (local.set $k (i32.const 0))
  (block $eof (loop $more
    (i32.store (i32.const 16) (i32.const 262144)) (i32.store (i32.const 20) (i32.const {BIG}))
    (br_if $eof (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 104)))
    (br_if $eof (i32.eqz (i32.load (i32.const 104))))
    (drop (call $write (i32.const 2) (i32.const 262144) (i32.load (i32.const 104))))
    (local.set $k (i32.add (local.get $k) (i32.load (i32.const 104))))
    (br $more)))
  (call $report {p.s("read")} (local.get $k)))
"""
    return p.wat(body, pages=8)


@pytest.fixture
def mail_on(monkeypatch) -> list[int]:
    """The mailbox on; the list gets the lanes of each release."""
    monkeypatch.setenv(mailbox.MAILBOX_VAR, "on")
    released: list[int] = []
    release = mailbox.Mailbox.release

    def counted(self, releases):
        released.extend(releases)
        return release(self, releases)

    monkeypatch.setattr(mailbox.Mailbox, "release", counted)
    return released


@pytest.mark.parametrize("mode", ["on", "off"])
def test_host_functions_are_served_while_the_launch_runs(engine, monkeypatch, mode) -> None:
    monkeypatch.setenv(mailbox.MAILBOX_VAR, mode)
    seen: list[int] = []

    def inc(v: int) -> int:
        seen.append(v)
        return v + 1

    n = 48
    batch = wg.Module(engine, LOOP).instantiate(n, imports={("env", "inc"): inc})
    ends = [10 + i % 5 for i in range(n)]
    assert [r.values for r in batch.call("run", [(e,) for e in ends])] == [(e,) for e in ends]
    assert len(seen) == sum(ends)
    launcher = batch.store.launcher
    if mode == "on":
        # Every call through the mailbox, in one launch (a lane the host was slow for would add one).
        assert launcher.mail_calls == sum(ends) and batch.store.launches <= 2
    else:
        assert launcher.mail_calls == 0 and batch.store.launches > 10


@pytest.mark.parametrize("wait_ms", [None, "0", "0.05"])
def test_wasi_files_through_the_lanes_match_wasmtime(engine, tmp_path, monkeypatch, mail_on, wait_ms) -> None:
    """The files program's calls read and write guest memory through the lanes; with no wait (every lane
    leaves at once) or a short one, the host finds lanes gone mid-call and finishes their calls after."""
    if wait_ms is not None:
        monkeypatch.setenv(mailbox.WAIT_VAR, wait_ms)
    n = 6
    check_files_program(engine, tmp_path, n)
    assert wait_ms is not None or len(mail_on) > 10 * n


@pytest.mark.parametrize("pool", [mailbox.POOL_BYTES, 4096])
def test_large_reads_and_writes_pass_through_the_pool_in_pieces(engine, tmp_path, monkeypatch, mail_on,
                                                                pool) -> None:
    monkeypatch.setattr(mailbox, "POOL_BYTES", pool)
    wat = big_program()
    data = bytes((k * 31 + 5) & 0xFF for k in range(BIG))
    contexts = [WasiContext(stdin=data) for _ in range(3)]
    results = run_gpu(engine, wat, contexts, fast=False)  # every call the host's
    code, out, err = run_wasmtime(wat, tmp_path, stdin=data)
    assert len(out) > BIG and err == data
    for ctx, r in zip(contexts, results, strict=True):
        assert code_of(r) == code == 0
        assert bytes(ctx.stdout.data) == out and bytes(ctx.stderr.data) == err
    assert len(mail_on) >= 3 * 4


def test_the_pool_cuts_ops_into_batches_that_fit() -> None:
    class Host:
        def host_shared(self, nbytes: int):
            buf = np.zeros(nbytes, dtype=np.uint8)
            return buf, buf.ctypes.data

    box = mailbox.Mailbox(Host(), 4, pool_bytes=4096)
    jobs = {0: [(mailbox.MAIL_WRITE, 0, 100, bytes(range(256)) * 12)], 1: [(1, 0, 5, 4000)], 2: [(1, 0, 7, 3)]}
    batches = box._batches(jobs)
    for b in batches:
        need = sum(32 + -(-(len(w) if isinstance(w, bytes) else w) // 8) * 8 for ops in b.values() for *_, w in ops)
        assert need <= 4096
    # each lane's pieces in order, covering its ops whole
    pieces = {lane: [op for b in batches for op in b.get(lane, [])] for lane in jobs}
    assert b"".join(w for *_, w in pieces[0]) == bytes(range(256)) * 12
    assert [(a, w) for _, _, a, w in pieces[1]] == [(5, 1024), (1029, 1024), (2053, 1024), (3077, 928)]
    assert pieces[2] == [(1, 0, 7, 3)]


def test_bad_settings_are_refused(monkeypatch) -> None:
    monkeypatch.setenv(mailbox.MAILBOX_VAR, "sometimes")
    with pytest.raises(WasmGpuError, match="WASMGPU_MAILBOX must be on or off"):
        mailbox.mailbox_on()
    monkeypatch.setenv(mailbox.WAIT_VAR, "-1")
    with pytest.raises(WasmGpuError, match="WASMGPU_MAILBOX_WAIT_MS must be"):
        mailbox.wait_ns()

def test_an_exception_in_a_host_function_leaves_no_launch_running(engine, monkeypatch) -> None:
    """Without the mailbox the exception reaches the caller after the launch ended; with it, the launch
    thread (CPU) must not go on running the store's instances behind the caller's back, and the store
    serves the next call."""
    monkeypatch.setenv(mailbox.MAILBOX_VAR, "on")
    calls = [0]

    def inc(v: int) -> int:
        calls[0] += 1
        if calls[0] == 5:
            raise KeyboardInterrupt
        return v + 1

    n = 64
    batch = wg.Module(engine, LOOP).instantiate(n, imports={("env", "inc"): inc})
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        batch.call("run", [(100_000,)] * n)
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"launch still running after call() raised: {left}"
    ends = [3 + i % 4 for i in range(n)]
    assert [r.values for r in batch.call("run", [(e,) for e in ends])] == [(e,) for e in ends]


def test_a_path_call_served_in_the_mailbox_takes_no_device_state(engine, tmp_path, monkeypatch) -> None:
    """mail_safe says a path_* call on fd >= 3 is safe even where the device serves the instance's stdin,
    but FastPaths.before_calls takes stdin over for it (a device gather, a flag scatter) while the launch
    runs."""
    monkeypatch.setenv(mailbox.MAILBOX_VAR, "on")
    during: list[bool] = []
    take = FastPaths._take_stdin

    def spy(self, insts):
        box = self.store.launcher.mailbox
        during.append(box is not None and not box.done())
        return take(self, insts)

    monkeypatch.setattr(FastPaths, "_take_stdin", spy)
    p = Program()
    body = f"""
(func (export "_start")
  (i32.store (i32.const 16) (i32.const 8192)) (i32.store (i32.const 20) (i32.const 4))
  (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 104)))
  (call $print (i32.const 8192) (i32.load (i32.const 104)))
  (drop {open_call("(i32.const 3)", p.s("new.txt"), 9)})
  (i32.store (i32.const 20) (i32.const 100))
  (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 104)))
  (call $print (i32.const 8192) (i32.load (i32.const 104))))
"""
    # more preopens than the device keeps: the host serves this instance's files (no WF_FILES)
    dirs = [tmp_path / f"d{k}" for k in range(40)]
    for d in dirs:
        d.mkdir()
    ctx = WasiContext(stdin=b"abcdefgh", preopens=[(str(d), f"d{k}") for k, d in enumerate(dirs)])
    run_gpu(engine, p.wat(body), [ctx])
    assert bytes(ctx.stdout.data) == b"abcdefgh"
    assert during == [False], f"stdin taken from the device while the launch ran: {during}"


@pytest.mark.parametrize("mode", ["off", "on"])
def test_a_host_write_to_another_instances_memory_is_kept(engine, load, monkeypatch, mode) -> None:
    """Without the mailbox, a host function's write to any instance's memory lands (HostRound.flush); with
    it, the round's writes go only into the calling lanes' releases."""
    monkeypatch.setenv(mailbox.MAILBOX_VAR, mode)
    n = 2
    store = engine.store(n)
    mem = store.host_memory(MemoryType(Limits(1, 1)))

    def poke(i: int, args: tuple[int, ...]) -> tuple[int, ...]:
        store.write_memory(mem, (i + 1) % n, 64, b"\x2a\x00\x00\x00")  # the other instance's memory
        return ()

    host = store.host_func(FuncType((0x7F,), ()), poke)
    lib = load("""(module (import "h" "poke" (func $poke (param i32))) (import "h" "mem" (memory 1))
      (func (export "f") (param i32) (if (local.get 0) (then (call $poke (local.get 0))))))""")
    inst = store.instantiate(lib.module, {("h", "poke"): host, ("h", "mem"): mem})
    store.call(inst.exports["f"], [(1,), (0,)])  # only instance 0 calls; it writes instance 1's memory
    assert bytes(store.read_memory(mem, 1, 64, 4)) == b"\x2a\x00\x00\x00"


@pytest.mark.parametrize("mode", ["off", "on"])
def test_an_unchecked_read_never_returns_another_instances_bytes(engine, load, monkeypatch, mode) -> None:
    """store.read_memory leaves bounds to the caller; past the end, mail_ops skips the op and the host gets
    whatever the pool held: here instance 1's bytes, read through the pool just before."""
    monkeypatch.setenv(mailbox.MAILBOX_VAR, mode)
    store = engine.store(2)
    mem = store.host_memory(MemoryType(Limits(1, 1)))
    got = {}

    def peek(i: int, args: tuple[int, ...]) -> tuple[int, ...]:
        got[i] = bytes(store.read_memory(mem, i, args[0], 64))
        return ()

    host = store.host_func(FuncType((0x7F,), ()), peek)
    lib = load("""(module (import "h" "peek" (func $peek (param i32))) (import "h" "mem" (memory 1))
      (data (i32.const 0) "SECRET-OF-INSTANCE-1-SECRET-OF-INSTANCE-1-SECRET-OF-INSTANCE-1-!")
      (func (export "f") (param i32) (local i32)
        (if (local.get 0)
          (then (loop $l (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                         (br_if $l (i32.lt_u (local.get 1) (i32.const 3000000))))
                (call $peek (i32.const 65530)))
          (else (call $peek (i32.const 0))))))""")
    inst = store.instantiate(lib.module, {("h", "peek"): host, ("h", "mem"): mem})
    store.call(inst.exports["f"], [(1,), (0,)])
    assert got[1].startswith(b"SECRET")
    assert b"SECRET" not in got[0]


def test_an_x86_host_is_needed(monkeypatch) -> None:
    monkeypatch.setenv(mailbox.MAILBOX_VAR, "on")
    monkeypatch.setattr(mailbox.platform, "machine", lambda: "aarch64")
    with pytest.raises(WasmGpuError, match="needs an x86-64 host, not aarch64"):
        mailbox.mailbox_on()
