"""Threads as lanes (runtime/threads.py): wasi::thread-spawn, a process's shared memory, memory.atomic.wait
parking and notify, and the process's rules (a thread's trap or exit ends it, it ends with its main
thread, a deadlock is reported), on the backend under test and the GPU's layout, in both tiers."""

import pytest
import wasmtime

from tests.conftest import BACKEND
from wasmgpu.compiler.vm_abi import TRAP_CODE, TRAP_MESSAGE
from wasmgpu.runtime.engine import Engine

# Memory: 0 the counter, 4 the threads finished, 8 a flag, 12 the size a thread saw after main grew it.
WAT = r"""
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (memory (export "memory") 1 4 shared)
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32)
    (if (i32.eq (local.get $arg) (i32.const -1)) (then unreachable))
    (if (i32.eq (local.get $arg) (i32.const -2)) (then  ;; waits for main's flag, then reports the size
      (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1)))
      (i32.atomic.store (i32.const 12) (memory.size))
      (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
      (drop (memory.atomic.notify (i32.const 4) (i32.const 1)))
      (return)))
    (if (i32.eq (local.get $arg) (i32.const -3)) (then  ;; waits forever
      (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1)))
      (return)))
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 0) (local.get $tid)))
      (drop (i64.atomic.rmw.add (i32.const 16) (i64.const 0x100000001)))  ;; a carry between the words
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $arg))))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func $join (param $threads i32)
    (local $done i32)
    (block $b (loop $w
      (local.set $done (i32.atomic.load (i32.const 4)))
      (br_if $b (i32.ge_u (local.get $done) (local.get $threads)))
      (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
      (br $w))))
  ;; `threads` threads each add their tid `k` times; the sum of what they added, or -1 where a spawn failed.
  (func (export "count") (param $threads i32) (param $k i32) (result i32)
    (local $t i32) (local $sum i32) (local $tid i32)
    (block $none (loop $s
      (br_if $none (i32.ge_u (local.get $t) (local.get $threads)))
      (local.set $tid (call $spawn (local.get $k)))
      (if (i32.lt_s (local.get $tid) (i32.const 0)) (then (return (i32.const -1))))
      (local.set $sum (i32.add (local.get $sum) (local.get $tid)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $s)))
    (call $join (local.get $threads))
    (i32.sub (i32.atomic.load (i32.const 0)) (i32.mul (local.get $sum) (local.get $k))))
  (func (export "total64") (result i64) (i64.atomic.load (i32.const 16)))
  (func (export "tids") (param $n i32) (result i32)  ;; n threads one after another: the sum of their tids
    (local $sum i32) (local $t i32)
    (block $end (loop $s
      (br_if $end (i32.ge_u (local.get $t) (local.get $n)))
      (local.set $sum (i32.add (local.get $sum) (call $spawn (i32.const 1))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (call $join (local.get $t))
      (br $s)))
    (local.get $sum))
  (func (export "spend") (param $n i32) (result i32)  ;; n threads of 5000 increments, joined
    (local $t i32)
    (block $end (loop $s
      (br_if $end (i32.ge_u (local.get $t) (local.get $n)))
      (drop (call $spawn (i32.const 5000)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (call $join (local.get $t))
      (br $s)))
    (i32.const 0))
  (func (export "exhaust") (param $n i32) (result i32)  ;; n threads that wait: how many spawns succeeded
    (local $ok i32)
    (block $end (loop $s
      (br_if $end (i32.eqz (local.get $n)))
      (if (i32.ge_s (call $spawn (i32.const -3)) (i32.const 1))
        (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $s)))
    (local.get $ok))
  (func (export "spawn_trap") (result i32)
    (drop (call $spawn (i32.const -1)))
    (call $join (i32.const 1))
    (i32.const 7))
  (func (export "grow_seen") (result i32)
    (drop (call $spawn (i32.const -2)))
    (drop (memory.grow (i32.const 2)))
    (i32.atomic.store (i32.const 8) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 8) (i32.const 1)))
    (call $join (i32.const 1))
    (i32.atomic.load (i32.const 12)))
  (func (export "leave_waiting") (result i32)  ;; main returns while its thread waits: the process ends
    (drop (call $spawn (i32.const -3)))
    (i32.const 5))
  (func (export "deadlock") (result i32)
    (drop (call $spawn (i32.const -3)))
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1)))
    (i32.const 0))
  (func (export "timeout") (result i32)  ;; 1 ms, and no one notifies: "timed-out" (2)
    (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const 1000000)))
  (func (export "not_equal") (result i32)
    (memory.atomic.wait32 (i32.const 8) (i32.const 5) (i64.const -1)))
)
"""

T = 4  # lanes per process: the main thread and 3 others
P = 3


@pytest.fixture(scope="module", params=sorted({BACKEND, "cpu-interleaved"}))
def engine(request):
    return Engine(request.param)


@pytest.fixture(scope="module")
def module(engine):
    return engine.load(wasmtime.wat2wasm(WAT))


def run(engine, module, tier: str, name: str, args: list[tuple[int, ...]], then: str | None = None) -> list:
    """`name` in P processes of T lanes, process p with args[p]; the main lanes' results (of `then`, called
    after it, where given)."""
    store = engine.store(P * T, threads=T, tier=tier)
    inst = store.instantiate(module.module)
    lanes = [args[lane // T] if lane % T == 0 else args[0] for lane in range(P * T)]
    out = store.call(inst.exports[name], lanes)[::T]
    return out if then is None else store.call(inst.exports[then], [()] * (P * T))[::T]


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_threads_add_in_parallel_and_join(engine, module, tier: str) -> None:
    args = [(1, 5000), (2, 3000), (3, 2000)]
    res = run(engine, module, tier, "count", args)
    assert [(r.values, r.trap) for r in res] == [((0,), None)] * 3  # every increment, and tids distinct
    wide = run(engine, module, tier, "count", args, then="total64")
    assert [r.values[0] for r in wide] == [t * k * 0x100000001 for t, k in args]


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_process_runs_out_of_lanes(engine, module, tier: str) -> None:
    """A spawn with no idle lane fails (wasi-libc's pthread_create then reports EAGAIN)."""
    res = run(engine, module, tier, "exhaust", [(T - 1,), (T,), (T + 2,)])
    assert [r.values for r in res] == [(T - 1,)] * 3


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_process_rules(engine, module, tier: str) -> None:
    trap = run(engine, module, tier, "spawn_trap", [()] * P)
    assert {r.trap for r in trap} == {TRAP_MESSAGE[TRAP_CODE["UNREACHABLE"]]}
    assert all(r.backtrace[0].endswith("<wasm function 1>") for r in trap), trap[0].backtrace  # the thread's
    ended = run(engine, module, tier, "leave_waiting", [()] * P)
    assert [(r.values, r.trap) for r in ended] == [((5,), None)] * P
    stuck = run(engine, module, tier, "deadlock", [()] * P)
    assert {r.trap for r in stuck} == {TRAP_MESSAGE[TRAP_CODE["DEADLOCK"]]}


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_waits_and_a_shared_grow(engine, module, tier: str) -> None:
    assert [r.values for r in run(engine, module, tier, "timeout", [()] * P)] == [(2,)] * P
    assert [r.values for r in run(engine, module, tier, "not_equal", [()] * P)] == [(1,)] * P
    assert [r.values for r in run(engine, module, tier, "grow_seen", [()] * P)] == [(3,)] * P


COMMAND = r"""
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1 1 shared)
  (data (i32.const 100) "x\n")
  (func $write (param $at i32)  ;; one byte at $at to stdout
    (i32.store (i32.const 16) (local.get $at))
    (i32.store (i32.const 20) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (if (local.get $arg) (then (call $proc_exit (local.get $arg))))
    (call $write (i32.const 100))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "_start")
    (local $done i32)
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (block $b (loop $w
      (local.set $done (i32.atomic.load (i32.const 4)))
      (br_if $b (i32.eq (local.get $done) (i32.const 3)))
      (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
      (br $w)))
    (call $write (i32.const 101)))
  (func (export "exit_from_thread")
    (drop (call $spawn (i32.const 3)))
    (drop (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const -1))))
)
"""


def test_gpu_run_threads(tmp_path, capsysbinary) -> None:
    """gpu-run -S threads: a thread's output goes to its process's stdout; its exit is the process's."""
    from tests.conftest import CLI_BACKEND_ARGS
    from wasmgpu import cli

    path = tmp_path / "threads.wasm"
    path.write_bytes(wasmtime.wat2wasm(COMMAND))
    assert cli.main([*CLI_BACKEND_ARGS, "-S", "threads", "-n", "3", "--out", str(tmp_path / "out"), str(path)]) == 0
    for i in range(3):
        assert (tmp_path / "out" / f"{i}.stdout").read_bytes() == b"xxx\n"
    capsysbinary.readouterr()
    status = cli.main([*CLI_BACKEND_ARGS, "--max-threads", "2", "--invoke", "exit_from_thread", str(path)])
    assert status == 3
    capsysbinary.readouterr()
    # Without threads a spawn fails, and a wait that no thread can end traps.
    status = cli.main([*CLI_BACKEND_ARGS, str(path)])
    assert status != 0 and b"block forever" in capsysbinary.readouterr().err


CASES = [("counter", 3, 500), ("mutex", 4, 300), ("queue", 2, 3, 400), ("single",), ("counter", 24, 100),
         ("mutex", 24, 50), ("queue", 12, 12, 50)]


def want(case: tuple) -> str:
    """c_threads's known answer (it also checks itself, and exits 1 where it is wrong)."""
    if case[0] == "counter":
        return f"counter total={case[1] * case[2]}"
    if case[0] == "mutex":
        return f"mutex items={case[1] * case[2]} checksum="
    if case[0] == "queue":
        n = case[1] * case[3]
        return f"queue count={n} sum={n * (n + 1) // 2}"
    return "ok"


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_pthreads_program(tmp_path, tier: str) -> None:
    """tests/corpus c_threads (C pthreads over wasi-threads, built with a threads-enabled wasi-libc): a
    counter, a mutex-guarded hash table filled by several threads' mallocs, a producer/consumer queue on
    condition variables, with up to 24 threads; two instances per case, each its own process of threads."""
    import json
    from pathlib import Path

    from tests.conftest import CLI_BACKEND_ARGS
    from wasmgpu import cli

    wasm = Path(__file__).parent / "corpus" / "wasm" / "c_threads.wasm"
    for case in CASES:
        out = tmp_path / f"{case[0]}.jsonl"
        status = cli.main([*CLI_BACKEND_ARGS, "--tier", tier, "--max-threads", "32", "-n", "2", "--out-jsonl",
                           str(out), str(wasm), *map(str, case)])
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert status == 0 and [r["exit_code"] for r in rows] == [0, 0], (case, rows)
        assert all(r["stdout"].startswith(want(case)) for r in rows), (case, rows)


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_tids_fuel_and_checked_start(engine, module, tier: str) -> None:
    """Each thread of a process gets a new tid, as in wasmtime (not its lane's, which threads reuse); with
    fuel, threads spend their process's; a wasi_thread_start that is not (i32, i32) -> () starts none."""
    assert [r.values for r in run(engine, module, tier, "tids", [(7,)] * P)] == [(28,)] * P
    store = engine.store(P * T, threads=T, tier=tier)
    spend = store.instantiate(module.module).exports["spend"]
    assert {r.trap for r in store.call(spend, [(3,)] * (P * T), fuel=100_000)[::T]} == {None}
    assert {r.trap for r in store.call(spend, [(40,)] * (P * T), fuel=100_000)[::T]} == \
        {TRAP_MESSAGE[TRAP_CODE["OUT_OF_FUEL"]]}
    bad = wasmtime.wat2wasm('''(module (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
      (memory 1 1 shared) (func (export "wasi_thread_start") (param f64 f64) (result i64) (i64.const 1))
      (func (export "run") (result i32) (call $spawn (i32.const 0))))''')
    store = engine.store(T, threads=T, tier=tier)
    assert store.call(store.instantiate(engine.load(bad).module).exports["run"], [()] * T)[0].values == \
        (0xFFFFFFFA,)  # -6, EAGAIN


PARKS = r"""
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (memory 1 1 shared)
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32)
    (if (i32.eq (local.get $arg) (i32.const 1)) (then  ;; the notifier: once the waiter waits, a while later
      (block $b (loop $w (br_if $b (i32.atomic.load (i32.const 8))) (br $w)))
      (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
      (i32.atomic.store (i32.const 32) (memory.atomic.notify (i32.const 100) (i32.const 1)))
      (return)))
    ;; the waiter: a wait with no timeout, notified, then one of 20 ms that nothing notifies
    (i32.atomic.store (i32.const 8) (i32.const 1))
    (i32.atomic.store (i32.const 16) (memory.atomic.wait32 (i32.const 100) (i32.const 0) (i64.const -1)))
    (i32.atomic.store (i32.const 20) (memory.atomic.wait32 (i32.const 104) (i32.const 0) (i64.const 20000000)))
    (i32.atomic.store (i32.const 12) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 12) (i32.const 1))))
  (func (export "main") (result i32)
    (drop (call $spawn (i32.const 1)))
    (drop (call $spawn (i32.const 2)))
    (block $b (loop $w (br_if $b (i32.atomic.load (i32.const 32))) (br $w)))
    (block $b (loop $w
      (br_if $b (i32.atomic.load (i32.const 12)))
      (drop (memory.atomic.wait32 (i32.const 12) (i32.const 0) (i64.const -1)))
      (br $w)))
    (i32.add (i32.mul (i32.atomic.load (i32.const 16)) (i32.const 10)) (i32.atomic.load (i32.const 20)))))
"""


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_each_park_has_its_own_timeout(engine, tier: str) -> None:
    """A lane notified and parked again within one launch waits with its new timeout, not its last one's:
    "ok" (0) then "timed-out" (2), whatever the fuel slices make of the order."""
    mod = engine.load(wasmtime.wat2wasm(PARKS))
    for fuel_slice in (500, 2000, 20000):
        store = engine.store(4, threads=4, tier=tier, fuel_slice=fuel_slice)
        r = store.call(store.instantiate(mod.module).exports["main"], [()] * 4)[0]
        assert (r.values, r.trap) == ((2,), None), fuel_slice


def test_a_timeout_stops_waiting_threads(tmp_path, capsysbinary) -> None:
    """gpu-run --timeout ends a process whose lanes wait (for an hour): as a timeout, not a wait's result."""
    from tests.conftest import CLI_BACKEND_ARGS
    from wasmgpu import cli

    path = tmp_path / "hour.wasm"
    path.write_bytes(wasmtime.wat2wasm('''(module
      (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
      (memory (export "memory") 1 1 shared) (func (export "wasi_thread_start") (param i32 i32))
      (func (export "hour") (result i32)
        (memory.atomic.wait32 (i32.const 8) (i32.const 0) (i64.const 3600000000000))))'''))
    status = cli.main([*CLI_BACKEND_ARGS, "--timeout", "1", "--max-threads", "2", "--invoke", "hour", str(path)])
    assert status != 0 and b"timeout of 1 s was reached" in capsysbinary.readouterr().err


def test_python_api_threads(engine) -> None:
    """Module.instantiate(n, threads=T): n processes of T lanes; one argument tuple and one result each."""
    from wasmgpu.runtime.engine import Module

    mod = Module(engine, WAT)
    batch = mod.instantiate(P, threads=3)  # rounded up to 4 lanes
    assert [r.values for r in batch.call("count", [(2, 100), (3, 100), (1, 100)])] == [(0,)] * P
    assert [r.values for r in batch.call("tids", [(5,)] * P)] == [(15,)] * P


def test_python_api_wasi_threads(engine) -> None:
    """Linker.define_wasi and a threaded batch: c_threads, one WASI context per process."""
    from pathlib import Path

    from wasmgpu.runtime import api
    from wasmgpu.runtime.engine import Linker

    wasm = (Path(__file__).parent / "corpus" / "wasm" / "c_threads.wasm").read_bytes()
    linker = Linker(engine)
    linker.define_wasi(lambda i: api.WasiConfig(argv=["c_threads", "counter", str(i + 2), "100"]))
    batch = linker.instantiate(engine.load(wasm), 3, threads=8, tier="interp")
    with batch:
        results = batch.call("_start", [()] * 3)
        assert [(r.trap, r.exit_code or 0) for r in results] == [(None, 0)] * 3
        assert [batch.wasi.stdout(i) for i in range(3)] == [f"counter total={(i + 2) * 100}\n".encode()
                                                            for i in range(3)]
