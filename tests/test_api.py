"""The public Python API: typed values, host functions written in Python, NumPy batches, compared with
wasmtime-py where it has the same thing; and README's examples, run as they are written."""

import math
import re
import struct

import numpy as np
import pytest
import wasmtime

import wasmgpu.runtime.engine as wg
from tests.conftest import REPO
from wasmgpu.errors import LinkError, ProcExit, Trap, Unsupported, WasmGpuError
from wasmgpu.runtime.api import REF_NULL, ValueTypeError
from wasmgpu.wasm.types import FuncType

NUMS = """(module
  (func (export "addf") (param f64 f64) (result f64) (f64.add (local.get 0) (local.get 1)))
  (func (export "divf") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
  (func (export "mul32") (param f32 f32) (result f32) (f32.mul (local.get 0) (local.get 1)))
  (func (export "id64") (param f64) (result f64) (local.get 0))
  (func (export "id32") (param f32) (result f32) (local.get 0))
  (func (export "bits") (param f64) (result i64) (i64.reinterpret_f64 (local.get 0)))
  (func (export "neg") (param i32) (result i32) (i32.sub (i32.const 0) (local.get 0)))
  (func (export "neg64") (param i64) (result i64) (i64.sub (i64.const 0) (local.get 0)))
  (func (export "mix") (param i32 i64 f32 f64) (result i64 f64 i32)
    (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1))
    (f64.add (f64.promote_f32 (local.get 2)) (local.get 3))
    (i32.shr_s (local.get 0) (i32.const 1))))"""

REFS = """(module
  (table $t 2 funcref) (elem declare func $seven)
  (func $seven (result i32) (i32.const 7))
  (func (export "keep") (param externref) (result externref) (local.get 0))
  (func (export "null") (param externref) (result i32) (ref.is_null (local.get 0)))
  (func (export "func") (result funcref) (ref.func $seven))
  (func (export "fnull") (param funcref) (result i32) (ref.is_null (local.get 0)))
  (func (export "call") (param funcref) (result i32)
    (table.set $t (i32.const 0) (local.get 0))
    (call_indirect (result i32) (i32.const 0))))"""

HOST = """(module
  (import "env" "scale" (func $scale (param i32 f64) (result f64)))
  (import "env" "pair" (func $pair (param i64) (result i64 f32)))
  (import "env" "log" (func $log (param i32)))
  (func (export "scaled") (param i32 f64) (result f64) (call $scale (local.get 0) (local.get 1)))
  (func (export "paired") (param i64) (result i64 f32) (call $pair (local.get 0)))
  (func (export "logged") (param i32) (result i32) (call $log (local.get 0)) (i32.mul (local.get 0) (i32.const 3))))"""


def module(engine, wat: str) -> wg.Module:
    return wg.Module(engine, wat)


def wt_exports(wat: str, linker_funcs: dict | None = None) -> tuple[wasmtime.Store, dict]:
    store = wasmtime.Store()
    linker = wasmtime.Linker(store.engine)
    for (mod, name), (ty, fn) in (linker_funcs or {}).items():
        linker.define_func(mod, name, ty, fn)
    inst = linker.instantiate(store, wasmtime.Module(store.engine, wat))
    return store, inst.exports(store)


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def same_float(a: float, b: float, bits=f64_bits) -> bool:
    return (math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)


def test_readme_python_api_examples_run(monkeypatch) -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 4 and any("define_wasi" in b for b in blocks)
    monkeypatch.chdir(REPO)  # the WASI example reads examples/... as a reader in the checkout would
    namespace: dict = {}
    for block in blocks:  # one namespace: later examples use the module of the first
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["res"].values[0][3] == 2.5
    assert namespace["cc"].wasi.closed and namespace["cc"].wasi.stdout(3) == b"Found 4 unique chars\n"


def test_floats_match_wasmtime(engine) -> None:
    nan_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF4000000000001))[0]
    pairs = [(1.0, 2.5), (-0.0, 0.0), (1e308, 1e308), (math.inf, -math.inf), (3, -7), (0.1, 0.2), (-1.5, 0.0)]
    batch = module(engine, NUMS).instantiate(len(pairs))
    store, ex = wt_exports(NUMS)
    for name in ("addf", "divf"):
        got = [r.unwrap()[0] for r in batch.call(name, pairs)]
        want = [ex[name](store, float(a), float(b)) for a, b in pairs]
        assert all(isinstance(g, float) for g in got)
        assert all(same_float(g, w) for g, w in zip(got, want, strict=True)), (name, got, want)
    got = [r.unwrap()[0] for r in batch.call("mul32", pairs)]
    want = [ex["mul32"](store, float(a), float(b)) for a, b in pairs]
    assert all(same_float(g, w, f32_bits) for g, w in zip(got, want, strict=True)), (got, want)
    # A NaN's payload goes through unchanged, in and out.
    ids = [(nan_payload,), (-0.0,), (math.inf,), (5e-324,), (1,), (2.0,), (-3.25,)]
    got = [r.unwrap()[0] for r in batch.call("id64", ids)]
    assert [f64_bits(g) for g in got] == [f64_bits(float(a)) for (a,) in ids]
    assert [r.unwrap()[0] for r in batch.call("bits", ids)][0] == 0x7FF4000000000001
    assert f64_bits(ex["id64"](store, nan_payload)) == 0x7FF4000000000001
    # Beyond f32's range is infinity, as wasmtime-py's f32 conversion.
    got = batch.call("id32", [(1e300,), (0.1,), (-1e-50,), (3,), (0.5,), (-2.0,), (math.nan,)])
    assert [f32_bits(r.values[0]) for r in got[:6]] == [f32_bits(ex["id32"](store, float(a)))
                                                       for a in (1e300, 0.1, -1e-50, 3, 0.5, -2.0)]
    assert math.isnan(got[6].values[0])


def test_negative_and_unsigned_ints_match_wasmtime(engine) -> None:
    i32s = [5, -5, 0, -(1 << 31), (1 << 31) - 1, 0xFFFFFFFF, 1 << 31]
    i64s = [5, -5, 0, -(1 << 63), (1 << 63) - 1, (1 << 64) - 1, 1 << 63]
    batch = module(engine, NUMS).instantiate(len(i32s))
    store, ex = wt_exports(NUMS)
    signed = [v - (1 << 32) if v >= 1 << 31 else v for v in i32s]
    assert [r.values for r in batch.call("neg", [(v,) for v in i32s])] == [(ex["neg"](store, v),) for v in signed]
    signed = [v - (1 << 64) if v >= 1 << 63 else v for v in i64s]
    assert [r.values for r in batch.call("neg64", [(v,) for v in i64s])] == [
        (ex["neg64"](store, v),) for v in signed]
    args = [(a, b, float(k) / 4, -float(k)) for k, (a, b) in enumerate(zip(i32s, signed, strict=True))]
    wargs = [(a - (1 << 32) if a >= 1 << 31 else a, b, c, d) for a, b, c, d in args]
    assert [r.values for r in batch.call("mix", args)] == [tuple(ex["mix"](store, *a)) for a in wargs]


def test_references(engine) -> None:
    batch = module(engine, REFS).instantiate(4)
    store, ex = wt_exports(REFS)
    externs = [(None,), (7,), (0,), ((1 << 64) - 2,)]
    assert [r.values for r in batch.call("keep", externs)] == [(ex["keep"](store, a),) for (a,) in externs]
    assert [r.values for r in batch.call("null", externs)] == [(ex["null"](store, a),) for (a,) in externs]
    funcs = [r.unwrap()[0] for r in batch.call("func")]
    assert all(isinstance(f, int) for f in funcs) and ex["func"](store) is not None
    assert [r.values for r in batch.call("fnull", [(funcs[0],), (None,), (funcs[2],), (None,)])] == [
        (0,), (1,), (0,), (1,)]
    # A function reference from one call is callable in the next.
    assert [r.values or r.trap for r in batch.call("call", [(f,) for f in funcs[:3]] + [(None,)])] == [
        (7,), (7,), (7,), "uninitialized element"]
    with pytest.raises(TypeError, match=r"argument 0 of `keep` for instance 0 \(externref\): expected None or"):
        batch.call("keep", [("x",)] * 4)


def host_defs(seen: list) -> dict:
    """The same three host functions for wasmgpu and wasmtime (`seen` records the log calls)."""
    i32, i64, f32, f64 = (wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.f32(),
                          wasmtime.ValType.f64())

    def scale(k: int, x: float) -> float:
        if k < 0:
            raise ValueError(f"negative scale {k}")
        return k * x

    def pair(v: int) -> tuple[int, float]:
        return (v * 2, v / 2)

    return {("env", "scale"): (wasmtime.FuncType([i32, f64], [f64]), scale),
            ("env", "pair"): (wasmtime.FuncType([i64], [i64, f32]), pair),
            ("env", "log"): (wasmtime.FuncType([i32], []), seen.append)}


def test_host_functions_in_python_match_wasmtime(engine) -> None:
    seen_gpu: list = []
    seen_wt: list = []
    defs = host_defs(seen_gpu)
    args = [(3, 0.5), (0, 1.0), (7, -2.25), (1, 1e300)]
    store, ex = wt_exports(HOST, host_defs(seen_wt))
    # Every form of import: a bare callable typed by the module, a (wasmtime.FuncType, callable) pair, a HostFunc.
    imports = {("env", "scale"): defs[("env", "scale")][1], ("env", "pair"): defs[("env", "pair")],
               ("env", "log"): wg.HostFunc(seen_gpu.append, (["i32"], []))}
    batch = module(engine, HOST).instantiate(len(args), imports=imports)
    assert [r.values for r in batch.call("scaled", args)] == [(ex["scaled"](store, *a),) for a in args]
    i64s = [(-3,), (1 << 40,), (0,), (-(1 << 62),)]
    assert [r.values for r in batch.call("paired", i64s)] == [tuple(ex["paired"](store, *a)) for a in i64s]
    assert [r.values for r in batch.call("logged", [(-1,), (2,), (3,), (4,)])] == [
        (ex["logged"](store, a),) for a in (-1, 2, 3, 4)]
    assert sorted(seen_gpu) == sorted(seen_wt) == [-1, 2, 3, 4]


def test_linker_and_the_instance_index(engine) -> None:
    linker = wg.Linker(engine)
    calls: list = []

    def scale(i: int, k: int, x: float) -> float:
        calls.append(i)
        return i * 100 + k * x

    linker.define_func("env", "scale", (["i32", "f64"], ["f64"]), scale, access_instance=True)
    linker.define_func("env", "pair", FuncType((0x7E,), (0x7E, 0x7D)), lambda v: (v, 0.5))
    linker.define_func("env", "log", wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda v: None)
    linker.define_func("env", "unused", (["i32"], []), lambda v: None)  # not imported: left out
    mod = module(engine, HOST)
    batch = linker.instantiate(mod, 5)
    assert [r.values for r in batch.call("scaled", [(2, 0.5)] * 5)] == [(i * 100 + 1.0,) for i in range(5)]
    assert sorted(calls) == list(range(5))
    assert batch.call("paired", [(-9,)] * 5)[4].values == (-9, 0.5)
    # The same linker again: a second batch in a store of its own.
    assert linker.instantiate(mod, 2).call("logged", [(4,), (5,)])[1].values == (15,)


def test_host_exceptions_trap_only_their_instance(engine) -> None:
    seen: list = []
    defs = host_defs(seen)
    store, ex = wt_exports(HOST, host_defs([]))
    with pytest.raises(ValueError, match="negative scale -1"):  # wasmtime-py re-raises it from the call
        ex["scaled"](store, -1, 1.0)
    batch = module(engine, HOST).instantiate(6, imports=dict(defs))
    args = [(1, 1.0), (-1, 1.0), (2, 1.0), (-7, 2.0), (3, 1.0), (4, 1.0)]
    results = batch.call("scaled", args)
    assert [r.values for r in results] == [(1.0,), None, (2.0,), None, (3.0,), (4.0,)]
    assert results[1].trap == "host function raised: ValueError: negative scale -1"
    assert results[3].trap == "host function raised: ValueError: negative scale -7"
    assert results[1].backtrace and "function" in results[1].backtrace[0]
    with pytest.raises(Trap, match="host function raised: ValueError"):
        results[3].unwrap()
    res = batch.call("scaled", [np.array([a for a, _ in args], dtype=np.int32), np.ones(6)])
    assert res.trapped.tolist() == [False, True, False, True, False, False]
    assert set(res.traps) == set(res.backtraces) == {1, 3}
    assert res.values[0].tolist() == [1.0, 0.0, 2.0, 0.0, 3.0, 4.0]


def test_host_results_of_the_wrong_type_trap_and_exits_end_the_instance(engine) -> None:
    def scale(k: int, x: float) -> object:
        if k == 9:
            raise ProcExit(k)
        if k == 8:
            raise Trap("custom trap")
        return "text" if k else None

    imports = {("env", "scale"): scale, ("env", "pair"): lambda v: (v, 0.0), ("env", "log"): lambda v: None}
    results = module(engine, HOST).instantiate(4, imports=imports).call("scaled", [(1, 0.0), (0, 0.0), (9, 0.0),
                                                                                  (8, 0.0)])
    assert results[0].trap == ("host function raised: ValueTypeError: result 0 of host function `env::scale` "
                               "(f64): expected a float, got str 'text'")
    assert results[1].trap == ("host function raised: ValueTypeError: result 0 of host function `env::scale` "
                               "(f64): expected a float, got NoneType None")
    assert results[2].exit_code == 9 and results[3].trap == "custom trap"


def test_numpy_batches(engine) -> None:
    n = 1000
    batch = module(engine, NUMS).instantiate(n)
    a = np.arange(n, dtype=np.int64) - 500
    res = batch.call("mix", [a.astype(np.int32), a * (1 << 40), (a / 8).astype(np.float32), a * 0.25])
    assert [v.dtype for v in res.values] == [np.int64, np.float64, np.int32]
    assert len(res) == n and not res.trapped.any() and res.traps == {} and res.ok.all()
    typed = batch.call("mix", [(int(x), int(x) << 40, float(x) / 8, float(x) * 0.25) for x in a])
    assert [tuple(v[i].item() for v in res.values) for i in range(n)] == [r.values for r in typed]
    store, ex = wt_exports(NUMS)
    for i in (0, 1, 499, 500, 999):
        assert tuple(v[i].item() for v in res.values) == tuple(ex["mix"](store, int(a[i]), int(a[i]) << 40,
                                                                         float(a[i]) / 8, float(a[i]) * 0.25))
    # One [N, params] array; f32 results as float32, NaN payloads intact from float32 input bits.
    pairs = np.stack([np.linspace(-4, 4, n), np.full(n, 0.5)], axis=1)
    res = batch.call("mul32", pairs.astype(np.float32))
    assert res.values[0].dtype == np.float32 and res.values[0][0] == -2.0
    nan_bits = np.full(n, 0x7FA00001, dtype=np.uint32)
    res = batch.call("id32", [nan_bits.view(np.float32)])
    assert (res.values[0].view(np.uint32) == 0x7FE00001).all() or (res.values[0].view(np.uint32) == 0x7FA00001).all()
    # Unsigned i32 arrays wrap to signed results, as tuples do.
    res = batch.call("neg", [np.full(n, 5, dtype=np.uint32)])
    assert res.values[0].dtype == np.int32 and (res.values[0] == -5).all()


def test_numpy_traps_and_references(engine) -> None:
    wat = """(module (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
      (func (export "keep") (param externref) (result externref) (local.get 0)))"""
    n = 64
    batch = module(engine, wat).instantiate(n)
    b = np.arange(n) % 4
    res = batch.call("div", [np.full(n, 12), b])
    assert res.trapped.tolist() == (b == 0).tolist()
    assert res.traps == {i: "integer divide by zero" for i in range(0, n, 4)}
    assert res.values[0].tolist() == [0 if k == 0 else 12 // k for k in b]
    refs = np.arange(n, dtype=np.uint64)
    refs[::2] = REF_NULL
    res = batch.call("keep", [refs])
    assert res.values[0].dtype == np.uint64 and (res.values[0] == refs).all()


def test_bad_arguments_say_which_and_why(engine) -> None:
    batch = module(engine, NUMS).instantiate(3)
    cases = [
        ("neg", [(1,), ("5",), (2,)], r"argument 0 of `neg` for instance 1 \(i32\): expected an int, got str '5'"),
        ("neg", [(1,), (2,), (1 << 32,)], r"argument 0 of `neg` for instance 2 \(i32\): 4294967296 is out of range"),
        ("neg64", [(1,), (-(1 << 63) - 1,), (0,)], r"argument 0 of `neg64` for instance 1 \(i64\): .* out of range"),
        ("neg", [(1.5,), (1,), (2,)], r"argument 0 of `neg` for instance 0 \(i32\): expected an int, got float"),
        ("addf", [(1.0, "x")] * 3, r"argument 1 of `addf` for instance 0 \(f64\): expected a float, got str"),
        ("addf", [(1.0,)] * 3, r"`addf` takes 2 arguments; instance 0 got \(1.0,\)"),
    ]
    for name, args, message in cases:
        with pytest.raises(TypeError, match=message):
            batch.call(name, args)
    with pytest.raises(WasmGpuError, match="expected 3 argument tuples, got 2"):
        batch.call("neg", [(1,), (2,)])
    with pytest.raises(ValueTypeError, match=r"argument 0 for instance 0 \(i32\): 4294967296 is out of range"):
        batch.call("neg", [np.full(3, 1 << 32)])
    with pytest.raises(ValueTypeError, match=r"argument 0: expected 3 values, got shape \(2,\)"):
        batch.call("neg", [np.ones(2, dtype=np.int32)])
    with pytest.raises(ValueTypeError, match=r"expected an array of shape \(3, 2\)"):
        batch.call("addf", np.ones((3, 3)))


def test_raw_calls_keep_slot_patterns(engine) -> None:
    batch = engine.load(wasmtime.wat2wasm(NUMS)).instantiate(2)
    assert [r.values for r in batch.call("neg", [(5,), (-5,)])] == [(0xFFFFFFFB,), (5,)]
    assert batch.call("id64", [(f64_bits(2.5),)] * 2)[0].values == (f64_bits(2.5),)
    with pytest.raises(TypeError, match=r"argument 0 of `addf` for instance 0: a raw call takes 64-bit patterns"):
        batch.call("addf", [(1.0, 2.5)] * 2)
    with pytest.raises(TypeError, match="got str '5'"):
        batch.call("neg", [("5",)] * 2)
    assert batch.call("addf", [(1.0, 2.5)] * 2, typed=True)[1].values == (3.5,)
    # NumPy arguments are typed on either kind of batch.
    assert batch.call("neg", [np.array([5, -5])]).values[0].tolist() == [-5, 5]


def test_imports_that_cannot_link(engine) -> None:
    mod = module(engine, HOST)
    other = engine.store(1).host_func(FuncType((0x7F, 0x7C), (0x7C,)), lambda i, a: (a[1],))
    base = {("env", "pair"): lambda v: (v, 0.0), ("env", "log"): lambda v: None}
    with pytest.raises(LinkError, match=r"import `env::scale` is an object of another store; pass a Python"):
        mod.instantiate(1, imports={**base, ("env", "scale"): other})
    with pytest.raises(LinkError, match=r"import `env::scale`: expected an extern, a HostFunc or a callable"):
        mod.instantiate(1, imports={**base, ("env", "scale"): 5})
    with pytest.raises(LinkError, match="function types differ"):
        mod.instantiate(1, imports={**base, ("env", "scale"): ((["i32"], ["i32"]), lambda k: k)})
    mem = module(engine, '(module (import "env" "m" (memory 1)))')
    with pytest.raises(LinkError, match=r"import `env::m` is a memory, not a function"):
        mem.instantiate(1, imports={("env", "m"): lambda: None})


def test_v128_values_are_128_bit_ints_at_the_api() -> None:
    """A v128 argument, result and host-function value is an int of 128 bits (the 16 bytes little-endian);
    NumPy arrays of them are refused by name."""
    wat = """(module
      (import "h" "twice" (func $twice (param v128) (result v128)))
      (func (export "f") (param v128 i32) (result i32 v128)
        (local.get 1) (call $twice (i32x4.add (local.get 0) (i32x4.splat (local.get 1))))))"""
    batch = wg.Engine("cpu").load(wasmtime.wat2wasm(wat)).instantiate(
        2, imports={("h", "twice"): lambda v: (v * 2) & ((1 << 128) - 1)})
    lanes = sum(x << (32 * k) for k, x in enumerate((12, 10, 10, 10)))
    assert [r.values for r in batch.call("f", [(1, 5), (-1, 1)])] == [(5, lanes), (1, 0)]
    with pytest.raises(ValueTypeError, match=r"v128\): 340282366920938463463374607431768211456 is out of range"):
        batch.call("f", [(1 << 128, 0), (0, 0)])
    with pytest.raises(Unsupported, match="v128 values in NumPy arrays"):
        batch.call_arrays(batch.instance.exports["f"], None)
