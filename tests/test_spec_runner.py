"""Tests of the .wast runner: S-expressions, constants, the runner logic, the CLI.

The runner logic is tested against a small fake engine built on wasmtime (the
PyPI package), which speaks the wasmgpu engine API, so these tests do not
depend on wasmgpu's own execution engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import struct
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import wasmtime

from wasmgpu.errors import DecodeError, InstantiationTrap, LinkError, Unsupported, ValidationError
from wasmgpu.spec import runner
from wasmgpu.spec.runner import NO_ENGINE, TEXT_MODULE, Toolchain, trap_matches
from wasmgpu.spec.sexpr import SExprError, SList, parse, unescape
from wasmgpu.spec.values import (
    REF_NULL,
    Either,
    Exact,
    NanPattern,
    RefNonNull,
    RefNull,
    ScriptError,
    V128Pattern,
    parse_const,
    parse_expected,
    parse_float,
    parse_int,
    parse_v128,
)
from wasmgpu.wasm.opcodes import EXTERN_HT, EXTERNREF, F32_T, F64_T, FUNCREF, I32_T, I64_T, V128_T, ref_type
from wasmgpu.wasm.types import FuncType, GlobalType

# --- S-expressions -------------------------------------------------------------------


def test_sexpr_atoms_strings_lists_and_spans() -> None:
    text = '(module $m (func (export "f")))\n(assert_return (invoke "f") (i32.const -1))'
    doc = parse(text)
    assert len(doc.items) == 2
    mod, ar = doc.items
    assert isinstance(mod, SList) and mod.head() == "module"
    assert mod[1] == "$m"
    assert mod[2] == ["func", ["export", b"f"]]
    assert doc.source(mod) == '(module $m (func (export "f")))'
    assert doc.source(mod[2]) == '(func (export "f"))'
    assert ar[1] == ["invoke", b"f"] and ar[2] == ["i32.const", "-1"]
    assert doc.line_of(mod.start) == 1 and doc.line_of(ar.start) == 2


def test_sexpr_comments() -> None:
    text = """;; a line comment (with parens
    (a (; block (; nested ;) still comment ) ;) b) ;; trailing
    (; top level
       block ;)
    (c "str ;; not a comment" "(; nor this ;)")"""
    doc = parse(text)
    assert doc.items == [["a", "b"], ["c", b"str ;; not a comment", b"(; nor this ;)"]]
    assert doc.line_of(doc.items[0].start) == 2
    assert doc.line_of(doc.items[1].start) == 5


def test_sexpr_string_escapes() -> None:
    assert unescape(r"a\nb\tc\\d\'e\"f") == b"a\nb\tc\\d'e\"f"
    assert unescape(r"\00\ff\7A") == b"\x00\xff\x7a"
    assert unescape(r"\u{41}\u{e9}\u{1F600}\u{1_0000}") == "Aé😀\U00010000".encode()
    assert unescape("é") == "é".encode()
    doc = parse(r'(module binary "\00asm" "\01\00\00\00")')
    assert b"".join(doc.items[0][2:]) == b"\x00asm\x01\x00\x00\x00"
    with pytest.raises(ValueError):
        unescape(r"\q")
    with pytest.raises(ValueError):
        unescape(r"\u{d800}")


@pytest.mark.parametrize(
    "text, line",
    [("(a\n(b)", 1), ("(a))", 1), ('(a\n "unterminated)', 2), ("(a (; never closed", 1), ('(a "\\q")', 1)],
)
def test_sexpr_errors(text: str, line: int) -> None:
    with pytest.raises(SExprError) as info:
        parse(text)
    assert info.value.line == line


# --- constants ----------------------------------------------------------------------------


def test_parse_int() -> None:
    assert parse_int("0", 32) == 0
    assert parse_int("-1", 32) == 0xFFFFFFFF
    assert parse_int("0xffff_ffff", 32) == 0xFFFFFFFF
    assert parse_int("-0x8000_0000", 32) == 0x80000000
    assert parse_int("+42", 32) == 42
    assert parse_int("1_000_000", 64) == 1000000
    assert parse_int("-9223372036854775808", 64) == 1 << 63
    assert parse_int("18446744073709551615", 64) == 2**64 - 1
    for bad in ["4294967296", "-2147483649", "1__0", "_1", "0x", "1.0", "x"]:
        with pytest.raises(ScriptError):
            parse_int(bad, 32)


def f32(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


@pytest.mark.parametrize(
    "text, bits",
    [
        ("0", 0),
        ("-0", 0x80000000),
        ("-0.0", 0x80000000),
        ("1", 0x3F800000),
        ("1.", 0x3F800000),
        ("1.5e1", f32(15.0)),
        ("1_000.5", f32(1000.5)),
        ("0x1.8p3", f32(12.0)),
        ("0x1.p3", f32(8.0)),
        ("0x10", f32(16.0)),
        ("-0x1p-1", f32(-0.5)),
        ("0x1_0p1_0", f32(16.0 * 1024)),
        ("inf", 0x7F800000),
        ("-inf", 0xFF800000),
        ("nan", 0x7FC00000),
        ("-nan", 0xFFC00000),
        ("+nan", 0x7FC00000),
        ("nan:0x1", 0x7F800001),
        ("nan:0x7f_ffff", 0x7FFFFFFF),
        ("-nan:0x200000", 0xFFA00000),
        # Subnormals and their rounding: the smallest is 2**-149.
        ("0x1p-149", 0x00000001),
        ("0x1p-150", 0x00000000),  # exactly half the smallest: ties to even (0)
        ("0x1.000002p-150", 0x00000001),  # just above half
        ("0x1.8p-149", 0x00000002),  # 1.5 units: tie, rounds to even (2)
        ("0x1.4p-149", 0x00000001),
        ("0x1p-126", 0x00800000),  # smallest normal
        ("0x0.fffffep-126", 0x007FFFFF),  # largest subnormal
        ("0x0.ffffffp-126", 0x00800000),  # rounds up into the normal range
        ("1e-50", 0),
        # Ties in the normal range.
        ("16777217", 0x4B800000),  # 2**24 + 1: tie, to even
        ("16777219", 0x4B800002),  # 2**24 + 3: tie, to even (up)
        ("0x1.000001p0", 0x3F800000),
        ("0x1.000003p0", 0x3F800002),
        # Exactly 1 + 2**-24 (a tie) and a hair above it. A parse through f64 would
        # round the second to the tie first and then to 1.0: double rounding.
        ("1.000000059604644775390625", 0x3F800000),
        ("1.000000059604644775390625001", 0x3F800001),
        # The top of the range: below the overflow midpoint rounds to the max.
        ("0x1.fffffep127", 0x7F7FFFFF),
        ("0x1.fffffefffffffffffp127", 0x7F7FFFFF),
        ("3.4028234e38", 0x7F7FFFFF),
        ("666.6", 0x4426A666),
    ],
)
def test_parse_f32(text: str, bits: int) -> None:
    assert parse_float(text, 32) == bits


@pytest.mark.parametrize(
    "text, bits",
    [
        ("-0", 1 << 63),
        ("0x1p-1074", 1),
        ("0x1p-1075", 0),
        ("0x1.8p-1074", 2),
        ("0x1.fffffffffffffp1023", 0x7FEFFFFFFFFFFFFF),
        ("0x1.fffffffffffff7ffp1023", 0x7FEFFFFFFFFFFFFF),
        ("nan", 0x7FF8000000000000),
        ("-nan", 0xFFF8000000000000),
        ("nan:0x1", 0x7FF0000000000001),
        ("nan:0xf_ffff_ffff_ffff", 0x7FFFFFFFFFFFFFFF),
        ("inf", 0x7FF0000000000000),
        ("1e-400", 0),
        ("0.1", f64(0.1)),
        ("666.6", f64(666.6)),
    ],
)
def test_parse_f64(text: str, bits: int) -> None:
    assert parse_float(text, 64) == bits


@pytest.mark.parametrize(
    "text, width",
    [
        ("0x1p128", 32),
        ("0x1.ffffffp127", 32),  # the overflow midpoint ties to even: infinity
        ("1e39", 32),
        ("1e309", 64),
        ("0x1p1024", 64),
        ("nan:0x0", 32),
        ("nan:0x800000", 32),
        ("nan:0x10000000000000", 64),
        ("1e", 32),
        ("0x1p", 32),
        (".5", 32),
        ("1__0", 32),
        ("infinity", 32),
    ],
)
def test_parse_float_errors(text: str, width: int) -> None:
    with pytest.raises(ScriptError):
        parse_float(text, width)


def test_parse_float_agrees_with_correct_rounding() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        # f64: Python's float() is correctly rounded.
        s = f"{rng.randint(1, 10**rng.randint(1, 22))}e{rng.randint(-330, 300)}"
        x = float(s)
        if x != float("inf"):
            assert parse_float(s, 64) == f64(x), s
            assert parse_float(x.hex(), 64) == f64(x)
        # f32: check nearest, ties to even, against the exact rational.
        s = f"{rng.randint(1, 10**rng.randint(1, 12))}e{rng.randint(-50, 30)}"
        exact = Fraction(s)
        if exact >= 2**128 - 2**103:
            continue
        b = parse_float(s, 32)

        def value(bits: int) -> Fraction:
            return Fraction(struct.unpack("<f", struct.pack("<I", bits))[0])

        d = abs(value(b) - exact)
        assert b == 0 or d <= abs(value(b - 1) - exact), s
        if b < 0x7F7FFFFF:
            up = abs(value(b + 1) - exact)
            assert d < up or (d == up and b % 2 == 0), s


def node(text: str) -> Any:
    return parse(text).items[0]


def test_parse_const() -> None:
    v = parse_const(node("(i32.const -1)"))
    assert (v.type, v.bits) == (I32_T, 0xFFFFFFFF)
    assert parse_const(node("(i64.const -1)")).bits == 2**64 - 1
    assert parse_const(node("(f32.const -0x1p0)")).bits == 0xBF800000
    assert parse_const(node("(f64.const 1)")).bits == 0x3FF0000000000000
    assert parse_const(node("(ref.null func)")) == parse_const(node("(ref.null func)"))
    assert (parse_const(node("(ref.null extern)")).type, parse_const(node("(ref.null extern)")).bits) == (
        EXTERNREF,
        REF_NULL,
    )
    assert parse_const(node("(ref.extern 3)")).bits == 3
    v128 = parse_const(node("(v128.const i32x4 1 2 3 -1)"))
    assert v128.type == V128_T
    assert v128.bits.to_bytes(16, "little") == bytes.fromhex("010000000200000003000000ffffffff")
    for bad in ["(i32.const)", "(i32.const 1 2)", "(f32.const nan:canonical)", "(ref.null bogus)", "(foo 1)"]:
        with pytest.raises(ScriptError):
            parse_const(node(bad))
    with pytest.raises(Unsupported, match="GC proposal's heap type any"):  # counted as a skip, not a failure
        parse_const(node("(ref.null any)"))


def test_parse_v128_shapes() -> None:
    assert parse_v128("i8x16", ["0xff"] + ["0"] * 15) == b"\xff" + bytes(15)
    assert parse_v128("i16x8", ["-1", "2", "0", "0", "0", "0", "0", "0x1234"])[:4] == b"\xff\xff\x02\x00"
    assert parse_v128("i64x2", ["1", "-1"]) == (1).to_bytes(8, "little") + b"\xff" * 8
    assert parse_v128("f32x4", ["1", "-0", "inf", "nan"]) == struct.pack("<IIII", 0x3F800000, 0x80000000,
                                                                           0x7F800000, 0x7FC00000)
    assert parse_v128("f64x2", ["0x1p-1074", "1"]) == struct.pack("<QQ", 1, 0x3FF0000000000000)
    with pytest.raises(ScriptError):
        parse_v128("i32x4", ["1", "2"])
    with pytest.raises(ScriptError):
        parse_v128("i32x3", ["1", "2", "3"])


def test_result_patterns() -> None:
    canon32 = parse_expected(node("(f32.const nan:canonical)"))
    arith32 = parse_expected(node("(f32.const nan:arithmetic)"))
    assert canon32 == NanPattern(F32_T, False) and arith32 == NanPattern(F32_T, True)
    assert canon32.matches(0x7FC00000) and canon32.matches(0xFFC00000)
    assert not canon32.matches(0x7FC00001) and not canon32.matches(0x7F800000)
    assert arith32.matches(0x7FC00000) and arith32.matches(0xFFFFFFFF) and arith32.matches(0x7FC00001)
    assert not arith32.matches(0x7FA00000)  # signalling
    assert not arith32.matches(0x7F800000)  # infinity
    canon64 = parse_expected(node("(f64.const nan:canonical)"))
    arith64 = parse_expected(node("(f64.const nan:arithmetic)"))
    assert canon64.matches(0xFFF8000000000000) and not canon64.matches(0x7FF8000000000001)
    assert arith64.matches(0x7FF8000000000001) and not arith64.matches(0x7FF4000000000000)
    exact = parse_expected(node("(f32.const -0)"))
    assert exact == Exact(F32_T, 0x80000000) and not exact.matches(0)
    assert parse_expected(node("(f32.const nan:0x200000)")).matches(0x7FA00000)  # payload compared bitwise
    assert parse_expected(node("(ref.null func)")) == RefNull(FUNCREF)
    assert parse_expected(node("(ref.func)")) == RefNonNull(FUNCREF)
    assert parse_expected(node("(ref.func $f)")).matches(5) and not parse_expected(node("(ref.func)")).matches(REF_NULL)
    assert parse_expected(node("(ref.extern)")) == RefNonNull(EXTERNREF)
    assert parse_expected(node("(ref.extern 2)")) == Exact(ref_type(False, EXTERN_HT), 2)  # non-null: (ref extern)
    either = parse_expected(node("(either (i32.const 1) (i32.const 2))"))
    assert isinstance(either, Either) and either.matches(2) and not either.matches(3)
    lanes = parse_expected(node("(v128.const f32x4 nan:canonical 1 nan:arithmetic -0)"))
    assert isinstance(lanes, V128Pattern) and lanes.is_v128
    raw = int.from_bytes(struct.pack("<IIII", 0xFFC00000, 0x3F800000, 0x7FC00001, 0x80000000), "little")
    assert lanes.matches(raw)
    raw_bad = int.from_bytes(struct.pack("<IIII", 0x7FC00001, 0x3F800000, 0x7FC00001, 0x80000000), "little")
    assert not lanes.matches(raw_bad)
    assert parse_expected(node("(v128.const i16x8 1 2 3 4 5 6 7 -1)")).matches(
        int.from_bytes(struct.pack("<8H", 1, 2, 3, 4, 5, 6, 7, 0xFFFF), "little")
    )


def test_trap_matches() -> None:
    assert trap_matches("integer divide by zero", "integer divide by zero")
    assert trap_matches("out of bounds memory access", "out of bounds")  # ours says more
    assert trap_matches("undefined", "undefined element")  # ours says less
    assert not trap_matches("integer overflow", "integer divide by zero")
    assert not trap_matches("", "unreachable")


# --- a fake engine over wasmtime ------------------------------------------------------

_VT = {"i32": I32_T, "i64": I64_T, "f32": F32_T, "f64": F64_T, "funcref": FUNCREF, "externref": EXTERNREF,
       "anyref": EXTERNREF}  # wasmtime-py names externref "anyref"
_WT = {I32_T: wasmtime.ValType.i32, I64_T: wasmtime.ValType.i64, F32_T: wasmtime.ValType.f32,
       F64_T: wasmtime.ValType.f64, FUNCREF: wasmtime.ValType.funcref, EXTERNREF: wasmtime.ValType.externref}
_TRAPS = {
    wasmtime.TrapCode.STACK_OVERFLOW: "call stack exhausted",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized element",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.UNREACHABLE: "unreachable",
}


def _to_wt(t: int, raw: int) -> Any:
    if t == I32_T:
        return raw - (1 << 32) if raw >= 1 << 31 else raw
    if t == I64_T:
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if t == F32_T:
        return wasmtime.Val.f32(struct.unpack("<f", struct.pack("<I", raw))[0])
    if t == F64_T:
        return wasmtime.Val.f64(struct.unpack("<d", struct.pack("<Q", raw))[0])
    if t == EXTERNREF:
        return None if raw == REF_NULL else wasmtime.Val.externref(raw)
    return None  # funcref arguments: only null in these tests


def _from_wt(t: int, v: Any) -> int:
    if t in (I32_T, I64_T):
        return v & ((1 << (32 if t == I32_T else 64)) - 1)
    if t == F32_T:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    if t == F64_T:
        return struct.unpack("<Q", struct.pack("<d", v))[0]
    if v is None:
        return REF_NULL
    return v if t == EXTERNREF else 1  # any non-null funcref


@dataclass
class FakeCallResult:
    values: tuple[int, ...] | None
    trap: str | None


@dataclass
class FakeExtern:
    type: Any
    items: list[Any]  # the wasmtime object of each instance


class FakeStore:
    def __init__(self, engine: FakeEngine, n: int) -> None:
        self.engine, self.n = engine, n
        self.wt = wasmtime.Store(engine.wt)

    def instantiate(self, module: Any, imports: dict[tuple[str, str], FakeExtern]) -> Any:
        # ``module`` is what the engine's load() returned, .module: the decoded module.
        exports: dict[str, FakeExtern] = {}
        for i in range(self.n):
            items = []
            for imp in module.wt.imports:
                if (imp.module, imp.name) not in imports:
                    raise LinkError(f"unknown import {imp.module}.{imp.name}")
                items.append(imports[(imp.module, imp.name)].items[i])
            try:
                inst = wasmtime.Instance(self.wt, module.wt, items)
            except wasmtime.Trap as e:
                raise InstantiationTrap(_TRAPS.get(e.trap_code, "unknown trap")) from None
            except wasmtime.WasmtimeError as e:
                raise LinkError(str(e)) from None
            ex = inst.exports(self.wt)
            for et in module.wt.exports:
                item = ex[et.name]
                if et.name not in exports:
                    exports[et.name] = FakeExtern(self._type(item), [])
                exports[et.name].items.append(item)
        return SimpleNamespace(exports=exports)

    def _type(self, item: Any) -> Any:
        if isinstance(item, wasmtime.Func):
            ft = item.type(self.wt)
            return FuncType(tuple(_VT[str(p)] for p in ft.params), tuple(_VT[str(r)] for r in ft.results))
        if isinstance(item, wasmtime.Global):
            gt = item.type(self.wt)
            return GlobalType(_VT[str(gt.content)], gt.mutable)
        return object()

    def call(self, ext: FakeExtern, args: list[tuple[int, ...]]) -> list[FakeCallResult]:
        ft = ext.type
        out = []
        for i, (func, a) in enumerate(zip(ext.items, args, strict=True)):
            try:
                r = func(self.wt, *[_to_wt(t, v) for t, v in zip(ft.params, a, strict=True)])
            except wasmtime.Trap as e:
                out.append(FakeCallResult(None, _TRAPS.get(e.trap_code, "unknown trap")))
                continue
            rs = [] if r is None and not ft.results else (r if len(ft.results) > 1 else [r])
            values = tuple(_from_wt(t, v) for t, v in zip(ft.results, rs, strict=True))
            if i == self.engine.skew_instance and values:  # simulate a per-instance bug
                values = (values[0] ^ 1,) + values[1:]
            out.append(FakeCallResult(values, None))
        return out

    def global_value(self, ext: FakeExtern) -> list[int]:
        return [_from_wt(ext.type.valtype, g.value(self.wt)) for g in ext.items]

    def host_func(self, ft: FuncType, callback: Any) -> FakeExtern:
        wft = wasmtime.FuncType([_WT[t]() for t in ft.params], [_WT[t]() for t in ft.results])
        items = []
        for i in range(self.n):
            def f(*args: Any, i: int = i) -> Any:
                self.engine.host_calls.append((i, args))
                callback(i, tuple(_from_wt(t, v) for t, v in zip(ft.params, args, strict=True)))

            items.append(wasmtime.Func(self.wt, wft, f))
        return FakeExtern(ft, items)

    def host_global(self, gt: GlobalType, value: int) -> FakeExtern:
        wgt = wasmtime.GlobalType(_WT[gt.valtype](), gt.mutable)
        val = _to_wt(gt.valtype, value)
        if gt.valtype == I32_T:
            val = wasmtime.Val.i32(val)
        elif gt.valtype == I64_T:
            val = wasmtime.Val.i64(val)
        return FakeExtern(gt, [wasmtime.Global(self.wt, wgt, val) for _ in range(self.n)])

    def host_table(self, tt: Any) -> FakeExtern:
        wtt = wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(tt.limits.min, tt.limits.max))
        return FakeExtern(tt, [wasmtime.Table(self.wt, wtt, None) for _ in range(self.n)])

    def host_memory(self, mt: Any) -> FakeExtern:
        wmt = wasmtime.MemoryType(wasmtime.Limits(mt.limits.min, mt.limits.max))
        return FakeExtern(mt, [wasmtime.Memory(self.wt, wmt) for _ in range(self.n)])


class FakeEngine:
    """The wasmgpu engine API, implemented with wasmtime."""

    def __init__(self, unsupported: bytes | None = None, skew_instance: int | None = None) -> None:
        self.wt = wasmtime.Engine()
        self.unsupported = unsupported  # modules containing these bytes raise Unsupported
        self.skew_instance = skew_instance
        self.host_calls: list[tuple[int, tuple[Any, ...]]] = []
        self.stores: list[FakeStore] = []

    def load(self, wasm: bytes, features: Any = None) -> Any:
        if self.unsupported is not None and self.unsupported in wasm:
            raise Unsupported("SIMD (v128) instructions")
        try:
            m = wasmtime.Module(self.wt, wasm)
        except wasmtime.WasmtimeError as e:
            raise ValidationError(str(e)) from None
        imports = [SimpleNamespace(module=i.module, name=i.name) for i in m.imports]
        return SimpleNamespace(module=SimpleNamespace(imports=imports, wt=m))

    def store(self, n: int, tier: str | None = None) -> FakeStore:
        s = FakeStore(self, n)
        self.stores.append(s)
        return s


def stub_decode(wasm: bytes, features: Any = None) -> bytes:
    if not wasm.startswith(b"\0asm\1\0\0\0"):
        raise DecodeError("magic header not detected", 0)
    return wasm


def stub_validate(wasm: bytes, features: Any = None) -> None:
    try:
        wasmtime.Module.validate(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as e:
        raise ValidationError(str(e).splitlines()[0]) from None


def fake_tools(**kw: Any) -> Toolchain:
    return Toolchain(engine=FakeEngine(**kw), decode=stub_decode, validate=stub_validate)


def run_text(tmp_path: Path, text: str, tools: Toolchain | None = None, instances: int = 1) -> runner.FileResult:
    path = tmp_path / "t.wast"
    path.write_text(text)
    return runner.run_file(str(path), tools or fake_tools(), instances)


def statuses(result: runner.FileResult) -> list[tuple[str, str]]:
    return [(o.kind, o.status) for o in result.outcomes]


BASIC = r"""
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
  (func (export "f32nan") (result f32) (f32.div (f32.const 0) (f32.const 0)))
  (func (export "f64nan") (result f64) (f64.const nan:0xc000000000000))
  (func (export "neg0") (result f32) (f32.const -0))
  (func (export "two") (result i32 i64) (i32.const -1) (i64.const -2))
  (func $r (export "rec") (call $r))
  (func (export "null") (result externref) (ref.null extern))
  (func (export "id") (param externref) (result externref) (local.get 0))
  (global (export "g") i32 (i32.const 42))
)
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "add" (i32.const 0xffff_ffff) (i32.const 1)) (i32.const 0))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4))
(assert_return (invoke "f32nan") (f32.const nan:canonical))
(assert_return (invoke "f32nan") (f32.const nan:arithmetic))
(assert_return (invoke "f64nan") (f64.const nan:arithmetic))
(assert_return (invoke "f64nan") (f64.const nan:canonical))
(assert_return (invoke "neg0") (f32.const -0))
(assert_return (invoke "neg0") (f32.const 0))
(assert_return (invoke "two") (i32.const -1) (i64.const -2))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer overflow")
(assert_trap (invoke "div" (i32.const 1) (i32.const 1)) "integer divide by zero")
(assert_exhaustion (invoke "rec") "call stack exhausted")
(assert_return (invoke "null") (ref.null extern))
(assert_return (invoke "id" (ref.extern 7)) (ref.extern 7))
(assert_return (get "g") (i32.const 42))
(invoke "add" (i32.const 1) (i32.const 1))
(assert_return (invoke "missing"))
(assert_return (invoke "add" (i32.const 1)) (i32.const 1))
(assert_return (invoke "neg0") (i32.const 0))
(assert_return (invoke "two") (i32.const -1))
"""

BASIC_EXPECTED = [
    ("module", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "failed"),  # wrong value
    ("assert_return", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "failed"),  # arithmetic, not canonical
    ("assert_return", "passed"),
    ("assert_return", "failed"),  # -0 is not 0 bitwise
    ("assert_return", "passed"),
    ("assert_trap", "passed"),
    ("assert_trap", "failed"),  # other trap message
    ("assert_trap", "failed"),  # no trap
    ("assert_exhaustion", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "passed"),
    ("assert_return", "passed"),
    ("action", "passed"),
    ("assert_return", "failed"),  # no such export
    ("assert_return", "failed"),  # wrong argument count: a script error
    ("assert_return", "failed"),  # result type mismatch
    ("assert_return", "failed"),  # result count mismatch
]


def test_runner_basic(tmp_path: Path) -> None:
    result = run_text(tmp_path, BASIC)
    assert statuses(result) == BASIC_EXPECTED
    reasons = [o.reason for o in result.failures]
    assert "expected i32:0x00000004 (4), got i32:0x00000003 (3)" in reasons[0]
    assert "expected trap 'integer overflow', got trap 'integer divide by zero'" in reasons[3]
    assert "expected trap 'integer divide by zero', got (i32:0x00000001 (1))" in reasons[4]
    assert "no export named 'missing'" in reasons[5]
    lines = [o.line for o in result.outcomes]
    assert lines[0] == 2 and lines[1] == 14


def test_runner_instances_agree(tmp_path: Path) -> None:
    result = run_text(tmp_path, BASIC, instances=5)
    assert statuses(result) == BASIC_EXPECTED
    tools = fake_tools(skew_instance=3)
    result = run_text(tmp_path, BASIC, tools, instances=5)
    first = result.outcomes[1]
    assert first.status == "failed"
    assert first.reason.startswith("instances disagree: instance 0 gave (i32:0x00000003 (3)), instance 3 gave")
    # Traps still agree, so the trap assertions keep passing.
    assert result.outcomes[11].status == "passed"


LINKING = r"""
(module $A
  (global (export "g") (mut i32) (i32.const 5))
  (func (export "inc") (global.set 0 (i32.add (global.get 0) (i32.const 1))))
  (func (export "get") (result i32) (global.get 0)))
(register "A" $A)
(module $B
  (import "A" "get" (func $get (result i32)))
  (import "spectest" "print_i32" (func $p (param i32)))
  (import "spectest" "global_i32" (global $g i32))
  (import "spectest" "global_f32" (global $gf f32))
  (import "spectest" "memory" (memory 1))
  (import "spectest" "table" (table 10 funcref))
  (func (export "call") (result i32) (call $p (i32.const 1)) (call $get))
  (func (export "sg") (result i32) (global.get $g))
  (func (export "sgf") (result f32) (global.get $gf)))
(invoke $A "inc")
(assert_return (invoke $B "call") (i32.const 6))
(assert_return (invoke $B "sg") (i32.const 666))
(assert_return (invoke "sgf") (f32.const 666.6))
(assert_return (get $A "g") (i32.const 6))
(assert_unlinkable (module (import "A" "nope" (func))) "unknown import")
(assert_unlinkable (module (import "B" "call" (func))) "unknown import")
(assert_unlinkable (module (import "spectest" "print_i32" (func (param i64)))) "incompatible import type")
(assert_unlinkable (module (func)) "unknown import")
(assert_trap (module (func $t unreachable) (start $t)) "unreachable")
(assert_trap (module (func $t unreachable) (start $t)) "out of bounds")
(assert_trap (module (func $t) (start $t)) "unreachable")
(assert_return (invoke "call") (i32.const 6))
(module $C (import "nowhere" "f" (func)))
(assert_return (invoke "f"))
(register "C")
(register "X" $nope)
"""


def test_runner_linking_spectest_and_module_traps(tmp_path: Path) -> None:
    tools = fake_tools()
    result = run_text(tmp_path, LINKING, tools, instances=3)
    assert statuses(result) == [
        ("module", "passed"),
        ("register", "passed"),
        ("module", "passed"),
        ("action", "passed"),
        ("assert_return", "passed"),
        ("assert_return", "passed"),
        ("assert_return", "passed"),
        ("assert_return", "passed"),
        ("assert_unlinkable", "passed"),
        ("assert_unlinkable", "passed"),  # B was never registered
        ("assert_unlinkable", "passed"),
        ("assert_unlinkable", "failed"),  # it links
        ("assert_trap", "passed"),
        ("assert_trap", "failed"),  # other trap
        ("assert_trap", "failed"),  # no trap
        ("assert_return", "passed"),  # a failed or trapping module does not become current
        ("module", "failed"),  # unknown import
        ("assert_return", "failed"),  # depends on the failed module
        ("register", "failed"),
        ("register", "failed"),  # unknown module id: script error
    ]
    # spectest.print_i32 was called once per instance and call, with instance indexes 0..2.
    assert sorted(i for i, _ in tools.engine.host_calls) == [0, 0, 1, 1, 2, 2]
    failures = result.failures
    assert "module at line" in failures[-2].reason and "link error" in failures[-2].reason


REJECT = r"""
(assert_malformed (module binary "\00asx") "magic header not detected")
(assert_malformed (module binary "\00asm\01\00\00\00") "accepted")
(assert_malformed (module (func (br $nope))) "unknown label")
(assert_malformed (module quote "(module") "unexpected end")
(assert_malformed (module binary "\00asm\01\00\00\00" "\01\04\01\60\00\01") "invalid, not malformed")
(assert_invalid (module (func (result i32))) "type mismatch")
(assert_invalid (module binary "\00asx") "decode errors count as rejected")
(assert_invalid (module (func)) "accepted")
(assert_invalid (module (func (br $nope))) "unknown label")
(assert_invalid (module quote "(module (func (result i32)))") "type mismatch")
(module quote "(module)")
(assert_return (invoke "f"))
"""


def test_runner_malformed_invalid(tmp_path: Path) -> None:
    result = run_text(tmp_path, REJECT)
    assert statuses(result) == [
        ("assert_malformed", "passed"),
        ("assert_malformed", "failed"),
        ("assert_malformed", "passed"),  # wat2wasm rejects the text: that is malformed
        ("assert_malformed", "skipped"),
        ("assert_malformed", "failed"),  # the validator, not the decoder, rejected it
        ("assert_invalid", "passed"),
        ("assert_invalid", "passed"),
        ("assert_invalid", "failed"),
        ("assert_invalid", "skipped"),  # wat2wasm cannot make a binary to validate
        ("assert_invalid", "skipped"),
        ("module", "skipped"),
        ("assert_return", "skipped"),
    ]
    skipped = [o.reason for o in result.outcomes if o.status == "skipped"]
    assert skipped[0] == TEXT_MODULE and skipped[2] == TEXT_MODULE and skipped[3] == TEXT_MODULE
    assert skipped[4] == TEXT_MODULE  # the dependent of a quote module
    assert skipped[1].startswith("wat2wasm rejected the text")


def test_runner_without_engine(tmp_path: Path) -> None:
    tools = Toolchain(engine=None, decode=stub_decode, validate=stub_validate)
    text = BASIC + REJECT + '(module (func (result i32)))\n(register "M")\n'
    result = run_text(tmp_path, text, tools)
    by_kind: dict[str, set[str]] = {}
    for o in result.outcomes:
        by_kind.setdefault(o.kind, set()).add(o.status)
    for kind in ("assert_return", "assert_trap", "assert_exhaustion", "action", "register"):
        assert by_kind[kind] == {"skipped"}, kind
    assert {o.reason for o in result.outcomes if o.kind == "assert_trap"} == {NO_ENGINE}
    assert by_kind["assert_invalid"] == {"passed", "failed", "skipped"}  # still run
    # A module the validator rejects is a failure even without an engine.
    assert [o.status for o in result.outcomes if o.kind == "module"] == ["skipped", "skipped", "failed"]
    # Without a decoder either, the rejection assertions are skipped, not passed.
    result = run_text(tmp_path, REJECT, Toolchain())
    assert "passed" not in {o.status for o in result.outcomes if o.kind == "assert_invalid"}


SIMD_TEXT = r"""
(module (func (export "v") (param v128) (result v128) (local.get 0)))
(assert_return (invoke "v" (v128.const i32x4 1 2 3 4)) (v128.const i32x4 1 2 3 4))
(assert_return (invoke "w") (i32.const 1))
(module (func (export "ok") (result i32) (i32.const 1)))
(assert_return (invoke "ok") (i32.const 1))
"""


def test_runner_unsupported_is_skipped(tmp_path: Path) -> None:
    # The fake refuses modules containing the v128 value type byte with Unsupported.
    tools = fake_tools(unsupported=bytes([0x7B]))
    result = run_text(tmp_path, SIMD_TEXT, tools)
    assert statuses(result) == [
        ("module", "skipped"),
        ("assert_return", "skipped"),
        ("assert_return", "skipped"),
        ("module", "passed"),
        ("assert_return", "passed"),
    ]
    reasons = [o.reason for o in result.outcomes]
    assert reasons[:3] == ["SIMD (v128) instructions"] * 3


def test_runner_errors_do_not_stop_the_file(tmp_path: Path) -> None:
    text = r"""
(module (func (export "f") (result i32) (i32.const 1)) (func (bad)))
(assert_return (invoke "f") (i32.const 1))
(assert_return (invoke "f") (i32.const 0x1_0000_0000))
(frobnicate)
(module (func (export "f") (result i32) (i32.const 1)))
(assert_return (invoke "f") (i32.const 1))
"""
    result = run_text(tmp_path, text)
    assert statuses(result) == [
        ("module", "failed"),
        ("assert_return", "failed"),
        ("assert_return", "failed"),
        ("frobnicate", "skipped"),
        ("module", "passed"),
        ("assert_return", "passed"),
    ]
    assert result.outcomes[0].reason.startswith("wat2wasm failed")
    assert result.outcomes[2].reason.startswith("bad script: i32 constant out of range")


def test_runner_inline_module_and_parse_error(tmp_path: Path) -> None:
    result = run_text(tmp_path, '(func (export "f")) (memory 1) ;; no newline at the end')
    assert statuses(result) == [("module", "passed")]
    result = run_text(tmp_path, "(module\n(func")
    assert statuses(result) == [("parse", "failed")]
    assert result.outcomes[0].line == 2  # the innermost unclosed list


def test_runner_engine_bug_is_a_failure_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def broken_call(self: FakeStore, ext: FakeExtern, args: list[tuple[int, ...]]) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(FakeStore, "call", broken_call)
    text = LINKING.split("(invoke $A")[0] + '(assert_return (invoke $B "sg") (i32.const 666))\n'
    result = run_text(tmp_path, text)
    assert statuses(result)[-1] == ("assert_return", "failed")
    assert result.outcomes[-1].reason.startswith("internal error: RuntimeError: boom (at test_spec_runner.py:")


def test_runner_verbose_prints_spectest_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """(module (import "spectest" "print_i32_f32" (func $p (param i32 f32)))
                      (func (export "go") (call $p (i32.const -2) (f32.const 1.5))))
              (invoke "go")"""
    path = tmp_path / "v.wast"
    path.write_text(text)
    result = runner.run_file(str(path), fake_tools(), instances=2, verbose=True)
    assert statuses(result) == [("module", "passed"), ("action", "passed")]
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "spectest.print_i32_f32[0](i32:0xfffffffe (-2), f32:0x3fc00000 (1.5))",
        "spectest.print_i32_f32[1](i32:0xfffffffe (-2), f32:0x3fc00000 (1.5))",
    ]


# --- the command line ------------------------------------------------------------------


def test_cli_output_exit_code_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a.wast").write_text(BASIC)
    (suite / "b.wast").write_text('(module (func (export "f") (result i32) (i32.const 7)))\n'
                                  '(assert_return (invoke "f") (i32.const 7))\n')
    (suite / "simd_x.wast").write_text("(this is not even parsed")
    (suite / "notes.txt").write_text("ignored")
    monkeypatch.setattr(runner, "load_toolchain", lambda backend, tier=None, memory_layout=None: fake_tools())
    out_json = tmp_path / "r.json"
    rc = runner.main([str(suite), "--exclude", "simd_*", "--json", str(out_json), "--max-failures", "3"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 1
    a, b = str(suite / "a.wast"), str(suite / "b.wast")
    assert out[0] == f"{a}: 14 passed, 9 failed, 0 skipped"
    assert out[1].startswith("  line 16: assert_return: result 0: expected i32:0x00000004 (4)")
    assert out[4] == "  ... and 6 more failures (see --json)"
    assert out[5] == f"{b}: 2 passed, 0 failed, 0 skipped"
    assert out[-1] == "16 passed, 9 failed, 0 skipped"
    report = json.loads(out_json.read_text())
    assert set(report) >= {"by_kind", "by_file", "failures", "totals"}
    assert report["totals"] == {"passed": 16, "failed": 9, "skipped": 0}
    assert report["by_file"][b] == {"passed": 2, "failed": 0, "skipped": 0}
    assert report["by_kind"]["assert_trap"] == {"passed": 1, "failed": 2, "skipped": 0}
    assert report["by_kind"]["module"] == {"passed": 2, "failed": 0, "skipped": 0}
    assert len(report["failures"]) == 9
    assert set(report["failures"][0]) == {"file", "line", "kind", "reason"}
    assert report["failures"][0]["file"] == a and report["failures"][0]["line"] == 16

    rc = runner.main([str(suite / "b.wast")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[-1] == "2 passed, 0 failed, 0 skipped"


def test_cli_subprocess(tmp_path: Path) -> None:
    # The real entry point, on a script that needs neither engine nor decoder.
    script = tmp_path / "quote.wast"
    script.write_text('(assert_malformed (module quote "(module") "unexpected end")\n')
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.spec", str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{script}: 0 passed, 0 failed, 1 skipped", "0 passed, 0 failed, 1 skipped"]


# --- the real suite: malformed and invalid modules ----------------------------------------

SUITE = os.environ.get("WASMGPU_TESTSUITE", "/work/shared/wasm-testsuite")


def test_suite_malformed_and_invalid() -> None:
    if not os.path.isdir(SUITE):
        pytest.skip(f"no spec test suite at {SUITE} (set WASMGPU_TESTSUITE)")
    if any(importlib.util.find_spec(f"wasmgpu.wasm.{m}") is None for m in ("reader", "validate")):
        pytest.skip("the decoder or validator does not exist yet")
    from wasmgpu.wasm.reader import decode_module
    from wasmgpu.wasm.validate import validate_module

    # Only decode + validate here; execution is the whole-suite test's job.
    tools = Toolchain(engine=None, decode=decode_module, validate=validate_module)
    files = runner.collect_files([SUITE], [])
    suite = runner.run_suite(files, tools)
    kinds = ("assert_malformed", "assert_invalid")
    bad = [o for o in suite.outcomes() if o.kind in kinds and o.status == "failed"]
    assert not bad, "\n".join(f"{o.file}:{o.line}: {o.kind}: {o.reason}" for o in bad[:20])
    passed = sum(1 for o in suite.outcomes() if o.kind in kinds and o.status == "passed")
    assert passed > 2000
    skips = {o.reason for o in suite.outcomes() if o.kind in kinds and o.status == "skipped"}
    assert skips <= {TEXT_MODULE}, skips


def test_module_definitions_and_instances(tmp_path) -> None:
    """3.0's (module definition ...) is checked and kept, (module instance $I $M) makes an instance of it;
    an invalid definition fails, and so do its instances."""
    from wasmgpu.runtime.engine import Engine
    from wasmgpu.wasm.reader import decode_module
    from wasmgpu.wasm.validate import validate_module

    text = r"""
(module definition $M (global $g (mut i32) (i32.const 7))
  (func (export "bump") (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g)))
(module instance $A $M)
(module instance $B $M)
(assert_return (invoke $A "bump") (i32.const 8))
(assert_return (invoke $A "bump") (i32.const 9))
(assert_return (invoke $B "bump") (i32.const 8))
(module definition (memory 65536))
(module definition $bad (func (result i32)))
(module instance $C $bad)
(assert_return (invoke $C "f") (i32.const 0))
"""
    tools = Toolchain(engine=Engine("cpu"), decode=decode_module, validate=validate_module)
    result = run_text(tmp_path, text, tools)
    assert statuses(result) == [("module", "passed")] * 3 + [("assert_return", "passed")] * 3 + [
        ("module", "passed"), ("module", "failed"), ("module", "failed"), ("assert_return", "failed")]
    assert "module definition $bad failed" in result.failures[1].reason


def test_annotations_and_lone_semicolons() -> None:
    """3.0's annotations (`(@name ...)`) mean nothing to a script and go; a lone `;` is a token's character,
    while `;;` still starts a comment."""
    doc = parse('((@a x ; y) module (@b) $m) (invoke "f" ;; comment\n (i32.const 1))')
    first, second = doc.items
    assert list(first) == ["module", "$m"]
    assert second[0] == "invoke" and second[2] == ["i32.const", "1"]
    assert list(parse("(a ; b)").items[0]) == ["a", ";", "b"]


def test_scripts_of_independent_modules_run_in_parts_with_the_same_outcomes(tmp_path: Path) -> None:
    """--jobs cuts a script of unnamed, unregistered modules at module commands (each part its own store) and
    reports the same outcomes in the same order; a script that registers or names a module stays whole."""
    body = "".join(f'(module (func (export "f") (result i32) (i32.const {k})))\n'
                   f'(assert_return (invoke "f") (i32.const {k}))\n' for k in range(40))
    body += '(assert_return (invoke "f") (i32.const 7))\n'  # the last module's: a failure, in the last part
    script = tmp_path / "many.wast"
    script.write_text(body)
    doc = runner.sexpr.parse_file(str(script))
    parts = runner.independent_parts(doc, 4)
    assert len(parts) == 4 and parts[0].start == 0 and parts[-1].stop == len(doc.items)
    assert all(isinstance(doc.items[p.start], SList) and doc.items[p.start].head() == "module" for p in parts)
    linked = tmp_path / "linked.wast"
    linked.write_text(body + '(register "m")\n')
    assert len(runner.independent_parts(runner.sexpr.parse_file(str(linked)), 4)) == 1
    whole = subprocess.run([sys.executable, "-m", "wasmgpu.spec", "--json", str(tmp_path / "whole.json"),
                            str(script), str(linked)], capture_output=True, text=True)
    split = subprocess.run([sys.executable, "-m", "wasmgpu.spec", "--jobs", "2", "--json",
                            str(tmp_path / "split.json"), str(script), str(linked)], capture_output=True, text=True)
    assert whole.returncode == split.returncode == 1, whole.stdout + split.stdout
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "split"))
    assert a["totals"] == b["totals"] == {"passed": 161, "failed": 2, "skipped": 0}
    assert a["failures"] == b["failures"]


def test_parallel_runs_end_with_the_reason_an_engine_does_not_start(tmp_path: Path) -> None:
    """With --jobs the engines are the workers' own: one that cannot start stops the run with its reason
    (the parent makes none)."""
    script = tmp_path / "one.wast"
    script.write_text('(module (func (export "f") (result i32) (i32.const 1)))\n'
                      '(assert_return (invoke "f") (i32.const 1))\n')
    with pytest.raises(runner.EngineStartError, match="unknown backend 'bogus'"):
        runner.run_suite_parallel([str(script), str(script)], 2, ("bogus", None, None))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_engine_that_cannot_start_is_reported_without_a_traceback(jobs: str, tmp_path: Path) -> None:
    """Any error making the engine (here the compile cache's directory below a file), in the runner or in a
    worker, ends the run with the reason and status 2."""
    script = tmp_path / "one.wast"
    script.write_text('(module (func (export "f") (result i32) (i32.const 1)))\n'
                      '(assert_return (invoke "f") (i32.const 1))\n')
    (tmp_path / "file").write_text("")
    env = {**os.environ, "WASMGPU_CACHE": str(tmp_path / "file" / "cache")}
    run = subprocess.run([sys.executable, "-m", "wasmgpu.spec", "--backend", "cpu", "--jobs", jobs, str(script)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "error: cannot start the engine" in run.stdout and "Not a directory" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
