"""File descriptors of one instance: stdio, host files, directories, and the table that numbers them."""

from __future__ import annotations

import heapq
import os
import stat as st
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from . import abi
from .memory import WasiError
from .sandbox import O_CLOEXEC, O_DIR, Resolved, resolve

U64_MASK = (1 << 64) - 1


class Sink(Protocol):
    def write(self, data: bytes) -> object: ...


class StdinSource(Protocol):
    def read(self, n: int) -> bytes: ...
    def available(self) -> int: ...


class BytesStdin:
    """The same bytes for every instance, each instance with its own position."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def available(self) -> int:
        return len(self.data) - self.pos

    def whole(self, limit: int) -> bytes | None:
        """Every byte this source gives, when nothing was read yet and there are at most `limit` (the device
        may serve them: wasi/fast.py)."""
        return self.data if self.pos == 0 and len(self.data) <= limit else None


class LiveStdin:
    """Reads from a host file descriptor as the guest asks (an interactive terminal)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)

    def available(self) -> int:
        return 1


def filetype_of(mode: int) -> int:
    if st.S_ISREG(mode):
        return abi.FILETYPE_REGULAR_FILE
    if st.S_ISDIR(mode):
        return abi.FILETYPE_DIRECTORY
    if st.S_ISLNK(mode):
        return abi.FILETYPE_SYMBOLIC_LINK
    if st.S_ISCHR(mode):
        return abi.FILETYPE_CHARACTER_DEVICE
    if st.S_ISBLK(mode):
        return abi.FILETYPE_BLOCK_DEVICE
    if st.S_ISSOCK(mode):
        return abi.FILETYPE_SOCKET_STREAM
    return abi.FILETYPE_UNKNOWN


def filestat_of(info: os.stat_result) -> bytes:
    return abi.FILESTAT.pack(info.st_dev & U64_MASK, info.st_ino & U64_MASK, filetype_of(info.st_mode),
                             info.st_nlink, info.st_size, info.st_atime_ns & U64_MASK,
                             info.st_mtime_ns & U64_MASK, info.st_ctime_ns & U64_MASK)


def seek_target(offset: int, whence: int, current: Callable[[], int], size: Callable[[], int]) -> int:
    """Where fd_seek moves a file's position: `current` and `size` are asked only for the origin used."""
    if whence == abi.WHENCE_SET:
        base = 0
    elif whence == abi.WHENCE_CUR:
        base = current()
    elif whence == abi.WHENCE_END:
        base = size()
    else:
        raise WasiError(abi.EINVAL)
    if base + offset < 0:
        raise WasiError(abi.EINVAL)
    return base + offset


def check_file_flags(flags: int) -> None:
    """fd_fdstat_set_flags on a file: append and nonblock may change, nothing else."""
    if flags & ~(abi.FDFLAGS_APPEND | abi.FDFLAGS_NONBLOCK):
        raise WasiError(abi.EINVAL)


class Entry:
    """An open descriptor. The defaults are those of a descriptor that can do nothing."""

    filetype = abi.FILETYPE_UNKNOWN

    def __init__(self, rights_base: int, rights_inheriting: int, flags: int = 0) -> None:
        self.rights_base = rights_base
        self.rights_inheriting = rights_inheriting
        self.flags = flags

    def fdstat(self) -> bytes:
        return abi.FDSTAT.pack(self.filetype, self.flags, self.rights_base, self.rights_inheriting)

    def read(self, n: int) -> bytes:
        raise WasiError(abi.EBADF)

    def write(self, data: bytes) -> int:
        raise WasiError(abi.EBADF)

    def pread(self, n: int, offset: int) -> bytes:
        raise WasiError(abi.ESPIPE)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise WasiError(abi.ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        raise WasiError(abi.ESPIPE)

    def filestat(self) -> bytes:
        return bytes(abi.FILESTAT.size)

    def set_size(self, size: int) -> None:
        raise WasiError(abi.EBADF)

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        raise WasiError(abi.EBADF)

    def set_flags(self, flags: int) -> None:
        raise WasiError(abi.EBADF)

    def sync(self) -> None:
        raise WasiError(abi.EBADF)

    def poll_bytes(self) -> int:
        """How many bytes a read would get now (poll_oneoff's fd_read event)."""
        return 0

    def close(self) -> None:
        pass


class StdinEntry(Entry):
    def __init__(self, source: StdinSource) -> None:
        super().__init__(abi.R_FD_READ, abi.R_FD_READ)
        self.source = source

    def read(self, n: int) -> bytes:
        return self.source.read(n)

    def poll_bytes(self) -> int:
        return self.source.available()

    def close(self) -> None:
        close = getattr(self.source, "close", None)  # a share of a batch's stdin: nothing is kept for it now
        if close is not None:
            close()


class OutputEntry(Entry):
    def __init__(self, sink: Sink, tty: bool = False) -> None:
        super().__init__(abi.R_FD_WRITE, abi.R_FD_WRITE)
        self.sink = sink
        if tty:
            self.filetype = abi.FILETYPE_CHARACTER_DEVICE

    def write(self, data: bytes) -> int:
        self.sink.write(data)
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()
        return len(data)


class RegularFile(Entry):
    """A regular file, held by a host descriptor (FileEntry) or as its bytes (SnapshotFile): the calls
    that ask what a descriptor is treat both alike."""

    filetype = abi.FILETYPE_REGULAR_FILE
    readable = True
    writable = False


class FileEntry(RegularFile):

    def __init__(self, host_fd: int, readable: bool, writable: bool, flags: int, rights: int) -> None:
        super().__init__(rights, rights, flags)
        self.host_fd = host_fd
        self.readable = readable
        self.writable = writable
        HOST_FDS.held += 1

    def _need(self, ok: bool) -> None:
        if not ok:
            raise WasiError(abi.EBADF)

    def read(self, n: int) -> bytes:
        self._need(self.readable)
        return os.read(self.host_fd, n)

    def write(self, data: bytes) -> int:
        self._need(self.writable)
        if not data and self.flags & abi.FDFLAGS_APPEND:
            # As wasmtime: an appending write goes to the end even with nothing to write (write(2) does not move).
            os.lseek(self.host_fd, 0, os.SEEK_END)
            return 0
        return os.write(self.host_fd, data)

    def pread(self, n: int, offset: int) -> bytes:
        self._need(self.readable)
        return os.pread(self.host_fd, n, offset)

    def pwrite(self, data: bytes, offset: int) -> int:
        self._need(self.writable)
        return os.pwrite(self.host_fd, data, offset)

    def seek(self, offset: int, whence: int) -> int:
        target = seek_target(offset, whence, lambda: os.lseek(self.host_fd, 0, os.SEEK_CUR),
                             lambda: os.fstat(self.host_fd).st_size)
        return os.lseek(self.host_fd, target, os.SEEK_SET)

    def filestat(self) -> bytes:
        return filestat_of(os.fstat(self.host_fd))

    def set_size(self, size: int) -> None:
        if not self.writable:  # also one whose host descriptor writes (a file made on the device, read only)
            raise WasiError(abi.EINVAL)
        os.ftruncate(self.host_fd, size)  # the host refuses a read-only descriptor (EINVAL, as wasmtime)

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        info = os.fstat(self.host_fd)
        os.utime(self.host_fd, ns=(info.st_atime_ns if atim is None else atim,
                                   info.st_mtime_ns if mtim is None else mtim))

    def set_flags(self, flags: int) -> None:
        check_file_flags(flags)
        import fcntl

        host = fcntl.fcntl(self.host_fd, fcntl.F_GETFL)
        host = (host | os.O_APPEND) if flags & abi.FDFLAGS_APPEND else (host & ~os.O_APPEND)
        fcntl.fcntl(self.host_fd, fcntl.F_SETFL, host)
        self.flags = flags

    def sync(self) -> None:
        os.fsync(self.host_fd)

    def poll_bytes(self) -> int:
        return max(0, os.fstat(self.host_fd).st_size - os.lseek(self.host_fd, 0, os.SEEK_CUR))

    def close(self) -> None:
        if self.host_fd >= 0:
            os.close(self.host_fd)
            self.host_fd = -1
            HOST_FDS.held -= 1


class HostFdBudget:
    """Host descriptors held by open guest files, process-wide. A batch runs every instance at once, so N
    guests that each hold one file open would need N host descriptors, while wasmtime on a few cores holds
    a few: past this budget a file opened read-only is read whole and its descriptor closed."""

    RESERVE = 512  # left free: preopens reopened per call, output files, the interpreter's own

    def __init__(self) -> None:
        self.held = 0
        self.limit = -1  # found at the first open

    def scarce(self) -> bool:
        if self.limit < 0:
            self.limit = max(16, _descriptor_limit() - self.RESERVE)
        return self.held >= self.limit


def _descriptor_limit() -> int:
    """The process's descriptor limit, its soft limit first raised to the hard one (any process may)."""
    try:
        import resource
    except ImportError:
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return 1 << 20 if soft == resource.RLIM_INFINITY else min(soft, 1 << 20)


HOST_FDS = HostFdBudget()
SNAPSHOT_MAX = 64 << 20  # larger read-only files keep their descriptor whatever the budget says


class SnapshotFile(RegularFile):
    """A read-only regular file held as its bytes and its stat at open, without a host descriptor (see
    HostFdBudget, and the device's snapshot in devfiles.py). It does not see later changes to the file, as
    a copy would not."""

    def __init__(self, data: bytes, stat: bytes, flags: int, rights: int) -> None:
        """`stat`: the file's filestat record (filestat_of) when it was read."""
        super().__init__(rights, rights, flags)
        self.data = data
        self.stat = stat
        self.pos = 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def pread(self, n: int, offset: int) -> bytes:
        return self.data[offset:offset + n]

    def seek(self, offset: int, whence: int) -> int:
        self.pos = seek_target(offset, whence, lambda: self.pos, lambda: len(self.data))
        return self.pos

    def filestat(self) -> bytes:
        return self.stat

    def set_size(self, size: int) -> None:
        raise WasiError(abi.EINVAL)  # as the host answers for a read-only descriptor

    def set_flags(self, flags: int) -> None:
        check_file_flags(flags)
        self.flags = flags

    def sync(self) -> None:
        pass

    def poll_bytes(self) -> int:
        return max(0, len(self.data) - self.pos)


# Rights wasmtime reports: preopens, directories opened later, files (read-only, write-only, both).
PREOPEN_RIGHTS_BASE = 0x07B7FE00
PREOPEN_RIGHTS_INHERITING = 0x0FF7FFFF
DIR_RIGHTS = abi.RIGHTS_ALL & ~(abi.R_FD_SEEK | abi.R_FD_WRITE | abi.RIGHTS["PATH_FILESTAT_SET_SIZE"]
                                | abi.RIGHTS["FD_FILESTAT_SET_SIZE"])
FILE_RIGHTS_READ = abi.RIGHTS_ALL & ~abi.R_FD_WRITE
FILE_RIGHTS_WRITE = abi.RIGHTS_ALL & ~(abi.R_FD_READ | abi.R_FD_READDIR)


class DirEntry(Entry):
    """A directory, and the sandbox of the paths resolved from it: as in wasmtime (cap-std), even one
    opened below a preopen cannot reach its parent. `name` is set for a preopen.

    A directory opened by the guest holds its descriptor `fd`. A preopen holds none (a batch has
    thousands): it opens `root` for each use and checks that the same directory (device and inode
    noted at creation) was reached, so a path swapped on the host cannot move the sandbox.
    """

    filetype = abi.FILETYPE_DIRECTORY

    def __init__(self, root: str, name: str | None = None, fd: int | None = None,
                 info: os.stat_result | None = None) -> None:
        """`info`: the stat of `root`, where the caller has it."""
        if name is not None:
            super().__init__(PREOPEN_RIGHTS_BASE, PREOPEN_RIGHTS_INHERITING)
        else:
            super().__init__(DIR_RIGHTS, DIR_RIGHTS)
        self.root = root  # where the directory was when it was opened (informative for a held fd)
        self.name = name
        self.fd = fd
        self.identity: tuple[int, int] | None = None  # (device, inode) of a preopen
        if fd is None:
            info = info or os.stat(root)
            self.identity = (info.st_dev, info.st_ino)
        self._listing: list[tuple[str, int, int]] | None = None

    @contextmanager
    def handle(self) -> Iterator[int]:
        """A descriptor of the directory for the duration of one operation."""
        if self.fd is not None:
            yield self.fd
            return
        fd = self._open_root()
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_root(self) -> int:
        fd = os.open(self.root, O_DIR & ~os.O_NOFOLLOW)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != self.identity:
            os.close(fd)
            raise WasiError(abi.ENOENT)  # the preopen is gone from where it was
        return fd

    def resolve(self, path: str, follow: bool, slash_follows: bool = True) -> Resolved:
        """Where `path` leads from here (see sandbox.resolve); the result is a context manager that
        closes what it opened."""
        if self.fd is not None:
            return resolve(self.fd, path, follow, None, slash_follows)
        fd = self._open_root()
        return resolve(fd, path, follow, [fd], slash_follows)

    def seek(self, offset: int, whence: int) -> int:
        raise WasiError(abi.EBADF)

    def pread(self, n: int, offset: int) -> bytes:
        raise WasiError(abi.EBADF)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise WasiError(abi.EBADF)

    def filestat(self) -> bytes:
        with self.handle() as fd:
            return filestat_of(os.fstat(fd))

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        with self.handle() as fd:
            info = os.fstat(fd)
            # "." of the descriptor: utimensat works through an O_PATH descriptor, futimens does not
            os.utime(".", dir_fd=fd, follow_symlinks=False,
                     ns=(info.st_atime_ns if atim is None else atim, info.st_mtime_ns if mtim is None else mtim))

    def set_flags(self, flags: int) -> None:
        if flags & ~abi.FDFLAGS_NONBLOCK:
            raise WasiError(abi.EINVAL)
        self.flags = flags

    def listing(self, cookie: int) -> list[tuple[str, int, int]]:
        """(name, inode, filetype) of ".", ".." and the entries sorted by name; read anew at cookie 0."""
        if self._listing is None or cookie == 0:
            with self.handle() as fd:
                here = os.fstat(fd)  # ".." is not reachable: it gets the directory's own inode
                out = [(".", here.st_ino, abi.FILETYPE_DIRECTORY), ("..", here.st_ino, abi.FILETYPE_DIRECTORY)]
                readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC, dir_fd=fd)
                try:
                    with os.scandir(readable) as it:
                        for e in sorted(it, key=lambda e: e.name):
                            try:
                                info = e.stat(follow_symlinks=False)
                            except OSError:
                                continue
                            out.append((e.name, info.st_ino, filetype_of(info.st_mode)))
                finally:
                    os.close(readable)
            self._listing = out
        return self._listing

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.identity = (-1, -1)  # a closed directory opens nothing


class FdTable:
    """Descriptor numbers as wasmtime gives them: the largest freed number is reused first."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        """`entries`: numbered from 0 in order."""
        self.entries: dict[int, Entry] = dict(enumerate(entries))
        self.free: list[int] = []  # freed numbers, negated: a heap whose top is the largest
        self.next = len(self.entries)

    def add(self, entry: Entry) -> int:
        while self.free:
            fd = -heapq.heappop(self.free)
            if fd not in self.entries:
                break
        else:
            fd = self.next
            self.next += 1
        self.entries[fd] = entry
        return fd

    def release(self, fd: int) -> None:
        """Number `fd` is free to be given again."""
        heapq.heappush(self.free, -fd)

    def get(self, fd: int) -> Entry:
        e = self.entries.get(fd)
        if e is None:
            raise WasiError(abi.EBADF)
        return e

    def dir(self, fd: int) -> DirEntry:
        e = self.get(fd)
        if not isinstance(e, DirEntry):
            raise WasiError(abi.ENOTDIR)
        return e

    def remove(self, fd: int) -> Entry:
        e = self.get(fd)
        del self.entries[fd]
        self.release(fd)
        return e

    def renumber(self, old: int, new: int) -> None:
        e = self.get(old)
        target = self.get(new)
        if old == new:
            return
        target.close()
        self.entries[new] = e
        del self.entries[old]
        self.release(old)

    def close_all(self) -> None:
        for e in self.entries.values():
            try:
                e.close()
            except OSError:
                pass
        self.entries.clear()
