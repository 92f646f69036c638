"""Where the compiled tier makes NaNs canonical.

The interpreter makes the NaN result of every float op canonical (vm.h canon_f32/canon_f64), so that a
program sees the same bits on every backend. In a chain of float ops that costs a compare and a select per
op, and on the GPU the compare runs on the FP64 pipe (mandel's inner loop: 57 machine instructions, 24 of
them canonicalizing). Most results are only ever read by ops that do not care which NaN they get (arithmetic,
comparisons, min/max, truncation to an integer), so the compiled tier canonicalizes where the bits can be
seen instead: at a use that reads them (a store, a reinterpretation, neg/abs/copysign, a call argument, a
return value, global.set). Copies and selects pass a value on unchanged.

A value is "dirty" when it came, through copies, from a float op whose canonicalization was left out. At a
use that sees bits:
- every definition reaching it is dirty: the use canonicalizes (once, often outside the loop);
- some are dirty, some not (a float loaded from memory keeps its NaN's bits): the dirty definitions keep
  their canonicalization, and the analysis runs again without them.
Writebacks to slots keep the bits, so a value is as dirty after a resume as it was before the exit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .isa import F_RC, OP_NAMES

# Ops whose result does not depend on which NaN an operand holds.
_BLIND = re.compile(r"F(32|64)_(EQ|NE|LT|GT|LE|GE|MIN|MAX)|I(32|64)_TRUNC_(SAT_)?F(32|64)_[SU]")


State = tuple[int, int, int, int]


@dataclass
class NanPlan:
    strip: set[int] = field(default_factory=set)  # pcs whose op runs without canonicalizing its result
    canon: dict[int, dict[int, int]] = field(default_factory=dict)  # pc -> {slot read there: 32 or 64}


def _kind(body: str) -> int:
    return 64 if "CANON_F64(" in body else 32 if "CANON_F32(" in body else 0


def plan(body: list, succs: list[list[int]], uses: list[int], defs: list[int], copies: dict[int, list[int]],
         handlers: dict[int, str]) -> NanPlan:
    """body: the function's instructions (bytecode.Ins); succs, uses, defs: per instruction, as to_c has them;
    copies: index of a MOV or SELECT -> the slots it copies from (to_c._copy_sources)."""
    n = len(body)
    kind = [_kind(handlers.get(ins.op, "")) for ins in body]
    if not any(kind):
        return NanPlan()
    names = [OP_NAMES[ins.op] for ins in body]
    sees = [not (kind[i] or i in copies or _BLIND.fullmatch(names[i])) for i in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, ss in enumerate(succs):
        for j in ss:
            preds[j].append(i)
    marked: set[int] = set()  # stripped candidates that canonicalize after all

    def transfer(i: int, state: State) -> State:
        m32, m64, s32, s64 = state
        keep = ~defs[i]
        o32, o64, t32, t64 = m32 & keep, m64 & keep, s32 & keep, s64 & keep
        if kind[i] and i not in marked:
            bit = 1 << body[i].a
            if kind[i] == 64:
                o64, t64 = o64 | bit, t64 | bit
            else:
                o32, t32 = o32 | bit, t32 | bit
        elif i in copies:
            srcs = copies[i]
            bit = 1 << body[i].a
            all_slots = names[i] == "MOV" or bool(body[i].fl & F_RC)  # a select's immediate is an integer
            o32 |= bit if any(m32 >> s & 1 for s in srcs) else 0
            o64 |= bit if any(m64 >> s & 1 for s in srcs) else 0
            t32 |= bit if all_slots and all(s32 >> s & 1 for s in srcs) else 0
            t64 |= bit if all_slots and all(s64 >> s & 1 for s in srcs) else 0
        return o32, o64, t32, t64

    def states() -> list[State]:
        """(may32, may64, must32, must64): the slots that may, or must, be dirty on entry to each
        instruction. The function is entered clean; instructions never reached stay clean."""
        at: list[State] = [(0, 0, 0, 0)] * n
        out: list[State | None] = [None] * n
        changed = True
        while changed:
            changed = False
            for i in range(n):
                came: list[State] = [o for p in preds[i] if (o := out[p]) is not None]
                if i == 0:
                    came.append((0, 0, 0, 0))
                if not came:
                    continue
                m32 = m64 = 0
                s32 = s64 = -1
                for a, b, c, d in came:
                    m32, m64, s32, s64 = m32 | a, m64 | b, s32 & c, s64 & d
                at[i] = (m32, m64, s32, s64)
                new = transfer(i, at[i])
                if new != out[i]:
                    out[i] = new
                    changed = True
        return at

    def sources(i: int, slot: int) -> set[int]:
        """The unmarked stripped ops whose results may be in `slot` on entry to instruction i."""
        found: set[int] = set()
        stack = [(p, slot) for p in preds[i]]
        visited: set[tuple[int, int]] = set()
        while stack:
            j, s = stack.pop()
            if (j, s) in visited:
                continue
            visited.add((j, s))
            if defs[j] >> s & 1:
                if kind[j] and j not in marked:
                    found.add(j)
                elif j in copies:
                    stack.extend((p, src) for src in copies[j] for p in preds[j])
                continue
            stack.extend((p, s) for p in preds[j])
        return found

    while True:
        at = states()
        more: set[int] = set()
        for i in range(n):
            if sees[i]:
                m32, m64, s32, s64 = at[i]
                for k in _slots(uses[i] & ((m32 & ~s32) | (m64 & ~s64))):
                    more |= sources(i, k)
        if not more:
            break
        marked |= more
    out = NanPlan(strip={body[i].pc for i in range(n) if kind[i] and i not in marked})
    for i in range(n):
        if sees[i]:
            _, _, s32, s64 = at[i]
            hit = {k: 64 for k in _slots(uses[i] & s64)} | {k: 32 for k in _slots(uses[i] & s32 & ~s64)}
            if hit:
                out.canon[body[i].pc] = hit
    return out


def _slots(bits: int) -> list[int]:
    return [k for k in range(bits.bit_length()) if bits >> k & 1]
