"""The objects a store holds (function, memory and table instances), the handles it gives out for them
(externs), and what a call returns.

A value is a raw 64-bit pattern: i32 and f32 in the low 32 bits, references as a function address, a host
integer (externref) or REF_NULL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..compiler.isa import slot_count
from ..compiler.vm_abi import INTRINSIC_INSTANCE_COUNT, INTRINSIC_INSTANCE_ID, NO_HOST
from ..errors import ProcExit, Trap
from ..wasm.types import FuncType, GlobalType, MemoryType, Module, TableType
from .linear_memory import MemoryArray

if TYPE_CHECKING:
    from .store import Store

U64_MAX = (1 << 64) - 1
# Functions the VM serves on the device (vm_abi INTRINSIC_*), by import name in module `gpu`.
INTRINSICS = {"instance_id": INTRINSIC_INSTANCE_ID, "instance_count": INTRINSIC_INSTANCE_COUNT}

HostCallback = Callable[[int, tuple[int, ...]], tuple[int, ...]]
# What a host call will read of guest memory, level by level (a level may depend on what the one before
# read, as an iovec array's buffers do): lists of (memory address, instance, address, length).
ReadPlan = Callable[[int, tuple[int, ...]], Iterator[list[tuple[int, int, int, int]]]]


def grow_rows(arr: Any, xp: Any, rows: int, n: int, dtype: Any, fill: int = 0) -> Any:
    """A per-object array [objects + 1, N] with `rows` more objects' rows, filled with `fill`."""
    extra = xp.full((rows, n), fill, dtype=dtype)
    return xp.concatenate([arr, extra]) if arr is not None else extra


@dataclass
class FuncInst:
    type: FuncType
    sig: int
    name: str
    host: HostCallback | None = None
    entry: int = 0
    nparams: int = 0
    nlocals: int = 0
    frame: int = 0
    host_index: int = NO_HOST
    per_lane: bool = False  # a host function told the calling lane, not its process's main lane (threads.py)
    reads: ReadPlan | None = None  # fetched for a whole round of calls before they are served (store.prefetch)
    nargs: int = field(init=False)  # the slots the parameters take (a v128 two)

    def __post_init__(self) -> None:
        self.nargs = slot_count(self.type.params)


@dataclass
class MemInst:
    type: MemoryType
    data: MemoryArray
    max_pages: int


@dataclass
class TableInst:
    type: TableType
    data: Any  # xp uint64 [N, cap]
    max_size: int


@dataclass
class Extern:
    store: Store
    addr: int


@dataclass
class FuncExtern(Extern):
    type: FuncType


@dataclass
class GlobalExtern(Extern):
    type: GlobalType


@dataclass
class TableExtern(Extern):
    type: TableType


@dataclass
class MemoryExtern(Extern):
    type: MemoryType


@dataclass
class TagExtern(Extern):
    type: FuncType  # its parameters are the exception's values


@dataclass(slots=True)  # slots: built once per instance per call, 135k times at a time
class CallResult:
    values: tuple[int, ...] | None = None
    trap: str | None = None
    backtrace: list[str] = field(default_factory=list)
    exit_code: int | None = None  # set when the instance ended through ProcExit (WASI proc_exit)

    def unwrap(self) -> tuple[int, ...]:
        """The values returned; a trap raises Trap, an exit (proc_exit) ProcExit with its code, as wasmtime-py
        raises ExitTrap."""
        if self.trap is not None:
            raise Trap(self.trap, self.backtrace)
        if self.exit_code is not None:
            raise ProcExit(self.exit_code)
        return self.values if self.values is not None else ()


@dataclass
class Instance:
    module: Module
    exports: dict[str, Extern]
