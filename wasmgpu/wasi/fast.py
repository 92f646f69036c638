"""The host side of the WASI calls the device serves without a round trip (vm/wasi_fast.h; DESIGN.md 5).

args/environ come from per-instance blobs loaded here; clock_time_get/clock_res_get from the host's
clocks at each launch plus a device timer (RealClock) or from the virtual clock (VirtualClock, whose
time then lives on the device); random_get from a per-instance ChaCha20 stream (SeededRandom's key,
or one from os.urandom for SystemRandom); fd_write to the original fd 1 and 2 appends records to a
per-instance buffer that after_launch drains into the instance's stdout/stderr, in order; proc_exit
ends the instance there; fd_read of fd 0 reads stdin bytes known from the start (a file's, the API's)
from the instance's position until a host call that could see fd 0 takes it over. Whatever the device
declines (another descriptor, a write that does not fit, a CPU-time clock, an exit status >= 126, a clock
or random source of another kind) the host serves as before, and since the buffers are drained after
every launch, before any host call is served, the order of all output is kept.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..compiler.vm_abi import (
    C_EPOCH,
    C_FIELDS,
    C_STEP,
    C_VALUE,
    NO_MEMORY,
    SD_BASE,
    SD_FIELDS,
    SD_LEN,
    SD_POS,
    SI_ARGC,
    SI_ARGS,
    SI_ARGS_SIZE,
    SI_ENV,
    SI_ENV_SIZE,
    SI_ENVC,
    SI_FIELDS,
    W_CLOCK,
    W_COUNT,
    W_FLAGS,
    W_HOST_REALTIME,
    W_MEM,
    W_OUT,
    W_OUT_CAP,
    W_OUT_USED,
    W_RNG_KEY,
    W_RNG_POS,
    W_STDIN,
    W_STDIN_INFO,
    W_STDIO_FDSTAT,
    W_STDIO_ROW,
    W_STRING_INFO,
    W_STRINGS,
    W_TIMER_BASE,
    WF_ARGS,
    WF_CLOCK_REAL,
    WF_CLOCK_VIRTUAL,
    WF_FILES,
    WF_OUT_FD2,
    WF_RANDOM,
    WF_STDERR,
    WF_STDIN,
    WF_STDIO,
    WF_STDOUT,
)
from ..compiler.vm_abi import WASI_KINDS as KINDS
from ..runtime.linear_memory import MemoryArray
from ..runtime.store import Store
from .clocks import RealClock, SeededRandom, SystemRandom, VirtualClock
from .context import WasiContext
from .devfiles import NO_FDS, ONE_FD, DeviceFiles, host_native
from .fds import OutputEntry, StdinEntry

if TYPE_CHECKING:
    from .processes import OnDevice

U64_MAX = (1 << 64) - 1

FILE_KINDS = frozenset(KINDS[KINDS.index("fd_prestat_get"):])  # served from devfiles.py's snapshot
HOST_PREFIX = "wasi:"  # what the store's name of a WASI host function starts with (batch.py names them)
MAX_OUT_BUFFER = 16 << 10  # bytes per instance
MIN_OUT_BUFFER = 1 << 10


def may_change_stdio(name: str) -> bool:
    """Whether a WASI call may close, renumber or change the flags or rights of fds 0-2: reads, writes and
    path calls (whose new descriptors are never 0-2 while those are open) do not."""
    return name not in NO_FDS and name not in ONE_FD and not name.startswith("path_")


def default_out_buffer(store: Store) -> int:
    """16 KiB per instance, less where N buffers would take over 256 MiB (CPU) or 1/32 of the GPU's free memory."""
    free = store.backend.device_memory()
    budget = (256 << 20) if free is None else free // 32
    return max(MIN_OUT_BUFFER, min(MAX_OUT_BUFFER, budget // store.n)) & ~3


def _strings(items: list[bytes]) -> bytes:
    return b"".join(s + b"\0" for s in items)


def parse_rows(rows: np.ndarray, lengths: Sequence[int]) -> Iterator[list[tuple[int, bytes]]]:
    """Each output buffer's records (the first lengths[r] bytes of row r of `rows`, C-contiguous uint8) as
    (fd, bytes), consecutive writes to one fd joined, in place, in native code (a batch of 10,000 instances
    printing 2,000 lines each has 20 million records)."""
    join = host_native().wg_join_records
    runs = np.empty(2 * (rows.shape[1] // 4 + 1), dtype=np.uint64)
    flat, base, stride, at_runs = rows.reshape(-1), rows.ctypes.data, rows.strides[0], runs.ctypes.data
    for r, length in enumerate(lengths):
        count = join(base + r * stride, length, WF_OUT_FD2, at_runs)
        at = r * stride
        if count == 1:  # the usual case: one stream written
            yield [(int(runs[0]), flat[at:at + int(runs[1])].tobytes())]
            continue
        out = []
        for fd, n in runs[:2 * count].reshape(-1, 2).tolist():
            out.append((fd, flat[at:at + n].tobytes()))
            at += n
        yield out


class FastPaths:
    """The device state of the fast paths for the instances of a store, one WasiContext each."""

    def __init__(self, store: Store, contexts: Sequence[WasiContext], out_buffer: int | None = None,
                 served: int | None = None) -> None:
        """`served`: the device serves the first `served` lanes only (the rest are spares for children, whose
        contexts are made at their spawns; processes.py), all where None."""
        self.store = store
        self.contexts = contexts
        self.served = store.n if served is None else served
        # Record lengths have 31 bits (vm/wasi_fast.h), and the used counts 32.
        self.out_buffer = default_out_buffer(store) if out_buffer is None else min(out_buffer, 1 << 30) & ~3
        xp, n = store.xp, store.n
        block = np.zeros(W_COUNT, dtype=np.uint64)
        block[W_MEM] = NO_MEMORY
        self._flags = np.zeros(n, dtype=np.uint32)

        # One pass over the contexts; each array is made from its rows at the end (an element set at a time
        # cost more than the rest of the pass).
        flags = [0] * n
        # args and environ: identical blobs (the usual case) stored once, and each distinct pair of lists
        # made into its row once.
        arena = bytearray()
        where: dict[bytes, int] = {}
        string_rows: dict[tuple[tuple[bytes, ...], tuple[bytes, ...]], int] = {}  # -> its index in string_fields
        string_fields: list[list[int]] = []
        string_row = [0] * n
        # Clocks: the host's (stateless here), or a virtual clock of this instance alone, whose time moves here
        # (decided after the pass, once it is known which contexts hold each clock and random source).
        other_clocks: list[tuple[int, object]] = []
        other_randoms: list[tuple[int, object]] = []
        virtual: dict[int, tuple[int, int]] = {}  # instance -> (epoch, step)
        # random_get: a seeded stream continues on the device; the system's becomes a stream keyed from it.
        seeded: dict[int, bytes] = {}  # instance -> key
        # stdin: the bytes an instance's fd 0 gives when they are known from the start (gpu-run's stdin from a
        # file, the API's bytes), each distinct content once; the device reads them until the host takes over.
        stdin, stdin_at = bytearray(), {}
        stdin_rows: dict[int, tuple[int, int, int]] = {}
        # fd_fdstat_get of fds 0-2: each distinct record once, a row per descriptor and instance; the device
        # answers until a host call could change one (before_calls).
        records: dict[bytes, int] = {}
        stdio_rows: dict[tuple[bytes, bytes, bytes], int] = {}  # -> its index in stdio_fields
        stdio_fields = [(0, 0, 0)]  # first, that of an instance without all three
        stdio_row = [0] * n
        # fd_write: the entries fds 1 and 2 start with; the device writes for them while they stay there.
        self.outputs: list[tuple[OutputEntry | None, OutputEntry | None]] = []
        for i, ctx in enumerate(contexts):
            bit = WF_ARGS
            key = (tuple(ctx.args), tuple(ctx.env))
            row = string_rows.get(key)
            if row is None:
                fields = []
                for items in key:
                    blob = _strings(items)
                    at = where.get(blob)
                    if at is None:
                        at = where[blob] = len(arena)
                        arena += blob
                    fields += (at, len(items), len(blob))
                row = string_rows[key] = len(string_rows)
                string_fields.append(fields)
            string_row[i] = row
            c, r = ctx.clock, ctx.random
            if type(c) is RealClock:
                bit |= WF_CLOCK_REAL
            else:
                other_clocks.append((i, c))
            if type(r) is SystemRandom:
                bit |= WF_RANDOM
            else:
                other_randoms.append((i, r))
            data = _stdin_bytes(ctx)
            if data is not None:
                at = stdin_at.get(data)
                if at is None:
                    at = stdin_at[data] = len(stdin)
                    stdin += data
                stdin_rows[i] = (at, len(data), 0)
                bit |= WF_STDIN
            entries = ctx.fds.entries
            e0, e1, e2 = entries.get(0), entries.get(1), entries.get(2)
            if e0 is not None and e1 is not None and e2 is not None:
                stat = (e0.fdstat(), e1.fdstat(), e2.fdstat())
                row = stdio_rows.get(stat)
                if row is None:
                    row = stdio_rows[stat] = len(stdio_fields)
                    stdio_fields.append(tuple(records.setdefault(s, len(records)) for s in stat))
                stdio_row[i] = row
                bit |= WF_STDIO
            self.outputs.append((e1 if isinstance(e1, OutputEntry) else None,
                                 e2 if isinstance(e2, OutputEntry) else None))
            flags[i] = bit
        owners = Counter(id(o) for _, o in (*other_clocks, *other_randoms))
        for i, c in other_clocks:
            if (type(c) is VirtualClock and owners[id(c)] == 1 and 0 <= c.epoch <= U64_MAX
                    and 0 <= c.step <= U64_MAX and 0 <= c.elapsed <= U64_MAX):
                flags[i] |= WF_CLOCK_VIRTUAL
                virtual[i] = (c.epoch, c.step)
        for i, r in other_randoms:
            if type(r) is SeededRandom and owners[id(r)] == 1:
                seeded[i] = r.key
                flags[i] |= WF_RANDOM
        self._flags = np.array(flags, dtype=np.uint32)
        self._flags[self.served:] = 0
        self.strings = xp.asarray(np.frombuffer(bytes(arena + b"\0"), dtype=np.uint8))
        info = np.array(string_fields, dtype=np.uint64).reshape(-1, SI_FIELDS)[np.array(string_row, dtype=np.intp)].T
        assert (SI_ARGS, SI_ARGC, SI_ARGS_SIZE, SI_ENV, SI_ENVC, SI_ENV_SIZE) == tuple(range(6)), "rows in field order"
        self.string_info = xp.asarray(np.ascontiguousarray(info))

        clocks = np.zeros((C_FIELDS, n), dtype=np.uint64)
        if virtual:
            at_ = np.fromiter(virtual, dtype=np.int64, count=len(virtual))
            clocks[C_EPOCH, at_], clocks[C_STEP, at_] = np.array(list(virtual.values()), dtype=np.uint64).T
        self.clocks = xp.asarray(clocks)
        for i in virtual:
            contexts[i].clock.cell.bind(self.clocks[C_VALUE], i)  # type: ignore[union-attr]

        keys = np.frombuffer(os.urandom(32 * n), dtype="<u4").reshape(n, 8).T.astype(np.uint32)
        for i, key in seeded.items():
            keys[:, i] = np.frombuffer(key, dtype="<u4")
        self.rng_key = xp.asarray(np.ascontiguousarray(keys))
        self.rng_pos = xp.zeros(n, dtype=np.uint64)
        for i in seeded:
            contexts[i].random.cell.bind(self.rng_pos, i)  # type: ignore[attr-defined]

        stdin_info = np.zeros((SD_FIELDS, n), dtype=np.uint64)
        if stdin_rows:
            at_ = np.fromiter(stdin_rows, dtype=np.int64, count=len(stdin_rows))
            stdin_info[:3, at_] = np.array(list(stdin_rows.values()), dtype=np.uint64).T
        assert (SD_BASE, SD_LEN, SD_POS) == (0, 1, 2), "rows in field order"
        self.stdin = xp.asarray(np.frombuffer(bytes(stdin) + b"\0", dtype=np.uint8))
        self.stdin_info = xp.asarray(stdin_info)

        self.stdio_fdstat = xp.asarray(np.frombuffer(b"".join(records) or bytes(24), dtype=np.uint8))
        stdio = np.array(stdio_fields, dtype=np.uint32)[np.array(stdio_row, dtype=np.intp)]
        self.stdio_row = xp.asarray(np.ascontiguousarray(stdio.T))

        self.out: MemoryArray | None = None
        self.used = xp.zeros(n, dtype=np.uint32)
        self._broken: set[tuple[int, int]] = set()  # (instance, fd) whose sink failed: the host's from then on

        self.flags = xp.array(self._flags)  # a copy on every backend: changes are pushed explicitly
        self._pending: set[int] | None = None  # in a round of host calls: instances whose flags changed
        self.files: DeviceFiles | None = None
        self.procs: OnDevice | None = None  # the processes' device state, in this block too (processes.py)
        self.any_real_clock = bool((self._flags & WF_CLOCK_REAL).any())
        ptr = store.backend.ptr
        block[W_FLAGS] = ptr(self.flags)
        block[W_STRINGS] = ptr(self.strings)
        block[W_STRING_INFO] = ptr(self.string_info)
        block[W_CLOCK] = ptr(self.clocks)
        block[W_RNG_KEY] = ptr(self.rng_key)
        block[W_RNG_POS] = ptr(self.rng_pos)
        block[W_OUT_USED] = ptr(self.used)
        block[W_STDIN] = ptr(self.stdin)
        block[W_STDIN_INFO] = ptr(self.stdin_info)
        block[W_STDIO_FDSTAT] = ptr(self.stdio_fdstat)
        block[W_STDIO_ROW] = ptr(self.stdio_row)
        self.block = xp.asarray(block)
        store.attach(self)

    # -- set up by the Wasi object --------------------------------------------------------------------
    def kind(self, name: str) -> int | None:
        """The device kind of WASI function `name` (None: host only); linking fd_write makes the buffers,
        linking a file function the snapshot of the preopens (devfiles.py)."""
        if name not in KINDS or self.store.thread_shift:  # a process's threads share its state: the host's
            return None
        if name in FILE_KINDS and self.files is None:
            self.files = DeviceFiles(self.store, self.contexts, self._flags, self._changed, self._set,
                                     served=self.served)
            self.files.build()
        if name == "fd_write" and self.out is None and self.out_buffer > 0:
            self.out = MemoryArray.zeros(self.store.backend, self.store.n, self.out_buffer, self.store.memory_layout)
            self._set(W_OUT, self.store.backend.ptr(self.out.data))
            self._set(W_OUT_CAP, self.out_buffer)
            bits = np.zeros(self.store.n, dtype=np.uint32)
            bits[:self.served] = self._fd_bits(range(self.served))
            self._flags[:] = (self._flags & np.uint32(~(WF_STDOUT | WF_STDERR) & 0xFFFFFFFF)) | bits  # in place: shared
            self.flags[:] = self.store.xp.asarray(self._flags)
        return KINDS.index(name)

    def _changed(self, insts: np.ndarray) -> None:
        """These instances' flags changed here: copied to the device at once, or, in a round of host calls,
        with the round's other changes in after_calls (one copy for the round)."""
        if self._pending is None:
            self._push_flags(insts)
        else:
            self._pending.update(insts.tolist())

    def _push_flags(self, insts: np.ndarray) -> None:
        if len(insts):
            xp = self.store.xp
            self.flags[xp.asarray(insts)] = xp.asarray(self._flags[insts])

    def before_calls(self, calls: list[tuple[int, str, tuple[int, ...]]]) -> None:
        """The host is about to serve these (instance, function, arguments) calls: it takes over the
        descriptors the calls could see first, for all of them at once; flag changes wait for after_calls."""
        self._pending = set()
        wasi = [(i, name[len(HOST_PREFIX):], args) for i, name, args in calls if name.startswith(HOST_PREFIX)]
        if self.files is not None:
            self.files.before_calls(wasi)
        # A call that may see fd 0 takes the instance's stdin over, at the position the device read to.
        take = sorted({i for i, name, args in wasi if self._flags[i] & WF_STDIN and name not in NO_FDS
                       and not (name in ONE_FD and args and args[0] != 0)})
        if take:
            self._take_stdin(np.array(take))
        # One that may change what fds 0-2 are leaves their fdstat to the host from then on.
        stat = sorted({i for i, name, _ in wasi if self._flags[i] & WF_STDIO and may_change_stdio(name)})
        if stat:
            self._flags[stat] &= ~WF_STDIO & 0xFFFFFFFF
            self._changed(np.array(stat))

    def _take_stdin(self, insts: np.ndarray) -> None:
        pos = self.store.backend.to_host(self.stdin_info[SD_POS, self.store.xp.asarray(insts)])
        for i, p in zip(insts.tolist(), pos.tolist(), strict=True):
            self.contexts[i].fds.entries[0].source.pos = int(p)  # type: ignore[union-attr]
            self._flags[i] &= ~WF_STDIN & 0xFFFFFFFF
        self._changed(insts)

    def mail_safe(self, inst: int, name: str, args: tuple[int, ...]) -> bool:
        # Safe where before_calls (and DeviceFiles.before_calls) would take nothing from the device for the
        # call, by the same tests: the device's files, stdin and stdio fdstat stay the device's. A call that
        # may see fds 0-2 waits too where the device buffers their output (it reaches the host after the
        # launch), and so do an exit (its message follows that output), a yield (it lets the calls waiting
        # for the launch's end be served) and the embedder's own functions (they may print beside it).
        if not name.startswith(HOST_PREFIX) or self.procs is not None:
            return False
        name = name[len(HOST_PREFIX):]
        if name in NO_FDS:
            return name not in ("proc_exit", "proc_raise", "sched_yield")
        flags = int(self._flags[inst])
        if flags & WF_STDIN and not (name in ONE_FD and args and args[0] != 0):
            return False
        if flags & WF_STDIO and may_change_stdio(name):
            return False
        if flags & (WF_STDOUT | WF_STDERR) and not (args and args[0] >= 3 and (name in ONE_FD
                                                                              or name.startswith("path_"))):
            return False
        files = self.files
        if files is None:
            return True
        changes = files.changes(name, args)
        return not (files.flags[inst] & WF_FILES or files.served is not None and inst >= files.served and changes
                    or files.sharers and changes)

    def after_calls(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self._push_flags(np.array(sorted(pending)))

    def release(self) -> None:
        """The store was closed: the device copies (and the snapshot's) go now, not with the collector."""
        if self.files is not None:
            self.files.__dict__.clear()
        if self.procs is not None:
            self.procs.release()
        self.__dict__.clear()

    def relayout(self, layout: str) -> Callable[[], None]:
        # Between launches the output buffer holds only what the host has not taken yet (drain).
        used = int(self.used.max()) if self.out is not None else 0
        out = self.out.relayout(layout, used) if self.out is not None else None
        put_files = self.files.relayout(layout) if self.files is not None else None

        def put() -> None:
            if out is not None:
                self.out = out
                self._set(W_OUT, self.store.backend.ptr(out.data))
            if put_files is not None:
                put_files()

        return put

    def set_memory(self, addr: int | None) -> None:
        self._set(W_MEM, NO_MEMORY if addr is None else addr)

    def _set(self, field: int, value: int) -> None:
        self.block[field] = np.uint64(value)  # a NumPy scalar: CuPy takes no Python int above 2**63

    # -- the store's hooks ------------------------------------------------------------------------------
    def before_launch(self) -> None:
        if self.any_real_clock:
            now = np.array([time.time_ns(), time.monotonic_ns(), 0], dtype=np.uint64)
            self.block[W_HOST_REALTIME:W_TIMER_BASE + 1] = self.store.xp.asarray(now)
        if self.procs is not None:
            self.procs.before_launch()

    def after_launch(self) -> None:
        self.drain()
        if self.files is not None:
            self.files.settle()
        if self.procs is not None:
            self.procs.after_launch()

    # -- output ---------------------------------------------------------------------------------------
    def drain(self) -> None:
        """Every instance's buffered writes, to its stdout/stderr in the order they were made."""
        if self.out is None:
            return
        used = np.array(self.store.backend.to_host(self.used))  # a copy: on the CPU, to_host is the array
        live = np.flatnonzero(used)
        if not len(live):
            return
        # Joined in place: on the CPU these rows may be the buffer itself, which is empty again once drained.
        rows = np.ascontiguousarray(self.out.heads(live, int(used[live].max())))
        self.used[:] = 0
        for i, records in zip(live.tolist(), parse_rows(rows, used[live].tolist()), strict=True):
            for fd, data in records:
                entry = self.outputs[i][fd - 1]
                try:
                    entry.write(data)  # type: ignore[union-attr]
                except OSError:
                    # The guest was told it succeeded; from now on the host serves its writes (and errors).
                    self._broken.add((i, fd))
                    self.after_host_call(i)

    def after_host_call(self, i: int) -> None:
        """A host call may have closed or renumbered fd 1 or 2: the device then leaves them to the host
        (told at once, or with the rest of the round's changes in after_calls)."""
        if self.out is not None and self._refresh_fds(i):
            self._changed(np.array([i]))

    def _fd_bits(self, insts: Iterable[int]) -> list[int]:
        """Of each instance, WF_STDOUT and WF_STDERR where its fd 1 and 2 are still the entries the device writes
        for; none for a spare's lane (a start function's host call may ask): a child's are the host's."""
        contexts, outputs, broken = self.contexts, self.outputs, self._broken
        bits = []
        for i in insts:
            b = 0
            if i < self.served:
                entries = contexts[i].fds.entries
                out, err = outputs[i]
                if out is not None and entries.get(1) is out and (i, 1) not in broken:
                    b |= WF_STDOUT
                if err is not None and entries.get(2) is err and (i, 2) not in broken:
                    b |= WF_STDERR
            bits.append(b)
        return bits

    def _refresh_fds(self, i: int) -> bool:
        old = int(self._flags[i])
        new = (old & ~(WF_STDOUT | WF_STDERR)) | self._fd_bits([i])[0]
        self._flags[i] = new
        return new != old


# Stdin the device holds at most (more is read by the host as the guest asks).
STDIN_MAX = 64 << 20


def _stdin_bytes(ctx: WasiContext) -> bytes | None:
    """The bytes fd 0 gives, where the device can serve it: the original stdin, nothing read yet, its bytes
    known without waiting (a file, not a pipe or a terminal)."""
    entry = ctx.fds.entries.get(0)
    whole = getattr(entry.source, "whole", None) if isinstance(entry, StdinEntry) else None
    return whole(STDIN_MAX) if whole is not None else None

