"""A module's bytecode is made once per store layout: a second store laid out alike reuses it, and so does
the next process (the compile cache keeps it on disk)."""

from __future__ import annotations

import wasmtime

from wasmgpu.runtime import code_cache, instantiate
from wasmgpu.runtime.engine import Engine
from wasmgpu.wasm.reader import decode_module

WAT = """(module (global $g (mut i32) (i32.const 5))
  (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (global.get $g))))"""


def test_a_store_laid_out_alike_does_not_translate_again(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
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


def test_the_next_process_loads_the_bytecode_from_the_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setattr(code_cache, "MIN_INSTRUCTIONS", 0)  # WAT is small: cached all the same
    calls = []
    real = instantiate.translate_function
    monkeypatch.setattr(instantiate, "translate_function", lambda *a: calls.append(1) or real(*a))
    engine = Engine("cpu")
    wasm = wasmtime.wat2wasm(WAT)
    codes = []
    for _ in range(2):  # a module decoded afresh has no bytecode in memory, as in a new process
        module = decode_module(wasm)
        store = engine.store(4)
        inst = store.instantiate(module, {})
        assert [r.values for r in store.call(inst.exports["f"], [(i,) for i in range(4)])] == [(5,), (6,), (7,), (8,)]
        codes.append(store.code.tolist())
    assert len(calls) == 1 and codes[0] == codes[1]
    assert len(list(tmp_path.glob("bytecode-*.npz"))) == 1
    # A damaged entry is made again; a module that was not decoded from bytes is not cached.
    next(tmp_path.glob("bytecode-*.npz")).write_bytes(b"damaged")
    engine.store(1).instantiate(decode_module(wasm), {})
    assert len(calls) == 2
    module = decode_module(wasm)
    module.digest = ""
    engine.store(1).instantiate(module, {})
    assert len(calls) == 3
    monkeypatch.setattr(code_cache, "MIN_INSTRUCTIONS", 4096)  # a small module is translated every time
    engine.store(1).instantiate(decode_module(wasm), {})
    assert len(calls) == 4


def test_bytecode_round_trips() -> None:
    module = decode_module(wasmtime.wat2wasm(WAT))
    codes = [instantiate.translate_function(module, 0, addr, 1) for addr in [_addresses()]]
    assert code_cache.decode(code_cache.encode(codes)) == codes
    assert code_cache.decode(code_cache.encode([])) == []


def _addresses():
    from wasmgpu.compiler.translate import Addresses

    return Addresses(funcs=[1], globals=[1], mems=[], tables=[], datas=[], elems=[], sig_ids=[1])
