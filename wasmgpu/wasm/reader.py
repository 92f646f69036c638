"""The WebAssembly 2.0 binary decoder: bytes in, a ``types.Module`` out.

Public entry point: :func:`decode_module`. Anything malformed raises
``DecodeError(reason, offset)``; the opcodes of a proposal whose feature is off (atomics without threads,
relaxed SIMD) raise ``Unsupported`` naming the feature and the offset instead. No other
exception escapes, whatever the input.
Reasons use the wording of the spec interpreter where it has one, because the
spec suite's ``assert_malformed`` carries that text.

Conventions of the decoded module:

* Instructions are ``(opkey, imm, offset)`` tuples (``types.Instr``): the opcode
  key of ``opcodes.OPS``, the immediate, and the byte offset of the opcode (of
  the prefix byte for 0xFC/0xFD instructions) in the whole module.
* Block types (``block``, ``loop``, ``if``): ``None`` for the empty type (0x40),
  an ``int`` value type (e.g. ``opcodes.I32_T``) for a single result, or the
  tuple ``("type", typeidx)`` for a type index.
* Other immediates: indices are ints; ``br_table`` is ``(labels tuple, default)``;
  ``call_indirect`` is ``(typeidx, tableidx)``; memargs are ``(align exponent,
  offset)``, with a third item, the memory, when it is not the first (multi-memory);
  ``memory.size/grow/fill`` have their memory index, ``memory.copy``
  ``(dst, src)`` memories, ``memory.init`` ``(dataidx, memory)`` (without
  multi-memory the reserved zero bytes are checked); ``i32.const``/``i64.const`` hold
  the signed value; ``f32.const``/``f64.const`` the raw little-endian bits as an
  unsigned int; ``ref.null`` its reference type byte; typed ``select`` a tuple of
  value types; ``table.init`` ``(elemidx, tableidx)``; ``table.copy`` ``(dst,
  src)``; ``v128.const`` 16 bytes; shuffles a tuple of 16 ints; lanes an int;
  lane memory ops ``(align, offset, lane)``.
* Function bodies keep their final ``end``; constant expressions drop theirs.
* Element segments in the function-index forms (flags 0-3) become one
  ``ref.func`` instruction per element, with the offset of the index's bytes,
  so ``Elem.init`` is always a list of constant expressions.
* Memory limit flags 2/3 mean a shared memory (``MemoryType.shared``); table
  limit flags must be 0/1.
* ``CustomSection.offset`` is the offset of the section's id byte.
* The "name" custom section fills ``Module.module_name`` and ``func_names``;
  a malformed name section never fails the module: the subsections that decoded
  before the fault are kept and the rest is ignored.

Function bodies are decoded without recursion (block nesting is a counter plus a
small stack), so deeply nested code cannot hit Python's recursion limit.
"""

from __future__ import annotations

import functools
import hashlib

from wasmgpu.errors import DecodeError, Unsupported
from wasmgpu.wasm import opcodes as O
from wasmgpu.wasm.features import DEFAULT, Features
from wasmgpu.wasm.types import (
    Code,
    CustomSection,
    Data,
    Elem,
    Export,
    FuncType,
    Global,
    GlobalType,
    Import,
    Instr,
    Limits,
    MemoryType,
    Module,
    TableType,
)

__all__ = ["decode_module", "MAX_LOCALS"]

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

# The spec allows up to 2**32-1 locals, but Code.locals is expanded one entry per
# local, so a hostile count would exhaust memory. Engines cap it (wasmtime, V8: 50000).
MAX_LOCALS = 50_000

_END_MSG = "unexpected end of section or function"

# Section ids in the order the spec requires them (the data count section, id 12,
# sits between the element and the code sections).
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 5.5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

_EXTERN_KINDS = ("func", "table", "memory", "global", "tag")

# ---------------------------------------------------------------------------
# Immediate kinds as small ints, for a fast if-chain in the instruction loop.
# ---------------------------------------------------------------------------
K_NONE, K_IDX, K_I32, K_MEMARG, K_END, K_BLOCK, K_ELSE, K_PREFIX = range(8)
K_BR_TABLE, K_CALL_INDIRECT, K_MEMORY, K_I64, K_F32, K_F64, K_REFTYPE = range(8, 15)
K_SELECT_T, K_MEMORY_INIT, K_MEMORY_COPY, K_MEMORY_FILL, K_TABLE_INIT = range(15, 20)
K_TABLE_COPY, K_V128, K_SHUFFLE, K_LANE, K_MEMARG_LANE, K_FENCE, K_TRY_TABLE = range(20, 27)

_KIND_CODES = {
    O.NONE: K_NONE, O.BLOCKTYPE: K_BLOCK, O.LABEL: K_IDX, O.BR_TABLE: K_BR_TABLE, O.FUNC: K_IDX,
    O.CALL_INDIRECT: K_CALL_INDIRECT, O.LOCAL: K_IDX, O.GLOBAL: K_IDX, O.TABLE: K_IDX, O.MEMARG: K_MEMARG,
    O.MEMORY: K_MEMORY, O.I32: K_I32, O.I64: K_I64, O.F32: K_F32, O.F64: K_F64, O.REFTYPE: K_REFTYPE,
    O.SELECT_T: K_SELECT_T, O.MEMORY_INIT: K_MEMORY_INIT, O.DATA: K_IDX, O.MEMORY_COPY: K_MEMORY_COPY,
    O.MEMORY_FILL: K_MEMORY_FILL, O.TABLE_INIT: K_TABLE_INIT, O.ELEM: K_IDX, O.TABLE_COPY: K_TABLE_COPY,
    O.V128: K_V128, O.SHUFFLE: K_SHUFFLE, O.LANE: K_LANE, O.MEMARG_LANE: K_MEMARG_LANE, O.FENCE: K_FENCE,
    O.TYPE: K_IDX, O.TAG: K_IDX, O.TRY_TABLE: K_TRY_TABLE,
}


def _build_kind_tables() -> tuple[list[int | None], dict[int, int]]:
    one: list[int | None] = [None] * 256
    prefixed: dict[int, int] = {}
    for key, info in O.OPS.items():
        code = _KIND_CODES[info.imm]
        if key < 256:
            one[key] = code
        else:
            prefixed[key] = code
    one[0x0B] = K_END
    one[0x05] = K_ELSE
    for p in O.PREFIXES:
        one[p] = K_PREFIX
    return one, prefixed


_KIND1, _KIND_PREFIXED = _build_kind_tables()
_KINDS_BY_FEATURES: dict[tuple[bool, bool, bool], list[int | None]] = {}


def _kinds(features: Features) -> list[int | None]:
    """The one-byte opcodes' kinds, without those of the proposals that are off (illegal, as 2.0 has them)."""
    key = (features.tail_call, features.function_references, features.exceptions)
    kinds = _KINDS_BY_FEATURES.get(key)
    if kinds is None:
        off = set()
        for on, ops in zip(key, (O.TAIL_CALL_OPS, O.FUNCTION_REFERENCE_OPS, O.EXCEPTION_OPS), strict=True):
            if not on:
                off.update(ops)
        if not (features.tail_call and features.function_references):
            off.add(0x15)  # return_call_ref needs both
        kinds = _KINDS_BY_FEATURES[key] = [None if op in off else k for op, k in enumerate(_KIND1)]
    return kinds



_MEMORY_INIT_KEY = O.FC | 8
_DATA_DROP_KEY = O.FC | 9
_REF_FUNC = 0xD2
_VALTYPES = frozenset(O.VALUE_TYPES)
_REFTYPES = frozenset(O.REF_TYPES)


# ---------------------------------------------------------------------------
# LEB128. Each reader takes (buf, position, base offset of buf in the module) and
# returns (value, new position). Running off buf raises IndexError, which callers
# turn into an "unexpected end" DecodeError at the end of the buffer.
# ---------------------------------------------------------------------------
def _u32(buf: bytes, p: int, base: int) -> tuple[int, int]:
    b = buf[p]
    if b < 0x80:
        return b, p + 1
    result = b & 0x7F
    shift = 7
    while True:
        p += 1
        b = buf[p]
        if shift == 28:
            # The fifth byte holds the top 4 bits; more means a value past 32 bits,
            # a continuation bit means a sixth byte, which is never allowed.
            if b & 0x70:
                raise DecodeError("integer too large", base + p)
            if b & 0x80:
                raise DecodeError("integer representation too long", base + p + 1)
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, p + 1
        shift += 7


def _u64(buf: bytes, p: int, base: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[p]
        if shift == 63:  # the tenth byte holds the top bit
            if b & 0x7E:
                raise DecodeError("integer too large", base + p)
            if b & 0x80:
                raise DecodeError("integer representation too long", base + p + 1)
        result |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            return result, p
        shift += 7


def _sleb(buf: bytes, p: int, base: int, bits: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        b = buf[p]
        left = bits - shift
        if left < 7:
            # The last byte: the bits beyond the value's width must all equal its sign bit.
            mask = (-1 << (left - 1)) & 0x7F
            if b & mask not in (0, mask):
                raise DecodeError("integer too large", base + p)
            if b & 0x80:
                raise DecodeError("integer representation too long", base + p + 1)
        result |= (b & 0x7F) << shift
        p += 1
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, p


def _s32(buf: bytes, p: int, base: int) -> tuple[int, int]:
    b = buf[p]
    if b < 0x40:
        return b, p + 1
    return _sleb(buf, p, base, 32)


def _s64(buf: bytes, p: int, base: int) -> tuple[int, int]:
    b = buf[p]
    if b < 0x40:
        return b, p + 1
    return _sleb(buf, p, base, 64)


def _take(buf: bytes, p: int, n: int) -> bytes:
    """n raw bytes at p; a short read raises IndexError like any other overrun."""
    if p + n > len(buf):
        raise IndexError
    return buf[p:p + n]


def _heaptype(buf: bytes, p: int, base: int, features: Features) -> tuple[int, int]:
    """A heap type (an abstract type's byte, or a type index as an s33) as opcodes encodes it."""
    b = buf[p]
    if b in O.ABSTRACT_HEAPS and (b not in (O.EXN_HT, O.NOEXN_HT) or features.exceptions) \
            and (b in (O.FUNC_HT, O.EXTERN_HT) or features.function_references or features.exceptions):
        return b, p + 1
    if b in O.GC_HEAPS:
        raise Unsupported(f"the GC proposal's heap type {O.GC_HEAPS[b]} is not supported yet (at byte offset "
                          f"{base + p:#x})")
    if not features.function_references:
        raise DecodeError("malformed reference type", base + p)
    idx, q = _sleb(buf, p, base, 33)
    if idx < 0:
        raise DecodeError("malformed heap type", base + p)
    return O.HEAP_INDEX + idx, q


def _valtype(buf: bytes, p: int, base: int, features: Features = DEFAULT) -> tuple[int, int]:
    """A value type and the position after it."""
    b = buf[p]
    if b in _VALTYPES:
        return b, p + 1
    if features.function_references or features.exceptions:
        if b == 0x63 or b == 0x64:  # (ref null ht), (ref ht)
            heap, q = _heaptype(buf, p + 1, base, features)
            return O.ref_type(b == 0x63, heap), q
        if b in O.ABSTRACT_HEAPS or b in O.GC_HEAPS:  # the shorthands: exnref, nullfuncref, ...
            heap, q = _heaptype(buf, p, base, features)
            return O.ref_type(True, heap), q
    if b & 0x80:
        # Value types are one-byte signed LEBs: a continuation bit makes it too long.
        raise DecodeError("integer representation too long", base + p + 1)
    raise DecodeError("malformed value type", base + p)


def _reftype(buf: bytes, p: int, base: int, features: Features = DEFAULT) -> tuple[int, int]:
    b = buf[p]
    if b in _REFTYPES:
        return b, p + 1
    if features.function_references or features.exceptions:
        try:
            t, q = _valtype(buf, p, base, features)
        except DecodeError:
            raise DecodeError("malformed reference type", base + p) from None
        if O.is_ref(t):
            return t, q
    raise DecodeError("malformed reference type", base + p)


def _zero(buf: bytes, p: int, base: int) -> int:
    """Check one reserved zero byte (a long LEB zero is not accepted either)."""
    if buf[p] != 0:
        raise DecodeError("zero byte expected", base + p)
    return p + 1


def _memarg(buf: bytes, p: int, base: int, multi: bool, wide: bool = False) -> tuple[tuple[int, ...], int]:
    """(align, offset), or (align, offset, memory) for a memory other than the first (multi-memory); `wide`
    (memory64): the offset is a u64, which validation bounds for 32-bit memories."""
    at = p
    align, p = _u32(buf, p, base)
    memory = 0
    if multi and 64 <= align < 128:  # bit 6: a memory index follows
        align -= 64
        memory, p = _u32(buf, p, base)
    elif align >= (64 if multi else 32):
        # Without multi-memory bit 6 is not defined; an exponent of 32 or more describes no alignment
        # (with it, one of 32 to 63 is decoded and found too large by validation).
        raise DecodeError("malformed memop flags", base + at)
    offset, p = _u64(buf, p, base) if wide else _u32(buf, p, base)
    return ((align, offset, memory) if memory else (align, offset)), p


def _memidx(buf: bytes, p: int, base: int, multi: bool) -> tuple[int, int]:
    """A memory instruction's memory: an index with multi-memory, else the reserved zero byte."""
    return _u32(buf, p, base) if multi else (0, _zero(buf, p, base))


def _blocktype(buf: bytes, p: int, base: int, features: Features = DEFAULT) -> tuple[object, int]:
    b = buf[p]
    if b == 0x40:
        return None, p + 1
    if b & 0xC0 == 0x40:
        # A one-byte negative s33: a value type (or garbage).
        return _valtype(buf, p, base, features)
    idx, q = _sleb(buf, p, base, 33)
    if idx < 0:
        raise DecodeError("malformed block type", base + p)
    return ("type", idx), q


def _read_imm(k: int, buf: bytes, p: int, base: int, multi: bool = False, wide: bool = False,
              features: Features = DEFAULT) -> tuple[object, int]:
    """The less common immediates (the hot ones are inlined in _decode_expr); `multi`: multi-memory's
    encodings. memory.size/grow/fill give their memory index, memory.copy (destination, source),
    memory.init (data segment, memory)."""
    if k == K_IDX:
        return _u32(buf, p, base)
    if k == K_MEMARG:
        return _memarg(buf, p, base, multi, wide)
    if k == K_I32:
        return _s32(buf, p, base)
    if k == K_I64:
        return _s64(buf, p, base)
    if k == K_F32:
        return int.from_bytes(_take(buf, p, 4), "little"), p + 4
    if k == K_F64:
        return int.from_bytes(_take(buf, p, 8), "little"), p + 8
    if k == K_BR_TABLE:
        n, p = _u32(buf, p, base)
        labels = []
        for _ in range(n):  # each label takes at least a byte, so a huge n runs out fast
            x, p = _u32(buf, p, base)
            labels.append(x)
        default, p = _u32(buf, p, base)
        return (tuple(labels), default), p
    if k == K_CALL_INDIRECT or k == K_TABLE_INIT or k == K_TABLE_COPY:
        a, p = _u32(buf, p, base)
        b, p = _u32(buf, p, base)
        return (a, b), p
    if k == K_MEMORY or k == K_MEMORY_FILL:
        return _memidx(buf, p, base, multi)
    if k == K_MEMORY_COPY:
        dst, p = _memidx(buf, p, base, multi)
        src, p = _memidx(buf, p, base, multi)
        return (dst, src), p
    if k == K_MEMORY_INIT:
        x, p = _u32(buf, p, base)
        m, p = _memidx(buf, p, base, multi)
        return (x, m), p
    if k == K_REFTYPE:  # ref.null's heap type: kept as the nullable reference type
        if buf[p] in _REFTYPES:
            return buf[p], p + 1
        try:
            heap, p = _heaptype(buf, p, base, features)
        except DecodeError as e:
            raise DecodeError("malformed reference type", e.offset) from None
        return O.ref_type(True, heap), p
    if k == K_SELECT_T:
        n, p = _u32(buf, p, base)
        ts = []
        for _ in range(n):
            t, p = _valtype(buf, p, base, features)
            ts.append(t)
        return tuple(ts), p
    if k == K_TRY_TABLE:
        bt, p = _blocktype(buf, p, base, features)
        n, p = _u32(buf, p, base)
        catches = []
        for _ in range(n):
            at = p
            kind = buf[p]
            p += 1
            if kind > O.CATCH_ALL_REF:
                raise DecodeError("malformed catch clause", base + at)
            tag = None
            if kind in (O.CATCH, O.CATCH_REF):
                tag, p = _u32(buf, p, base)
            label, p = _u32(buf, p, base)
            catches.append((kind, tag, label))
        return (bt, tuple(catches)), p
    if k == K_V128:
        return _take(buf, p, 16), p + 16
    if k == K_SHUFFLE:
        return tuple(_take(buf, p, 16)), p + 16
    if k == K_LANE:
        return buf[p], p + 1
    if k == K_MEMARG_LANE:
        arg, p = _memarg(buf, p, base, multi, wide)
        return (arg[0], arg[1], buf[p], *arg[2:]), p + 1  # (align, offset, lane[, memory])
    if k == K_FENCE:
        if buf[p] != 0:
            raise DecodeError("malformed atomic.fence: its reserved byte must be zero", base + p)
        return None, p + 1
    raise AssertionError(f"unhandled immediate kind {k}")  # a table bug, not bad input


def _decode_expr(buf: bytes, p: int, base: int, keep_end: bool,
                 exhausted_msg: str, features: Features = DEFAULT) -> tuple[list[Instr], int, bool]:
    """Decode instructions from buf[p:] up to the `end` closing the expression.

    Returns (instructions, position after the final end, whether memory.init or
    data.drop occurred). keep_end keeps the final `end` (function bodies).
    exhausted_msg is the reason given when buf runs out between instructions
    with blocks still open; running out inside an instruction is always
    "unexpected end of section or function".
    """
    out: list[Instr] = []
    append = out.append
    kinds = _kinds(features)
    multi = features.multi_memory
    wide = features.memory64
    relaxed = features.relaxed_simd
    # Open blocks: 0 for block/loop, 1 for an if before its else, 2 after it.
    ctl: list[int] = []
    uses_data = False
    start = p
    try:
        while True:
            start = p
            op = buf[p]
            k = kinds[op]
            p += 1
            if k == K_NONE:
                append((op, None, base + start))
            elif k == K_IDX:
                b = buf[p]
                if b < 0x80:
                    p += 1
                    append((op, b, base + start))
                else:
                    x, p = _u32(buf, p, base)
                    append((op, x, base + start))
            elif k == K_I32:
                b = buf[p]
                if b < 0x40:
                    p += 1
                    append((op, b, base + start))
                else:
                    x, p = _sleb(buf, p, base, 32)
                    append((op, x, base + start))
            elif k == K_END:
                if not ctl:
                    if keep_end:
                        append((op, None, base + start))
                    return out, p, uses_data
                ctl.pop()
                append((op, None, base + start))
            elif k == K_MEMARG:
                imm, p = _memarg(buf, p, base, multi, wide)
                append((op, imm, base + start))
            elif k == K_BLOCK:
                imm, p = _blocktype(buf, p, base, features)
                ctl.append(1 if op == 0x04 else 0)
                append((op, imm, base + start))
            elif k == K_ELSE:
                if not ctl or ctl[-1] != 1:
                    raise DecodeError("misplaced ELSE opcode", base + start)
                ctl[-1] = 2
                append((op, None, base + start))
            elif k == K_PREFIX:
                sub, p = _u32(buf, p, base)
                key = op << 16 | sub
                k = _KIND_PREFIXED.get(key) if sub < 0x10000 else None
                if k is not None and op == 0xFE and not features.threads:
                    raise Unsupported("atomic memory instructions need the threads feature, which is off "
                                      f"(at byte offset {base + start:#x})")
                if k is not None and op == 0xFD and sub >= O.RELAXED_SIMD_FIRST and not relaxed:
                    raise Unsupported("relaxed SIMD instructions need the relaxed-simd feature, which is off "
                                      f"(at byte offset {base + start:#x})")
                if k is None:
                    raise DecodeError(f"illegal opcode {op:02x} {sub:02x}", base + start)
                if k == K_NONE:
                    imm = None
                else:
                    imm, p = _read_imm(k, buf, p, base, multi, wide, features)
                if key == _MEMORY_INIT_KEY or key == _DATA_DROP_KEY:
                    uses_data = True
                append((key, imm, base + start))
            elif k is None:
                raise DecodeError(f"illegal opcode {op:02x}", base + start)
            elif k == K_TRY_TABLE:
                imm, p = _read_imm(k, buf, p, base, multi, wide, features)
                ctl.append(0)
                append((op, imm, base + start))
            else:
                imm, p = _read_imm(k, buf, p, base, multi, wide, features)
                append((op, imm, base + start))
    except IndexError:
        if start >= len(buf):
            raise DecodeError(exhausted_msg, base + len(buf)) from None
        raise DecodeError(_END_MSG, base + len(buf)) from None


# ---------------------------------------------------------------------------
# Sections.
# ---------------------------------------------------------------------------
class _Reader:
    """A cursor over one section's payload (buf), which starts at `base` in the module."""

    __slots__ = ("buf", "pos", "base", "memory64", "features")

    def __init__(self, buf: bytes, base: int, pos: int = 0, features: Features = DEFAULT) -> None:
        self.buf = buf
        self.base = base
        self.pos = pos
        self.features = features  # what types may be
        self.memory64 = features.memory64  # limits flag 4: a 64-bit memory, its limits u64

    def at(self) -> int:
        return self.base + self.pos

    def done(self) -> bool:
        return self.pos >= len(self.buf)

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        v, self.pos = _u32(self.buf, self.pos, self.base)
        return v

    def u64(self) -> int:
        v, self.pos = _u64(self.buf, self.pos, self.base)
        return v

    def valtype(self) -> int:
        t, self.pos = _valtype(self.buf, self.pos, self.base, self.features)
        return t

    def reftype(self) -> int:
        t, self.pos = _reftype(self.buf, self.pos, self.base, self.features)
        return t

    def raw(self, n: int, msg: str = _END_MSG) -> bytes:
        if self.pos + n > len(self.buf):
            raise DecodeError(msg, self.base + len(self.buf))
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def length(self) -> int:
        """A byte count that must fit in what is left of the buffer."""
        at = self.at()
        n = self.u32()
        if n > len(self.buf) - self.pos:
            raise DecodeError("length out of bounds", at)
        return n

    def name(self) -> str:
        at = self.at()
        raw = self.raw(self.length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("malformed UTF-8 encoding", at) from None

    def const_expr(self) -> list[Instr]:
        expr, self.pos, _ = _decode_expr(self.buf, self.pos, self.base, False, _END_MSG, self.features)
        return expr


def _limits(r: _Reader, max_flag: int) -> tuple[Limits, int]:
    """Limits and their flag byte; flags above max_flag are malformed. Flag 4 (memory64): u64 limits."""
    at = r.at()
    flag = r.byte()
    # The flag is a one-byte LEB; the spec's wording for a bad one is the LEB's.
    if flag & 0x80:
        raise DecodeError("integer representation too long", at + 1)
    if flag > max_flag:
        if flag & 4 and not r.memory64 and flag & ~4 <= max_flag:
            raise DecodeError("integer too large (64-bit limits: memory64 is not enabled)", at)
        raise DecodeError("integer too large", at)
    read = r.u64 if flag & 4 else r.u32
    lo = read()
    hi = read() if flag & 1 else None
    return Limits(lo, hi), flag


def _table_type(r: _Reader) -> TableType:
    elem = r.reftype()
    limits, flag = _limits(r, 5 if r.memory64 else 1)
    if flag & 2:  # no shared tables
        raise DecodeError("integer too large", r.at())
    return TableType(elem, limits, table64=bool(flag & 4))


def _memory_type(r: _Reader) -> MemoryType:
    limits, flag = _limits(r, 7 if r.memory64 else 3)
    return MemoryType(limits, shared=bool(flag & 2), memory64=bool(flag & 4))


def _global_type(r: _Reader) -> GlobalType:
    t = r.valtype()
    at = r.at()
    mut = r.byte()
    if mut > 1:
        raise DecodeError("malformed mutability", at)
    return GlobalType(t, bool(mut))


def _type_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        at = r.at()
        form = r.byte()
        if form != 0x60:
            if form in (0x4E, 0x4F, 0x50, 0x5E, 0x5F) and r.features.function_references:
                raise Unsupported("the GC proposal's recursive, sub, struct and array types are not supported yet "
                                  f"(at byte offset {at:#x})")
            if form & 0x80:
                raise DecodeError("integer representation too long", at + 1)
            raise DecodeError("malformed function type", at)
        params = tuple(r.valtype() for _ in range(r.u32()))
        results = tuple(r.valtype() for _ in range(r.u32()))
        m.types.append(FuncType(params, results))


def _import_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        module = r.name()
        name = r.name()
        at = r.at()
        kind = r.byte()
        desc: int | TableType | MemoryType | GlobalType
        if kind == 0:
            desc = r.u32()
        elif kind == 1:
            desc = _table_type(r)
        elif kind == 2:
            desc = _memory_type(r)
        elif kind == 3:
            desc = _global_type(r)
        elif kind == 4 and r.features.exceptions:
            desc = _tag_type(r)
        else:
            raise DecodeError("malformed import kind", at)
        m.imports.append(Import(module, name, _EXTERN_KINDS[kind], desc))


def _function_section(r: _Reader, m: Module) -> None:
    m.funcs.extend(r.u32() for _ in range(r.u32()))


def _table_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        init = None
        if r.buf[r.pos] == 0x40 and r.features.function_references:  # a table type with an initializer
            r.pos += 1
            r.pos = _zero(r.buf, r.pos, r.base)
            tt = _table_type(r)
            init = r.const_expr()
        else:
            tt = _table_type(r)
        m.tables.append(tt)
        m.table_inits.append(init)


def _tag_type(r: _Reader) -> int:
    at = r.at()
    if r.byte() != 0x00:
        raise DecodeError("malformed tag attribute", at)
    return r.u32()


def _tag_section(r: _Reader, m: Module) -> None:
    m.tags.extend(_tag_type(r) for _ in range(r.u32()))


def _memory_section(r: _Reader, m: Module) -> None:
    m.mems.extend(_memory_type(r) for _ in range(r.u32()))


def _global_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        gt = _global_type(r)
        m.globals.append(Global(gt, r.const_expr()))


def _export_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        name = r.name()
        at = r.at()
        kind = r.byte()
        if kind > (4 if r.features.exceptions else 3):
            raise DecodeError("malformed export kind", at)
        m.exports.append(Export(name, _EXTERN_KINDS[kind], r.u32()))


def _start_section(r: _Reader, m: Module) -> None:
    m.start = r.u32()


def _index_elem_type(r: _Reader) -> int:
    """The type of a segment of function indices: (ref func), which 2.0 could only call funcref."""
    return O.ref_type(False, O.FUNC_HT) if r.features.function_references else O.FUNCREF


def _elem_kind(r: _Reader) -> int:
    at = r.at()
    if r.byte() != 0x00:
        raise DecodeError("malformed element kind", at)
    return _index_elem_type(r)


def _func_index_inits(r: _Reader) -> list[list[Instr]]:
    """A vector of function indices, as one ref.func constant expression each."""
    inits = []
    for _ in range(r.u32()):
        at = r.at()
        inits.append([(_REF_FUNC, r.u32(), at)])
    return inits


def _elem_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        at = r.at()
        flags = r.u32()
        if flags > 7:
            raise DecodeError("malformed elements segment kind", at)
        # Bit 0: passive or declarative (else active); bit 1: explicit table index
        # (active) or declarative (else passive); bit 2: expressions, not indices.
        passive_or_declarative = flags & 1
        table = 0
        offset = None
        if passive_or_declarative:
            mode = "declarative" if flags & 2 else "passive"
        else:
            mode = "active"
            if flags & 2:
                table = r.u32()
            offset = r.const_expr()
        if flags & 4:
            # Forms 4 and 5..7: a reference type (implicitly funcref for form 4), then expressions.
            reftype = r.reftype() if flags != 4 else O.FUNCREF
            inits = [r.const_expr() for _ in range(r.u32())]
        else:
            reftype = _elem_kind(r) if flags != 0 else _index_elem_type(r)
            inits = _func_index_inits(r)
        m.elems.append(Elem(mode, reftype, inits, table, offset))


def _datacount_section(r: _Reader, m: Module) -> None:
    m.data_count = r.u32()


def _data_section(r: _Reader, m: Module) -> None:
    for _ in range(r.u32()):
        at = r.at()
        flags = r.u32()
        if flags > 2:
            raise DecodeError("malformed data segment kind", at)
        memory = 0
        offset = None
        if flags == 1:
            mode = "passive"
        else:
            mode = "active"
            if flags == 2:
                memory = r.u32()
            offset = r.const_expr()
        n = r.u32()
        m.datas.append(Data(mode, r.raw(n), memory, offset))


def _code_section(r: _Reader, m: Module, data: bytes, state: _State) -> None:
    for _ in range(r.u32()):
        at = r.at()
        size = r.length()
        start = r.base + r.pos
        body = r.raw(size)
        r_body = _Reader(body, start, features=state.features)
        try:
            locals_ = _locals(r_body)
        except IndexError:
            raise DecodeError(_END_MSG, start + size) from None
        # Running out of body bytes between instructions means a missing `end`;
        # at the very end of the module the spec interpreter calls it an unexpected end.
        exhausted = _END_MSG if start + size == len(data) else "END opcode expected"
        if state.checked:
            later = functools.partial(_checked_body, body, r_body.pos, start, exhausted, state.features)
            m.codes.append(Code(locals_, None, at, size, later))
            continue
        instrs, pos, uses_data = _decode_expr(body, r_body.pos, start, True, exhausted, state.features)
        if pos != size:
            raise DecodeError("section size mismatch", start + pos)
        if uses_data:
            state.uses_data = True
            if state.first_data_use is None:
                state.first_data_use = next(
                    off for key, _, off in instrs if key == _MEMORY_INIT_KEY or key == _DATA_DROP_KEY)
        m.codes.append(Code(locals_, instrs, at, size))


def _checked_body(body: bytes, p: int, start: int, exhausted: str, features: Features) -> list[Instr]:
    """A function body of a binary that passed every check before (decode_module's `checked`)."""
    return _decode_expr(body, p, start, True, exhausted, features)[0]


def _locals(r: _Reader) -> list[int]:
    out: list[int] = []
    total = 0
    for _ in range(r.u32()):
        at = r.at()
        n = r.u32()
        t = r.valtype()
        total += n
        if total > MAX_LOCALS:
            raise DecodeError("too many locals", at)
        out.extend([t] * n)
    return out


def _name_section(payload: bytes, base: int, m: Module) -> None:
    """Fill module and function names; ignore whatever is malformed (engines do)."""
    r = _Reader(payload, base)
    try:
        while not r.done():
            sid = r.byte()
            size = r.length()
            sub = _Reader(r.raw(size), r.at() - size)
            if sid == 0:
                name = sub.name()
                if sub.done():
                    m.module_name = name
            elif sid == 1:
                names: dict[int, str] = {}
                for _ in range(sub.u32()):
                    idx = sub.u32()
                    names[idx] = sub.name()
                if sub.done():
                    m.func_names.update(names)
    except (DecodeError, IndexError):
        return


class _State:
    """What the module-level checks need to know after the sections."""

    __slots__ = ("uses_data", "first_data_use", "code_at", "data_at", "features", "checked")

    def __init__(self, features: Features = DEFAULT, checked: bool = False) -> None:
        self.features = features  # what instructions may be
        self.checked = checked  # function bodies left undecoded until read (decode_module)
        self.uses_data = False
        self.first_data_use: int | None = None
        self.code_at: int | None = None
        self.data_at: int | None = None


_SECTION_READERS = {
    1: _type_section, 2: _import_section, 3: _function_section, 4: _table_section,
    5: _memory_section, 6: _global_section, 7: _export_section, 8: _start_section,
    9: _elem_section, 12: _datacount_section, 11: _data_section, 13: _tag_section,
}


def _decode(data: bytes, features: Features, checked: bool) -> Module:
    if len(data) < 4:
        raise DecodeError("unexpected end", len(data))
    if data[:4] != MAGIC:
        raise DecodeError("magic header not detected", 0)
    if len(data) < 8:
        raise DecodeError("unexpected end", len(data))
    if data[4:8] != VERSION:
        raise DecodeError("unknown binary version", 4)

    m = Module()
    state = _State(features, checked)
    top = _Reader(data, 0, 8)
    last_rank = 0
    n = len(data)
    while top.pos < n:
        sec_at = top.pos
        sid = top.byte()
        if sid > 13 or (sid == 13 and not features.exceptions):
            raise DecodeError("malformed section id", sec_at)
        try:
            size = top.length()
        except IndexError:
            raise DecodeError(_END_MSG, n) from None
        start = top.pos
        payload = data[start:start + size]
        top.pos = start + size
        if sid != 0:
            rank = _SECTION_RANK[sid]
            if rank <= last_rank:
                # A repeated or out-of-order section: the spec interpreter stops
                # at the first section it cannot place and reports what is left.
                raise DecodeError("unexpected content after last section", sec_at)
            last_rank = rank
        r = _Reader(payload, start, features=features)
        try:
            _section(sid, r, m, data, state, sec_at)
        except IndexError:
            raise DecodeError(_END_MSG, start + size) from None
        if r.pos != size:
            raise DecodeError("section size mismatch", start + r.pos)
    _module_checks(m, state, n)
    return m


def _section(sid: int, r: _Reader, m: Module, data: bytes, state: _State, sec_at: int) -> None:
    if sid == 0:
        name = r.name()
        payload = r.buf[r.pos:]
        if name == "name":
            _name_section(payload, r.at(), m)
        m.customs.append(CustomSection(name, payload, sec_at))
        r.pos = len(r.buf)
    elif sid == 10:
        state.code_at = sec_at
        _code_section(r, m, data, state)
    else:
        if sid == 11:
            state.data_at = sec_at
        _SECTION_READERS[sid](r, m)


def _module_checks(m: Module, state: _State, end: int) -> None:
    if len(m.funcs) != len(m.codes):
        at = state.code_at if state.code_at is not None else end
        raise DecodeError("function and code section have inconsistent lengths", at)
    if m.data_count is not None and m.data_count != len(m.datas):
        at = state.data_at if state.data_at is not None else end
        raise DecodeError("data count and data section have inconsistent lengths", at)
    if state.uses_data and m.data_count is None:
        raise DecodeError("data count section required", state.first_data_use or 0)


def decode_module(data: bytes | bytearray | memoryview, features: Features = DEFAULT, checked: bool = False) -> Module:
    """Decode a WebAssembly 2.0 binary module, with the `features` past 2.0 that it may use; raise
    DecodeError if it is malformed. `checked`: the same binary passed this decoder and the validator
    before, under the same features (runtime/code_cache.checked_module), so each function body is decoded
    only when first read: a run whose bytecode is cached reads none.

    Only DecodeError escapes, and Unsupported for the opcodes of a proposal whose feature is off (atomics,
    relaxed SIMD), which are not malformed: an unexpected internal failure is reported as a
    DecodeError whose reason starts with "internal decoder error", so that callers
    never see a stray IndexError on hostile input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        # bytes(5) would quietly make five zero bytes; refuse anything not byte-like.
        raise DecodeError(f"not a byte string: {type(data).__name__}", 0)
    try:
        buf = bytes(data)
    except (TypeError, ValueError, BufferError) as e:
        raise DecodeError(f"not a byte string: {type(data).__name__}", 0) from e
    try:
        module = _decode(buf, features, checked)
        module.digest = hashlib.sha256(buf).hexdigest()
        return module
    except DecodeError:
        raise
    except Unsupported:
        raise
    except RecursionError as e:
        raise DecodeError("module too deeply nested", 0) from e
    except MemoryError as e:
        raise DecodeError("module too large to decode", 0) from e
    except Exception as e:  # noqa: BLE001 - the contract is: only DecodeError escapes
        raise DecodeError(f"internal decoder error: {type(e).__name__}: {e}", 0) from e
