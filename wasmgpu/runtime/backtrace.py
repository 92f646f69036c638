"""Where an instance was: the function at a code address, and the call stack of a trapped instance."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import numpy as np

from ..compiler.isa import OP, OP_MASK
from ..compiler.vm_abi import S_DEPTH, S_PC, S_TRAP, TRAP_CODE

if TYPE_CHECKING:
    from .store import Store


def func_at(entries: list[tuple[int, int]], pc: int) -> int | None:
    """The function whose code holds `pc`, from the (entry pc, function address) pairs sorted by pc."""
    k = bisect.bisect_right(entries, (pc, 1 << 62)) - 1
    return entries[k][1] if k >= 0 else None


# Bytes of saved frames fetched from the device in one transfer: a batch's traps (a Ctrl-C stops every
# instance) cost one copy per chunk, not one per instance.
FETCH_BYTES = 64 << 20


def backtraces(store: Store, insts: list[int], state: np.ndarray) -> dict[int, list[str]]:
    """backtrace() of each instance in `insts`, their saved frames fetched together."""
    out: dict[int, list[str]] = {}
    depths = state[S_DEPTH, insts].astype(np.int64) if insts else np.zeros(0, dtype=np.int64)
    order = np.argsort(-depths, kind="stable").tolist()  # deepest first: a chunk's first sets its rows
    start = 0
    while start < len(order):
        deepest = max(int(depths[order[start]]), 1)
        chunk = [insts[k] for k in order[start:start + max(1, FETCH_BYTES // (8 * deepest))]]
        idx = store.xp.asarray(np.asarray(chunk))
        if store.backend.instance_minor:
            rows = store.backend.to_host(store.frames[:deepest][:, idx]).T
        else:
            rows = store.backend.to_host(store.frames[idx, :deepest])
        for k, inst in enumerate(chunk):
            out[inst] = backtrace(store, inst, state, rows[k])
        start += len(chunk)
    return out


def backtrace(store: Store, inst: int, state: np.ndarray, saved: np.ndarray | None = None) -> list[str]:
    """Instance `inst`'s frames, innermost first, as `<module offset> - <function name>` lines; `state` is
    the store's state on the host.

    The offsets are wasmtime's: the trapping instruction's for the innermost frame, and for every caller the
    call instruction's. A caller's saved pc is its return address, the first word after the call's words,
    so the word before it belongs to the call. A trap raised by a host function leaves the innermost pc at
    the return address too (the call to the import has been made), so it is looked up the same way.

    A direct call that finds the stack exhausted adds, as wasmtime does, a first frame for the callee it
    could not enter: its name alone, without an offset. `saved`: the instance's saved frames on the host,
    at least its depth of them, when already fetched."""
    pc = int(state[S_PC, inst])
    trap = int(state[S_TRAP, inst])
    pcs = [pc - 1 if trap == TRAP_CODE["HOST"] else pc]
    depth = int(state[S_DEPTH, inst])
    if depth:
        if saved is None:
            frames = store.frames
            saved = store.backend.to_host(frames[:depth, inst] if store.backend.instance_minor
                                          else frames[inst, :depth])
        pcs += [(int(w) & 0xFFFFFFFF) - 1 for w in saved[:depth][::-1]]
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
