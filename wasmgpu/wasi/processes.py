"""Processes that guest code starts: the `gpu` module's spawn, wait and output (include/wasmgpu.h,
wasmgpu.rs).

A store may hold spare processes past the ones a call starts (`Store.instances`): each is an instance of
the module, instantiated with the others, idle until a `gpu.spawn` gives it a command line. It then runs
the module's `_start` with its own arguments and environment, the parent's preopened directories (or,
through `spawn_in`, directories inside them), the parent's stderr, and a stdout of its own that the
parent reads with `gpu.output`; `gpu.wait` gives its exit status once it ends, the parent's call being
asked again after each launch until then. Children run on the device beside their parents (and may spawn
children of their own). Without threads the device serves spawn, and wait and output for children that
ended (OnDevice, vm/processes.h), the host starting a launch's children after it; a child's own WASI
calls are the host's. A spare that a child leaves (once it ended, or with threads once it was waited for)
is made new (its memories, tables, globals and segments as they were after instantiation) for the next
spawn, so gpu-run's --max-children bounds the children alive at once, not how many a run starts.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.vm_abi import (
    HF_ENDED,
    HF_FIELDS,
    HF_OUT_AT,
    HF_OUT_LEN,
    HF_PARENT,
    HF_STATUS,
    MAX_COMMAND_BYTES,
    PAGE,
    PM_CMD_CAP,
    PM_CMD_USED,
    PM_FIELDS,
    PM_FIRST,
    PM_FREE,
    PM_FREE0,
    PM_H0,
    PM_HANDLES,
    PM_NOMEM,
    PM_SHIFT,
    PM_SPAWN,
    PROC_CHILD_BIT,
    PROC_NO_OUT,
    RF_ARGS,
    RF_CMD,
    RF_ENV,
    RF_FIELDS,
    RF_FUEL,
    RF_LANE,
    RF_SLOT,
    S_STATUS,
    S_TRAP,
    STATUS,
    W_PROC_CMD,
    W_PROC_FREE,
    W_PROC_HANDLES,
    W_PROC_META,
    W_PROC_OCCUPANT,
    W_PROC_OUT,
    W_PROC_RECS,
    WASI_KINDS,
)
from ..errors import LinkError, WasmGpuError
from ..runtime.launch import Pending
from ..runtime.objects import INTRINSICS, FuncExtern
from ..wasm import opcodes as wo
from ..wasm.types import FuncType, Module
from . import abi
from .context import BufferSink, WasiContext
from .fast import FastPaths
from .fds import DirEntry
from .memory import GuestMemory, WasiError
from .sandbox import O_DIR

if TYPE_CHECKING:
    from ..runtime.store import Store
    from .batch import Wasi

MODULE = "gpu"
# gpu.wait's answer for a child that trapped (an exit status is 0 to 255; errors are negative errnos).
CHILD_TRAPPED = -1000
CMD_CAP = 4 << 20  # command bytes a launch's spawns on the device may take; past them, the host spawns
# The ended children's stdouts on the device, all a run's together: past this, the host answers gpu.output.
OUT_MAX = 64 << 20
MAX_CHILD_STDOUT = 16 << 20  # what the host keeps of a child's stdout for its parent
MAX_KEPT_OUTPUT = 512 << 20  # the children's stdouts kept together: past it, spawns fail (ENOMEM)
_I32 = wo.I32_T
SIGNATURES = {
    "spawn": FuncType((_I32, _I32, _I32, _I32), (_I32,)),  # (args, args_len, env, env_len) -> handle
    # (args, args_len, env, env_len, dirs, dirs_len) -> handle: the child's own preopened directories
    "spawn_in": FuncType((_I32,) * 6, (_I32,)),
    "wait": FuncType((_I32,), (_I32,)),  # (handle) -> exit status
    "output": FuncType((_I32, _I32, _I32, _I32), (_I32,)),  # (handle, offset, buf, len) -> bytes copied
}
_ENDED = {STATUS["DONE"], STATUS["EXITED"], STATUS["TRAPPED"]}
_ENDED_CODES = np.array(sorted(_ENDED))


class ChildStdout(BufferSink):
    """A child's stdout, kept for its parent: past MAX_CHILD_STDOUT bytes a write fails (ENOSPC), so a child
    cannot fill the host's memory."""

    def write(self, data: bytes) -> int:
        if len(self.data) + len(data) > MAX_CHILD_STDOUT:
            raise OSError(errno.ENOSPC, "a child process's stdout is full")
        return super().write(data)


def _start_of(instance: Any) -> int | None:
    start = instance.exports.get("_start")
    return start.addr if isinstance(start, FuncExtern) else None


def imports_processes(module: Module) -> bool:
    return any(imp.module == MODULE and imp.name in SIGNATURES for imp in module.imports)


@dataclass
class Child:
    slot: int  # the spare process it runs in
    parent: tuple[str, int]  # who spawned it: ("instance", index), or ("child", handle)
    ctx: WasiContext | None  # until it is waited for
    status: int | None = None  # what gpu.wait returns, once it ended and was waited for
    stdout: bytes = b""  # once waited for
    orphan: bool = False  # ended because its parent did


@dataclass
class Fresh:
    """What a spare process holds after instantiation, to make a used one new again."""

    globals: np.ndarray  # [globals]
    memories: list[tuple[np.ndarray, int]]  # per memory: its bytes and pages
    tables: list[tuple[np.ndarray, int]]  # per table: its entries and size
    data_dropped: np.ndarray
    elem_dropped: np.ndarray


class Children:
    """The `gpu` process functions of a store whose processes past `first` are spares for children."""

    def __init__(self, store: Store, wasi: Wasi, first: int) -> None:
        self.store, self.wasi = store, wasi
        self.free = list(range((store.n >> store.thread_shift) - 1, first - 1, -1))  # spare processes
        self.first = first  # the processes a call starts; the spares follow
        self.used: set[int] = set()  # spares that ran a child: made new before the next
        self.children: list[Child] = []  # by handle
        self.occupant: dict[int, int] = {}  # a spare -> the handle of the child in it
        self.kids: dict[tuple[str, int], list[int]] = {}  # a parent (as _me names it) -> its children's handles
        self.was_ended = np.zeros(0, dtype=bool)  # per process, at the last reap
        self.waited: list[int] = []  # children waited for since the last reap: theirs end with them
        self.kept = 0  # bytes of the children's stdouts kept
        self.start: int | None = None  # the module's _start
        self.programs: dict[str, int | None] = {}  # other modules' _start, by the argv[0] that runs them
        self.fresh: Fresh | None = None
        self.on_device = False  # spawn, wait or output linked as device-served (imports)
        self.device: OnDevice | None = None

    def imports(self, module: Module, device: bool = True) -> dict[tuple[str, str], FuncExtern]:
        """The module's `gpu` imports; with `device`, spawn, wait and output served on the device where the
        store lets them (processes.h): spares to spawn into, the fast paths' block to hold the device's state
        (wasi/fast.py), no threads."""
        s = self.store
        device = device and bool(self.free) and not s.thread_shift and isinstance(s.extension, FastPaths)
        out: dict[tuple[str, str], FuncExtern] = {}
        for imp in module.imports:
            if imp.module == MODULE and imp.name in INTRINSICS:  # the rest of the module: served on the device
                out[(imp.module, imp.name)] = self.store.intrinsic(imp.name)
            if imp.module != MODULE or imp.name not in SIGNATURES:
                continue
            want = SIGNATURES[imp.name]
            if imp.kind != "func" or module.types[imp.desc] != want:  # type: ignore[index]
                sig = f"({', '.join(map(wo.type_name, want.params))}) -> {wo.type_name(want.results[0])}"
                raise LinkError(f"incompatible import type for `{MODULE}::{imp.name}`: gpu.h defines {sig}")
            fn = getattr(self, "_" + imp.name)
            kind = WASI_KINDS.index("gpu_" + imp.name) if device and "gpu_" + imp.name in WASI_KINDS else None
            self.on_device |= kind is not None
            out[(imp.module, imp.name)] = self.store.host_func(want, fn, f"{MODULE}::{imp.name}", kind)
        return out

    def add_program(self, name: str, module: Module) -> Any:
        """Another module instantiated in the store (before bind), that a spawn whose argv[0] is `name` runs:
        its WASI a sibling of the instances' (the same contexts, its own memory), with the gpu functions."""
        wasi = self.wasi.sibling()
        # Its pointers are into its own memory, which the device's block does not name: the host serves it.
        instance = self.store.instantiate(module, {**wasi.imports(module), **self.imports(module, device=False)},
                                          name=name)
        wasi.bind(instance)
        self.programs[name] = _start_of(instance)
        return instance

    def bind(self, instance: Any) -> None:
        """After instantiation (of every module: add_program): the module's _start, and a spare's state as it
        is now (all are alike)."""
        self.start = _start_of(instance)
        if not self.free:
            return
        self.store.launcher.after_launch.append(self.reap)
        if self.on_device:
            self.device = OnDevice(self)
        s, host = self.store, self.store.backend.to_host
        lane = self.free[-1] << s.thread_shift
        pages = host(s.mem_pages[:, lane])
        self.fresh = Fresh(
            np.array(host(s.globals[:, lane])),
            [(m.data.read(lane, 0, int(pages[k + 1]) * PAGE), int(pages[k + 1])) for k, m in enumerate(s.mems)],
            [(np.array(host(t.data[lane])), int(host(s.table_sizes[k + 1, lane]))) for k, t in enumerate(s.tables)],
            np.array(host(s.data_dropped[:, lane])), np.array(host(s.elem_dropped[:, lane])))

    def _renew(self, slot: int) -> None:
        """Spare `slot`, used by a child, made as it was after instantiation."""
        s, fresh = self.store, self.fresh
        assert fresh is not None
        host = s.backend.to_host
        for lane in range(slot << s.thread_shift, (slot + 1) << s.thread_shift):
            s.globals[:, lane] = s.xp.asarray(fresh.globals)
            for k, (m, (image, pages)) in enumerate(zip(s.mems, fresh.memories, strict=True)):
                # A process's shared memory has one copy, made new through its main lane (the first here);
                # every lane's size goes back.
                if not (m.data.shift and lane & ((1 << m.data.shift) - 1)):
                    used = int(host(s.mem_pages[k + 1, lane])) * PAGE
                    m.data.write(lane, 0, image)
                    if used > len(image):
                        m.data.write(lane, len(image), np.zeros(used - len(image), dtype=np.uint8))
                s.mem_pages[k + 1, lane] = pages
            for k, (t, (row, size)) in enumerate(zip(s.tables, fresh.tables, strict=True)):
                t.data[lane, : len(row)] = s.xp.asarray(row)
                s.table_sizes[k + 1, lane] = size
            s.data_dropped[:, lane] = s.xp.asarray(fresh.data_dropped)
            s.elem_dropped[:, lane] = s.xp.asarray(fresh.elem_dropped)
            if s.exn is not None:
                s.exn[:, lane] = 0
            s.launcher.trap_lanes.pop(lane, None)
        s.next_tid.pop(slot << s.thread_shift, None)
        s.params.dirty = True

    def _me(self, lane: int) -> tuple[str, int]:
        """Who the process of `lane` is: an instance of the batch, or the child in a spare (a spare made new
        is someone else)."""
        p = lane >> self.store.thread_shift
        return ("instance", p) if p < self.first else ("child", self.occupant[p])

    def reap(self) -> bool:
        """After a launch: a child whose parent has ended ends too, and its spare goes back, so that no
        orphan runs on; its own children with it. Only the processes that ended since the last launch are
        looked at: a round costs what changed, not what runs. Whether any child ended."""
        if not self.children:
            return False
        s = self.store
        mains = s.statuses()[:: 1 << s.thread_shift]
        ended = np.isin(mains, _ENDED_CODES)
        was = self.was_ended if len(self.was_ended) == len(ended) else np.zeros_like(ended)
        self.was_ended = ended
        ended_any = False
        # A child waited for may have ended where this did not look (a thread ending its process between
        # a launch and the round of host calls), its spare given back since: its children follow it here.
        waited, self.waited = self.waited, []
        for handle in waited:
            ended_any |= self._orphan_children(("child", handle))
        newly = np.flatnonzero(ended & ~was).tolist()
        handles = {p: self.occupant[p] for p in newly if p >= self.first and p in self.occupant}
        if self.device is not None and handles:
            # Where the device answers gpu.wait and gpu.output, it needs the status and the stdout at once.
            # Every child that ended is finished before any orphaning, so that a child and its own child
            # ending together are each finished, not one of them orphaned after its end.
            slots = np.array(list(handles))
            traps = s.backend.to_host(s.state[S_TRAP][s.xp.asarray(slots << s.thread_shift)]).tolist()
            for (p, h), trap in zip(handles.items(), traps, strict=True):
                self._finish(h, self.children[h], int(mains[p]), int(trap))
            ended_any = True
        for p in newly:
            if p < self.first:
                ended_any |= self._orphan_children(("instance", p))
            elif p in handles:
                ended_any |= self._orphan_children(("child", handles[p]))
        return ended_any

    def _orphan_children(self, parent: tuple[str, int]) -> bool:
        """End the children of `parent` that were not waited for, and theirs, and so on down; whether any."""
        s = self.store
        ended = False
        todo = [parent]
        while todo:
            for handle in self.kids.pop(todo.pop(), ()):
                c = self.children[handle]
                if c.orphan:  # and its own with it
                    continue
                if c.status is not None:  # ended: nobody can ask for its stdout now
                    self.kept -= len(c.stdout)
                    c.stdout = b""
                else:  # still running: it ends now
                    c.orphan = True
                    c.ctx = None
                    s.state[S_STATUS, c.slot << s.thread_shift: (c.slot + 1) << s.thread_shift] = STATUS["DONE"]
                    self.occupant.pop(c.slot, None)
                    self.free.append(c.slot)
                    ended = True
                todo.append(("child", handle))
        return ended

    def _memory(self, lane: int) -> GuestMemory:
        return GuestMemory(self.store, self.wasi.memory, lane)

    def _strings(self, mem: GuestMemory, ptr: int, length: int) -> list[str]:
        """NUL-terminated strings packed in [ptr, ptr + length)."""
        raw = mem.read(ptr, length)
        if raw and raw[-1] != 0:
            raise WasiError(abi.EINVAL)  # each string ends with its NUL
        return _split(raw)

    def _entry(self, argv: list[str]) -> int | None:
        """The _start a child with this argv runs: another module's where argv[0] names one."""
        return self.programs[argv[0]] if argv and argv[0] in self.programs else self.start

    @staticmethod
    def _settings(parent: WasiContext, argv: list[str], env: list[str]) -> dict[str, Any]:
        """A child's context but its directories: its argv and environment, a stdout of its own, the
        parent's stderr and clock."""
        pairs = [tuple(e.split("=", 1)) for e in env if "=" in e]
        return dict(args=argv, env=pairs, stdout=ChildStdout(), stderr=parent.stderr, clock=parent.clock)

    def _spawn(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        return self._start_child(lane, args, None)

    def _spawn_in(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        return self._start_child(lane, args[:4], args[4:])

    def _start_child(self, lane: int, args: tuple[int, ...], dirs: tuple[int, ...] | None) -> tuple[int]:
        argp, arglen, envp, envlen = args
        if arglen + envlen + (dirs[1] if dirs else 0) > MAX_COMMAND_BYTES:
            return (-abi.E2BIG & 0xFFFFFFFF,)
        if not self.free:
            return (-abi.EAGAIN & 0xFFFFFFFF,)
        if self.kept > MAX_KEPT_OUTPUT:
            return (-abi.ERRNO["NOMEM"] & 0xFFFFFFFF,)
        mem = self._memory(lane)
        parent = self.wasi.contexts[lane]
        try:
            argv = self._strings(mem, argp, arglen)
            entry = self._entry(argv)
            if entry is None:  # a module with no _start
                raise WasiError(abi.ERRNO["NOEXEC"])
            kw = self._settings(parent, argv, self._strings(mem, envp, envlen))
            if dirs is None:
                ctx = WasiContext(preopens=parent.preopens, **kw)
            else:
                specs = [d.partition("=") for d in self._strings(mem, *dirs)]
                ctx = child_context(parent, [(g, p) if eq else (g, g) for g, eq, p in specs], **kw)
        except WasiError as e:
            return (-e.errno & 0xFFFFFFFF,)
        self._run_child(self.free.pop(), lane, entry, ctx)
        return (len(self.children) - 1,)

    def _run_child(self, slot: int, lane: int, entry: int, ctx: WasiContext, start: bool = True) -> None:
        """A child of lane's process in spare `slot`, its handle the next, started with the fuel the parent
        has left (or, without `start`, to be started by the caller: spawned)."""
        s = self.store
        if slot in self.used:
            self._renew(slot)
        self.used.add(slot)
        shift = s.thread_shift
        base = slot << shift
        self.wasi.contexts[base: base + (1 << shift)] = [ctx] * (1 << shift)
        me = self._me(lane)
        self.children.append(Child(slot, me, ctx))
        self.kids.setdefault(me, []).append(len(self.children) - 1)
        self.occupant[slot] = len(self.children) - 1
        if self.device is not None:
            self.device.started(len(self.children) - 1, slot, me)
        if start:
            s.start_lane(base, entry, (), lane)

    def spawned(self, lane: int, slot: int, command: bytes, nargs: int) -> int:
        """A spawn the device made (processes.h: it took `slot` and gave the next handle; its checks leave
        no error to report here); the function to start the child's main lane with (the caller does)."""
        argv = _split(command[:nargs])
        entry = self._entry(argv)
        assert entry is not None  # OnDevice lets the device spawn only where every program has a _start
        parent = self.wasi.contexts[lane]
        ctx = WasiContext(preopens=parent.preopens, **self._settings(parent, argv, _split(command[nargs:])))
        self._run_child(slot, lane, entry, ctx, start=False)
        return entry

    def _child(self, lane: int, handle: int) -> Child | None:
        """The child of lane's process with this handle."""
        handle = handle - (1 << 32) if handle >> 31 else handle
        ok = 0 <= handle < len(self.children) and self.children[handle].parent == self._me(lane)
        return self.children[handle] if ok else None

    def _wait(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        child = self._child(lane, args[0])
        if child is None:
            return (-abi.EBADF & 0xFFFFFFFF,)
        if child.status is None:
            s = self.store
            base = child.slot << s.thread_shift
            status = int(s.backend.to_host(s.state[S_STATUS, base]))
            if status not in _ENDED:
                raise Pending
            self._finish(args[0], child, status, None)
        return (child.status & 0xFFFFFFFF,)  # type: ignore[operator]

    def _finish(self, handle: int, child: Child, status: int, trap: int | None) -> None:
        """Child `handle` ended with this status (and S_TRAP): what gpu.wait gives is known, its stdout is
        kept for gpu.output, the rest of its context (arguments, descriptors) goes and its spare is free."""
        s = self.store
        base = child.slot << s.thread_shift
        if status == STATUS["DONE"]:
            child.status = 0
        elif status == STATUS["TRAPPED"]:
            child.status = CHILD_TRAPPED
        else:
            code = s.launcher.exit_codes.pop(base, None)
            if code is None:
                code = int(s.backend.to_host(s.state[S_TRAP, base])) if trap is None else trap
            child.status = code
        s.launcher.host_traps.pop(base, None)
        s.state[S_STATUS, base: base + (1 << s.thread_shift)] = STATUS["DONE"]
        assert child.ctx is not None
        sink = child.ctx.stdout
        child.stdout = bytes(sink.data) if isinstance(sink, BufferSink) else b""
        child.ctx.close()
        child.ctx = None
        self.kept += len(child.stdout)
        self.occupant.pop(child.slot, None)
        self.free.append(child.slot)  # made new at its next spawn
        self.waited.append(handle)  # its children end with it, should this not have been seen to end
        if self.device is not None:
            self.device.ended(handle, child)

    def _output(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        handle, offset, ptr, length = args
        child = self._child(lane, handle)
        if child is None:
            return (-abi.EBADF & 0xFFFFFFFF,)
        if child.ctx is not None:  # still running: what it wrote so far
            sink = child.ctx.stdout
            data = bytes(sink.data[offset: offset + length]) if isinstance(sink, BufferSink) else b""
        else:
            data = child.stdout[offset: offset + length]
        try:
            self._memory(lane).write(ptr, data)
        except WasiError as e:
            return (-e.errno & 0xFFFFFFFF,)
        return (len(data),)


class OnDevice:
    """The device's side of a store's processes (vm/processes.h), its fields in the fast paths' block and its
    hooks called by theirs: before each launch the spares free, the handles and the ended children's statuses
    and stdouts go to the device; after it, the spawns it made start here (Children.spawned), in the order
    they took their spares."""

    def __init__(self, children: Children) -> None:
        self.children = c = children
        s = c.store
        xp = s.xp
        self.meta = np.zeros(PM_FIELDS, dtype=np.uint64)
        self.meta[PM_CMD_CAP] = CMD_CAP
        self.meta[PM_FIRST] = c.first
        self.meta[PM_SHIFT] = s.thread_shift
        # A command the device cannot check (no _start to run: ENOEXEC) is the host's to refuse.
        self.meta[PM_SPAWN] = c.start is not None and all(e is not None for e in c.programs.values())
        self.sent: np.ndarray | None = None  # the meta last sent
        spares = len(c.free)
        self.d_meta = xp.asarray(self.meta)
        self.d_free = xp.zeros(max(1, spares), dtype=np.uint32)
        self.free_sent: list[int] | None = None
        self.occupant = np.zeros(s.n >> s.thread_shift, dtype=np.uint32)
        self.d_occupant = xp.asarray(self.occupant)
        self.occupant_dirty = False
        self.d_recs = xp.zeros((max(1, spares), RF_FIELDS), dtype=np.uint64)
        self.d_cmd = xp.zeros(CMD_CAP, dtype=np.uint8)
        self.handles = np.zeros((0, HF_FIELDS), dtype=np.uint64)
        self.d_handles = xp.zeros((1, HF_FIELDS), dtype=np.uint64)
        self.handles_dirty = 0  # rows from here on changed since sent
        self.out = bytearray()  # the ended children's stdouts not yet on the device, in the order they ended
        self.out_used = 0  # bytes of d_out given out, those of `out` included
        self.d_out = xp.zeros(1, dtype=np.uint8)
        ptr = s.backend.ptr
        fast = s.extension
        assert isinstance(fast, FastPaths)  # Children.imports serves the gpu calls on the device only then
        self.block = fast.block
        fast.procs = self
        for f, arr in ((W_PROC_META, self.d_meta), (W_PROC_FREE, self.d_free), (W_PROC_OCCUPANT, self.d_occupant),
                       (W_PROC_RECS, self.d_recs), (W_PROC_CMD, self.d_cmd), (W_PROC_HANDLES, self.d_handles),
                       (W_PROC_OUT, self.d_out)):
            self._set(f, ptr(arr))

    def _set(self, field: int, value: int) -> None:
        self.block[field] = np.uint64(value)  # a NumPy scalar: CuPy takes no Python int above 2**63

    def _row(self, handle: int) -> np.ndarray:
        if handle >= len(self.handles):
            grown = np.zeros((max(2 * len(self.handles), handle + 1, 64), HF_FIELDS), dtype=np.uint64)
            grown[:len(self.handles)] = self.handles
            self.handles = grown
            self.handles_dirty = 0
        return self.handles[handle]

    def started(self, handle: int, slot: int, parent: tuple[str, int]) -> None:
        row = self._row(handle)
        row[HF_PARENT] = 1 + (parent[1] if parent[0] == "instance" else PROC_CHILD_BIT | parent[1])
        row[HF_ENDED] = 0
        self.handles_dirty = min(self.handles_dirty, handle)
        self.occupant[slot] = handle
        self.occupant_dirty = True

    def ended(self, handle: int, child: Child) -> None:
        row = self._row(handle)
        row[HF_ENDED], row[HF_STATUS] = 1, child.status & 0xFFFFFFFF  # type: ignore[operator]
        n = len(child.stdout)
        if self.out_used + n > OUT_MAX:
            row[HF_OUT_AT], row[HF_OUT_LEN] = PROC_NO_OUT, 0
        else:
            row[HF_OUT_AT], row[HF_OUT_LEN] = self.out_used, n
            self.out += child.stdout
            self.out_used += n
        self.handles_dirty = min(self.handles_dirty, handle)

    def before_launch(self) -> None:
        c, s = self.children, self.children.store
        xp, ptr = s.xp, s.backend.ptr
        room = len(c.children) + len(c.free)  # every handle this launch may give
        if room > len(self.handles):
            self._row(room - 1)
        if len(self.handles) > len(self.d_handles):
            self.d_handles = xp.asarray(self.handles)
            self._set(W_PROC_HANDLES, ptr(self.d_handles))
        elif self.handles_dirty < len(self.handles):
            self.d_handles[self.handles_dirty:] = xp.asarray(self.handles[self.handles_dirty:])
        self.handles_dirty = len(self.handles)
        if self.out:
            sent = self.out_used - len(self.out)
            if self.out_used > len(self.d_out):
                grown = xp.zeros(max(2 * len(self.d_out), self.out_used), dtype=np.uint8)
                grown[:sent] = self.d_out[:sent]
                self.d_out = grown
                self._set(W_PROC_OUT, ptr(self.d_out))
            self.d_out[sent:self.out_used] = xp.asarray(np.frombuffer(bytes(self.out), dtype=np.uint8))
            self.out = bytearray()
        if self.occupant_dirty:
            self.d_occupant[c.first:] = xp.asarray(self.occupant[c.first:])
            self.occupant_dirty = False
        if c.free != self.free_sent:
            if c.free:
                self.d_free[:len(c.free)] = xp.asarray(np.array(c.free, dtype=np.uint32))
            self.free_sent = list(c.free)
        m = self.meta
        m[PM_FREE] = m[PM_FREE0] = len(c.free)
        m[PM_H0] = m[PM_HANDLES] = len(c.children)
        m[PM_CMD_USED] = 0
        m[PM_NOMEM] = c.kept > MAX_KEPT_OUTPUT
        if self.sent is None or not np.array_equal(m, self.sent):
            self.d_meta[:] = xp.asarray(m)
            self.sent = m.copy()

    def after_launch(self) -> None:
        c, s = self.children, self.children.store
        host = s.backend.to_host
        meta = np.array(host(self.d_meta))
        self.sent = meta  # what the device holds now
        taken = int(meta[PM_FREE0] - meta[PM_FREE])
        if not taken:
            return
        recs = np.array(host(self.d_recs[:taken])).tolist()
        cmd = bytes(host(self.d_cmd[:int(meta[PM_CMD_USED])]))
        first = len(c.free) - taken
        took, c.free[first:] = c.free[first:], []
        assert [r[RF_SLOT] for r in recs] == took[::-1], "the device takes spares from the end"
        self.free_sent = None
        starts: dict[int, tuple[list[int], list[int]]] = {}  # function -> the main lanes and their fuel
        for r in recs:
            at, nargs = r[RF_CMD], r[RF_ARGS]
            entry = c.spawned(r[RF_LANE], r[RF_SLOT], cmd[at:at + nargs + r[RF_ENV]], nargs)
            lanes, fuel = starts.setdefault(entry, ([], []))
            lanes.append(r[RF_SLOT] << s.thread_shift)
            fuel.append(r[RF_FUEL])  # the parent's at the spawn, not at the launch's end
        for entry, (lanes, fuel) in starts.items():
            s.start_lanes(lanes, entry, fuel)

    def release(self) -> None:
        self.__dict__.clear()


def _split(raw: bytes) -> list[str]:
    """The NUL-terminated strings packed in `raw` (its last byte a NUL, or none)."""
    return [s.decode("utf-8", "surrogateescape") for s in raw.split(b"\0")[:-1]]


def _preopen_for(parent: WasiContext, path: str) -> tuple[DirEntry, str]:
    """The parent's preopened directory that `path` lies in, and the rest of the path from there: the
    longest preopen name that is a prefix of the path by whole components ("." for relative paths), as
    wasi-libc finds it."""
    best: tuple[int, DirEntry, str] | None = None
    for entry in parent.fds.entries.values():
        if not isinstance(entry, DirEntry) or entry.name is None:
            continue
        name = entry.name if entry.name == "/" else entry.name.rstrip("/")
        if name in (".", ""):
            match = None if path.startswith("/") else (0, entry, path)
        elif path == name or path.startswith(name + "/") or name == "/" and path.startswith("/"):
            match = (len(name), entry, path[len(name):])
        else:
            match = None
        if match is not None and (best is None or match[0] > best[0]):
            best = match
    if best is None:
        raise WasiError(abi.ENOTCAPABLE)
    return best[1], best[2].lstrip("/") or "."


def child_context(parent: WasiContext, dirs: list[tuple[str, str]], **kw: Any) -> WasiContext:
    """A child's context whose preopened directories are (guest name, path) pairs, each path a directory
    the parent reaches through its own preopens (resolved by the sandbox's rules, so a child never sees
    more than its parent)."""
    resolved: list[tuple[str, str]] = []
    identities: list[tuple[int, int]] = []
    for guest, path in dirs:
        if not guest or not path:
            raise WasiError(abi.EINVAL)
        entry, rest = _preopen_for(parent, path)
        with entry.resolve(rest, follow=True) as where:
            if not where.exists:
                raise WasiError(abi.ENOENT)
            if not where.is_dir:
                raise WasiError(abi.ENOTDIR)
            fd = os.open(where.name, O_DIR, dir_fd=where.dir_fd)
        try:
            info = os.fstat(fd)
            host = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        resolved.append((host, guest))
        identities.append((info.st_dev, info.st_ino))
    try:
        ctx = WasiContext(preopens=resolved, **kw)
    except WasmGpuError:
        raise WasiError(abi.ENOENT) from None  # moved away since it was resolved
    held = [e.identity for e in ctx.fds.entries.values() if isinstance(e, DirEntry)]
    if held != identities:  # a directory swapped under it since it was resolved
        ctx.close()
        raise WasiError(abi.ENOENT)
    return ctx
