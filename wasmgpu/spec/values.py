"""Constants of the script language, as raw bit patterns, and result patterns.

Raw values follow the engine's convention: i32/i64 unsigned, f32/f64 their IEEE
bits, v128 the 16 bytes as a little-endian 128-bit integer, null references
REF_NULL, an externref ``(ref.extern N)`` the integer N.

Float literals are rounded here from the exact rational value (never through a
binary float of another width), because double rounding gives wrong f32 bits
for some literals the spec suite uses on purpose.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from wasmgpu.compiler.vm_abi import REF_NULL
from wasmgpu.errors import Unsupported
from wasmgpu.spec.sexpr import Node, SList
from wasmgpu.wasm.opcodes import (
    EXNREF,
    EXTERN_HT,
    EXTERNREF,
    F32_T,
    F64_T,
    FUNCREF,
    I32_T,
    I64_T,
    NOEXN_HT,
    NOEXTERN_HT,
    NOFUNC_HT,
    TYPE_NAMES,
    V128_T,
    is_ref,
    ref_type,
    type_name,
)

_DEC = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_INT_RE = re.compile(rf"([+-]?)(?:0x({_HEX})|({_DEC}))\Z")
_HEXFLOAT_RE = re.compile(rf"0x({_HEX})(?:\.({_HEX})?)?(?:[pP]([+-]?{_DEC}))?\Z")
_DECFLOAT_RE = re.compile(rf"({_DEC})(?:\.({_DEC})?)?(?:[eE]([+-]?{_DEC}))?\Z")
_NAN_RE = re.compile(rf"nan(?::0x({_HEX}))?\Z")


class ScriptError(ValueError):
    """A malformed constant or command in the script itself."""


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary interchange format."""

    mant_bits: int  # stored fraction bits
    exp_bits: int

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def sign_bit(self) -> int:
        return 1 << (self.mant_bits + self.exp_bits)

    @property
    def inf(self) -> int:
        return ((1 << self.exp_bits) - 1) << self.mant_bits

    @property
    def quiet_bit(self) -> int:
        return 1 << (self.mant_bits - 1)


F32 = FloatFormat(23, 8)
F64 = FloatFormat(52, 11)
_FORMATS = {32: F32, 64: F64}


def parse_int(text: str, bits: int) -> int:
    """An integer literal (signed or unsigned form) as an unsigned ``bits``-wide value."""
    m = _INT_RE.match(text)
    if m is None:
        raise ScriptError(f"bad i{bits} literal {text!r}")
    sign, hexdigits, decdigits = m.groups()
    n = int(hexdigits.replace("_", ""), 16) if hexdigits is not None else int(decdigits.replace("_", ""))
    if sign == "-":
        if n > 1 << (bits - 1):
            raise ScriptError(f"i{bits} constant out of range: {text}")
        return -n & ((1 << bits) - 1)
    if n >= 1 << bits:
        raise ScriptError(f"i{bits} constant out of range: {text}")
    return n


def round_to_float(num: int, den: int, fmt: FloatFormat) -> int | None:
    """Bits of the positive rational num/den rounded to nearest, ties to even.

    None when the result overflows to infinity (the text format makes such a
    literal malformed rather than infinite).
    """
    if num == 0:
        return 0
    mant = fmt.mant_bits
    emin = 1 - fmt.bias
    # e = floor(log2(num / den)), from the bit lengths, corrected by one compare.
    e = num.bit_length() - den.bit_length()
    if (num << -e if e < 0 else num) < (den << e if e > 0 else den):
        e -= 1
    e = max(e, emin)  # below the normal range the quantum stays 2**(emin - mant): subnormals
    q = e - mant  # exponent of one unit in the last place
    n2, d2 = (num << -q, den) if q < 0 else (num, den << q)
    m, rem = divmod(n2, d2)
    if 2 * rem > d2 or (2 * rem == d2 and m & 1):
        m += 1
    if m == 1 << (mant + 1):  # rounding carried into a new binade
        m >>= 1
        e += 1
    if m < 1 << mant:  # subnormal (or rounded down to a subnormal): biased exponent 0
        return m
    biased = e + fmt.bias
    if biased >= (1 << fmt.exp_bits) - 1:
        return None
    return (biased << mant) | (m - (1 << mant))


def parse_float(text: str, bits: int) -> int:
    """A float literal of the text format as the IEEE bits of f32 (bits=32) or f64."""
    fmt = _FORMATS[bits]
    body = text
    sign = 0
    if body[:1] in ("+", "-"):
        sign = fmt.sign_bit if body[0] == "-" else 0
        body = body[1:]
    if body == "inf":
        return sign | fmt.inf
    m = _NAN_RE.match(body)
    if m is not None:
        payload = fmt.quiet_bit if m.group(1) is None else int(m.group(1).replace("_", ""), 16)
        if not 1 <= payload < 1 << fmt.mant_bits:
            raise ScriptError(f"NaN payload out of range: {text}")
        return sign | fmt.inf | payload
    num, den = _parse_rational(body, text)
    result = round_to_float(num, den, fmt)
    if result is None:
        raise ScriptError(f"f{bits} constant out of range: {text}")
    return sign | result


# Far beyond the f64 range every literal is 0 or overflows; stopping there keeps
# us from building huge powers for literals like 1e-1000000 or 0x1p99999999.
_DEC_EXP_LIMIT = 400  # 10**400 > 2**1024 and 10**-400 < 2**-1075
_BIN_EXP_LIMIT = 1200
_OVERFLOW = (1 << 2000, 1)


def _parse_rational(body: str, text: str) -> tuple[int, int]:
    """The exact value of an unsigned decimal or hex float literal, as (num, den)."""
    m = _HEXFLOAT_RE.match(body)
    if m is not None:
        intpart, frac, exp = m.groups()
        frac = (frac or "").replace("_", "")
        mantissa = int(intpart.replace("_", "") + frac, 16)
        e2 = (int(exp.replace("_", "")) if exp else 0) - 4 * len(frac)
        if mantissa == 0:
            return 0, 1
        magnitude = mantissa.bit_length() + e2  # 2**(magnitude-1) <= value < 2**magnitude
        if magnitude > _BIN_EXP_LIMIT:
            return _OVERFLOW
        if magnitude < -_BIN_EXP_LIMIT:
            return 0, 1
        return (mantissa << e2, 1) if e2 >= 0 else (mantissa, 1 << -e2)
    m = _DECFLOAT_RE.match(body)
    if m is not None:
        intpart, frac, exp = m.groups()
        digits = (intpart + (frac or "")).replace("_", "")
        frac_len = len((frac or "").replace("_", ""))
        mantissa = int(digits)
        e10 = (int(exp.replace("_", "")) if exp else 0) - frac_len
        if mantissa == 0:
            return 0, 1
        magnitude = e10 + len(str(mantissa))  # 10**(magnitude-1) <= value < 10**magnitude
        if magnitude > _DEC_EXP_LIMIT:
            return _OVERFLOW
        if magnitude < -_DEC_EXP_LIMIT:
            return 0, 1
        return (mantissa * 10**e10, 1) if e10 >= 0 else (mantissa, 10**-e10)
    raise ScriptError(f"bad float literal {text!r}")


# --- v128 -------------------------------------------------------------------

# shape -> (lane count, lane bits, lane value type)
V128_SHAPES: dict[str, tuple[int, int, int]] = {
    "i8x16": (16, 8, I32_T),
    "i16x8": (8, 16, I32_T),
    "i32x4": (4, 32, I32_T),
    "i64x2": (2, 64, I64_T),
    "f32x4": (4, 32, F32_T),
    "f64x2": (2, 64, F64_T),
}


def _lane(text: str, shape: str) -> int:
    _, bits, t = V128_SHAPES[shape]
    if t in (F32_T, F64_T):
        return parse_float(text, bits)
    return parse_int(text, bits)


def pack_lanes(lanes: list[int], lane_bits: int) -> bytes:
    """Little-endian concatenation of the lanes: the v128's 16 bytes."""
    return b"".join(v.to_bytes(lane_bits // 8, "little") for v in lanes)


def parse_v128(shape: str, lanes: list[str]) -> bytes:
    """The 16 bytes of ``v128.const shape lanes...``."""
    if shape not in V128_SHAPES:
        raise ScriptError(f"unknown v128 shape {shape!r}")
    count, bits, _ = V128_SHAPES[shape]
    if len(lanes) != count:
        raise ScriptError(f"v128.const {shape} needs {count} lanes, got {len(lanes)}")
    return pack_lanes([_lane(x, shape) for x in lanes], bits)


# --- arguments ----------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A typed raw value: an argument of an invoke or an exact expected result."""

    type: int
    bits: int

    def __str__(self) -> str:
        return format_value(self.type, self.bits)


_CONST_TYPES = {"i32.const": I32_T, "i64.const": I64_T, "f32.const": F32_T, "f64.const": F64_T}
# ref.null's heap types, as the nullable reference type of the constant.
_REF_TYPES = {"func": FUNCREF, "extern": EXTERNREF, "funcref": FUNCREF, "externref": EXTERNREF, "exn": EXNREF,
              "exnref": EXNREF, "nofunc": ref_type(True, NOFUNC_HT), "noextern": ref_type(True, NOEXTERN_HT),
              "noexn": ref_type(True, NOEXN_HT)}
# The GC proposal's heap types, which the engine does not support.
_GC_HEAPS = {"any", "none", "eq", "i31", "struct", "array", "anyref", "nullref", "eqref", "i31ref", "structref",
             "arrayref"}


def _gc_ref(args: list[str]) -> None:
    if len(args) == 1 and args[0] in _GC_HEAPS:
        raise Unsupported(f"the GC proposal's heap type {args[0]} is not supported yet")


def _atoms(node: SList, first: int) -> list[str]:
    out = []
    for x in node[first:]:
        if not isinstance(x, str):
            raise ScriptError(f"expected a literal in ({node.head()} ...)")
        out.append(x)
    return out


def parse_const(node: Node) -> Value:
    """An argument constant: (i32.const N), (f32.const X), (ref.null func), (ref.extern N), (v128.const ...)."""
    if not isinstance(node, SList) or not node.head():
        raise ScriptError("expected a constant")
    head = node[0]
    args = _atoms(node, 1)
    if head in _CONST_TYPES:
        if len(args) != 1:
            raise ScriptError(f"({head} ...) takes one literal")
        t = _CONST_TYPES[head]
        if t == I32_T:
            return Value(t, parse_int(args[0], 32))
        if t == I64_T:
            return Value(t, parse_int(args[0], 64))
        return Value(t, parse_float(args[0], 32 if t == F32_T else 64))
    if head == "ref.null" and len(args) == 1 and args[0] in _REF_TYPES:
        return Value(_REF_TYPES[args[0]], REF_NULL)
    if head == "ref.extern" and len(args) == 1:  # a non-null reference
        return Value(ref_type(False, EXTERN_HT), _parse_extern_index(args[0]))
    if head == "ref.null":
        _gc_ref(args)
    if head == "v128.const" and args:
        return Value(V128_T, int.from_bytes(parse_v128(args[0], args[1:]), "little"))
    raise ScriptError(f"unknown constant ({head} ...)")


def _parse_extern_index(text: str) -> int:
    n = parse_int(text, 64)
    if n == REF_NULL:  # would be indistinguishable from null
        raise ScriptError("ref.extern index collides with the null reference")
    return n


# --- expected results -------------------------------------------------------------


class Pattern:
    """An expected result: ``matches`` a raw value; ``type`` None when any type fits."""

    # Declared by each subclass (no class-level default: dataclasses would take it as theirs).
    type: int | None

    def matches(self, raw: int) -> bool:
        raise NotImplementedError

    @property
    def is_v128(self) -> bool:
        return self.type == V128_T


@dataclass(frozen=True)
class Exact(Pattern):
    """Bitwise equality (NaN payloads and the sign of zero included)."""

    type: int
    bits: int

    def matches(self, raw: int) -> bool:
        return raw == self.bits

    def __str__(self) -> str:
        return format_value(self.type, self.bits)


@dataclass(frozen=True)
class NanPattern(Pattern):
    """nan:canonical (payload exactly the quiet bit, either sign) or nan:arithmetic (quiet bit set)."""

    type: int
    arithmetic: bool

    def matches(self, raw: int) -> bool:
        fmt = F32 if self.type == F32_T else F64
        mask = (fmt.sign_bit - 1) if not self.arithmetic else (fmt.inf | fmt.quiet_bit)
        return raw & mask == fmt.inf | fmt.quiet_bit

    def __str__(self) -> str:
        return f"{TYPE_NAMES[self.type]}:nan:{'arithmetic' if self.arithmetic else 'canonical'}"


@dataclass(frozen=True)
class RefNull(Pattern):
    type: int | None  # None: ``(ref.null)``, a null of any reference type

    def matches(self, raw: int) -> bool:
        return raw == REF_NULL

    def __str__(self) -> str:
        return "ref.null" if self.type is None else f"ref.null {type_name(self.type)}"


@dataclass(frozen=True)
class RefNonNull(Pattern):
    """``(ref.func)`` / ``(ref.func $f)`` / ``(ref.extern)``: any non-null reference of the type.

    A funcref's raw value is engine-internal, so naming a function cannot be checked.
    """

    type: int

    def matches(self, raw: int) -> bool:
        return raw != REF_NULL

    def __str__(self) -> str:
        return "ref.func" if self.type == FUNCREF else "ref.extern"


@dataclass(frozen=True)
class V128Pattern(Pattern):
    """A v128 compared lane by lane, float lanes possibly NaN patterns."""

    shape: str
    lanes: tuple[Pattern, ...]
    type: int = V128_T

    def matches(self, raw: int) -> bool:
        _, bits, _ = V128_SHAPES[self.shape]
        mask = (1 << bits) - 1
        return all(p.matches((raw >> (i * bits)) & mask) for i, p in enumerate(self.lanes))

    def __str__(self) -> str:
        return f"v128 {self.shape} " + " ".join(str(p).split(":", 1)[-1] for p in self.lanes)


@dataclass(frozen=True)
class Either(Pattern):
    """``(either p1 p2 ...)``: any alternative matches."""

    alternatives: tuple[Pattern, ...]
    type: None = None

    def matches(self, raw: int) -> bool:
        return any(p.matches(raw) for p in self.alternatives)

    @property
    def is_v128(self) -> bool:
        return any(p.is_v128 for p in self.alternatives)

    def __str__(self) -> str:
        return "either(" + ", ".join(map(str, self.alternatives)) + ")"


def parse_expected(node: Node) -> Pattern:
    """An expected result of assert_return."""
    if not isinstance(node, SList) or not node.head():
        raise ScriptError("expected a result pattern")
    head = node[0]
    if head in ("f32.const", "f64.const") and len(node) == 2 and node[1] in ("nan:canonical", "nan:arithmetic"):
        return NanPattern(_CONST_TYPES[head], node[1] == "nan:arithmetic")
    if head == "ref.func":
        return RefNonNull(FUNCREF)
    if head == "ref.extern" and len(node) == 1:
        return RefNonNull(EXTERNREF)
    if head == "ref.null" and len(node) == 2 and node[1] in _REF_TYPES:
        return RefNull(_REF_TYPES[node[1]])
    if head == "ref.null" and len(node) == 1:
        return RefNull(None)
    if head == "ref.null":
        _gc_ref(_atoms(node, 1))
    if head == "either":
        return Either(tuple(parse_expected(x) for x in node[1:]))
    if head == "v128.const" and len(node) >= 2:
        args = _atoms(node, 1)
        shape = args[0]
        if shape not in V128_SHAPES:
            raise ScriptError(f"unknown v128 shape {shape!r}")
        count, bits, t = V128_SHAPES[shape]
        if len(args) != count + 1:
            raise ScriptError(f"v128.const {shape} needs {count} lanes")
        lanes: list[Pattern] = []
        for x in args[1:]:
            if x in ("nan:canonical", "nan:arithmetic") and t in (F32_T, F64_T):
                lanes.append(NanPattern(t, x == "nan:arithmetic"))
            else:
                lanes.append(Exact(t, _lane(x, shape)))
        return V128Pattern(shape, tuple(lanes))
    v = parse_const(node)
    if v.type == V128_T:  # unreachable: handled above
        raise ScriptError("bad v128 pattern")
    return Exact(v.type, v.bits)


# --- display ---------------------------------------------------------------------------


def format_value(valtype: int, bits: int) -> str:
    """A raw value for messages: hex bits plus a readable value."""
    if valtype == I32_T:
        signed = bits - (1 << 32) if bits >= 1 << 31 else bits
        return f"i32:{bits:#010x} ({signed})"
    if valtype == I64_T:
        signed = bits - (1 << 64) if bits >= 1 << 63 else bits
        return f"i64:{bits:#018x} ({signed})"
    if valtype == F32_T:
        return f"f32:{bits:#010x} ({_float_text(bits, 32)})"
    if valtype == F64_T:
        return f"f64:{bits:#018x} ({_float_text(bits, 64)})"
    if valtype == V128_T:
        return f"v128:{bits:#034x}"
    if is_ref(valtype):
        name = type_name(valtype)
        return f"{name}:null" if bits == REF_NULL else f"{name}:{bits}"
    return f"{bits:#x}"


def _float_text(bits: int, width: int) -> str:
    fmt = _FORMATS[width]
    sign = "-" if bits & fmt.sign_bit else ""
    if bits & fmt.inf == fmt.inf:
        payload = bits & ((1 << fmt.mant_bits) - 1)
        return f"{sign}inf" if payload == 0 else f"{sign}nan:{payload:#x}"
    if width == 32:
        return repr(struct.unpack("<f", struct.pack("<I", bits))[0])
    return repr(struct.unpack("<d", struct.pack("<Q", bits))[0])

