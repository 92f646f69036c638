"""Defined types made comparable across modules.

A typed reference names a defined type by its index in its own module; two modules' indices mean the same
type when the types are structurally equal (3.0's rule for types that are not in recursion groups). Here
every function type gets a process-wide id: its structure, with its references to earlier types replaced by
their ids and a reference to itself by HEAP_SELF, looked up in one table. A canonical value type names
HEAP_CANON + id, so subtyping (opcodes.ref_matches) needs no module, and the store compares imports,
exports and call_indirect signatures of any two modules by plain equality.
"""

from __future__ import annotations

import os
import threading

from ..errors import ValidationError
from . import opcodes as O
from .types import FuncType, Module

_IDS: dict[FuncType, int] = {}
_BY_ID: dict[int, FuncType] = {}  # each id's type, its references to itself resolved
_LOCK = threading.Lock()


def _map(t: int, ids: list[int], own: int) -> int:
    if t < O.REF_BIT:
        return t
    heap = O.ref_heap(t)
    if not O.HEAP_INDEX <= heap < O.HEAP_CANON:
        return t
    idx = heap - O.HEAP_INDEX
    if idx == own:
        return O.ref_type(O.ref_nullable(t), O.HEAP_SELF)
    if idx >= len(ids):
        raise ValidationError(f"unknown type {idx}")
    return O.ref_type(O.ref_nullable(t), O.HEAP_CANON + ids[idx])


def _resolve(t: int, me: int) -> int:
    if t >= O.REF_BIT and O.ref_heap(t) == O.HEAP_SELF:
        return O.ref_type(O.ref_nullable(t), O.HEAP_CANON + me)
    return t


def canonical_types(module: Module) -> list[FuncType]:
    """The module's types with canonical references (cached on the module); ValidationError for a reference
    to a type not defined before it."""
    if module.canon is not None and module.canon_pid == os.getpid():  # ids are this process's (not unpickled)
        return module.canon
    ids: list[int] = []
    out: list[FuncType] = []
    for i, ft in enumerate(module.types):
        key = FuncType(tuple(_map(t, ids, i) for t in ft.params), tuple(_map(t, ids, i) for t in ft.results))
        with _LOCK:
            gid = _IDS.setdefault(key, len(_IDS))
        ids.append(gid)
        out.append(key if key == ft else FuncType(tuple(_resolve(t, gid) for t in key.params),
                                                   tuple(_resolve(t, gid) for t in key.results)))
        _BY_ID.setdefault(gid, out[-1])
    module.canon_ids = ids
    module.canon = out
    module.canon_pid = os.getpid()
    return out


def canonical(module: Module, t: int) -> int:
    """Value type t of `module` with a canonical heap type; ValidationError for an unknown type index."""
    if t < O.REF_BIT:
        return t
    heap = O.ref_heap(t)
    if not O.HEAP_INDEX <= heap < O.HEAP_CANON:
        return t
    canonical_types(module)  # (again, in a process the module was unpickled in)
    idx = heap - O.HEAP_INDEX
    if idx >= len(module.canon_ids):
        raise ValidationError(f"unknown type {idx}")
    return O.ref_type(O.ref_nullable(t), O.HEAP_CANON + module.canon_ids[idx])


def type_of(heap: int) -> FuncType:
    """The function type a canonical heap type (HEAP_CANON + id) names."""
    return _BY_ID[heap - O.HEAP_CANON]
