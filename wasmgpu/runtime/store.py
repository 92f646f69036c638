"""The store: every function, memory, table, global and segment of N parallel instances.

Each module instantiated into a store appends its code and its objects; the VM sees them through one
parameter block (params.py, vm.h's Param enum). The store holds the objects and the per-instance arrays
and allocates them; the concerns around them are pieces it holds:

- budget.py: the memory budget (max_memory) and the address space lazy memories reserve;
- instantiate.py: linking, constant expressions, translation and segment initialization;
- params.py: the parameter block and the tier the code runs in;
- launch.py: the launch loop, host calls between launches and the results of a call;
- backtrace.py: the call stack of a trapped instance.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..compiler.isa import slot_count
from ..compiler.vm_abi import (
    DEVICE_IMPORT_BASE,
    EXN_SLOTS,
    MAIL_READ,
    NO_REGION,
    PAGE,
    REF_NULL,
    S_FIELDS,
    S_PC,
    S_STATUS,
    S_TRAP,
    STATUS,
    TRAP_CODE,
)
from ..errors import LinkError, ResourceLimitError, WasmGpuError
from ..wasm import opcodes as wo
from ..wasm.canon import type_of
from ..wasm.types import FuncType, GlobalType, MemoryType, Module, TableType
from . import backtrace as _backtrace
from .backends import Backend, format_bytes
from .budget import (
    OS_PAGE,
    RESERVE_PER_MEMORY,
    RESERVE_PER_STORE,
    STATE_BYTES,
    UNTOUCHED_SHARE,
    MemoryBudget,
    stack_bytes,
)
from .instantiate import instantiate as _instantiate
from .launch import Launcher
from .linear_memory import MemoryArray
from .mailbox import Mailbox, write_ops
from .objects import (
    INTRINSICS,
    U64_MAX,
    CallResult,
    Extern,
    FuncExtern,
    FuncInst,
    GlobalExtern,
    HostCallback,
    Instance,
    MemInst,
    MemoryExtern,
    ReadPlan,
    TableExtern,
    TableInst,
    grow_rows,
)
from .params import TIERS, ParamBlock
from .threads import SPAWN_KEY, START_EXPORT, group_shift, spawn_import, thread_start
from .tuning import WindowTuner

# The VM keeps the byte stride between an instance's slots (8 N on the GPU) in 32 bits.
MAX_INSTANCES = 1 << 29
# A 64-bit memory's default size limit per instance (a store's memory_limit): what the batch's memory
# budget allows, up to this.
MEM64_LIMIT = 1 << 36
# A round's guest-memory reads fetched together (prefetch): a path or a write's buffers, not a bulk copy,
# whose own transfer costs less than the gather's index per byte.
FETCH_RANGE = 64 << 10
FETCH_ROUND = 256 << 20
FETCH_BATCH = 2 << 20  # bytes per gather: its index arrays on the device take 32 bytes a byte


class DeviceExtension(Protocol):
    """What a layer above gives the VM for the imports it lets the device serve (see Store.attach).

    `block` is a device array of u64 whose address goes into P_EXT; its meaning is between that layer
    and the VM (e.g. vm/wasi_fast.h). The hooks run around every launch: before_launch just before it,
    after_launch after it (also when it fails), before anything else looks at the instances. Around a
    round of host calls (the instances waiting after a launch): before_calls with every call of the round
    as (instance, host function name, arguments), before any is served; after_calls once all are.
    """

    block: Any

    def before_launch(self) -> None: ...

    def after_launch(self) -> None: ...

    def before_calls(self, calls: list[tuple[int, str, tuple[int, ...]]]) -> None: ...

    def after_calls(self) -> None: ...

    def mail_safe(self, inst: int, name: str, args: tuple[int, ...]) -> bool:
        """Whether the host may serve this call while the launch runs (runtime/mailbox.py): its before_calls
        and after_calls then touch nothing of the device's."""
        return False

    def release(self) -> None: ...

    def relayout(self, layout: str) -> Callable[[], None]:
        """Copies, in `layout`, of the buffers the VM reads as guest memory (MemoryArray), and what puts them
        in place (Store.relayout): the copies are made first, so that a failure changes nothing."""
        return lambda: None


# Device memory left free beyond a second copy of the memories when a store moves them (Store.relayout).
RELAYOUT_SPARE = 1 << 30


class Store:
    """N instances' worth of WebAssembly objects, and the loop that runs them."""

    def __init__(self, backend: Backend, n: int, *, stack_slots: int | None = None, max_depth: int | None = None,
                 fuel_slice: int = 1 << 20, memory_limit: int = MEM64_LIMIT, table_limit: int = 1 << 24,
                 tier: str | None = None, max_memory: int | None = None, threads: int = 1) -> None:
        """`max_memory`: the bytes the store's instances may take (stacks, linear memories, tables, state) on
        the backend's memory; None: a share of what is available (Backend.memory_budget). What does not fit
        raises ResourceLimitError, except memory.grow and table.grow, which return -1. `threads`: lanes per
        process (rounded up to a power of two; `n` counts lanes): see threads.py."""
        if n < 1:
            raise WasmGpuError(f"a store holds 1 to {MAX_INSTANCES - 1} instances, not {n}")
        tier = tier or os.environ.get("WASMGPU_TIER") or "auto"
        if tier not in TIERS:
            raise WasmGpuError(f"unknown tier {tier!r} (expected {', '.join(TIERS)})")
        self.backend = backend
        self.thread_shift = group_shift(threads)
        if n % (1 << self.thread_shift):
            raise WasmGpuError(f"{n} lanes are not whole processes of {1 << self.thread_shift} threads")
        self.fresh_globals: np.ndarray | None = None  # after instantiation, for threads' lanes
        self.next_tid: dict[int, int] = {}  # a process's main lane -> the tid its next thread gets
        self.fuel_given: dict[int, int] = {}  # a thread's lane -> the fuel it had at the last launch
        self._instances = n >> self.thread_shift
        limit = backend.memory_budget() if max_memory is None else max_memory
        if limit < 0:
            raise WasmGpuError(f"max_memory must be at least 0, not {max_memory}")
        self.mems: list[MemInst] = []
        # The layout of every MemoryArray the VM reads; a run may move it (relayout, tuning.LayoutTrial).
        self.memory_layout = backend.start_layout
        # The reservation sizes are read here, per store, so that a test can make them small.
        self.budget = MemoryBudget(self, backend, n, limit,
                                   reserve_per_memory=RESERVE_PER_MEMORY >> backend.reserve_shift,
                                   reserve_per_store=RESERVE_PER_STORE >> backend.reserve_shift)
        self.stack_slots, self.max_depth = self._stack_shape(n, stack_slots, max_depth)
        self.xp = backend.xp
        self.n = n
        self.fuel_slice = fuel_slice
        self.memory_limit = memory_limit  # bytes per instance per 64-bit memory
        self._round: HostRound | None = None  # host calls being served together (host_round)
        # Host calls' reads of guest memory fetched per round (prefetch): worth it where each read would be a
        # transfer from a device; on the CPU a read is a copy.
        self.fetch_ahead = self.xp is not np
        self.table_limit = table_limit  # entries per instance per table
        # Seconds spent in each part of the calls' launch loops (launch.py): gpu-run -v's breakdown.
        self.seconds: Counter[str] = Counter()
        self.launches = 0  # kernel launches of the calls
        self._init_objects()
        self._init_instances()
        # "compiled": the store's code is turned into C and built before it runs (compiler/to_c.py).
        self.params = ParamBlock(self, tier)
        self.launcher = Launcher(self)
        self.extension: DeviceExtension | None = None

    def _stack_shape(self, n: int, stack_slots: int | None, max_depth: int | None) -> tuple[int, int]:
        """The slots and frames per instance, charged to the budget with the instances' state."""
        backend = self.backend
        what = footprint_text(n, backend.memory_kind)
        # Checked before anything proportional to N is allocated (N itself may be absurd).
        self.budget.charge(n * least_instance_bytes(backend.lazy), what)
        if n >= MAX_INSTANCES:
            raise WasmGpuError(f"a store holds 1 to {MAX_INSTANCES - 1} instances, not {n}")
        if stack_slots is None:
            # 64 Ki slots (512 KiB) per instance, less where N instances would take over an eighth of the GPU's
            # free memory or of the store's budget (a worker process's share of the GPU: workers.py).
            free = None if backend.lazy else backend.device_memory()
            if free is not None:
                free = min(free, self.budget.limit)
            stack_slots = 1 << 16 if free is None else max(1 << 10, min(1 << 16, free // (64 * n)))
        if max_depth is None:
            max_depth = max(64, min(1 << 14, stack_slots // 4))
        self.budget.charged = 0  # the estimate above was a guard: the stacks' own size replaces it
        self.budget.charge(n * (STATE_BYTES + stack_bytes(backend, stack_slots, max_depth)), what)
        return stack_slots, max_depth

    def _init_objects(self) -> None:
        """No objects yet: the per-object arrays hold only their padding row 0 (it keeps pointers valid)."""
        xp, n = self.xp, self.n
        self.funcs: list[FuncInst] = []
        self.sigs: dict[FuncType, int] = {}
        self.code = np.zeros(1, dtype=np.uint64)  # word 0: never a function entry
        self.code_offsets = np.zeros(1, dtype=np.int64)
        self.entries: list[tuple[int, int]] = []  # (entry pc, func addr), sorted: pc -> function
        self.tables: list[TableInst] = []
        self.tags: list[FuncType] = []  # by address: each tag's canonical type
        # try_table regions of the store's code (translate.FuncCode.regions), and the instances' exceptions
        # (vm.h exn_throw), made when the first region or tag is.
        self.try_regions: list[tuple[int, int, tuple[tuple[int, int, int, int], ...]]] = []
        self.exn: Any = None
        self.global_types: list[GlobalType] = []
        self.globals = xp.zeros((1, n), dtype=np.uint64)
        self.mem_pages = xp.zeros((1, n), dtype=np.uint32)
        self.table_sizes = xp.zeros((1, n), dtype=np.uint32)
        self.data_bytes = bytearray(b"\0")
        self.data_info: list[tuple[int, int]] = []
        self.data_dropped = xp.zeros((1, n), dtype=np.uint8)
        self.elem_refs: list[int] = [0]
        self.elem_info: list[tuple[int, int]] = []
        self.elem_dropped = xp.zeros((1, n), dtype=np.uint8)

    def _init_instances(self) -> None:
        """Each instance's stack, frames, state and fuel."""
        backend, n = self.backend, self.n
        # On the CPU only reserved: an instance commits the pages of its stack it reaches.
        if backend.instance_minor:
            self.slots = backend.zeros((self.stack_slots, n), np.uint64)
            self.frames = backend.zeros((self.max_depth, n), np.uint64)
        else:
            self.slots = backend.zeros((n, self.stack_slots), np.uint64)
            self.frames = backend.zeros((n, self.max_depth), np.uint64)
        self.state = self.xp.zeros((S_FIELDS, n), dtype=np.uint32)
        self.fuel_left = self.xp.full(n, U64_MAX, dtype=np.uint64)

    # -- processes: lanes of threads, and spares for children -----------------------------------
    @property
    def instances(self) -> int:
        """The processes a call starts (gpu.instance_count); the processes past them are spares that
        wait for a spawn (wasi/processes.py)."""
        return self._instances

    @instances.setter
    def instances(self, n: int) -> None:
        self._instances = n
        self.params.dirty = True

    def per_lane(self, rows: list[Any]) -> list[Any]:
        """One item per instance made one per lane: each process's lanes get their instance's, and the
        spares' a copy of the first (they idle)."""
        lanes = [r for r in rows for _ in range(1 << self.thread_shift)] if self.thread_shift else rows
        return lanes + lanes[:1] * (self.n - len(lanes))

    def of_instances(self, lanes: list[Any]) -> list[Any]:
        """Of one item per lane, the instances' main lanes' (what each instance's call returned)."""
        return lanes[: self._instances << self.thread_shift: 1 << self.thread_shift]

    # -- what the pieces keep, as the store's attributes ----------------------------------------
    @property
    def max_memory(self) -> int:
        return self.budget.limit

    @property
    def tier(self) -> str:
        return self.params.tier

    @property
    def tier_used(self) -> str:
        """What the last launch ran ("interp" or "compiled"): "auto" resolves when the code is known."""
        return self.params.tier_used

    @property
    def tuner(self) -> WindowTuner | None:
        """The last call's window tuner, for reports (None where the backend has none)."""
        return self.launcher.tuner

    # -- the memory budget ----------------------------------------------------------------------
    def memory_headroom(self) -> int:
        """Bytes of max_memory not yet counted (lazy memories' growth included)."""
        return self.budget.headroom()

    # -- slot access: [slot, instance] on every backend ------------------------------------------
    def slot_view(self) -> Any:
        return self.slots if self.backend.instance_minor else self.slots.T

    # -- signatures and host objects -----------------------------------------------------------
    def sig_id(self, ft: FuncType) -> int:
        return self.sigs.setdefault(ft, len(self.sigs))

    def bad_ref(self, values: Any, t: int) -> tuple[int, str] | None:
        """The first of raw `t` values from the host that is no reference of this store, with why; None when
        all are. Guest code only makes references the store holds, and the VM trusts them (a call through
        a function reference reads the function's row unchecked), so each one the host hands in is checked."""
        if not wo.is_ref(t) or wo.heap_top(wo.ref_heap(t)) != wo.FUNC_HT:
            return None  # an externref is the host's own; a stale exnref traps by name when thrown
        vals = np.asarray(values, dtype=np.uint64).reshape(-1)
        live = vals != REF_NULL
        out = live & (vals >= len(self.funcs))
        heap = wo.ref_heap(t)
        if heap >= wo.HEAP_CANON and live.any():
            want = type_of(heap)
            fine = {v for v in np.unique(vals[live & ~out]).tolist() if self.funcs[v].type == want}
            out |= live & ~np.isin(vals, np.array(sorted(fine), dtype=np.uint64))
        if not out.any():
            return None
        i = int(np.argmax(out))
        v = int(vals[i])
        if v >= len(self.funcs):
            return i, f"function reference {v} is not a function of this store (it has {len(self.funcs)})"
        return i, f"function {v} ({self.funcs[v].name}) is not a {wo.type_name(t)}"

    def host_func(self, ftype: FuncType, callback: HostCallback, name: str = "host",
                  device_kind: int | None = None, reads: ReadPlan | None = None) -> FuncExtern:
        """A host function; with `device_kind`, one the VM serves itself when it can (see attach); with
        `reads`, one whose reads of guest memory are fetched for all its calls of a round at once."""
        addr = len(self.funcs)
        index = addr if device_kind is None else DEVICE_IMPORT_BASE + device_kind
        self.funcs.append(FuncInst(ftype, self.sig_id(ftype), name, host=callback, host_index=index, reads=reads))
        self.params.dirty = True
        return FuncExtern(self, addr, ftype)

    def close(self) -> None:
        """Let go at once of everything the store holds (memories, stacks, tables, the extension's device
        state): its objects refer to each other, so that otherwise it would all wait for the cyclic garbage
        collector. The store is not to be used again."""
        params = self.__dict__.get("params")
        if params is not None:
            params.trial_step(final=True)  # a tier trial that measured both tiers, if briefly, decides
            params.profile_end()  # what its runs entered, kept and built (best effort)
        ext = self.__dict__.get("extension")
        self.__dict__.clear()
        if ext is not None:
            ext.release()

    def attach(self, ext: DeviceExtension) -> None:
        """Give the VM the state of the device-served imports (host_func's device_kind), and call its hooks."""
        if self.extension is not None and self.extension is not ext:
            raise WasmGpuError("a store takes one set of device-served imports")
        self.extension = ext
        self.params.dirty = True

    def intrinsic(self, name: str) -> FuncExtern:
        """A `gpu` intrinsic, served on the device: instance_id() -> i32, instance_count() -> i32."""
        if name not in INTRINSICS:
            raise LinkError(f"unknown import: `gpu::{name}` is not a gpu intrinsic (known: {', '.join(INTRINSICS)})")
        ftype = FuncType((), (wo.I32_T,))
        addr = len(self.funcs)
        self.funcs.append(FuncInst(ftype, self.sig_id(ftype), f"gpu::{name}", host_index=INTRINSICS[name]))
        self.params.dirty = True
        return FuncExtern(self, addr, ftype)

    def start_lane(self, lane: int, func: int, args: tuple[int, ...], fuel_of: int) -> None:
        """Function `func` started on idle lane `lane` (a thread, a child process) with `args`, as a call
        starts it, and with what lane `fuel_of` has left of its fuel."""
        f = self.funcs[func]
        self.params.invoked.add(func)
        sv = self.slot_view()
        sv[:f.nlocals, lane] = 0
        for k, a in enumerate(args):
            sv[k, lane] = a
        self.state[:, lane] = 0
        self.state[S_PC, lane] = f.entry
        self.state[S_STATUS, lane] = STATUS["RUNNING"]
        self.fuel_left[lane] = self.fuel_left[fuel_of]

    def start_lanes(self, lanes: list[int], func: int, fuel: list[int]) -> None:
        """start_lane for many idle lanes at once, with no arguments and each lane's own fuel: a few
        transfers for all of them."""
        f = self.funcs[func]
        self.params.invoked.add(func)
        at = self.xp.asarray(np.asarray(lanes, dtype=np.int64))
        if f.nlocals:
            self.slot_view()[:f.nlocals, at] = 0
        rows = np.zeros((self.state.shape[0], len(lanes)), dtype=self.state.dtype)
        rows[S_PC], rows[S_STATUS] = f.entry, STATUS["RUNNING"]
        self.state[:, at] = self.xp.asarray(rows)
        self.fuel_left[at] = self.xp.asarray(np.asarray(fuel, dtype=np.uint64))

    def end_waits(self, lanes: Any) -> None:
        """Lanes parked by memory.atomic.wait, or waiting in a host call, stop as lanes out of fuel do (a
        timeout, Ctrl-C)."""
        if len(lanes):
            at = self.xp.asarray(lanes)
            self.state[S_STATUS, at] = STATUS["TRAPPED"]
            self.state[S_TRAP, at] = TRAP_CODE["OUT_OF_FUEL"]
            self.launcher.statuses_changed()

    def host_global(self, gtype: GlobalType, value: int) -> GlobalExtern:
        bad = self.bad_ref([value], gtype.valtype)
        if bad is not None:
            raise LinkError(f"a global's value: {bad[1]}")
        if gtype.valtype == wo.V128_T:  # two rows: the low and the high 64 bits
            rows = np.array([[value & U64_MAX] * self.n, [value >> 64 & U64_MAX] * self.n], dtype=np.uint64)
        else:
            rows = np.full(self.n, value, dtype=np.uint64)
        addr = self.add_globals([gtype], [rows])[0]
        return GlobalExtern(self, addr, gtype)

    def host_table(self, ttype: TableType) -> TableExtern:
        return TableExtern(self, self.add_table(ttype, REF_NULL), ttype)

    def host_memory(self, mtype: MemoryType) -> MemoryExtern:
        return MemoryExtern(self, self.add_memory(mtype), mtype)

    # -- allocation (instantiation adds objects, the launch loop grows them) -----------------------
    def add_globals(self, types: list[GlobalType], values: list[np.ndarray]) -> list[int]:
        """Globals of the given types and per-instance values (a v128's: two rows, low and high bits); their
        addresses. A v128 takes two addresses, both with its type."""
        start = self.globals.shape[0] - 1  # row 0 is padding: address g is row g + 1
        rows = [r for v in values for r in np.asarray(v, dtype=np.uint64).reshape(-1, self.n)]
        addrs, at = [], start
        for t in types:
            addrs.append(at)
            k = 2 if t.valtype == wo.V128_T else 1
            self.global_types.extend([t] * k)
            at += k
        if rows:
            self.budget.charge(8 * len(rows) * self.n, f"{self.n} instances' {len(types)} globals need {{need}} "
                               f"of {self.backend.memory_kind}")
            self.globals = self.xp.concatenate([self.globals, self.xp.asarray(np.stack(rows))])
            self.params.dirty = True
        return addrs

    def add_memory(self, mtype: MemoryType, written: int = 0) -> int:
        """A memory's address. `written`: bytes of each instance's memory that data segments will write
        (they are committed)."""
        charge, what = self.memory_charge(mtype, written)
        max_pages = self._max_pages(mtype)
        self.budget.charge(charge, what)
        low = mtype.limits.min
        if mtype.shared and self.thread_shift:
            # A shared memory of threads: one copy per process, reserved at its maximum, so that a grow in
            # one lane is seen by all (vm.h grow_group) without the host.
            data = MemoryArray.zeros(self.backend, self.n >> self.thread_shift, max_pages * PAGE, self.memory_layout)
            data.shift = self.thread_shift
        elif self.backend.lazy:
            try:
                data = self.budget.reserve(low, max_pages)
            except ResourceLimitError:
                self.budget.charged -= charge
                raise
        else:
            data = MemoryArray.zeros(self.backend, self.n, low * PAGE, self.memory_layout)
        self.mems.append(MemInst(mtype, data, max_pages))
        self.mem_pages = grow_rows(self.mem_pages, self.xp, 1, self.n, np.uint32, low)
        self.params.dirty = True
        return len(self.mems) - 1

    def _max_pages(self, mtype: MemoryType) -> int:
        """The pages an instance's copy of a memory may grow to, or WasmGpuError where its initial size is
        past that already."""
        # Past the limit memory.grow fails: 4 GiB per instance for 32-bit memories, memory_limit for 64-bit.
        top = self.memory_limit // PAGE if mtype.memory64 else 65536
        max_pages = min(mtype.limits.max if mtype.limits.max is not None else top, top)
        if mtype.limits.min > max_pages:
            raise WasmGpuError(f"memory of {mtype.limits.min} pages exceeds the limit of {max_pages} pages per "
                               "instance")
        return max_pages

    def memory_charge(self, mtype: MemoryType, written: int) -> tuple[int, str]:
        """What add_memory counts against the budget for a memory, and what it says of it where that does
        not fit; WasmGpuError for a memory past the per-instance limit."""
        max_pages = self._max_pages(mtype)
        n, low, kind = self.n, mtype.limits.min, self.backend.memory_kind
        if mtype.shared and self.thread_shift:
            copies = n >> self.thread_shift
            return (copies * (low if self.backend.lazy else max_pages) * PAGE,
                    f"{copies} processes' shared memory of up to {max_pages} pages need {{need}} of {kind}")
        what = f"{n} instances of a memory of {low} pages ({format_bytes(low * PAGE)} each) need "
        if not self.backend.lazy:
            return n * low * PAGE, what + f"{{need}} of {kind}"
        written = min(written, low * PAGE)
        return (n * (written + (low * PAGE - written) // UNTOUCHED_SHARE),
                what + f"an estimated {{need}} of {kind} (untouched pages count an eighth)")

    def exception_rows(self) -> tuple[Any, int]:
        """The instances' exceptions, u64 [1 + EXN_SLOTS * width][N], and width: the rows of one exception (its
        seq, tag and slot count, and the largest tag's values). Widened when a wider tag arrives, with the
        exceptions held moved to the new rows: an exnref still names its exception, and seqs go on."""
        width = 3 + max((slot_count(t.params) for t in self.tags), default=0)
        rows = 1 + EXN_SLOTS * width
        old = self.exn
        if old is None or old.shape[0] != rows:
            self.budget.charge(8 * rows * self.n, f"{self.n} instances' exceptions need {{need}} of "
                               f"{self.backend.memory_kind}")
            self.exn = self.xp.zeros((rows, self.n), dtype=np.uint64)
            if old is not None:
                was = (old.shape[0] - 1) // EXN_SLOTS
                self.exn[0] = old[0]
                for k in range(EXN_SLOTS):
                    self.exn[1 + k * width: 1 + k * width + was] = old[1 + k * was: 1 + (k + 1) * was]
        return self.exn, width

    def handler_table(self) -> np.ndarray:
        """The try_table regions for vm.h exn_throw, by start, each with the region around it (they nest: a
        region inside another starts after it and ends no later)."""
        # Of two with the same range (an empty try_table's), the one translated later is around the other.
        regions = [r for _, r in sorted(enumerate(self.try_regions), key=lambda ir: (ir[1][0], -ir[1][1], -ir[0]))]
        out = [len(regions)]
        clauses: list[int] = []
        around: list[int] = []  # the regions holding the current one, innermost last
        for i, (start, end, cls) in enumerate(regions):
            while around and regions[around[-1]][1] < end:
                around.pop()
            out += [start, end, len(clauses) // 4, len(cls), around[-1] if around else NO_REGION]
            around.append(i)
            for c in cls:
                clauses += c
        return np.array(out + clauses, dtype=np.uint32)

    def add_tag(self, ftype: FuncType) -> int:
        """A tag (exception handling) of canonical type `ftype`: its address, which identifies it."""
        self.tags.append(ftype)
        return len(self.tags) - 1

    def add_table(self, ttype: TableType, init: Any) -> int:
        """A table's address; its entries start as `init`."""
        lim = ttype.limits
        max_size = min(lim.max if lim.max is not None else 0xFFFFFFFF, self.table_limit)
        if lim.min > max_size:
            raise WasmGpuError(f"table of {lim.min} entries exceeds the limit of {max_size} per instance")
        self.budget.charge(8 * self.n * lim.min, f"{self.n} instances of a table of {lim.min} entries need "
                           f"{{need}} of {self.backend.memory_kind}")
        if isinstance(init, np.ndarray):  # per instance (an initializer that read an imported global)
            data = self.xp.asarray(np.repeat(init.astype(np.uint64)[:, None], lim.min, axis=1))
        else:
            data = self.xp.full((self.n, lim.min), init, dtype=np.uint64)
        self.tables.append(TableInst(ttype, data, max_size))
        self.table_sizes = grow_rows(self.table_sizes, self.xp, 1, self.n, np.uint32, lim.min)
        self.params.dirty = True
        return len(self.tables) - 1

    def grow_memory(self, addr: int, want_pages: int) -> None:
        """Room for want_pages: on a lazy backend, a larger reservation (the budget is kept by the allowances
        in the memory records); else a larger allocation, within the budget. What cannot be had makes
        memory.grow return -1."""
        if self._round is not None:  # the array may be replaced: what the round wrote goes first
            self._round.flush(self)
            self._round.pages.clear()
        mem = self.mems[addr]
        cap = mem.data.capacity // PAGE
        if self.backend.lazy:
            try:
                new = self.budget.reserve(want_pages, min(max(want_pages, cap * 2), mem.max_pages))
            except ResourceLimitError:
                mem.max_pages = cap
            else:
                new.copy_used(mem.data, self.mem_pages[addr + 1].astype(np.int64) * PAGE)
                self.budget.release(mem.data)
                mem.data = new
            self.params.dirty = True
            return
        new_cap = self.budget.cap(cap, min(max(want_pages, cap * 2, 1), mem.max_pages), PAGE)
        if new_cap < want_pages:
            mem.max_pages = max(cap, new_cap)  # this request and larger ones fail with -1
        if new_cap > cap:
            try:
                mem.data = mem.data.grown(new_cap * PAGE)
                self.budget.charged += self.n * (new_cap - cap) * PAGE
            except ResourceLimitError:  # out of memory: further growth fails with -1 instead
                mem.max_pages = cap
        self.params.dirty = True

    def relayout(self, layout: str) -> None:
        """Every linear memory (each instance's pages in use) and the extension's buffers moved to `layout`,
        between launches; the next launch runs the VM built for it (ParamBlock.sync). Raises
        ResourceLimitError where the copies do not fit beside the originals (nothing moved then)."""
        if layout == self.memory_layout:
            return
        free = self.backend.free_memory()
        if free is not None:
            held = sum(m.data.data.nbytes for m in self.mems)
            if 2 * held + RELAYOUT_SPARE > free:  # the spare: the WASI buffers, which move too
                raise ResourceLimitError(f"moving {format_bytes(held)} of memories needs as much again free")
        pages = self.backend.to_host(self.mem_pages[1:]) if self.mems else None
        try:  # every copy first: nothing changes where one does not fit
            moved = [m.data.relayout(layout, int(pages[k].max(initial=0)) * PAGE) for k, m in enumerate(self.mems)]
            put_extension = self.extension.relayout(layout) if self.extension is not None else None
        except self.backend.out_of_memory as e:
            raise ResourceLimitError(f"no room to move the memories: {e}") from e
        self.params.dirty = True
        for m, data in zip(self.mems, moved, strict=True):
            if self.backend.lazy:
                self.budget.release(m.data)
                self.budget.reserved += self.n * data.capacity
            m.data = data
        if put_extension is not None:
            put_extension()
        self.memory_layout = layout

    def grow_table(self, addr: int, want: int) -> None:
        """Room for `want` entries, within the budget; what cannot be had makes table.grow return -1."""
        table = self.tables[addr]
        cap = table.data.shape[1]
        new_cap = self.budget.cap(cap, min(max(want, cap * 2, 8), table.max_size), 8)
        if new_cap < want:
            table.max_size = max(cap, new_cap)
        if new_cap > cap:
            try:
                data = self.xp.full((self.n, new_cap), REF_NULL, dtype=np.uint64)
            except MemoryError:
                table.max_size = cap
            else:
                data[:, :cap] = table.data
                table.data = data
                self.budget.charged += 8 * self.n * (new_cap - cap)
        self.params.dirty = True

    # -- instantiation ---------------------------------------------------------------------------
    def instantiate(self, module: Module, imports: dict[tuple[str, str], Extern] | None = None,
                    name: str = "") -> Instance:
        imports = dict(imports or {})
        start: list[int] = []
        if any((i.module, i.name) == SPAWN_KEY for i in module.imports):
            if SPAWN_KEY not in imports:
                imports[SPAWN_KEY] = spawn_import(self, start)
            # A wasi-threads program imports the memory its threads share; the runtime makes it, as wasmtime
            # does, from the import's own type.
            for imp in module.imports:
                key = (imp.module, imp.name)
                if imp.kind == "memory" and key not in imports and imp.desc.shared:  # type: ignore[union-attr]
                    imports[key] = self.host_memory(imp.desc)  # type: ignore[arg-type]
        inst = _instantiate(self, module, imports, name)
        entry = thread_start(self, inst.exports.get(START_EXPORT))
        if entry is not None:
            start.append(entry)
        if self.thread_shift:  # what a thread's lane starts from (threads.py)
            self.fresh_globals = np.array(self.backend.to_host(self.globals))
        return inst

    # -- running ---------------------------------------------------------------------------------
    def _sync(self) -> Any:
        """The parameter block the next launch gets."""
        return self.params.sync()

    def prepare(self) -> Any:
        """Build what the next launch needs now (the parameter block; the compiled code under tier
        "compiled"), so that a caller can time the build apart from the run. Returns the compiled code."""
        self.params.sync()
        return self.params.code_handle

    def compiled_source(self) -> str:
        """The store's code as C (compiler/to_c.py), as the compiled tier builds it."""
        return self.params.compiled_source()

    def call(self, func: FuncExtern, args: list[tuple[int, ...]], fuel: int | None = None,
             on_slice: Callable[[], None] | None = None) -> list[CallResult]:
        """Call `func` in every instance, with one argument tuple per instance. `fuel`: each instance's
        (None: unlimited); `on_slice`: called after every launch (see statuses and set_fuel)."""
        return self.launcher.call(func, args, fuel, on_slice)

    # -- traps -----------------------------------------------------------------------------------
    def func_at(self, pc: int) -> int | None:
        return _backtrace.func_at(self.entries, pc)

    def backtrace(self, inst: int, state: np.ndarray) -> list[str]:
        return _backtrace.backtrace(self, inst, state)

    # -- the instances' state, between launches (on_slice) or after a call ------------------------
    def statuses(self) -> np.ndarray:
        """Each instance's status (compiler.isa STATUS: RUNNING, DONE, TRAPPED, ...), a copy on the host."""
        now = self.launcher.status_now  # read once after a launch for whoever asks before anything changes
        return np.array(now if now is not None else self.backend.to_host(self.state[S_STATUS]))

    def fuel_remaining(self) -> np.ndarray:
        """Each instance's fuel left (U64_MAX counts down from an unlimited call), a copy on the host."""
        return np.array(self.backend.to_host(self.fuel_left))

    def set_fuel(self, instances: np.ndarray, fuel: int) -> None:
        """Give the instances at these indices `fuel` left: from on_slice, 1 stops a running instance at its
        next branch or call with the trap "all fuel consumed"."""
        self.fuel_left[self.xp.asarray(np.asarray(instances, dtype=np.int64))] = fuel

    # -- reading the instances -------------------------------------------------------------------
    def global_value(self, g: GlobalExtern) -> list[int]:
        lo = [int(v) for v in self.backend.to_host(self.globals[g.addr + 1])]
        if self.global_types[g.addr].valtype != wo.V128_T:
            return lo
        return [a | int(b) << 64 for a, b in zip(lo, self.backend.to_host(self.globals[g.addr + 2]), strict=True)]

    def read_memory(self, m: MemoryExtern, inst: int, addr: int, n: int) -> np.ndarray:
        """Instance `inst`'s bytes [addr, addr + n) of memory m, on the host (the caller checks bounds)."""
        r = self._round
        if r is not None:
            if any(a < addr + n and addr < a + len(b) for a, b in r.writes.get((m.addr, inst), ())):
                r.flush(self)  # it reads what this round wrote
            for a, b in r.fetched.get(self._copy_key(m, inst), ()):
                if a <= addr and addr + n <= a + len(b):
                    return b[addr - a: addr - a + n].copy()
            if r.mail is not None:  # while the launch runs: a calling lane copies it
                got = r.mail.read(m.addr, inst, addr, n) if inst in r.lanes else None
                if got is not None:
                    return got
                r.mail_ended()  # a lane gone, or another instance (running): read after the launch
        return self.mems[m.addr].data.read(inst, addr, n)

    def write_memory(self, m: MemoryExtern, inst: int, addr: int, data: bytes | bytearray | memoryview) -> None:
        if self._round is not None and self._round.mail is not None and inst not in self._round.lanes:
            self._round.mail_ended()  # another instance's memory, written once the launch has ended
            self.mems[m.addr].data.write(inst, addr, data)
        elif self._round is not None:
            self._round.writes.setdefault((m.addr, inst), []).append((addr, bytes(data)))
            key = self._copy_key(m, inst)
            if key in self._round.fetched:  # what was fetched there is stale now
                end = addr + len(data)
                self._round.fetched[key] = [(a, b) for a, b in self._round.fetched[key]
                                            if not (a < end and addr < a + len(b))]
        else:
            self.mems[m.addr].data.write(inst, addr, data)

    def memory_pages(self, m: MemoryExtern) -> np.ndarray:
        r = self._round
        if r is None:
            return self.backend.to_host(self.mem_pages[m.addr + 1])
        if m.addr not in r.pages:
            r.pages[m.addr] = self.backend.to_host(self.mem_pages[m.addr + 1])
        return r.pages[m.addr]

    def _copy_key(self, m: MemoryExtern, inst: int) -> tuple[int, int]:
        """The round's key of the copy of memory m that instance `inst` uses (a process's threads share one)."""
        return m.addr, inst >> self.mems[m.addr].data.shift

    def prefetch(self, wants: list[tuple[int, int, int, int]]) -> None:
        """Fetch these (memory address, instance, address, length) ranges of guest memory for the round's
        calls, a few transfers per memory, so that its host calls read them without a transfer each. Only
        where memory is on a device (`fetch_ahead`); ranges past FETCH_RANGE bytes, or past FETCH_ROUND in
        all, are left to the calls' own reads."""
        r = self._round
        if r is None or not wants or not (self.fetch_ahead or r.mail is not None):
            return
        if r.writes:
            r.flush(self)
        if r.mail is not None:  # while the launch runs: each lane copies its ranges
            jobs: dict[int, list[tuple[int, int, int, bytes | int]]] = {}
            for m, inst, addr, n in wants:
                if 0 < n <= FETCH_RANGE and inst in r.lanes:
                    jobs.setdefault(inst, []).append((MAIL_READ, m, addr, n))
            for inst, got in r.mail.exchange(jobs).items():
                for (_, m, addr, _), data in zip(jobs[inst], got, strict=True):
                    r.fetched.setdefault((m, inst), []).append((addr, data))
            return
        by_mem: dict[int, list[tuple[int, int, int]]] = {}
        total = 0
        for m, inst, addr, n in wants:
            if 0 < n <= FETCH_RANGE and total + n <= FETCH_ROUND:
                by_mem.setdefault(m, []).append((inst, addr, n))
                total += n
        for m, items in by_mem.items():
            data = self.mems[m].data
            start = size = 0
            for k, (_, _, n) in enumerate([*items, (0, 0, FETCH_BATCH)]):
                if size + n > FETCH_BATCH and size:  # one gather's worth: its byte indices stay small
                    batch = items[start:k]
                    insts, addrs, lens = zip(*batch, strict=True)
                    for (inst, addr, _), got in zip(batch, data.read_many(insts, addrs, lens), strict=True):
                        r.fetched.setdefault((m, inst >> data.shift), []).append((addr, got))
                    start, size = k, 0
                size += n

    @contextmanager
    def host_round(self, mail: Mailbox | None = None, lanes: frozenset[int] = frozenset()) -> Iterator[HostRound]:
        """Host calls served together (the instances waiting after a launch): memory sizes are read once,
        and memory writes go in one transfer per memory at the end (or before a read of what they wrote).
        With `mail`, calls served while the launch runs: the lanes read and write their memory, and the
        round's writes are the caller's to release; `lanes`, the calling instances, whose memory their lanes
        move (another instance's memory is reached once the launch has ended)."""
        self._round = HostRound(mail=mail, lanes=lanes)
        try:
            yield self._round
        finally:
            r, self._round = self._round, None
            r.flush(self)


def least_instance_bytes(lazy: bool) -> int:
    """What an instance's state and smallest stack take at least, on a backend whose arrays only reserve
    (`lazy`) or not."""
    return STATE_BYTES + (OS_PAGE * 2 if lazy else 8 * ((1 << 10) + 64))


def footprint_text(n: int, memory_kind: str) -> str:
    """What a batch of n instances too large for its memory is refused with ({need}: the bytes)."""
    return f"{n} instances need at least {{need}} of {memory_kind} for their state and stacks"


@dataclass
class HostRound:
    """What host calls served together have read (memory sizes) and written (memory bytes, in order)."""

    pages: dict[int, np.ndarray] = field(default_factory=dict)
    # (memory, instance) -> (address, bytes) in the order written (only one instance's order matters)
    writes: dict[tuple[int, int], list[tuple[int, bytes]]] = field(default_factory=dict)
    # (memory, instance's copy) -> (address, bytes) fetched before the calls (prefetch), none written since
    fetched: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    mail: Mailbox | None = None  # served while the launch runs (runtime/mailbox.py)
    lanes: frozenset[int] = frozenset()  # with `mail`: the calling instances

    def mail_ended(self) -> None:
        """The rest of the round reaches memory itself, once the launch has ended (every lane made to leave)."""
        if self.mail is not None and not self.mail.ended:
            self.mail.end()

    def flush(self, store: Store) -> None:
        if self.mail is not None and self.writes:  # written by the lanes, those gone after the launch
            self.mail.exchange(write_ops(self.writes))
            self.writes = {k: ws for k, ws in self.writes.items() if k[1] in self.mail.gone}
            if self.writes:
                self.mail_ended()
        by_mem: dict[int, tuple[list[int], list[int], list[bytes]]] = {}
        for (m, inst), ws in self.writes.items():
            insts, addrs, payloads = by_mem.setdefault(m, ([], [], []))
            for addr, data in ws:
                insts.append(inst)
                addrs.append(addr)
                payloads.append(data)
        self.writes = {}
        for m, (insts, addrs, payloads) in by_mem.items():
            store.mems[m].data.write_many(insts, addrs, payloads)


__all__ = [
    "DEVICE_IMPORT_BASE", "INTRINSICS", "MAX_INSTANCES", "PAGE", "REF_NULL", "TIERS", "U64_MAX", "CallResult",
    "DeviceExtension", "Extern", "FuncExtern", "FuncInst", "GlobalExtern", "HostCallback", "Instance", "MemInst",
    "MemoryExtern", "Store", "TableExtern", "TableInst",
]
