"""Typed function references (call_ref, return_call_ref, ref.as_non_null, br_on_null, br_on_non_null) in both
tiers, on the backend under test and on the CPU with the GPU's memory layout, against wasmtime."""

import pytest
import wasmtime

from tests.conftest import BACKEND
from wasmgpu.compiler.vm_abi import TRAP_CODE, TRAP_MESSAGE
from wasmgpu.errors import ValueTypeError
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine

MODULE = """
(module
  (type $un (func (param i32) (result i32)))
  (func $inc (type $un) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $un) (i32.mul (local.get 0) (i32.const 2)))
  (table $fs 2 (ref null $un))
  (elem (table $fs) (i32.const 0) (ref null $un) (ref.func $inc) (ref.func $dbl))
  (func $pick (param $k i32) (result (ref null $un))
    (if (result (ref null $un)) (i32.eq (local.get $k) (i32.const 3))
      (then (ref.null $un))
      (else (table.get $fs (i32.and (local.get $k) (i32.const 1))))))
  ;; call_ref through a reference that is null for k = 3 (a trap).
  (func (export "call") (param $k i32) (result i32)
    (call_ref $un (i32.mul (local.get $k) (i32.const 10)) (call $pick (local.get $k))))
  ;; br_on_null to the function's label with a local's value below the reference: the path that goes on
  ;; must still find that value (a conditional return once moved it on the returning path only).
  (func (export "on_null") (param $k i32) (result i32) (local $f (ref null $un))
    (local.get $k)
    (call $pick (local.get $k))
    (br_on_null 0)
    (local.set $f)
    (call_ref $un (i32.const 5) (local.get $f))
    (i32.add))
  (func (export "on_non_null") (param $k i32) (result i32) (local $f (ref $un))
    (block $got (result (ref $un))
      (br_on_non_null $got (call $pick (local.get $k)))
      (return (i32.const -1)))
    (local.set $f)
    (local.set 0 (i32.add (local.get $k) (i32.const 100)))
    (call_ref $un (local.get $k) (local.get $f)))
  (func $count (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (local.get $acc))
      (else (return_call_ref $tail (i32.sub (local.get $n) (i32.const 1)) (i32.add (local.get $acc) (i32.const 3))
                                   (ref.func $count)))))
  (type $tail (func (param i32 i32) (result i32)))
  (elem declare func $count)
  (func (export "tail") (param $k i32) (result i32)
    (return_call_ref $tail (i32.mul (local.get $k) (i32.const 1000)) (i32.const 0) (ref.func $count)))
  (func (export "as_non_null") (param $k i32) (result i32)
    (drop (ref.as_non_null (call $pick (local.get $k))))
    (local.get $k))
)
"""


@pytest.fixture(scope="module", params=sorted({BACKEND, "cpu-interleaved"}))
def module(request):
    engine = Engine(CpuBackend(interleaved=True)) if request.param == "cpu-interleaved" else Engine(request.param)
    return engine.load(wasmtime.wat2wasm(MODULE))


def reference(func: str, k: int) -> int | str:
    config = wasmtime.Config()
    config.wasm_function_references = True
    config.wasm_tail_call = True
    store = wasmtime.Store(wasmtime.Engine(config))
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, MODULE), [])
    try:
        return inst.exports(store)[func](store, k) % (1 << 32)
    except wasmtime.Trap as e:
        return str(e)


@pytest.mark.parametrize("tier", ["interp", "compiled"])
@pytest.mark.parametrize("func", ["call", "on_null", "on_non_null", "tail", "as_non_null"])
def test_agrees_with_wasmtime(module, tier: str, func: str) -> None:
    args = [(k,) for k in range(5)]
    for (k,), r in zip(args, module.instantiate(len(args), tier=tier).call(func, args), strict=True):
        want = reference(func, k)
        if isinstance(want, str):  # a null reference: wasmtime's message names it too
            kind = "NULL_FUNC_REF" if func == "call" else "NULL_REF"
            assert r.trap == TRAP_MESSAGE[TRAP_CODE[kind]] and "null" in want, (func, k, r, want)
        else:
            assert r.trap is None and r.values == (want,), (func, k, r, want)


HOST = """
(module
  (type $un (func (param i32) (result i32)))
  (import "host" "pick" (func $pick (param i32) (result (ref null $un))))
  (func $inc (export "inc") (type $un) (i32.add (local.get 0) (i32.const 1)))
  (elem declare func $inc)
  (func (export "get") (result (ref null $un)) (ref.func $inc))
  (func (export "apply") (param $f (ref null $un)) (param $x i32) (result i32)
    (call_ref $un (local.get $x) (local.get $f)))
  (func (export "via_host") (param $k i32) (result i32)
    (call_ref $un (i32.const 41) (call $pick (local.get $k))))
)
"""


def test_host_function_references_are_checked(module) -> None:
    """The VM trusts a function reference (call_ref reads its function's row): one from the host that the
    store does not hold, or of another type, is refused before it runs or traps its instance, never read."""
    engine = module.engine
    mod = engine.load(wasmtime.wat2wasm(HOST))
    held: list[int] = []
    # A plain callable takes its type from the import: (ref null $un), a typed reference.
    batch = mod.instantiate(3, imports={("host", "pick"): lambda k: [held[0], 10**6, held[1]][k]})
    inc, pick = batch.call("get", [()] * 3)[0].values[0], 0  # the import is the store's first function
    held += [inc, pick]
    assert batch.call("apply", [(inc, 1)] * 3)[0].values == (2,)
    for bad, why in ((10**6, "not a function of this store"), (pick, r"is not a \(ref null")):
        with pytest.raises(ValueTypeError, match=why):
            batch.call("apply", [(inc, 1), (bad, 1), (inc, 1)])
    ok, missing, wrong = batch.call("via_host", [(0,), (1,), (2,)])
    assert ok.values == (42,)
    assert "not a function of this store" in missing.trap and "is not a (ref null" in wrong.trap
