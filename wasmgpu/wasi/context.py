"""The WASI state of one instance: arguments, environment, descriptors, clock and randomness."""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import WasmGpuError
from .clocks import RealClock, SystemRandom, VirtualClock
from .fds import BytesStdin, DirEntry, Entry, FdTable, OutputEntry, Sink, StdinEntry, StdinSource


class BufferSink:
    """Collects what the guest writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


class OutputBudget:
    """The bytes that a set of SpoolSinks hold in memory together, and the most they may: past `total`,
    the sinks holding the most write theirs out until half of `total` is left."""

    def __init__(self, total: int = 64 << 20, spill_max: int | None = None) -> None:
        self.total = total
        self.held = 0
        self.sinks: list[SpoolSink] = []
        # What the sinks' files may hold together (a spool in a temporary directory, which the user did not
        # ask for: it must not fill the disk); past it a write fails with ENOSPC.
        self.spill_max = spill_max
        self.spilled = 0
        self.full = False  # a write was refused

    def add(self, sink: SpoolSink) -> None:
        self.sinks.append(sink)

    def grew(self) -> None:
        if self.held > self.total:
            chosen = []
            left = self.held
            for sink in sorted(self.sinks, key=lambda s: len(s.data), reverse=True):
                if left <= self.total // 2:
                    break
                chosen.append(sink)
                left -= len(sink.data)
            flush_sinks(chosen)


class ShardFile:
    """One file that many sinks append their bytes to, each sink keeping where its pieces are: a spool of
    one file where one per instance would cost a file creation each, which the file system serializes
    (a worker process's range, or a batch's spool). Opened once, at the first write or read."""

    def __init__(self, path: str, existing: bool = False) -> None:
        """`existing`: the file was written by someone else (a worker process): read, and appended to."""
        self.path = path
        self.existing = existing
        self.size = os.stat(path).st_size if existing else 0
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (0 if self.existing else os.O_TRUNC)
            self._fd = os.open(self.path, flags, 0o600)
            self.existing = True  # opened again after close(): what it holds stays
        return self._fd

    def append(self, pieces: list[bytearray]) -> list[int]:
        """The pieces written one after another in one write; the offset of each."""
        fd = self._open()
        offsets = []
        at = self.size
        for piece in pieces:
            offsets.append(at)
            at += len(piece)
        view = memoryview(b"".join(pieces))
        pos = self.size
        while view:
            k = os.pwrite(fd, view, pos)
            view, pos = view[k:], pos + k
        self.size = at
        return offsets

    def read(self, offset: int, length: int) -> bytes:
        fd = self._open()
        parts = []
        while length > 0:
            got = os.pread(fd, length, offset)
            if not got:
                raise OSError(errno.EIO, f"{self.path}: shorter than its index says")
            parts.append(got)
            offset, length = offset + len(got), length - len(got)
        return b"".join(parts)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SpoolSink:
    """Output kept in memory up to `limit` bytes (and within `budget`, shared by a batch's sinks), then
    appended to the file at `path`, or to its place in `shard`, so that a guest that writes gigabytes costs
    disk, not memory.

    The file is not held open (a batch of thousands of instances would need two host files per
    instance); it is created, or truncated, at the first flush, so a sink that is flushed once costs one
    open. With `keep_empty=False` no file is made for a sink that never spills (a temporary spool).
    """

    def __init__(self, path: str | os.PathLike[str], limit: int = 1 << 20, budget: OutputBudget | None = None,
                 keep_empty: bool = True, exists: bool = False, shard: ShardFile | None = None) -> None:
        """`exists`: the file is there already, written by someone else (a worker process): appended to."""
        self.path = path
        self.limit = limit
        self.budget = budget
        self.keep_empty = keep_empty
        self.shard = shard
        self.segments: list[tuple[int, int]] = []  # (offset, length) of each piece written to `shard`
        self.data = bytearray()  # what is held, after what is in the file
        self.created = exists
        self.spilled = 0  # bytes in the file
        self.pending: Future[None] | None = None  # its bytes handed to a FileWriter, perhaps not yet written
        if budget is not None:
            budget.add(self)

    def write(self, data: bytes) -> int:
        b = self.budget
        if b is not None and b.spill_max is not None and b.spilled + b.held + len(data) > b.spill_max:
            b.full = True
            raise OSError(errno.ENOSPC, "the batch's output spool is full")
        self.data += data
        if b is not None:
            b.held += len(data)
        if len(self.data) >= self.limit:
            self.flush_to_file()
        elif self.budget is not None:
            self.budget.grew()
        return len(data)

    def flush_to_file(self) -> None:
        """Append what is held to the file, creating it (empty, if nothing was written) the first time."""
        if self.shard is not None:
            flush_sinks([self])
            return
        if not self._writes():
            return
        if self.pending is not None:  # appended after what a FileWriter writes
            self.pending.result()
        _write_file(self.path, self.data, self.created)
        self.created = True
        self._spilled()

    def detach(self) -> tuple[str | os.PathLike[str], bytearray, bool] | None:
        """For a sink whose instance has ended: what flush_to_file would write (path, bytes, whether
        appended), taken from the sink as if written; None where it would write nothing."""
        if not self._writes():
            return None
        job = (self.path, self.data, self.created)
        self.created = True
        self._spilled()
        return job

    def _writes(self) -> bool:
        """Whether its file has something to be given: bytes held, or a first (empty) creation kept."""
        return bool(self.data) or (not self.created and self.keep_empty)

    def _spilled(self) -> None:
        self.spilled += len(self.data)
        if self.budget is not None:
            self.budget.held -= len(self.data)
            self.budget.spilled += len(self.data)
        self.data = bytearray()  # a fresh buffer: clear() could keep a large allocation

    def discard(self) -> None:
        """Drop what is held (written elsewhere whole): nothing more of it is read."""
        if self.budget is not None:
            self.budget.held -= len(self.data)
        self.data = bytearray()

    def __len__(self) -> int:
        return self.spilled + len(self.data)

    def whole(self) -> bytes:
        """Everything written, in one piece."""
        if not self.spilled and self.pending is None:  # all held: one copy, no pieces to join
            return bytes(self.data)
        return b"".join(self.chunks())

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Everything written, in order, in pieces of at most `size` bytes: the file, then what is held."""
        if self.pending is not None:
            self.pending.result()
        if self.shard is not None:
            for offset, length in self.segments:
                for at in range(0, length, size):
                    yield self.shard.read(offset + at, min(size, length - at))
        elif self.created and self.spilled:
            with open(self.path, "rb") as f:
                while chunk := f.read(size):
                    yield chunk
        for at in range(0, len(self.data), size):
            yield bytes(self.data[at:at + size])


def _write_file(path: str | os.PathLike[str], data: bytes | bytearray, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class FileWriter:
    """Writes the files of ended instances' sinks on a thread of its own, so that making them (a creation
    each, which the file system serializes within a directory: 200,000 --out files took a batch's workers
    8 s or more) overlaps the next wave's run. A failed write is raised at the next submit() or at wait().
    The bytes handed over and not yet written are at most `held` (past it, submit waits for the oldest)."""

    def __init__(self, held: int = 64 << 20) -> None:
        self.held = held
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Future[None], int]] = []  # each submit's writes and their bytes

    def submit(self, sinks: Iterable[SpoolSink]) -> None:
        self._raise_failed()  # before these sinks' bytes are taken
        detached = [(s, job) for s in sinks if (job := s.detach()) is not None]
        if not detached:
            return
        size = sum(len(job[1]) for _, job in detached)
        while self._pending and sum(n for _, n in self._pending) + size > self.held:
            self._pending.pop(0)[0].result()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="gpu-run-files")
        future = self._pool.submit(_write_files, [job for _, job in detached])
        self._pending.append((future, size))
        for s, _ in detached:
            s.pending = future

    def _raise_failed(self) -> None:
        for item in [item for item in self._pending if item[0].done()]:
            self._pending.remove(item)
            item[0].result()

    def wait(self) -> None:
        """Every file submitted written (or the first failure raised)."""
        try:
            while self._pending:
                self._pending.pop(0)[0].result()
        finally:
            if self._pool is not None and not self._pending:
                self._pool.shutdown()
                self._pool = None


def _write_files(jobs: list[tuple[str | os.PathLike[str], bytearray, bool]]) -> None:
    for path, data, append in jobs:
        _write_file(path, data, append)


def flush_sinks(sinks: Iterable[SpoolSink]) -> None:
    """Each sink's held bytes written out: those of a shard together, in one write to it; the others each
    to its file."""
    by_shard: dict[int, list[SpoolSink]] = {}
    for sink in sinks:
        if sink.shard is None:
            sink.flush_to_file()
        elif sink.data:
            by_shard.setdefault(id(sink.shard), []).append(sink)
    for group in by_shard.values():
        offsets = group[0].shard.append([s.data for s in group])  # type: ignore[union-attr]
        for sink, offset in zip(group, offsets, strict=True):
            sink.segments.append((offset, len(sink.data)))
            sink._spilled()


@functools.lru_cache(maxsize=1024)
def _real_parent(head: str) -> str | None:
    """Where directory `head` (an absolute path up to and with its last separator) really is, with a
    separator after it; None where `head` has a ".." component (resolved with what follows it instead)."""
    head = head.rstrip(os.sep) or head  # as os.path.split leaves it
    if ".." in head.split(os.sep):
        return None
    return os.path.join(os.path.realpath(os.path.normpath(head)), "")


def preopen_root(host: str) -> tuple[str, os.stat_result | None]:
    """Where directory `host` really is, and its stat (None if nothing is there). A batch's preopens are
    usually siblings (ROOT/{i}): the parent is resolved once, and a last component that is no link costs
    one lstat."""
    at = host.rfind(os.sep) + 1
    tail = host[at:]
    if tail and tail != "." and tail != "..":
        head = host[:at]
        if not head.startswith(os.sep):  # made absolute before the cache: the working directory may change
            head = os.path.join(os.getcwd(), head)
        parent = _real_parent(head)
        if parent is not None:
            try:
                info = os.lstat(host)
            except OSError:
                info = None
            if info is not None and not stat.S_ISLNK(info.st_mode):
                return parent + tail, info
    root = os.path.realpath(host)
    try:
        return root, os.stat(root)
    except OSError:
        return root, None


class WasiContext:
    """What one instance sees through WASI.

    `preopens` are (host directory, guest name) pairs, numbered from fd 3 in order; `stdin` is
    the bytes to read (or a source with read/available); `stdout`/`stderr` take what is written
    (a BufferSink each when not given).
    """

    def __init__(self, args: Iterable[str] = (), env: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                 preopens: Iterable[tuple[str, str]] = (), stdin: bytes | StdinSource = b"",
                 stdout: Sink | None = None, stderr: Sink | None = None, clock: RealClock | VirtualClock | None = None,
                 random: object | None = None, stdout_tty: bool = False, stderr_tty: bool = False,
                 roots: dict[str, tuple[str, os.stat_result | None]] | None = None) -> None:
        """`roots`: preopen_root's answers already had for host paths, shared by the contexts of a batch made
        together (many instances preopen the same directory), and added to."""
        # os.fsencode: arguments the host could not decode (surrogate escapes) go to the guest as given
        self.args = [os.fsencode(a) for a in args]
        items = env.items() if isinstance(env, Mapping) else env
        self.env = [os.fsencode(f"{k}={v}") for k, v in items]
        self.preopens = list(preopens)  # a child process (processes.py) gets the same
        self.stdout = stdout if stdout is not None else BufferSink()
        self.stderr = stderr if stderr is not None else BufferSink()
        self.clock = clock if clock is not None else RealClock()
        self.random = random if random is not None else SystemRandom()
        self.error: str | None = None  # why the instance was stopped, when not a trap of its own
        entries: list[Entry] = [StdinEntry(BytesStdin(stdin) if isinstance(stdin, bytes | bytearray) else stdin),
                                OutputEntry(self.stdout, stdout_tty), OutputEntry(self.stderr, stderr_tty)]
        for host, guest in self.preopens:
            known = roots.get(host) if roots is not None else None
            if known is None:
                known = preopen_root(host)
                if roots is not None:
                    roots[host] = known
            root, info = known
            if info is None:  # missing, or a link that leads nowhere (or round in a loop)
                raise WasmGpuError(f"preopened directory {host!r} does not exist")
            if not stat.S_ISDIR(info.st_mode):
                raise WasmGpuError(f"preopened directory {host!r} is not a directory")
            entries.append(DirEntry(root, guest, info=info))
        self.fds = FdTable(entries)

    @classmethod
    def seeded(cls, seed: int | str, index: int, **kw: object) -> WasiContext:
        """A context whose clock and random bytes depend only on (seed, index)."""
        from .clocks import SeededRandom

        return cls(clock=VirtualClock(), random=SeededRandom(seed, index), **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.fds.close_all()
