"""Running a WASI command (a module exporting `_start`) in N instances, as `wasmtime run` would in one.

The CLI (gpu-run) parses options and prints; this module builds the per-instance contexts,
runs the batch with fuel and a timeout, and says how each instance ended.
"""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compiler.vm_abi import STATUS
from ..errors import Trap, capped_backtrace
from ..runtime.store import U64_MAX, CallResult, FuncExtern, Store
from ..wasm.types import Module
from . import abi
from .batch import HostInterrupt, Wasi
from .clocks import RealClock
from .context import WasiContext

EXIT_TRAP = 134  # wasmtime on Unix: a trap exits like SIGABRT (128 + 6)
EXIT_ERROR = 1  # wasmtime: any other error (e.g. proc_exit with a status >= 126)
FUEL_TRAP = "all fuel consumed"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
INTERRUPTED = "interrupted"  # the trap of an instance stopped by Ctrl-C

# wasmtime's wording of the traps whose names differ from the spec tests' wording used by the store.
WASMTIME_TRAP_TEXT = {
    "unreachable": "wasm `unreachable` instruction executed",
    "all fuel consumed": "all fuel consumed by WebAssembly",
}


# wasmtime shows a function name through cpp_demangle when it is not a Rust symbol, and that takes a lone
# builtin-type code for a symbol: a C function named `f` shows as `float`.
CPP_BUILTIN_TYPES = {
    "a": "signed char", "b": "bool", "c": "char", "d": "double", "e": "long double", "f": "float",
    "g": "__float128", "h": "unsigned char", "i": "int", "j": "unsigned int", "l": "long", "m": "unsigned long",
    "n": "__int128", "o": "unsigned __int128", "s": "short", "t": "unsigned short", "v": "void", "w": "wchar_t",
    "x": "long long", "y": "unsigned long long", "z": "...",
}
_RUST_ESCAPES = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ","}


def _rust_segment(text: str) -> str:
    """One element of a legacy Rust symbol unescaped, as rustc-demangle does (`$LT$` is `<`, `..` is `::`)."""
    if text.startswith("_$"):
        text = text[1:]
    out = []
    while text:
        if text.startswith("."):
            out.append("::" if text.startswith("..") else ".")
            text = text[2:] if text.startswith("..") else text[1:]
        elif text.startswith("$"):
            end = text.find("$", 1)
            if end < 0:
                break
            code = text[1:end]
            if code in _RUST_ESCAPES:
                out.append(_RUST_ESCAPES[code])
            elif code.startswith("u") and re.fullmatch(r"[0-9a-f]+", code[1:]) and int(code[1:], 16) < 0x110000:
                out.append(chr(int(code[1:], 16)))
            else:
                break
            text = text[end + 1:]
        else:
            cut = min((k for k in (text.find("$"), text.find(".")) if k >= 0), default=len(text))
            out.append(text[:cut])
            text = text[cut:]
    return "".join(out) + text


def demangle(name: str) -> str:
    """A function name as wasmtime shows it: a legacy Rust symbol (`_ZN...E`) demangled with its hash kept
    (`core::panicking::panic::h0123...`); a lone builtin-type code as cpp_demangle reads it. Other C++ and
    Rust v0 (`_R...`) symbols are left as they are."""
    if name in CPP_BUILTIN_TYPES:
        return CPP_BUILTIN_TYPES[name]
    m = re.match(r"(?:_ZN|ZN|__ZN)", name)
    if m is None or not name.isascii():
        return name
    rest = re.sub(r"\.llvm\.[0-9A-F@]+$", "", name[m.end():], flags=re.IGNORECASE)
    parts = []
    while not rest.startswith("E"):
        d = re.match(r"[0-9]+", rest)
        if d is None or len(rest) - d.end() < int(d.group()):
            return name
        n = int(d.group())
        parts.append(rest[d.end():d.end() + n])
        rest = rest[d.end() + n:]
    return "::".join(_rust_segment(p) for p in parts) + rest[1:]


def wasmtime_frames(frames: Sequence[str], module_name: str | None) -> list[str]:
    """The store's `<offset> - <function>` frames as wasmtime names them: `<offset> - <module>!<function>`,
    the module's name from its name section, else `<unknown>`, the function's demangled (demangle). A frame
    without an offset (a callee that could not be entered) is `<module>!<function>`."""
    module = module_name if module_name is not None else "<unknown>"
    out = []
    for frame in frames:
        offset, sep, name = frame.partition(" - ")
        if sep and re.fullmatch(r"0x[0-9a-f]+", offset):
            out.append(f"{offset} - {module}!{demangle(name)}")
        else:
            out.append(f"{module}!{demangle(frame)}")
    return out


def frame_line(k: int | None, frame: str) -> str:
    """A frame as wasmtime's backtrace shows it: `  <k>: <offset> - <name>`, the index right-aligned in 3
    columns and the offset in 8 (`    0:     0x44 - <unknown>!f`)."""
    if k is None:
        return f"       {frame}"
    offset, sep, name = frame.partition(" - ")
    try:
        return f"  {k:>3}: {int(offset, 16):#8x} - {name}" if sep else f"  {k:>3}: {frame}"
    except ValueError:
        return f"  {k:>3}: {frame}"


def reads_at_once(fd: int, limit: int) -> bool:
    """Whether host descriptor fd reads to its end at once, with at most `limit` bytes: a regular file that
    small, or /dev/null (not /dev/zero, nor a pipe or a terminal, which may wait or never end)."""
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode):
        return info.st_size <= limit
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == os.stat(os.devnull).st_rdev


class SharedStdin:
    """The host's stdin, read as the instances ask for it (not before: a module may never read it, and a
    pipe may not have ended yet) and kept for all of them; what every instance has read past is dropped,
    so one instance streams any amount. An instance that falls behind the others by more than KEEP bytes
    gets EIO rather than the host's memory filling up."""

    KEEP = 1 << 30
    CHUNK = 1 << 16  # a read asks for at least this much, and at most READ_MAX
    READ_MAX = 1 << 20
    DROP_AT = 16 << 20
    # A pipe is read ahead before the run while its bytes keep coming, each read within PIPE_QUIET_S of the
    # last and all within PIPE_AHEAD_S (a writer that trickles forever must not hold the run back): one its
    # writer already wrote whole (`cat in.txt | gpu-run`) is then known to its end, and served on the device
    # (wasi/fast.py) instead of by the host a read at a time.
    PIPE_QUIET_S = 0.1
    PIPE_AHEAD_S = 1.0

    def __init__(self, stream: Any, instances: int = 1) -> None:
        """`instances`: how many read it (a batch's, in waves or not): until each has its share, every byte
        from the start is kept for those still to come."""
        self.stream = stream
        self.unstarted = np.ones(instances, dtype=bool)
        self.waiting = instances  # how many of them have no share yet
        self.data = bytearray()
        self.base = 0  # the stream's offset of data[0]
        self.eof = stream is None
        self.readers: set[InstanceStdin] = set()  # those that may still read: an ended instance leaves
        self.next_drop = self.DROP_AT
        self.clocks: list[RealClock] = []  # the batch's: their deadline ends a wait for bytes
        self._whole: bytes | None = None  # whole()'s answer, one copy for every instance that asks
        self._read_ahead = False  # a pipe read ahead once (ready)
        self.ahead = False  # whether a pipe may be read ahead: the module reads stdin (host_stdin)

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def expect(self, instances: int) -> None:
        """The batch that reads it has this many instances (each given its share: see __init__); set before any
        instance reads (host_stdin hands it to one batch)."""
        self.unstarted = np.ones(instances, dtype=bool)
        self.waiting = instances

    def ready(self, limit: int) -> bool:
        """Whether whole() would return at once, with at most `limit` bytes: read to its end already, a stream
        that reads_at_once, or a pipe read to its end now (PIPE_QUIET_S)."""
        if self.eof:
            return self.base == 0 and len(self.data) <= limit
        if self.end or self._read_ahead:
            return False
        try:
            fd = self.stream.fileno()
            if reads_at_once(fd, limit):
                return True
            if not (self.ahead and stat.S_ISFIFO(os.fstat(fd).st_mode)):
                return False
        except (AttributeError, OSError, ValueError):
            return False
        self._read_ahead = True
        end = time.monotonic() + self.PIPE_AHEAD_S
        while not self.eof and len(self.data) <= limit:
            wait = min(self.PIPE_QUIET_S, end - time.monotonic())
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return False  # a writer still at work: the instances' reads wait for it as they go
            self.fill(self.end + self.READ_MAX)  # bytes (or the end) are there: it does not wait
        return self.eof and len(self.data) <= limit

    def whole(self) -> bytes:
        """Every byte, read to the end (for a stream that is ready)."""
        while not self.eof:
            self.fill(self.end + self.READ_MAX)
        if self._whole is None:
            self._whole = bytes(self.data)
        return self._whole

    def fill(self, want: int) -> None:
        """One read of the stream towards offset `want` (it may wait for a pipe's writer), unless that is
        held already or the stream ended."""
        if self.eof or want <= self.end:
            return
        if len(self.data) >= self.next_drop:  # tried again each DROP_AT bytes: a look at every reader
            self._drop()
            self.next_drop = len(self.data) + self.DROP_AT
            if len(self.data) > self.KEEP:
                raise OSError(errno.EIO, "stdin: an instance fell too far behind the others")
        size = min(max(self.CHUNK, want - self.end), self.READ_MAX)
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None  # an in-memory stream: it never waits
        try:
            if fd is not None:
                self._wait(fd)
                chunk = os.read(fd, size)
            else:
                chunk = (getattr(self.stream, "read1", None) or self.stream.read)(size)
                if isinstance(chunk, str):  # a text stream without a buffer
                    chunk = chunk.encode()
        except (OSError, ValueError):
            chunk = b""
        if chunk:
            self.data += chunk
        else:
            self.eof = True

    def _wait(self, fd: int) -> None:
        """Until fd has bytes (or its end) to read, or the batch's deadline (--timeout, Ctrl-C) passes: the
        waiting instance is then stopped as a sleep would be."""
        while True:
            ends = [c for c in self.clocks if c.deadline is not None]
            wait = None
            if ends:
                first = min(ends, key=lambda c: c.deadline)
                left = first.deadline - time.monotonic()
                if left <= 0:
                    raise Trap(first.deadline_message)
                wait = min(0.25, left)  # Ctrl-C moves the deadline to now
            if select.select([fd], [], [], wait)[0]:
                return

    def _drop(self) -> None:
        if self.waiting:  # an instance of a later wave starts from the first byte
            return
        low = min((r.pos for r in self.readers), default=self.end)
        if low > self.base:
            del self.data[: low - self.base]
            self._whole = None
            self.base = low


class InstanceStdin:
    """One instance's position in the shared stdin."""

    def __init__(self, shared: SharedStdin, index: int = 0) -> None:
        self.shared = shared
        self.pos = 0
        shared.readers.add(self)
        if shared.unstarted[index]:
            shared.unstarted[index] = False
            shared.waiting -= 1

    def close(self) -> None:
        """The instance ended: what it did not read is not kept for it."""
        self.shared.readers.discard(self)

    def read(self, n: int) -> bytes:
        shared = self.shared
        if self.pos >= shared.end:
            shared.fill(self.pos + n)
        at = self.pos - shared.base
        if at < 0:  # dropped while this instance was counted as ended: never silently other bytes
            raise OSError(errno.EIO, "stdin: these bytes are no longer kept")
        chunk = bytes(shared.data[at:at + n])
        self.pos += len(chunk)
        return chunk

    def available(self) -> int:
        return self.shared.end - self.pos

    def whole(self, limit: int) -> bytes | None:
        """Every byte this instance reads, when nothing was read yet and at most `limit` are there without
        waiting."""
        return self.shared.whole() if self.pos == 0 and self.shared.ready(limit) else None


def substitute(text: str, index: int) -> str:
    return text.replace("{i}", str(index))


def parse_dir(spec: str) -> tuple[str, str]:
    """`HOST[::GUEST]` as wasmtime's --dir takes it; the guest name defaults to the host path."""
    host, sep, guest = spec.partition("::")
    return host, guest if sep else host


def parse_env(spec: str, host_env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """`KEY=VALUE`, or `KEY` alone to pass the host's value on (None when the host has none); the host's
    environment is `host_env` where given (that of the machine gpu-run was started on), else this one."""
    key, sep, value = spec.partition("=")
    if sep:
        return key, value
    host = (os.environ if host_env is None else host_env).get(key)
    return (key, host) if host is not None else None


@dataclass
class Outcome:
    """How one instance ended."""

    index: int
    exit_code: int | None = None  # the guest's own code (proc_exit, or 0 when _start returned)
    values: tuple[int, ...] | None = None
    trap: str | None = None  # the trap, in wasmtime's words
    error: str | None = None  # an error that is not a trap (invalid exit status)
    backtrace: list[str] = field(default_factory=list)  # `<offset> - <module>!<function>`, innermost first
    timed_out: bool = False
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT) before it finished
    fuel_used: int | None = None
    wall_time: float = 0.0

    @property
    def plain(self) -> bool:
        """Whether it ended as most do, by an exit: no trap, error, backtrace, timeout or interrupt."""
        return (self.trap is None and self.error is None and not self.backtrace and not self.timed_out
                and not self.interrupted)

    @property
    def status(self) -> int:
        """The process exit status wasmtime would give."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.error is not None:
            return EXIT_ERROR
        if self.trap is not None:
            return EXIT_TRAP
        return self.exit_code or 0

    def describe(self) -> str:
        """The message wasmtime prints for a failed run (empty when the instance did not fail)."""
        if self.error is None and self.trap is None:
            return ""
        lines = ["error while executing at wasm backtrace:"]
        # Indented by 7 columns under `    1: `, as anyhow shows a cause of several lines.
        lines += ["       " + frame_line(k, b) for k, b in capped_backtrace(self.backtrace)]
        cause = self.error if self.error is not None else f"wasm trap: {self.trap}"
        return "\n".join(lines) + "\n" + cause


def pack_outcomes(outcomes: list[Outcome]) -> dict[str, Any]:
    """Outcomes in columns, for a worker process's pipe: a pickled Outcome per instance cost the parent
    4.5 us each to load (a million: 4.5 s of one core), lists of numbers a tenth of that. An outcome
    other than an exit (a trap, an error, values returned, a timeout, an interrupt) goes whole; a
    function that returned nothing is a column of its own."""
    rare = {k: o for k, o in enumerate(outcomes) if not o.plain or o.values}
    return {"index": _column([o.index for o in outcomes], np.int64),
            "returned": np.array([o.values is not None for o in outcomes], dtype=bool),  # values (), not None
            "exit_code": _column([o.exit_code for o in outcomes], np.int64),
            "fuel_used": _column([o.fuel_used for o in outcomes], np.uint64),
            "wall_time": _column([o.wall_time for o in outcomes], np.float64), "rare": rare}


def _column(values: list[Any], dtype: Any) -> np.ndarray | list[Any]:
    """A column as an array, which pickles as its bytes (a list of 50,000 numbers took 0.1-0.2 s to pickle
    and as long to load); as the list where some are None."""
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, OverflowError):
        return values


def unpack_outcomes(packed: dict[str, Any]) -> list[Outcome]:
    rare = packed["rare"]
    # Positional, in the field order (a third faster than by keyword).
    columns = [c.tolist() if isinstance(c, np.ndarray) else c for c in (
        packed["index"], packed["exit_code"], packed["returned"], packed["fuel_used"], packed["wall_time"])]
    out = [Outcome(i, e, () if v else None, None, None, [], False, False, f, w)
           for i, e, v, f, w in zip(*columns, strict=True)]
    for k, o in rare.items():
        out[k] = o
    return out


class Watch:
    """The on_slice hook: finish times per instance, a progress callback, the timeout and Ctrl-C."""

    def __init__(self, store: Store, timeout: float | None, progress: Callable[[int, float], None] | None,
                 fuel: int = U64_MAX) -> None:
        """`progress(finished, fuel)`: after every launch, the instances newly finished and the fuel all have
        spent so far (each started with `fuel`)."""
        self.store = store
        self.timeout = timeout
        self.progress = progress
        self.fuel = fuel
        self.start = time.perf_counter()
        self.finished = np.full(store.n, np.nan)
        self.interrupted = False  # running instances were stopped (timeout or Ctrl-C)
        self.sigint = False  # Ctrl-C was pressed
        self.fuel_at_interrupt = np.zeros(store.n, dtype=np.uint64)
        self.running_at_interrupt = np.zeros(store.n, dtype=bool)
        self.clocks: list[RealClock] = []
        self.stdin: dict[int, InstanceStdin] = {}  # instance -> its share of the batch's stdin

    def __call__(self) -> None:
        for clock in self.clocks:  # a new round of host calls begins
            clock.round_start = time.monotonic()
        now = time.perf_counter() - self.start
        status = self.store.statuses()
        done = ~np.isin(status, (STATUS["RUNNING"], STATUS["HOSTCALL"], STATUS["WAITING"]))
        new = done & np.isnan(self.finished)
        if new.any():
            self.finished[new] = now
            if self.stdin:
                for i in np.flatnonzero(new).tolist():
                    reader = self.stdin.pop(i, None)
                    if reader is not None:
                        reader.close()
        if self.progress is not None:  # instances are the processes' main lanes (threads.py)
            s = self.store
            spent = float((self.fuel - s.fuel_remaining()).astype(np.float64).sum())
            self.progress(int(s.of_instances(new).sum()), spent)
        expired = self.timeout is not None and now > self.timeout
        if (expired or self.sigint) and not self.interrupted and not done.all():
            # Leave every running instance one unit of fuel: it traps at its next branch or call. The
            # finished ones keep theirs, which says how much they used.
            self.interrupted = True
            self.fuel_at_interrupt = self.store.fuel_remaining()
            self.running_at_interrupt = ~done
            self.store.set_fuel(np.flatnonzero(~done), 1)
            # Lanes that wait (a wait op, or a host call such as a child's end) stop now, as out of fuel.
            self.store.end_waits(np.flatnonzero((status == STATUS["WAITING"]) | (status == STATUS["HOSTCALL"])))

    def request_interrupt(self) -> None:
        """Ctrl-C: stop the running instances at the next slice, and end sleeps now."""
        self.sigint = True
        for clock in self.clocks:
            clock.deadline = time.monotonic()
            clock.deadline_message = INTERRUPTED


# Whether the first Ctrl-C says that it was heard (a worker process leaves that to its parent).
STOP_NOTICE = [True]


def quiet_stop() -> None:
    STOP_NOTICE[0] = False


# A Ctrl-C heard outside a run of the batch (between waves, while a wave's outputs are written): the next
# run stops at once, as if it had heard it.
STOP_HEARD = [False]


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Outside a wave's run: a first Ctrl-C is noted (STOP_HEARD) rather than raised into the writing of
    outputs, which would lose the finished instances with it; the next wave then stops as at a Ctrl-C. A
    second one raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if STOP_HEARD[0]:
            raise KeyboardInterrupt
        STOP_HEARD[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigint_stops(watch: Watch, wasi: Wasi | None) -> Iterator[None]:
    """While the batch runs, the first Ctrl-C (SIGINT) stops it in an orderly way: running instances end
    as interrupted at their next branch or call, a host call in progress (a sleep, a read) is cut short,
    and the outcomes of the finished ones are kept. A second Ctrl-C raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        if watch.sigint:
            raise KeyboardInterrupt
        watch.request_interrupt()
        STOP_HEARD[0] = True  # the waves after this one stop too
        if notice:  # a large batch takes a moment to write its outputs: say that it heard
            try:  # os.write: a print here could re-enter the one the main thread may be in
                os.write(2, b"\ngpu-run: stopping (Ctrl-C again to quit at once)\n")
            except OSError:
                pass
        if wasi is not None and wasi.in_host_call:
            raise HostInterrupt(INTERRUPTED)

    try:
        notice = STOP_NOTICE[0] and os.isatty(2)
    except OSError:
        notice = False
    if STOP_HEARD[0]:  # heard between waves (sigint_deferred)
        watch.request_interrupt()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_batch(store: Store, wasi: Wasi | None, func: FuncExtern, args: Sequence[tuple[int, ...]], *,
              fuel: int | None = None, timeout: float | None = None,
              progress: Callable[[int, float], None] | None = None, module_name: str | None = None,
              timeout_given: float | None = None) -> list[Outcome]:
    """Call `func` in every instance; each instance's outcome, wasmtime's way (backtrace frames named
    `<module_name>!<function>`). Ctrl-C stops the batch (sigint_stops): the instances still running then
    come back with `interrupted` set. `timeout_given`: the timeout the user gave, where `timeout` is what is
    left of it (a batch in waves)."""
    watch = Watch(store, timeout, progress, U64_MAX if fuel is None else fuel)
    said = timeout if timeout_given is None else timeout_given
    message = f"interrupt (the timeout of {said:g} s was reached)" if said is not None else ""
    if wasi is not None:
        seen = set()
        for ctx in wasi.contexts:
            if isinstance(ctx.clock, RealClock) and id(ctx.clock) not in seen:
                seen.add(id(ctx.clock))
                watch.clocks.append(ctx.clock)
                if timeout is not None:
                    ctx.clock.deadline = time.monotonic() + timeout
                    ctx.clock.deadline_message = message
        # The batch's shared stdin (one for all) waits for bytes only until those deadlines, and keeps
        # nothing for instances that ended (a lane is an instance unless processes have threads).
        for i, ctx in enumerate(wasi.contexts):
            source = getattr(ctx.fds.entries.get(0), "source", None)
            if isinstance(source, InstanceStdin):
                source.shared.clocks = watch.clocks
                if not store.thread_shift:
                    watch.stdin[i] = source
    with sigint_stops(watch, wasi):
        results: list[CallResult] = store.call(func, list(args), fuel=fuel, on_slice=watch)
    end = time.perf_counter() - watch.start
    left = store.fuel_remaining()
    start_fuel = U64_MAX if fuel is None else fuel
    outcomes = []
    for i, r in enumerate(results):
        o = Outcome(i, values=r.values, backtrace=wasmtime_frames(r.backtrace, module_name) if r.backtrace else [])
        wall = watch.finished[i]
        o.wall_time = float(end if np.isnan(wall) else wall)
        spent_left = int(left[i])
        stopped = watch.interrupted and watch.running_at_interrupt[i] and r.trap == FUEL_TRAP
        if stopped:
            spent_left = int(watch.fuel_at_interrupt[i])
        o.fuel_used = start_fuel - spent_left
        ctx = wasi.contexts[i] if wasi is not None else None
        if r.exit_code is not None:
            o.exit_code = r.exit_code
        elif r.trap is not None:
            if ctx is not None and ctx.error is not None and r.trap == ctx.error:
                o.error = ctx.error
            elif watch.sigint and (stopped or r.trap == INTERRUPTED):
                o.interrupted = True
                o.trap = INTERRUPTED
            elif stopped or (timeout is not None and r.trap == message):
                o.timed_out = True
                o.trap = message
            else:
                o.trap = WASMTIME_TRAP_TEXT.get(r.trap, r.trap)
        else:
            o.exit_code = 0
        outcomes.append(o)
    return outcomes


def imports_wasi(module: Module) -> bool:
    return any(imp.module == abi.MODULE for imp in module.imports)


def stdin_for_batch(n: int, stream: Any = None, ahead: bool = True) -> Callable[[int], Any]:
    """Each instance's stdin: the host's bytes read once (not a terminal), a live terminal (n == 1), or nothing;
    `ahead`: a pipe may be read ahead of the run (the module reads stdin: reads_stdin)."""
    stream = sys.stdin if stream is None else stream
    if stream is None or getattr(stream, "closed", False):
        return lambda i: b""
    try:
        tty = stream.isatty()
    except (OSError, ValueError):
        tty = False
    if tty:
        if n == 1:
            from .fds import LiveStdin

            fd = stream.fileno()
            return lambda i: LiveStdin(fd)
        return lambda i: b""
    shared = host_stdin(getattr(stream, "buffer", stream), ahead, take=True)
    shared.expect(n)
    return lambda i: InstanceStdin(shared, i)


_HOST_STDIN: SharedStdin | None = None


def host_stdin(stream: Any, ahead: bool, take: bool = False) -> SharedStdin:
    """The SharedStdin over `stream` (the host's stdin) until a batch takes it (`take`), so that what was read
    ahead of the run (workers.plan_workers asks whether a pipe ended) stays in it for that batch; a later
    batch gets one of its own. `ahead`: whether a pipe may be read ahead (SharedStdin.ready)."""
    global _HOST_STDIN
    shared = _HOST_STDIN
    if shared is None or shared.stream is not stream:
        shared = SharedStdin(stream)
    shared.ahead = ahead
    _HOST_STDIN = None if take else shared
    return shared


def reads_stdin(module: Module) -> bool:
    """Whether the module can read stdin at all (imports fd_read): else gpu-run leaves a pipe unread."""
    return any(imp.module == abi.MODULE and imp.name == "fd_read" for imp in module.imports)


__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_TRAP",
    "INTERRUPTED",
    "WASMTIME_TRAP_TEXT",
    "Outcome",
    "WasiContext",
    "imports_wasi",
    "parse_dir",
    "parse_env",
    "run_batch",
    "sigint_deferred",
    "sigint_stops",
    "reads_stdin",
    "stdin_for_batch",
    "substitute",
    "wasmtime_frames",
]
