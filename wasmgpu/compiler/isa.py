"""The register bytecode: defined once here; vm/isa.h is generated from it.

An instruction is one 64-bit word: op:16 | a:16 | b:16 | c:16, where a, b, c
are frame-relative slot numbers (or small immediates). ``imm32`` is the upper
half (b | c << 16). Some instructions take follow-on words; the VM reads them
with NEXT_WORD(). Numeric instructions are one per WebAssembly numeric opcode,
named after it (``i32.add`` -> ``I32_ADD``); their C semantics live in the table
below, so the translator and the VM cannot disagree about what an opcode means.

Run ``python -m wasmgpu.compiler.isa`` to regenerate vm/isa.h.
"""

from __future__ import annotations

from pathlib import Path

from ..wasm import opcodes as wo

# Trap codes and their messages (the spec suite's wording).
TRAPS = [
    ("NONE", ""),
    ("UNREACHABLE", "unreachable"),
    ("DIV_ZERO", "integer divide by zero"),
    ("INT_OVERFLOW", "integer overflow"),
    ("BAD_CONVERSION", "invalid conversion to integer"),
    ("MEM_OOB", "out of bounds memory access"),
    ("UNDEFINED_ELEMENT", "undefined element"),
    ("UNINITIALIZED_ELEMENT", "uninitialized element"),
    ("SIG_MISMATCH", "indirect call type mismatch"),
    ("TABLE_OOB", "out of bounds table access"),
    ("STACK_EXHAUSTED", "call stack exhausted"),
    ("OUT_OF_FUEL", "all fuel consumed"),
    ("HOST", "host function failed"),
]
TRAP_CODE = {name: i for i, (name, _) in enumerate(TRAPS)}
TRAP_MESSAGE = [msg for _, msg in TRAPS]

# Instance status values.
# DEVICECALL never reaches the host: the kernel serves the call (wasi_fast.h) between two vm_step runs.
STATUSES = ["RUNNING", "DONE", "TRAPPED", "HOSTCALL", "EXITED", "DEVICECALL"]
STATUS = {name: i for i, name in enumerate(STATUSES)}

# Control and structural instructions, hand-written in vm.h. Operands in comments.
CONTROL = [
    "NOP",
    "UNREACHABLE",
    "MOV",  # a <- b
    "CONST",  # a <- next word
    "CONST32",  # a <- imm32 (zero-extended)
    "JMP",  # pc <- imm32
    "BR_IF",  # if a (i32) != 0: pc <- imm32
    "BR_UNLESS",  # if a (i32) == 0: pc <- imm32
    "BR_TABLE",  # index a; imm32 = n; then n+1 words of targets (last = default)
    "CALL",  # callee frame at fp + a; imm32 = function address
    "CALL_INDIRECT",  # callee frame at fp + a; index b; table c; next word: signature id
    "RET",  # results already in slots 0..n-1
    "SELECT",  # a <- (next word slot) != 0 ? b : c
    "GLOBAL_GET",  # a <- global imm32
    "GLOBAL_SET",  # global imm32 <- a
    "MEMORY_SIZE",  # a <- pages of memory c
    "MEMORY_GROW",  # a <- grow memory c by b pages
    "MEMORY_COPY",  # dst a, src b, len c; next word: memory
    "MEMORY_FILL",  # dst a, value b, len c; next word: memory
    "MEMORY_INIT",  # dst a, src b, len c; next word: memory | data << 32
    "DATA_DROP",  # imm32 = data address
    "TABLE_GET",  # a <- table c [b]
    "TABLE_SET",  # table c [a] <- b
    "TABLE_SIZE",  # a <- size of table c
    "TABLE_GROW",  # a <- grow table (next word) by c entries of b
    "TABLE_FILL",  # at a, value b, len c; next word: table
    "TABLE_COPY",  # dst a, src b, len c; next word: dst table | src table << 32
    "TABLE_INIT",  # dst a, src b, len c; next word: table | elem << 32
    "ELEM_DROP",  # imm32 = elem address
    "REF_FUNC",  # a <- function address imm32
    "REF_IS_NULL",  # a <- b == null
]

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


def isa_name(wasm_name: str) -> str:
    return wasm_name.upper().replace(".", "_")


# Superinstructions. `<op>_IMM`: the second operand is the signed 16-bit immediate c.
_IMM_BASE = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "eq", "ne", "lt_s", "lt_u", "gt_s",
             "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
IMM_OPS = [f"{t}.{o}" for t in ("i32", "i64") for o in _IMM_BASE]
# `BR_<cmp>`: compare and branch, target in the next word; `BR_<cmp>_IMM` compares slot a with immediate b.
COMPARES = [f"{t}.{o}" for t in ("i32", "i64") for o in _IMM_BASE[9:]]
NEGATED = {"eq": "ne", "ne": "eq", "lt_s": "ge_s", "lt_u": "ge_u", "gt_s": "le_s", "gt_u": "le_u", "le_s": "gt_s",
           "le_u": "gt_u", "ge_s": "lt_s", "ge_u": "lt_u"}


def negate(cmp: str) -> str:
    t, o = cmp.split(".")
    return f"{t}.{NEGATED[o]}"


_ALL_OPS: list[str] = (
    CONTROL
    + [isa_name(n) for n in LOADS]
    + [isa_name(n) for n in STORES]
    + [isa_name(n) for n in NUMERIC]
    + [isa_name(n) + "_IMM" for n in IMM_OPS]
    + ["BR_" + isa_name(n) for n in COMPARES]
    + ["BR_" + isa_name(n) + "_IMM" for n in COMPARES]
)

# The hot set: the ops compiled C and Rust run in inner loops (bench/opcount.py measured the benchmarks:
# these cover about 97% of their executed instructions). They get the numbers 0..len(HOT)-1 and the VM's
# first switch; every other op goes through a second one. On the GPU a switch is a tree of compares
# (DESIGN.md section 4), so a small first switch makes the common dispatch shorter.
HOT = [
    "MOV", "CONST", "CONST32", "JMP", "BR_IF", "BR_UNLESS", "BR_TABLE", "CALL", "RET", "SELECT",
    "I32_LOAD", "I32_LOAD8_U", "I32_LOAD8_S", "I64_LOAD", "F64_LOAD", "I32_STORE", "I32_STORE8", "I64_STORE",
    "F64_STORE",
    "I32_ADD", "I32_SUB", "I32_MUL", "I32_AND", "I32_OR", "I32_XOR", "I32_SHL", "I32_SHR_U", "I32_EQZ",
    "I32_EQ", "I32_NE", "I32_LT_U", "I32_GT_S",
    "I32_ADD_IMM", "I32_MUL_IMM", "I32_AND_IMM", "I32_OR_IMM", "I32_XOR_IMM", "I32_SHL_IMM", "I32_SHR_U_IMM",
    "I32_SHR_S_IMM", "I32_EQ_IMM", "I32_NE_IMM",
    "BR_I32_EQ", "BR_I32_NE", "BR_I32_LT_U", "BR_I32_GT_U", "BR_I32_GE_U", "BR_I32_LT_S", "BR_I32_GE_S",
    "BR_I32_EQ_IMM", "BR_I32_NE_IMM", "BR_I32_LT_U_IMM", "BR_I32_GT_U_IMM",
    "I64_ADD", "I64_MUL", "I64_AND", "I64_XOR", "I64_ROTL", "I64_ADD_IMM", "I64_SHL_IMM", "I64_SHR_U_IMM",
    "I64_SHR_S_IMM", "I64_EXTEND_I32_U", "I32_WRAP_I64",
    "F64_ADD", "F64_SUB", "F64_MUL", "F64_DIV", "F64_LT", "F64_LE",
]
assert set(HOT) <= set(_ALL_OPS) and len(set(HOT)) == len(HOT)
OP_NAMES: list[str] = HOT + [n for n in _ALL_OPS if n not in HOT]
OP: dict[str, int] = {name: i for i, name in enumerate(OP_NAMES)}

_CTYPE = {wo.I32_T: "u32", wo.I64_T: "u64", wo.F32_T: "f32", wo.F64_T: "f64"}


def _numeric_case(wasm_name: str, body: str, imm: bool = False) -> str:
    info = wo.BY_NAME[wasm_name]
    assert info.params is not None and info.results is not None
    lines = [f"case OP_{isa_name(wasm_name)}{'_IMM' if imm else ''}: {{"]
    names = ["x", "y"]
    for i, t in enumerate(info.params):
        ct = _CTYPE[t]
        src = f"({ct})(i64)(i16)C" if imm and i == 1 else f"RD_{ct.upper()}({'B' if i == 0 else 'C'})"
        lines.append(f" {ct} {names[i]} = {src};")
    rt = _CTYPE[info.results[0]]
    lines.append(f" {rt} r; {body} WR_{rt.upper()}(A, r); NEXT; }}")
    return "".join(lines)


def _branch_case(cmp: str, imm: bool) -> str:
    ct = "u32" if cmp.startswith("i32") else "u64"
    y = f"({ct})(i64)(i16)B" if imm else f"RD_{ct.upper()}(B)"
    return (f"case OP_BR_{isa_name(cmp)}{'_IMM' if imm else ''}: {{ {ct} x = RD_{ct.upper()}(A); {ct} y = {y};"
            f" u32 r; u32 t = (u32)NEXT_WORD(); {NUMERIC[cmp]} if (r) BRANCH(t); NEXT; }}")


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
    out += [f"#define TRAP_{name} {i}" for i, (name, _) in enumerate(TRAPS)]
    out += [f"#define STATUS_{name} {i}" for i, name in enumerate(STATUSES)]
    out.append("")
    # Loads: address slot b, destination a, memory c; next word: static offset.
    # Stores: address slot a, value slot b, memory c; next word: static offset.
    cases: dict[str, str] = {}
    for name, (ctype, conv) in LOADS.items():
        cases[isa_name(name)] = (f"case OP_{isa_name(name)}: {{ {ctype} v; LOAD_MEM({ctype}, v);"
                                 f" WR_U64(A, {conv}); NEXT; }}")
    for name, ctype in STORES.items():
        cases[isa_name(name)] = f"case OP_{isa_name(name)}: {{ STORE_MEM({ctype}, ({ctype})RD_U64(B)); NEXT; }}"
    for name, body in NUMERIC.items():
        cases[isa_name(name)] = _numeric_case(name, body)
    for name in IMM_OPS:
        cases[isa_name(name) + "_IMM"] = _numeric_case(name, NUMERIC[name], imm=True)
    for name in COMPARES:
        cases["BR_" + isa_name(name)] = _branch_case(name, False)
        cases["BR_" + isa_name(name) + "_IMM"] = _branch_case(name, True)
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
