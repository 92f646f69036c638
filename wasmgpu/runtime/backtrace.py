"""Where an instance was: the function at a code address, and the call stack of a trapped instance."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import numpy as np

from ..compiler.isa import OP, OP_MASK, TRAP_CODE
from .params import S_DEPTH, S_PC, S_TRAP

if TYPE_CHECKING:
    from .store import Store


def func_at(entries: list[tuple[int, int]], pc: int) -> int | None:
    """The function whose code holds `pc`, from the (entry pc, function address) pairs sorted by pc."""
    k = bisect.bisect_right(entries, (pc, 1 << 62)) - 1
    return entries[k][1] if k >= 0 else None


def backtrace(store: Store, inst: int, state: np.ndarray) -> list[str]:
    """Instance `inst`'s frames, innermost first, as `<module offset> - <function name>` lines; `state` is
    the store's state on the host.

    The offsets are wasmtime's: the trapping instruction's for the innermost frame, and for every caller the
    call instruction's. A caller's saved pc is its return address, the first word after the call's words,
    so the word before it belongs to the call. A trap raised by a host function leaves the innermost pc at
    the return address too (the call to the import has been made), so it is looked up the same way.

    A direct call that finds the stack exhausted adds, as wasmtime does, a first frame for the callee it
    could not enter: its name alone, without an offset."""
    pc = int(state[S_PC, inst])
    trap = int(state[S_TRAP, inst])
    pcs = [pc - 1 if trap == TRAP_CODE["HOST"] else pc]
    depth = int(state[S_DEPTH, inst])
    if depth:
        frames = store.frames
        fr = store.backend.to_host(frames[:depth, inst] if store.backend.instance_minor else frames[inst, :depth])
        pcs += [(int(w) & 0xFFFFFFFF) - 1 for w in fr[::-1]]
    lines = []
    if trap == TRAP_CODE["STACK_EXHAUSTED"] and 0 < pc < len(store.code):
        word = int(store.code[pc])
        callee = (word >> 32) & 0xFFFFFFFF
        if word & OP_MASK == OP["CALL"] and callee < len(store.funcs):
            lines.append(store.funcs[callee].name)
    for pc in pcs:
        f = func_at(store.entries, pc)
        if f is None:
            continue
        off = int(store.code_offsets[min(max(pc, 0), len(store.code_offsets) - 1)])
        lines.append(f"{off:#x} - {store.funcs[f].name}")
    return lines
