"""The compiled tier (compiler/to_c.py): the same results, traps, fuel and host calls as the interpreter,
on the backend under test and on the CPU with the GPU's memory layout."""

import os
import subprocess
import sys
import time

import pytest
import wasmtime

from tests.conftest import BACKEND, CLI_BACKEND_ARGS, REPO, find_testsuite, wasmtime_call
from wasmgpu.compiler.to_c import CompileError, FuncInfo, compile_store
from wasmgpu.errors import WasmGpuError
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine

BENCH_WASM = REPO / "bench" / "wasm"
SMALL = ["fib", "hash64", "interp", "json", "mandel", "qsort", "sieve", "bulkmem", "simdconv"]


# Functions over this many code words are left to the interpreter in the hybrid engines' stores: most of
# the test modules' functions compile, and the benchmark programs' larger ones do not.
HYBRID_WORDS = "30"


@pytest.fixture(scope="module", params=[*sorted({BACKEND, "cpu-interleaved"}), "cpu-pieces", "hybrid"])
def engines(request):
    """The backend under test, the CPU with the GPU's memory layout, the CPU compiling every store in
    pieces (one C function per wasm function: what stores over params.PIECES_WORDS get), and the GPU's
    layout in pieces with the larger functions left to the interpreter (params.left_to_interpreter)."""
    if request.param == "cpu-interleaved":
        yield Engine(CpuBackend(interleaved=True))
        return
    with pytest.MonkeyPatch.context() as mp:
        if request.param in ("cpu-pieces", "hybrid"):
            mp.setenv("WASMGPU_PIECES_WORDS", "0")
        if request.param == "hybrid":
            mp.setenv("WASMGPU_PIECE_MAX_WORDS", HYBRID_WORDS)
            yield Engine(CpuBackend(interleaved=True)) if BACKEND == "cpu" else Engine(BACKEND)
            return
        yield Engine(request.param.removesuffix("-pieces"))


def run_both(engine: Engine, wasm: bytes, func: str, args: list[tuple[int, ...]], **kw):
    mod = engine.load(wasm)
    out = {}
    for tier in ("interp", "compiled"):
        batch = mod.instantiate(len(args), tier=tier)
        out[tier] = [(r.values, r.trap, r.exit_code) for r in batch.call(func, args, **kw)]
        assert batch.store.tier_used == tier
    return out


@pytest.mark.parametrize("name", SMALL)
def test_benchmark_programs_agree(engines, name) -> None:
    out = run_both(engines, (BENCH_WASM / f"{name}.wasm").read_bytes(), "run", [(i,) for i in range(4)])
    assert out["compiled"] == out["interp"]
    assert all(v is not None for v, _, _ in out["compiled"])


RECURSIVE = """
(module
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $fac $boom)
  (type $t (func (param i64) (result i64)))
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 1))
      (else (i64.mul (local.get 0) (call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i32.const 0))))))
  (func $boom (param i64) (result i64) (unreachable))
  (func (export "loop") (param i32) (result i32) (local i32)
    (block (loop
      (local.set 1 (i32.add (local.get 1) (i32.const 3)))
      (i32.store (i32.and (local.get 1) (i32.const 1020)) (local.get 1))
      (br_if 1 (i32.eqz (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
      (br 0)))
    (i32.add (local.get 1) (i32.load (i32.const 0))))
  (func (export "grow") (param i32) (result i32)
    (drop (memory.grow (local.get 0)))
    (i32.store (i32.mul (memory.size) (i32.const 65532)) (i32.const 7))
    (memory.size))
  (func (export "bad") (param i32) (result i64) (call_indirect (type $t) (i64.const 1) (local.get 0)))
)
"""


def test_calls_traps_and_grow_agree(engines) -> None:
    wasm = wasmtime.wat2wasm(RECURSIVE)
    assert run_both(engines, wasm, "fac", [(k,) for k in (0, 1, 5, 20)]) == {
        t: [((v,), None, None) for v in (1, 1, 120, 2432902008176640000)] for t in ("interp", "compiled")}
    out = run_both(engines, wasm, "bad", [(0,), (1,), (2,)])
    assert out["compiled"] == out["interp"]
    assert [t for _, t, _ in out["compiled"]] == [None, "unreachable", "undefined element"]
    out = run_both(engines, wasm, "grow", [(1,), (2,), (70000,)])
    assert out["compiled"] == out["interp"] == [((2,), None, None), ((3,), None, None), ((1,), None, None)]


NATIVE = """
(module
  (memory 1 8)
  (table 4 funcref)
  (elem (i32.const 0) $pair $grow $swap $thrower)
  (type $pair_t (func (param i32) (result i32 i64 i32)))
  (type $grow_t (func (param i32) (result i32)))
  (tag $e (param i32 i64))
  (func $pair (param i32) (result i32 i64 i32)
    (i32.add (local.get 0) (i32.const 1)) (i64.extend_i32_u (local.get 0)) (i32.mul (local.get 0) (i32.const 3)))
  (func $grow (param i32) (result i32)
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)) (local.get 0)) (memory.size))
  (func $nested_grow (param i32) (result i32) (i32.add (call $grow (local.get 0)) (i32.const 0)))
  (func $swap (param i32) (result i32 i64 i32) (return_call $pair (i32.add (local.get 0) (i32.const 10))))
  (func $thrower (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const 2)) (then (throw $e (local.get 0) (i64.const 7))))
    (local.get 0))
  (func $deep_throw (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (call $thrower (i32.const 5)))
      (else (i32.add (call $deep_throw (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
  (func (export "run") (param i32) (result i64)
    (local $acc i64) (local $k i32) (local $a i32) (local $b i64) (local $c i32)
    ;; results past the first, from direct, tail and indirect calls
    (call $pair (local.get 0)) (local.set $c) (local.set $b) (local.set $a)
    (local.set $acc (i64.add (i64.extend_i32_u (i32.add (local.get $a) (local.get $c))) (local.get $b)))
    (call_indirect (type $pair_t) (local.get 0) (i32.const 2)) (local.set $c) (local.set $b) (local.set $a)
    (local.set $acc (i64.add (local.get $acc)
      (i64.add (i64.extend_i32_u (i32.xor (local.get $a) (local.get $c))) (local.get $b))))
    ;; memory grown by a callee (directly, two calls down, and indirectly): the caller stores past the old end
    (local.set $k (call $nested_grow (local.get 0)))
    (i32.store (i32.sub (i32.mul (local.get $k) (i32.const 65536)) (i32.const 4)) (local.get 0))
    (local.set $k (call_indirect (type $grow_t) (local.get 0) (i32.const 1)))
    (i32.store (i32.sub (i32.mul (local.get $k) (i32.const 65536)) (i32.const 8)) (local.get $k))
    (local.set $acc (i64.add (local.get $acc)
      (i64.load (i32.sub (i32.mul (local.get $k) (i32.const 65536)) (i32.const 8)))))
    ;; an exception from calls several deep, caught here, its values on the way
    (block $h (result i32 i64)
      (try_table (catch $e $h)
        (local.set $k (call $deep_throw (i32.and (local.get 0) (i32.const 7))))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $k)))))
      (return (local.get $acc)))
    (local.set $b) (local.set $a)
    (i64.add (local.get $acc) (i64.add (local.get $b) (i64.extend_i32_u (local.get $a)))))
)
"""


def test_calls_between_pieces_keep_the_interpreters_results(engines) -> None:
    """Pieces call pieces as C with the first result in the return value: the others through the frame,
    the memory's size read again after a callee that grew it, tail calls, indirect calls, and an exception
    thrown through C calls to a handler above them; also in fuel slices that end inside those calls."""
    wasm = wasmtime.wat2wasm(NATIVE)
    args = [(k,) for k in (0, 1, 5, 9)]
    want = [(wasmtime_call(wasm, "run", a),) for a in args]
    out = run_both(engines, wasm, "run", args)
    assert out["compiled"] == out["interp"] == [(w, None, None) for w in want]
    for slice_ in (3, 11):
        sliced = engines.load(wasm).instantiate(len(args), tier="compiled", fuel_slice=slice_).call("run", args)
        assert [(r.values, r.trap) for r in sliced] == [(w, None) for w in want]


def test_fuel_slices_resume_in_compiled_code(engines) -> None:
    """Small fuel slices stop the loop at its back edge again and again: every resume must continue."""
    wasm = wasmtime.wat2wasm(RECURSIVE)
    mod = engines.load(wasm)
    args = [(k,) for k in (1, 10, 1000, 5000)]
    want = mod.instantiate(4, tier="interp").call("loop", args)
    batch = mod.instantiate(4, tier="compiled", fuel_slice=7)
    got = batch.call("loop", args)
    assert [r.values for r in got] == [r.values for r in want]
    # A fuel limit stops both tiers alike.
    stopped = [mod.instantiate(1, tier=t).call("loop", [(5000,)], fuel=100)[0].trap for t in ("interp", "compiled")]
    assert stopped == ["all fuel consumed"] * 2


def test_trap_backtrace_matches(engines) -> None:
    wasm = wasmtime.wat2wasm(RECURSIVE)
    mod = engines.load(wasm)
    traces = [mod.instantiate(1, tier=t).call("bad", [(1,)])[0].backtrace for t in ("interp", "compiled")]
    assert traces[0] == traces[1] and traces[0]


DEEP = """
(module
  (memory 1)
  (func $even (export "even") (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0)) (then (i32.const 1))
      (else (call $odd (i64.sub (local.get 0) (i64.const 1))))))
  (func $odd (param i64) (result i32)
    (if (result i32) (i64.eqz (local.get 0)) (then (i32.const 0))
      (else (call $even (i64.sub (local.get 0) (i64.const 1))))))
  (func $down (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.load (i32.const 70000)))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "down") (param i32) (result i32) (call $down (local.get 0)))
)
"""


def test_deep_calls_agree_and_trap_alike(engines) -> None:
    """Calls nested past WG_NATIVE_DEPTH (pieces calling pieces as C) go on through the dispatch loop; a trap
    at the bottom has the interpreter's backtrace, every frame of it."""
    wasm = wasmtime.wat2wasm(DEEP)
    args = [(k,) for k in (0, 31, 32, 33, 200, 201)]
    out = run_both(engines, wasm, "even", args)
    assert out["compiled"] == out["interp"] == [((1 - k % 2,), None, None) for (k,) in args]
    mod = engines.load(wasm)
    got = [mod.instantiate(1, tier=t).call("down", [(150,)])[0] for t in ("interp", "compiled")]
    assert got[0].trap == got[1].trap == "out of bounds memory access"
    assert got[0].backtrace == got[1].backtrace and len(got[0].backtrace) > 3


TAIL = """
(module
  (import "env" "h" (func $h (param i64) (result i64)))
  (type $u (func (param i64) (result i64)))
  (table funcref (elem $count $h $boom))
  (func $count (export "count") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 7))
      (else (return_call_indirect (type $u) (i64.sub (local.get 0) (i64.const 1)) (i32.const 0)))))
  (func $ping (export "ping") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 9)) (else (return_call $pong (local.get 0)))))
  (func $pong (param i64) (result i64) (return_call $ping (i64.sub (local.get 0) (i64.const 1))))
  (func (export "host") (param i64 i32) (result i64) (return_call_indirect (type $u) (local.get 0) (local.get 1)))
  (func (export "direct") (param i64) (result i64) (return_call $h (i64.add (local.get 0) (i64.const 1))))
  (func $boom (param i64) (result i64) (unreachable))
)
"""


def test_tail_calls_agree(engines) -> None:
    """return_call and return_call_indirect run a million deep in constant stack, call a host function
    (then return its results) and trap with the interpreter's backtrace, in both tiers."""
    mod = engines.load(wasmtime.wat2wasm(TAIL))
    out = {}
    for tier in ("interp", "compiled"):
        batch = mod.instantiate(3, tier=tier, imports={("env", "h"): lambda x: 10 * x})
        calls = [("count", [(0,), (5,), (1_000_000,)]), ("ping", [(0,), (3,), (500_000,)]),
                 ("host", [(4, 1), (5, 2), (6, 3)]), ("direct", [(1,), (2,), (3,)])]
        out[tier] = [[(r.values, r.trap, r.backtrace) for r in batch.call(f, args)] for f, args in calls]
    assert out["compiled"] == out["interp"]
    count, ping, host, direct = out["interp"]
    assert [v for v, _, _ in count] == [(7,)] * 3 and [v for v, _, _ in ping] == [(9,)] * 3
    assert [v for v, _, _ in direct] == [(20,), (30,), (40,)]
    assert host[0][0] == (40,) and [t for _, t, _ in host[1:]] == ["unreachable", "undefined element"]
    assert host[1][2]


WIDTHS = """
(module
  (func $pair (param i32) (result i32 i64) (i32.sub (local.get 0) (i32.const 7)) (i64.const -3))
  (func (export "mix") (param i32 i32) (result i64) (local i32 i64)
    (local.set 2 (select (local.get 0) (i32.const -5) (local.get 1)))
    (call $pair (local.get 2))
    (local.set 3)
    (i64.extend_i32_u)
    (i64.add (local.get 3))
    (i64.add (i64.extend_i32_u (local.get 2)))
    (i64.add (i64.extend_i32_s (i32.wrap_i64 (i64.const 0x180000000))))
    (i64.add (i64.extend_i32_u (select (i32.const 3) (i32.const -1) (local.get 1))))
    (i64.add (select (i64.const 3) (i64.const -1) (local.get 1))))
)
"""


def test_slot_widths_match_wasmtime(engines) -> None:
    """Slots that hold only 32-bit values are 32-bit C variables in the compiled tier: negative constants
    chosen by select, a multi-value call's i32 and i64 results and wrapped values read back as wasm says."""
    wasm = wasmtime.wat2wasm(WIDTHS)
    args = [(0, 0), (0, 1), (1, 0), (0x80000000, 1), (5, 0xFFFFFFFF)]
    want = [((wasmtime_call(wasm, "mix", tuple(a - (1 << 32) if a >> 31 else a for a in x)) & (1 << 64) - 1,),
             None, None) for x in args]
    out = run_both(engines, wasm, "mix", args)
    assert out["interp"] == out["compiled"] == want


EXITS = """
(module
  (table 1 funcref)
  (elem (i32.const 0) $sq)
  (type $t (func (param i32) (result i32)))
  (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
  (func $down (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
      (else (i32.add (i32.const 1) (call $down (i32.shr_u (local.get 0) (i32.const 1)))))))
  (func (export "walk") (param $x i32) (param $n i32) (result i32) (local $acc i32) (local $i i32)
    (block $done
      (loop $outer
        (local.set $i (i32.const 0))
        (block $next
          (loop $inner
            (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
              (br_table $b0 $b1 $b2 $b3 $b4 $b5 (i32.rem_u (i32.shr_u (local.get $x) (i32.const 24)) (i32.const 6))))
              (local.set $acc (i32.add (local.get $acc) (call $sq (local.get $i))))
              (br $inner))
              (local.set $acc (i32.xor (local.get $acc) (call $down (local.get $x))))
              (br_if $outer (i32.gt_u (local.get $i) (i32.const 5))))
              (local.set $acc (i32.add (local.get $acc) (call_indirect (type $t) (local.get $i) (i32.const 0))))
              (br_if $next (i32.and (local.get $x) (i32.const 0x100))))
              (if (i32.eq (i32.and (local.get $x) (i32.const 0xff0)) (i32.const 0x120))
                (then (return (i32.sub (i32.const 0) (local.get $acc))))))
            (local.set $acc (i32.sub (local.get $acc) (local.get $i))))
            (br_if $done (i32.eqz (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
            (br_if $inner (i32.lt_u (local.get $i) (i32.const 9)))))
        (local.set $acc (i32.rotl (local.get $acc) (i32.const 3)))
        (br $outer)))
    (local.get $acc))
)
"""


def test_every_way_out_of_nested_loops_matches_wasmtime(engines) -> None:
    """The compiled tier takes each jump out of a loop (br and br_if to an outer block or loop, br_table
    arms, return, direct, recursive and indirect calls, falling out at the end) at the loop's latch; the
    results must be wasm's, also when small fuel slices stop the loops anywhere."""
    wasm = wasmtime.wat2wasm(EXITS)
    args = [(x * 7919 + 1, n) for x in range(6) for n in (1, 3, 40, 500)]
    want = [((wasmtime_call(wasm, "walk", (x, n)) & 0xFFFFFFFF,), None, None) for x, n in args]
    out = run_both(engines, wasm, "walk", args)
    assert out["interp"] == out["compiled"] == want
    sliced = engines.load(wasm).instantiate(len(args), tier="compiled", fuel_slice=5).call("walk", args)
    assert [(r.values, r.trap, r.exit_code) for r in sliced] == want


NANS = """
(module
  (memory 1)
  (global $g (mut f64) (f64.const 0))
  (func $id (param f64) (result f64) (local.get 0))
  (func (export "nans") (param $p i32) (param $n i32)
    (result i64 i64 i64 i64 i64 i64 i64 i32 i64 i64)
    (local $x f64) (local $y f64) (local $acc f64) (local $i i32)
    (local.set $x (f64.sub (f64.const inf) (f64.const inf)))  ;; a NaN made by an op: canonical when seen
    (i64.store (i32.const 8) (i64.const 0x7ff4000000000001))  ;; a NaN with a payload, kept by loads and copies
    (local.set $y (f64.load (i32.const 8)))
    (if (i32.and (local.get $p) (i32.const 1))  ;; either kind in one local: a use that sees both
      (then (local.set $y (f64.add (local.get $x) (f64.const 1)))))
    (local.set $acc (f64.const 1))
    (loop $l  ;; a loop that may turn its value into a NaN, stopped by small fuel slices
      (local.set $acc (f64.mul (local.get $acc) (select (local.get $x) (f64.const 3)
        (i32.eq (local.get $i) (local.get $p)))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (i64.reinterpret_f64 (local.get $y))
    (i64.reinterpret_f64 (f64.neg (f64.add (local.get $x) (f64.const 2))))
    (i64.reinterpret_f64 (f64.copysign (f64.div (local.get $x) (f64.const 2)) (f64.const -1)))
    (i64.reinterpret_f64 (call $id (f64.sqrt (local.get $x))))
    (global.set $g (f64.mul (local.get $x) (f64.const 2)))
    (i64.reinterpret_f64 (global.get $g))
    (f64.store (i32.const 16) (f64.add (local.get $y) (local.get $y)))
    (i64.load (i32.const 16))
    (i64.reinterpret_f64 (select (local.get $y) (f64.min (local.get $x) (f64.const 1)) (local.get $p)))
    (i32.reinterpret_f32 (f32.demote_f64 (local.get $x)))
    (i64.reinterpret_f64 (local.get $acc))
    (i64.reinterpret_f64 (f64.abs (f64.promote_f32 (f32.sub (f32.const inf) (f32.const inf))))))
)
"""


def test_nan_bits_match_the_interpreter(engines) -> None:
    """The compiled tier leaves float ops' NaNs as the hardware makes them and canonicalizes where bits are
    seen (compiler/nan_plan.py): stores, reinterpretations, neg/abs/copysign, call arguments, global.set,
    results, and a local that holds either a made NaN or a loaded one with a payload. Every bit pattern
    must be the interpreter's, also when small fuel slices stop the loop with a NaN in flight."""
    wasm = wasmtime.wat2wasm(NANS)
    args = [(p, n) for p in range(4) for n in (1, 2, 9)]
    out = run_both(engines, wasm, "nans", args)
    assert out["compiled"] == out["interp"]
    canon, payload = 0x7FF8000000000000, 0x7FF4000000000001
    first = out["interp"][0][0]  # p = 0: $y keeps the loaded payload
    assert first[:8] == (payload, 0xFFF8000000000000, 0xFFF8000000000000, canon, canon, canon, canon, 0x7FC00000)
    assert first[9] == canon
    assert out["interp"][3][0][0] == canon  # p = 1: $y was made by f64.add
    assert out["interp"][6][0][6] == payload  # p = 2: select picks $y
    sliced = engines.load(wasm).instantiate(len(args), tier="compiled", fuel_slice=1).call("nans", args)
    assert [(r.values, r.trap, r.exit_code) for r in sliced] == out["interp"]


def test_store_with_a_module_that_failed_to_translate_still_compiles() -> None:
    """A function the translator refuses (more locals than a frame holds) rejects its module and leaves no
    half-translated functions in the store, which the compiled tier reads whole."""
    store = Engine("cpu").store(1, tier="compiled")
    big = wasmtime.wat2wasm('(module (func (result i32) (i32.const 1)) (func (result i32) (i32.const 2))'
                            f' (func (export "f") (result i32) (local {"i32 " * 40000}) (i32.const 3)))')
    for _ in range(2):
        with pytest.raises(WasmGpuError, match="40000 locals"):
            store.instantiate(Engine("cpu").load(big).module)
    ok = store.instantiate(Engine("cpu").load(wasmtime.wat2wasm(
        '(module (func (export "f") (result f64) (f64.const 2.5)))')).module)
    assert [r.values for r in store.call(ok.exports["f"], [()])] == [(0x4004000000000000,)]
    assert store.tier_used == "compiled"


HELLO = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm\\n")
  (func (export "_start") (local i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (loop
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if 0 (i32.lt_u (local.get 0) (i32.const 3))))
    (call $exit (i32.const 3)))
)
"""


def test_wasi_program_under_compiled_tier(tmp_path) -> None:
    """A WASI command (host calls for its output, proc_exit) runs the same under both tiers."""
    hello = tmp_path / "hello.wasm"
    hello.write_bytes(wasmtime.wat2wasm(HELLO))
    outs = []
    for tier in ("interp", "compiled"):
        proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "--tier", tier, "-n", "2",
                               str(hello)], capture_output=True, text=True, cwd=REPO)
        outs.append((proc.returncode, proc.stdout))
    assert outs[0] == outs[1]
    assert outs[0][1].count("hello from wasm") == 6 and outs[0][0] == 3


def test_bad_bytecode_and_tier_are_errors() -> None:
    import numpy as np

    with pytest.raises(CompileError, match="bad opcode"):
        compile_store(np.array([0, 0xFF], dtype=np.uint64), [FuncInfo(1, 0, 0, 1, 0xFFFFFFFF, 0, 0)], {})
    with pytest.raises(WasmGpuError, match="unknown tier"):
        Engine("cpu").store(1, tier="fast")


def test_auto_tier_compiles_up_to_the_backends_limit(monkeypatch, tmp_path) -> None:
    """auto compiles on the CPU too, up to AUTO_COMPILE_WORDS[backend] code words; above, it interprets
    (here with an empty compile cache and no background build)."""
    from wasmgpu.runtime import params

    monkeypatch.delenv("WASMGPU_TIER", raising=False)
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.delenv("WASMGPU_PIECES_WORDS", raising=False)  # set while the cpu-pieces engines are in use
    monkeypatch.delenv("WASMGPU_PIECE_MAX_WORDS", raising=False)
    mod = Engine("cpu").load((BENCH_WASM / "fib.wasm").read_bytes())
    args = [(i,) for i in range(3)]
    small = mod.instantiate(3)
    want = [r.values for r in small.call("run", args)]
    assert small.store.tier_used == "compiled"
    monkeypatch.setitem(params.AUTO_COMPILE_WORDS, "cpu", len(small.store.code) - 1)
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path / "empty"))  # nor the small store's build, in a new engine
    large = Engine("cpu").load((BENCH_WASM / "fib.wasm").read_bytes()).instantiate(3)
    assert [r.values for r in large.call("run", args)] == want
    assert large.store.tier_used == "interp"


SPEC_FILES = ["br_table", "call", "call_indirect", "fac", "loop", "memory_grow", "select", "return", "br_if",
              "left-to-right", "local_tee", "conversions", "i64", "f64", "memory_copy", "table_grow"]


@pytest.mark.parametrize("pieces", ["whole", "pieces", "hybrid"])
def test_spec_subset_under_compiled_tier(pieces: str) -> None:
    suite = find_testsuite()
    if suite is None:
        pytest.skip("spec suite not found")
    files = [str(suite / f"{n}.wast") for n in SPEC_FILES if (suite / f"{n}.wast").exists()]
    assert files
    backend = "cpu-interleaved" if BACKEND == "cpu" else BACKEND
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.spec", "--backend", backend, "--tier", "compiled", *files],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "WASMGPU_PIECES_WORDS": "99999999" if pieces == "whole" else "0",
                               "WASMGPU_PIECE_MAX_WORDS": HYBRID_WORDS if pieces == "hybrid" else "99999999"})
    last = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and " 0 failed" in last, proc.stdout[-3000:]
    assert int(last.split()[0]) > 3000


@pytest.fixture
def background_auto(monkeypatch, tmp_path):
    """auto with background builds from the smallest store, in a compile cache of the test's own; the GPU
    check runs the suite with WASMGPU_TIER=interp, and the hybrid engines set the piece bound."""
    from wasmgpu.runtime import params

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setenv("WASMGPU_BACKGROUND_BUILD", "1")
    monkeypatch.delenv("WASMGPU_PIECE_MAX_WORDS", raising=False)
    monkeypatch.delenv("WASMGPU_TIER", raising=False)
    monkeypatch.setitem(params.AUTO_COMPILE_WORDS, BACKEND, 10)
    monkeypatch.setattr(params, "BACKGROUND_MIN_WORDS", {})
    return params


def test_auto_builds_a_large_store_in_the_background(monkeypatch, background_auto) -> None:
    """auto interprets a store over its bound and builds it in pieces in the background; a later store of the
    same code finds that build and runs compiled, with the same results."""
    monkeypatch.delenv("WASMGPU_PIECES_WORDS", raising=False)
    engine = Engine(BACKEND)
    monkeypatch.setattr(engine.backend, "tier_trials", False)  # runs this short would never leave the trial's start
    mod = engine.load((BENCH_WASM / "qsort.wasm").read_bytes())
    args = [(i,) for i in range(3)]
    first = mod.instantiate(3)
    first.store.params.sync()
    assert first.store.tier_used == "interp"  # (its run may move to the build once made: a GPU's is long)
    want = [r.values for r in first.call("run", args)]
    deadline = time.monotonic() + 240
    while True:
        later = mod.instantiate(3)
        got = [r.values for r in later.call("run", args)]
        if later.store.tier_used == "compiled" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert later.store.tier_used == "compiled", "the background build did not finish in 240 s"
    assert got == want


# run(n): the sum of squares below n, or n cubed past 100 (a path the first store's inputs never take).
ENTERED = """
(module
  (func $sq (param i32) (result i32) local.get 0 local.get 0 i32.mul)
  (func $cube (param i32) (result i32) local.get 0 local.get 0 i32.mul local.get 0 i32.mul)
  (func $sum (param i32) (result i32) (local i32 i32)
    (block (loop
      local.get 1 local.get 0 i32.ge_u br_if 1
      local.get 2 local.get 1 call $sq i32.add local.set 2
      local.get 1 i32.const 1 i32.add local.set 1 br 0))
    local.get 2)
  (func (export "run") (param i32) (result i32)
    local.get 0 i32.const 100 i32.gt_u
    if (result i32) local.get 0 call $cube else local.get 0 call $sum end))
"""


def test_a_large_store_builds_the_functions_its_first_run_entered(monkeypatch, background_auto) -> None:
    """Past PROFILE_MIN_WORDS, auto's first run interprets and notes the functions it enters (the one the
    host called among them); its background build compiles those alone, with the others interpreted, and
    the whole build follows; later stores run compiled in one or the other, with the interpreter's results,
    also where an input reaches a function the first run never entered. A rebuild of the parameter block
    keeps the profile."""
    from wasmgpu.runtime.code_cache import ran_record

    params = background_auto
    monkeypatch.setenv("WASMGPU_PIECES_WORDS", "0")
    monkeypatch.delenv("WASMGPU_BUILD_ALL", raising=False)
    monkeypatch.setattr(params, "PROFILE_MIN_WORDS", 1)
    engine = Engine(BACKEND)
    monkeypatch.setattr(engine.backend, "tier_trials", False)  # runs this short would never leave the trial's start
    mod = engine.load(wasmtime.wat2wasm(ENTERED))
    args = [(1,), (7,), (200,)]
    want = [r.values for r in mod.instantiate(3, tier="interp").call("run", args)]
    first = mod.instantiate(2)
    p = first.store.params
    p.sync()
    profile = p.profile
    assert profile is not None
    p.dirty = True  # the block made again (as a memory's growth does): the same profile goes on
    p.sync()
    assert p.profile is profile
    handle, key = p.code_handle, p._code_key
    p.code_handle, p._code_key = object(), profile.key  # as after tier_up, then the block made again
    p.dirty = True
    p.sync()
    assert p.profile is profile and int(p.array[params.P_RAN]) == first.store.backend.ptr(profile.ran)
    p.code_handle, p._code_key, p.dirty = handle, key, True  # back to interpreting, the profile going on
    assert [r.values for r in first.call("run", args[:2])] == want[:2]
    assert first.store.tier_used == "interp"
    backend = first.store.backend
    cube = 1  # the functions in order: $sq, $cube, $sum, run
    entered = p._store_code(profile.what, True, frozenset({cube}))  # the build of what the run entered
    assert ran_record(profile.what) is None
    first.store.close()  # the end of its runs: what they entered is kept and built
    assert ran_record(profile.what) == {cube}
    deadline = time.monotonic() + 240
    seen = set()
    while True:
        later = mod.instantiate(3)
        assert [r.values for r in later.call("run", args)] == want
        if later.store.tier_used == "compiled":
            seen.add(later.store.params.code.interpreted)
        # Both builds made: the first one's choice and the whole (which later stores then take).
        if frozenset() in seen and backend.compile(entered, cached_only=True) is not None:
            break
        assert time.monotonic() < deadline, f"the background builds did not finish in 240 s ({seen})"
        time.sleep(0.5)
    assert seen <= {frozenset(), frozenset({cube})}


def test_a_kept_choice_of_functions_counts_only_for_its_own_code(monkeypatch, tmp_path) -> None:
    """code_cache.ran_record gives back what keep_ran_record kept for that code's digest; another digest
    sharing the entry's name, or an entry whose text is not a list of functions, gives none."""
    from wasmgpu.runtime.code_cache import _ran_entry, keep_ran_record, ran_record
    from wasmgpu.vm.build import store_entry

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    what = "ab" * 32
    assert ran_record(what) is None
    keep_ran_record(what, frozenset({3, 1, 40}))
    assert ran_record(what) == {1, 3, 40}
    assert ran_record(what[:24] + "cd" * 20) is None
    store_entry(_ran_entry(what), f"{what}\n1 two".encode())
    assert ran_record(what) is None


@pytest.mark.parametrize("name", ["fib", "json", "rs_hashmap-hybrid"])
def test_a_run_moves_to_its_compiled_code_when_it_is_built(monkeypatch, name) -> None:
    """A run that interprets while its code builds in the background goes on in the compiled code once the
    build is there (params.ParamBlock.tier_up), with the results of a run in one tier, also where its block is
    made again after the move; hybrid: code that leaves its larger functions to the interpreter, where an
    instance may stand when it moves."""
    import hashlib

    from wasmgpu.runtime import params as params_mod
    from wasmgpu.vm.build import StoreCode

    monkeypatch.setattr(params_mod, "TIER_UP_POLL_S", 0.0)
    monkeypatch.delenv("WASMGPU_PIECE_MAX_WORDS", raising=False)  # set while the hybrid engines are in use
    hybrid = name.endswith("-hybrid")
    name = name.removesuffix("-hybrid")
    if hybrid:
        monkeypatch.setenv("WASMGPU_PIECES_WORDS", "0")
        monkeypatch.setenv("WASMGPU_PIECE_MAX_WORDS", "100")
    mod = Engine(BACKEND).load((BENCH_WASM / f"{name}.wasm").read_bytes())
    args = [(i,) for i in range(4)]
    want = [(r.values, r.trap) for r in mod.instantiate(4, tier="interp").call("run", args)]
    batch = mod.instantiate(4, tier="interp", fuel_slice=5000)
    p = batch.store.params
    p.sync()
    interpreted = params_mod.left_to_interpreter(BACKEND, batch.store.code, p._infos(), hybrid)
    assert bool(interpreted) == hybrid
    source = p.compiled_source(pieces=hybrid or None, interpreted=interpreted)
    code = StoreCode("tier-up-" + hashlib.sha256(source.encode()).hexdigest()[:24], lambda: source, hybrid,
                     interpreted)
    batch.store.backend.compile(code)  # what the background build leaves in the cache
    p.pending = (code, p._state_key(p._function_table(), batch.store.handler_table().tobytes()))
    tiers: list[str] = []

    def on_slice() -> None:
        tiers.append(p.tier_used)
        p.dirty |= len(tiers) % 2 == 0  # the block made again (as a memory's growth does): the run stays moved

    got = [(r.values, r.trap) for r in batch.call("run", args, on_slice=on_slice)]
    assert got == want
    assert tiers[0] == "interp" and tiers[-1] == "compiled", tiers


def test_a_store_under_its_backends_bound_is_not_built_in_the_background(monkeypatch, background_auto) -> None:
    """auto leaves a store under BACKGROUND_MIN_WORDS of its backend (CUDA's: where compiled pieces measured
    slower than the interpreter) to the interpreter, and starts no build of it."""
    from wasmgpu.vm import background

    monkeypatch.setattr(background_auto, "BACKGROUND_MIN_WORDS", {BACKEND: 10**9})
    monkeypatch.setattr(background, "start", lambda *a, **k: pytest.fail("a background build started"))
    engine = Engine(BACKEND)
    monkeypatch.setattr(engine.backend, "memory_layout", "contiguous")  # no layout trial (its builds)
    batch = engine.load((BENCH_WASM / "qsort.wasm").read_bytes()).instantiate(2)
    assert [r.trap for r in batch.call("run", [(1,), (2,)])] == [None, None]
    assert batch.store.tier_used == "interp"


def test_a_background_build_targets_the_stores_device(monkeypatch) -> None:
    """A store's background build is made for its backend's target (CUDA: the GPU's compute capability), so
    that the run finds it under the key it looks up."""
    batch = Engine("cpu").load((BENCH_WASM / "qsort.wasm").read_bytes()).instantiate(1)
    p = batch.store.params
    p.sync()
    code = p._store_code("ab" * 32, True, frozenset())
    assert p._build_job(code, "contiguous").cuda_arch == ""
    monkeypatch.setattr(batch.store.backend, "arch", "90")
    job = p._build_job(code, "contiguous")
    assert (job.cuda_arch, job.key) == ("90", code.key)
    assert p._build_job(None, "interleaved", tag="interleaved").cuda_arch == "90"


@pytest.mark.parametrize("keep", ["interp", "compiled"])
def test_a_run_keeps_the_tier_that_ran_faster(monkeypatch, tmp_path, keep: str) -> None:
    """Where the backend measures tiers (CUDA), a run that moves to its compiled code measures its fuel rate
    against the interpreter's just before, keeps the faster (the interpreter where it ran the margin faster:
    here a margin of 0 or infinity decides), with the results of a run in one tier, and keeps the choice
    for the code."""
    import hashlib

    from wasmgpu.runtime import params as params_mod
    from wasmgpu.runtime import tuning
    from wasmgpu.vm.build import StoreCode

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.delenv("WASMGPU_PIECES_WORDS", raising=False)  # set while the hybrid engines are in use
    monkeypatch.delenv("WASMGPU_PIECE_MAX_WORDS", raising=False)
    monkeypatch.setattr(params_mod, "TIER_UP_POLL_S", 0.0)
    monkeypatch.setattr(tuning, "TIER_WATCH_S", 0.0)
    monkeypatch.setattr(tuning, "TIER_MARGIN", 0.0 if keep == "interp" else float("inf"))
    mod = Engine(BACKEND).load((BENCH_WASM / "fib.wasm").read_bytes())
    args = [(i,) for i in range(4)]
    want = [(r.values, r.trap) for r in mod.instantiate(4, tier="interp").call("run", args)]
    batch = mod.instantiate(4, tier="interp", fuel_slice=3000)
    monkeypatch.setattr(batch.store.backend, "tier_trials", True)
    p = batch.store.params
    p.sync()
    source = p.compiled_source(interpreted=frozenset())
    code = StoreCode("trial-" + hashlib.sha256(source.encode()).hexdigest()[:24], lambda: source, False, frozenset())
    batch.store.backend.compile(code)  # what the background build leaves in the cache
    p._what = "cd" * 32
    p._pend(code, b"", build=False)
    assert p.trial is not None
    tiers: list[str] = []
    got = [(r.values, r.trap) for r in batch.call("run", args, on_slice=lambda: tiers.append(p.tier_used))]
    assert got == want
    assert tiers[0] == "interp" and "compiled" in tiers and tiers[-1] == keep, tiers
    assert p.trial.state == "done" and p.keep_interp == (keep == "interp")
    assert tuning.remembered_tier(p._trial_key()) == (keep, pytest.approx(p.trial.gain, abs=1e-3))
    assert p._trial_key().startswith("cd" * 32) and tuning.remembered_tier("cd" * 32) is None


@pytest.mark.parametrize(("keep", "rebuilt"), [("interp", False), ("compiled", False), ("interp", True)])
def test_a_store_found_built_measures_the_interpreter_too(monkeypatch, background_auto, keep: str,
                                                          rebuilt: bool) -> None:
    """A store whose background build is found made, its tier never measured, interprets first all the same,
    then moves to the build and keeps the faster; a later store of the code and batch size takes the kept
    choice from its start and builds nothing. `rebuilt`: the store's block is made again after every launch
    (as a memory's growth does), which must not move the run to its build before the trial measured it."""
    from wasmgpu.runtime import tuning
    from wasmgpu.vm import background

    monkeypatch.delenv("WASMGPU_PIECES_WORDS", raising=False)
    monkeypatch.setattr(background_auto, "TIER_UP_POLL_S", 0.0)
    monkeypatch.setattr(tuning, "TIER_WATCH_S", 0.0)
    monkeypatch.setattr(tuning, "TIER_MARGIN", 0.0 if keep == "interp" else float("inf"))
    monkeypatch.setattr(background, "_STARTED", set())  # a build of this code started by another test
    mod = Engine(BACKEND).load((BENCH_WASM / "fib.wasm").read_bytes())
    args = [(i,) for i in range(3)]
    want = [(r.values, r.trap) for r in mod.instantiate(3, tier="interp").call("run", args)]
    first = mod.instantiate(3)
    monkeypatch.setattr(first.store.backend, "tier_trials", True)
    monkeypatch.setattr(first.store.backend, "memory_layout", "contiguous")  # no layout trial (its builds)
    first.store.params.sync()  # starts the build
    assert first.store.tier_used == "interp" and first.store.params.pending is not None
    code = first.store.params.pending[0]
    deadline = time.monotonic() + 240
    while first.store.backend.compile(code, cached_only=True) is None:
        assert time.monotonic() < deadline, "the background build did not finish in 240 s"
        time.sleep(0.5)
    later = mod.instantiate(3, fuel_slice=3000)
    tiers: list[str] = []

    def on_slice() -> None:
        tiers.append(later.store.tier_used)
        later.store.params.dirty |= rebuilt and len(tiers) % 2 == 0  # tier_up waits for a clean block

    got = [(r.values, r.trap) for r in later.call("run", args, on_slice=on_slice)]
    assert got == want
    trial = later.store.params.trial
    assert trial is not None and trial.state == "done"
    assert tiers[0] == "interp" and "compiled" in tiers and tiers[-1] == keep, tiers
    monkeypatch.setattr(background, "start", lambda *a, **k: pytest.fail("a background build started"))
    again = mod.instantiate(3)
    assert [(r.values, r.trap) for r in again.call("run", args)] == want
    assert again.store.tier_used == keep and again.store.params.trial is None


def test_no_more_than_max_builds_run_in_the_background(monkeypatch, tmp_path) -> None:
    """Runs of many large modules start at most MAX_BUILDS background builds at once (fresh lock files in
    the compile cache); a stale lock is not counted."""
    import os

    from wasmgpu.vm import background

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setenv("WASMGPU_BACKGROUND_BUILD", "1")
    for k in range(background.MAX_BUILDS):
        (tmp_path / f".building-{k:024d}").touch()
    job = background.BuildJob("f" * 40, None, [], {}, 0, True, False, (), [])  # type: ignore[arg-type]
    assert background.building() == background.MAX_BUILDS and not background.start(job)
    old = time.time() - background.LOCK_STALE_S - 10
    os.utime(tmp_path / f".building-{0:024d}", (old, old))
    assert background.building() == background.MAX_BUILDS - 1


def test_a_chain_of_builds_waits_for_anothers_build_of_the_same_code(monkeypatch, tmp_path) -> None:
    """A background process's chain of builds (BuildJob.then) whose next build another process holds the
    lock of waits for that build, then goes on in order; it does not build the rest beside it."""
    import io
    import pickle
    import threading

    from wasmgpu.vm import background

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setattr(background, "WAIT_POLL_S", 0.02)
    monkeypatch.setattr(background.os, "nice", lambda _: 0)
    built: list[str] = []
    monkeypatch.setattr(background.BuildJob, "build", lambda job: built.append(job.key))
    first, whole = (background.BuildJob(k * 40, None, [], {}, 0, True, False, (), []) for k in "ab")  # type: ignore[arg-type]
    first.then = [whole]
    monkeypatch.setattr(background.sys, "stdin", io.TextIOWrapper(io.BytesIO(pickle.dumps(first))))
    held = background._lock(first.name)
    assert held is not None
    chain = threading.Thread(target=background.main)
    chain.start()
    time.sleep(0.3)
    assert built == []  # neither its own first build nor the whole one while the other builds
    background.os.close(held)
    background._lock_path(first.name).unlink()
    chain.join(10)
    assert built == [first.key, whole.key]
    assert not list(tmp_path.glob(".building-*"))
    # A cache where no lock can be made: the chain ends, building nothing, rather than wait.
    built.clear()
    monkeypatch.setattr(background.sys, "stdin", io.TextIOWrapper(io.BytesIO(pickle.dumps(first))))
    monkeypatch.setattr(background.os, "open", lambda *a: (_ for _ in ()).throw(PermissionError(13, "denied")))
    assert background.main() == 1 and built == []


def test_a_build_that_does_not_load_leaves_the_store_interpreted(monkeypatch, tmp_path) -> None:
    """Where a large store's build is in the cache but does not load (a GPU that cannot give its stack),
    auto runs the store interpreted, with the interpreter's results, and no error."""
    from wasmgpu.runtime import params
    from wasmgpu.vm.build import BuildError

    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setenv("WASMGPU_BACKGROUND_BUILD", "0")
    monkeypatch.delenv("WASMGPU_TIER", raising=False)
    monkeypatch.setitem(params.AUTO_COMPILE_WORDS, BACKEND, 10)
    monkeypatch.setattr(params, "BACKGROUND_MIN_WORDS", {})
    mod = Engine(BACKEND).load((BENCH_WASM / "qsort.wasm").read_bytes())
    args = [(1,), (2,)]
    want = [(r.values, r.trap) for r in mod.instantiate(2, tier="interp").call("run", args)]
    batch = mod.instantiate(2)
    real = batch.store.backend.compile

    def compile(code, cached_only=False, layout=None):
        if cached_only:
            raise BuildError("the GPU cannot give this build's stack")
        return real(code, cached_only, layout)

    monkeypatch.setattr(batch.store.backend, "compile", compile)
    assert [(r.values, r.trap) for r in batch.call("run", args)] == want
    assert batch.store.tier_used == "interp"


def test_the_functions_over_the_bound_are_left_to_the_interpreter(monkeypatch) -> None:
    """params.left_to_interpreter: in pieces only, the functions of more code words than the bound."""
    from wasmgpu import disasm
    from wasmgpu.runtime.params import PIECE_MAX_WORDS, left_to_interpreter

    store = disasm.load((BENCH_WASM / "rs_hashmap.wasm").read_bytes())
    store.params.sync()
    infos = store.params._infos()
    defined = sorted((f.entry, i) for i, f in enumerate(infos) if f.host == 0xFFFFFFFF)
    size = {i: end - entry for (entry, i), (end, _) in zip(defined, [*defined[1:], (len(store.code), -1)], strict=True)}
    monkeypatch.setenv("WASMGPU_PIECE_MAX_WORDS", "0")
    assert left_to_interpreter("cpu", store.code, infos, True) == set(size)
    assert left_to_interpreter("cpu", store.code, infos, False) == set()
    monkeypatch.setenv("WASMGPU_PIECE_MAX_WORDS", "500")
    assert left_to_interpreter("cuda", store.code, infos, True) == {i for i, n in size.items() if n > 500} != set()
    monkeypatch.delenv("WASMGPU_PIECE_MAX_WORDS")
    bound = PIECE_MAX_WORDS["cuda"]
    assert left_to_interpreter("cuda", store.code, infos, True) == {i for i, n in size.items() if n > bound}
