"""The WASI preview1 ABI: errno values, flags, rights, struct layouts and the function signatures.

Everything here follows the witx definition of `wasi_snapshot_preview1` (as in wasi-libc's
wasi/api.h): little-endian, 32-bit pointers.
"""

from __future__ import annotations

import errno as _errno
import struct

from ..compiler.vm_abi import WASI_ERRNO_NAMES
from ..wasm import opcodes as wo

MODULE = "wasi_snapshot_preview1"

# -- errno --------------------------------------------------------------------------------------
ERRNO_NAMES = WASI_ERRNO_NAMES
ERRNO = {name: i for i, name in enumerate(ERRNO_NAMES)}

SUCCESS = 0
E2BIG = 1
EACCES = 2
EAGAIN = 6
EBADF = 8
EBUSY = 10
EEXIST = 20
EFAULT = 21
EILSEQ = 25
EINVAL = 28
EIO = 29
EISDIR = 31
ELOOP = 32
ENAMETOOLONG = 37
ENOENT = 44
ENOSYS = 52
ENOTDIR = 54
ENOTEMPTY = 55
ENOTSOCK = 57
ENOTSUP = 58
EOVERFLOW = 61
EPERM = 63
ESPIPE = 70
EXDEV = 75
ENOTCAPABLE = 76


def _host_errno_table() -> dict[int, int]:
    table = {}
    for name, value in ERRNO.items():
        host = getattr(_errno, "E" + name, None)
        if host is not None and name != "SUCCESS":
            table.setdefault(host, value)
    for alias, name in (("EWOULDBLOCK", "AGAIN"), ("EOPNOTSUPP", "NOTSUP"), ("EDEADLOCK", "DEADLK")):
        host = getattr(_errno, alias, None)
        if host is not None:
            table.setdefault(host, ERRNO[name])
    return table


HOST_ERRNO = _host_errno_table()


def from_host_errno(code: int | None) -> int:
    """The WASI errno for a host errno (EIO when it has no WASI counterpart)."""
    return HOST_ERRNO.get(code or 0, EIO)


# -- file types, flags, rights ------------------------------------------------------------------
FILETYPE_UNKNOWN = 0
FILETYPE_BLOCK_DEVICE = 1
FILETYPE_CHARACTER_DEVICE = 2
FILETYPE_DIRECTORY = 3
FILETYPE_REGULAR_FILE = 4
FILETYPE_SOCKET_DGRAM = 5
FILETYPE_SOCKET_STREAM = 6
FILETYPE_SYMBOLIC_LINK = 7

FDFLAGS_APPEND = 1
FDFLAGS_DSYNC = 2
FDFLAGS_NONBLOCK = 4
FDFLAGS_RSYNC = 8
FDFLAGS_SYNC = 16

OFLAGS_CREAT = 1
OFLAGS_DIRECTORY = 2
OFLAGS_EXCL = 4
OFLAGS_TRUNC = 8

LOOKUPFLAGS_SYMLINK_FOLLOW = 1

WHENCE_SET = 0
WHENCE_CUR = 1
WHENCE_END = 2

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3

EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2
EVENTRWFLAGS_FD_READWRITE_HANGUP = 1
SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME = 1

FSTFLAGS_ATIM = 1
FSTFLAGS_ATIM_NOW = 2
FSTFLAGS_MTIM = 4
FSTFLAGS_MTIM_NOW = 8

PREOPENTYPE_DIR = 0

RIGHT_NAMES = (
    "FD_DATASYNC FD_READ FD_SEEK FD_FDSTAT_SET_FLAGS FD_SYNC FD_TELL FD_WRITE FD_ADVISE FD_ALLOCATE "
    "PATH_CREATE_DIRECTORY PATH_CREATE_FILE PATH_LINK_SOURCE PATH_LINK_TARGET PATH_OPEN FD_READDIR "
    "PATH_READLINK PATH_RENAME_SOURCE PATH_RENAME_TARGET PATH_FILESTAT_GET PATH_FILESTAT_SET_SIZE "
    "PATH_FILESTAT_SET_TIMES FD_FILESTAT_GET FD_FILESTAT_SET_SIZE FD_FILESTAT_SET_TIMES PATH_SYMLINK "
    "PATH_REMOVE_DIRECTORY PATH_UNLINK_FILE POLL_FD_READWRITE SOCK_SHUTDOWN SOCK_ACCEPT"
).split()
RIGHTS = {name: 1 << i for i, name in enumerate(RIGHT_NAMES)}
RIGHTS_ALL = (1 << len(RIGHT_NAMES)) - 1
R_FD_READ = RIGHTS["FD_READ"]
R_FD_WRITE = RIGHTS["FD_WRITE"]
R_FD_SEEK = RIGHTS["FD_SEEK"]
R_FD_TELL = RIGHTS["FD_TELL"]
R_FD_READDIR = RIGHTS["FD_READDIR"]


def _rights(*names: str) -> int:
    out = 0
    for n in names:
        out |= RIGHTS[n]
    return out


# What a regular file and a directory may do; a new descriptor gets what was asked within these.
FILE_RIGHTS = _rights("FD_DATASYNC", "FD_READ", "FD_SEEK", "FD_FDSTAT_SET_FLAGS", "FD_SYNC", "FD_TELL",
                      "FD_WRITE", "FD_ADVISE", "FD_ALLOCATE", "FD_FILESTAT_GET", "FD_FILESTAT_SET_SIZE",
                      "FD_FILESTAT_SET_TIMES", "POLL_FD_READWRITE")
DIR_RIGHTS = _rights("FD_FDSTAT_SET_FLAGS", "FD_SYNC", "FD_ADVISE", "PATH_CREATE_DIRECTORY", "PATH_CREATE_FILE",
                     "PATH_LINK_SOURCE", "PATH_LINK_TARGET", "PATH_OPEN", "FD_READDIR", "PATH_READLINK",
                     "PATH_RENAME_SOURCE", "PATH_RENAME_TARGET", "PATH_FILESTAT_GET", "PATH_FILESTAT_SET_SIZE",
                     "PATH_FILESTAT_SET_TIMES", "FD_FILESTAT_GET", "FD_FILESTAT_SET_TIMES", "PATH_SYMLINK",
                     "PATH_REMOVE_DIRECTORY", "PATH_UNLINK_FILE")
STDIO_RIGHTS = _rights("FD_READ", "FD_WRITE", "FD_FDSTAT_SET_FLAGS", "FD_FILESTAT_GET", "POLL_FD_READWRITE")
# Rights that open a file for writing (as in wasmtime: FD_WRITE alone; the rest can be had read-only).
WRITE_RIGHTS = _rights("FD_WRITE")

# -- struct layouts -----------------------------------------------------------------------------
IOVEC = struct.Struct("<II")  # buf, buf_len
FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights_base, rights_inheriting (24 bytes)
FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim (64 bytes)
DIRENT = struct.Struct("<QQIBxxx")  # d_next, d_ino, d_namlen, d_type (24 bytes)
PRESTAT = struct.Struct("<BxxxI")  # tag, pr_name_len (8 bytes)
SUBSCRIPTION = struct.Struct("<QB7x32s")  # userdata, tag, union contents (48 bytes)
SUBSCRIPTION_CLOCK = struct.Struct("<I4xQQH6x")  # id, timeout, precision, flags (32 bytes)
SUBSCRIPTION_FD = struct.Struct("<I")  # file_descriptor
EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags (32 bytes)
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

assert (IOVEC.size, FDSTAT.size, FILESTAT.size, DIRENT.size, PRESTAT.size, SUBSCRIPTION.size, EVENT.size) == (
    8, 24, 64, 24, 8, 48, 32)

# -- the functions ------------------------------------------------------------------------------
I32, I64 = wo.I32_T, wo.I64_T
_SIG_TEXT = {
    "args_get": "ii:i",
    "args_sizes_get": "ii:i",
    "environ_get": "ii:i",
    "environ_sizes_get": "ii:i",
    "clock_res_get": "ii:i",
    "clock_time_get": "iIi:i",
    "fd_advise": "iIIi:i",
    "fd_allocate": "iII:i",
    "fd_close": "i:i",
    "fd_datasync": "i:i",
    "fd_fdstat_get": "ii:i",
    "fd_fdstat_set_flags": "ii:i",
    "fd_fdstat_set_rights": "iII:i",
    "fd_filestat_get": "ii:i",
    "fd_filestat_set_size": "iI:i",
    "fd_filestat_set_times": "iIIi:i",
    "fd_pread": "iiiIi:i",
    "fd_prestat_get": "ii:i",
    "fd_prestat_dir_name": "iii:i",
    "fd_pwrite": "iiiIi:i",
    "fd_read": "iiii:i",
    "fd_readdir": "iiiIi:i",
    "fd_renumber": "ii:i",
    "fd_seek": "iIii:i",
    "fd_sync": "i:i",
    "fd_tell": "ii:i",
    "fd_write": "iiii:i",
    "path_create_directory": "iii:i",
    "path_filestat_get": "iiiii:i",
    "path_filestat_set_times": "iiiiIIi:i",
    "path_link": "iiiiiii:i",
    "path_open": "iiiiiIIii:i",
    "path_readlink": "iiiiii:i",
    "path_remove_directory": "iii:i",
    "path_rename": "iiiiii:i",
    "path_symlink": "iiiii:i",
    "path_unlink_file": "iii:i",
    "poll_oneoff": "iiii:i",
    "proc_exit": "i:",
    "proc_raise": "i:i",
    "sched_yield": ":i",
    "random_get": "ii:i",
    "sock_accept": "iii:i",
    "sock_recv": "iiiiii:i",
    "sock_send": "iiiii:i",
    "sock_shutdown": "ii:i",
}


def _parse_sig(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    params, results = text.split(":")
    conv = {"i": I32, "I": I64}
    return tuple(conv[c] for c in params), tuple(conv[c] for c in results)


SIGNATURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {k: _parse_sig(v) for k, v in _SIG_TEXT.items()}
