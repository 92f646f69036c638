"""A module's bytecode is made once per store layout: a second store laid out alike reuses it."""

from __future__ import annotations

import wasmtime

from wasmgpu.runtime import instantiate
from wasmgpu.runtime.engine import Engine

WAT = """(module (global $g (mut i32) (i32.const 5))
  (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (global.get $g))))"""


def test_a_store_laid_out_alike_does_not_translate_again(monkeypatch) -> None:
    calls = []
    real = instantiate.translate_function
    monkeypatch.setattr(instantiate, "translate_function", lambda *a: calls.append(1) or real(*a))
    engine = Engine("cpu")
    module = engine.load(wasmtime.wat2wasm(WAT)).module
    results = []
    for n in (3, 5):
        store = engine.store(n)
        inst = store.instantiate(module, {})
        results.append([r.values for r in store.call(inst.exports["f"], [(i,) for i in range(n)])])
    assert len(calls) == 1
    assert results == [[(5,), (6,), (7,)], [(5,), (6,), (7,), (8,), (9,)]]
    # Placed after another instance of it, the functions live elsewhere in the store: translated anew.
    store = engine.store(2)
    store.instantiate(module, {})
    second = store.instantiate(module, {})
    assert len(calls) == 2
    assert [r.values for r in store.call(second.exports["f"], [(1,), (2,)])] == [(6,), (7,)]
