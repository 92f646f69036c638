"""The store: every function, memory, table, global and segment of N parallel instances.

Each module instantiated into a store appends its code and its objects; the VM
sees them through one parameter block (see vm.h's Param enum). A value is a raw
64-bit pattern: i32 and f32 in the low 32 bits, references as a function address,
a host integer (externref) or REF_NULL.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..compiler.isa import (
    DEVICE_IMPORT_BASE,
    INTRINSIC_INSTANCE_ID,
    NO_HOST,
    STATUS,
    TRAP_CODE,
    TRAP_MESSAGE,
)
from ..compiler.to_c import FuncInfo, compile_store
from ..compiler.translate import Addresses, translate_function
from ..errors import InstantiationTrap, LinkError, ProcExit, ResourceLimitError, Trap, Unsupported, WasmGpuError
from ..wasm import opcodes as wo
from ..wasm.types import FuncType, GlobalType, Instr, Limits, MemoryType, Module, TableType
from .backends import Backend, format_bytes
from .linear_memory import MemoryArray
from .tuning import WindowTuner, trial_gain

REF_NULL = (1 << 64) - 1
PAGE = 65536
GROW_MEMORY = 0xFFFFFFFE
GROW_TABLE = 0xFFFFFFFD
# How a store's code runs: vm.h's interpreter, or compiled to C first; "auto" compiles where the code is
# at most AUTO_COMPILE_WORDS[backend] words. On the H200 (bench/NOTES.md, sessions 6-8) compiled C benchmarks
# of 80-1217 code words ran 1.1-9x the interpreter's fuel rate and built in 0.3-2 s, but the Rust programs
# (10-12k words) took 160 s to build and ran 3-9x slower (their kernels spill). On the CPU every benchmark
# ran 2-25x faster compiled, and the host compiler (-O1) built 12k words in 11 s, once (builds are cached).
TIERS = ("auto", "interp", "compiled")
AUTO_COMPILE_WORDS = {"cuda": 4096, "cpu": 16384, "cpu-interleaved": 16384}

# Functions the VM serves on the device (vm.h INTRINSIC_*), by import name in module `gpu`.
INTRINSICS = {"instance_id": INTRINSIC_INSTANCE_ID, "instance_count": INTRINSIC_INSTANCE_ID + 1}
# The VM keeps the byte stride between an instance's slots (8 N on the GPU) in 32 bits.
MAX_INSTANCES = 1 << 29
U64_MAX = (1 << 64) - 1

# Parameter block and record layouts: must match vm.h.
(P_CODE, P_FUNCS, P_NFUNCS, P_SLOTS, P_FRAMES, P_STATE, P_N, P_STACK_SLOTS, P_MAX_DEPTH, P_GLOBALS, P_MEMS,
 P_MEM_PAGES, P_TABLES, P_TABLE_SIZES, P_DATA, P_DATA_INFO, P_DATA_DROPPED, P_ELEM, P_ELEM_INFO, P_ELEM_DROPPED,
 P_FUEL_SLICE, P_SLOT_STRIDE, P_INST_STRIDE, P_FUEL_LEFT, P_EXT, P_COUNT) = range(26)
F_ENTRY, F_NPARAMS, F_NLOCALS, F_FRAME, F_SIG, F_HOST, F_FIELDS = range(7)
S_PC, S_FP, S_DEPTH, S_STATUS, S_TRAP, S_HOST_FUNC, S_HOST_FP, S_END_NS, S_FIELDS = range(9)

# The memory budget (Store max_memory). Every instance holds its state (P_STATE, fuel, a row of each
# per-object array) whatever it runs.
STATE_BYTES = S_FIELDS * 4 + 8 + 8 + 4 + 4 + 1 + 1
# A lazy backend (the CPU) commits a page where it is first touched: a call touches at least the first page
# of an instance's slots and of its frames (instance-minor: their first rows), a data segment its pages.
OS_PAGE = 4096
# Initial linear memory that no data segment writes is mostly a toolchain's stack region (Rust reserves
# 1 MiB, touched from its top down) and heap not used yet: the budget counts an eighth of it. 20,000
# instances of examples/charcount (17 pages) then count 3.3 GB and take 1 GB, while a 4 GiB minimum in 1000
# instances is refused. A program that does touch all of a large initial memory is underestimated.
UNTOUCHED_SHARE = 8
# Address space a lazy memory reserves for its instances' growth (x86-64 gives a process 128 TiB): each
# instance grows in place up to its limit or to this divided by N (at N = 20,000, 210 MiB), past that by a
# reallocation that copies the pages in use.
RESERVE_PER_MEMORY = 1 << 42
RESERVE_PER_STORE = 1 << 45

HostCallback = Callable[[int, tuple[int, ...]], tuple[int, ...]]


class DeviceExtension(Protocol):
    """What a layer above gives the VM for the imports it lets the device serve (see Store.attach).

    `block` is a device array of u64 whose address goes into P_EXT; its meaning is between that layer
    and the VM (e.g. vm/wasi_fast.h). The hooks run around every launch: before_launch just before it,
    after_launch after it (also when it fails), before anything else looks at the instances.
    """

    block: Any

    def before_launch(self) -> None: ...

    def after_launch(self) -> None: ...


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


@dataclass(slots=True)  # slots: built once per instance per call, 135k times at a time
class CallResult:
    values: tuple[int, ...] | None = None
    trap: str | None = None
    backtrace: list[str] = field(default_factory=list)
    exit_code: int | None = None  # set when the instance ended through ProcExit (WASI proc_exit)

    def unwrap(self) -> tuple[int, ...]:
        if self.trap is not None:
            raise Trap(self.trap, self.backtrace)
        assert self.values is not None
        return self.values


@dataclass
class Instance:
    module: Module
    exports: dict[str, Extern]


def _wide(types: tuple[int, ...]) -> int:
    """Bit k set: value k may not fit in 32 bits (the compiled tier keeps the others in 32-bit variables)."""
    return sum(1 << k for k, t in enumerate(types) if t not in (wo.I32_T, wo.F32_T))


def _grow_rows(arr: Any, xp: Any, rows: int, n: int, dtype: Any, fill: int = 0) -> Any:
    extra = xp.full((rows, n), fill, dtype=dtype)
    return xp.concatenate([arr, extra]) if arr is not None else extra


class Store:
    """N instances' worth of WebAssembly objects, and the loop that runs them."""

    def __init__(self, backend: Backend, n: int, *, stack_slots: int | None = None, max_depth: int | None = None,
                 fuel_slice: int = 1 << 20, memory_limit: int = 1 << 32, table_limit: int = 1 << 24,
                 tier: str | None = None, max_memory: int | None = None) -> None:
        """`max_memory`: the bytes the store's instances may take (stacks, linear memories, tables, state) on
        the backend's memory; None: a share of what is available (Backend.memory_budget). What does not fit
        raises ResourceLimitError, except memory.grow and table.grow, which return -1."""
        if n < 1:
            raise WasmGpuError(f"a store holds 1 to {MAX_INSTANCES - 1} instances, not {n}")
        tier = tier or os.environ.get("WASMGPU_TIER") or "auto"
        if tier not in TIERS:
            raise WasmGpuError(f"unknown tier {tier!r} (expected {', '.join(TIERS)})")
        # "compiled": the store's code is turned into C and built before it runs (compiler/to_c.py).
        self.tier = tier
        self.tier_used = "interp"  # what the last launch ran: "auto" resolves when the code is known
        self._code_handle: Any = None
        self._code_key: bytes | None = None
        self.backend = backend
        self.max_memory = backend.memory_budget() if max_memory is None else max_memory
        if self.max_memory < 0:
            raise WasmGpuError(f"max_memory must be at least 0, not {max_memory}")
        self._charged = 0  # bytes counted against max_memory, besides lazy memories' growth
        self._reserved = 0  # address space the lazy memories reserve (up to RESERVE_PER_STORE)
        self.mems: list[MemInst] = []
        # Checked before anything proportional to N is allocated (N itself may be absurd).
        self._charge(n * (STATE_BYTES + (OS_PAGE * 2 if backend.lazy else 8 * ((1 << 10) + 64))),
                     f"{n} instances need at least {{need}} of {backend.memory_kind} for their state and stacks")
        if n >= MAX_INSTANCES:
            raise WasmGpuError(f"a store holds 1 to {MAX_INSTANCES - 1} instances, not {n}")
        if stack_slots is None:
            # 64 Ki slots (512 KiB) per instance, less where N instances would take over an eighth of the GPU.
            free = backend.device_memory()
            stack_slots = 1 << 16 if free is None else max(1 << 10, min(1 << 16, free // (64 * n)))
        if max_depth is None:
            max_depth = max(64, min(1 << 14, stack_slots // 4))
        self._charged = 0
        self._charge(n * (STATE_BYTES + self._stack_bytes(backend, stack_slots, max_depth)),
                     f"{n} instances need at least {{need}} of {backend.memory_kind} for their state and stacks")
        self.xp = backend.xp
        self.n = n
        self.stack_slots = stack_slots
        self.max_depth = max_depth
        self.fuel_slice = fuel_slice
        self.tuner: WindowTuner | None = None  # the last call's, for reports
        self.memory_limit = memory_limit  # bytes per instance per memory
        self.table_limit = table_limit  # entries per instance per table
        xp = self.xp
        self.funcs: list[FuncInst] = []
        self.sigs: dict[FuncType, int] = {}
        self.code = np.zeros(1, dtype=np.uint64)  # word 0: never a function entry
        self.code_offsets = np.zeros(1, dtype=np.int64)
        self.entries: list[tuple[int, int]] = []  # (entry pc, func addr), sorted: pc -> function
        self.tables: list[TableInst] = []
        self.global_types: list[GlobalType] = []
        self.globals = xp.zeros((1, n), dtype=np.uint64)  # row 0 unused: keeps pointers valid
        self.mem_pages = xp.zeros((1, n), dtype=np.uint32)
        self.table_sizes = xp.zeros((1, n), dtype=np.uint32)
        self.data_bytes = bytearray(b"\0")
        self.data_info: list[tuple[int, int]] = []
        self.data_dropped = xp.zeros((1, n), dtype=np.uint8)
        self.elem_refs: list[int] = [0]
        self.elem_info: list[tuple[int, int]] = []
        self.elem_dropped = xp.zeros((1, n), dtype=np.uint8)
        # On the CPU only reserved: an instance commits the pages of its stack it reaches.
        if backend.instance_minor:
            self.slots = backend.zeros((stack_slots, n), np.uint64)
            self.frames = backend.zeros((max_depth, n), np.uint64)
        else:
            self.slots = backend.zeros((n, stack_slots), np.uint64)
            self.frames = backend.zeros((n, max_depth), np.uint64)
        self.state = xp.zeros((S_FIELDS, n), dtype=np.uint32)
        self.fuel_left = xp.full(n, U64_MAX, dtype=np.uint64)
        self._host_traps: dict[int, str] = {}  # instance -> message of a trap raised by a host function
        self._exit_codes: dict[int, int] = {}  # instance -> code given to ProcExit
        self._dirty = True
        self._params: Any = None
        self._keep_alive: dict[str, Any] = {}
        self.extension: DeviceExtension | None = None

    # -- the memory budget ----------------------------------------------------------------------
    @staticmethod
    def _stack_bytes(backend: Backend, stack_slots: int, max_depth: int) -> int:
        """Per instance: the stack a lazy backend commits at least, or the whole of it."""
        if not backend.lazy:
            return 8 * (stack_slots + max_depth)
        if backend.instance_minor:
            return 8 * (min(stack_slots, 64) + min(max_depth, 16))
        return min(8 * stack_slots, OS_PAGE) + min(8 * max_depth, OS_PAGE)

    def memory_headroom(self) -> int:
        """Bytes of max_memory not yet counted (lazy memories' growth included)."""
        return self.max_memory - self._charged - self._lazy_growth()

    def _charge(self, need: int, what: str) -> None:
        """Count `need` bytes against max_memory, or raise ResourceLimitError: `what` says what asked, with
        `{need}` where the amount goes."""
        avail = self.memory_headroom()
        if need > avail:
            raise ResourceLimitError(what.format(need=format_bytes(need)) +
                                     f"; {format_bytes(max(avail, 0))} available (--max-memory)")
        self._charged += need

    def _lazy_growth(self) -> int:
        """Bytes lazy memories' instances have grown by (counted in full: a program grows memory to use it)."""
        if not self.backend.lazy:
            return 0
        total = 0
        for i, m in enumerate(self.mems):
            total += int(self.mem_pages[i + 1].sum(dtype=np.uint64)) - self.n * m.type.limits.min
        return total * PAGE

    def _memory_allowances(self, mems: np.ndarray) -> None:
        """Lazy memories grow in place without asking the host, up to the max pages in their record: set it,
        per launch, to the largest size every instance may grow to with all of them together within the
        budget (the remaining headroom split evenly between the memories)."""
        if not self.backend.lazy or not self.mems:
            return
        share = max(self.memory_headroom(), 0) // len(self.mems) // PAGE
        for i, m in enumerate(self.mems):
            pages = self.mem_pages[i + 1]
            limit = m.max_pages
            if self.n * limit - int(pages.sum(dtype=np.uint64)) <= share:
                mems[i, 2] = limit
                continue
            lo, hi = 0, limit  # the largest size s with sum(max(0, s - pages)) <= share
            p = pages.astype(np.int64)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if int(np.maximum(mid - p, 0).sum()) <= share:
                    lo = mid
                else:
                    hi = mid - 1
            mems[i, 2] = lo

    # -- slot access: [slot, instance] on every backend ------------------------------------------
    def slot_view(self) -> Any:
        return self.slots if self.backend.instance_minor else self.slots.T

    # -- signatures and host objects -----------------------------------------------------------
    def sig_id(self, ft: FuncType) -> int:
        return self.sigs.setdefault(ft, len(self.sigs))

    def host_func(self, ftype: FuncType, callback: HostCallback, name: str = "host",
                  device_kind: int | None = None) -> FuncExtern:
        """A host function; with `device_kind`, one the VM serves itself when it can (see attach)."""
        addr = len(self.funcs)
        index = addr if device_kind is None else DEVICE_IMPORT_BASE + device_kind
        self.funcs.append(FuncInst(ftype, self.sig_id(ftype), name, host=callback, host_index=index))
        self._dirty = True
        return FuncExtern(self, addr, ftype)

    def attach(self, ext: DeviceExtension) -> None:
        """Give the VM the state of the device-served imports (host_func's device_kind), and call its hooks."""
        if self.extension is not None and self.extension is not ext:
            raise WasmGpuError("a store takes one set of device-served imports")
        self.extension = ext
        self._dirty = True

    def intrinsic(self, name: str) -> FuncExtern:
        """A `gpu` intrinsic, served on the device: instance_id() -> i32, instance_count() -> i32."""
        if name not in INTRINSICS:
            raise LinkError(f"unknown import: `gpu::{name}` is not a gpu intrinsic (known: {', '.join(INTRINSICS)})")
        ftype = FuncType((), (wo.I32_T,))
        addr = len(self.funcs)
        self.funcs.append(FuncInst(ftype, self.sig_id(ftype), f"gpu::{name}", host_index=INTRINSICS[name]))
        self._dirty = True
        return FuncExtern(self, addr, ftype)

    def host_global(self, gtype: GlobalType, value: int) -> GlobalExtern:
        addr = self._add_globals([gtype], [np.full(self.n, value, dtype=np.uint64)])[0]
        return GlobalExtern(self, addr, gtype)

    def host_table(self, ttype: TableType) -> TableExtern:
        return TableExtern(self, self._add_table(ttype, REF_NULL), ttype)

    def host_memory(self, mtype: MemoryType) -> MemoryExtern:
        return MemoryExtern(self, self._add_memory(mtype), mtype)

    # -- allocation ----------------------------------------------------------------------------
    def _add_globals(self, types: list[GlobalType], values: list[np.ndarray]) -> list[int]:
        start = self.globals.shape[0] - 1  # row 0 is padding: address g is row g + 1
        if types:
            self._charge(8 * len(types) * self.n, f"{self.n} instances' {len(types)} globals need {{need}} of "
                         f"{self.backend.memory_kind}")
            rows = self.xp.asarray(np.stack(values).astype(np.uint64))
            self.globals = self.xp.concatenate([self.globals, rows])
            self.global_types.extend(types)
            self._dirty = True
        return list(range(start, start + len(types)))

    def _add_memory(self, mtype: MemoryType, written: int = 0) -> int:
        """`written`: bytes of each instance's memory that data segments will write (they are committed)."""
        if mtype.shared:
            raise Unsupported("shared memories (threads) are not supported yet")
        max_pages = min(mtype.limits.max if mtype.limits.max is not None else 65536, self.memory_limit // PAGE)
        low = mtype.limits.min
        if low > max_pages:
            raise WasmGpuError(f"memory of {low} pages exceeds the limit of {max_pages} pages per instance")
        n, kind = self.n, self.backend.memory_kind
        what = f"{n} instances of a memory of {low} pages ({format_bytes(low * PAGE)} each) need "
        if self.backend.lazy:
            written = min(written, low * PAGE)
            charge = n * (written + (low * PAGE - written) // UNTOUCHED_SHARE)
            self._charge(charge, what + f"an estimated {{need}} of {kind} (untouched pages count an eighth)")
            try:
                data = self._reserve(low, max_pages)
            except ResourceLimitError:
                self._charged -= charge
                raise
        else:
            self._charge(n * low * PAGE, what + f"{{need}} of {kind}")
            data = MemoryArray.zeros(self.backend, n, low * PAGE)
        self.mems.append(MemInst(mtype, data, max_pages))
        self.mem_pages = _grow_rows(self.mem_pages, self.xp, 1, self.n, np.uint32, mtype.limits.min)
        self._dirty = True
        return len(self.mems) - 1

    def _add_table(self, ttype: TableType, init: int) -> int:
        lim = ttype.limits
        max_size = min(lim.max if lim.max is not None else 0xFFFFFFFF, self.table_limit)
        if lim.min > max_size:
            raise WasmGpuError(f"table of {lim.min} entries exceeds the limit of {max_size} per instance")
        self._charge(8 * self.n * lim.min, f"{self.n} instances of a table of {lim.min} entries need {{need}} of "
                     f"{self.backend.memory_kind}")
        data = self.xp.full((self.n, lim.min), init, dtype=np.uint64)
        self.tables.append(TableInst(ttype, data, max_size))
        self.table_sizes = _grow_rows(self.table_sizes, self.xp, 1, self.n, np.uint32, lim.min)
        self._dirty = True
        return len(self.tables) - 1

    def _budget_cap(self, cap: int, new_cap: int, unit: int) -> int:
        """new_cap, or less where N instances' growth from cap would overrun the budget."""
        fits = cap + max(self.memory_headroom(), 0) // (self.n * unit)
        return min(new_cap, fits)

    def _reserve(self, low: int, high: int) -> MemoryArray:
        """A lazy memory of `low` to `high` pages per instance: as much of `high` as the store's address space
        allows, at least `low`."""
        n = self.n
        span = min(high, max(low, RESERVE_PER_MEMORY // (n * PAGE), 1))
        if self._reserved + n * span * PAGE > RESERVE_PER_STORE:
            span = low
        try:
            data = MemoryArray.zeros(self.backend, n, span * PAGE)
        except ResourceLimitError:  # the process's address space: reserve no more than asked
            if span == low:
                raise
            span = low
            data = MemoryArray.zeros(self.backend, n, span * PAGE)
        self._reserved += n * span * PAGE
        return data

    def _grow_memory(self, addr: int, want_pages: int) -> None:
        """Room for want_pages: on a lazy backend, a larger reservation (the budget is kept by the allowances
        in the memory records); else a larger allocation, within the budget. What cannot be had makes
        memory.grow return -1."""
        mem = self.mems[addr]
        cap = mem.data.capacity // PAGE
        if self.backend.lazy:
            try:
                new = self._reserve(want_pages, min(max(want_pages, cap * 2), mem.max_pages))
            except ResourceLimitError:
                mem.max_pages = cap
            else:
                new.copy_used(mem.data, self.mem_pages[addr + 1].astype(np.int64) * PAGE)
                self._reserved -= self.n * mem.data.capacity
                mem.data = new
            self._dirty = True
            return
        new_cap = self._budget_cap(cap, min(max(want_pages, cap * 2, 1), mem.max_pages), PAGE)
        if new_cap < want_pages:
            mem.max_pages = max(cap, new_cap)  # this request and larger ones fail with -1
        if new_cap > cap:
            try:
                mem.data = mem.data.grown(new_cap * PAGE)
                self._charged += self.n * (new_cap - cap) * PAGE
            except ResourceLimitError:  # out of memory: further growth fails with -1 instead
                mem.max_pages = cap
        self._dirty = True

    def _grow_table(self, addr: int, want: int) -> None:
        table = self.tables[addr]
        cap = table.data.shape[1]
        new_cap = self._budget_cap(cap, min(max(want, cap * 2, 8), table.max_size), 8)
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
                self._charged += 8 * self.n * (new_cap - cap)
        self._dirty = True

    # -- instantiation ---------------------------------------------------------------------------
    def instantiate(self, module: Module, imports: dict[tuple[str, str], Extern] | None = None,
                    name: str = "") -> Instance:
        imports = imports or {}
        funcs: list[int] = []
        tables: list[int] = []
        mems: list[int] = []
        globals_: list[int] = []
        for imp in module.imports:
            ext = imports.get((imp.module, imp.name))
            if ext is None:
                raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been defined")
            self._check_import(imp.module, imp.name, imp.kind, imp.desc, ext, module)
            {"func": funcs, "table": tables, "memory": mems, "global": globals_}[imp.kind].append(ext.addr)

        # Defined functions get addresses first: constant expressions may take their references.
        first_func = len(self.funcs)
        for i, typeidx in enumerate(module.funcs):
            ft = module.types[typeidx]
            fname = module.func_name(len(funcs) + i)
            self.funcs.append(FuncInst(ft, self.sig_id(ft), f"{name}!{fname}" if name else fname))
        funcs += range(first_func, first_func + len(module.funcs))
        tables += [self._add_table(t, REF_NULL) for t in module.tables]
        first_mem = len(mems)
        for j, m in enumerate(module.mems):
            written = sum(-(-len(d.init) // OS_PAGE) + 1 for d in module.datas
                          if d.mode == "active" and d.memory == first_mem + j) * OS_PAGE
            mems.append(self._add_memory(m, written))
        values = [self._eval_const(g.init, funcs, globals_) for g in module.globals]
        globals_ += self._add_globals([g.type for g in module.globals], values)

        datas = []
        for d in module.datas:
            self.data_info.append((len(self.data_bytes), len(d.init)))
            self.data_bytes += d.init
            datas.append(len(self.data_info) - 1)
        elems = []
        for e in module.elems:
            refs = [int(self._eval_const(expr, funcs, globals_)[0]) for expr in e.init]
            self.elem_info.append((len(self.elem_refs), len(refs)))
            self.elem_refs += refs
            elems.append(len(self.elem_info) - 1)
        self._charge(self.n * (len(datas) + len(elems)), f"{self.n} instances' segment flags need {{need}} of "
                     f"{self.backend.memory_kind}")
        self.data_dropped = _grow_rows(self.data_dropped, self.xp, len(datas), self.n, np.uint8)
        self.elem_dropped = _grow_rows(self.elem_dropped, self.xp, len(elems), self.n, np.uint8)

        addr = Addresses(funcs, globals_, mems, tables, datas, elems, [self.sig_id(t) for t in module.types])
        self._translate(module, addr, first_func)

        exports: dict[str, Extern] = {}
        for ex in module.exports:
            if ex.kind == "func":
                exports[ex.name] = FuncExtern(self, funcs[ex.index], self.funcs[funcs[ex.index]].type)
            elif ex.kind == "global":
                exports[ex.name] = GlobalExtern(self, globals_[ex.index], self.global_types[globals_[ex.index]])
            elif ex.kind == "table":
                exports[ex.name] = TableExtern(self, tables[ex.index], self.tables[tables[ex.index]].type)
            else:
                exports[ex.name] = MemoryExtern(self, mems[ex.index], self.mems[mems[ex.index]].type)
        self._dirty = True
        self._init_segments(module, addr)
        if module.start is not None:
            results = self.call(FuncExtern(self, funcs[module.start], module.func_type(module.start)),
                                [()] * self.n)
            for r in results:
                if r.trap is not None:
                    raise InstantiationTrap(r.trap, r.backtrace)
        return Instance(module, exports)

    def _check_import(self, mod: str, name: str, kind: str, desc: Any, ext: Extern, module: Module) -> None:
        where = f"`{mod}::{name}`"
        expected = {"func": FuncExtern, "table": TableExtern, "memory": MemoryExtern, "global": GlobalExtern}[kind]
        if not isinstance(ext, expected) or ext.store is not self:
            raise LinkError(f"incompatible import type for {where}: expected a {kind}")
        if kind == "func":
            if ext.type != module.types[desc]:
                raise LinkError(f"incompatible import type for {where}: function types differ")
        elif kind == "global":
            if ext.type != desc:
                raise LinkError(f"incompatible import type for {where}: global types differ")
        elif kind == "table":
            t = self.tables[ext.addr]
            if t.type.elem != desc.elem:
                raise LinkError(f"incompatible import type for {where}: table element types differ")
            size = int(self.backend.to_host(self.table_sizes[ext.addr + 1])[0])
            self._check_limits(where, size, t.type.limits.max, desc.limits)
        else:
            m = self.mems[ext.addr]
            pages = int(self.backend.to_host(self.mem_pages[ext.addr + 1])[0])
            self._check_limits(where, pages, m.type.limits.max, desc.limits)

    @staticmethod
    def _check_limits(where: str, size: int, max_: int | None, want: Limits) -> None:
        if size < want.min or (want.max is not None and (max_ is None or max_ > want.max)):
            raise LinkError(f"incompatible import type for {where}: limits do not match")

    def _eval_const(self, expr: list[Instr], funcs: list[int], globals_: list[int]) -> np.ndarray:
        """A constant expression, per instance (imported globals may differ between instances)."""
        op, imm, _ = expr[0]
        name = wo.OPS[op].name
        if name == "i32.const":
            return np.full(self.n, imm & 0xFFFFFFFF, dtype=np.uint64)  # type: ignore[operator]
        if name in ("i64.const", "f32.const", "f64.const"):
            return np.full(self.n, imm & U64_MAX, dtype=np.uint64)  # type: ignore[operator]
        if name == "ref.null":
            return np.full(self.n, REF_NULL, dtype=np.uint64)
        if name == "ref.func":
            return np.full(self.n, funcs[imm], dtype=np.uint64)  # type: ignore[index]
        if name == "global.get":
            return self.backend.to_host(self.globals[globals_[imm] + 1]).astype(np.uint64)  # type: ignore[index]
        raise Unsupported(f"constant expression with {name}")

    def _translate(self, module: Module, addr: Addresses, first_func: int) -> None:
        words: list[int] = []
        offsets: list[int] = []
        base = len(self.code)
        # Every function first, then the store: a function that fails (an unsupported instruction) leaves
        # the store as it was. Half a module's code would break the compiled tier's view of all the code.
        codes = []
        try:
            for i in range(len(module.funcs)):
                codes.append(translate_function(module, i, addr, base + len(words)))
                words += codes[-1].words
        except WasmGpuError:
            del self.funcs[first_func:]
            raise
        entry = base
        for i, fc in enumerate(codes):
            f = self.funcs[first_func + i]
            f.entry, f.nparams, f.nlocals, f.frame = entry, fc.nparams, fc.nlocals, fc.frame_size
            self.entries.append((f.entry, first_func + i))
            entry += len(fc.words)
            offsets += fc.offsets
        self.code = np.concatenate([self.code, np.array(words, dtype=np.uint64)])
        self.code_offsets = np.concatenate([self.code_offsets, np.array(offsets, dtype=np.int64)])
        self.entries.sort()

    def _init_segments(self, module: Module, addr: Addresses) -> None:
        """Active element then data segments, in order; a failing one traps, earlier ones stay."""
        host = self.backend.to_host
        for i, e in enumerate(module.elems):
            seg = addr.elems[i]
            if e.mode == "active":
                offsets = self._eval_const(e.offset, addr.funcs, addr.globals)  # type: ignore[arg-type]
                t = addr.tables[e.table]
                sizes = host(self.table_sizes[t + 1]).astype(np.int64)
                n = len(e.init)
                if np.any(offsets.astype(np.int64) + n > sizes):
                    raise InstantiationTrap("out of bounds table access")
                start, _ = self.elem_info[seg]
                refs = self.xp.asarray(np.array(self.elem_refs[start:start + n], dtype=np.uint64))
                self._write_rows(self.tables[t].data, offsets, refs)
            if e.mode != "passive":
                self.elem_dropped[seg + 1] = 1
        for i, d in enumerate(module.datas):
            seg = addr.datas[i]
            if d.mode == "active":
                offsets = self._eval_const(d.offset, addr.funcs, addr.globals)  # type: ignore[arg-type]
                m = addr.mems[d.memory]
                sizes = host(self.mem_pages[m + 1]).astype(np.int64) * PAGE
                if np.any(offsets.astype(np.int64) + len(d.init) > sizes):
                    raise InstantiationTrap("out of bounds memory access")
                mem = self.mems[m].data
                if np.all(offsets == offsets[0]):
                    mem.write_all(int(offsets[0]), d.init)
                else:
                    for i, o in enumerate(offsets.tolist()):
                        mem.write(i, o, d.init)
                self.data_dropped[seg + 1] = 1

    def _write_rows(self, data: Any, offsets: np.ndarray, values: Any) -> None:
        n = len(values)
        if n == 0:
            return
        if np.all(offsets == offsets[0]):
            o = int(offsets[0])
            data[:, o:o + n] = values
        else:
            for i, o in enumerate(offsets.tolist()):
                data[i, o:o + n] = values

    # -- the parameter block ---------------------------------------------------------------------
    def _sync(self) -> Any:
        if not self._dirty and self._params is not None:
            return self._params
        xp = self.xp
        ptr = self.backend.ptr
        ftab = np.zeros((max(len(self.funcs), 1), F_FIELDS), dtype=np.uint32)
        for i, f in enumerate(self.funcs):
            ftab[i] = (f.entry, f.nparams, f.nlocals, f.frame, f.sig, f.host_index)
        mems = np.zeros((max(len(self.mems), 1), 3), dtype=np.uint64)
        for i, m in enumerate(self.mems):
            mems[i] = (ptr(m.data.data), m.data.capacity, m.max_pages)
        tables = np.zeros((max(len(self.tables), 1), 3), dtype=np.uint64)
        for i, t in enumerate(self.tables):
            tables[i] = (ptr(t.data), t.data.shape[1], t.max_size)
        data_info = np.array(self.data_info or [(0, 0)], dtype=np.uint64)
        elem_info = np.array(self.elem_info or [(0, 0)], dtype=np.uint64)
        keep = {
            "code": xp.asarray(self.code), "funcs": xp.asarray(ftab), "mems": xp.asarray(mems),
            "tables": xp.asarray(tables), "data": xp.asarray(np.frombuffer(bytes(self.data_bytes), np.uint8)),
            "data_info": xp.asarray(data_info), "elem": xp.asarray(np.array(self.elem_refs, dtype=np.uint64)),
            "elem_info": xp.asarray(elem_info),
        }
        self._keep_alive = keep  # keep the arrays alive while the VM holds their pointers
        n = self.n
        p = np.zeros(P_COUNT, dtype=np.uint64)
        p[P_CODE] = ptr(keep["code"])
        p[P_FUNCS] = ptr(keep["funcs"])
        p[P_NFUNCS] = len(self.funcs)
        p[P_SLOTS] = ptr(self.slots)
        p[P_FRAMES] = ptr(self.frames)
        p[P_STATE] = ptr(self.state)
        p[P_N] = n
        p[P_STACK_SLOTS] = self.stack_slots
        p[P_MAX_DEPTH] = self.max_depth
        # Row 0 of each per-object array is padding: the VM indexes from row 1.
        p[P_GLOBALS] = ptr(self.globals) + 8 * n
        p[P_MEMS] = ptr(keep["mems"])
        p[P_MEM_PAGES] = ptr(self.mem_pages) + 4 * n
        p[P_TABLES] = ptr(keep["tables"])
        p[P_TABLE_SIZES] = ptr(self.table_sizes) + 4 * n
        p[P_DATA] = ptr(keep["data"])
        p[P_DATA_INFO] = ptr(keep["data_info"])
        p[P_DATA_DROPPED] = ptr(self.data_dropped) + n
        p[P_ELEM] = ptr(keep["elem"])
        p[P_ELEM_INFO] = ptr(keep["elem_info"])
        p[P_ELEM_DROPPED] = ptr(self.elem_dropped) + n
        p[P_FUEL_SLICE] = self.fuel_slice
        p[P_SLOT_STRIDE] = n if self.backend.instance_minor else 1
        p[P_INST_STRIDE] = 1 if self.backend.instance_minor else self.stack_slots
        p[P_FUEL_LEFT] = ptr(self.fuel_left)
        p[P_EXT] = ptr(self.extension.block) if self.extension is not None else 0
        self._params = xp.asarray(p)
        self._dirty = False
        compiled = self.tier == "compiled" or (
            self.tier == "auto" and len(self.code) <= AUTO_COMPILE_WORDS.get(self.backend.name, 0))
        self.tier_used = "compiled" if compiled else "interp"
        if compiled:
            self._compile(ftab)
        else:
            self._code_handle = None
        return self._params

    def _compile(self, ftab: np.ndarray) -> None:
        # What compiled_source reads: the code (it only grows), the function table, the number of memories.
        key = len(self.code).to_bytes(8, "little") + len(self.mems).to_bytes(8, "little") + ftab.tobytes()
        if key == self._code_key and self._code_handle is not None:
            return
        self._code_handle = self.backend.compile(self.compiled_source())
        self._code_key = key

    def compiled_source(self) -> str:
        """The store's code as C (compiler/to_c.py), as the compiled tier builds it."""
        infos = [FuncInfo(f.entry, f.nparams, f.nlocals, f.frame, f.host_index, len(f.type.params),
                          len(f.type.results), _wide(f.type.params), _wide(f.type.results)) for f in self.funcs]
        sigs = {sid: (len(t.params), len(t.results)) for t, sid in self.sigs.items()}
        return compile_store(self.code, infos, sigs, len(self.mems))

    # -- running ---------------------------------------------------------------------------------
    def prepare(self) -> Any:
        """Build what the next launch needs now (the parameter block; the compiled code under tier
        "compiled"), so that a caller can time the build apart from the run. Returns the compiled code."""
        self._sync()
        return self._code_handle

    def call(self, func: FuncExtern, args: list[tuple[int, ...]], fuel: int | None = None,
             on_slice: Callable[[], None] | None = None) -> list[CallResult]:
        """Call `func` in every instance, with one argument tuple per instance."""
        if len(args) != self.n:
            raise WasmGpuError(f"expected {self.n} argument tuples, got {len(args)}")
        f = self.funcs[func.addr]
        nres = len(f.type.results)
        if wo.V128_T in f.type.params or wo.V128_T in f.type.results:
            raise Unsupported("v128 values (SIMD) are not supported yet")
        if f.host is not None:
            return [self._call_host(f, i, tuple(a)) for i, a in enumerate(args)]
        if f.host_index != NO_HOST:  # an intrinsic called directly
            return [CallResult(values=(i if f.host_index == INTRINSICS["instance_id"] else self.n,))
                    for i in range(self.n)]
        if f.frame > self.stack_slots:
            return [CallResult(trap=TRAP_MESSAGE[TRAP_CODE["STACK_EXHAUSTED"]])] * self.n
        sv = self.slot_view()
        if f.nparams:
            sv[: f.nparams, :] = self.xp.asarray(np.array(args, dtype=np.uint64).reshape(self.n, f.nparams).T)
        sv[f.nparams: f.nlocals, :] = 0
        self.state[S_PC] = f.entry
        self.state[S_FP] = 0
        self.state[S_DEPTH] = 0
        self.state[S_STATUS] = STATUS["RUNNING"]
        self.state[S_TRAP] = 0
        self.fuel_left[:] = U64_MAX if fuel is None else fuel
        self._run(on_slice)
        return self._results(nres)

    @staticmethod
    def _call_host(f: FuncInst, i: int, args: tuple[int, ...]) -> CallResult:
        try:
            return CallResult(values=tuple(f.host(i, args)))  # type: ignore[misc]
        except ProcExit as e:
            return CallResult(exit_code=e.code)
        except Trap as t:
            return CallResult(trap=t.kind, backtrace=t.backtrace)

    def _run(self, on_slice: Callable[[], None] | None) -> None:
        tuner = self.tuner = self.backend.tuner(self.fuel_slice, self.n)
        try:
            self._launch_until_done(on_slice, tuner)
        finally:
            if tuner is not None and self._params is not None:
                self._params[P_FUEL_SLICE] = self.fuel_slice  # the tuner's slices were for its launches only

    def _launch_until_done(self, on_slice: Callable[[], None] | None, tuner: WindowTuner | None) -> None:
        running, hostcall = STATUS["RUNNING"], STATUS["HOSTCALL"]
        ext = self.extension
        while True:
            params = self._sync()
            self._memory_allowances(self._keep_alive["mems"])
            if ext is not None:
                ext.before_launch()
            try:
                if tuner is None:
                    self.backend.run(params, self.n, code=self._code_handle)
                else:
                    self._run_tuned(params, tuner)
            finally:
                if ext is not None:
                    ext.after_launch()
            status = self.backend.to_host(self.state[S_STATUS])
            if on_slice is not None:
                on_slice()
            waiting = np.nonzero(status == hostcall)[0]
            if len(waiting):
                self._serve_host_calls(waiting)
            elif not np.any(status == running):
                return

    def _run_tuned(self, params: Any, tuner: WindowTuner) -> None:
        """One launch under the window and the fuel slice the tuner asks for; a trial launch runs some blocks
        under another window, and the tuner learns how their fuel rate compared."""
        near, trial, fuel = tuner.next()
        params[P_FUEL_SLICE] = fuel
        if trial is None:
            self.backend.run(params, self.n, near, code=self._code_handle)
            return
        before = self.fuel_left.copy()
        starts = self.backend.run(params, self.n, near, (trial, tuner.every), self._code_handle)
        to_host = self.backend.to_host
        spent = to_host(before - self.fuel_left)
        tuner.record(trial_gain(spent, to_host(self.state[S_END_NS]), starts, self.backend.block, tuner.every))

    def _serve_host_calls(self, waiting: np.ndarray) -> None:
        state = self.backend.to_host(self.state[:, waiting])
        fidx = state[S_HOST_FUNC].astype(np.int64)
        # Growth requests: one reallocation per memory or table, for the largest request.
        for kind, grow in ((GROW_MEMORY, self._grow_memory), (GROW_TABLE, self._grow_table)):
            sel = fidx == kind
            for obj in np.unique(state[S_HOST_FP][sel]).tolist():
                want = int(state[S_TRAP][sel & (state[S_HOST_FP] == obj)].max())
                have = self.mems[obj].data.capacity // PAGE if kind == GROW_MEMORY else self.tables[obj].data.shape[1]
                if have < want:
                    grow(obj, want)
        resumed = [int(i) for i in waiting[(fidx == GROW_MEMORY) | (fidx == GROW_TABLE)]]
        calls = np.nonzero((fidx != GROW_MEMORY) & (fidx != GROW_TABLE))[0]
        if len(calls):
            resumed += self._serve_imports(waiting[calls], state[:, calls])
        if resumed:
            self.state[S_STATUS, self.xp.asarray(np.array(resumed, dtype=np.int64))] = STATUS["RUNNING"]

    def _serve_imports(self, insts: np.ndarray, state: np.ndarray) -> list[int]:
        """Run the host functions the instances wait on; return the instances to resume."""
        sv = self.slot_view()
        frames = state[S_HOST_FP].astype(np.int64)
        width = max(len(self.funcs[int(f)].type.params) for f in state[S_HOST_FUNC])
        top = min(int(frames.max()) + width + 1, sv.shape[0])
        # One transfer of the slots around every waiting frame, then results written back per instance.
        window = self.backend.to_host(sv[:top, self.xp.asarray(insts)])
        resumed = []
        for j, i in enumerate(insts.tolist()):
            f = self.funcs[int(state[S_HOST_FUNC, j])]
            base = int(frames[j])
            args = tuple(int(v) for v in window[base: base + len(f.type.params), j])
            try:
                results = f.host(i, args)  # type: ignore[misc]
            except ProcExit as e:
                self.state[S_STATUS, i] = STATUS["EXITED"]
                self._exit_codes[i] = e.code
                continue
            except Trap as t:
                self.state[S_STATUS, i] = STATUS["TRAPPED"]
                self.state[S_TRAP, i] = TRAP_CODE["HOST"]
                self._host_traps[i] = t.kind
                continue
            for k, v in enumerate(results):
                sv[base + k, i] = int(v) & U64_MAX
            resumed.append(i)
        return resumed

    def _results(self, nres: int) -> list[CallResult]:
        host = self.backend.to_host
        state = host(self.state)
        values = host(self.slot_view()[:nres, :]) if nres else np.zeros((0, self.n), dtype=np.uint64)
        # The common case in bulk: one conversion of every finished instance's values to Python ints (a
        # loop of per-instance numpy reads cost 1.7 us per instance, most of a trivial call at N = 135168).
        out = [CallResult(tuple(v)) for v in values.T.tolist()]
        for i in np.nonzero(state[S_STATUS] != STATUS["DONE"])[0].tolist():
            if state[S_STATUS, i] == STATUS["EXITED"]:  # by the host (ProcExit), or the device (code in S_TRAP)
                code = self._exit_codes.pop(i, None)
                out[i] = CallResult(exit_code=int(state[S_TRAP, i]) if code is None else code)
            else:
                kind = self._host_traps.pop(i, None) or TRAP_MESSAGE[int(state[S_TRAP, i])]
                out[i] = CallResult(trap=kind, backtrace=self.backtrace(i, state))
        return out

    # -- traps -----------------------------------------------------------------------------------
    def func_at(self, pc: int) -> int | None:
        k = bisect.bisect_right(self.entries, (pc, 1 << 62)) - 1
        return self.entries[k][1] if k >= 0 else None

    def backtrace(self, inst: int, state: np.ndarray) -> list[str]:
        pcs = [int(state[S_PC, inst])]
        depth = int(state[S_DEPTH, inst])
        if depth:
            fr = self.backend.to_host(self.frames[:depth, inst] if self.backend.instance_minor
                                      else self.frames[inst, :depth])
            pcs += [int(w) & 0xFFFFFFFF for w in fr[::-1]]
        lines = []
        for pc in pcs:
            f = self.func_at(pc)
            if f is None:
                continue
            off = int(self.code_offsets[min(pc, len(self.code_offsets) - 1)])
            lines.append(f"{off:#x} - {self.funcs[f].name}")
        return lines

    def global_value(self, g: GlobalExtern) -> list[int]:
        return [int(v) for v in self.backend.to_host(self.globals[g.addr + 1])]

    def read_memory(self, m: MemoryExtern, inst: int, addr: int, n: int) -> np.ndarray:
        """Instance `inst`'s bytes [addr, addr + n) of memory m, on the host (the caller checks bounds)."""
        return self.mems[m.addr].data.read(inst, addr, n)

    def write_memory(self, m: MemoryExtern, inst: int, addr: int, data: bytes | bytearray | memoryview) -> None:
        self.mems[m.addr].data.write(inst, addr, data)

    def memory_pages(self, m: MemoryExtern) -> np.ndarray:
        return self.backend.to_host(self.mem_pages[m.addr + 1])
