"""Tests of the binary decoder (wasmgpu.wasm.reader)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
import wasmtime

from wasmgpu.errors import DecodeError, Unsupported
from wasmgpu.wasm import opcodes as O
from wasmgpu.wasm.features import DEFAULT, WASM_2_0, Features
from wasmgpu.wasm.reader import MAX_LOCALS, decode_module
from wasmgpu.wasm.types import Limits, MemoryType, TableType

HEADER = b"\x00asm\x01\x00\x00\x00"


# ---------------------------------------------------------------------------
# A tiny binary builder, for forms the text format does not let us pick.
# ---------------------------------------------------------------------------
def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def name(s: str) -> bytes:
    raw = s.encode()
    return uleb(len(raw)) + raw


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def module(*sections: bytes) -> bytes:
    return HEADER + b"".join(sections)


def func_body(code: bytes, locals_: bytes = b"\x00") -> bytes:
    body = locals_ + code
    return uleb(len(body)) + body


TYPE_VOID = section(1, vec([b"\x60\x00\x00"]))
ONE_FUNC = section(3, vec([b"\x00"]))


def code_module(code: bytes, *before_code: bytes, after: bytes = b"") -> bytes:
    """One function of type [] -> [] with the given body (which must end in 0x0b)."""
    return module(TYPE_VOID, ONE_FUNC, *before_code, section(10, vec([func_body(code)])), after)


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def body_of(text: str, idx: int = 0) -> list[tuple[str, object]]:
    m = decode_module(wat(text))
    return [(O.op_name(k), imm) for k, imm, _ in m.codes[idx].body]


def malformed(data: bytes, reason: str | None = None, features: Features = DEFAULT) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_module(data, features)
    err = info.value
    if reason is not None:
        assert err.reason.startswith(reason), err.reason
    assert 0 <= err.offset <= (len(data) if isinstance(data, bytes) else 0)
    return err


# ---------------------------------------------------------------------------
# Well-formed modules.
# ---------------------------------------------------------------------------
def test_empty_module() -> None:
    m = decode_module(HEADER)
    assert m.types == [] and m.codes == [] and m.start is None and m.data_count is None


def test_accepts_bytearray_and_memoryview() -> None:
    assert decode_module(bytearray(HEADER)).types == []
    assert decode_module(memoryview(HEADER)).types == []
    malformed(5)  # type: ignore[arg-type]
    malformed("\x00asm\x01\x00\x00\x00")  # type: ignore[arg-type]


def test_types_imports_exports() -> None:
    m = decode_module(wat("""
        (module
          (type (func (param i32 i64 f32 f64) (result v128)))
          (import "env" "f" (func (param externref funcref)))
          (import "env" "t" (table 2 10 funcref))
          (import "env" "m" (memory 1 2))
          (import "env" "g" (global (mut i64)))
          (func (export "run"))
          (global $g (export "gl") i32 (i32.const 7))
          (table (export "tab") 3 externref)
          (memory (export "mem") 0))
    """))
    assert m.types[0].params == (O.I32_T, O.I64_T, O.F32_T, O.F64_T)
    assert m.types[0].results == (O.V128_T,)
    assert [(i.module, i.name, i.kind) for i in m.imports] == [
        ("env", "f", "func"), ("env", "t", "table"), ("env", "m", "memory"), ("env", "g", "global")]
    assert m.types[m.imports[0].desc].params == (O.EXTERNREF, O.FUNCREF)
    assert m.imports[1].desc == TableType(O.FUNCREF, Limits(2, 10))
    assert m.imports[2].desc == MemoryType(Limits(1, 2))
    assert m.imports[3].desc.mutable and m.imports[3].desc.valtype == O.I64_T
    assert m.tables == [TableType(O.EXTERNREF, Limits(3, None))]
    assert m.mems == [MemoryType(Limits(0, None))]
    assert m.globals[0].init == [(0x41, 7, m.globals[0].init[0][2])]  # no final end
    assert {(e.name, e.kind, e.index) for e in m.exports} == {
        ("run", "func", 1), ("gl", "global", 1), ("tab", "table", 1), ("mem", "memory", 1)}
    assert len(m.funcs) == len(m.codes) == 1


def test_names_and_customs() -> None:
    m = decode_module(wat('(module $mod (func $first) (func) (func $third) (@custom "extra" "payload"))'))
    assert m.module_name == "mod"
    assert m.func_names == {0: "first", 2: "third"}
    assert m.func_name(1) == "<wasm function 1>"
    assert {c.name for c in m.customs} == {"name", "extra"}
    extra = next(c for c in m.customs if c.name == "extra")
    assert extra.data == b"payload"
    assert m.customs and all(c.offset >= 8 for c in m.customs)


def test_malformed_name_section_is_ignored() -> None:
    good = section(0, name("name") + section(0, name("mod")) + section(1, vec([uleb(0) + name("f")])))
    m = decode_module(module(TYPE_VOID, ONE_FUNC, section(10, vec([func_body(b"\x0b")])), good))
    assert m.module_name == "mod" and m.func_names == {0: "f"}
    for junk in (b"\x01\x05\x01\x00\x03\xff\xfe\xfd", b"\x01\x7f", b"\x00\x03\x05ab", b"\x01\x03\x80\x80\x80"):
        m = decode_module(module(TYPE_VOID, ONE_FUNC, section(10, vec([func_body(b"\x0b")])),
                                 section(0, name("name") + junk)))
        assert m.func_names == {} and [c.name for c in m.customs] == ["name"]
    # A good module-name subsection survives a broken function-name one after it.
    m = decode_module(module(section(0, name("name") + section(0, name("mod")) + b"\x01\x09\x01")))
    assert m.module_name == "mod"


def test_custom_sections_anywhere() -> None:
    c = section(0, name("c") + b"xyz")
    data = module(c, TYPE_VOID, c, ONE_FUNC, c, section(10, vec([func_body(b"\x0b")])), c)
    m = decode_module(data)
    assert [x.name for x in m.customs] == ["c"] * 4 and all(x.data == b"xyz" for x in m.customs)


def test_instruction_immediates() -> None:
    body = body_of("""
        (module
          (type $t (func (param i32) (result i32)))
          (memory 1) (table $a 2 funcref) (table $b 2 funcref)
          (global $g (mut i32) (i32.const 0))
          (elem $e func $f)
          (data $d "x")
          (func $f (param i32) (result i32) (local i64 f32)
            block $out (result i32)
              loop (param i32) (result i32)
                br_table 0 1 1
              end
            end
            i32.const 1
            if (type $t) (param i32) (result i32) else end
            i32.const 0 call_indirect $b (type $t)
            local.tee 0 global.set $g
            i32.const 0 i32.load offset=8 align=2 drop
            i32.const 0 i64.load8_u offset=1 drop
            memory.size memory.grow drop
            i64.const -9223372036854775808 drop
            f32.const 1.5 drop f64.const -2 drop
            ref.null extern drop ref.func $f drop
            i32.const 1 i32.const 2 i32.const 3 select (result i32) drop
            i32.const 0 i32.const 0 i32.const 0 memory.init $d
            data.drop $d
            i32.const 0 i32.const 0 i32.const 0 memory.copy
            i32.const 0 i32.const 0 i32.const 0 memory.fill
            i32.const 0 i32.const 0 i32.const 0 table.init $b $e
            elem.drop $e
            i32.const 0 i32.const 0 i32.const 0 table.copy $a $b
            i32.const 0 table.get $b drop
            i32.trunc_sat_f32_s
            v128.const i32x4 1 2 3 4
            v128.const i32x4 0 0 0 0
            i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31
            i32x4.extract_lane 3 drop
            i32.const 0 v128.const i64x2 0 0 v128.load16_lane offset=4 align=1 7 drop
            i32.const 0 v128.load offset=16 drop
            i32.const -1))
    """)
    imms: dict[str, object] = {}
    for op, imm in body:
        imms.setdefault(op, imm)  # the first of each
    assert body[0] == ("block", O.I32_T)
    assert body[1][0] == "loop" and body[1][1][0] == "type"
    assert imms["br_table"] == ((0, 1), 1)
    assert ("if", ("type", 0)) in body and ("else", None) in body
    assert imms["call_indirect"] == (0, 1)
    assert imms["local.tee"] == 0 and imms["global.set"] == 0
    assert imms["i32.load"] == (1, 8) and imms["i64.load8_u"] == (0, 1)
    assert imms["memory.size"] == 0 and imms["memory.grow"] == 0  # their memory
    assert imms["i64.const"] == -(2 ** 63)
    assert imms["f32.const"] == 0x3FC00000 and imms["f64.const"] == 0xC000000000000000
    assert imms["ref.null"] == O.EXTERNREF and imms["ref.func"] == 0
    assert imms["select_t"] == (O.I32_T,)
    assert imms["memory.init"] == (0, 0) and imms["data.drop"] == 0  # (data segment, memory)
    assert imms["memory.copy"] == (0, 0) and imms["memory.fill"] == 0
    assert imms["table.init"] == (0, 1) and imms["elem.drop"] == 0 and imms["table.copy"] == (0, 1)
    assert imms["table.get"] == 1
    assert imms["i32.trunc_sat_f32_s"] is None
    assert imms["v128.const"] == bytes([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0])
    assert imms["i8x16.shuffle"] == tuple(range(16))[:-1] + (31,)
    assert imms["i32x4.extract_lane"] == 3
    assert imms["v128.load16_lane"] == (0, 4, 7)  # align=1 is exponent 0
    assert imms["v128.load"] == (4, 16)
    assert body[-2] == ("i32.const", -1) and body[-1] == ("end", None)


def test_instruction_offsets() -> None:
    data = code_module(b"\x41\x05\x1a\xfc\x00\x0b")
    m = decode_module(data)
    body = m.codes[0].body
    for key, _, off in body:
        if key < 256:
            assert data[off] == key
        else:
            assert data[off] == key >> 16
    assert [k for k, _, _ in body] == [0x41, 0x1A, O.FC | 0, 0x0B]
    assert data[m.codes[0].offset] == 7  # the body's size field: locals byte + 6


def test_blocktype_forms() -> None:
    m = decode_module(module(section(1, vec([b"\x60\x00\x00"] * 2)), section(3, vec([b"\x00"])),
                             section(10, vec([func_body(b"\x02\x40\x0b\x02\x7e\x42\x00\x1a\x0b\x02\x01\x0b\x0b")]))))
    assert [imm for k, imm, _ in m.codes[0].body if k == 0x02] == [None, O.I64_T, ("type", 1)]


def test_locals_expanded() -> None:
    body = func_body(b"\x0b", b"\x03\x02\x7f\x00\x7e\x01\x7d")
    m = decode_module(module(TYPE_VOID, ONE_FUNC, section(10, vec([body]))))
    assert m.codes[0].locals == [O.I32_T, O.I32_T, O.F32_T]


def test_elem_segment_forms() -> None:
    e = b"\x41\x00\x0b"  # offset (i32.const 0)
    rf = b"\xd2\x00\x0b"  # (ref.func 0)
    rn = b"\xd0\x70\x0b"  # (ref.null func)
    segs = [
        b"\x00" + e + vec([b"\x00"]),
        b"\x01\x00" + vec([b"\x00", b"\x00"]),
        b"\x02\x01" + e + b"\x00" + vec([b"\x00"]),
        b"\x03\x00" + vec([b"\x00"]),
        b"\x04" + e + vec([rf, rn]),
        b"\x05\x70" + vec([rn]),
        b"\x06\x01" + e + b"\x70" + vec([rf]),
        b"\x07\x70" + vec([rf]),
    ]
    m = decode_module(module(TYPE_VOID, ONE_FUNC, section(4, vec([b"\x70\x00\x01"] * 2)), section(9, vec(segs)),
                             section(10, vec([func_body(b"\x0b")]))))
    modes = [(x.mode, x.table, x.reftype, len(x.init)) for x in m.elems]
    # Segments of function indices hold (ref func) (3.0; 2.0 called them funcref); of expressions, what they say.
    func = O.ref_type(False, O.FUNC_HT)
    assert modes == [("active", 0, func, 1), ("passive", 0, func, 2), ("active", 1, func, 1),
                     ("declarative", 0, func, 1), ("active", 0, O.FUNCREF, 2), ("passive", 0, O.FUNCREF, 1),
                     ("active", 1, O.FUNCREF, 1), ("declarative", 0, O.FUNCREF, 1)]
    for x in m.elems:
        assert (x.offset is not None) == (x.mode == "active")
        if x.offset is not None:
            assert [(k, imm) for k, imm, _ in x.offset] == [(0x41, 0)]
    assert [(k, imm) for k, imm, _ in m.elems[0].init[0]] == [(0xD2, 0)]
    assert [(k, imm) for k, imm, _ in m.elems[4].init[1]] == [(0xD0, O.FUNCREF)]


def test_data_segment_forms_and_count() -> None:
    e = b"\x41\x02\x0b"
    segs = [b"\x00" + e + b"\x02ab", b"\x01\x01c", b"\x02\x00" + e + b"\x00"]
    m = decode_module(module(section(5, vec([b"\x00\x01"])), section(12, b"\x03"), section(11, vec(segs))))
    assert m.data_count == 3
    assert [(d.mode, d.memory, d.init) for d in m.datas] == [("active", 0, b"ab"), ("passive", 0, b"c"),
                                                              ("active", 0, b"")]
    assert [(k, imm) for k, imm, _ in m.datas[2].offset] == [(0x41, 2)]


def test_shared_memory_and_limits() -> None:
    m = decode_module(module(section(5, vec([b"\x03\x01\x02", b"\x01\x00\x80\x80\x04", b"\x00\x00"]))))
    assert m.mems == [MemoryType(Limits(1, 2), shared=True), MemoryType(Limits(0, 65536)), MemoryType(Limits(0))]


def test_leb_edge_values() -> None:
    # i32.const with 5-byte encodings of the extremes; i64 with 10-byte ones.
    code = (b"\x41\x80\x80\x80\x80\x78\x1a\x41\xff\xff\xff\xff\x07\x1a"
            b"\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f\x1a\x42\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x1a\x0b")
    m = decode_module(code_module(code))
    assert [imm for k, imm, _ in m.codes[0].body if k in (0x41, 0x42)] == [-(2 ** 31), 2 ** 31 - 1,
                                                                           -(2 ** 63), 2 ** 63 - 1]
    # Non-minimal unsigned encodings are fine.
    m = decode_module(module(section(1, b"\x81\x80\x80\x80\x00\x60\x00\x00")))
    assert len(m.types) == 1


# ---------------------------------------------------------------------------
# Malformed modules.
# ---------------------------------------------------------------------------
def test_header_errors() -> None:
    assert malformed(b"", "unexpected end").offset == 0
    malformed(b"\x00as", "unexpected end")
    malformed(b"\x00asm\x01\x00", "unexpected end")
    malformed(b"asm\x01\x00\x00\x00", "magic header not detected")
    assert malformed(b"\x00asm\x02\x00\x00\x00", "unknown binary version").offset == 4


def test_section_errors() -> None:
    assert malformed(HEADER + b"\x0e\x00", "malformed section id").offset == 8  # 13: tags (exceptions)
    malformed(HEADER + b"\x01\x05\x00", "length out of bounds")
    err = malformed(HEADER + b"\x01\x02\x00\x00", "section size mismatch")
    assert err.offset == 11
    malformed(module(section(3, b"\x00"), section(1, b"\x00")), "unexpected content after last section")
    malformed(module(section(1, b"\x00"), section(1, b"\x00")), "unexpected content after last section")
    malformed(module(section(10, b"\x00"), section(12, b"\x00")), "unexpected content after last section")
    malformed(HEADER + b"\x01\x01\x01", "unexpected end")
    malformed(HEADER + b"\x01\x80\x80", "unexpected end")


def test_leb_errors() -> None:
    malformed(HEADER + b"\x01\x80\x80\x80\x80\x80\x00", "integer representation too long")
    malformed(HEADER + b"\x01\x80\x80\x80\x80\x10", "integer too large")
    malformed(code_module(b"\x41\x80\x80\x80\x80\x70\x1a\x0b"), "integer too large")
    malformed(code_module(b"\x41\xff\xff\xff\xff\x4f\x1a\x0b"), "integer too large")
    malformed(code_module(b"\x41\x80\x80\x80\x80\x80\x00\x1a\x0b"), "integer representation too long")
    malformed(code_module(b"\x42" + b"\x80" * 9 + b"\x01\x1a\x0b"), "integer too large")
    malformed(code_module(b"\x42" + b"\x80" * 10 + b"\x00\x1a\x0b"), "integer representation too long")


def test_type_and_value_errors() -> None:
    malformed(module(section(1, vec([b"\x61\x00\x00"]))), "malformed function type")
    malformed(module(section(1, vec([b"\x60\x01\x7a\x00"]))), "malformed value type")
    malformed(module(section(1, vec([b"\xe0\x7f\x00\x00"]))), "integer representation too long")
    malformed(module(section(2, vec([name("a") + name("b") + b"\x05"]))), "malformed import kind")  # 4: a tag
    malformed(module(section(2, vec([name("a") + name("b") + b"\x03\x7f\x02"]))), "malformed mutability")
    malformed(module(section(4, vec([b"\x7f\x00\x00"]))), "malformed reference type")
    malformed(module(section(4, vec([b"\x70\x02\x00"]))), "integer too large")
    malformed(module(section(5, vec([b"\x08\x00"]))), "integer too large")
    with pytest.raises(DecodeError, match=r"integer too large \(64-bit limits: memory64 is not enabled\)"):
        decode_module(module(section(5, vec([b"\x04\x00"]))), WASM_2_0)  # memory64's flag, without memory64
    assert decode_module(module(section(5, vec([b"\x04\x00"])))).mems[0].memory64
    malformed(module(section(5, vec([b"\x81\x00\x00"]))), "integer representation too long")
    malformed(module(section(7, vec([name("e") + b"\x05\x00"]))), "malformed export kind")  # 4: a tag
    malformed(module(section(7, vec([name("e") + b"\x04\x00"]))), "malformed export kind", WASM_2_0)
    malformed(module(section(9, vec([b"\x08"]))), "malformed elements segment kind")
    malformed(module(section(9, vec([b"\x01\x01" + vec([b"\x00"])]))), "malformed element kind")
    malformed(module(section(11, vec([b"\x03"]))), "malformed data segment kind")


def test_utf8_names() -> None:
    for bad in (b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        err = malformed(module(section(0, uleb(len(bad)) + bad)), "malformed UTF-8 encoding")
        assert err.offset == 10
        malformed(module(section(2, vec([uleb(len(bad)) + bad + name("x") + b"\x00\x00"]))),
                  "malformed UTF-8 encoding")
    assert decode_module(module(section(0, name("\u00e9\U0001f600")))).customs[0].name == "\u00e9\U0001f600"


def test_code_errors() -> None:
    malformed(module(TYPE_VOID, section(3, vec([b"\x00", b"\x00"]))),
              "function and code section have inconsistent lengths")
    malformed(module(section(10, vec([func_body(b"\x0b")]))), "function and code section have inconsistent lengths")
    malformed(module(section(12, b"\x01")), "data count and data section have inconsistent lengths")
    malformed(module(section(12, b"\x00"), section(11, vec([b"\x01\x00"]))),
              "data count and data section have inconsistent lengths")
    err = malformed(code_module(b"\x41\x00\x41\x00\x41\x00\xfc\x08\x00\x00\x0b", section(5, vec([b"\x00\x00"])),
                                after=section(11, vec([b"\x01\x00"]))), "data count section required")
    assert err.offset > 8
    malformed(code_module(b"\xfc\x09\x00\x0b", after=section(11, vec([b"\x01\x00"]))), "data count section required")
    malformed(code_module(b"\x06\x0b"), "illegal opcode")
    malformed(code_module(b"\xfc\x12\x0b"), "illegal opcode")
    malformed(code_module(b"\xfd\x80\x80\x04\x0b"), "illegal opcode")  # 0x10000: past the sub-opcode table
    malformed(code_module(b"\x3f\x01\x1a\x0b"), "zero byte expected", WASM_2_0)
    malformed(code_module(b"\xff\x0b"), "illegal opcode ff")
    malformed(code_module(b"\x3f\x80\x00\x1a\x0b"), "zero byte expected", WASM_2_0)
    malformed(code_module(b"\x41\x00\x41\x00\x41\x00\xfc\x0a\x00\x01\x0b"), "zero byte expected", WASM_2_0)
    # With multi-memory (the default) those bytes are memory indices, and bit 6 of a memarg announces one.
    body = decode_module(code_module(b"\x41\x00\x41\x00\x41\x00\xfc\x0a\x00\x01\x3f\x02\x1a"
                                     b"\x41\x00\x28\x42\x03\x08\x1a\x0b")).codes[0].body
    assert [imm for _, imm, _ in body[3:5]] == [(0, 1), 2] and body[7][1] == (2, 8, 3)
    malformed(code_module(b"\x41\x00\x28\x42\x03\x08\x1a\x0b"), "malformed memop flags", WASM_2_0)
    malformed(code_module(b"\x41\x00\x28\x80\x01\x00\x1a\x0b"), "malformed memop flags")
    malformed(code_module(b"\x41\x00\x28\x20\x00\x1a\x0b"), "malformed memop flags", WASM_2_0)
    err = malformed(code_module(b"\x41\x00\x28\x40\x00\x1a\x0b"), "malformed memop flags", WASM_2_0)
    assert err.offset == code_module(b"\x41\x00\x28\x40\x00\x1a\x0b").index(b"\x28\x40") + 1
    malformed(code_module(b"\x05\x0b"), "misplaced ELSE opcode")
    malformed(code_module(b"\x02\x40\x05\x0b\x0b"), "misplaced ELSE opcode")
    malformed(code_module(b"\x41\x00\x04\x40\x05\x05\x0b\x0b"), "misplaced ELSE opcode")
    malformed(code_module(b"\x02\x7a\x0b\x0b"), "malformed value type")
    malformed(code_module(b"\x02\x80\x80\x80\x80\x70\x0b\x0b"), "malformed block type")
    malformed(code_module(b"\xd0\x7f\x1a\x0b"), "malformed reference type")
    # The body runs out before its end, with another function after it and at the end of the module.
    two = module(TYPE_VOID, section(3, vec([b"\x00", b"\x00"])),
                 section(10, vec([func_body(b"\x41\x01\x1a"), func_body(b"\x0b")])))
    malformed(two, "END opcode expected")
    malformed(code_module(b"\x41\x01\x1a"), "unexpected end")
    malformed(code_module(b"\x41"), "unexpected end of section or function")
    malformed(code_module(b"\x0b\x01"), "section size mismatch")
    malformed(code_module(b"\x44\x00\x00\x00\x0b"), "unexpected end")


def test_too_many_locals() -> None:
    malformed(module(TYPE_VOID, ONE_FUNC, section(10, vec([func_body(b"\x0b", b"\x01\xff\xff\xff\xff\x0f\x7f")]))),
              "too many locals")
    malformed(module(TYPE_VOID, ONE_FUNC, section(10, vec([func_body(b"\x0b", b"\x02" + uleb(MAX_LOCALS) + b"\x7f"
                                                                                     b"\x01\x7f")]))),
              "too many locals")
    ok = decode_module(module(TYPE_VOID, ONE_FUNC, section(10, vec([func_body(b"\x0b", b"\x01" + uleb(MAX_LOCALS)
                                                                                       + b"\x7e")]))))
    assert len(ok.codes[0].locals) == MAX_LOCALS


def test_const_expr_errors() -> None:
    malformed(module(section(6, vec([b"\x7f\x00\x41\x00"]))), "unexpected end")
    malformed(module(section(6, vec([b"\x7f\x00\xf3\x0b"]))), "illegal opcode")
    malformed(module(section(6, vec([b"\x7f\x00\x05\x0b"]))), "misplaced ELSE opcode")


def test_deep_nesting_does_not_recurse() -> None:
    depth = 100_000
    m = decode_module(code_module(b"\x02\x40" * depth + b"\x0b" * (depth + 1)))
    assert len(m.codes[0].body) == 2 * depth + 1


# ---------------------------------------------------------------------------
# Speed: a large module decodes well within budget.
# ---------------------------------------------------------------------------
def _big_module() -> bytes:
    lines = []
    for i in range(400):
        lines.append(f"""(func $f{i} (param i32 i32) (result i32) (local i64 f64)
            local.get 0 local.get 1 i32.add i32.const {i * 1000} i32.mul
            block (result i32) local.get 0 i32.load offset=16 i32.const 3 i32.shl end
            i32.xor local.get 1 i32.const -7 i32.store offset=4
            f64.const 1.25 local.set 3 i64.const 123456789012 local.set 2
            loop i32.const 0 br_if 0 end
            local.get 0 if (result i32) i32.const 1 else i32.const 2 end i32.add
            call $f{(i + 1) % 400} drop i32.const 0)""")
    return wat("(module (memory 1) " + "\n".join(lines) + ")")


def test_decode_big_module() -> None:
    # Its speed is a benchmark's business (bench/translate.py): timed asserts fail on busy CI machines.
    data = _big_module()
    assert len(data) > 20_000
    m = decode_module(data)
    assert len(m.codes) == 400


# ---------------------------------------------------------------------------
# Fuzzing: only DecodeError (or success) on mutated and random input.
# ---------------------------------------------------------------------------
SEED_WATS = [
    "(module)",
    """(module (type (func (param i32) (result i32)))
         (import "a" "b" (func (param i32) (result i32))) (import "a" "m" (memory 1 2))
         (func (export "f") (param i32) (result i32) (local i64)
           local.get 0 i32.const 1 i32.add block (result i32) i32.const 2 end i32.mul
           i32.const 0 i32.load offset=4 drop memory.size drop
           local.get 0 if (result i32) i32.const 3 else i32.const 4 end
           i32.const 0 br_table 0 0)
         (global (mut i64) (i64.const -5)) (data (i32.const 8) "hello"))""",
    """(module (table 4 funcref) (memory 1) (func $f) (func $g (param i32) local.get 0 call_indirect)
         (elem (i32.const 0) $f $g) (elem func $f) (elem declare funcref (ref.func $f))
         (data "passive") (func (i32.const 0) (i32.const 0) (i32.const 1) memory.init 0 data.drop 0
           i32.const 0 i32.const 0 i32.const 0 table.init 1 elem.drop 1) (start $f))""",
    """(module (func (param v128) (result v128) local.get 0 local.get 0 i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11
           12 13 14 16 v128.const i32x4 1 2 3 4 i32x4.add i32.const 0 v128.load32_lane 2 f32x4.extract_lane 1
           f32x4.splat) (memory 1) (global f64 (f64.const 2.5)) (global funcref (ref.null func)))""",
    """(module $named (func $a (result f32) f32.const 3.5 ref.null extern ref.is_null f32.convert_i32_u f32.add)
         (func $b i32.const 0 i32.const 0 i32.const 0 memory.fill i32.const 0 i32.const 0 i32.const 0 memory.copy
           i32.const 1 i32.const 2 i32.const 1 select (result i32) drop i32.const 0 i64.trunc_sat_f64_u drop)
         (memory 1) (export "a" (func $a)) (@custom "c" "data"))""",
]


def _mutate(rng: random.Random, data: bytearray) -> bytes:
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        r = rng.random()
        if r < 0.35 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif r < 0.5 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif r < 0.65:
            i = rng.randrange(len(data) + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif r < 0.8 and data:
            i = rng.randrange(len(data))
            del data[i:i + rng.randint(1, 4)]
        elif r < 0.9:
            del data[rng.randrange(len(data) + 1):]
        elif data:
            i = rng.randrange(len(data))
            data[i:i] = data[i:i + rng.randint(1, 16)]
    return bytes(data)


def test_later_proposals_are_unsupported_not_illegal() -> None:
    """Atomics (0xFE) and relaxed SIMD (0xFD 0x100+) are valid in the proposals that define them: with their
    feature off, the error names the feature and where it is, and is not a DecodeError."""
    data = code_module(b"\x41\x00\xfe\x10\x02\x00\x1a\x0b", section(5, vec([b"\x00\x01"])))  # i32.atomic.load
    with pytest.raises(Unsupported) as info:
        decode_module(data, WASM_2_0)
    text = str(info.value)
    assert not isinstance(info.value, DecodeError)
    assert "atomic memory instructions need the threads feature, which is off" in text
    at = data.index(b"\xfe\x10")
    assert f"at byte offset {at:#x}" in text
    assert decode_module(data).codes[0].body[1][0] == O.BY_NAME["i32.atomic.load"].key
    relaxed = code_module(b"\xfd\x80\x02\x0b")  # 0xFD 0x100: i8x16.relaxed_swizzle
    with pytest.raises(Unsupported, match=r"relaxed SIMD .*relaxed-simd feature, which is off \(at byte offset 0x"):
        decode_module(relaxed, WASM_2_0)
    assert decode_module(relaxed).codes[0].body[0][0] == 0xFD << 16 | 0x100


def _fuzz_inputs(count: int) -> list[bytes]:
    rng = random.Random(20240611)
    seeds = [wat(s) for s in SEED_WATS]
    out = []
    for i in range(count):
        if i % 10 == 0:
            tail = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            out.append(HEADER + tail)
        elif i % 10 == 1:
            # Random bytes inside a well-formed section frame, so the section decoders see them.
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
            out.append(HEADER + section(rng.choice((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)), payload))
        else:
            out.append(_mutate(rng, bytearray(rng.choice(seeds))))
    return out


def test_fuzz_only_decode_errors() -> None:
    inputs = _fuzz_inputs(100_000)
    ok = 0
    reasons: dict[str, int] = {}
    for data in inputs:
        try:
            decode_module(data)
            ok += 1
        except Unsupported as e:  # an opcode of a later proposal: named, with its offset
            assert "not supported yet (at byte offset 0x" in str(e), (str(e), data.hex())
        except DecodeError as e:
            assert not e.reason.startswith("internal"), (e.reason, data.hex())
            assert 0 <= e.offset <= len(data), (e.reason, e.offset, data.hex())
            key = e.reason.split(" ")[0] if e.reason.startswith("illegal") else e.reason
            reasons[key] = reasons.get(key, 0) + 1
    print(f"fuzz: {len(inputs)} inputs, {ok} decoded, {len(reasons)} distinct reasons")
    assert ok > 1000  # the mutations do not only produce garbage
    assert len(reasons) > 15


# ---------------------------------------------------------------------------
# The spec suite's binary modules.
# ---------------------------------------------------------------------------
def _suite_dir() -> Path:
    env = os.environ.get("WASMGPU_TESTSUITE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "wasm-testsuite"


_TOKEN = re.compile(rb'\(;.*?;\)|;;[^\n]*|"(?:[^"\\]|\\.)*"|\(|\)|[^\s()";]+', re.S)
_ESCAPES = {ord("n"): b"\n", ord("t"): b"\t", ord("r"): b"\r", ord('"'): b'"', ord("'"): b"'", ord("\\"): b"\\"}


def _unescape(s: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != 0x5C:
            out.append(c)
            i += 1
        elif s[i + 1] in _ESCAPES:
            out += _ESCAPES[s[i + 1]]
            i += 2
        elif s[i + 1] == ord("u"):
            j = s.index(b"}", i)
            out += chr(int(s[i + 3:j].replace(b"_", b""), 16)).encode()
            i = j + 1
        else:
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
    return bytes(out)


def _binary_modules(path: Path) -> list[tuple[str, bytes]]:
    """(enclosing top-level form head, bytes) for every `(module ... binary ...)` in a .wast file."""
    tokens = [t for t in _TOKEN.findall(path.read_bytes()) if not t.startswith((b";;", b"(;"))]
    found = []
    depth = 0
    head = b""
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == b"(":
            depth += 1
            if depth == 1:
                head = tokens[i + 1]
            if tokens[i + 1] == b"module":
                # (module [$id] binary "..."*)
                j = i + 2
                if tokens[j].startswith(b"$"):
                    j += 1
                if tokens[j] == b"binary":
                    parts = []
                    j += 1
                    while tokens[j] != b")":
                        parts.append(_unescape(tokens[j][1:-1]))
                        j += 1
                    found.append((head.decode(), b"".join(parts)))
                    i = j + 1
                    depth -= 1
                    continue
        elif t == b")":
            depth -= 1
        i += 1
    return found


def _suite_binaries() -> list[tuple[str, str, bytes]]:
    suite = _suite_dir()
    if not suite.is_dir():
        pytest.skip(f"spec test suite not found at {suite} (set WASMGPU_TESTSUITE)")
    out = []
    for path in sorted(suite.glob("*.wast")):
        out.extend((path.name, head, data) for head, data in _binary_modules(path))
    return out


def test_spec_assert_malformed_binaries_rejected() -> None:
    cases = [(f, d) for f, h, d in _suite_binaries() if h == "assert_malformed" and not f.startswith("simd_")]
    assert len(cases) > 500
    missed = []
    for fname, data in cases:
        try:
            decode_module(data, WASM_2_0)  # the 2.0 suite
            missed.append((fname, data.hex()))
        except DecodeError:
            pass
    rate = 1 - len(missed) / len(cases)
    print(f"spec assert_malformed binaries rejected: {len(cases) - len(missed)}/{len(cases)} ({rate:.1%})")
    assert rate >= 0.99, missed


def test_spec_other_binaries_decode() -> None:
    cases = [(f, h, d) for f, h, d in _suite_binaries() if h != "assert_malformed"]
    assert len(cases) > 50
    failed = []
    for fname, head, data in cases:
        try:
            decode_module(data)
        except DecodeError as e:
            failed.append((fname, head, e.reason, data.hex()))
    assert not failed
