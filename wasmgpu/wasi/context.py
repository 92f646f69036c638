"""The WASI state of one instance: arguments, environment, descriptors, clock and randomness."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ..errors import WasmGpuError
from .clocks import RealClock, SystemRandom, VirtualClock
from .fds import BytesStdin, DirEntry, FdTable, OutputEntry, Sink, StdinEntry, StdinSource


class BufferSink:
    """Collects what the guest writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


class SpoolSink:
    """Writes to a file without holding it open: bytes are kept until `limit` of them, then appended.

    A batch of thousands of instances would otherwise need two open host files per instance. The file is
    created (truncated) at the first flush, so a sink that is flushed once costs one open.
    """

    def __init__(self, path: str | os.PathLike[str], limit: int = 1 << 20) -> None:
        self.path = path
        self.limit = limit
        self.data = bytearray()
        self.created = False

    def write(self, data: bytes) -> int:
        self.data += data
        if len(self.data) >= self.limit:
            self.flush_to_file()
        return len(data)

    def flush_to_file(self) -> None:
        """Append what is held to the file, creating it (empty, if nothing was written) the first time."""
        if self.data or not self.created:
            with open(self.path, "ab" if self.created else "wb") as f:
                f.write(self.data)
            self.created = True
            self.data.clear()


class WasiContext:
    """What one instance sees through WASI.

    `preopens` are (host directory, guest name) pairs, numbered from fd 3 in order; `stdin` is
    the bytes to read (or a source with read/available); `stdout`/`stderr` take what is written
    (a BufferSink each when not given).
    """

    def __init__(self, args: Iterable[str] = (), env: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                 preopens: Iterable[tuple[str, str]] = (), stdin: bytes | StdinSource = b"",
                 stdout: Sink | None = None, stderr: Sink | None = None, clock: RealClock | VirtualClock | None = None,
                 random: object | None = None, stdout_tty: bool = False, stderr_tty: bool = False) -> None:
        self.args = [a.encode() for a in args]
        items = env.items() if isinstance(env, Mapping) else env
        self.env = [f"{k}={v}".encode() for k, v in items]
        self.stdout = stdout if stdout is not None else BufferSink()
        self.stderr = stderr if stderr is not None else BufferSink()
        self.clock = clock if clock is not None else RealClock()
        self.random = random if random is not None else SystemRandom()
        self.error: str | None = None  # why the instance was stopped, when not a trap of its own
        self.fds = FdTable()
        self.fds.add(StdinEntry(BytesStdin(stdin) if isinstance(stdin, bytes | bytearray) else stdin))
        self.fds.add(OutputEntry(self.stdout, stdout_tty))
        self.fds.add(OutputEntry(self.stderr, stderr_tty))
        for host, guest in preopens:
            root = os.path.realpath(host)
            if not os.path.isdir(root):
                raise WasmGpuError(f"preopened directory {host!r} is not a directory")
            self.fds.add(DirEntry(root, guest))

    @classmethod
    def seeded(cls, seed: int | str, index: int, **kw: object) -> WasiContext:
        """A context whose clock and random bytes depend only on (seed, index)."""
        from .clocks import SeededRandom

        return cls(clock=VirtualClock(), random=SeededRandom(seed, index), **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.fds.close_all()
