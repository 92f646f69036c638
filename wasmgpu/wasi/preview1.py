"""The functions of wasi_snapshot_preview1, for one instance at a time.

Each function takes the instance's WasiContext, its GuestMemory and the raw arguments (i32 as
unsigned 32-bit, i64 as unsigned 64-bit integers) and returns an errno. A WasiError raised
inside becomes its errno; the caller (batch.py) also turns host OSErrors into errnos. Where
the specification leaves a choice, the errno is the one wasmtime gives.
"""

from __future__ import annotations

import inspect
import os
import stat
import struct
from collections.abc import Callable, Iterator

from ..errors import ProcExit, Trap
from . import abi
from .context import WasiContext
from .fds import (
    FILE_RIGHTS_READ,
    FILE_RIGHTS_WRITE,
    HOST_FDS,
    SNAPSHOT_MAX,
    DirEntry,
    Entry,
    FileEntry,
    OutputEntry,
    RegularFile,
    SnapshotFile,
    StdinEntry,
    filestat_of,
)
from .memory import GuestMemory, WasiError
from .sandbox import Resolved, check_symlink_target, open_dir

WasiFunction = Callable[..., int]
FUNCTIONS: dict[str, WasiFunction] = {}
I64_MAX = (1 << 63) - 1


def wasi(fn: WasiFunction) -> WasiFunction:
    assert fn.__name__ in abi.SIGNATURES, fn.__name__
    FUNCTIONS[fn.__name__] = fn
    return fn


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _strings(mem: GuestMemory, items: list[bytes], ptrs: int, buf: int) -> int:
    blob = b"".join(s + b"\0" for s in items)
    addrs, at = [], buf
    for s in items:
        addrs.append(at)
        at += len(s) + 1
    mem.check(ptrs, 4 * len(items))
    mem.check(buf, len(blob))
    mem.write(ptrs, struct.pack(f"<{len(addrs)}I", *addrs))
    mem.write(buf, blob)
    return abi.SUCCESS


def _sizes(mem: GuestMemory, items: list[bytes], count_ptr: int, size_ptr: int) -> int:
    mem.check(count_ptr, 4)
    mem.check(size_ptr, 4)
    mem.write_u32(count_ptr, len(items))
    mem.write_u32(size_ptr, sum(len(s) + 1 for s in items))
    return abi.SUCCESS


# -- arguments, environment, clocks, randomness -------------------------------------------------
@wasi
def args_get(ctx: WasiContext, mem: GuestMemory, argv: int, argv_buf: int) -> int:
    return _strings(mem, ctx.args, argv, argv_buf)


@wasi
def args_sizes_get(ctx: WasiContext, mem: GuestMemory, count: int, size: int) -> int:
    return _sizes(mem, ctx.args, count, size)


@wasi
def environ_get(ctx: WasiContext, mem: GuestMemory, environ: int, environ_buf: int) -> int:
    return _strings(mem, ctx.env, environ, environ_buf)


@wasi
def environ_sizes_get(ctx: WasiContext, mem: GuestMemory, count: int, size: int) -> int:
    return _sizes(mem, ctx.env, count, size)


@wasi
def clock_res_get(ctx: WasiContext, mem: GuestMemory, clock_id: int, out: int) -> int:
    mem.check(out, 8)
    mem.write_u64(out, ctx.clock.resolution(clock_id))
    return abi.SUCCESS


@wasi
def clock_time_get(ctx: WasiContext, mem: GuestMemory, clock_id: int, precision: int, out: int) -> int:
    mem.check(out, 8)
    mem.write_u64(out, ctx.clock.now(clock_id))
    return abi.SUCCESS


@wasi
def random_get(ctx: WasiContext, mem: GuestMemory, buf: int, length: int) -> int:
    mem.check(buf, length)
    mem.write(buf, ctx.random.bytes(length))  # type: ignore[attr-defined]
    return abi.SUCCESS


# -- descriptors --------------------------------------------------------------------------------
@wasi
def fd_advise(ctx: WasiContext, mem: GuestMemory, fd: int, offset: int, length: int, advice: int) -> int:
    entry = ctx.fds.get(fd)
    if advice > 5:
        return abi.EINVAL
    if not isinstance(entry, RegularFile):
        return abi.EBADF
    return abi.SUCCESS


@wasi
def fd_allocate(ctx: WasiContext, mem: GuestMemory, fd: int, offset: int, length: int) -> int:
    ctx.fds.get(fd)
    return abi.ENOTSUP  # as wasmtime: the operation is not offered


@wasi
def fd_close(ctx: WasiContext, mem: GuestMemory, fd: int) -> int:
    ctx.fds.remove(fd).close()
    return abi.SUCCESS


@wasi
def fd_datasync(ctx: WasiContext, mem: GuestMemory, fd: int) -> int:
    ctx.fds.get(fd).sync()
    return abi.SUCCESS


@wasi
def fd_sync(ctx: WasiContext, mem: GuestMemory, fd: int) -> int:
    ctx.fds.get(fd).sync()
    return abi.SUCCESS


@wasi
def fd_fdstat_get(ctx: WasiContext, mem: GuestMemory, fd: int, out: int) -> int:
    stat = ctx.fds.get(fd).fdstat()
    mem.write(out, stat)
    return abi.SUCCESS


@wasi
def fd_fdstat_set_flags(ctx: WasiContext, mem: GuestMemory, fd: int, flags: int) -> int:
    ctx.fds.get(fd).set_flags(flags)
    return abi.SUCCESS


@wasi
def fd_fdstat_set_rights(ctx: WasiContext, mem: GuestMemory, fd: int, base: int, inheriting: int) -> int:
    ctx.fds.get(fd)
    return abi.ENOTSUP


@wasi
def fd_filestat_get(ctx: WasiContext, mem: GuestMemory, fd: int, out: int) -> int:
    entry = ctx.fds.get(fd)
    mem.check(out, abi.FILESTAT.size)
    mem.write(out, entry.filestat())
    return abi.SUCCESS


@wasi
def fd_filestat_set_size(ctx: WasiContext, mem: GuestMemory, fd: int, size: int) -> int:
    entry = ctx.fds.get(fd)
    if size > I64_MAX:
        return abi.EINVAL
    entry.set_size(size)
    return abi.SUCCESS


def _times(ctx: WasiContext, atim: int, mtim: int, fst: int) -> tuple[int | None, int | None]:
    if fst & ~0xF or (fst & abi.FSTFLAGS_ATIM and fst & abi.FSTFLAGS_ATIM_NOW) or (
            fst & abi.FSTFLAGS_MTIM and fst & abi.FSTFLAGS_MTIM_NOW):
        raise WasiError(abi.EINVAL)
    now = ctx.clock.now(abi.CLOCK_REALTIME) if fst & (abi.FSTFLAGS_ATIM_NOW | abi.FSTFLAGS_MTIM_NOW) else 0
    a = atim if fst & abi.FSTFLAGS_ATIM else now if fst & abi.FSTFLAGS_ATIM_NOW else None
    m = mtim if fst & abi.FSTFLAGS_MTIM else now if fst & abi.FSTFLAGS_MTIM_NOW else None
    return a, m


@wasi
def fd_filestat_set_times(ctx: WasiContext, mem: GuestMemory, fd: int, atim: int, mtim: int, fst: int) -> int:
    entry = ctx.fds.get(fd)
    a, m = _times(ctx, atim, mtim, fst)
    if a is not None or m is not None:
        entry.set_times(a, m)
    return abi.SUCCESS


@wasi
def fd_read(ctx: WasiContext, mem: GuestMemory, fd: int, iovs: int, iovs_len: int, nread: int) -> int:
    entry = ctx.fds.get(fd)
    vecs = mem.iovecs(iovs, iovs_len)
    mem.check(nread, 4)
    data = entry.read(sum(n for _, n in vecs))
    mem.scatter(vecs, data)
    mem.write_u32(nread, len(data))
    return abi.SUCCESS


@wasi
def fd_pread(ctx: WasiContext, mem: GuestMemory, fd: int, iovs: int, iovs_len: int, offset: int,
             nread: int) -> int:
    entry = ctx.fds.get(fd)
    vecs = mem.iovecs(iovs, iovs_len)
    mem.check(nread, 4)
    if offset > I64_MAX:
        return abi.EINVAL
    data = entry.pread(sum(n for _, n in vecs), offset)
    mem.scatter(vecs, data)
    mem.write_u32(nread, len(data))
    return abi.SUCCESS


@wasi
def fd_write(ctx: WasiContext, mem: GuestMemory, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
    entry = ctx.fds.get(fd)
    data = mem.gather(iovs, iovs_len)
    mem.check(nwritten, 4)
    mem.write_u32(nwritten, entry.write(data))
    return abi.SUCCESS


@wasi
def fd_pwrite(ctx: WasiContext, mem: GuestMemory, fd: int, iovs: int, iovs_len: int, offset: int,
              nwritten: int) -> int:
    entry = ctx.fds.get(fd)
    data = mem.gather(iovs, iovs_len)
    mem.check(nwritten, 4)
    if offset > I64_MAX:
        return abi.EINVAL
    mem.write_u32(nwritten, entry.pwrite(data, offset))
    return abi.SUCCESS


@wasi
def fd_seek(ctx: WasiContext, mem: GuestMemory, fd: int, offset: int, whence: int, out: int) -> int:
    entry = ctx.fds.get(fd)
    mem.check(out, 8)
    if whence > abi.WHENCE_END:
        return abi.EINVAL
    pos = entry.seek(signed64(offset), whence)
    mem.write_u64(out, pos)
    return abi.SUCCESS


@wasi
def fd_tell(ctx: WasiContext, mem: GuestMemory, fd: int, out: int) -> int:
    entry = ctx.fds.get(fd)
    mem.check(out, 8)
    mem.write_u64(out, entry.seek(0, abi.WHENCE_CUR))
    return abi.SUCCESS


@wasi
def fd_prestat_get(ctx: WasiContext, mem: GuestMemory, fd: int, out: int) -> int:
    entry = ctx.fds.get(fd)
    if not isinstance(entry, DirEntry) or entry.name is None:
        return abi.EBADF
    mem.write(out, abi.PRESTAT.pack(abi.PREOPENTYPE_DIR, len(entry.name.encode())))
    return abi.SUCCESS


@wasi
def fd_prestat_dir_name(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int) -> int:
    entry = ctx.fds.get(fd)
    if not isinstance(entry, DirEntry) or entry.name is None:
        return abi.EBADF
    name = entry.name.encode()
    if path_len < len(name):
        return abi.ENAMETOOLONG
    mem.write(path, name)
    return abi.SUCCESS


@wasi
def fd_readdir(ctx: WasiContext, mem: GuestMemory, fd: int, buf: int, buf_len: int, cookie: int,
               bufused: int) -> int:
    entry = ctx.fds.get(fd)
    if not isinstance(entry, DirEntry):
        return abi.EBADF
    mem.check(buf, buf_len)
    mem.check(bufused, 4)
    listing = entry.listing(cookie)
    out = bytearray()
    for k in range(min(cookie, len(listing)), len(listing)):
        if len(out) >= buf_len:
            break
        name, ino, ftype = listing[k]
        raw = name.encode()
        out += abi.DIRENT.pack(k + 1, ino & 0xFFFFFFFFFFFFFFFF, len(raw), ftype) + raw
    out = out[:buf_len]
    mem.write(buf, bytes(out))
    mem.write_u32(bufused, len(out))
    return abi.SUCCESS


@wasi
def fd_renumber(ctx: WasiContext, mem: GuestMemory, fd: int, to: int) -> int:
    ctx.fds.renumber(fd, to)
    return abi.SUCCESS


# -- paths --------------------------------------------------------------------------------------
# Every operation acts on (directory descriptor, final name) from sandbox.resolve through the *at
# system calls, never following a link at the final name: a tree changed between the walk and the
# call can change the errno, never where the call lands.
def _dir(ctx: WasiContext, fd: int, not_dir: int = abi.EBADF) -> DirEntry:
    """Directory `fd`; a descriptor that is no directory gives `not_dir` (wasmtime's EBADF, or ENOTDIR
    for a regular file in path_open)."""
    d = ctx.fds.get(fd)
    if not isinstance(d, DirEntry):
        raise WasiError(not_dir if isinstance(d, RegularFile) else abi.EBADF)
    return d


def _resolve(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int, follow: bool,
             slash_follows: bool = True) -> Resolved:
    """Where `path` leads from directory `fd` (a context manager: it holds descriptors)."""
    ctx.fds.get(fd)
    text = mem.string(path, path_len)
    return _dir(ctx, fd).resolve(text, follow, slash_follows)


def _must_exist(r: Resolved) -> os.stat_result:
    if r.stat is None:
        raise WasiError(abi.ENOENT)
    return r.stat


@wasi
def path_create_directory(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int) -> int:
    # As wasmtime: trailing slashes are dropped and the name is not followed ("dangling/" exists).
    with _resolve(ctx, mem, fd, path, path_len, False, slash_follows=False) as r:
        if r.exists:
            return abi.EEXIST
        os.mkdir(r.name, 0o777, dir_fd=r.dir_fd)
    return abi.SUCCESS


@wasi
def path_filestat_get(ctx: WasiContext, mem: GuestMemory, fd: int, flags: int, path: int, path_len: int,
                      out: int) -> int:
    with _resolve(ctx, mem, fd, path, path_len, bool(flags & abi.LOOKUPFLAGS_SYMLINK_FOLLOW)) as r:
        info = _must_exist(r)
    mem.check(out, abi.FILESTAT.size)
    mem.write(out, filestat_of(info))
    return abi.SUCCESS


@wasi
def path_filestat_set_times(ctx: WasiContext, mem: GuestMemory, fd: int, flags: int, path: int, path_len: int,
                            atim: int, mtim: int, fst: int) -> int:
    with _resolve(ctx, mem, fd, path, path_len, bool(flags & abi.LOOKUPFLAGS_SYMLINK_FOLLOW)) as r:
        info = _must_exist(r)
        a, m = _times(ctx, atim, mtim, fst)
        if a is not None or m is not None:
            os.utime(r.name, ns=(info.st_atime_ns if a is None else a, info.st_mtime_ns if m is None else m),
                     dir_fd=r.dir_fd, follow_symlinks=False)
    return abi.SUCCESS


@wasi
def path_link(ctx: WasiContext, mem: GuestMemory, old_fd: int, old_flags: int, old_path: int, old_len: int,
              new_fd: int, new_path: int, new_len: int) -> int:
    src_dir, dst_dir = _dir(ctx, old_fd), _dir(ctx, new_fd)
    src_text, dst_text = mem.string(old_path, old_len), mem.string(new_path, new_len)
    if old_flags & abi.LOOKUPFLAGS_SYMLINK_FOLLOW:
        return abi.EINVAL  # as wasmtime: a hard link to a link's target is not offered
    with src_dir.resolve(src_text, False) as src, dst_dir.resolve(dst_text, False) as dst:
        _must_exist(src)
        if src.is_dir:
            return abi.EPERM
        if dst.exists:
            return abi.EEXIST
        if dst.trailing_slash:
            return abi.ENOENT
        os.link(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd, follow_symlinks=False)
    return abi.SUCCESS


def open_read_only(d: DirEntry, path: str) -> FileEntry | SnapshotFile:
    """What a read-only path_open of regular file `path` below `d`, without flags, gives (for a descriptor
    the device opened and hands to the host)."""
    with d.resolve(path, True) as r:
        if not r.exists or r.is_dir or r.is_symlink:
            raise WasiError(abi.ENOENT)
        return _open_file(r, 0, 0, 0)


def open_directory(d: DirEntry, path: str) -> DirEntry:
    """What path_open of directory `path` below `d`, without flags, gives (for a directory the device opened
    and hands to the host). One gone or replaced by then opens nothing: its identity matches no directory."""
    where = os.path.normpath(os.path.join(d.root, path))
    try:
        with d.resolve(path, True) as r:
            if r.exists and r.is_dir:
                return DirEntry(where, fd=open_dir(r.dir_fd, r.name))
    except (OSError, WasiError):
        pass
    return DirEntry(where, info=os.stat_result((0,) * 10))


def opened_rights(read: bool, write: bool) -> int:
    """The rights a file opened to read, write or both has (its fdstat's base and inheriting)."""
    return abi.RIGHTS_ALL if read and write else FILE_RIGHTS_WRITE if write else FILE_RIGHTS_READ


def _open_file(r: Resolved, oflags: int, rights: int, fdflags: int) -> FileEntry | SnapshotFile:
    write = bool(rights & abi.WRITE_RIGHTS) or bool(oflags & abi.OFLAGS_TRUNC)
    read = bool(rights & (abi.R_FD_READ | abi.R_FD_READDIR)) or not write
    host = (os.O_RDWR if read else os.O_WRONLY) if write else os.O_RDONLY
    # O_NONBLOCK: a FIFO swapped in after the walk must not block the open (cleared below).
    host |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if oflags & abi.OFLAGS_CREAT:
        host |= os.O_CREAT
    if oflags & abi.OFLAGS_EXCL:
        host |= os.O_EXCL
    if oflags & abi.OFLAGS_TRUNC:
        host |= os.O_TRUNC
    if fdflags & abi.FDFLAGS_APPEND:
        host |= os.O_APPEND
    if fdflags & abi.FDFLAGS_DSYNC:
        host |= getattr(os, "O_DSYNC", 0)
    if fdflags & (abi.FDFLAGS_SYNC | abi.FDFLAGS_RSYNC):
        host |= getattr(os, "O_SYNC", 0)
    if r.stat is not None and not stat.S_ISREG(r.stat.st_mode):
        raise WasiError(abi.EACCES)  # a device, FIFO or socket inside the sandbox (opening one could block)
    host_fd = os.open(r.name, host, 0o666, dir_fd=r.dir_fd)
    reported = opened_rights(read, write)
    data: bytes | None = None
    try:
        info = os.fstat(host_fd)
        if not stat.S_ISREG(info.st_mode):  # changed since the walk
            raise WasiError(abi.EISDIR if stat.S_ISDIR(info.st_mode) else abi.EACCES)
        os.set_blocking(host_fd, True)
        if not write and info.st_size <= SNAPSHOT_MAX and HOST_FDS.scarce():
            data = b"".join(iter(lambda: os.read(host_fd, 1 << 20), b""))
    except BaseException:
        os.close(host_fd)
        raise
    if data is not None:
        os.close(host_fd)
        return SnapshotFile(data, filestat_of(info), fdflags & 0x1F, reported)
    return FileEntry(host_fd, read, write, fdflags & 0x1F, reported)


@wasi
def path_open(ctx: WasiContext, mem: GuestMemory, fd: int, dirflags: int, path: int, path_len: int, oflags: int,
              rights_base: int, rights_inheriting: int, fdflags: int, out: int) -> int:
    ctx.fds.get(fd)
    text = mem.string(path, path_len)
    d = _dir(ctx, fd, abi.ENOTDIR)
    create = bool(oflags & abi.OFLAGS_CREAT)
    exclusive = create and bool(oflags & abi.OFLAGS_EXCL)
    # As wasmtime: O_EXCL does not follow a final link (any existing name is EEXIST), and creating
    # a name with a trailing slash is EISDIR whatever is there, a link not followed.
    slashed = create and text.endswith("/")
    with d.resolve(text, bool(dirflags & abi.LOOKUPFLAGS_SYMLINK_FOLLOW) and not exclusive and not slashed,
                   slash_follows=not create) as r:
        mem.check(out, 4)
        entry: Entry
        if create and (slashed or r.trailing_slash) and not r.dot:
            return abi.EISDIR
        if r.exists:
            if exclusive:
                return abi.EEXIST
            if r.is_symlink:
                return abi.ELOOP
            if r.is_dir:
                if rights_base & abi.WRITE_RIGHTS or oflags & abi.OFLAGS_TRUNC:
                    return abi.EISDIR
                # as in wasmtime (cap-std), a directory fd is a sandbox of its own
                entry = DirEntry(os.path.normpath(os.path.join(d.root, text)), fd=open_dir(r.dir_fd, r.name))
                entry.flags = fdflags & abi.FDFLAGS_NONBLOCK
            elif oflags & abi.OFLAGS_DIRECTORY:
                return abi.ENOTDIR
            else:
                entry = _open_file(r, oflags, rights_base, fdflags)
        else:
            if not create:
                return abi.ENOENT
            if oflags & abi.OFLAGS_DIRECTORY:
                return abi.EINVAL
            entry = _open_file(r, oflags, rights_base, fdflags)
    mem.write_u32(out, ctx.fds.add(entry))
    return abi.SUCCESS


@wasi
def path_readlink(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int, buf: int, buf_len: int,
                  bufused: int) -> int:
    with _resolve(ctx, mem, fd, path, path_len, False) as r:
        _must_exist(r)
        if not r.is_symlink:
            return abi.EINVAL
        target = os.readlink(r.name, dir_fd=r.dir_fd)
    if target.startswith("/"):
        return abi.EPERM  # as wasmtime: an absolute target would tell the guest a host path
    mem.check(buf, buf_len)
    mem.check(bufused, 4)
    raw = target.encode()[:buf_len]
    mem.write(buf, raw)
    mem.write_u32(bufused, len(raw))
    return abi.SUCCESS


@wasi
def path_remove_directory(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int) -> int:
    with _resolve(ctx, mem, fd, path, path_len, False) as r:
        _must_exist(r)
        if r.dot or r.is_root:
            return abi.EINVAL
        if not r.is_dir:
            return abi.ENOTDIR
        if r.trailing_slash:
            return abi.EINVAL  # as wasmtime, which takes "dir/" as "dir/."
        os.rmdir(r.name, dir_fd=r.dir_fd)
    return abi.SUCCESS


@wasi
def path_rename(ctx: WasiContext, mem: GuestMemory, fd: int, old_path: int, old_len: int, new_fd: int,
                new_path: int, new_len: int) -> int:
    # As wasmtime: a trailing slash follows no link; it asks for a directory on both sides.
    with _resolve(ctx, mem, fd, old_path, old_len, False, slash_follows=False) as src, \
            _resolve(ctx, mem, new_fd, new_path, new_len, False, slash_follows=False) as dst:
        if src.is_root or dst.is_root or src.dot or dst.dot:
            return abi.EBUSY
        _must_exist(src)
        if (src.trailing_slash or dst.trailing_slash) and not src.is_dir:
            return abi.ENOTDIR
        if dst.trailing_slash and dst.exists and not dst.is_dir:
            return abi.ENOTDIR
        os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
    return abi.SUCCESS


@wasi
def path_symlink(ctx: WasiContext, mem: GuestMemory, old_path: int, old_len: int, fd: int, new_path: int,
                 new_len: int) -> int:
    target = mem.string(old_path, old_len)
    with _resolve(ctx, mem, fd, new_path, new_len, False) as dst:
        check_symlink_target(target)
        if dst.exists:
            return abi.EEXIST
        if dst.trailing_slash:
            return abi.ENOENT
        os.symlink(target, dst.name, dir_fd=dst.dir_fd)
    return abi.SUCCESS


@wasi
def path_unlink_file(ctx: WasiContext, mem: GuestMemory, fd: int, path: int, path_len: int) -> int:
    with _resolve(ctx, mem, fd, path, path_len, False) as r:
        _must_exist(r)
        if r.is_dir:
            return abi.EISDIR
        os.unlink(r.name, dir_fd=r.dir_fd)
    return abi.SUCCESS


# -- polling, processes, scheduling, sockets ----------------------------------------------------
@wasi
def poll_oneoff(ctx: WasiContext, mem: GuestMemory, in_ptr: int, out_ptr: int, nsubscriptions: int,
                nevents: int) -> int:
    if nsubscriptions == 0:
        return abi.EINVAL
    raw = mem.read(in_ptr, nsubscriptions * abi.SUBSCRIPTION.size)
    mem.check(out_ptr, nsubscriptions * abi.EVENT.size)
    mem.check(nevents, 4)
    ready: list[bytes] = []
    timers: list[tuple[int, int]] = []  # (nanoseconds from now, userdata)
    for k in range(nsubscriptions):
        userdata, tag, body = abi.SUBSCRIPTION.unpack_from(raw, k * abi.SUBSCRIPTION.size)
        if tag == abi.EVENTTYPE_CLOCK:
            clock_id, timeout, _precision, flags = abi.SUBSCRIPTION_CLOCK.unpack(body)
            if flags & abi.SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME:
                timeout = timeout - ctx.clock.now(clock_id)  # an unknown clock fails the call (EINVAL)
            else:
                ctx.clock.resolution(clock_id)
            timers.append((max(0, timeout), userdata))
        elif tag in (abi.EVENTTYPE_FD_READ, abi.EVENTTYPE_FD_WRITE):
            # As wasmtime: a descriptor that cannot do what is waited for fails the whole call (EBADF);
            # regular files and stdio are always ready.
            (fd,) = abi.SUBSCRIPTION_FD.unpack_from(body)
            entry = ctx.fds.get(fd)
            if tag == abi.EVENTTYPE_FD_READ:
                if isinstance(entry, StdinEntry):
                    nbytes = 1
                elif isinstance(entry, RegularFile) and entry.readable:
                    nbytes = entry.poll_bytes()
                else:
                    return abi.EBADF
            elif isinstance(entry, OutputEntry) or isinstance(entry, RegularFile) and entry.writable:
                nbytes = 1
            else:
                return abi.EBADF
            ready.append(abi.EVENT.pack(userdata, abi.SUCCESS, tag, nbytes, 0))
        else:
            return abi.EINVAL
    if timers:
        wait = min(t for t, _ in timers)
        if not ready:
            ctx.clock.sleep(wait)
        else:
            wait = 0
        ready += [abi.EVENT.pack(u, abi.SUCCESS, abi.EVENTTYPE_CLOCK, 0, 0) for t, u in timers if t <= wait]
    mem.write(out_ptr, b"".join(ready))
    mem.write_u32(nevents, len(ready))
    return abi.SUCCESS


INVALID_EXIT = "exit with invalid exit status outside of [0..126)"


@wasi
def proc_exit(ctx: WasiContext, mem: GuestMemory, code: int) -> int:
    if code >= 126:  # as wasmtime: not an exit, an error (the command fails with status 1)
        ctx.error = INVALID_EXIT
        raise Trap(INVALID_EXIT)
    raise ProcExit(code)


@wasi
def proc_raise(ctx: WasiContext, mem: GuestMemory, sig: int) -> int:
    return abi.ENOTSUP


@wasi
def sched_yield(ctx: WasiContext, mem: GuestMemory) -> int:
    return abi.SUCCESS


def _no_socket(ctx: WasiContext, fd: int) -> int:
    ctx.fds.get(fd)
    return abi.ENOTSOCK  # no descriptor of this implementation is a socket


@wasi
def sock_accept(ctx: WasiContext, mem: GuestMemory, fd: int, flags: int, out: int) -> int:
    return _no_socket(ctx, fd)


@wasi
def sock_recv(ctx: WasiContext, mem: GuestMemory, fd: int, ri_data: int, ri_len: int, ri_flags: int,
              ro_len: int, ro_flags: int) -> int:
    return _no_socket(ctx, fd)


@wasi
def sock_send(ctx: WasiContext, mem: GuestMemory, fd: int, si_data: int, si_len: int, si_flags: int,
              so_len: int) -> int:
    return _no_socket(ctx, fd)


@wasi
def sock_shutdown(ctx: WasiContext, mem: GuestMemory, fd: int, how: int) -> int:
    return _no_socket(ctx, fd)


assert set(FUNCTIONS) == set(abi.SIGNATURES), set(abi.SIGNATURES) ^ set(FUNCTIONS)


# -- what a call will read, fetched for a round of calls at once (launch.py _prefetch) ----------------
# A path_* function reads its string arguments, parameters with their lengths beside them by these names;
# the functions that write out of an iovec array read its buffers.
_STRING_ARGS = (("path", "path_len"), ("old_path", "old_len"), ("new_path", "new_len"))
_GATHERS = frozenset({"fd_write", "fd_pwrite"})
ReadLevels = Iterator[list[tuple[int, int]]]


def read_plan(name: str) -> Callable[[GuestMemory, tuple[int, ...]], ReadLevels] | None:
    """The (address, length) ranges a call of `name` will read, level by level, or None if it reads none."""
    params = list(inspect.signature(FUNCTIONS[name]).parameters)[2:]
    strings = [(params.index(p), params.index(n)) for p, n in _STRING_ARGS if p in params and name.startswith("path_")]
    iovs = params.index("iovs") if name in _GATHERS else None
    if not strings and iovs is None:
        return None

    def plan(mem: GuestMemory, args: tuple[int, ...]) -> ReadLevels:
        ranges = [(args[p], args[n]) for p, n in strings]
        if iovs is not None:
            ranges.append((args[iovs], args[iovs + 1] * abi.IOVEC.size))
        yield [(a, n) for a, n in ranges if mem.fits(a, n)]
        if iovs is not None:
            try:
                vecs = mem.iovecs(args[iovs], args[iovs + 1])
            except WasiError:  # the call itself answers it
                return
            yield [(a, n) for a, n in vecs if n]

    return plan
