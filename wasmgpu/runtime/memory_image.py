"""A large active data segment shared copy-on-write by every instance, on the CPU backend.

Writing a segment into each instance's memory costs its size per instance in time and resident memory
(a text-to-speech voice of 20 MB, in 100 instances: 2 GB). Where the memory is contiguous and only
reserved (backends.lazy_zeros), the segment's whole pages are instead mapped into every instance from
one memory file, private: the instances read the same physical pages until one writes to a page, which
then becomes its own copy. A guest sees exactly the bytes a copy would give it.

Each mapping splits the reservation around it, two more mappings per instance, and the kernel bounds a
process's mappings (vm.max_map_count): past a share of what is left, and for any instance whose mapping
fails, the bytes are copied as before.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np

from ..errors import ResourceLimitError
from .backends import MAP_NORESERVE

# A segment with fewer whole pages than this is copied: a mapping and its first-touch faults cost more.
MIN_BYTES = 256 << 10
# The share of the mappings the process may still make that images may take.
MAPS_SHARE = 0.5
_PAGE = mmap.PAGESIZE
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_FIXED = getattr(mmap, "MAP_FIXED", 0x10)  # Linux's value; the module lacks it before 3.13


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
    except (OSError, AttributeError):
        return None
    return libc


def _maps_left() -> int:
    """How many more mappings this process may make (0 where that is not known)."""
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
        with open("/proc/self/maps", "rb") as f:
            used = sum(1 for _ in f)
    except (OSError, ValueError):
        return 0
    return max(0, limit - used)


def _reservation(data: np.ndarray) -> bool:
    """Whether `data` is the whole of an anonymous private mapping (lazy_zeros), page-aligned."""
    base = data
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap) and data.ctypes.data % _PAGE == 0 and data.flags.c_contiguous


def map_segment(data: np.ndarray, addr: int, src: np.ndarray) -> tuple[int, int, list[int]]:
    """Maps the whole pages of `src` (to go at `addr` in every instance) into the instances of `data`
    (uint8 [1, N, capacity], a reservation): the byte range [lo, hi) of src so placed (empty where
    nothing was) and the instances whose mapping failed, which still need those bytes written."""
    n, cap = data.shape[1], data.shape[2]
    lo = -addr % _PAGE
    hi = lo + (len(src) - lo) // _PAGE * _PAGE if len(src) > lo else lo
    rows = list(range(n))
    if (hi - lo < MIN_BYTES or data.shape[0] != 1 or cap % _PAGE or not hasattr(os, "memfd_create")
            or not _reservation(data) or 2 * n > MAPS_SHARE * _maps_left()):
        return 0, 0, rows
    libc = _libc()
    if libc is None:
        return 0, 0, rows
    try:
        fd = os.memfd_create("wasmgpu-data-segment", os.MFD_CLOEXEC)
    except OSError:  # no descriptor or no memory file to be had: copied
        return 0, 0, rows
    try:
        view = memoryview(np.ascontiguousarray(src[lo:hi]))
        done = 0
        try:
            while done < len(view):
                done += os.write(fd, view[done:])
        except OSError:  # no room for the file (a tmpfs limit): copied
            return 0, 0, rows
        start = data.ctypes.data + addr + lo
        rw, fixed = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | _MAP_FIXED
        failed = [i for i in rows if libc.mmap(start + i * cap, hi - lo, rw, fixed, fd, 0) == _MAP_FAILED]
    finally:
        os.close(fd)  # the mappings keep the file
    # A failed fixed mapping may have left its range unmapped: reserved again, to be written over.
    anon = mmap.MAP_PRIVATE | _MAP_FIXED | mmap.MAP_ANONYMOUS | MAP_NORESERVE
    for i in failed:
        if libc.mmap(start + i * cap, hi - lo, rw, anon, -1, 0) == _MAP_FAILED:
            why = os.strerror(ctypes.get_errno())
            raise ResourceLimitError(f"could not map instance {i}'s memory again: {why}")
    return lo, hi, failed
