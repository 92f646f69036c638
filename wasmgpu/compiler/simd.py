"""The semantics of every non-memory SIMD instruction (0xFD prefix): defined once here; vm/simd.h is generated.

The table below holds each op as a per-lane C expression, grouped by shape where a rule covers several shapes
(``i8x16.add`` and ``i64x2.add`` are one entry), or as a small C body for the ops that are not lane-wise.
Memory instructions (v128.load*, v128.store*, sub 0-11 and 84-93) and v128.const (12) are the VM's, not this
table's. vm/simd.h holds one function, ``simd_apply_inline(sub, lane, x, y, z)``, switching on the op's number
after the prefix; see the header's opening comment for its contract.

Relaxed SIMD is deterministic here, one choice per op:
- i8x16.relaxed_swizzle: i8x16.swizzle (an index >= 16 gives 0).
- i32x4.relaxed_trunc_f32x4_s/_u, i32x4.relaxed_trunc_f64x2_s/u_zero: the matching trunc_sat op.
- f32x4/f64x2.relaxed_madd: fused, fma(a, b, c) rounded once; relaxed_nmadd: fma(-a, b, c); NaN -> canonical.
- i8x16/i16x8/i32x4/i64x2.relaxed_laneselect: v128.bitselect (bit by bit).
- f32x4/f64x2.relaxed_min/max: f32x4/f64x2.min/max (NaN -> canonical NaN, -0 < +0).
- i16x8.relaxed_q15mulr_s: i16x8.q15mulr_sat_s.
- i16x8.relaxed_dot_i8x16_i7x16_s: signed bytes x signed bytes, adjacent products summed, wrapped to i16.
- i32x4.relaxed_dot_i8x16_i7x16_add_s: those i16 sums, adjacent pairs summed to i32, plus z's i32 lane (wrapping).

Run ``python -m wasmgpu.compiler.simd`` to regenerate vm/simd.h.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..wasm import opcodes as wo
from . import isa

# Relaxed SIMD (wasm/opcodes.py lists them): number after 0xFD -> name.
RELAXED = {k & 0xFFFF: i.name for k, i in wo.OPS.items() if k >> 16 == 0xFD and k & 0xFFFF >= wo.RELAXED_SIMD_FIRST}
# The non-memory op each relaxed one behaves as, where there is one.
RELAXED_AS = {
    "i8x16.relaxed_swizzle": "i8x16.swizzle",
    "i32x4.relaxed_trunc_f32x4_s": "i32x4.trunc_sat_f32x4_s", "i32x4.relaxed_trunc_f32x4_u": "i32x4.trunc_sat_f32x4_u",
    "i32x4.relaxed_trunc_f64x2_s_zero": "i32x4.trunc_sat_f64x2_s_zero",
    "i32x4.relaxed_trunc_f64x2_u_zero": "i32x4.trunc_sat_f64x2_u_zero",
    **{f"{s}.relaxed_laneselect": "v128.bitselect" for s in ("i8x16", "i16x8", "i32x4", "i64x2")},
    **{f"{s}.relaxed_{m}": f"{s}.{m}" for s in ("f32x4", "f64x2") for m in ("min", "max")},
    "i16x8.relaxed_q15mulr_s": "i16x8.q15mulr_sat_s",
}
# Not this table's: memory access and v128.const.
MEMORY_SUBS = frozenset([*range(0, 13), *range(84, 94)])

WIDTH = {"i8x16": 8, "i16x8": 16, "i32x4": 32, "i64x2": 64, "f32x4": 32, "f64x2": 64}
INT_SHAPES = ("i8x16", "i16x8", "i32x4", "i64x2")
FLOAT_SHAPES = ("f32x4", "f64x2")


def lanes(out: str, expr: str, view: str = "") -> str:
    """A C body setting each lane k of r to expr.

    out: the result lane: i8 .. i64 (expr's value, truncated to the lane), f32/f64 (a float), or m8 .. m64 (all
    ones where expr is true, else 0). view: how a, b, c (lane k of x, y, z) are read: u8 .. u64 zero-extended, s8
    .. s64 sign-extended (both widened to 32 bits, or 64 for 64-bit lanes), f32/f64; by default u of out's width.
    expr may also name x, y, z, k, lane and the accessors (v_u8(v, k) ...) for lanes that are not lane k.
    """
    w = int(out[1:])
    view = view or f"u{w}"
    vw = int(view[1:])
    ctype = {"u": "u64" if vw == 64 else "u32", "s": "i64" if vw == 64 else "i32", "f": view}[view[0]]
    getter = f"v_{'i' if view[0] == 's' else view[0]}{vw}"
    decls = [f"{v} = {getter}({src}, k)" for v, src in (("a", "x"), ("b", "y"), ("c", "z"))
             if re.search(rf"\b{v}\b", expr)]
    decl = f"{ctype} {', '.join(decls)}; " if decls else ""
    if out[0] == "f":
        put = f"v_setf{w}(&r, k, {expr})"
    elif out[0] == "m":
        put = f"v_set{w}(&r, k, ({expr}) ? ~0ull : 0)"
    else:
        put = f"v_set{w}(&r, k, (u64)({expr}))"
    return f"SIMD_UNROLL for (u32 k = 0; k < {128 // w}; k++) {{ {decl}{put}; }}"


def _fill(text: str, shape: str) -> str:
    """Substitutes a shape's constants into a rule: {w} lane width, {m} w - 1, {smin} {smax} {umax} the lane's
    integer range, {f} the C math suffix (f for f32), {sign} the sign bit."""
    w = WIDTH[shape]
    return text.format(w=w, m=w - 1, smin=f"-{1 << (w - 1)}ll", smax=f"{(1 << (w - 1)) - 1}ll",
                       umax=f"{(1 << w) - 1}ull", f="f" if w == 32 else "", sign=f"{1 << (w - 1):#x}ull")


# Lane-wise integer ops, for each shape that has SHAPE.NAME: name -> (view: u or s, C expression of a, b).
# a, b are lane k of x and y, widened to 32 bits (64 for i64x2) so that i8/i16 arithmetic cannot overflow.
_INT_BINARY = {
    "add": ("u", "a + b"), "sub": ("u", "a - b"), "mul": ("u", "a * b"),
    "add_sat_s": ("s", "v_sat(a + b, {smin}, {smax})"), "add_sat_u": ("u", "v_sat(a + b, 0, {umax})"),
    "sub_sat_s": ("s", "v_sat(a - b, {smin}, {smax})"), "sub_sat_u": ("u", "a > b ? a - b : 0"),
    "min_s": ("s", "a < b ? a : b"), "min_u": ("u", "a < b ? a : b"),
    "max_s": ("s", "a > b ? a : b"), "max_u": ("u", "a > b ? a : b"),
    "avgr_u": ("u", "(a + b + 1) >> 1"),
    "q15mulr_sat_s": ("s", "v_sat((a * b + 0x4000) >> 15, {smin}, {smax})"),
}
# Integer comparisons: name -> (view, C condition); the lane becomes all ones where it holds.
_INT_COMPARE = {
    "eq": ("u", "a == b"), "ne": ("u", "a != b"),
    "lt_s": ("s", "a < b"), "lt_u": ("u", "a < b"), "gt_s": ("s", "a > b"), "gt_u": ("u", "a > b"),
    "le_s": ("s", "a <= b"), "le_u": ("u", "a <= b"), "ge_s": ("s", "a >= b"), "ge_u": ("u", "a >= b"),
}
# Unary ops and shifts (the count is y.lo's low 32 bits, taken modulo the lane width).
_INT_UNARY = {
    "abs": ("u", "a >> {m} ? 0 - a : a"), "neg": ("u", "0 - a"), "popcnt": ("u", "popcnt32(a)"),
    "shl": ("u", "a << ((u32)y.lo & {m})"), "shr_u": ("u", "a >> ((u32)y.lo & {m})"),
    "shr_s": ("s", "a >> ((u32)y.lo & {m})"),
}
# Float ops, f32x4 and f64x2: name -> (view: f for the float, u for its bits, or m for a comparison, C expression).
_FLOAT = {
    "add": ("f", "canon_f{w}(a + b)"), "sub": ("f", "canon_f{w}(a - b)"), "mul": ("f", "canon_f{w}(a * b)"),
    "div": ("f", "canon_f{w}(a / b)"), "min": ("f", "f{w}_min(a, b)"), "max": ("f", "f{w}_max(a, b)"),
    "pmin": ("u", "v_f{w}(y, k) < v_f{w}(x, k) ? b : a"), "pmax": ("u", "v_f{w}(x, k) < v_f{w}(y, k) ? b : a"),
    "abs": ("u", "a & ~{sign}"), "neg": ("u", "a ^ {sign}"), "sqrt": ("f", "canon_f{w}(sqrt{f}(a))"),
    "ceil": ("f", "canon_f{w}(ceil{f}(a))"), "floor": ("f", "canon_f{w}(floor{f}(a))"),
    "trunc": ("f", "canon_f{w}(trunc{f}(a))"), "nearest": ("f", "canon_f{w}(rint{f}(a))"),
    "eq": ("m", "a == b"), "ne": ("m", "a != b"), "lt": ("m", "a < b"), "gt": ("m", "a > b"),
    "le": ("m", "a <= b"), "ge": ("m", "a >= b"),
    "relaxed_madd": ("f", "canon_f{w}(fma{f}(a, b, c))"), "relaxed_nmadd": ("f", "canon_f{w}(fma{f}(-a, b, c))"),
}

# Ops whose result is a scalar, in r.lo: shape-wise rules; {n} the lane count.
_SCALAR = {
    "all_true": "r.lo = 1; SIMD_UNROLL for (u32 k = 0; k < {n}; k++) {{ if (!v_u{w}(x, k)) r.lo = 0; }}",
    "bitmask": "SIMD_UNROLL for (u32 k = 0; k < {n}; k++) {{ r.lo |= (u64)(v_u{w}(x, k) >> {m}) << k; }}",
}

# Widening ops between a narrow shape and the one twice as wide.
_WIDEN = (("i16x8", "i8x16"), ("i32x4", "i16x8"), ("i64x2", "i32x4"))

# The trunc_sat helpers: the scalar ops' statements (isa.NUMERIC), as functions of x giving r.
_TRUNCS = ("i32.trunc_sat_f32_s", "i32.trunc_sat_f32_u", "i32.trunc_sat_f64_s", "i32.trunc_sat_f64_u")


def _trunc_fn(name: str) -> str:
    return "v_" + name.replace(".", "_")


def _ops() -> dict[str, str]:
    """wasm name -> C body computing r from x, y, z, lane."""
    ops: dict[str, str] = {}
    # Splats, lanes, bit ops, shuffles.
    for shape, w in WIDTH.items():
        ops[f"{shape}.splat"] = lanes(f"i{w}", "x.lo")
        ops[f"{shape}.replace_lane"] = f"r = x; v_set{w}(&r, lane, y.lo);"
    for shape in ("i8x16", "i16x8"):
        w = WIDTH[shape]
        ops[f"{shape}.extract_lane_s"] = f"r.lo = (u32)(i32)v_i{w}(x, lane);"
        ops[f"{shape}.extract_lane_u"] = f"r.lo = v_u{w}(x, lane);"
    for shape in ("i32x4", "i64x2", "f32x4", "f64x2"):
        ops[f"{shape}.extract_lane"] = f"r.lo = v_u{WIDTH[shape]}(x, lane);"
    ops.update({
        "v128.not": "r.lo = ~x.lo; r.hi = ~x.hi;",
        "v128.and": "r.lo = x.lo & y.lo; r.hi = x.hi & y.hi;",
        "v128.andnot": "r.lo = x.lo & ~y.lo; r.hi = x.hi & ~y.hi;",
        "v128.or": "r.lo = x.lo | y.lo; r.hi = x.hi | y.hi;",
        "v128.xor": "r.lo = x.lo ^ y.lo; r.hi = x.hi ^ y.hi;",
        "v128.bitselect": "r.lo = (x.lo & z.lo) | (y.lo & ~z.lo); r.hi = (x.hi & z.hi) | (y.hi & ~z.hi);",
        "v128.any_true": "r.lo = (x.lo | x.hi) != 0;",
        "i8x16.shuffle": lanes("i8", "c < 16 ? v_u8(x, c) : v_u8(y, c - 16)"),
        "i8x16.swizzle": lanes("i8", "b < 16 ? v_u8(x, b) : 0"),
    })
    # Integer lane-wise ops.
    for shape in INT_SHAPES:
        w = WIDTH[shape]
        for table, out in ((_INT_BINARY, "i"), (_INT_UNARY, "i"), (_INT_COMPARE, "m")):
            for name, (sign, expr) in table.items():
                if f"{shape}.{name}" in wo.BY_NAME:
                    ops[f"{shape}.{name}"] = lanes(f"{out}{w}", _fill(expr, shape), f"{sign}{w}")
        for name, body in _SCALAR.items():
            ops[f"{shape}.{name}"] = _fill(body.replace("{n}", str(128 // w)), shape)
    # Float lane-wise ops.
    for shape in FLOAT_SHAPES:
        w = WIDTH[shape]
        for name, (view, expr) in _FLOAT.items():
            out = {"f": f"f{w}", "u": f"i{w}", "m": f"m{w}"}[view]
            ops[f"{shape}.{name}"] = lanes(out, _fill(expr, shape), f"{'u' if view == 'u' else 'f'}{w}")
    # Widening and narrowing.
    for wide, narrow in _WIDEN:
        w, nw = WIDTH[wide], WIDTH[narrow]
        n = 128 // w
        for s in ("s", "u"):
            get = f"v_{'i' if s == 's' else 'u'}{nw}"
            ctype = ("i" if s == "s" else "u") + ("64" if w == 64 else "32")
            for half, off in (("low", ""), ("high", f" + {n}")):
                ops[f"{wide}.extend_{half}_{narrow}_{s}"] = lanes(f"i{w}", f"{get}(x, k{off})")
                ops[f"{wide}.extmul_{half}_{narrow}_{s}"] = lanes(
                    f"i{w}", f"({ctype}){get}(x, k{off}) * {get}(y, k{off})")
            if w <= 32:
                ops[f"{wide}.extadd_pairwise_{narrow}_{s}"] = lanes(
                    f"i{w}", f"({ctype}){get}(x, 2 * k) + {get}(x, 2 * k + 1)")
    # The narrowing ops saturate the signed wide input: i8x16 from i16x8, i16x8 from i32x4.
    for narrow, wide in (("i8x16", "i16x8"), ("i16x8", "i32x4")):
        w, ww = WIDTH[narrow], WIDTH[wide]
        for s, lo, hi in (("s", f"-{1 << (w - 1)}", f"{(1 << (w - 1)) - 1}"), ("u", "0", f"{(1 << w) - 1}")):
            ops[f"{narrow}.narrow_{wide}_{s}"] = lanes(
                f"i{w}", f"v_sat(k < {128 // ww} ? v_i{ww}(x, k) : v_i{ww}(y, k - {128 // ww}), {lo}, {hi})")
    ops["i32x4.dot_i16x8_s"] = lanes("i32", "(u32)(v_i16(x, 2 * k) * v_i16(y, 2 * k))"
                                            " + (u32)(v_i16(x, 2 * k + 1) * v_i16(y, 2 * k + 1))")
    # Conversions.
    ops.update({
        "f32x4.convert_i32x4_s": lanes("f32", "(f32)a", "s32"),
        "f32x4.convert_i32x4_u": lanes("f32", "(f32)a", "u32"),
        "f64x2.convert_low_i32x4_s": lanes("f64", "(f64)v_i32(x, k)"),
        "f64x2.convert_low_i32x4_u": lanes("f64", "(f64)v_u32(x, k)"),
        "f32x4.demote_f64x2_zero": lanes("f32", "k < 2 ? canon_f32((f32)v_f64(x, k)) : 0.0f"),
        "f64x2.promote_low_f32x4": lanes("f64", "canon_f64((f64)v_f32(x, k))"),
        "i32x4.trunc_sat_f32x4_s": lanes("i32", f"{_trunc_fn(_TRUNCS[0])}(a)", "f32"),
        "i32x4.trunc_sat_f32x4_u": lanes("i32", f"{_trunc_fn(_TRUNCS[1])}(a)", "f32"),
        "i32x4.trunc_sat_f64x2_s_zero": lanes("i32", f"k < 2 ? {_trunc_fn(_TRUNCS[2])}(v_f64(x, k)) : 0"),
        "i32x4.trunc_sat_f64x2_u_zero": lanes("i32", f"k < 2 ? {_trunc_fn(_TRUNCS[3])}(v_f64(x, k)) : 0"),
        # Relaxed dot products (the float relaxed ops are in _FLOAT; the rest are RELAXED_AS).
        "i16x8.relaxed_dot_i8x16_i7x16_s": lanes("i16", "v_dot8(x, y, k)"),
        "i32x4.relaxed_dot_i8x16_i7x16_add_s": lanes(
            "i32", "(u32)(i32)(i16)v_dot8(x, y, 2 * k) + (u32)(i32)(i16)v_dot8(x, y, 2 * k + 1) + c"),
    })
    for relaxed, plain in RELAXED_AS.items():
        ops[relaxed] = ops[plain]
    return ops


@dataclass(frozen=True)
class SimdOp:
    sub: int  # the number after the 0xFD prefix
    name: str
    body: str  # C statements computing r (a V128, zero on entry) from x, y, z and lane
    vector: bool  # the result is a v128 (else a scalar in r.lo)


def simd_ops() -> dict[int, SimdOp]:
    """Every non-memory SIMD op by its number after the prefix."""
    bodies = _ops()
    expected = {i.name for k, i in wo.OPS.items() if k >> 16 == 0xFD and k & 0xFFFF not in MEMORY_SUBS}
    missing, extra = expected - set(bodies), set(bodies) - expected
    assert not missing and not extra, (sorted(missing), sorted(extra))
    out: dict[int, SimdOp] = {}
    for name, body in bodies.items():
        info = wo.BY_NAME[name]
        sub = info.key & 0xFFFF
        out[sub] = SimdOp(sub, name, body, info.results == (wo.V128_T,))
    return dict(sorted(out.items()))


OPS = simd_ops()

_PRELUDE = r"""// simd_apply_inline(sub, lane, x, y, z): the result of SIMD op `sub` (its number after the 0xFD prefix;
// relaxed SIMD 0x100-0x113 included; memory ops and v128.const are the VM's) on x, y, z, in order. A scalar operand
// (splat's input, a shift's count, replace_lane's value) is in .lo of its V128; bitselect's mask and a shuffle's
// 16 lane-index bytes are z; lane is extract/replace_lane's immediate. A scalar result is in .lo (i32 and f32
// zero-extended), .hi = 0. An unknown sub gives {0, 0}. simd_result_is_v128(sub): 0 where the result is scalar.
// Needs vm.h's types, DEV, canon_f32/f64, f32/f64_min/max, f32/f64_bits, bits_f32/f64 and popcnt32.
#pragma once

// Lane loops unrolled, so that each lane's shifts and masks are constants (the compiled tier's -O1 would keep
// the loop and its variable shifts). Not in the CPU interpreter's build, where every op is built and unrolling
// them all doubled the build's time.
#ifdef WG_CUDA
#define SIMD_UNROLL _Pragma("unroll")
#elif defined(WG_COMPILED)
#define SIMD_UNROLL _Pragma("GCC unroll 16")
#else
#define SIMD_UNROLL
#endif

struct V128 {
  u64 lo, hi;  // bytes 0..7 and 8..15, little-endian: lane k of i8x16 is byte k
};

// Lane k of width w (bits), zero-extended; and v's lane k set to x's low w bits.
DEV u64 v_bits(V128 v, u32 w, u32 k) {
  const u32 b = k * w;
  const u64 h = (b & 64) ? v.hi : v.lo;
  return w == 64 ? h : (h >> (b & 63)) & ((1ull << w) - 1);
}
DEV void v_put(V128* v, u32 w, u32 k, u64 x) {
  const u32 b = k * w;
  const u64 m = w == 64 ? ~0ull : ((1ull << w) - 1) << (b & 63);
  const u64 s = w == 64 ? x : (x << (b & 63)) & m;
  if (b & 64) v->hi = (v->hi & ~m) | s; else v->lo = (v->lo & ~m) | s;
}
DEV u8 v_u8(V128 v, u32 k) { return (u8)v_bits(v, 8, k); }
DEV u16 v_u16(V128 v, u32 k) { return (u16)v_bits(v, 16, k); }
DEV u32 v_u32(V128 v, u32 k) { return (u32)v_bits(v, 32, k); }
DEV u64 v_u64(V128 v, u32 k) { return v_bits(v, 64, k); }
DEV i8 v_i8(V128 v, u32 k) { return (i8)v_u8(v, k); }
DEV i16 v_i16(V128 v, u32 k) { return (i16)v_u16(v, k); }
DEV i32 v_i32(V128 v, u32 k) { return (i32)v_u32(v, k); }
DEV i64 v_i64(V128 v, u32 k) { return (i64)v_u64(v, k); }
DEV f32 v_f32(V128 v, u32 k) { return bits_f32(v_u32(v, k)); }
DEV f64 v_f64(V128 v, u32 k) { return bits_f64(v_u64(v, k)); }
DEV void v_set8(V128* v, u32 k, u64 x) { v_put(v, 8, k, x); }
DEV void v_set16(V128* v, u32 k, u64 x) { v_put(v, 16, k, x); }
DEV void v_set32(V128* v, u32 k, u64 x) { v_put(v, 32, k, x); }
DEV void v_set64(V128* v, u32 k, u64 x) { v_put(v, 64, k, x); }
DEV void v_setf32(V128* v, u32 k, f32 x) { v_put(v, 32, k, f32_bits(x)); }
DEV void v_setf64(V128* v, u32 k, f64 x) { v_put(v, 64, k, f64_bits(x)); }
// x clamped to [lo, hi].
DEV i64 v_sat(i64 x, i64 lo, i64 hi) { return x < lo ? lo : x > hi ? hi : x; }
// The sum of the products of signed bytes 2j and 2j + 1 of x and y (relaxed dot products).
DEV i32 v_dot8(V128 x, V128 y, u32 j) {
  return v_i8(x, 2 * j) * v_i8(y, 2 * j) + v_i8(x, 2 * j + 1) * v_i8(y, 2 * j + 1);
}
"""


def generate_header() -> str:
    out = [
        "// Generated by wasmgpu/compiler/simd.py: do not edit. Regenerate with",
        "// `python -m wasmgpu.compiler.simd`.",
        _PRELUDE.rstrip("\n"),
        "// The scalar trunc_sat ops (compiler/isa.py), lane by lane.",
    ]
    for name in _TRUNCS:
        src = name.split("_")[-2]
        out.append(f"DEV u32 {_trunc_fn(name)}({src} x) {{ u32 r; {isa.NUMERIC[name]} return r; }}")
    out += ["", "DEV V128 simd_apply_inline(u32 sub, u32 lane, V128 x, V128 y, V128 z) {",
            "  V128 r = {0, 0};", "  switch (sub) {"]
    for sub, op in OPS.items():
        out.append(f"    case {sub:#x}:  // {op.name}" if sub >= 0x100 else f"    case {sub}:  // {op.name}")
        out.append(f"      {op.body} break;")
    out += ["    default: break;", "  }", "  return r;", "}", ""]
    out.append("DEV int simd_result_is_v128(u32 sub) {")
    out.append("  switch (sub) {")
    scalar = [sub for sub, op in OPS.items() if not op.vector]
    for i in range(0, len(scalar), 12):
        out.append("    " + " ".join(f"case {s}:" for s in scalar[i:i + 12]))
    out.append("      return 0;")
    out.append("    default:")
    out.append("      return 1;")
    out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


HEADER_PATH = Path(__file__).resolve().parent.parent / "vm" / "simd.h"

if __name__ == "__main__":
    HEADER_PATH.write_text(generate_header())
    print(f"wrote {HEADER_PATH} ({len(OPS)} ops)")
