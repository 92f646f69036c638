"""The memory budget of a store (Store's max_memory): what its instances' objects are counted at, what a
lazy memory may grow to, and the address space lazy memories reserve."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..compiler.vm_abi import PAGE, S_FIELDS
from ..errors import ResourceLimitError
from .backends import Backend, format_bytes
from .linear_memory import MemoryArray

if TYPE_CHECKING:
    from .store import Store

# Every instance holds its state (P_STATE, fuel, a row of each per-object array) whatever it runs.
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


def stack_bytes(backend: Backend, stack_slots: int, max_depth: int) -> int:
    """Per instance: the stack a lazy backend commits at least, or the whole of it."""
    if not backend.lazy:
        return 8 * (stack_slots + max_depth)
    if backend.instance_minor:
        return 8 * (min(stack_slots, 64) + min(max_depth, 16))
    return min(8 * stack_slots, OS_PAGE) + min(8 * max_depth, OS_PAGE)


class MemoryBudget:
    """The bytes a store has counted against its limit, and the address space its lazy memories reserve.

    It reads the store's memories and their sizes (`mems`, `mem_pages`) where it needs them: a lazy
    memory's instances grow without asking the host, so what they take is known only from their sizes.
    """

    def __init__(self, store: Store, backend: Backend, n: int, limit: int, *,
                 reserve_per_memory: int = RESERVE_PER_MEMORY, reserve_per_store: int = RESERVE_PER_STORE) -> None:
        self.store = store
        self.backend = backend
        self.n = n
        self.limit = limit
        self.charged = 0  # bytes counted against the limit, besides lazy memories' growth
        self.reserved = 0  # address space the lazy memories reserve (up to reserve_per_store)
        self.reserve_per_memory = reserve_per_memory
        self.reserve_per_store = reserve_per_store

    def headroom(self) -> int:
        """Bytes of the limit not yet counted (lazy memories' growth included)."""
        return self.limit - self.charged - self.lazy_growth()

    def check(self, need: int, what: str) -> None:
        """Raise ResourceLimitError where `need` bytes more would overrun the limit: `what` says what asks,
        with `{need}` where the amount goes."""
        avail = self.headroom()
        if need > avail:
            raise ResourceLimitError(what.format(need=format_bytes(need)) +
                                     f"; {format_bytes(max(avail, 0))} available (--max-memory)",
                                     total=self.limit - avail + need, limit=self.limit)

    def charge(self, need: int, what: str) -> None:
        """Count `need` bytes against the limit, or raise ResourceLimitError (check)."""
        self.check(need, what)
        self.charged += need

    def lazy_growth(self) -> int:
        """Bytes lazy memories' instances have grown by (counted in full: a program grows memory to use it)."""
        if not self.backend.lazy:
            return 0
        total = 0
        for i, m in enumerate(self.store.mems):
            total += int(self.store.mem_pages[i + 1].sum(dtype=np.uint64)) - self.n * m.type.limits.min
        return total * PAGE

    def cap(self, cap: int, new_cap: int, unit: int) -> int:
        """new_cap, or less where N instances' growth from cap would overrun the budget."""
        fits = cap + max(self.headroom(), 0) // (self.n * unit)
        return min(new_cap, fits)

    def memory_allowances(self, mems: np.ndarray) -> None:
        """Lazy memories grow in place without asking the host, up to the max pages in their record: set it,
        per launch, to the largest size every instance may grow to with all of them together within the
        budget (the remaining headroom split evenly between the memories)."""
        store = self.store
        if not self.backend.lazy or not store.mems:
            return
        share = max(self.headroom(), 0) // len(store.mems) // PAGE
        for i, m in enumerate(store.mems):
            pages = self.backend.to_host(store.mem_pages[i + 1][:: 1 << m.data.shift])  # shared: one copy
            limit = m.max_pages
            if len(pages) * limit - int(pages.sum(dtype=np.uint64)) <= share:
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

    def reserve(self, low: int, high: int) -> MemoryArray:
        """A lazy memory of `low` to `high` pages per instance: as much of `high` as the store's address space
        allows, at least `low`."""
        n = self.n
        span = min(high, max(low, self.reserve_per_memory // (n * PAGE), 1))
        if self.reserved + n * span * PAGE > self.reserve_per_store:
            span = max(low, (self.reserve_per_store - self.reserved) // (n * PAGE))
        # Where the process's address space (ulimit -v) refuses it, sizes halfway down to `low` are tried:
        # reserving only what was asked would make each later grow of a page move every instance's memory.
        while True:
            try:
                data = MemoryArray.zeros(self.backend, n, span * PAGE, self.store.memory_layout)
                break
            except ResourceLimitError:
                if span <= low:
                    raise
                span = max(low, (span + low) // 2)
        self.reserved += n * span * PAGE
        return data

    def release(self, data: MemoryArray) -> None:
        """A lazy memory's reservation given back (it moved to a larger one)."""
        self.reserved -= self.n * data.capacity
