"""One linear memory of N instances, held in the layout its backend's VM reads (vm.h MemRef).

Every layout is uint8 [chunks, N, chunk]: chunk k of instance i at [k, i], so that bytes [k * chunk,
(k + 1) * chunk) of one instance lie together.
contiguous (the default): one chunk of the whole capacity, so each instance's bytes lie together.
interleaved (an option on the GPU): 4-byte chunks (words) interleaved across instances, so that converged
lanes touching one address make one coalesced access.
Everything outside the VM reads and writes guest memory through this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .memory_image import map_segment

CHUNK_BYTES = {"interleaved": 4}
# A write of a round of host calls this large or smaller joins the round's one transfer (an index per byte).
SMALL_WRITE = 64
# A round's reads of this many bytes or fewer in all have their byte indices made on the host (8 bytes of
# index a byte, sent in one transfer); larger ones make them where the memory is.
SMALL_READ = 1 << 16


def _as_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)


@dataclass
class MemoryArray:
    backend: Any
    layout: str
    data: Any
    # log2 of the instances (lanes: threads of one process) that share each copy: an instance's index is
    # shifted right by it everywhere below.
    shift: int = 0

    @classmethod
    def zeros(cls, backend: Any, n: int, capacity: int, layout: str | None = None) -> MemoryArray:
        """Room for `capacity` bytes per instance (rounded up to whole chunks), in `layout` (None: the
        backend's). On a lazy backend (the CPU) this only reserves address space: pages are committed when
        an instance first touches them, so a memory reserves its largest size up front and grows in place."""
        layout = layout or backend.start_layout
        chunk = CHUNK_BYTES.get(layout, capacity)
        chunks = -(-capacity // chunk) if chunk else 1
        return cls(backend, layout, backend.zeros((chunks, n, chunk), np.uint8))

    @property
    def chunk(self) -> int:
        return self.data.shape[2]

    @property
    def capacity(self) -> int:
        """Bytes reserved per instance."""
        return self.data.shape[0] * self.data.shape[2]

    @property
    def n(self) -> int:
        return self.data.shape[1]

    def grown(self, capacity: int) -> MemoryArray:
        """A copy with more room per instance (ResourceLimitError when it does not fit)."""
        new = MemoryArray.zeros(self.backend, self.n, capacity, self.layout)
        new.shift = self.shift
        if self.layout == "contiguous":
            new.data[:, :, : self.capacity] = self.data
        else:
            new.data[: self.data.shape[0]] = self.data
        return new

    def copy_used(self, old: MemoryArray, used: np.ndarray) -> None:
        """Copy each instance's first used[i] bytes of `old` (of the same layout, no larger) here: only what
        is in use, so that a lazily committed memory commits no more pages than before."""
        used = self.backend.to_host(used)
        top = int(used.max(initial=0))
        if self.layout == "contiguous" and isinstance(self.data, np.ndarray):
            for i in np.nonzero(used)[0].tolist():
                self.data[0, i, : used[i]] = old.data[0, i, : used[i]]
        elif self.layout == "contiguous":  # on a GPU one copy, not one per instance: up to the largest in use
            self.data[0, :, :top] = old.data[0, :, :top]
        else:
            chunks = -(-top // self.chunk)
            self.data[:chunks] = old.data[:chunks]

    def relayout(self, layout: str, used: int) -> MemoryArray:
        """A copy in `layout` holding each instance's first `used` bytes (the rest zero): a store moving to
        the other layout between launches (tuning.LayoutTrial). Only what is in use moves, so a lazily
        committed memory commits no more than before."""
        if layout == self.layout:
            return self
        new = MemoryArray.zeros(self.backend, self.n, self.capacity, layout)
        new.shift = self.shift
        used = min(used, self.capacity, new.capacity)
        n = self.n
        if self.layout == "contiguous":  # to words: [1, n, cap] -> [cap / 4, n, 4]
            c = new.chunk
            whole = used // c * c
            new.data[: whole // c] = self.data[0, :, :whole].reshape(n, whole // c, c).transpose(1, 0, 2)
            if used > whole:
                new.data[whole // c, :, : used - whole] = self.data[0, :, whole:used]
        elif layout == "contiguous":  # from words
            c = self.chunk
            chunks = -(-used // c)
            new.data[0, :, : chunks * c] = self.data[:chunks].transpose(1, 0, 2).reshape(n, chunks * c)
            new.data[0, :, used: chunks * c] = 0  # the last word's bytes past `used`
        else:
            raise ValueError(f"no relayout from {self.layout} to {layout}")
        return new

    def _span(self, addr: int, n: int) -> tuple[int, int, int]:
        """The chunks [c0, c1) that bytes [addr, addr + n) touch, and addr's offset in chunk c0."""
        c = self.chunk
        return addr // c, -(-(addr + n) // c), addr % c

    def read(self, inst: int, addr: int, n: int) -> np.ndarray:
        """Instance `inst`'s bytes [addr, addr + n), copied to the host."""
        if n <= 0:
            return np.zeros(0, dtype=np.uint8)
        inst >>= self.shift
        host = self.backend.to_host
        c0, c1, lead = self._span(addr, n)
        if c1 - c0 == 1:
            return np.array(host(self.data[c0, inst, lead:lead + n]))
        return np.ascontiguousarray(host(self.data[c0:c1, inst])).reshape(-1)[lead:lead + n].copy()

    def read_many(self, insts: Sequence[int], addrs: Sequence[int], lens: Sequence[int]) -> list[np.ndarray]:
        """Each instance's bytes [addr, addr + len), on the host in one transfer: the byte indices are made
        where the memory is, from one (instance, address, length) row per range."""
        xp = self.backend.xp
        n = np.asarray(lens, dtype=np.int64)
        ends = np.cumsum(n)
        total = int(ends[-1]) if len(ends) else 0
        if total == 0:
            return [np.zeros(0, dtype=np.uint8) for _ in n]
        c = self.chunk
        if total <= SMALL_READ:  # the indices made here: one transfer of them instead of four steps there
            starts = ends - n
            at = np.repeat(np.asarray(addrs, dtype=np.int64) - starts, n) + np.arange(total, dtype=np.int64)
            inst_ = np.repeat(np.asarray(insts, dtype=np.int64) >> self.shift, n)
            flat = ((at // c) * self.n + inst_) * c + at % c
            got = np.asarray(self.backend.to_host(self.data.reshape(-1)[xp.asarray(flat)]))
            return np.split(got, ends[:-1])
        pos = xp.arange(total, dtype=xp.int64)
        seg = xp.searchsorted(xp.asarray(ends), pos, side="right")
        at = xp.asarray(np.asarray(addrs, dtype=np.int64) - (ends - n))[seg] + pos
        inst = xp.asarray(np.asarray(insts, dtype=np.int64) >> self.shift)[seg]
        got = np.asarray(self.backend.to_host(self.data.reshape(-1)[((at // c) * self.n + inst) * c + at % c]))
        return np.split(got, ends[:-1])

    def heads(self, insts: np.ndarray, nbytes: int) -> np.ndarray:
        """The first `nbytes` bytes of each instance in `insts`, on the host in one transfer: uint8 [len, nbytes]."""
        xp = self.backend.xp
        if self.shift:
            insts = np.asarray(insts) >> self.shift
        sel = slice(None) if len(insts) == self.n and not self.shift else xp.asarray(insts)
        c1 = -(-nbytes // self.chunk) if self.chunk else 0
        if c1 == 1:
            return np.ascontiguousarray(self.backend.to_host(self.data[0][sel, :nbytes]))
        chunks = self.backend.to_host(self.data[:c1][:, sel])
        return np.ascontiguousarray(chunks.transpose(1, 0, 2)).reshape(len(insts), -1)[:, :nbytes]

    def _put(self, inst: Any, addr: int, src: np.ndarray) -> None:
        """src at addr in instance `inst` (an index, or every instance for slice(None))."""
        xp = self.backend.xp
        n = len(src)
        if n == 0:
            return
        if not isinstance(inst, slice):
            inst = inst >> self.shift
        c0, c1, lead = self._span(addr, n)
        c = self.chunk
        first = min(n, c - lead)
        self.data[c0, inst, lead:lead + first] = xp.asarray(src[:first])
        whole = (n - first) // c
        if whole:
            body = xp.asarray(src[first:first + whole * c]).reshape(whole, c)
            self.data[c0 + 1:c0 + 1 + whole, inst] = body if not isinstance(inst, slice) else body[:, None, :]
        rest = src[first + whole * c:]
        if len(rest):
            self.data[c1 - 1, inst, :len(rest)] = xp.asarray(rest)

    def write(self, inst: int, addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        self._put(inst, addr, _as_bytes(data))

    def write_all(self, addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """The same bytes at the same address in every instance (an active data segment); a large one's
        whole pages shared copy-on-write where the memory is only reserved (memory_image.py)."""
        src = _as_bytes(data)
        if self.backend.lazy and self.layout == "contiguous" and isinstance(self.data, np.ndarray):
            lo, hi, failed = map_segment(self.data, addr, src)
            if hi > lo:
                self._put(slice(None), addr, src[:lo])
                self._put(slice(None), addr + hi, src[hi:])
                for row in failed:
                    self._put(slice(row, row + 1), addr + lo, src[lo:hi])
                return
        self._put(slice(None), addr, src)

    def write_many(self, insts: list[int], addrs: list[int], payloads: list[bytes]) -> None:
        """Each payload at its address in its instance: a round of host calls' writes. The small ones (the
        many errnos, counts and descriptors) go in one transfer; a large one is its own transfer, which
        costs less than an index per byte. Writes that overlap go one by one, in order, so the last one
        wins as it would have."""
        if not payloads:
            return
        inst = np.asarray(insts, dtype=np.int64) >> self.shift
        addr = np.asarray(addrs, dtype=np.int64)
        lens = np.array([len(p) for p in payloads], dtype=np.int64)
        order = np.lexsort((addr, inst))
        i, a, n = inst[order], addr[order], lens[order]
        if np.any((i[1:] == i[:-1]) & (a[1:] < a[:-1] + n[:-1])):
            for k in range(len(payloads)):
                self.write(insts[k], addrs[k], payloads[k])
            return
        small = lens <= SMALL_WRITE
        for k in np.flatnonzero(~small).tolist():
            self.write(insts[k], addrs[k], payloads[k])
        if not small.any():
            return
        ls = lens[small]
        total = int(ls.sum())
        if total == 0:
            return
        ends = np.cumsum(ls)
        at = np.repeat(addr[small], ls) + np.arange(total) - np.repeat(ends - ls, ls)
        c = self.chunk
        flat = ((at // c) * self.n + np.repeat(inst[small], ls)) * c + at % c
        data = b"".join(payloads[k] for k in np.flatnonzero(small).tolist())
        xp = self.backend.xp
        self.data.reshape(-1)[xp.asarray(flat)] = xp.asarray(np.frombuffer(data, dtype=np.uint8))
