"""Exception handling (tags, throw, throw_ref, try_table) in both tiers, on the backend under test and on the
CPU with the GPU's memory layout and in pieces, against wasmtime."""

import pytest
import wasmtime

from tests.conftest import BACKEND
from wasmgpu.compiler.vm_abi import EXN_SLOTS, TRAP_CODE, TRAP_MESSAGE
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine

UNCAUGHT = TRAP_MESSAGE[TRAP_CODE["UNCAUGHT_EXCEPTION"]]
EXPIRED = TRAP_MESSAGE[TRAP_CODE["EXPIRED_EXN_REF"]]

# $acc is set again after the call on the normal path, but the catch path reads the value from before the
# call: the compiled tier must keep it in memory across the call (an edge from the call to the landing).
# The payloads are an i64 and an f64: the landing's slots hold 64-bit values.
MODULE = """
(module
  (tag $small (param i32))
  (tag $wide (param i64 f64))
  (tag $none)
  (func $thrower (param $k i32) (result i32)
    (if (i32.eq (i32.rem_u (local.get $k) (i32.const 3)) (i32.const 1))
      (then (throw $small (i32.mul (local.get $k) (i32.const 10)))))
    (if (i32.eq (i32.rem_u (local.get $k) (i32.const 3)) (i32.const 2))
      (then (throw $wide (i64.shl (i64.extend_i32_u (local.get $k)) (i64.const 40)) (f64.const 0.5))))
    (local.get $k))
  (func (export "loop") (param $n i32) (result i64)
    (local $i i32) (local $acc i64) (local $x i64) (local $f f64)
    (loop $top
      (block $next
        (block $wide_caught (result i64 f64)
          (block $small_caught (result i32)
            (try_table (catch $small $small_caught) (catch $wide $wide_caught)
              (local.set $x (i64.extend_i32_u (call $thrower (local.get $i))))
              (local.set $acc (i64.add (local.get $acc) (local.get $x))))
            (br $next))
          i64.extend_i32_u
          (local.set $acc (i64.add (local.get $acc)))
          (br $next))
        (local.set $f)
        (local.set $acc (i64.add (local.get $acc)))
        (local.set $acc (i64.add (local.get $acc) (i64.add (local.get $x) (i64.trunc_f64_s
          (f64.mul (local.get $f) (f64.const 4)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $top (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  ;; A catch_all_ref in a callee rethrows with throw_ref; the caller's catch takes the value.
  (func $relay (param $k i32) (result i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h)
        (drop (call $thrower (local.get $k))))
      (return (i32.const -1)))
    (throw_ref))
  (func (export "relay") (param $k i32) (result i32)
    (block $other
      (block $h (result i32)
        (try_table (result i32) (catch $small $h) (catch_all $other)
          (call $relay (local.get $k)))
        (return))
      (return (i32.add (i32.const 1000))))
    (i32.const -2))
  (func (export "uncaught") (param $k i32) (result i32)
    (call $thrower (local.get $k)))
  ;; Holds the exnref of the first exception while $n more are thrown and caught, then rethrows it.
  (func (export "hold") (param $n i32) (result i32)
    (local $held exnref) (local $i i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (throw $none))
      (unreachable))
    (local.set $held)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (block $c (try_table (catch_all $c) (throw $none)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (block $c2
      (try_table (catch_all $c2) (throw_ref (local.get $held)))
      (unreachable))
    (i32.const 7))
  ;; Two try_tables with the same code range (the inner one ends in a throw, the outer adds nothing): the
  ;; inner one's clause takes the exception.
  (func (export "same_range") (param $k i32) (result i32)
    (block $outer (result i32)
      (block $inner (result i32)
        (try_table (catch $small $outer)
          (try_table (catch $small $inner)
            (throw $small (local.get $k))))
        (unreachable))
      (return (i32.add (i32.const 10))))
    (i32.const -5)
    (i32.add))
  ;; An exception from $k frames down, through a try_table in every frame that does not take it.
  (func $deep (param $k i32) (result i32)
    (block $no
      (try_table (result i32) (catch $none $no)
        (if (result i32) (i32.eqz (local.get $k))
          (then (throw $small (i32.const 42)))
          (else (i32.add (call $deep (i32.sub (local.get $k) (i32.const 1))) (i32.const 1)))))
      (return))
    (i32.const -1))
  (func (export "deep") (param $k i32) (result i32)
    (block $h (result i32)
      (try_table (catch $small $h) (return (call $deep (i32.mul (local.get $k) (i32.const 300)))))
      (unreachable)))
)
"""


@pytest.fixture(scope="module", params=[*sorted({BACKEND, "cpu-interleaved"}), "cpu-pieces", "cpu-hybrid"])
def engine(request):
    if request.param == "cpu-interleaved":
        yield Engine(CpuBackend(interleaved=True))
        return
    with pytest.MonkeyPatch.context() as mp:
        if request.param in ("cpu-pieces", "cpu-hybrid"):
            mp.setenv("WASMGPU_PIECES_WORDS", "0")
        if request.param == "cpu-hybrid":  # the larger functions left to the interpreter, throws crossing tiers
            mp.setenv("WASMGPU_PIECE_MAX_WORDS", "20")
        yield Engine(request.param.removesuffix("-pieces").removesuffix("-hybrid"))


def reference(func: str, arg: int) -> tuple[int | None, bool]:
    """wasmtime's result, and whether it ended with an uncaught exception."""
    config = wasmtime.Config()
    config.wasm_exceptions = True
    store = wasmtime.Store(wasmtime.Engine(config))
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, MODULE), [])
    try:
        return inst.exports(store)[func](store, arg), False
    except wasmtime.Trap as e:
        assert "exception" in str(e), e
        return None, True


@pytest.fixture(scope="module")
def module(engine):
    return engine.load(wasmtime.wat2wasm(MODULE))


@pytest.mark.parametrize("tier", ["interp", "compiled"])
@pytest.mark.parametrize("func", ["loop", "relay", "uncaught", "same_range", "deep"])
def test_agrees_with_wasmtime(module, tier: str, func: str) -> None:
    args = [(k,) for k in range(7)]  # each instance its own path: none, one or many exceptions
    results = module.instantiate(len(args), tier=tier).call(func, args)
    for (k,), r in zip(args, results, strict=True):
        value, uncaught = reference(func, k)
        if uncaught:
            assert r.trap == UNCAUGHT, (func, k)
            assert r.backtrace, "an uncaught exception reports where it was thrown"
        else:  # raw bits here, signed ints in wasmtime
            assert r.trap is None and r.values == (value % (1 << (64 if func == "loop" else 32)),), (func, k, r)


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_held_exnref_expires_by_name(module, tier: str) -> None:
    """The ring keeps EXN_SLOTS exceptions: an exnref outlived by that many throws traps, never another's."""
    batch = module.instantiate(2, tier=tier)
    ok, expired = batch.call("hold", [(EXN_SLOTS - 2,), (EXN_SLOTS,)])
    assert ok.trap is None and ok.values == (7,)
    assert expired.trap == EXPIRED


def test_an_exnref_from_the_host_traps_by_name(engine) -> None:
    """A store that never threw has no exceptions to find: any exnref the host hands in is stale."""
    mod = engine.load(wasmtime.wat2wasm('(module (func (export "f") (param exnref) (throw_ref (local.get 0))))'))
    for tier in ("interp", "compiled"):
        assert {r.trap for r in mod.instantiate(3, tier=tier).call("f", [(0,), (5,), (2**63,)])} == {EXPIRED}


HOLDER = """
(module
  (tag $e (param i32))
  (global $held (mut exnref) (ref.null exn))
  (func (export "hold") (param i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (throw $e (local.get 0)))
      (unreachable))
    (global.set $held))
  (func (export "throw") (param i32)
    (block $h (try_table (catch_all $h) (throw $e (local.get 0)))))
  (func (export "rethrow") (result i32)
    (block $h (result i32)
      (try_table (catch $e $h) (throw_ref (global.get $held)))
      (i32.const -1))))
"""


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_wider_tag_keeps_the_exceptions_held(engine, tier: str) -> None:
    """A module with a wider tag joining the store widens every instance's exceptions: the one an exnref
    holds moves with them, and later throws do not take its place."""
    store = engine.store(2, tier=tier)
    holder = store.instantiate(engine.load(wasmtime.wat2wasm(HOLDER)).module)
    store.call(holder.exports["hold"], [(111,), (112,)])
    wide = store.instantiate(engine.load(wasmtime.wat2wasm(
        '(module (tag (param i64 i64 i64 i64 i64 i64)) (func (export "x")))')).module)
    store.call(wide.exports["x"], [(), ()])
    store.call(holder.exports["throw"], [(222,), (223,)])
    assert [r.values for r in store.call(holder.exports["rethrow"], [(), ()])] == [(111,), (112,)]
