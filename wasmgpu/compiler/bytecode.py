"""Decoding the register bytecode (isa.py): the one decoder the compiled tier (to_c.py) and the disassembler
(wasmgpu/disasm.py) share, and an instruction's text with its operands by role."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import WasmGpuError
from ..wasm import opcodes as wo
from .isa import (
    CONTROL,
    F_BR,
    F_EXT,
    F_NEG,
    F_RB,
    F_RC,
    F_WA,
    LOADS,
    NUMERIC,
    OP,
    OP_MASK,
    OP_NAMES,
    STORES,
    isa_name,
    variants,
)

# Ops that read a follow-on word with NEXT_WORD(), beyond the F_EXT one (BR_TABLE's targets are counted apart).
NEXT_WORDS = {OP[n] for n, c in CONTROL.items() if c.next_words}
_LOADS = {OP[n] for n in variants(LOADS)}
_STORES = {OP[n] for n in variants(STORES)}
_BINARY = {OP[isa_name(n)] for n in NUMERIC if len(wo.BY_NAME[n].params or ()) == 2}


class BytecodeError(WasmGpuError):
    """Words that are no valid instruction sequence (a bad opcode, or a function's last one running past its end)."""


@dataclass
class Ins:
    pc: int
    op: int
    fl: int
    a: int
    b: int
    c: int
    imm32: int
    ext: int  # the F_EXT word, or the NEXT_WORD one
    after: int  # pc of the next instruction
    targets: list[int] = field(default_factory=list)  # branch targets


def decode(code: np.ndarray, start: int, end: int) -> list[Ins]:
    """The instructions of code[start:end]."""
    out: list[Ins] = []
    p = start
    while p < end:
        w = int(code[p])
        op, fl = w & OP_MASK, w & 0xFF00
        if op >= len(OP_NAMES):
            raise BytecodeError(f"bad opcode {op} at pc {p}")
        ins = Ins(p, op, fl, (w >> 16) & 0xFFFF, (w >> 32) & 0xFFFF, w >> 48, w >> 32, 0, p + 1)
        if fl & F_EXT:
            ins.ext = int(code[p + 1])
            ins.after += 1
        if op in NEXT_WORDS:
            ins.ext = int(code[ins.after])
            ins.after += 1
        if op == OP["BR_TABLE"]:
            ins.targets = [int(code[p + 1 + k]) & 0xFFFFFFFF for k in range(ins.imm32 + 1)]
            ins.after += ins.imm32 + 1
        elif op == OP["JMP"]:
            ins.targets = [ins.imm32]
        elif fl & F_BR:
            ins.targets = [ins.ext & 0xFFFFFFFF]
        out.append(ins)
        p = ins.after
    if p != end:
        raise BytecodeError(f"code of the function at {start} overruns its end {end}")
    return out


def operand_roles(ins: Ins) -> str:
    """The operands of an op as `role=field` (isa.Control.operands); generated ops' follow from their flags."""
    name = OP_NAMES[ins.op]
    if name in CONTROL:
        return CONTROL[name].operands
    roles = ["dst=sa"] if ins.fl & F_WA and not ins.fl & F_BR else []
    if ins.op in _LOADS:
        return " ".join(roles + ["addr=sb", "offset=ext.lo", "memory=ext.hi"])
    if ins.op in _STORES:
        return "addr=sb value=sc offset=ext.lo memory=ext.hi"
    if ins.fl & F_RB:
        roles.append("x=sb")
    if ins.op in _BINARY:
        roles.append("y=y")
    if ins.fl & F_BR:
        roles.append(("br_unless" if ins.fl & F_NEG else "br_if") + "=ext")
    return " ".join(roles)


def _field(ins: Ins, f: str) -> str:
    if f in ("sa", "sb", "sc"):
        return f"s{getattr(ins, f[1])}"
    if f in ("a", "b", "c", "imm32"):
        return str(getattr(ins, f))
    if f == "y":
        return f"s{ins.c}" if ins.fl & F_RC else f"#{ins.c - 0x10000 if ins.c & 0x8000 else ins.c}"
    if f == "sext":
        return f"s{ins.ext & 0xFFFFFFFF}"
    value = ins.ext
    half = f.rsplit(".", 1)[-1]
    if half == "lo":
        value &= 0xFFFFFFFF
    elif half == "hi":
        value >>= 32
    return str(value) if "." in f or value < 1 << 32 else f"{value:#x}"


def operands(ins: Ins) -> str:
    """An instruction's operands as text: `role=value`, slots as s<n> and immediates as #<n>."""
    out = []
    for token in operand_roles(ins).split():
        if token == "targets":
            out.append("targets=[" + ",".join(map(str, ins.targets)) + "]")
            continue
        role, f = token.split("=")
        out.append(f"{role}={_field(ins, f)}")
    return " ".join(out)
