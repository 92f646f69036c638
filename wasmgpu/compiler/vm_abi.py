"""The constants the Python side and the VM (vm/vm.h) share, defined once here.

The parameter block's fields, the function-table, state, memory and table records, trap and status codes,
the function-table's host values (intrinsics, device-served imports, grow requests), REF_NULL, PAGE and
the numbers of the WASI calls the device serves (vm/wasi_fast.h).
`c_definitions()` writes them as C into the generated header vm/isa.h (compiler/isa.py), so vm.h uses these
names and never repeats a value; tests/test_isa.py fails when that header is stale.

An enumeration is a run of names with one prefix, numbered 0, 1, ... in the order they are defined here
(its last name is the count), and becomes a C enum of the name given in `ENUMS`.
"""

from __future__ import annotations

# The parameter block (enum Param): one u64 per entry, pointers to the store's arrays and scalars.
# P_EXT: the block of the device-served imports (wasi_fast.h WasiField), or 0.
# P_EXN: the instances' exceptions, u64 [1 + EXN_SLOTS * P_EXN_WIDTH][N] (vm.h exn_throw); P_EXN_WIDTH: the
# rows of one exception (seq, tag, count and the largest tag's payload); P_HANDLERS: the store's try_table
# regions and catch clauses, u32 (vm.h exn_throw; runtime/store.py handler_table).
# P_RAN: u8 per function, which the interpreter sets to 1 when it enters that function, or 0 for none (a
# store that profiles which functions run before building them: runtime/params.py).
# P_MAILBOX: the mailbox block (enum MailField) through which the host serves calls while the launch runs, or 0.
(P_CODE, P_FUNCS, P_NFUNCS, P_SLOTS, P_FRAMES, P_STATE, P_N, P_STACK_SLOTS, P_MAX_DEPTH, P_GLOBALS, P_MEMS,
 P_MEM_PAGES, P_TABLES, P_TABLE_SIZES, P_DATA, P_DATA_INFO, P_DATA_DROPPED, P_ELEM, P_ELEM_INFO, P_ELEM_DROPPED,
 P_FUEL_SLICE, P_SLOT_STRIDE, P_INST_STRIDE, P_FUEL_LEFT, P_EXT, P_EXN, P_EXN_WIDTH, P_HANDLERS, P_LOCKS,
 P_THREADS, P_INSTANCES, P_RAN, P_MAILBOX, P_COUNT) = range(34)
# A function's record in P_FUNCS (enum FuncField): u32 fields.
F_ENTRY, F_NPARAMS, F_NLOCALS, F_FRAME, F_SIG, F_HOST, F_FIELDS = range(7)
# An instance's state in P_STATE (enum StateField): u32 field f of instance i at [f * N + i].
# S_WAIT: memory.atomic.wait's parking (WAIT_*), the address waited on in S_WAIT_LO and the low 16 bits of
# S_WAIT_HI, its memory in the high 16; S_PARKS counts the lane's parks (the host's timeout is per park).
S_PC, S_FP, S_DEPTH, S_STATUS, S_TRAP, S_HOST_FUNC, S_HOST_FP, S_END_NS, S_WAIT, S_WAIT_LO, S_WAIT_HI, \
    S_PARKS, S_FIELDS = range(13)
WAIT_NONE, WAIT_PARKED, WAIT_NOTIFIED, WAIT_TIMED_OUT = range(4)
# A memory's record in P_MEMS (enum MemField): u64 base pointer, bytes per copy, max pages, and log2 of the
# lanes that share one copy (a shared memory of threads, which are lanes of one process; else 0).
M_BASE, M_CAP, M_MAX, M_SHIFT, M_FIELDS = range(5)
# A table's record in P_TABLES (enum TableField): u64 base pointer, entries per instance, max entries.
T_BASE, T_CAP, T_MAX, T_FIELDS = range(4)


# The mailbox (runtime/mailbox.py; vm.h mailbox_call): host memory both sides see while a launch runs. A lane
# whose call the host serves posts it there and waits, instead of ending its launch.
# The block (enum MailField): u64 pointers to the lanes' flags (u32 [N]), their heads (below) and
# the pool of bytes the ops move through, the pool's size, the store's memories, how long a lane waits for the
# host (ns) before it ends its launch, and MB_CLOSED: nonzero when the host stops serving (every lane leaves).
MB_FLAGS, MB_HEAD, MB_POOL, MB_POOL_BYTES, MB_MEMORIES, MB_WAIT_NS, MB_CLOSED, MB_FIELDS = range(8)
# A lane's head (enum MailHeadField), u64 rows of [row][N]: the call (function, frame), the releases the lane
# applied (MH_SEQ, counted by the lane), then what the host answers: the lane's new status and trap
# (MAIL_KEEP_TRAP: unchanged), the result count, and the ops to run first (count, and where their records start
# in the pool); from row MH_ARGS, MAIL_ARGS rows of the arguments' slots, then the results'.
MH_FUNC, MH_FP, MH_SEQ, MH_STATUS, MH_TRAP, MH_NRES, MH_OPS, MH_LIST, MH_ARGS = range(9)
MAIL_ARGS = 12
# An op's record in the pool (enum MailOpField), u64 each: kind (MAIL_READ: guest memory to the pool,
# MAIL_WRITE: the pool to guest memory) | memory << 8, guest address, length, offset of its bytes in the pool.
MO_KIND, MO_ADDR, MO_LEN, MO_AT, MO_FIELDS = range(5)
MAIL_READ, MAIL_WRITE = 1, 2
MAIL_KEEP_TRAP = 0xFFFFFFFF
# A lane's flag (enum MailBox): the lane posts (BOX_POSTED) and the host asks for ops (BOX_OPS, answered by
# BOX_ANSWERED) or releases it (BOX_RELEASE: ops, results and status, answered by BOX_APPLIED) or declines the
# call (BOX_DECLINED: the lane ends its launch and the host serves it after); a lane that waited its time out
# leaves BOX_ABANDONED.
BOX_IDLE, BOX_POSTED, BOX_OPS, BOX_ANSWERED, BOX_RELEASE, BOX_APPLIED, BOX_DECLINED, BOX_ABANDONED = range(8)

# WASI's errno values, in order (C: WASI_E<name>, WASI_SUCCESS).
WASI_ERRNO_NAMES = (
    "SUCCESS 2BIG ACCES ADDRINUSE ADDRNOTAVAIL AFNOSUPPORT AGAIN ALREADY BADF BADMSG BUSY CANCELED CHILD "
    "CONNABORTED CONNREFUSED CONNRESET DEADLK DESTADDRREQ DOM DQUOT EXIST FAULT FBIG HOSTUNREACH IDRM ILSEQ "
    "INPROGRESS INTR INVAL IO ISCONN ISDIR LOOP MFILE MLINK MSGSIZE MULTIHOP NAMETOOLONG NETDOWN NETRESET "
    "NETUNREACH NFILE NOBUFS NODEV NOENT NOEXEC NOLCK NOLINK NOMEM NOMSG NOPROTOOPT NOSPC NOSYS NOTCONN NOTDIR "
    "NOTEMPTY NOTRECOVERABLE NOTSOCK NOTSUP NOTTY NXIO OVERFLOW OWNERDEAD PERM PIPE PROTO PROTONOSUPPORT "
    "PROTOTYPE RANGE ROFS SPIPE SRCH STALE TIMEDOUT TXTBSY XDEV NOTCAPABLE"
).split()

# The WASI calls the device serves itself (vm/wasi_fast.h; host side wasi/fast.py).
# Which import a device-served function is (enum WasiKind, C names WK_<NAME>): F_HOST = DEVICE_IMPORT_BASE +
# its index here.
WASI_KINDS = ["args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
              "random_get", "fd_write", "proc_exit", "fd_prestat_get", "fd_prestat_dir_name", "path_open", "fd_read",
              "fd_pread", "fd_seek", "fd_tell", "fd_filestat_get", "fd_fdstat_get", "fd_close", "path_filestat_get",
              "fd_readdir", "path_create_directory", "path_unlink_file",
              # The `gpu` module's processes (wasi/processes.py; vm/processes.h), in a store with spares.
              "gpu_spawn", "gpu_wait", "gpu_output"]
# The block at P[P_EXT] (enum WasiField): one u64 per entry; per-instance arrays are [field][instance].
# W_MEM: the store address of the memory guest pointers refer to, NO_MEMORY until bound; W_FLAGS: u32 [N],
# WF_* bits per instance; W_STRINGS: u8 [], NUL-terminated args and environ strings of every instance;
# W_STRING_INFO: u64 [SI_FIELDS][N], where each instance's args and environ are in W_STRINGS; W_OUT: the
# output buffers, N buffers of W_OUT_CAP bytes in linear memory's layout; W_OUT_CAP: bytes per instance (a
# multiple of 4), 0 when fd_write is not served there; W_OUT_USED: u32 [N], bytes of records in each buffer;
# W_CLOCK: u64 [C_FIELDS][N]; W_RNG_KEY: u32 [8][N], a ChaCha20 key per instance; W_RNG_POS: u64 [N], bytes
# of the key's stream used so far; W_HOST_REALTIME, W_HOST_MONOTONIC: the host's clocks just before the
# launch (ns); W_TIMER_BASE: the device timer at the launch's first clock read (the host zeroes it).
# Files on the device (wasi/devfiles.py): W_FILE_DATA: u8 [], the distinct contents of the snapshot's files;
# W_FILE_INFO: u64 [files][FI_FIELDS]; W_FILE_STAT: u8 [files][64], each path's filestat at the snapshot;
# W_NAMES: u64 [slots][NT_FIELDS], an open-addressing table from (root, relative path) to a file, probed
# linearly from hash & W_NAME_MASK; W_NAME_BYTES: u8 [], the paths and the preopens' guest names;
# W_PRE_ROOT: u32 [DF_PREOPENS][N], the root of preopen fd 3 + k (DF_NO_ROOT past the last);
# W_PRE_NAME: u64 [DF_PREOPENS][N], its guest name (offset << 16 | length in W_NAME_BYTES);
# W_FD_META: u32 [FM_FIELDS][N], the instance's descriptor numbering (wasi/fds.py FdTable: the next new
# number and the freed ones); W_FD_FREE: u32 [DF_QUEUE][N]; W_FD_NUM, W_FD_FILE: u32 [DF_SLOTS][N],
# the descriptors the device opened (DF_NO_FD: a free slot) and their files; W_FD_POS: u64 [DF_SLOTS][N];
# W_FDSTATS: u8 [8][24], the fdstat records the device gives: a file it opened (row 0), a preopen that
# nothing changed (row 1), a directory it opened without and with W_DIR_FDFLAGS (rows 2, 3), a file it made, opened
# to write, or to read and write (rows 4, 5), the same with fdflag append (rows 6, 7); W_WRITE_RIGHTS:
# the rights path_open leaves to the host; W_OPEN_DIRECTORY: path_open's oflag that asks for a directory;
# W_DIR_FDFLAGS: the fdflags a directory keeps (NONBLOCK; a directory's W_FD_POS holds them). Directories
# of the snapshot are files of it too (their stat, no bytes) with a listing: W_DIR_INFO: u64 [dirs][DI_FIELDS];
# W_DIR_BYTES:
# u8 [], each listing as fd_readdir writes it from cookie 0 (".", "..", then the entries by name);
# W_DIR_OFFS: u64 [], per listing where each record starts, and its end; W_ROOT_DIR: u32 [roots], the file
# that is each root's own directory (DF_NO_FD: not listed).
(W_MEM, W_FLAGS, W_STRINGS, W_STRING_INFO, W_OUT, W_OUT_CAP, W_OUT_USED, W_CLOCK, W_RNG_KEY, W_RNG_POS,
 W_HOST_REALTIME, W_HOST_MONOTONIC, W_TIMER_BASE, W_FILE_DATA, W_FILE_INFO, W_FILE_STAT, W_NAMES, W_NAME_BYTES,
 W_NAME_MASK, W_PRE_ROOT, W_PRE_NAME, W_FD_META, W_FD_FREE, W_FD_NUM, W_FD_FILE, W_FD_POS, W_FDSTATS,
 W_WRITE_RIGHTS, W_OPEN_DIRECTORY, W_DIR_FDFLAGS, W_DIR_INFO, W_DIR_BYTES, W_DIR_OFFS, W_ROOT_DIR, W_STDIN,
 W_STDIN_INFO, W_STDIO_FDSTAT, W_STDIO_ROW, W_OV_HASH, W_OV_NAME, W_OV_DATA, W_OV_NAMES, W_OV_BUF, W_OV_CAP,
 W_ROOT_SHARED, W_OFLAGS_CREAT, W_OFLAGS_TRUNC, W_OFLAGS_EXCL, W_READ_RIGHTS, W_FDFLAGS_APPEND, W_PROC_META,
 W_PROC_FREE, W_PROC_OCCUPANT, W_PROC_RECS, W_PROC_CMD, W_PROC_HANDLES, W_PROC_OUT, W_COUNT) = range(58)
# Processes on the device (wasi/processes.py, vm/processes.h): W_PROC_META: u64 [PM_FIELDS]; W_PROC_FREE: u32 [],
# the spare processes free at the launch's start, the device taking them from the end; W_PROC_OCCUPANT: u32
# [processes], the handle of the child in a spare; W_PROC_RECS: u64 [spawns][RF_FIELDS], the launch's spawns in
# the order they took a spare (the k-th has handle PM_H0 + k); W_PROC_CMD: u8 [PM_CMD_CAP], their arguments and
# environments; W_PROC_HANDLES: u64 [handles][HF_FIELDS]; W_PROC_OUT: u8 [], the stdouts of the children the
# host has seen end.
# Files and directories made on the device (wasi/devfiles.py makes them on the host afterwards): per instance at
# most DF_OV_SLOTS, in the order made. W_OV_HASH: u64 [DF_OV_SLOTS][N], each one's path hash (as W_NAMES');
# W_OV_NAME: u64 [DF_OV_SLOTS][N], its path in the instance's W_OV_NAMES (length | offset << 16 | root << 32, OV_DIR
# for a directory, OV_REPLACE for a snapshot file truncated, OV_GONE once unlinked); W_OV_DATA: u64
# [DF_OV_SLOTS][N], a file's size; W_OV_NAMES, W_OV_BUF: N buffers of DF_OV_NAME_CAP and W_OV_CAP bytes in linear
# memory's layout, W_OV_BUF holding the instance's writes in the order made (each a record: u32 slot, u32 length,
# u64 position, the bytes padded to 4); W_OV_CAP 0: nothing is made on the device. W_ROOT_SHARED: u32 [roots], 1
# where another instance's preopen, or another of this instance's, reaches the same directory (a change there is the
# host's, so that every way in sees it); W_OFLAGS_CREAT, W_OFLAGS_TRUNC, W_OFLAGS_EXCL: path_open's oflags;
# W_READ_RIGHTS: the rights that open a file to read too; W_FDFLAGS_APPEND: the fdflag that appends.
# A descriptor's W_FD_FILE for a file made here: DF_OV_BIT | its slot (DF_OV_READ where it was opened to read too,
# DF_OV_APPEND where with fdflag W_FDFLAGS_APPEND: every write goes to the end; DF_OV_RDONLY where it was opened
# again to read only).
DF_OV_SLOTS = 16
DF_OV_NAME_CAP = 1024
DF_OV_BIT = 0x80000000
DF_OV_READ = 0x40000000
DF_OV_APPEND = 0x20000000
DF_OV_RDONLY = 0x10000000
DF_OV_FLAGS = DF_OV_BIT | DF_OV_READ | DF_OV_APPEND | DF_OV_RDONLY
OV_DIR = 1 << 63
OV_REPLACE = 1 << 62  # a file of the snapshot truncated and written anew
OV_GONE = 1 << 61  # a file made here and unlinked again
# fd_fdstat_get of fds 0-2 (wasi/fast.py) while WF_STDIO: W_STDIO_FDSTAT: u8 [rows][24], the distinct records;
# W_STDIO_ROW: u32 [3][N], each instance's row for fd 0, 1 and 2.
# Stdin on the device (wasi/fast.py): W_STDIN: u8 [], the distinct stdin contents of the instances whose fd 0
# reads known bytes (WF_STDIN); W_STDIN_INFO: u64 [SD_FIELDS][N] (enum WasiStdinField): where an instance's
# bytes are in W_STDIN, how many, and how far it has read.
SD_BASE, SD_LEN, SD_POS, SD_FIELDS = range(4)
# A file of the snapshot in W_FILE_INFO (enum DevFileField): where its bytes are in W_FILE_DATA, how many,
# its listing in W_DIR_INFO where it is a directory (DF_NOT_DIR: a regular file), its root, and its path
# (offset << 16 | length in W_NAME_BYTES; the root's own directory has the empty path).
FI_DATA, FI_SIZE, FI_DIR, FI_ROOT, FI_NAME, FI_FIELDS = range(6)
# A listing in W_DIR_INFO (enum DevDirField): where its records are in W_DIR_BYTES, how many, and where
# their offsets are in W_DIR_OFFS (count + 1 of them, the last the end).
DI_BYTES, DI_COUNT, DI_OFFS, DI_FIELDS = range(4)
DF_NOT_DIR = (1 << 64) - 1
# An entry of W_NAMES (enum DevNameField): the path's hash (FNV-1a 64 of the root's 4 bytes, little-endian,
# then the path), where its bytes are, its length | root << 32 (DF_EMPTY: an empty slot), its file.
NT_HASH, NT_NAME, NT_LEN_ROOT, NT_FILE, NT_FIELDS = range(5)
# An instance's descriptor numbering in W_FD_META (enum DevFdField): the next new number, and how many freed
# numbers W_FD_FREE holds (in no order: the largest is reused first); then how many files and directories it made
# here, the bytes of W_OV_BUF and W_OV_NAMES they use, and how many of them replace a snapshot file.
FM_NEXT, FM_NFREE, FM_OV_COUNT, FM_OV_USED, FM_OV_NAMES, FM_OV_REPLACED, FM_FIELDS = range(7)
# W_PROC_META (enum ProcMetaField): spares free now and at the launch's start, the first handle of the launch's
# spawns, command bytes used and their room, handles W_PROC_HANDLES has room for, whether the device may spawn,
# whether the children's kept stdouts are over their bound, the processes a call starts, lanes per process (log 2).
(PM_FREE, PM_FREE0, PM_H0, PM_CMD_USED, PM_CMD_CAP, PM_HANDLES, PM_SPAWN, PM_NOMEM, PM_FIRST, PM_SHIFT,
 PM_FIELDS) = range(11)
# A spawn in W_PROC_RECS (enum ProcSpawnField): the parent's lane, the spare, where its command is in W_PROC_CMD,
# the bytes of its arguments and of its environment, the parent's fuel left at the spawn (the child's).
RF_LANE, RF_SLOT, RF_CMD, RF_ARGS, RF_ENV, RF_FUEL, RF_FIELDS = range(7)
# A handle in W_PROC_HANDLES (enum ProcHandleField): its parent (processes.py's parent id + 1; 0: no child), whether the
# child ended and the host has its status (HF_ENDED), the status gpu.wait gives, where its stdout is in W_PROC_OUT
# (PROC_NO_OUT: not there, the host's to give) and its length.
HF_PARENT, HF_ENDED, HF_STATUS, HF_OUT_AT, HF_OUT_LEN, HF_FIELDS = range(6)
PROC_CHILD_BIT = 0x80000000  # a parent id that is a child's handle (else a process the call started)
PROC_NO_OUT = (1 << 64) - 1
MAX_COMMAND_BYTES = 1 << 20  # a child's arguments and environment together
DF_PREOPENS = 4  # an instance with more preopens has its files served by the host
DF_SLOTS = 8  # descriptors the device may hold open per instance; past that, path_open goes to the host
DF_QUEUE = 8  # freed numbers the device may hold
DF_PATH_MAX = 1024
DF_NO_ROOT = 0xFFFFFFFF
DF_NO_FD = 0xFFFFFFFF
DF_EMPTY = (1 << 64) - 1
# An instance's args and environ in W_STRING_INFO (enum WasiStringField).
SI_ARGS, SI_ARGC, SI_ARGS_SIZE, SI_ENV, SI_ENVC, SI_ENV_SIZE, SI_FIELDS = range(7)
# An instance's clock in W_CLOCK (enum WasiClockField); C_VALUE: virtual time, or the last monotonic read.
C_EPOCH, C_STEP, C_VALUE, C_FIELDS = range(4)
# W_FLAGS bits: fd 1 and fd 2 are still the original stdout and stderr; realtime and monotonic come from
# the host's clocks at launch plus the device timer; the seeded virtual clock (wasi/clocks.py VirtualClock);
# random_get from the instance's ChaCha20 stream.
# WF_FILES: the instance's preopened files are served on the device (wasi/devfiles.py); WF_STDIN: its fd_read of
# fd 0 is; WF_STDIO: its fd_fdstat_get of fds 0-2 is; WF_ARGS: its args and environ are (W_STRING_INFO holds them).
WF_STDOUT, WF_STDERR, WF_CLOCK_REAL, WF_CLOCK_VIRTUAL, WF_RANDOM, WF_FILES, WF_STDIN, WF_STDIO, WF_ARGS = (
    1, 2, 4, 8, 16, 32, 64, 128, 256)
WF_OUT_FD2 = 0x80000000  # in an output record's header: the record is for fd 2
NO_MEMORY = (1 << 64) - 1  # W_MEM before a memory is bound

ENUMS = {"P_": "Param", "F_": "FuncField", "S_": "StateField", "M_": "MemField", "T_": "TableField",
         "W_": "WasiField", "SI_": "WasiStringField", "C_": "WasiClockField", "FI_": "DevFileField",
         "NT_": "DevNameField", "FM_": "DevFdField", "DI_": "DevDirField", "SD_": "WasiStdinField",
         "PM_": "ProcMetaField", "RF_": "ProcSpawnField", "HF_": "ProcHandleField", "MB_": "MailField",
         "MH_": "MailHeadField", "MO_": "MailOpField", "BOX_": "MailBox"}

# Trap codes (C: TRAP_<name>) and their messages (the spec suite's wording).
TRAPS = [
    ("NONE", ""),
    ("UNREACHABLE", "unreachable"),
    ("DIV_ZERO", "integer divide by zero"),
    ("INT_OVERFLOW", "integer overflow"),
    ("BAD_CONVERSION", "invalid conversion to integer"),
    ("MEM_OOB", "out of bounds memory access"),
    ("UNDEFINED_ELEMENT", "undefined element"),
    ("UNINITIALIZED_ELEMENT", "uninitialized element"),
    ("SIG_MISMATCH", "indirect call type mismatch"),
    ("TABLE_OOB", "out of bounds table access"),
    ("STACK_EXHAUSTED", "call stack exhausted"),
    ("OUT_OF_FUEL", "all fuel consumed"),
    ("HOST", "host function failed"),
    ("UNALIGNED_ATOMIC", "unaligned atomic"),
    ("EXPECTED_SHARED", "expected shared memory"),
    ("WAIT_FOREVER", "wait would block forever: no other thread can notify"),
    ("NULL_FUNC_REF", "null function reference"),
    ("NULL_REF", "null reference"),
    ("UNCAUGHT_EXCEPTION", "uncaught wasm exception"),
    ("NULL_EXN_REF", "null exception reference"),
    ("EXPIRED_EXN_REF", "exception reference expired: more exceptions were thrown since than an instance keeps"),
    ("PARKED", "parked by memory.atomic.wait"),  # not a trap: vm_launch makes it status WAITING
    ("GROW_SHARED", "memory.grow of a shared memory"),  # not a trap: vm_launch grows it and runs on
    ("DEADLOCK", "deadlock: every running thread of the process waits, and none can notify"),
]
TRAP_CODE = {name: i for i, (name, _) in enumerate(TRAPS)}
TRAP_MESSAGE = [msg for _, msg in TRAPS]

# Instance status values (C: STATUS_<name>).
# DEVICECALL never reaches the host: the kernel serves the call (wasi_fast.h) between two vm_step runs; nor
# does OUTSIDE: the op at S_PC (SIMD, atomics), which the GPU's interpreter runs there too (vm.h outside_step).
# Nor does THROW: vm_launch unwinds to the handler (vm.h exn_throw).
# WAITING: parked by memory.atomic.wait until a notify (S_WAIT) or the host's timeout.
# TIER never reaches the host either: a store compiled in part left the tier that runs the function at S_PC
# (vm.h TIER_HOOK), and vm_launch runs the other one.
STATUSES = ["RUNNING", "DONE", "TRAPPED", "HOSTCALL", "EXITED", "DEVICECALL", "OUTSIDE", "THROW", "WAITING",
            "TIER"]
STATUS = {name: i for i, name in enumerate(STATUSES)}

# F_HOST values: a function with code; the `gpu` intrinsics the VM serves itself; the base of the imports
# the device may serve (DEVICE_IMPORT_BASE + a wasi_fast.h WasiKind), else the host serves them.
NO_HOST = 0xFFFFFFFF
INTRINSIC_BASE = 0xFFFFFF00
INTRINSIC_INSTANCE_ID = INTRINSIC_BASE
INTRINSIC_INSTANCE_COUNT = INTRINSIC_BASE + 1
DEVICE_IMPORT_BASE = 0xFFFFFE00
# What an instance in HOSTCALL waits on when it is not an import (S_HOST_FUNC): room to grow a memory or a
# table (S_HOST_FP: which one; S_TRAP: the size it asks for).
GROW_MEMORY = 0xFFFFFFFE
GROW_TABLE = 0xFFFFFFFD

# A null reference's raw value (funcref and externref).
REF_NULL = (1 << 64) - 1
# Exceptions each instance keeps (a power of two): an exnref held while this many more are thrown expires
# (throw_ref then traps, naming it), as there is no collector to know which ones are still referenced.
EXN_SLOTS = 16
# try_table's catch clauses (as wasm numbers them) in the handler table, and a catch-all's tag.
CATCH_ANY_TAG = 0xFFFFFFFF
NO_REGION = 0xFFFFFFFF  # a try_table region with none around it (vm.h exn_throw)
# Bytes in a wasm page.
PAGE = 65536
# How many C calls deep a compiled store's pieces call each other on the GPU (vm.h WG_NATIVE_DEPTH), whose
# stack the CUDA backend sizes from the built module's frames (vm/cubin.py).
GPU_NATIVE_DEPTH = 8

# The scalar constants above as C macros, by C type (the literal's suffix).
_DEFINES = {"u32": ("NO_HOST", "GROW_MEMORY", "GROW_TABLE", "INTRINSIC_BASE", "INTRINSIC_INSTANCE_ID",
                    "INTRINSIC_INSTANCE_COUNT", "DEVICE_IMPORT_BASE", "WF_STDOUT", "WF_STDERR", "WF_CLOCK_REAL",
                    "WF_CLOCK_VIRTUAL", "WF_RANDOM", "WF_FILES", "WF_STDIN", "WF_STDIO", "WF_ARGS", "WF_OUT_FD2",
                    "DF_PREOPENS",
                    "DF_SLOTS", "DF_QUEUE", "DF_OV_SLOTS", "DF_OV_NAME_CAP", "DF_OV_BIT", "DF_OV_READ",
                    "DF_OV_APPEND", "DF_OV_RDONLY", "DF_OV_FLAGS",
                    "DF_PATH_MAX", "DF_NO_ROOT", "DF_NO_FD", "EXN_SLOTS", "CATCH_ANY_TAG",
                    "NO_REGION", "PROC_CHILD_BIT", "MAX_COMMAND_BYTES",
                    "WAIT_NONE", "WAIT_PARKED", "WAIT_NOTIFIED", "WAIT_TIMED_OUT", "GPU_NATIVE_DEPTH", "MAIL_ARGS",
                    "MAIL_READ", "MAIL_WRITE", "MAIL_KEEP_TRAP"),
            "u64": ("REF_NULL", "PAGE", "NO_MEMORY", "PROC_NO_OUT", "DF_EMPTY", "DF_NOT_DIR", "OV_DIR", "OV_REPLACE",
                    "OV_GONE")}
_SUFFIX = {"u32": "u", "u64": "ull"}


def enum_names(prefix: str) -> list[str]:
    """The names of the enumeration with this prefix, in their order."""
    names = [k for k, v in globals().items() if k.startswith(prefix) and k[len(prefix):].isupper()
             and isinstance(v, int)]
    assert [globals()[k] for k in names] == list(range(len(names))), f"{prefix}* is not numbered 0, 1, ..."
    return names


def c_definitions() -> list[str]:
    """The constants as C lines, for vm/isa.h."""
    kinds = [f"WK_{k.upper()}" for k in WASI_KINDS] + ["WK_COUNT"]
    out = ["enum WasiKind { " + ", ".join(f"{k} = {i}" for i, k in enumerate(kinds)) + " };"]
    for prefix, cname in ENUMS.items():
        out.append(f"enum {cname} {{ " + ", ".join(f"{k} = {i}" for i, k in enumerate(enum_names(prefix))) + " };")
    out += [f"#define TRAP_{name} {i}" for i, (name, _) in enumerate(TRAPS)]
    out += [f"#define STATUS_{name} {i}" for i, name in enumerate(STATUSES)]
    out += [f"#define WASI_{'' if name == 'SUCCESS' else 'E'}{name} {i}u" for i, name in enumerate(WASI_ERRNO_NAMES)]
    for ctype, names in _DEFINES.items():
        out += [f"#define {k} 0x{globals()[k]:x}{_SUFFIX[ctype]}" if globals()[k] > 0xFFFFF
                else f"#define {k} {globals()[k]}{_SUFFIX[ctype]}" for k in names]
    return out
