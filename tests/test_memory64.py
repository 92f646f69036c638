"""Memories and tables with 64-bit addresses (memory64), against wasmtime, on both tiers: loads and stores at
addresses and offsets past 32 bits (out of bounds, and wrapping past 2^64), memory.size, memory.grow,
memory.fill and memory.copy with i64 operands, the atomics on such a memory; a 64-bit table's get, set, size,
grow, fill, copy and call_indirect."""

from __future__ import annotations

import pytest
import wasmtime

from wasmgpu.runtime.engine import Engine

from .conftest import BACKEND

MASK64 = (1 << 64) - 1

WAT = """
(module
  (memory (export "m") i64 1 3)
  (data (i64.const 65530) "\\01\\02\\03\\04\\05\\06")
  (func (export "load") (param i64) (result i64) (i64.load (local.get 0)))
  (func (export "load_far") (param i64) (result i32) (i32.load8_u offset=0xffffffff (local.get 0)))
  (func (export "load_huge") (param i64) (result i32) (i32.load offset=0x100000000 (local.get 0)))
  (func (export "store") (param i64 i64) (i64.store offset=8 (local.get 0) (local.get 1)))
  (func (export "size") (result i64) (memory.size))
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
  (func (export "fill") (param i64 i64) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
  (func (export "copy") (param i64 i64 i64) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "rmw") (param i64) (result i64) (i64.atomic.rmw.add (local.get 0) (i64.const 5)))
  (func (export "far_atomic") (param i64) (result i32) (i32.atomic.load offset=0x100000000 (local.get 0)))
  (func (export "vload") (param i64) (result i64) (i64x2.extract_lane 1 (v128.load offset=8 (local.get 0))))
  (func (export "vlane") (param i64) (v128.store8_lane 3 (local.get 0) (v128.const i64x2 0x0102030405060708 0)))
  (func (export "vfar") (param i64) (result i32) (i32x4.extract_lane 0 (v128.load32_zero offset=0x100000000
                                                                         (local.get 0))))
)
"""

CALLS = [
    ("load", (0,)), ("load", (65528,)), ("load", (65529,)), ("load", (MASK64,)), ("load", (1 << 32,)),
    ("load_far", (0,)), ("load_far", (MASK64,)), ("load_huge", (0,)), ("load_huge", (MASK64 - 3,)),
    ("store", (100, 0x1122334455667788)), ("load", (108,)), ("store", (MASK64 - 7, 1)),
    ("size", ()), ("grow", (1 << 40,)), ("grow", (MASK64,)), ("grow", (1,)), ("size", ()), ("grow", (1,)),
    ("grow", (0,)), ("load", (2 * 65536 + 100,)), ("fill", (65536 * 2 - 4, 8)), ("load", (65536 * 2 - 4,)),
    ("fill", (MASK64, 2)), ("fill", (10, MASK64)), ("copy", (200, 65530, 6)), ("load", (200,)),
    ("copy", (0, MASK64 - 1, 4)), ("rmw", (64,)), ("rmw", (64,)), ("rmw", (65,)), ("rmw", (MASK64 - 7,)),
    ("far_atomic", (0,)), ("far_atomic", (MASK64 - 3,)), ("vlane", (300,)), ("load", (296,)), ("vload", (292,)),
    ("vload", (65536 * 3 - 24,)), ("vload", (65536 * 3 - 23,)), ("vload", (MASK64 - 7,)), ("vlane", (MASK64,)),
    ("vfar", (0,)),
]


def _outcome(call: object) -> object:
    try:
        out = call()  # type: ignore[operator]
    except wasmtime.Trap as e:
        return "trap: " + ("out of bounds memory access" if "out of bounds" in str(e) else "unaligned atomic"
                           if "unaligned" in str(e) else str(e))
    return None if out is None else out & MASK64


def _wasmtime_outcomes(wasm: bytes) -> list[object]:
    config = wasmtime.Config()
    config.wasm_memory64 = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    ex = inst.exports(store)
    signed = [tuple(a - (1 << 64) if a >> 63 else a for a in args) for _, args in CALLS]
    return [_outcome(lambda n=n, a=a: ex[n](store, *a)) for (n, _), a in zip(CALLS, signed, strict=True)]


@pytest.mark.parametrize("backend", sorted({BACKEND, "cpu-interleaved"}))  # the latter runs SIMD as the GPU does
@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_memory64_agrees_with_wasmtime(tier: str, backend: str) -> None:
    wasm = wasmtime.wat2wasm(WAT)
    want = _wasmtime_outcomes(wasm)
    batch = Engine(backend).load(wasm).instantiate(2, tier=tier)
    got = []
    for name, args in CALLS:
        res = batch.call(name, [args] * 2)
        assert res[0].trap == res[1].trap and res[0].values == res[1].values, name
        r = res[0]
        got.append(_table_trap(r.trap) if r.trap else (r.values[0] & MASK64 if r.values else None))
    assert got == want


TABLE_WAT = """
(module
  (type $t (func (result i64)))
  (table $tab (export "t") i64 2 10 funcref)
  (elem (table $tab) (i64.const 0) func $one $two)
  (func $one (result i64) (i64.const 1))
  (func $two (result i64) (i64.const 2))
  (func (export "call") (param i64) (result i64) (call_indirect $tab (type $t) (local.get 0)))
  (func (export "size") (result i64) (table.size $tab))
  (func (export "grow") (param i64) (result i64) (table.grow $tab (ref.null func) (local.get 0)))
  (func (export "isnull") (param i64) (result i32) (ref.is_null (table.get $tab (local.get 0))))
  (func (export "set") (param i64) (table.set $tab (local.get 0) (ref.func $two)))
  (func (export "fill") (param i64 i64) (table.fill $tab (local.get 0) (ref.func $one) (local.get 1)))
  (func (export "copy") (param i64 i64 i64) (table.copy $tab $tab (local.get 0) (local.get 1) (local.get 2)))
)
"""

TABLE_CALLS = [
    ("call", (0,)), ("call", (1,)), ("call", (2,)), ("call", (1 << 32,)), ("call", (MASK64,)), ("size", ()),
    ("grow", (MASK64,)), ("grow", (1 << 33,)), ("grow", (3,)), ("size", ()), ("isnull", (4,)), ("set", (4,)),
    ("call", (4,)), ("isnull", (1 << 40,)), ("set", (MASK64,)), ("fill", (2, 2)), ("call", (3,)),
    ("fill", (4, MASK64)), ("copy", (3, 0, 2)), ("call", (4,)), ("copy", (0, MASK64, 1)), ("grow", (5,)),
    ("size", ()),
]


def _table_trap(text: str) -> str:
    """A trap's kind: wasmtime words every index past a table's end "undefined element: out of bounds table
    access", where the spec (and wasmgpu) says "undefined element" for call_indirect only."""
    if "undefined element" in text or "out of bounds table access" in text:
        return "trap: index past the table"
    return "trap: " + text


def _table_outcomes_wasmtime(wasm: bytes) -> list[object]:
    config = wasmtime.Config()
    config.wasm_memory64 = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    ex = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)
    out: list[object] = []
    for name, args in TABLE_CALLS:
        signed = tuple(a - (1 << 64) if a >> 63 else a for a in args)
        try:
            r = ex[name](store, *signed)
        except wasmtime.Trap as e:
            text = str(e)
            out.append(_table_trap(text))
            continue
        out.append(None if r is None else r & MASK64)
    return out


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_table64_agrees_with_wasmtime(tier: str) -> None:
    wasm = wasmtime.wat2wasm(TABLE_WAT)
    want = _table_outcomes_wasmtime(wasm)
    batch = Engine(BACKEND).load(wasm).instantiate(2, tier=tier)
    got: list[object] = []
    for name, args in TABLE_CALLS:
        r = batch.call(name, [args] * 2)[0]
        got.append(_table_trap(r.trap) if r.trap else (r.values[0] & MASK64 if r.values else None))
    assert got == want


BIG_WAT = """
(module
  (memory i64 1)
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
  (func (export "size") (result i64) (memory.size))
  (func (export "store_far") (param i64 i64) (i64.store offset=0x100000000 (local.get 0) (local.get 1)))
  (func (export "load") (param i64) (result i64) (i64.load (local.get 0)))
  (func (export "load_far") (param i64) (result i64) (i64.load offset=0x100000008 (local.get 0)))
  (func (export "sum") (param $at i64) (param $n i64) (result i64) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.load8_u (local.get $at))))
      (local.set $at (i64.add (local.get $at) (i64.const 4096)))
      (br_if $l (i64.ne (local.tee $n (i64.sub (local.get $n) (i64.const 1))) (i64.const 0))))
    (local.get $acc))
)
"""

GIB = 1 << 30
BIG_CALLS = [
    ("grow", (5 * GIB // 65536,)), ("size", ()), ("store_far", (GIB // 2, 0x1122334455667788)),
    ("load", ((1 << 32) + GIB // 2,)), ("load_far", (GIB // 2 - 8,)), ("load", (5 * GIB - 8,)),
    ("load", (5 * GIB + 65536 - 8,)), ("load", (5 * GIB + 65536 - 7,)), ("store_far", (MASK64 - 8, 1)),
    ("load_far", (MASK64 - (1 << 32),)), ("sum", ((1 << 32) + GIB // 2 - 4096 * 3, 8)),
]


@pytest.mark.parametrize("backend", sorted({BACKEND, "cpu-interleaved"}))
@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_memory64_past_4_gib(tier: str, backend: str) -> None:
    """A 64-bit memory grown to 5 GiB per instance, written and read past 4 GiB through offsets past 32
    bits too (an offset and an address that pass 2^64 together are out of bounds, not wrapped)."""
    wasm = wasmtime.wat2wasm(BIG_WAT)
    config = wasmtime.Config()
    config.wasm_memory64 = True
    store = wasmtime.Store(wasmtime.Engine(config))
    ex = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), []).exports(store)
    batch = Engine(backend).load(wasm).instantiate(2, tier=tier)
    for name, args in BIG_CALLS:
        want = _outcome(lambda n=name, a=args: ex[n](store, *(x - (1 << 64) if x >> 63 else x for x in a)))
        res = batch.call(name, [args] * 2)
        got = [_table_trap(r.trap) if r.trap else (r.values[0] & MASK64 if r.values else None) for r in res]
        assert got == [want, want], (name, args)


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_c_program_past_4_gib(tier: str) -> None:
    """tests/corpus c_memory64 (C for wasm64, clang 22): grows its memory to 6 GiB and writes and reads a
    pattern spread over it, most of it past 4 GiB; its checksum as wasmtime's."""
    from pathlib import Path

    wasm = (Path(__file__).parent / "corpus" / "wasm" / "c_memory64.wasm").read_bytes()
    config = wasmtime.Config()
    config.wasm_memory64 = True
    store = wasmtime.Store(wasmtime.Engine(config))
    run = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), []).exports(store)["run"]
    args = [(6, 1000), (5, 77)]
    batch = Engine(BACKEND).load(wasm).instantiate(len(args), tier=tier)
    got = [r.values[0] & MASK64 for r in batch.call("run", args)]
    assert got == [run(store, *a) & MASK64 for a in args]
    assert all(g & 0xFFF > 0 for g in got)  # accesses past 4 GiB were made
