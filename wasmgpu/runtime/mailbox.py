"""The mailbox: host calls served while a launch runs, the lane waiting, instead of ending the launch.

A lane that stops for a host call (vm.h mailbox_call) posts it in host memory that both sides see
(`Backend.host_shared`: pinned and mapped on the GPU) and waits. The host looks while the launch runs
(`Backend.run`'s `serve`), serves what is posted with the same host functions as after a launch, and
releases each lane with its results and status. What the call reads and writes of guest memory goes
through a pool of bytes, copied by the lane itself: while the launch holds the GPU's multiprocessors no
kernel of the host's could run to do it.

A lane waits at most `wait_ns` for the host; then, or where the host declines the call, it ends its launch
and the host serves the call after it, as without the mailbox. The host finds such a lane gone and finishes
what it began for it once the launch has ended (`settle`).
"""

from __future__ import annotations

import os
import platform
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compiler.vm_abi import (
    BOX_ABANDONED,
    BOX_ANSWERED,
    BOX_OPS,
    BOX_POSTED,
    BOX_RELEASE,
    MAIL_ARGS,
    MAIL_KEEP_TRAP,
    MAIL_READ,
    MAIL_WRITE,
    MB_CLOSED,
    MB_FIELDS,
    MB_FLAGS,
    MB_HEAD,
    MB_MEMORIES,
    MB_POOL,
    MB_POOL_BYTES,
    MB_WAIT_NS,
    MH_ARGS,
    MH_LIST,
    MH_NRES,
    MH_OPS,
    MH_SEQ,
    MH_STATUS,
    MH_TRAP,
    MO_FIELDS,
)
from ..errors import WasmGpuError

MAILBOX_VAR = "WASMGPU_MAILBOX"  # on, or off (the default: on an H100 it measured no faster, bench/NOTES.md)
WAIT_VAR = "WASMGPU_MAILBOX_WAIT_MS"
# How long a lane waits for the host before it ends its launch: long enough for a round of host calls (a
# round of 32,768 calls to Python took 0.25 s on an H100 host).
WAIT_NS = 1_000_000_000
POOL_BYTES = 4 << 20
# The head takes 160 bytes an instance in pinned memory: larger batches run in waves of this many or end
# their launches for host calls.
MAX_INSTANCES = 1 << 18
POLL_S = 20e-6
GATHER_S = 1e-3
# The most calls a round serves: a round's lanes wait for all of it (about 8 us a call in Python).
ROUND_MAX = 8192
MIN_POOL = 4096
HEAD_ROWS = MH_ARGS + MAIL_ARGS
RECORD = 8 * MO_FIELDS


def mailbox_on() -> bool:
    mode = os.environ.get(MAILBOX_VAR, "off")
    if mode not in ("on", "off"):
        raise WasmGpuError(f"{MAILBOX_VAR} must be on or off, not {mode!r}")
    if mode == "on" and platform.machine().lower() not in ("x86_64", "amd64"):
        # The host reads and writes the flags with plain loads and stores: x86's order keeps them after the
        # bytes they stand for, a weaker order would not.
        raise WasmGpuError(f"{MAILBOX_VAR}=on needs an x86-64 host, not {platform.machine()}")
    return mode == "on"


def wait_ns() -> int:
    text = os.environ.get(WAIT_VAR)
    if text is None:
        return WAIT_NS
    try:
        ms = float(text)
    except ValueError:
        ms = -1.0
    if not 0 <= ms <= 60_000:
        raise WasmGpuError(f"{WAIT_VAR} must be a number of milliseconds from 0 to 60000, not {text!r}")
    return int(ms * 1e6)


# An op on a lane's memory: (MAIL_READ or MAIL_WRITE, memory, guest address, bytes to write or length to read).
Op = tuple[int, int, int, "bytes | int"]


def write_ops(writes: dict[tuple[int, int], list[tuple[int, bytes]]]) -> dict[int, list[Op]]:
    """A host round's writes ((memory, instance) -> (address, bytes) in order) as each lane's ops."""
    ops: dict[int, list[Op]] = {}
    for (m, inst), ws in writes.items():
        ops.setdefault(inst, []).extend((MAIL_WRITE, m, a, data) for a, data in ws)
    return ops


def _size(what: bytes | int) -> int:
    """An op's bytes: those it writes, or the length it reads."""
    return len(what) if isinstance(what, bytes) else what


def _padded(n: int) -> int:
    """n rounded up to 8: each op's bytes start aligned in the pool."""
    return -(-n // 8) * 8


@dataclass
class Serving:
    """What a launch with a mailbox calls (`Backend.run`'s `serve`): `poll(done)` serves what is posted and
    says whether anything was; `close()`, where the launch ends early (an exception), makes every lane leave."""

    poll: Callable[[Callable[[], bool]], bool]
    close: Callable[[], None]


@dataclass
class Release:
    """What a lane is released with: its writes, results (slots), new status and trap (MAIL_KEEP_TRAP: none),
    and the count of releases it had applied before (its head's MH_SEQ; -1: the lane was gone already)."""

    writes: list[Op]
    results: list[int]
    status: int
    trap: int
    seq: int = -1


@dataclass
class Mailbox:
    """One store's mailbox: the block the launch gets (`address`), the lanes' flags and heads, the pool."""

    backend: Any
    n: int
    wait: int = WAIT_NS
    pool_bytes: int = POOL_BYTES
    flags: np.ndarray = field(init=False)
    head: np.ndarray = field(init=False)
    pool: np.ndarray = field(init=False)
    address: int = field(init=False)
    done: Callable[[], bool] = field(init=False, default=lambda: True)  # whether the launch ended
    gone: set[int] = field(init=False, default_factory=set)  # lanes that ended their launch mid-call
    ended: bool = field(init=False, default=False)  # the launch ended mid-round: every lane of it is gone
    pending: dict[int, Release] = field(init=False, default_factory=dict)  # released, not yet seen applied

    def __post_init__(self) -> None:
        if self.pool_bytes < MIN_POOL:
            raise WasmGpuError(f"the mailbox's pool needs at least {MIN_POOL} bytes, not {self.pool_bytes}")
        n = self.n
        flag_bytes = -(-4 * n // 8) * 8
        sizes = [8 * MB_FIELDS, flag_bytes, 8 * HEAD_ROWS * n, self.pool_bytes]
        buf, base = self.backend.host_shared(sum(sizes))
        at = np.cumsum([0, *sizes]).tolist()
        block = buf[at[0]:at[1]].view(np.uint64)
        self.flags = buf[at[1]:at[1] + 4 * n].view(np.uint32)
        self.head = buf[at[2]:at[3]].view(np.uint64).reshape(HEAD_ROWS, n)
        self.pool = buf[at[3]:at[4]]
        block[MB_FLAGS], block[MB_HEAD], block[MB_POOL] = base + at[1], base + at[2], base + at[3]
        block[MB_WAIT_NS] = self.wait
        block[MB_POOL_BYTES] = self.pool_bytes
        self.block = block
        self.address = base
        self._buf = buf
        self._busy: np.ndarray | None = None  # lanes released with bytes in the pool, maybe not yet copied

    @property
    def _chunk(self) -> int:
        """The largest piece of one op in one batch: a quarter of the pool."""
        return self.pool_bytes // 4

    def open(self, memories: int) -> None:
        """Before a launch: the lanes may post (the store has this many memories)."""
        self.block[MB_MEMORIES] = memories
        self.block[MB_CLOSED] = 0
        self.ended = False

    def close(self) -> None:
        """No more serving in this launch: every waiting lane leaves it (and none posts again)."""
        self.block[MB_CLOSED] = 1

    def end(self) -> None:
        """Closes the mailbox and waits for the launch's end: the rest of the round reaches memory itself."""
        self.close()
        while not self.done():
            time.sleep(0.0005)
        self.ended = True

    def posted(self) -> np.ndarray:
        """The lanes waiting with a call (ROUND_MAX at most). Once some are, those posting just after them are
        waited for (while their count grows, GATHER_S at most): a round's cost is mostly per round."""
        lanes = np.flatnonzero(self.flags == BOX_POSTED)
        until = time.perf_counter() + GATHER_S
        while 0 < len(lanes) < ROUND_MAX and time.perf_counter() < until:
            time.sleep(POLL_S)
            more = np.flatnonzero(self.flags == BOX_POSTED)
            if len(more) <= len(lanes):
                break
            lanes = more
        return lanes[:ROUND_MAX]

    def _wait(self, lanes: np.ndarray, until: tuple[int, ...] = (), unless: int | None = None) -> np.ndarray:
        """Waits until each lane's flag is one of `until` (or is not `unless`), or the launch ended; returns the
        flags then."""
        while True:
            f = self.flags[lanes]
            if unless is not None:
                ok = f != unless
            else:
                ok = f == until[0]
                for v in until[1:]:
                    ok |= f == v
            if ok.all():
                return f
            if self.done():
                return self.flags[lanes]
            time.sleep(POLL_S)

    def _pool_free(self) -> None:
        """Before the pool is written again: the lanes released with bytes in it have copied them."""
        if self._busy is not None:
            self._wait(self._busy, unless=BOX_RELEASE)
            self._busy = None

    def _lay_out(self, batch: dict[int, list[tuple[int, int, int, bytes | int]]]) -> dict[int, list[int]]:
        """Writes the batch's op records and bytes into the pool and each lane's head; returns where each
        lane's reads will be in the pool."""
        count = sum(len(ops) for ops in batch.values())
        if count:
            self._pool_free()
        records = self.pool[: count * RECORD].view(np.uint64).reshape(count, MO_FIELDS)
        data_at = count * RECORD
        k = 0
        reads: dict[int, list[int]] = {}
        self.head[MH_OPS, np.fromiter(batch, dtype=np.int64, count=len(batch))] = 0
        for lane, ops in batch.items():
            if not ops:
                continue
            self.head[MH_OPS, lane] = len(ops)
            self.head[MH_LIST, lane] = k * RECORD
            for kind, mem, addr, what in ops:
                size = _size(what)
                records[k] = (kind | mem << 8, addr, size, data_at)
                if isinstance(what, bytes):
                    self.pool[data_at:data_at + size] = np.frombuffer(what, dtype=np.uint8)
                else:
                    reads.setdefault(lane, []).append(data_at)
                data_at += _padded(size)
                k += 1
        return reads

    def _batches(self, jobs: dict[int, list[Op]]) -> list[dict[int, list[tuple[int, int, int, bytes | int]]]]:
        """The jobs' ops cut into pieces (reads and writes of at most a quarter of the pool) and grouped into
        batches that fit the pool, each lane's pieces in order."""
        chunk = self._chunk
        queues: dict[int, deque[tuple[int, int, int, bytes | int]]] = {}
        for lane, ops in jobs.items():
            q: deque[tuple[int, int, int, bytes | int]] = deque()
            for kind, mem, addr, what in ops:
                size = _size(what)
                for off in range(0, max(size, 1), chunk):
                    part = what[off:off + chunk] if isinstance(what, bytes) else min(chunk, size - off)
                    q.append((kind, mem, addr + off, part))
            if q:
                queues[lane] = q
        batches = []
        while queues:
            used, batch = 0, {}
            for lane, q in list(queues.items()):
                while q:
                    need = RECORD + _padded(_size(q[0][3]))
                    if used + need > self.pool_bytes:
                        break
                    batch.setdefault(lane, []).append(q.popleft())
                    used += need
                if not q:
                    del queues[lane]
                if used + RECORD + chunk > self.pool_bytes:
                    break
            batches.append(batch)
        return batches

    def exchange(self, jobs: dict[int, list[Op]]) -> dict[int, list[np.ndarray]]:
        """Runs these ops on the lanes (posted, waiting): each lane's read bytes, one array per read op, for
        the lanes that answered; the others ended their launch (`gone`)."""
        if self.ended:
            self.gone.update(jobs)
        jobs = {lane: ops for lane, ops in jobs.items() if lane not in self.gone}
        parts: dict[int, list[np.ndarray]] = {lane: [] for lane in jobs}
        for batch in self._batches(jobs):
            batch = {lane: ops for lane, ops in batch.items() if lane not in self.gone}
            if not batch:
                continue
            reads = self._lay_out(batch)
            lanes = np.fromiter(batch, dtype=np.int64, count=len(batch))
            self.flags[lanes] = BOX_OPS
            answered = self._wait(lanes, (BOX_ANSWERED, BOX_ABANDONED)) == BOX_ANSWERED
            for lane, ok in zip(lanes.tolist(), answered.tolist(), strict=True):
                if not ok:
                    self.gone.add(lane)
                    continue
                sizes = [what for kind, _, _, what in batch[lane] if kind == MAIL_READ]
                for at, size in zip(reads.get(lane, ()), sizes, strict=True):
                    parts[lane].append(self.pool[at:at + size].copy())
        # Reads cut into pieces are joined again: a lane's reads in order, each op's pieces in a row.
        out: dict[int, list[np.ndarray]] = {}
        for lane, ops in jobs.items():
            if lane in self.gone:
                continue
            got = iter(parts[lane])
            whole = []
            for kind, _, _, what in ops:
                if kind == MAIL_READ:
                    pieces = [next(got) for _ in range(max(1, -(-_size(what) // self._chunk)))]
                    whole.append(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])
            out[lane] = whole
        return out

    def read(self, mem: int, lane: int, addr: int, n: int) -> np.ndarray | None:
        """Bytes [addr, addr + n) of the lane's memory `mem`, or None where the lane has gone."""
        got = self.exchange({lane: [(MAIL_READ, mem, addr, n)]})
        return got[lane][0] if lane in got else None

    def release(self, releases: dict[int, Release]) -> None:
        """Releases these lanes: each runs its writes, takes its results and status, and goes on. Those
        gone, or that end their launch before they see it, are in `pending` until `settle`."""
        if self.ended:
            self.gone.update(releases)
        live = {lane: r for lane, r in releases.items() if lane not in self.gone}
        for lane, r in releases.items():
            self.pending[lane] = r
        writes = {lane: r.writes for lane, r in live.items() if r.writes}
        first = bool(writes) and len(self._batches(writes)) > 1
        if first:  # too large for one release: written first (a lane gone meanwhile has them all written again)
            self.exchange(writes)
            live = {lane: r for lane, r in live.items() if lane not in self.gone}
        if not live:
            return
        self._lay_out({lane: [] if first else r.writes for lane, r in live.items()})
        lanes = np.fromiter(live, dtype=np.int64, count=len(live))
        rs = list(live.values())
        nres = np.array([len(r.results) for r in rs], dtype=np.int64)
        if nres.max() > MAIL_ARGS:
            raise WasmGpuError(f"a host call's results take over {MAIL_ARGS} slots: not a mailbox's call")
        for k in range(int(nres.max())):  # results row by row, for the lanes that have a k-th
            has = np.flatnonzero(nres > k)
            self.head[MH_ARGS + k, lanes[has]] = np.array([rs[j].results[k] for j in has.tolist()], dtype=np.uint64)
        self.head[MH_NRES, lanes] = nres
        self.head[MH_STATUS, lanes] = np.array([r.status for r in rs], dtype=np.uint64)
        self.head[MH_TRAP, lanes] = np.array([r.trap for r in rs], dtype=np.uint64)
        for r, seq in zip(rs, self.head[MH_SEQ, lanes].tolist(), strict=True):
            r.seq = seq
        self.flags[lanes] = BOX_RELEASE
        if not first and any(r.writes for r in rs):  # the pool is theirs until they have copied what it holds
            self._busy = lanes

    def settle(self) -> dict[int, Release]:
        """After the launch: the releases that their lanes did not apply (the host applies them)."""
        left = {lane: r for lane, r in self.pending.items() if r.seq < 0 or int(self.head[MH_SEQ, lane]) == r.seq}
        self.pending = {}
        self.gone = set()
        self._busy = None
        return left


__all__ = ["MAILBOX_VAR", "MAIL_KEEP_TRAP", "MAX_INSTANCES", "Mailbox", "Release", "Serving", "mailbox_on",
           "wait_ns", "write_ops"]
