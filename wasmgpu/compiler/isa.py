"""The register bytecode: defined once here; vm/isa.h is generated from it.

An instruction is one 64-bit word: op:8 | flags:8 | a:16 | b:16 | c:16, where
a, b, c are frame-relative slot numbers (or small immediates). ``imm32`` is the
upper half (b | c << 16). Some instructions take follow-on words; the VM reads
them with NEXT_WORD(), or before dispatch when the flags say F_EXT. The flags
(below) say which operands the VM reads and what it does with the result, so a
compare and its fused branch, or an add of a slot and of an immediate, are one
op. Numeric instructions are one per WebAssembly numeric opcode, named after it
(``i32.add`` -> ``I32_ADD``); their C semantics live in the table below, so the
translator and the VM cannot disagree about what an opcode means.

Run ``python -m wasmgpu.compiler.isa`` to regenerate vm/isa.h.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..wasm import opcodes as wo
from . import vm_abi


@dataclass(frozen=True)
class Control:
    """What the compiled tier (to_c.py) needs to know of a control or structural op: every op has its record, so
    none falls to a rule meant for another (tests/test_isa.py checks them against vm.h's OPC_ macros)."""

    reads: str = ""  # the slots among a, b, c it reads (SELECT: c only with F_RC; calls and RET: their frames)
    writes: bool = False  # it writes slot a
    narrow: bool = False  # what it writes fits in 32 bits (zero-extended in the slot)
    next_words: int = 0  # follow-on words it reads with NEXT_WORD() (BR_TABLE's targets are counted apart)
    ends: bool = False  # it never falls through to the next instruction
    leaves: bool = False  # it may stop for the host and then run again from its start
    lands: bool = False  # execution may enter here from no branch or call (an exception's landing, exn_throw)
    macro: bool = False  # vm.h holds its handler as OPC_<name>, which the compiled tier expands too
    # Its operands by role, as the disassembler (compiler/bytecode.py) shows them: role=field, the field sa,
    # sb, sc (slot a, b, c), a, b, c (a number), y (slot c with F_RC, else the immediate c), imm32, ext,
    # sext (the slot the F_EXT word names), next, next.lo, next.hi (the follow-on word, or its halves), or
    # `targets` alone (BR_TABLE's target words).
    operands: str = ""


# Control and structural instructions, hand-written in vm.h. Operands in comments.
CONTROL: dict[str, Control] = {
    "NOP": Control(),
    "UNREACHABLE": Control(ends=True),
    "MOV": Control("b", writes=True, operands="dst=sa x=sb"),
    "CONST": Control(writes=True, operands="dst=sa value=ext"),  # the value in the next word (F_EXT)
    "CONST32": Control(writes=True, narrow=True, operands="dst=sa value=imm32"),  # zero-extended
    "JMP": Control(ends=True, operands="target=imm32"),
    # imm32 = n; then n+1 words of targets (the last one the default)
    "BR_TABLE": Control("a", ends=True, operands="index=sa targets"),
    "CALL": Control(operands="frame=a func=imm32"),  # the callee's frame at fp + a; func: its address
    "CALL_INDIRECT": Control("b", next_words=1, operands="frame=a index=sb table=c sig=next"),
    # Tail calls: the arguments at fp + a move to the frame's base and the callee runs there, returning
    # where this function would have. A host function (known only at run time for the indirect one) is
    # called as CALL would, and the code after the instruction returns its results.
    "RETURN_CALL": Control(operands="frame=a func=imm32"),
    "RETURN_CALL_INDIRECT": Control("b", next_words=1, operands="frame=a index=sb table=c sig=next"),
    # call_ref and return_call_ref: the callee a function reference in slot b (null traps); next: the type's
    # signature id, which says how many slots the arguments and results take.
    "CALL_REF": Control("b", next_words=1, operands="frame=a ref=sb sig=next"),
    "RETURN_CALL_REF": Control("b", next_words=1, operands="frame=a ref=sb sig=next"),
    "REF_AS_NON_NULL": Control("a", macro=True, operands="x=sa"),  # traps on null; the value stays in slot a
    # Exceptions: vm_launch unwinds to the handler (vm.h exn_throw). THROW: the values in slots a.. (next: how
    # many slots), tag imm32 (its store address); THROW_REF: the exnref in slot a. CATCH: where a catch clause
    # lands, exn_throw having written its values to c slots from slot a (the compiled tier reads them there).
    "THROW": Control("a", ends=True, next_words=1, operands="values=sa tag=imm32 count=next"),
    "THROW_REF": Control("a", ends=True, operands="exn=sa"),
    "CATCH": Control(writes=True, lands=True, operands="values=sa count=c"),
    "RET": Control(ends=True),  # the results already in slots 0..n-1
    "SELECT": Control("bc", writes=True, operands="dst=sa x=sb y=y cond=sext"),  # a <- cond != 0 ? x : y
    "GLOBAL_GET": Control(writes=True, macro=True, operands="dst=sa global=imm32"),
    "GLOBAL_SET": Control("a", macro=True, operands="global=imm32 value=sa"),
    "MEMORY_SIZE": Control(writes=True, narrow=True, macro=True, operands="dst=sa memory=c"),
    # c: the memory, | 0x8000 where its addresses are 64-bit (then its result is an i64: not narrow)
    "MEMORY_GROW": Control("b", writes=True, narrow=True, leaves=True, macro=True,
                           operands="dst=sa delta=sb memory=c"),
    "MEMORY_COPY": Control("abc", next_words=1, macro=True,
                           operands="dst=sa src=sb len=sc memory=next.lo src_memory=next.hi"),
    "MEMORY_FILL": Control("abc", next_words=1, macro=True, operands="dst=sa value=sb len=sc memory=next"),
    "MEMORY_INIT": Control("abc", next_words=1, macro=True,
                           operands="dst=sa src=sb len=sc memory=next.lo data=next.hi"),
    "DATA_DROP": Control(macro=True, operands="data=imm32"),
    "TABLE_GET": Control("b", writes=True, macro=True, operands="dst=sa index=sb table=c"),
    "TABLE_SET": Control("ab", macro=True, operands="index=sa value=sb table=c"),
    "TABLE_SIZE": Control(writes=True, narrow=True, macro=True, operands="dst=sa table=c"),
    "TABLE_GROW": Control("bc", writes=True, narrow=True, next_words=1, leaves=True, macro=True,
                          operands="dst=sa init=sb delta=sc table=next"),
    "TABLE_FILL": Control("abc", next_words=1, macro=True, operands="at=sa value=sb len=sc table=next"),
    "TABLE_COPY": Control("abc", next_words=1, macro=True,
                          operands="dst=sa src=sb len=sc table=next.lo src_table=next.hi"),
    "TABLE_INIT": Control("abc", next_words=1, macro=True,
                          operands="dst=sa src=sb len=sc table=next.lo elem=next.hi"),
    "ELEM_DROP": Control(macro=True, operands="elem=imm32"),
    "REF_FUNC": Control(writes=True, macro=True, operands="dst=sa func=imm32"),
    "REF_IS_NULL": Control("b", writes=True, narrow=True, macro=True, operands="dst=sa x=sb"),
    # SIMD (a v128 is two slots, k and k + 1; which operands are v128s follows from the wasm op, simd_shape):
    # next = sub | lane << 16 | wide << 24 | z << 32, sub the op's number after the 0xFD prefix, wide set when
    # the result is a v128, z a third operand (bitselect's mask, a shuffle's lane indices). Semantics: vm/simd.h.
    "SIMD": Control("bc", writes=True, next_words=1, operands="dst=sa x=sb y=sc op=next"),
    # A load (v128.load*, load*_splat, load*_zero, load*_lane): next = offset | memory << 32 | memory64 << 47 |
    # sub << 48 | lane << 56; slot c is the vector a lane load writes into.
    "SIMD_LOAD": Control("bc", writes=True, next_words=1, operands="dst=sa addr=sb v=sc op=next"),
    # A store (v128.store, store*_lane): next as SIMD_LOAD's.
    "SIMD_STORE": Control("bc", next_words=1, operands="addr=sb value=sc op=next"),
    # An atomic memory instruction (threads): its operands in slots b, b + 1, ... (the address first), its result
    # (if any) to slot a; next = offset | memory << 32 | kind << 48 | log2(bytes) << 52 | shared << 54 |
    # result << 55 | operands << 56 | memory64 << 58, kind as ATOMIC_KINDS has it.
    "ATOMIC": Control("b", writes=True, next_words=1, operands="dst=sa args=sb op=next"),
}
# ATOMIC's kinds: notify, wait32/64, loads, stores, then the read-modify-write operations (wo.ATOMIC_RMW).
ATOMIC_KINDS = ("notify", "wait", "load", "store", *wo.ATOMIC_RMW)
ATOMIC_WAIT = ATOMIC_KINDS.index("wait")


def atomic_kind(name: str) -> int:
    """ATOMIC's kind for the wasm atomic instruction `name` (i32.atomic.rmw8.add_u: add)."""
    last = name.split(".")[-1]
    if ".rmw" in name:
        return ATOMIC_KINDS.index(last.removesuffix("_u"))
    return next(i for i, k in enumerate(ATOMIC_KINDS[:4]) if last.startswith(k))

# Loads and stores: wasm name -> (C type of the memory access, C conversion of the loaded value).
LOADS = {
    "i32.load": ("u32", "(u64)v"), "i64.load": ("u64", "v"), "f32.load": ("u32", "(u64)v"),
    "f64.load": ("u64", "v"), "i32.load8_s": ("u8", "(u64)(u32)(i32)(i8)v"), "i32.load8_u": ("u8", "(u64)v"),
    "i32.load16_s": ("u16", "(u64)(u32)(i32)(i16)v"), "i32.load16_u": ("u16", "(u64)v"),
    "i64.load8_s": ("u8", "(u64)(i64)(i8)v"), "i64.load8_u": ("u8", "(u64)v"),
    "i64.load16_s": ("u16", "(u64)(i64)(i16)v"), "i64.load16_u": ("u16", "(u64)v"),
    "i64.load32_s": ("u32", "(u64)(i64)(i32)v"), "i64.load32_u": ("u32", "(u64)v"),
}
STORES = {
    "i32.store": "u32", "i64.store": "u64", "f32.store": "u32", "f64.store": "u64", "i32.store8": "u8",
    "i32.store16": "u16", "i64.store8": "u8", "i64.store16": "u16", "i64.store32": "u32",
}

# Numeric instructions: wasm name -> C statement computing r from x (and y).
# x, y, r have the C types of the wasm operand and result types (u32, u64, f32, f64).
# TRAP(name) stops the instance; CANON_F32/F64 give NaN results the canonical bit pattern.
_I32 = {
    "eqz": "r = x == 0;", "eq": "r = x == y;", "ne": "r = x != y;", "lt_s": "r = (i32)x < (i32)y;",
    "lt_u": "r = x < y;", "gt_s": "r = (i32)x > (i32)y;", "gt_u": "r = x > y;", "le_s": "r = (i32)x <= (i32)y;",
    "le_u": "r = x <= y;", "ge_s": "r = (i32)x >= (i32)y;", "ge_u": "r = x >= y;",
    "clz": "r = CLZ32(x);", "ctz": "r = CTZ32(x);", "popcnt": "r = POPCNT32(x);",
    "add": "r = x + y;", "sub": "r = x - y;", "mul": "r = x * y;",
    "div_s": "if (y == 0) TRAP(DIV_ZERO); if (x == 0x80000000u && y == 0xffffffffu) TRAP(INT_OVERFLOW);"
             " r = (u32)((i32)x / (i32)y);",
    "div_u": "if (y == 0) TRAP(DIV_ZERO); r = x / y;",
    "rem_s": "if (y == 0) TRAP(DIV_ZERO); r = (y == 0xffffffffu) ? 0 : (u32)((i32)x % (i32)y);",
    "rem_u": "if (y == 0) TRAP(DIV_ZERO); r = x % y;",
    "and": "r = x & y;", "or": "r = x | y;", "xor": "r = x ^ y;", "shl": "r = x << (y & 31);",
    "shr_s": "r = (u32)((i32)x >> (y & 31));", "shr_u": "r = x >> (y & 31);",
    "rotl": "r = (x << (y & 31)) | (x >> ((32 - (y & 31)) & 31));",
    "rotr": "r = (x >> (y & 31)) | (x << ((32 - (y & 31)) & 31));",
}
_I64 = {
    "eqz": "r = x == 0;", "eq": "r = x == y;", "ne": "r = x != y;", "lt_s": "r = (i64)x < (i64)y;",
    "lt_u": "r = x < y;", "gt_s": "r = (i64)x > (i64)y;", "gt_u": "r = x > y;", "le_s": "r = (i64)x <= (i64)y;",
    "le_u": "r = x <= y;", "ge_s": "r = (i64)x >= (i64)y;", "ge_u": "r = x >= y;",
    "clz": "r = CLZ64(x);", "ctz": "r = CTZ64(x);", "popcnt": "r = POPCNT64(x);",
    "add": "r = x + y;", "sub": "r = x - y;", "mul": "r = x * y;",
    "div_s": "if (y == 0) TRAP(DIV_ZERO); if (x == 0x8000000000000000ull && y == ~0ull) TRAP(INT_OVERFLOW);"
             " r = (u64)((i64)x / (i64)y);",
    "div_u": "if (y == 0) TRAP(DIV_ZERO); r = x / y;",
    "rem_s": "if (y == 0) TRAP(DIV_ZERO); r = (y == ~0ull) ? 0 : (u64)((i64)x % (i64)y);",
    "rem_u": "if (y == 0) TRAP(DIV_ZERO); r = x % y;",
    "and": "r = x & y;", "or": "r = x | y;", "xor": "r = x ^ y;", "shl": "r = x << (y & 63);",
    "shr_s": "r = (u64)((i64)x >> (y & 63));", "shr_u": "r = x >> (y & 63);",
    "rotl": "r = (x << (y & 63)) | (x >> ((64 - (y & 63)) & 63));",
    "rotr": "r = (x >> (y & 63)) | (x << ((64 - (y & 63)) & 63));",
}


def _float_ops(w: int) -> dict[str, str]:
    canon = f"CANON_F{w}"
    s = "f" if w == 32 else ""
    return {
        "eq": "r = x == y;", "ne": "r = x != y;", "lt": "r = x < y;", "gt": "r = x > y;", "le": "r = x <= y;",
        "ge": "r = x >= y;",
        "abs": f"r = F{w}_ABS(x);", "neg": f"r = F{w}_NEG(x);",
        "ceil": f"r = {canon}(ceil{s}(x));", "floor": f"r = {canon}(floor{s}(x));",
        "trunc": f"r = {canon}(trunc{s}(x));", "nearest": f"r = {canon}(rint{s}(x));",
        "sqrt": f"r = {canon}(sqrt{s}(x));",
        "add": f"r = {canon}(x + y);", "sub": f"r = {canon}(x - y);", "mul": f"r = {canon}(x * y);",
        "div": f"r = {canon}(x / y);", "min": f"r = F{w}_MIN(x, y);", "max": f"r = F{w}_MAX(x, y);",
        "copysign": f"r = F{w}_COPYSIGN(x, y);",
    }


# Float -> integer truncation: (lower bound exclusive, upper bound exclusive) as C literals.
_TRUNC = {
    ("f32", "i32", "s"): ("-2147483904.0f", "2147483648.0f", "i32", "-2147483648", "2147483647"),
    ("f32", "i32", "u"): ("-1.0f", "4294967296.0f", "u32", "0", "4294967295u"),
    ("f64", "i32", "s"): ("-2147483649.0", "2147483648.0", "i32", "-2147483648", "2147483647"),
    ("f64", "i32", "u"): ("-1.0", "4294967296.0", "u32", "0", "4294967295u"),
    ("f32", "i64", "s"): ("-9223373136366403584.0f", "9223372036854775808.0f", "i64",
                          "(-9223372036854775807ll - 1)", "9223372036854775807ll"),
    ("f32", "i64", "u"): ("-1.0f", "18446744073709551616.0f", "u64", "0", "18446744073709551615ull"),
    ("f64", "i64", "s"): ("-9223372036854777856.0", "9223372036854775808.0", "i64",
                          "(-9223372036854775807ll - 1)", "9223372036854775807ll"),
    ("f64", "i64", "u"): ("-1.0", "18446744073709551616.0", "u64", "0", "18446744073709551615ull"),
}


def _conversions() -> dict[str, str]:
    ops = {
        "i32.wrap_i64": "r = (u32)x;",
        "i64.extend_i32_s": "r = (u64)(i64)(i32)x;", "i64.extend_i32_u": "r = (u64)x;",
        "f32.convert_i32_s": "r = (f32)(i32)x;", "f32.convert_i32_u": "r = (f32)x;",
        "f32.convert_i64_s": "r = (f32)(i64)x;", "f32.convert_i64_u": "r = (f32)x;",
        "f64.convert_i32_s": "r = (f64)(i32)x;", "f64.convert_i32_u": "r = (f64)x;",
        "f64.convert_i64_s": "r = (f64)(i64)x;", "f64.convert_i64_u": "r = (f64)x;",
        "f32.demote_f64": "r = CANON_F32((f32)x);", "f64.promote_f32": "r = CANON_F64((f64)x);",
        "i32.reinterpret_f32": "r = F32_BITS(x);", "i64.reinterpret_f64": "r = F64_BITS(x);",
        "f32.reinterpret_i32": "r = BITS_F32(x);", "f64.reinterpret_i64": "r = BITS_F64(x);",
        "i32.extend8_s": "r = (u32)(i32)(i8)x;", "i32.extend16_s": "r = (u32)(i32)(i16)x;",
        "i64.extend8_s": "r = (u64)(i64)(i8)x;", "i64.extend16_s": "r = (u64)(i64)(i16)x;",
        "i64.extend32_s": "r = (u64)(i64)(i32)x;",
    }
    for (src, dst, sign), (lo, hi, ctype, smin, smax) in _TRUNC.items():
        utype = "u32" if dst == "i32" else "u64"
        ops[f"{dst}.trunc_{src}_{sign}"] = (
            f"if (x != x) TRAP(BAD_CONVERSION); if (!(x > {lo} && x < {hi})) TRAP(INT_OVERFLOW);"
            f" r = ({utype})({ctype})x;")
        ops[f"{dst}.trunc_sat_{src}_{sign}"] = (
            f"if (x != x) r = 0; else if (!(x > {lo})) r = ({utype})({ctype}){smin};"
            f" else if (!(x < {hi})) r = ({utype})({ctype}){smax}; else r = ({utype})({ctype})x;")
    return ops


def numeric_semantics() -> dict[str, str]:
    ops: dict[str, str] = {}
    ops.update({f"i32.{k}": v for k, v in _I32.items()})
    ops.update({f"i64.{k}": v for k, v in _I64.items()})
    ops.update({f"f32.{k}": v for k, v in _float_ops(32).items()})
    ops.update({f"f64.{k}": v for k, v in _float_ops(64).items()})
    ops.update(_conversions())
    return ops


NUMERIC = numeric_semantics()


def width(t: int) -> int:
    """Slots a value of type t takes."""
    return 2 if t == wo.V128_T else 1


def slot_count(types: Iterable[int]) -> int:
    """Slots values of these types take, one after another."""
    return sum(width(t) for t in types)


def simd_shape(sub: int) -> tuple[tuple[int, ...], int]:
    """SIMD op `sub`'s operand widths (x, y, z in order) and its result's (0: none)."""
    info = wo.OPS[wo.FD | sub]
    return tuple(width(t) for t in info.params or ()), width(info.results[0]) if info.results else 0


def isa_name(wasm_name: str) -> str:
    return wasm_name.upper().replace(".", "_")


# Operand flags, bits 8..15 of an instruction word (the op number is bits 0..7). The VM reads the
# operands an instruction names before it dispatches on the op, and writes or branches on the result after
# it, in code that every op shares: lanes of a warp that run different ops still issue these loads and
# stores together, and one handler per wasm operator serves its slot, immediate and branch forms.
F_RB = 1 << 8  # x <- slot b (else x = 0)
F_RC = 1 << 9  # y <- slot c (else y = c, a signed 16-bit immediate)
F_EXT = 1 << 10  # ext <- the next code word
F_WA = 1 << 11  # slot a <- r
F_BR = 1 << 12  # branch to ext when r != 0 (a compare fused with the branch that tests it)
F_NEG = 1 << 13  # with F_BR: branch when r == 0
FLAG_BITS = {"F_RB": F_RB, "F_RC": F_RC, "F_EXT": F_EXT, "F_WA": F_WA, "F_BR": F_BR, "F_NEG": F_NEG}
OP_MASK = 0xFF

# Compares: a branch on their result fuses with them (F_BR); the wasm names.
COMPARES = [n for n in NUMERIC if n.split(".")[1] in {"eqz", "eq", "ne", "lt", "gt", "le", "ge", "lt_s", "lt_u",
                                                         "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"}]
# Integer binary operators: their second operand may be a small immediate (F_RC clear).
IMM_OPS = [n for n in NUMERIC if n[0] == "i" and n[3] == "." and len(wo.BY_NAME[n].params or ()) == 2]

# A load's or store's op for a memory with 64-bit addresses (memory64): its name with this suffix. Apart from
# the 32-bit ones, so that those keep their two-instruction address (no overflow test) in the hot loop.
A64 = "_A64"


def variants(names: Iterable[str]) -> list[str]:
    """The ops of wasm loads or stores: each one's 32-bit and 64-bit address forms."""
    return [isa_name(n) + v for v in ("", A64) for n in names]


_ALL_OPS: list[str] = (
    list(CONTROL)
    + variants(LOADS)
    + variants(STORES)
    + [isa_name(n) for n in NUMERIC]
)

# The hot set: the ops compiled C and Rust run in inner loops (bench/opcount.py measured the benchmarks:
# these cover about 99% of their executed instructions). They get the numbers 0..len(HOT)-1 and the VM's
# first switch; every other op goes through a second one. On the GPU a switch is a tree of compares
# (DESIGN.md section 4), so a small first switch makes the common dispatch shorter.
HOT = [
    "MOV", "CONST", "CONST32", "JMP", "BR_TABLE", "CALL", "RET", "SELECT",
    "I32_LOAD", "I32_LOAD8_U", "I32_LOAD8_S", "I64_LOAD", "I64_LOAD8_U", "I32_STORE", "I32_STORE8", "I64_STORE",
    "I32_ADD", "I32_SUB", "I32_MUL", "I32_REM_U", "I32_AND", "I32_OR", "I32_XOR", "I32_SHL", "I32_SHR_U",
    "I32_EQZ", "I32_EQ", "I32_NE", "I32_LT_U", "I32_GT_U", "I32_GE_U", "I32_LT_S", "I32_GT_S", "I32_GE_S",
    "I32_LE_S",
    "I64_ADD", "I64_MUL", "I64_AND", "I64_XOR", "I64_ROTL", "I64_SHL", "I64_SHR_U", "I64_SHR_S",
    "I64_EQZ", "I64_EQ", "I64_NE", "I64_LT_U", "I64_EXTEND_I32_U", "I32_WRAP_I64",
    "F64_ADD", "F64_SUB", "F64_MUL", "F64_LE",
]
assert set(HOT) <= set(_ALL_OPS) and len(set(HOT)) == len(HOT)
OP_NAMES: list[str] = HOT + [n for n in _ALL_OPS if n not in HOT]
OP: dict[str, int] = {name: i for i, name in enumerate(OP_NAMES)}
assert len(OP_NAMES) <= OP_MASK + 1

# The flags each op is emitted with; the translator may then clear F_RC (immediate) or trade F_WA for F_BR.
FLAGS: dict[int, int] = {OP[n]: 0 for n in OP_NAMES}
FLAGS.update({OP["MOV"]: F_RB | F_WA, OP["CONST"]: F_EXT | F_WA, OP["CONST32"]: F_WA,
              OP["SELECT"]: F_RB | F_RC | F_EXT | F_WA})
FLAGS.update({OP[n]: F_RB | F_EXT | F_WA for n in variants(LOADS)})
FLAGS.update({OP[n]: F_RB | F_RC | F_EXT for n in variants(STORES)})
FLAGS.update({OP[isa_name(n)]: F_RB | F_WA | (F_RC if len(wo.BY_NAME[n].params or ()) == 2 else 0)
              for n in NUMERIC})

_CTYPE = {wo.I32_T: "u32", wo.I64_T: "u64", wo.F32_T: "f32", wo.F64_T: "f64"}
_FROM_U64 = {"u32": "(u32){}", "u64": "{}", "f32": "bits_f32((u32){})", "f64": "bits_f64({})"}
_TO_U64 = {"u32": "(u64){}", "u64": "{}", "f32": "(u64)f32_bits({})", "f64": "f64_bits({})"}


def _numeric_case(wasm_name: str, body: str) -> str:
    """The handler: operands from the VM's X and Y, the result into R (its F_WA or F_BR epilogue follows)."""
    info = wo.BY_NAME[wasm_name]
    assert info.params is not None and info.results is not None
    lines = [f"case OP_{isa_name(wasm_name)}: {{"]
    for name, src, t in zip("xy", "XY", info.params, strict=False):  # unary ops: x only
        ct = _CTYPE[t]
        lines.append(f" {ct} {name} = {_FROM_U64[ct].format(src)};")
    rt = _CTYPE[info.results[0]]
    lines.append(f" {rt} r; {body} R = {_TO_U64[rt].format('r')}; goto done; }}")
    return "".join(lines)


def handler_cases() -> dict[str, str]:
    """The generated handlers by op name: loads, stores and numeric ops, each `case OP_X: { ... }`."""
    # Loads: address x (slot b), result to slot a; stores: address x (slot b), value y (slot c).
    # ext = static offset | memory << 32.
    cases: dict[str, str] = {}
    for v, w in (("", ""), (A64, "64")):
        for name, (ctype, conv) in LOADS.items():
            op = isa_name(name) + v
            cases[op] = f"case OP_{op}: {{ {ctype} v; LOAD_MEM{w}({ctype}, v); R = {conv}; goto done; }}"
        for name, ctype in STORES.items():
            op = isa_name(name) + v
            cases[op] = f"case OP_{op}: {{ STORE_MEM{w}({ctype}, ({ctype})Y); goto done; }}"
    for name, body in NUMERIC.items():
        cases[isa_name(name)] = _numeric_case(name, body)
    return cases


def generate_header() -> str:
    out = [
        "// Generated by wasmgpu/compiler/isa.py: do not edit. Regenerate with",
        "// `python -m wasmgpu.compiler.isa`.",
        "#pragma once",
        "enum Op {",
    ]
    out += [f"  OP_{name} = {i}," for i, name in enumerate(OP_NAMES)]
    out.append(f"  OP_COUNT = {len(OP_NAMES)}")
    out.append("};")
    out += [f"#define {name} 0x{bit:x}u" for name, bit in FLAG_BITS.items()]
    out.append(f"#define OP_MASK 0x{OP_MASK:x}u")
    out += vm_abi.c_definitions()
    out.append("")
    cases = handler_cases()
    out.append(f"#define OP_HOT_COUNT {len(HOT)}")
    for macro, names in (("GENERATED_HOT_CASES", HOT), ("GENERATED_COLD_CASES", OP_NAMES[len(HOT):])):
        out.append(f"#define {macro} \\")
        out += [f"  {cases[n]} \\" for n in names if n in cases]
        out.append("")
    return "\n".join(out) + "\n"


HEADER_PATH = Path(__file__).resolve().parent.parent / "vm" / "isa.h"

if __name__ == "__main__":
    HEADER_PATH.write_text(generate_header())
    print(f"wrote {HEADER_PATH} ({len(OP_NAMES)} ops)")
