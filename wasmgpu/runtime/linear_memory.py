"""One linear memory of N instances, held in the layout its backend's VM reads (vm.h MemRef).

contiguous (the default): each instance's bytes together, uint8 [N, capacity].
interleaved (an option on the GPU): 4-byte words interleaved across instances, uint32 [capacity / 4, N], word
w of instance i at [w, i], so that converged lanes touching one address make one coalesced access.
Everything outside the VM reads and writes guest memory through this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def _as_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)


def _word_span(addr: int, n: int) -> tuple[int, int]:
    """The 4-byte words [w0, w1) that bytes [addr, addr + n) touch in the interleaved layout."""
    return addr // 4, -(-(addr + n) // 4)


@dataclass
class MemoryArray:
    backend: Any
    interleaved: bool
    data: Any

    @classmethod
    def zeros(cls, backend: Any, n: int, capacity: int) -> MemoryArray:
        xp = backend.xp
        if backend.memory_layout == "interleaved":
            return cls(backend, True, xp.zeros((capacity // 4, n), dtype=np.uint32))
        return cls(backend, False, xp.zeros((n, capacity), dtype=np.uint8))

    @property
    def capacity(self) -> int:
        """Bytes reserved per instance."""
        return self.data.shape[0] * 4 if self.interleaved else self.data.shape[1]

    @property
    def n(self) -> int:
        return self.data.shape[1] if self.interleaved else self.data.shape[0]

    def grown(self, capacity: int) -> MemoryArray:
        """A copy with more room per instance (raises the backend's error when it does not fit)."""
        new = MemoryArray.zeros(self.backend, self.n, capacity)
        if self.interleaved:
            new.data[: self.data.shape[0]] = self.data
        else:
            new.data[:, : self.capacity] = self.data
        return new

    def read(self, inst: int, addr: int, n: int) -> np.ndarray:
        """Instance `inst`'s bytes [addr, addr + n), copied to the host."""
        if n <= 0:
            return np.zeros(0, dtype=np.uint8)
        host = self.backend.to_host
        if not self.interleaved:
            return host(self.data[inst, addr:addr + n]).copy()
        w0, w1 = _word_span(addr, n)
        words = np.ascontiguousarray(host(self.data[w0:w1, inst]))
        lead = addr - 4 * w0
        return words.view(np.uint8)[lead:lead + n].copy()

    def heads(self, insts: np.ndarray, nbytes: int) -> np.ndarray:
        """The first `nbytes` bytes of each instance in `insts`, on the host in one transfer: uint8 [len, nbytes]."""
        xp = self.backend.xp
        sel = slice(None) if len(insts) == self.n else xp.asarray(insts)
        if not self.interleaved:
            return np.ascontiguousarray(self.backend.to_host(self.data[sel, :nbytes]))
        w = -(-nbytes // 4)
        words = self.backend.to_host(self.data[:w][:, sel])
        return np.ascontiguousarray(words.T).view(np.uint8)[:, :nbytes]

    def write(self, inst: int, addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        src = _as_bytes(data)
        n = len(src)
        if n == 0:
            return
        xp = self.backend.xp
        if not self.interleaved:
            self.data[inst, addr:addr + n] = xp.asarray(src)
            return
        w0, w1 = _word_span(addr, n)
        lead, tail = addr - 4 * w0, 4 * w1 - (addr + n)
        buf = np.empty((w1 - w0) * 4, dtype=np.uint8)
        if lead:  # the bytes of partly written words that stay
            buf[:4] = self.read(inst, 4 * w0, 4)
        if tail:
            buf[-4:] = self.read(inst, 4 * (w1 - 1), 4)
        buf[lead:lead + n] = src
        self.data[w0:w1, inst] = xp.asarray(buf.view(np.uint32))

    def write_all(self, addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """The same bytes at the same address in every instance (an active data segment)."""
        src = _as_bytes(data)
        n = len(src)
        if n == 0:
            return
        xp = self.backend.xp
        if not self.interleaved:
            self.data[:, addr:addr + n] = xp.asarray(src)[None, :]
            return
        w0, w1 = _word_span(addr, n)
        buf = np.zeros((w1 - w0) * 4, dtype=np.uint8)
        buf[addr - 4 * w0:addr - 4 * w0 + n] = src
        cover = np.zeros_like(buf, dtype=bool)
        cover[addr - 4 * w0:addr - 4 * w0 + n] = True
        edges = {}
        for w in {w0, w1 - 1}:  # partly covered words keep each instance's other bytes
            k = w - w0
            if not cover[4 * k:4 * k + 4].all():
                old = np.ascontiguousarray(self.backend.to_host(self.data[w])).view(np.uint8).reshape(-1, 4)
                merged = np.where(cover[4 * k:4 * k + 4], buf[4 * k:4 * k + 4], old)
                edges[w] = np.ascontiguousarray(merged).view(np.uint32).reshape(-1)
        self.data[w0:w1] = xp.asarray(buf.view(np.uint32))[:, None]
        for w, row in edges.items():
            self.data[w] = xp.asarray(row)
