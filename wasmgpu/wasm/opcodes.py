"""The one table of WebAssembly 2.0 instructions (SIMD included, for decoding).

Every other layer (reader, validator, translator) looks instructions up here,
by the opcode key: the byte for one-byte opcodes, ``prefix << 16 | sub`` for the
0xFC and 0xFD prefixed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

# Immediate kinds: how the reader decodes what follows the opcode.
NONE = "none"
BLOCKTYPE = "blocktype"  # block, loop, if
LABEL = "label"  # br, br_if
BR_TABLE = "br_table"  # (labels tuple, default)
FUNC = "func"  # call, ref.func
CALL_INDIRECT = "call_indirect"  # (typeidx, tableidx)
LOCAL = "local"
GLOBAL = "global"
TABLE = "table"  # table.get/set/grow/size/fill
MEMARG = "memarg"  # (align, offset)
MEMORY = "memory"  # memory.size/grow: a zero byte
I32 = "i32"  # signed value
I64 = "i64"  # signed value
F32 = "f32"  # raw bits as int
F64 = "f64"  # raw bits as int
REFTYPE = "reftype"  # ref.null heap type
SELECT_T = "select_t"  # tuple of value types
MEMORY_INIT = "memory_init"  # dataidx (then a zero byte)
DATA = "data"  # data.drop
MEMORY_COPY = "memory_copy"  # two zero bytes
MEMORY_FILL = "memory_fill"  # one zero byte
TABLE_INIT = "table_init"  # (elemidx, tableidx)
ELEM = "elem"  # elem.drop
TABLE_COPY = "table_copy"  # (dst tableidx, src tableidx)
V128 = "v128"  # 16 bytes
SHUFFLE = "shuffle"  # 16 lane indices
LANE = "lane"  # one lane index byte
MEMARG_LANE = "memarg_lane"  # (align, offset, lane)
FENCE = "fence"  # atomic.fence: a zero byte
TYPE = "type"  # call_ref, return_call_ref: a type index
TAG = "tag"  # throw: a tag index
TRY_TABLE = "try_table"  # (block type, catch clauses: (kind, tag or None, label) each)

# Value types, by their binary encoding.
I32_T = 0x7F
I64_T = 0x7E
F32_T = 0x7D
F64_T = 0x7C
V128_T = 0x7B
FUNCREF = 0x70
EXTERNREF = 0x6F
EXNREF = 0x69  # exception handling's (ref null exn)
NUM_TYPES = (I32_T, I64_T, F32_T, F64_T)
REF_TYPES = (FUNCREF, EXTERNREF)
VALUE_TYPES = (I32_T, I64_T, F32_T, F64_T, V128_T, FUNCREF, EXTERNREF)
TYPE_NAMES = {I32_T: "i32", I64_T: "i64", F32_T: "f32", F64_T: "f64", V128_T: "v128",
              FUNCREF: "funcref", EXTERNREF: "externref", EXNREF: "exnref"}

# Typed references (function references, exception handling). A reference type is an int like every value
# type: the nullable abstract ones keep their one-byte shorthand (funcref, externref, exnref); any other is
# REF_BIT | heap << 1 | nullable. A heap type is an abstract type's byte, a module's type index plus
# HEAP_INDEX, or (after validation's canonicalization, wasm/canon.py) a store-wide type id plus HEAP_CANON.
FUNC_HT, EXTERN_HT, EXN_HT = 0x70, 0x6F, 0x69
NOFUNC_HT, NOEXTERN_HT, NOEXN_HT = 0x73, 0x72, 0x74
HEAP_SELF = 0xFF  # in a canonical type's own definition: the type itself
ABSTRACT_HEAPS = {FUNC_HT: "func", EXTERN_HT: "extern", EXN_HT: "exn", NOFUNC_HT: "nofunc",
                  NOEXTERN_HT: "noextern", NOEXN_HT: "noexn"}
GC_HEAPS = {0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array", 0x71: "none"}
HEAP_INDEX = 0x100
HEAP_CANON = 1 << 24
REF_BIT = 1 << 40
_SHORTHAND = (FUNCREF, EXTERNREF, EXNREF)
# Each abstract heap type's top (its hierarchy): a type index is a function type here.
_TOP = {FUNC_HT: FUNC_HT, NOFUNC_HT: FUNC_HT, EXTERN_HT: EXTERN_HT, NOEXTERN_HT: EXTERN_HT, EXN_HT: EXN_HT,
        NOEXN_HT: EXN_HT}
_BOTTOM = {FUNC_HT: NOFUNC_HT, EXTERN_HT: NOEXTERN_HT, EXN_HT: NOEXN_HT}


def ref_type(nullable: bool, heap: int) -> int:
    if nullable and heap in _SHORTHAND:
        return heap
    return REF_BIT | heap << 1 | int(nullable)


def is_ref(t: int) -> bool:
    return t in _SHORTHAND or t >= REF_BIT


def ref_heap(t: int) -> int:
    return t if t < REF_BIT else (t - REF_BIT) >> 1


def ref_nullable(t: int) -> bool:
    return t < REF_BIT or bool(t & 1)


def heap_top(heap: int) -> int:
    """The top of a heap type's hierarchy: func, extern or exn."""
    return _TOP.get(heap, FUNC_HT)


def heap_matches(a: int, b: int) -> bool:
    """Heap subtyping, for canonical heap types (equal defined types have equal ids)."""
    if a == b:
        return True
    if b in _BOTTOM or b >= HEAP_INDEX:  # b is a top (func, extern, exn) or a defined (function) type
        top_a = heap_top(a)
        if b >= HEAP_INDEX:
            return a == NOFUNC_HT
        return top_a == b
    return False


def ref_matches(a: int, b: int) -> bool:
    """Whether reference type a is a subtype of b (both canonical)."""
    if a == b:
        return True
    if ref_nullable(a) and not ref_nullable(b):
        return False
    return heap_matches(ref_heap(a), ref_heap(b))


def type_name(t: int) -> str:
    if t in TYPE_NAMES:
        return TYPE_NAMES[t]
    if is_ref(t):
        h = ref_heap(t)
        name = ABSTRACT_HEAPS.get(h) or (f"${h - HEAP_INDEX}" if h < HEAP_CANON else f"$canon{h - HEAP_CANON}")
        return f"(ref {'null ' if ref_nullable(t) else ''}{name})"
    return hex(t)

_SIG_CHARS = {"i": I32_T, "I": I64_T, "f": F32_T, "F": F64_T, "v": V128_T}


@dataclass(frozen=True)
class OpInfo:
    key: int
    name: str
    imm: str
    # For instructions with a fixed operand signature: value types popped and pushed.
    # None where the validator has a rule of its own (control, locals, refs, ...).
    params: tuple[int, ...] | None = None
    results: tuple[int, ...] | None = None
    # Natural alignment (log2 bytes) of memory accesses.
    max_align: int | None = None


OPS: dict[int, OpInfo] = {}
BY_NAME: dict[str, OpInfo] = {}


def _sig(s: str | None) -> tuple[tuple[int, ...], tuple[int, ...]] | tuple[None, None]:
    if s is None:
        return None, None
    p, r = s.split(":")
    return tuple(_SIG_CHARS[c] for c in p), tuple(_SIG_CHARS[c] for c in r)


def _op(key: int, name: str, imm: str = NONE, sig: str | None = None, align: int | None = None) -> None:
    params, results = _sig(sig)
    info = OpInfo(key, name, imm, params, results, align)
    assert key not in OPS and name not in BY_NAME, name
    OPS[key] = info
    BY_NAME[name] = info


FC = 0xFC << 16
FD = 0xFD << 16
FE = 0xFE << 16

# Control.
_op(0x00, "unreachable")
_op(0x01, "nop", sig=":")
_op(0x02, "block", BLOCKTYPE)
_op(0x03, "loop", BLOCKTYPE)
_op(0x04, "if", BLOCKTYPE)
_op(0x05, "else")
_op(0x0B, "end")
_op(0x0C, "br", LABEL)
_op(0x0D, "br_if", LABEL)
_op(0x0E, "br_table", BR_TABLE)
_op(0x0F, "return")
_op(0x10, "call", FUNC)
_op(0x11, "call_indirect", CALL_INDIRECT)
_op(0x12, "return_call", FUNC)  # tail calls (3.0)
_op(0x13, "return_call_indirect", CALL_INDIRECT)
_op(0x14, "call_ref", TYPE)  # typed function references (3.0)
_op(0x15, "return_call_ref", TYPE)
_op(0xD4, "ref.as_non_null")
_op(0xD5, "br_on_null", LABEL)
_op(0xD6, "br_on_non_null", LABEL)
_op(0x08, "throw", TAG)  # exception handling (3.0)
_op(0x0A, "throw_ref")
_op(0x1F, "try_table", TRY_TABLE)
# try_table's catch clause kinds.
CATCH, CATCH_REF, CATCH_ALL, CATCH_ALL_REF = range(4)
# The opcodes of each proposal past 2.0 that a feature switch turns off (Features).
TAIL_CALL_OPS = (0x12, 0x13, 0x15)
FUNCTION_REFERENCE_OPS = (0x14, 0x15, 0xD4, 0xD5, 0xD6)
EXCEPTION_OPS = (0x08, 0x0A, 0x1F)
# Reference and parametric.
_op(0xD0, "ref.null", REFTYPE)
_op(0xD1, "ref.is_null")
_op(0xD2, "ref.func", FUNC)
_op(0x1A, "drop")
_op(0x1B, "select")
_op(0x1C, "select_t", SELECT_T)
# Variables.
_op(0x20, "local.get", LOCAL)
_op(0x21, "local.set", LOCAL)
_op(0x22, "local.tee", LOCAL)
_op(0x23, "global.get", GLOBAL)
_op(0x24, "global.set", GLOBAL)
_op(0x25, "table.get", TABLE)
_op(0x26, "table.set", TABLE)

# Memory: (key, name, signature, natural alignment).
for _k, _n, _s, _a in [
    (0x28, "i32.load", "i:i", 2), (0x29, "i64.load", "i:I", 3),
    (0x2A, "f32.load", "i:f", 2), (0x2B, "f64.load", "i:F", 3),
    (0x2C, "i32.load8_s", "i:i", 0), (0x2D, "i32.load8_u", "i:i", 0),
    (0x2E, "i32.load16_s", "i:i", 1), (0x2F, "i32.load16_u", "i:i", 1),
    (0x30, "i64.load8_s", "i:I", 0), (0x31, "i64.load8_u", "i:I", 0),
    (0x32, "i64.load16_s", "i:I", 1), (0x33, "i64.load16_u", "i:I", 1),
    (0x34, "i64.load32_s", "i:I", 2), (0x35, "i64.load32_u", "i:I", 2),
    (0x36, "i32.store", "ii:", 2), (0x37, "i64.store", "iI:", 3),
    (0x38, "f32.store", "if:", 2), (0x39, "f64.store", "iF:", 3),
    (0x3A, "i32.store8", "ii:", 0), (0x3B, "i32.store16", "ii:", 1),
    (0x3C, "i64.store8", "iI:", 0), (0x3D, "i64.store16", "iI:", 1),
    (0x3E, "i64.store32", "iI:", 2),
]:
    _op(_k, _n, MEMARG, _s, _a)
_op(0x3F, "memory.size", MEMORY, ":i")
_op(0x40, "memory.grow", MEMORY, "i:i")
_op(0x41, "i32.const", I32, ":i")
_op(0x42, "i64.const", I64, ":I")
_op(0x43, "f32.const", F32, ":f")
_op(0x44, "f64.const", F64, ":F")


def _numeric(start: int, names: str, sig: str) -> int:
    for i, n in enumerate(names.split()):
        _op(start + i, n, NONE, sig)
    return start + len(names.split())


_numeric(0x45, "i32.eqz", "i:i")
_numeric(0x46, "i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u", "ii:i")
_numeric(0x50, "i64.eqz", "I:i")
_numeric(0x51, "i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u", "II:i")
_numeric(0x5B, "f32.eq f32.ne f32.lt f32.gt f32.le f32.ge", "ff:i")
_numeric(0x61, "f64.eq f64.ne f64.lt f64.gt f64.le f64.ge", "FF:i")
_numeric(0x67, "i32.clz i32.ctz i32.popcnt", "i:i")
_numeric(0x6A, "i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u i32.and i32.or i32.xor "
         "i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr", "ii:i")
_numeric(0x79, "i64.clz i64.ctz i64.popcnt", "I:I")
_numeric(0x7C, "i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and i64.or i64.xor "
         "i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr", "II:I")
_numeric(0x8B, "f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt", "f:f")
_numeric(0x92, "f32.add f32.sub f32.mul f32.div f32.min f32.max f32.copysign", "ff:f")
_numeric(0x99, "f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt", "F:F")
_numeric(0xA0, "f64.add f64.sub f64.mul f64.div f64.min f64.max f64.copysign", "FF:F")
for _k, _n, _s in [
    (0xA7, "i32.wrap_i64", "I:i"), (0xA8, "i32.trunc_f32_s", "f:i"), (0xA9, "i32.trunc_f32_u", "f:i"),
    (0xAA, "i32.trunc_f64_s", "F:i"), (0xAB, "i32.trunc_f64_u", "F:i"), (0xAC, "i64.extend_i32_s", "i:I"),
    (0xAD, "i64.extend_i32_u", "i:I"), (0xAE, "i64.trunc_f32_s", "f:I"), (0xAF, "i64.trunc_f32_u", "f:I"),
    (0xB0, "i64.trunc_f64_s", "F:I"), (0xB1, "i64.trunc_f64_u", "F:I"), (0xB2, "f32.convert_i32_s", "i:f"),
    (0xB3, "f32.convert_i32_u", "i:f"), (0xB4, "f32.convert_i64_s", "I:f"), (0xB5, "f32.convert_i64_u", "I:f"),
    (0xB6, "f32.demote_f64", "F:f"), (0xB7, "f64.convert_i32_s", "i:F"), (0xB8, "f64.convert_i32_u", "i:F"),
    (0xB9, "f64.convert_i64_s", "I:F"), (0xBA, "f64.convert_i64_u", "I:F"), (0xBB, "f64.promote_f32", "f:F"),
    (0xBC, "i32.reinterpret_f32", "f:i"), (0xBD, "i64.reinterpret_f64", "F:I"),
    (0xBE, "f32.reinterpret_i32", "i:f"), (0xBF, "f64.reinterpret_i64", "I:F"),
    (0xC0, "i32.extend8_s", "i:i"), (0xC1, "i32.extend16_s", "i:i"), (0xC2, "i64.extend8_s", "I:I"),
    (0xC3, "i64.extend16_s", "I:I"), (0xC4, "i64.extend32_s", "I:I"),
]:
    _op(_k, _n, NONE, _s)

# 0xFC prefix: saturating truncation, bulk memory, tables.
for _k, _n, _s in [
    (0, "i32.trunc_sat_f32_s", "f:i"), (1, "i32.trunc_sat_f32_u", "f:i"), (2, "i32.trunc_sat_f64_s", "F:i"),
    (3, "i32.trunc_sat_f64_u", "F:i"), (4, "i64.trunc_sat_f32_s", "f:I"), (5, "i64.trunc_sat_f32_u", "f:I"),
    (6, "i64.trunc_sat_f64_s", "F:I"), (7, "i64.trunc_sat_f64_u", "F:I"),
]:
    _op(FC | _k, _n, NONE, _s)
_op(FC | 8, "memory.init", MEMORY_INIT, "iii:")
_op(FC | 9, "data.drop", DATA, ":")
_op(FC | 10, "memory.copy", MEMORY_COPY, "iii:")
_op(FC | 11, "memory.fill", MEMORY_FILL, "iii:")
_op(FC | 12, "table.init", TABLE_INIT, "iii:")
_op(FC | 13, "elem.drop", ELEM, ":")
_op(FC | 14, "table.copy", TABLE_COPY, "iii:")
_op(FC | 15, "table.grow", TABLE)
_op(FC | 16, "table.size", TABLE, ":i")
_op(FC | 17, "table.fill", TABLE)

# 0xFD prefix: SIMD. Decoded and validated; execution comes later.
for _k, _n, _a in [
    (0, "v128.load", 4), (1, "v128.load8x8_s", 3), (2, "v128.load8x8_u", 3), (3, "v128.load16x4_s", 3),
    (4, "v128.load16x4_u", 3), (5, "v128.load32x2_s", 3), (6, "v128.load32x2_u", 3),
    (7, "v128.load8_splat", 0), (8, "v128.load16_splat", 1), (9, "v128.load32_splat", 2),
    (10, "v128.load64_splat", 3), (92, "v128.load32_zero", 2), (93, "v128.load64_zero", 3),
]:
    _op(FD | _k, _n, MEMARG, "i:v", _a)
_op(FD | 11, "v128.store", MEMARG, "iv:", 4)
_op(FD | 12, "v128.const", V128, ":v")
_op(FD | 13, "i8x16.shuffle", SHUFFLE, "vv:v")
for _k, _n, _s in [
    (21, "i8x16.extract_lane_s", "v:i"), (22, "i8x16.extract_lane_u", "v:i"), (23, "i8x16.replace_lane", "vi:v"),
    (24, "i16x8.extract_lane_s", "v:i"), (25, "i16x8.extract_lane_u", "v:i"), (26, "i16x8.replace_lane", "vi:v"),
    (27, "i32x4.extract_lane", "v:i"), (28, "i32x4.replace_lane", "vi:v"), (29, "i64x2.extract_lane", "v:I"),
    (30, "i64x2.replace_lane", "vI:v"), (31, "f32x4.extract_lane", "v:f"), (32, "f32x4.replace_lane", "vf:v"),
    (33, "f64x2.extract_lane", "v:F"), (34, "f64x2.replace_lane", "vF:v"),
]:
    _op(FD | _k, _n, LANE, _s)
for _k, _n, _s, _a in [
    (84, "v128.load8_lane", "iv:v", 0), (85, "v128.load16_lane", "iv:v", 1), (86, "v128.load32_lane", "iv:v", 2),
    (87, "v128.load64_lane", "iv:v", 3), (88, "v128.store8_lane", "iv:", 0), (89, "v128.store16_lane", "iv:", 1),
    (90, "v128.store32_lane", "iv:", 2), (91, "v128.store64_lane", "iv:", 3),
]:
    _op(FD | _k, _n, MEMARG_LANE, _s, _a)
_op(FD | 14, "i8x16.swizzle", NONE, "vv:v")
for _k, _n, _s in [(15, "i8x16.splat", "i:v"), (16, "i16x8.splat", "i:v"), (17, "i32x4.splat", "i:v"),
                   (18, "i64x2.splat", "I:v"), (19, "f32x4.splat", "f:v"), (20, "f64x2.splat", "F:v")]:
    _op(FD | _k, _n, NONE, _s)

_SIMD_SIMPLE = """
35 i8x16.eq vv:v|36 i8x16.ne vv:v|37 i8x16.lt_s vv:v|38 i8x16.lt_u vv:v|39 i8x16.gt_s vv:v|40 i8x16.gt_u vv:v
41 i8x16.le_s vv:v|42 i8x16.le_u vv:v|43 i8x16.ge_s vv:v|44 i8x16.ge_u vv:v
45 i16x8.eq vv:v|46 i16x8.ne vv:v|47 i16x8.lt_s vv:v|48 i16x8.lt_u vv:v|49 i16x8.gt_s vv:v|50 i16x8.gt_u vv:v
51 i16x8.le_s vv:v|52 i16x8.le_u vv:v|53 i16x8.ge_s vv:v|54 i16x8.ge_u vv:v
55 i32x4.eq vv:v|56 i32x4.ne vv:v|57 i32x4.lt_s vv:v|58 i32x4.lt_u vv:v|59 i32x4.gt_s vv:v|60 i32x4.gt_u vv:v
61 i32x4.le_s vv:v|62 i32x4.le_u vv:v|63 i32x4.ge_s vv:v|64 i32x4.ge_u vv:v
65 f32x4.eq vv:v|66 f32x4.ne vv:v|67 f32x4.lt vv:v|68 f32x4.gt vv:v|69 f32x4.le vv:v|70 f32x4.ge vv:v
71 f64x2.eq vv:v|72 f64x2.ne vv:v|73 f64x2.lt vv:v|74 f64x2.gt vv:v|75 f64x2.le vv:v|76 f64x2.ge vv:v
77 v128.not v:v|78 v128.and vv:v|79 v128.andnot vv:v|80 v128.or vv:v|81 v128.xor vv:v|82 v128.bitselect vvv:v
83 v128.any_true v:i|94 f32x4.demote_f64x2_zero v:v|95 f64x2.promote_low_f32x4 v:v
96 i8x16.abs v:v|97 i8x16.neg v:v|98 i8x16.popcnt v:v|99 i8x16.all_true v:i|100 i8x16.bitmask v:i
101 i8x16.narrow_i16x8_s vv:v|102 i8x16.narrow_i16x8_u vv:v|103 f32x4.ceil v:v|104 f32x4.floor v:v
105 f32x4.trunc v:v|106 f32x4.nearest v:v|107 i8x16.shl vi:v|108 i8x16.shr_s vi:v|109 i8x16.shr_u vi:v
110 i8x16.add vv:v|111 i8x16.add_sat_s vv:v|112 i8x16.add_sat_u vv:v|113 i8x16.sub vv:v
114 i8x16.sub_sat_s vv:v|115 i8x16.sub_sat_u vv:v|116 f64x2.ceil v:v|117 f64x2.floor v:v
118 i8x16.min_s vv:v|119 i8x16.min_u vv:v|120 i8x16.max_s vv:v|121 i8x16.max_u vv:v|122 f64x2.trunc v:v
123 i8x16.avgr_u vv:v|124 i16x8.extadd_pairwise_i8x16_s v:v|125 i16x8.extadd_pairwise_i8x16_u v:v
126 i32x4.extadd_pairwise_i16x8_s v:v|127 i32x4.extadd_pairwise_i16x8_u v:v
128 i16x8.abs v:v|129 i16x8.neg v:v|130 i16x8.q15mulr_sat_s vv:v|131 i16x8.all_true v:i|132 i16x8.bitmask v:i
133 i16x8.narrow_i32x4_s vv:v|134 i16x8.narrow_i32x4_u vv:v|135 i16x8.extend_low_i8x16_s v:v
136 i16x8.extend_high_i8x16_s v:v|137 i16x8.extend_low_i8x16_u v:v|138 i16x8.extend_high_i8x16_u v:v
139 i16x8.shl vi:v|140 i16x8.shr_s vi:v|141 i16x8.shr_u vi:v|142 i16x8.add vv:v|143 i16x8.add_sat_s vv:v
144 i16x8.add_sat_u vv:v|145 i16x8.sub vv:v|146 i16x8.sub_sat_s vv:v|147 i16x8.sub_sat_u vv:v
148 f64x2.nearest v:v|149 i16x8.mul vv:v|150 i16x8.min_s vv:v|151 i16x8.min_u vv:v|152 i16x8.max_s vv:v
153 i16x8.max_u vv:v|155 i16x8.avgr_u vv:v|156 i16x8.extmul_low_i8x16_s vv:v|157 i16x8.extmul_high_i8x16_s vv:v
158 i16x8.extmul_low_i8x16_u vv:v|159 i16x8.extmul_high_i8x16_u vv:v
160 i32x4.abs v:v|161 i32x4.neg v:v|163 i32x4.all_true v:i|164 i32x4.bitmask v:i
167 i32x4.extend_low_i16x8_s v:v|168 i32x4.extend_high_i16x8_s v:v|169 i32x4.extend_low_i16x8_u v:v
170 i32x4.extend_high_i16x8_u v:v|171 i32x4.shl vi:v|172 i32x4.shr_s vi:v|173 i32x4.shr_u vi:v
174 i32x4.add vv:v|177 i32x4.sub vv:v|181 i32x4.mul vv:v|182 i32x4.min_s vv:v|183 i32x4.min_u vv:v
184 i32x4.max_s vv:v|185 i32x4.max_u vv:v|186 i32x4.dot_i16x8_s vv:v|188 i32x4.extmul_low_i16x8_s vv:v
189 i32x4.extmul_high_i16x8_s vv:v|190 i32x4.extmul_low_i16x8_u vv:v|191 i32x4.extmul_high_i16x8_u vv:v
192 i64x2.abs v:v|193 i64x2.neg v:v|195 i64x2.all_true v:i|196 i64x2.bitmask v:i
199 i64x2.extend_low_i32x4_s v:v|200 i64x2.extend_high_i32x4_s v:v|201 i64x2.extend_low_i32x4_u v:v
202 i64x2.extend_high_i32x4_u v:v|203 i64x2.shl vi:v|204 i64x2.shr_s vi:v|205 i64x2.shr_u vi:v
206 i64x2.add vv:v|209 i64x2.sub vv:v|213 i64x2.mul vv:v|214 i64x2.eq vv:v|215 i64x2.ne vv:v
216 i64x2.lt_s vv:v|217 i64x2.gt_s vv:v|218 i64x2.le_s vv:v|219 i64x2.ge_s vv:v
220 i64x2.extmul_low_i32x4_s vv:v|221 i64x2.extmul_high_i32x4_s vv:v|222 i64x2.extmul_low_i32x4_u vv:v
223 i64x2.extmul_high_i32x4_u vv:v|224 f32x4.abs v:v|225 f32x4.neg v:v|227 f32x4.sqrt v:v|228 f32x4.add vv:v
229 f32x4.sub vv:v|230 f32x4.mul vv:v|231 f32x4.div vv:v|232 f32x4.min vv:v|233 f32x4.max vv:v
234 f32x4.pmin vv:v|235 f32x4.pmax vv:v|236 f64x2.abs v:v|237 f64x2.neg v:v|239 f64x2.sqrt v:v
240 f64x2.add vv:v|241 f64x2.sub vv:v|242 f64x2.mul vv:v|243 f64x2.div vv:v|244 f64x2.min vv:v
245 f64x2.max vv:v|246 f64x2.pmin vv:v|247 f64x2.pmax vv:v|248 i32x4.trunc_sat_f32x4_s v:v
249 i32x4.trunc_sat_f32x4_u v:v|250 f32x4.convert_i32x4_s v:v|251 f32x4.convert_i32x4_u v:v
252 i32x4.trunc_sat_f64x2_s_zero v:v|253 i32x4.trunc_sat_f64x2_u_zero v:v|254 f64x2.convert_low_i32x4_s v:v
255 f64x2.convert_low_i32x4_u v:v
"""
for _entry in _SIMD_SIMPLE.replace("\n", "|").split("|"):
    if _entry.strip():
        _k, _n, _s = _entry.split()
        _op(FD | int(_k), _n, NONE, _s)

# Relaxed SIMD (0xFD 0x100 and up); their results where the proposal lets engines differ: vm/simd.h.
_RELAXED = """
0x100 i8x16.relaxed_swizzle vv:v|0x101 i32x4.relaxed_trunc_f32x4_s v:v|0x102 i32x4.relaxed_trunc_f32x4_u v:v
0x103 i32x4.relaxed_trunc_f64x2_s_zero v:v|0x104 i32x4.relaxed_trunc_f64x2_u_zero v:v
0x105 f32x4.relaxed_madd vvv:v|0x106 f32x4.relaxed_nmadd vvv:v|0x107 f64x2.relaxed_madd vvv:v
0x108 f64x2.relaxed_nmadd vvv:v|0x109 i8x16.relaxed_laneselect vvv:v|0x10a i16x8.relaxed_laneselect vvv:v
0x10b i32x4.relaxed_laneselect vvv:v|0x10c i64x2.relaxed_laneselect vvv:v|0x10d f32x4.relaxed_min vv:v
0x10e f32x4.relaxed_max vv:v|0x10f f64x2.relaxed_min vv:v|0x110 f64x2.relaxed_max vv:v
0x111 i16x8.relaxed_q15mulr_s vv:v|0x112 i16x8.relaxed_dot_i8x16_i7x16_s vv:v
0x113 i32x4.relaxed_dot_i8x16_i7x16_add_s vvv:v
"""
for _entry in _RELAXED.replace("\n", "|").split("|"):
    if _entry.strip():
        _k, _n, _s = _entry.split()
        _op(FD | int(_k, 16), _n, NONE, _s)
RELAXED_SIMD_FIRST = 0x100

# 0xFE prefix: the threads proposal's atomic memory instructions (their alignment must be the natural one).
_op(FE | 0x00, "memory.atomic.notify", MEMARG, "ii:i", 2)
_op(FE | 0x01, "memory.atomic.wait32", MEMARG, "iiI:i", 2)
_op(FE | 0x02, "memory.atomic.wait64", MEMARG, "iII:i", 3)
_op(FE | 0x03, "atomic.fence", FENCE, ":")
for _k, _n, _s, _a in [
    (0x10, "i32.atomic.load", "i:i", 2), (0x11, "i64.atomic.load", "i:I", 3), (0x12, "i32.atomic.load8_u", "i:i", 0),
    (0x13, "i32.atomic.load16_u", "i:i", 1), (0x14, "i64.atomic.load8_u", "i:I", 0),
    (0x15, "i64.atomic.load16_u", "i:I", 1), (0x16, "i64.atomic.load32_u", "i:I", 2),
    (0x17, "i32.atomic.store", "ii:", 2), (0x18, "i64.atomic.store", "iI:", 3), (0x19, "i32.atomic.store8", "ii:", 0),
    (0x1A, "i32.atomic.store16", "ii:", 1), (0x1B, "i64.atomic.store8", "iI:", 0),
    (0x1C, "i64.atomic.store16", "iI:", 1), (0x1D, "i64.atomic.store32", "iI:", 2),
]:
    _op(FE | _k, _n, MEMARG, _s, _a)
# Read-modify-write: seven forms of each operation, from 0x1E on, in this order.
ATOMIC_RMW = ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")
for _i, _rmw in enumerate(ATOMIC_RMW):
    _x = "ii" if _rmw == "cmpxchg" else "i"
    _X = "II" if _rmw == "cmpxchg" else "I"
    for _j, (_n, _s, _a) in enumerate([
        (f"i32.atomic.rmw.{_rmw}", f"i{_x}:i", 2), (f"i64.atomic.rmw.{_rmw}", f"i{_X}:I", 3),
        (f"i32.atomic.rmw8.{_rmw}_u", f"i{_x}:i", 0), (f"i32.atomic.rmw16.{_rmw}_u", f"i{_x}:i", 1),
        (f"i64.atomic.rmw8.{_rmw}_u", f"i{_X}:I", 0), (f"i64.atomic.rmw16.{_rmw}_u", f"i{_X}:I", 1),
        (f"i64.atomic.rmw32.{_rmw}_u", f"i{_X}:I", 2),
    ]):
        _op(FE | (0x1E + 7 * _i + _j), _n, MEMARG, _s, _a)

PREFIXES = (0xFC, 0xFD, 0xFE)


def op_name(key: int) -> str:
    info = OPS.get(key)
    return info.name if info else f"<opcode {key:#x}>"
