"""Preopened files served on the device (vm/wasi_files.h): a read-only snapshot of the preopens' regular
files, taken when the run starts, and each instance's descriptor numbering kept on the device.

The device serves fd_prestat_get/fd_prestat_dir_name, fd_fdstat_get and fd_readdir of a preopen,
path_filestat_get and a read-only path_open of a snapshot file (without flags) or directory, fd_read/fd_pread/
fd_seek/fd_tell/fd_filestat_get/fd_fdstat_get/fd_close on a file it opened and fd_readdir/fd_filestat_get/
fd_fdstat_get/fd_close on a directory it opened.
Anything else goes to the host, and before the host serves a call that could see or change an instance's
descriptors it takes them over (demote): the device's open files are opened again by the host at the same
numbers and positions, the numbering continues where the device left it, and the device serves none of
that instance's files again. A call that could change a directory also demotes every instance sharing a root with the
caller, so no instance reads a snapshot older than a change made through WASI.

The snapshot is read with descriptors relative to each preopen (O_NOFOLLOW), as path resolution is, so it
holds only what a guest could open there; symbolic links, special files, files over FILE_MAX and whatever
past ENTRIES_MAX, ROOT_MAX or the byte budget is not in it, and the host serves those paths (a
directory's own files are read before the directories below it, so the budget goes to those nearest the root). Files
changed on the host by another process during the run are seen as they were at the start.
"""

from __future__ import annotations

import ctypes
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..compiler.vm_abi import (
    DF_NO_FD,
    DF_NO_ROOT,
    DF_NOT_DIR,
    DF_OV_APPEND,
    DF_OV_BIT,
    DF_OV_FLAGS,
    DF_OV_NAME_CAP,
    DF_OV_RDONLY,
    DF_OV_READ,
    DF_OV_SLOTS,
    DF_PATH_MAX,
    DF_PREOPENS,
    DF_QUEUE,
    DF_SLOTS,
    DI_FIELDS,
    FI_FIELDS,
    FM_FIELDS,
    FM_NEXT,
    FM_NFREE,
    FM_OV_COUNT,
    FM_OV_USED,
    NT_FIELDS,
    OV_DIR,
    OV_GONE,
    OV_REPLACE,
    S_STATUS,
    STATUS,
    W_DIR_BYTES,
    W_DIR_FDFLAGS,
    W_DIR_INFO,
    W_DIR_OFFS,
    W_FD_FILE,
    W_FD_FREE,
    W_FD_META,
    W_FD_NUM,
    W_FD_POS,
    W_FDFLAGS_APPEND,
    W_FDSTATS,
    W_FILE_DATA,
    W_FILE_INFO,
    W_FILE_STAT,
    W_NAME_BYTES,
    W_NAME_MASK,
    W_NAMES,
    W_OFLAGS_CREAT,
    W_OFLAGS_EXCL,
    W_OFLAGS_TRUNC,
    W_OPEN_DIRECTORY,
    W_OV_BUF,
    W_OV_CAP,
    W_OV_DATA,
    W_OV_HASH,
    W_OV_NAME,
    W_OV_NAMES,
    W_PRE_NAME,
    W_PRE_ROOT,
    W_READ_RIGHTS,
    W_ROOT_DIR,
    W_ROOT_SHARED,
    W_WRITE_RIGHTS,
    WF_FILES,
    c_definitions,
)
from ..runtime.backends import host_threads
from ..runtime.linear_memory import MemoryArray
from ..vm.build import BuildError, host_library
from . import abi
from .context import WasiContext
from .fds import (
    DIR_RIGHTS,
    FILE_RIGHTS_READ,
    PREOPEN_RIGHTS_BASE,
    PREOPEN_RIGHTS_INHERITING,
    DirEntry,
    Entry,
    FileEntry,
    SnapshotFile,
)
from .memory import WasiError
from .preview1 import open_directory, open_read_only, opened_rights

FILE_MAX = 4 << 20  # a larger file is read by the host
ENTRIES_MAX = 4096  # files per preopen in the snapshot
# Bytes per preopen: a program given a large directory (`--dir .`) should not wait for all of it to be read.
ROOT_MAX = 64 << 20
DEPTH_MAX = 16
HOST_BUDGET = 1 << 30  # snapshot bytes on a backend without device memory figures
# The buffer an instance's new files take on the device (and their names, DF_OV_NAME_CAP), within OV_TOTAL
# and a sixteenth of the device's free memory for the batch: fewer than 4 KiB each, and the host makes them.
# A write that does not fit hands the instance's files to the host, which serves every file call of it after
# that (a launch each): room for an output of a few hundred KiB (a WAV file) keeps such a program on the
# device in batches of up to about a thousand.
OV_BUF_MAX = 1 << 20
OV_TOTAL = 1 << 30
# Threads making them on the host: creating files from several threads was 3x slower than from one on both
# file systems measured (bench/NOTES.md), even in separate directories.
MAKE_THREADS = 1

# Calls that never see a descriptor, and fd_* calls that touch only their first argument's descriptor.
NO_FDS = frozenset({"args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get",
                    "clock_time_get", "random_get", "proc_exit", "proc_raise", "sched_yield"})
# (fd_fdstat_set_flags and _rights are not: the device answers a preopen's fdstat while it serves files.)
ONE_FD = frozenset({"fd_advise", "fd_allocate", "fd_datasync", "fd_fdstat_get", "fd_filestat_get",
                    "fd_filestat_set_size", "fd_filestat_set_times",
                    "fd_pread", "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir",
                    "fd_seek", "fd_sync", "fd_tell", "fd_write"})
# Calls that may change what a directory holds (path_open only with the flags or rights below).
CHANGES = frozenset({"path_create_directory", "path_filestat_set_times", "path_link", "path_remove_directory",
                     "path_rename", "path_symlink", "path_unlink_file", "fd_filestat_set_size",
                     "fd_filestat_set_times", "fd_allocate", "fd_pwrite", "fd_write"})
OPEN_CHANGES = abi.OFLAGS_CREAT | abi.OFLAGS_TRUNC | abi.OFLAGS_EXCL


@dataclass
class SnapFile:
    path: bytes
    data: bytes
    stat: bytes  # its WASI filestat record when read
    root: int = 0  # the scanned root it was found under
    listing: list[tuple[bytes, int, int]] | None = None  # a directory's entries: (name, inode, filetype)


_HOST_NATIVE: ctypes.CDLL | None = None


# The parts of a snapshot's tables, in scan.cpp's order (its enum TablePart): what each W_* field points to.
TABLE_PARTS = ("DATA", "INFO", "STATS", "DIR_INFO", "DIR_BYTES", "DIR_OFFS", "ROOT_DIR", "NAMES", "TABLE")


def host_native() -> ctypes.CDLL:
    """scan.cpp, built once: the snapshot scanner and its tables, the maker of files, the output records
    joiner."""
    global _HOST_NATIVE
    if _HOST_NATIVE is None:
        parts = ", ".join(f"TP_{p}" for p in TABLE_PARTS)
        source = "\n".join([*c_definitions(), f"enum TablePart {{ {parts}, TP_PARTS }};",
                            (Path(__file__).resolve().parent / "scan.cpp").read_text()])
        lib = host_library(source, ["-O2", "-std=c++17", "-shared", "-fPIC", "-pthread"], "the WASI host helpers",
                           "WASI on the device (its files and output) needs", prefix="scan")
        u64p, i64, ptr = ctypes.POINTER(ctypes.c_uint64), ctypes.c_int64, ctypes.c_void_p
        lib.wg_snapshot.argtypes = [ctypes.POINTER(ctypes.c_char_p), u64p, u64p, i64, i64, i64, i64, i64, i64, i64,
                                    i64]
        lib.wg_snapshot.restype = ptr
        lib.wg_tables_part.argtypes = [ptr, i64, u64p]
        lib.wg_tables_part.restype = ptr
        lib.wg_tables_free.argtypes = [ptr]
        lib.wg_join_records.argtypes = [ptr, i64, ctypes.c_uint32, ptr]
        lib.wg_join_records.restype = i64
        lib.wg_make.argtypes = [i64, ctypes.POINTER(ctypes.c_char_p), ptr, ptr, ptr, ptr, ptr, i64, ptr, i64, ptr, ptr,
                                ptr, ptr, ptr, ptr, i64, ptr, ptr]
        lib.wg_make.restype = None
        _HOST_NATIVE = lib
    return _HOST_NATIVE


@dataclass
class Snapshot:
    """The regular files and directory listings under some preopens (the roots, numbered in order), as the
    device's tables hold them (vm_abi.py W_FILE_INFO ... W_NAMES)."""

    count: int  # files and directories; each table below has a row of zeros where it would be empty
    data: np.ndarray  # u8: the files' bytes, each distinct content once, then a NUL
    info: np.ndarray  # u64 [files][FI_FIELDS]
    stats: np.ndarray  # u8 [files * 64]: each file's WASI filestat at the snapshot
    dir_info: np.ndarray  # u64 [dirs][DI_FIELDS]
    dir_bytes: np.ndarray  # u8: the listings' dirent records, then a NUL
    dir_offs: np.ndarray  # u64: where each record starts, and each listing's end
    root_dir: np.ndarray  # u32 per root: its own directory's file (DF_NO_FD: not listed)
    names: bytes  # the paths' bytes, each distinct path once
    table: np.ndarray  # u64 [slots][NT_FIELDS]: (root, path) -> file

    def __len__(self) -> int:
        return self.count

    def file(self, k: int) -> SnapFile:
        """File `k`: a regular file's bytes, or a directory's listing (without "." and "..")."""
        at, size, listing, root, name = (int(v) for v in self.info[k])
        path = self.names[name >> 16:(name >> 16) + (name & 0xFFFF)]
        stat = self.stats[64 * k:64 * k + 64].tobytes()
        if listing == DF_NOT_DIR:
            return SnapFile(path, self.data[at:at + size].tobytes(), stat, root)
        start, count, first = (int(v) for v in self.dir_info[listing])
        entries = []
        for r in range(first + 2, first + count):
            _, ino, nlen, ftype = abi.DIRENT.unpack_from(self.dir_bytes, int(self.dir_offs[r]))
            at = int(self.dir_offs[r]) + abi.DIRENT.size
            entries.append((self.dir_bytes[at:at + nlen].tobytes(), ino, ftype))
        return SnapFile(path, b"", stat, root, entries)

    def files(self) -> list[SnapFile]:
        return [self.file(k) for k in range(len(self))]


def snapshot(entries: Sequence[DirEntry], budget: int) -> Snapshot:
    """The regular files under each preopen (scan.cpp: read in native threads through descriptors opened
    below it, no link followed, a root swapped since its context was made skipped), within `budget` bytes,
    and the device's tables of them."""
    lib, n = host_native(), len(entries)
    roots = (ctypes.c_char_p * n)(*(os.fsencode(e.root) for e in entries))
    dev = (ctypes.c_uint64 * n)(*(e.identity[0] for e in entries))
    ino = (ctypes.c_uint64 * n)(*(e.identity[1] for e in entries))
    handle = lib.wg_snapshot(roots, dev, ino, n, min(32, 2 * host_threads()), FILE_MAX, ENTRIES_MAX, DEPTH_MAX,
                             DF_PATH_MAX, ROOT_MAX, budget)
    if not handle:
        raise MemoryError("no host memory for the file snapshot's tables")
    try:
        got = []
        for k in range(len(TABLE_PARTS)):
            size = ctypes.c_uint64()
            at = lib.wg_tables_part(handle, k, ctypes.byref(size))
            got.append(ctypes.string_at(at, size.value) if size.value else b"")
    finally:
        lib.wg_tables_free(handle)
    data, info, stats, dir_info, dir_bytes, dir_offs, root_dir, names, table = got
    u64 = np.dtype("<u8")
    return Snapshot(
        count=len(stats) // 64,
        data=np.frombuffer(data + b"\0", dtype=np.uint8),
        info=np.frombuffer(info, dtype=u64).reshape(-1, FI_FIELDS) if info
        else np.array([(0, 0, DF_NOT_DIR, 0, 0)], dtype=np.uint64),
        stats=np.frombuffer(stats or bytes(64), dtype=np.uint8),
        dir_info=np.frombuffer(dir_info, dtype=u64).reshape(-1, DI_FIELDS) if dir_info
        else np.zeros((1, DI_FIELDS), dtype=np.uint64),
        dir_bytes=np.frombuffer(dir_bytes + b"\0", dtype=np.uint8),
        dir_offs=np.frombuffer(dir_offs, dtype=u64) if dir_offs else np.zeros(1, dtype=np.uint64),
        root_dir=np.frombuffer(root_dir, dtype=np.uint32),
        names=names,
        table=np.frombuffer(table, dtype=u64).reshape(-1, NT_FIELDS))


# What fd_fdstat_get gives for a preopen that nothing changed (DirEntry's flags and rights at creation).
PREOPEN_FDSTAT = abi.FDSTAT.pack(abi.FILETYPE_DIRECTORY, 0, PREOPEN_RIGHTS_BASE, PREOPEN_RIGHTS_INHERITING)


def dir_fdstat(flags: int) -> bytes:
    """What fd_fdstat_get gives for a directory that path_open opened with these fdflags (preview1.path_open)."""
    return abi.FDSTAT.pack(abi.FILETYPE_DIRECTORY, flags & abi.FDFLAGS_NONBLOCK, DIR_RIGHTS, DIR_RIGHTS)


def eligible(ctx: WasiContext) -> list[DirEntry] | None:
    """The preopens of a context whose descriptors are still the initial ones (stdio, then preopens from 3),
    when the device can keep its numbering; else None."""
    fds = ctx.fds
    if fds.free or fds.next != len(fds.entries) or fds.next < 3 or fds.next - 3 > DF_PREOPENS:
        return None
    pre = [fds.entries.get(fd) for fd in range(3, fds.next)]
    if not all(isinstance(e, DirEntry) and e.name is not None and e.fd is None and e.fdstat() == PREOPEN_FDSTAT
               for e in pre):
        return None
    return pre  # type: ignore[return-value]


@dataclass
class DeviceFiles:
    """The snapshot and the descriptor state on the device, and the host's side of giving them back."""

    store: object
    contexts: Sequence[WasiContext]
    flags: np.ndarray  # FastPaths' host copy of the per-instance WF_* bits
    push_flags: object  # (instances) -> None: those instances' flags changed (FastPaths copies them to the device)
    set_field: object  # (field, value) -> None: a field of the device block
    snapshot: Snapshot | None = None
    preopens: list[int] = field(default_factory=list)  # per instance: how many preopens the device knows
    roots_of: list[tuple[str, ...]] = field(default_factory=list)  # per instance: its preopens' host paths
    # root path -> the instances whose preopens are it, inside it or around it, where there are two or more
    sharers: dict[str, list[int]] = field(default_factory=dict)
    nested: set[str] = field(default_factory=set)  # roots with another root inside them or around them
    root_entries: list[DirEntry] = field(default_factory=list)  # per scanned root: a preopen reaching it
    ov_cap: int = 0  # bytes of W_OV_BUF per instance: 0 where nothing is made on the device
    # The lanes past the first `served` are spares for children, whose files the host serves (processes.py).
    served: int | None = None

    def build(self, budget: int | None = None) -> None:
        s = self.store
        xp, n = s.xp, s.n  # type: ignore[attr-defined]
        if budget is None:
            free = s.backend.device_memory()  # type: ignore[attr-defined]
            budget = HOST_BUDGET if free is None else min(2 << 30, free // 4)
        roots: dict[str, int] = {}
        first: list[DirEntry] = []
        served = n if self.served is None else self.served
        per_instance: list[list[DirEntry] | None] = [eligible(c) if i < served else None
                                                     for i, c in enumerate(self.contexts)]
        for pre in per_instance:
            for e in pre or ():
                if e.root not in roots:
                    roots[e.root] = len(roots)
                    first.append(e)
        self.root_entries = first
        try:
            snap = self.snapshot = snapshot(first, budget)
        except (BuildError, MemoryError):
            return  # no C++ compiler, or no memory for the tables: the host serves every file call, as it can
        name_bytes = bytearray(snap.names)

        def intern(raw: bytes) -> int:
            at = len(name_bytes)
            name_bytes.extend(raw)
            return at

        # Per instance, its preopens' roots and guest names (rows made at the end: an element set at a time
        # cost more than the loop).
        root_rows = [[DF_NO_ROOT] * DF_PREOPENS for _ in range(n)]
        name_rows = [[0] * DF_PREOPENS for _ in range(n)]
        named: dict[str, int] = {}  # a guest name -> its W_PRE_NAME word
        for i, pre in enumerate(per_instance):
            self.preopens.append(-1)
            if pre is None or any(len(e.name.encode()) > 0xFFFF for e in pre):  # type: ignore[union-attr]
                continue
            for k, e in enumerate(pre):
                word = named.get(e.name)  # type: ignore[arg-type]
                if word is None:
                    guest = e.name.encode()  # type: ignore[union-attr]
                    word = named[e.name] = intern(guest) << 16 | len(guest)  # type: ignore[index]
                root_rows[i][k] = roots[e.root]
                name_rows[i][k] = word
            self.preopens[i] = len(pre)
        pre_root = np.ascontiguousarray(np.array(root_rows, dtype=np.uint32).reshape(n, DF_PREOPENS).T)
        pre_name = np.ascontiguousarray(np.array(name_rows, dtype=np.uint64).reshape(n, DF_PREOPENS).T)
        known = np.array(self.preopens, dtype=np.int64)
        on = known >= 0
        meta = np.zeros((FM_FIELDS, n), dtype=np.uint32)
        meta[FM_NEXT, on] = 3 + known[on]
        self.flags[on] |= WF_FILES
        self._find_sharers(per_instance)

        def put(field_: int, arr: np.ndarray) -> object:
            dev = xp.asarray(arr)
            self.set_field(field_, s.backend.ptr(dev))  # type: ignore[attr-defined,operator]
            return dev

        self.keep = [
            put(W_FILE_DATA, snap.data),
            put(W_FILE_INFO, snap.info),
            put(W_DIR_INFO, snap.dir_info),
            put(W_DIR_BYTES, snap.dir_bytes),
            put(W_DIR_OFFS, snap.dir_offs),
            put(W_ROOT_DIR, snap.root_dir),
            put(W_FILE_STAT, snap.stats),
            put(W_NAMES, snap.table),
            put(W_NAME_BYTES, np.frombuffer(bytes(name_bytes) + b"\0", dtype=np.uint8)),
            put(W_PRE_ROOT, pre_root),
            put(W_PRE_NAME, pre_name),
        ]
        self.meta = put(W_FD_META, meta)
        self.free = put(W_FD_FREE, np.zeros((DF_QUEUE, n), dtype=np.uint32))
        self.num = put(W_FD_NUM, np.full((DF_SLOTS, n), DF_NO_FD, dtype=np.uint32))
        self.file = put(W_FD_FILE, np.zeros((DF_SLOTS, n), dtype=np.uint32))
        self.pos = put(W_FD_POS, np.zeros((DF_SLOTS, n), dtype=np.uint64))
        self.set_field(W_NAME_MASK, len(snap.table) - 1)  # type: ignore[operator]
        file_fdstat = SnapshotFile(b"", b"", 0, FILE_RIGHTS_READ).fdstat()  # a read-only file, as the host has it
        fdstats = file_fdstat + PREOPEN_FDSTAT + dir_fdstat(0) + dir_fdstat(abi.FDFLAGS_NONBLOCK)
        for flags in (0, abi.FDFLAGS_APPEND):  # a file made here, opened to write, or to read and write
            for read in (False, True):
                rights = opened_rights(read, True)
                fdstats += abi.FDSTAT.pack(abi.FILETYPE_REGULAR_FILE, flags, rights, rights)
        self.keep.append(put(W_FDSTATS, np.frombuffer(fdstats, dtype=np.uint8)))
        self.set_field(W_WRITE_RIGHTS, abi.WRITE_RIGHTS)  # type: ignore[operator]
        self.set_field(W_OPEN_DIRECTORY, abi.OFLAGS_DIRECTORY)  # type: ignore[operator]
        self.set_field(W_DIR_FDFLAGS, abi.FDFLAGS_NONBLOCK)  # type: ignore[operator]
        self._overlay(roots, put)
        self.push_flags(np.flatnonzero(self.flags & WF_FILES))  # type: ignore[operator]

    def _overlay(self, roots: dict[str, int], put: object) -> None:
        """The device's room for the files and directories an instance makes (W_OV_*)."""
        s = self.store
        n, backend = s.n, s.backend  # type: ignore[attr-defined]
        free = backend.device_memory()
        total = OV_TOTAL if free is None else min(OV_TOTAL, free // 16)
        cap = min(OV_BUF_MAX, total // n - DF_OV_NAME_CAP) & ~4095
        # With spares, nothing is made on the device: a child (served by the host) sees its parent's files.
        self.ov_cap = cap if cap >= 4096 and self.served in (None, n) else 0
        # A root another instance reaches, or one this instance reaches by another preopen too (nested, or
        # the same directory by another path): what is made there must be seen through the other ways in.
        shared = np.zeros(max(1, len(roots)), dtype=np.uint32)
        same = Counter(e.identity for e in self.root_entries)
        for path, k in roots.items():
            shared[k] = path in self.sharers or path in self.nested or same[self.root_entries[k].identity] > 1
        self.keep.append(put(W_ROOT_SHARED, shared))  # type: ignore[operator]
        self.set_field(W_OFLAGS_CREAT, abi.OFLAGS_CREAT)  # type: ignore[operator]
        self.set_field(W_OFLAGS_TRUNC, abi.OFLAGS_TRUNC)  # type: ignore[operator]
        self.set_field(W_OFLAGS_EXCL, abi.OFLAGS_EXCL)  # type: ignore[operator]
        self.set_field(W_READ_RIGHTS, abi.R_FD_READ | abi.R_FD_READDIR)  # type: ignore[operator]
        self.set_field(W_FDFLAGS_APPEND, abi.FDFLAGS_APPEND)  # type: ignore[operator]
        self.set_field(W_OV_CAP, self.ov_cap)  # type: ignore[operator]
        if not self.ov_cap:
            return
        self.ov_hash = put(W_OV_HASH, np.zeros((DF_OV_SLOTS, n), dtype=np.uint64))  # type: ignore[operator]
        self.ov_name = put(W_OV_NAME, np.zeros((DF_OV_SLOTS, n), dtype=np.uint64))  # type: ignore[operator]
        self.ov_data = put(W_OV_DATA, np.zeros((DF_OV_SLOTS, n), dtype=np.uint64))  # type: ignore[operator]
        self.ov_names = MemoryArray.zeros(backend, n, DF_OV_NAME_CAP, s.memory_layout)  # type: ignore[attr-defined]
        self.ov_buf = MemoryArray.zeros(backend, n, self.ov_cap, s.memory_layout)  # type: ignore[attr-defined]
        self._point_overlay()

    def _point_overlay(self) -> None:
        ptr = self.store.backend.ptr  # type: ignore[attr-defined]
        self.set_field(W_OV_NAMES, ptr(self.ov_names.data))  # type: ignore[operator]
        self.set_field(W_OV_BUF, ptr(self.ov_buf.data))  # type: ignore[operator]

    def relayout(self, layout: str) -> Callable[[], None]:
        """Copies of the overlay's buffers in the store's next memory layout, and what puts them in place
        (Store.relayout)."""
        if not self.ov_cap:
            return lambda: None
        names = self.ov_names.relayout(layout, self.ov_names.capacity)
        buf = self.ov_buf.relayout(layout, self.ov_buf.capacity)

        def put() -> None:
            self.ov_names, self.ov_buf = names, buf
            self._point_overlay()

        return put

    def make_all(self) -> None:
        """What every instance made here, made on the host: the run is over, ended instances or not (an
        interrupt, a deadline), as their host calls would have left it."""
        made = self._made()
        if len(made):
            self.demote(made)

    def settle(self) -> None:
        """After a launch: the instances that made files or directories here and have ended get them made on
        the host now, as a host call would have them (demote)."""
        made = self._made()
        if not len(made):
            return
        s = self.store
        status = s.backend.to_host(s.state[S_STATUS, s.xp.asarray(made)])  # type: ignore[attr-defined]
        done = made[(status != STATUS["RUNNING"]) & (status != STATUS["HOSTCALL"])]
        if len(done):
            self.demote(done)

    def _made(self) -> np.ndarray:
        """The instances that made something here (none where nothing is made on the device)."""
        if not self.ov_cap:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.store.backend.to_host(self.meta[FM_OV_COUNT]))  # type: ignore[attr-defined]

    def _find_sharers(self, per_instance: Sequence[list[DirEntry] | None]) -> None:
        """Which instances a change through WASI in a preopen may show to: those whose preopens are the same
        directory, or one inside it or around it (every instance, its files on the device or not).
        `per_instance`: each instance's preopens where its descriptors are still the initial ones."""
        users: dict[str, list[int]] = {}  # each path's instances, ascending
        for i, ctx in enumerate(self.contexts):
            pre = per_instance[i]
            if pre is None:
                pre = [e for e in ctx.fds.entries.values() if isinstance(e, DirEntry) and e.name is not None]
            paths = tuple(e.root for e in pre)
            self.roots_of.append(paths)
            for path in paths if len(paths) < 2 else dict.fromkeys(paths):
                users.setdefault(path, []).append(i)
        related: dict[str, set[str]] = {}  # a root with others inside or around it -> itself and those
        # Keyed by components (each ended by NUL, which sorts first), a directory's key is a prefix of the
        # keys of everything inside it, and those follow it in order: a stack of the roots around the
        # current one finds every nesting without walking each path up to / (itself the key "\0").
        around: list[tuple[str, str]] = []
        for key, path in sorted((path.rstrip(os.sep).replace(os.sep, "\0") + "\0", path) for path in users):
            while around and not key.startswith(around[-1][1]):
                around.pop()
            for outer, _ in around:
                related.setdefault(outer, {outer}).add(path)
                related.setdefault(path, {path}).add(outer)
            around.append((path, key))
        for path, insts in users.items():
            near = related.get(path)
            if near is None:
                if len(insts) > 1:
                    self.sharers[path] = insts
                continue
            self.nested.add(path)
            group = set().union(*(users[p] for p in near))
            if len(group) > 1:
                self.sharers[path] = sorted(group)

    # -- the host takes over ----------------------------------------------------------------------------
    def before_calls(self, calls: list[tuple[int, str, tuple[int, ...]]]) -> None:
        """Called before the host serves these (instance, WASI function, arguments) calls: the instances
        whose descriptors a call could see are given to the host, all in one demotion."""
        take: set[int] = set()
        near: set[int] = set()  # calls on stdio or a preopen alone: the host's unless the instance made something
        for i, name, args in calls:
            if name in NO_FDS:
                continue
            if self.flags[i] & WF_FILES:
                (near if name in ONE_FD and args and args[0] < 3 + self.preopens[i] else take).add(i)
            if self.served is not None and i >= self.served and self.changes(name, args):
                # A child's change, in directories the snapshot may hold by other names: every instance's
                # files go to the host.
                take.update(np.flatnonzero(self.flags & WF_FILES).tolist())  # type: ignore[operator]
            elif self.sharers and self.changes(name, args):
                take.update(j for root in self.roots_of[i] for j in self.sharers.get(root, ()))
        near -= take
        if near and self.ov_cap:
            # What the device made must be on the host before the host lists or opens below a preopen.
            s = self.store
            some = np.array(sorted(near))
            count = s.backend.to_host(self.meta[FM_OV_COUNT, s.xp.asarray(some)])  # type: ignore[attr-defined]
            take.update(some[count > 0].tolist())
        if take:
            self.demote(np.array(sorted(take)))

    @staticmethod
    def changes(name: str, args: tuple[int, ...]) -> bool:
        """Whether a WASI call may change what a directory holds."""
        if name == "path_open":
            return bool(args[4] & OPEN_CHANGES or args[5] & abi.WRITE_RIGHTS)
        return name in CHANGES and not (name in ONE_FD and args and args[0] < 3)

    def demote(self, insts: np.ndarray) -> None:
        """Give the descriptors of these instances to the host; the device serves none of their files again."""
        insts = insts[(self.flags[insts] & WF_FILES) != 0]
        if not len(insts):
            return
        host = self.store.backend.to_host  # type: ignore[attr-defined]
        dev = self.store.xp.asarray(insts)  # type: ignore[attr-defined]
        meta, free = host(self.meta[:, dev]), host(self.free[:, dev])
        num, file, pos = host(self.num[:, dev]), host(self.file[:, dev]), host(self.pos[:, dev])
        made = self._make(insts, dev, meta, num, file, pos) if self.ov_cap else {}
        for j, i in enumerate(insts.tolist()):
            fds = self.contexts[i].fds
            fds.next = int(meta[FM_NEXT, j])
            for k in range(int(meta[FM_NFREE, j])):
                fds.release(int(free[k, j]))
            entries = made.get(i, {})
            for k in range(DF_SLOTS):
                if num[k, j] == DF_NO_FD:
                    continue
                if file[k, j] & DF_OV_BIT:
                    entry = entries.get(int(file[k, j]) & ~DF_OV_FLAGS)
                    if entry is not None:
                        fds.entries[int(num[k, j])] = entry
                    else:  # it could not be made: the descriptor is gone, as after a close
                        fds.release(int(num[k, j]))
                    continue
                fds.entries[int(num[k, j])] = self._reopen(self.snapshot.file(int(file[k, j])), int(pos[k, j]))
            self.flags[i] &= np.uint32(~WF_FILES & 0xFFFFFFFF)
        self.push_flags(insts)  # type: ignore[operator]

    def _make(self, insts: np.ndarray, dev: object, meta: np.ndarray, num: np.ndarray, file: np.ndarray,
              pos: np.ndarray) -> dict[int, dict[int, Entry]]:
        """Make on the host what these instances made on the device, each in the order it made them, below its
        roots as path_create_directory and path_open would, then its writes (scan.cpp wg_make). The files still
        open on the device come back as host descriptors at their positions: instance -> overlay slot ->
        entry. One that cannot be made is said on the instance's stderr (_lost)."""
        count = meta[FM_OV_COUNT]
        some = np.flatnonzero(count)
        if not len(some):
            return {}
        host = self.store.backend.to_host  # type: ignore[attr-defined]
        log_len = np.ascontiguousarray(meta[FM_OV_USED, some].astype(np.uint64))
        if self.store.xp is np and self.ov_buf.data.shape[0] == 1:  # type: ignore[attr-defined]
            # Host memory, each instance's bytes together: read in place, rows by instance.
            names, log, rows = self.ov_names.data[0], self.ov_buf.data[0], insts[some].astype(np.int64)
        else:
            names = self.ov_names.heads(insts[some], DF_OV_NAME_CAP)
            log = self.ov_buf.heads(insts[some], max(1, int(log_len.max())))
            rows = np.arange(len(some), dtype=np.int64)
        ov_name = host(self.ov_name[:, dev])
        first, owner = [0], []
        items: list[tuple[int, int, int, int, int]] = []  # root, name at, name length, flags, position
        for row, j in enumerate(some.tolist()):
            opened = {int(file[k, j]) & ~DF_OV_FLAGS: (int(file[k, j]), int(pos[k, j]))
                      for k in range(DF_SLOTS) if num[k, j] != DF_NO_FD and file[k, j] & DF_OV_BIT}
            for k in range(int(count[j])):
                e = int(ov_name[k, j])
                how, at = opened.get(k, (0, 0))
                flags = 32 if e & OV_GONE else 1 if e & OV_DIR else (2 if k in opened else 0) | (
                    4 if how & DF_OV_READ else 0) | (8 if how & DF_OV_APPEND else 0) | (16 if e & OV_REPLACE else 0)
                items.append(((e >> 32) & 0x1FFFFFFF, (e >> 16) & 0xFFFF, e & 0xFFFF, flags, at))
                owner.append((int(insts[j]), k, row, how))
            first.append(len(items))
        cols = np.array(items, dtype=np.uint64).T
        item_root, name_at, name_len, pos_ = (np.ascontiguousarray(cols[c]) for c in (0, 1, 2, 4))
        item_root = item_root.astype(np.int64)
        flags = np.ascontiguousarray(cols[3].astype(np.uint8))
        roots = self.root_entries
        root_paths = (ctypes.c_char_p * len(roots))(*(os.fsencode(e.root) for e in roots))
        ids = np.array([e.identity for e in roots], dtype=np.uint64).reshape(-1, 2)
        dev_, ino = np.ascontiguousarray(ids[:, 0]), np.ascontiguousarray(ids[:, 1])
        first_ = np.array(first, dtype=np.int64)
        fd_out = np.empty(len(items), dtype=np.int32)
        err_out = np.empty(len(items), dtype=np.int32)
        host_native().wg_make(len(some), root_paths, dev_.ctypes.data, ino.ctypes.data, first_.ctypes.data,
                              rows.ctypes.data, names.ctypes.data, names.strides[0], log.ctypes.data,
                              log.strides[0], log_len.ctypes.data, item_root.ctypes.data, name_at.ctypes.data,
                              name_len.ctypes.data, flags.ctypes.data, pos_.ctypes.data, MAKE_THREADS,
                              fd_out.ctypes.data, err_out.ctypes.data)
        out: dict[int, dict[int, Entry]] = {}
        for t, (i, k, row, how) in enumerate(owner):
            if err_out[t]:
                path = bytes(names[rows[row], name_at[t]:name_at[t] + name_len[t]]).decode("ascii")
                self._lost(i, path, OSError(int(err_out[t]), os.strerror(int(err_out[t]))))
            elif fd_out[t] >= 0:
                read, fdflags = bool(flags[t] & 4), abi.FDFLAGS_APPEND if flags[t] & 8 else 0
                write = not how & DF_OV_RDONLY  # opened again to read only: made to read too
                out.setdefault(i, {})[k] = FileEntry(int(fd_out[t]), read, write, fdflags, opened_rights(read, write))
        return out

    def _lost(self, i: int, path: str, e: Exception) -> None:
        """A file the instance made on the device that the host could not make: said on its stderr."""
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        err = self.contexts[i].fds.entries.get(2)
        try:
            if err is not None:
                err.write(f"wasmgpu: {path}: written by this instance, but not made on the host: {why}\n".encode())
        except (OSError, WasiError):
            pass

    def _reopen(self, f: SnapFile, pos: int) -> Entry:
        """A descriptor the device opened, as the host's own: the file opened again below its preopen (the
        same file: nothing changed it through WASI since, or this instance would have been demoted then) and
        moved to where the device had read to; the snapshot's bytes where it cannot be opened. A directory
        is opened again the same way."""
        if f.listing is not None:  # `pos`: the fdflags it was opened with
            d = open_directory(self.root_entries[f.root], f.path.decode() or ".")
            d.flags = pos & abi.FDFLAGS_NONBLOCK
            return d
        try:
            entry = open_read_only(self.root_entries[f.root], f.path.decode())
        except (OSError, WasiError):
            entry = None
        if entry is not None:
            try:
                entry.seek(pos, abi.WHENCE_SET)
                return entry
            except (OSError, WasiError):
                entry.close()  # a position lseek refuses (past the file system's limit)
        snap = SnapshotFile(f.data, f.stat, 0, FILE_RIGHTS_READ)
        snap.pos = pos
        return snap
