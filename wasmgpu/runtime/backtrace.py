"""Where an instance was: the function at a code address, and the call stack of a trapped instance."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import numpy as np

from .params import S_DEPTH, S_PC

if TYPE_CHECKING:
    from .store import Store


def func_at(entries: list[tuple[int, int]], pc: int) -> int | None:
    """The function whose code holds `pc`, from the (entry pc, function address) pairs sorted by pc."""
    k = bisect.bisect_right(entries, (pc, 1 << 62)) - 1
    return entries[k][1] if k >= 0 else None


def backtrace(store: Store, inst: int, state: np.ndarray) -> list[str]:
    """Instance `inst`'s frames, innermost first, as `<module offset> - <function name>` lines; `state` is
    the store's state on the host."""
    pcs = [int(state[S_PC, inst])]
    depth = int(state[S_DEPTH, inst])
    if depth:
        frames = store.frames
        fr = store.backend.to_host(frames[:depth, inst] if store.backend.instance_minor else frames[inst, :depth])
        pcs += [int(w) & 0xFFFFFFFF for w in fr[::-1]]
    lines = []
    for pc in pcs:
        f = func_at(store.entries, pc)
        if f is None:
            continue
        off = int(store.code_offsets[min(pc, len(store.code_offsets) - 1)])
        lines.append(f"{off:#x} - {store.funcs[f].name}")
    return lines
