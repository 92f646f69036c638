"""Threads (wasi-threads): a process is a group of 2^k lanes of the batch that share its shared memories.

Lane `base` of a group (base a multiple of the group's size) is the process's main thread: a call starts
there, and the other lanes idle (status DONE) until `wasi::thread-spawn` gives one a thread: it runs the
module's `wasi_thread_start(tid, start_arg)` with the globals the module had after instantiation (a
thread is an instance of its own in wasi-threads), on its own stack. A lane whose thread returns idles
again, free for the next spawn.

The process's rules, as wasmtime applies them to its threads: a trap or `proc_exit` in any thread ends the
whole process with that trap or exit code, and the process ends when its main thread does, the other
threads with it.

memory.atomic.wait parks a lane (vm.h atomic_exec: status WAITING) until another lane of the group
notifies it, or until its timeout, which the host keeps here between launches. Where every lane that could
run waits with no timeout, nothing can wake them: their processes trap with DEADLOCK instead of hanging.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.vm_abi import (
    NO_HOST,
    S_FP,
    S_PARKS,
    S_PC,
    S_STATUS,
    S_TRAP,
    S_WAIT,
    STATUS,
    TRAP_CODE,
    WAIT_PARKED,
    WAIT_TIMED_OUT,
)
from ..errors import WasmGpuError
from ..wasm.types import FuncType
from .objects import FuncExtern

if TYPE_CHECKING:
    from .launch import Launcher
    from .store import Store

SPAWN_KEY = ("wasi", "thread-spawn")
START_EXPORT = "wasi_thread_start"
_RUNNING, _DONE, _TRAPPED, _EXITED, _HOSTCALL, _WAITING = (
    STATUS[k] for k in ("RUNNING", "DONE", "TRAPPED", "EXITED", "HOSTCALL", "WAITING"))
_ACTIVE = (_RUNNING, _HOSTCALL, _WAITING)  # a lane that has not ended
_SPAWN_FAILED = -6  # wasi-libc's pthread_create reports EAGAIN for any negative result
START_TYPE = FuncType((0x7F, 0x7F), ())  # wasi_thread_start(tid, start_arg)
MAX_TID = 0x1FFFFFFF  # wasi-threads: a tid is positive and fits 29 bits
POLL_S = 0.05  # how long the host sleeps at most while every lane waits for a timeout
U64_MAX = (1 << 64) - 1


def group_shift(threads: int) -> int:
    """log2 of the lanes a process takes: `threads` rounded up to a power of two."""
    if threads < 1:
        raise WasmGpuError(f"threads per process must be at least 1, not {threads}")
    return (threads - 1).bit_length()


def thread_start(store: Store, ext: object) -> int | None:
    """The address of an instance's wasi_thread_start where it can start threads: a function of the module
    (not a re-exported import), of type (i32, i32) -> (), whose frame fits a lane's stack."""
    if not isinstance(ext, FuncExtern):
        return None
    f = store.funcs[ext.addr]
    if f.host is not None or f.host_index != NO_HOST or f.type != START_TYPE or f.frame > store.stack_slots:
        return None
    return ext.addr


def spawn_import(store: Store, start: list[int]) -> FuncExtern:
    """`wasi::thread-spawn` for a module instantiated in `store`; `start` gets the address of its
    wasi_thread_start once the instance exists."""

    def spawn(lane: int, args: tuple[int, ...]) -> tuple[int]:
        return (_spawn(store, lane, start, args[0]) & 0xFFFFFFFF,)

    ext = store.host_func(FuncType((0x7F,), (0x7F,)), spawn, "wasi::thread-spawn")
    store.funcs[ext.addr].per_lane = True
    return ext


def _spawn(store: Store, lane: int, start: list[int], arg: int) -> int:
    """A thread on an idle lane of `lane`'s process: its tid (the process's next), or a negative number
    where the process has no idle lane or the module exports no wasi_thread_start."""
    size = 1 << store.thread_shift
    base = lane - lane % size
    if not start or size == 1:
        return _SPAWN_FAILED
    status = store.backend.to_host(store.state[S_STATUS, base:base + size])
    idle = [k for k in range(1, size) if status[k] == _DONE]
    if not idle:
        return _SPAWN_FAILED
    k = idle[0]
    j = base + k
    tid = store.next_tid.get(base, 1)  # as wasmtime: each thread of a process a new tid
    if tid > MAX_TID:
        return _SPAWN_FAILED
    store.next_tid[base] = tid + 1
    store.globals[:, j] = store.xp.asarray(store.fresh_globals[:, base])
    store.start_lane(j, start[0], (tid, arg & 0xFFFFFFFF), lane)
    store.fuel_given[j] = int(store.backend.to_host(store.fuel_left[lane]))
    return tid


class Scheduler:
    """The group rules and the waits' timeouts, applied between launches (Launcher's loop)."""

    def __init__(self, store: Store, launcher: Launcher) -> None:
        self.store, self.launcher = store, launcher
        self.deadlines: dict[int, tuple[int, float]] = {}  # parked lane -> (its park's number, when it times out)

    def settle(self) -> bool:
        """Apply the rules after a launch; whether any lane can run (or waits for the host)."""
        s = self.store
        state = np.array(s.backend.to_host(s.state))
        size = 1 << s.thread_shift
        self._share_fuel(state, size)
        self._end_processes(state, size)
        status = state[S_STATUS]
        parked = (status == _WAITING) & (state[S_WAIT] == WAIT_PARKED)
        lanes = np.flatnonzero(parked).tolist()
        now = time.monotonic()
        # A deadline belongs to one park: a lane that was woken and parked again since has a new one.
        self.deadlines = {lane: self.deadlines[lane] if lane in self.deadlines
                          and self.deadlines[lane][0] == state[S_PARKS, lane]
                          else (int(state[S_PARKS, lane]), now + self._timeout(state, lane)) for lane in lanes}
        for lane, (_, t) in list(self.deadlines.items()):
            if t <= now:
                s.state[S_WAIT, lane] = WAIT_TIMED_OUT
                del self.deadlines[lane]
                parked[lane] = False
        runnable = (status == _RUNNING) | (status == _HOSTCALL) | ((status == _WAITING) & ~parked)
        if runnable.any() or not parked.any():
            return bool(runnable.any())
        finite = [t for _, t in self.deadlines.values() if t != float("inf")]
        if finite:
            # Every lane waits for a timeout: sleep a little, then launch again (an empty launch), so the
            # launch loop's own checks (the batch's timeout, Ctrl-C, progress) keep running.
            time.sleep(min(max(0.0, min(finite) - now), POLL_S))
            return True
        # Every lane that could run waits forever: their processes end in DEADLOCK.
        for base in sorted({lane - lane % size for lane in lanes}):
            s.state[S_STATUS, base] = _TRAPPED
            s.state[S_TRAP, base] = TRAP_CODE["DEADLOCK"]
            self._stop_threads(base, size)
        self.deadlines.clear()
        return False

    def _timeout(self, state: np.ndarray, lane: int) -> float:
        """Seconds the wait at lane's pc may last (its timeout operand, in ns; negative: forever)."""
        s = self.store
        word = int(s.code[int(state[S_PC, lane])])
        b = (word >> 32) & 0xFFFF
        ns = int(s.backend.to_host(s.slot_view()[int(state[S_FP, lane]) + b + 2, lane]))
        ns = ns - (1 << 64) if ns >> 63 else ns
        return float("inf") if ns < 0 or ns > 1 << 62 else ns / 1e9

    def _share_fuel(self, state: np.ndarray, size: int) -> None:
        """With --fuel, a process's threads spend its main lane's fuel: what each spent since the last
        launch is taken from the main lane, and every running thread gets what is left."""
        s = self.store
        left = np.array(s.backend.to_host(s.fuel_left), dtype=np.uint64)
        if not s.fuel_given or left[0::size].max(initial=0) == U64_MAX:
            return
        status = state[S_STATUS]
        changed = False
        for base in sorted({j - j % size for j in s.fuel_given}):
            spent = sum(max(s.fuel_given[j] - int(left[j]), 0) for j in range(base + 1, base + size)
                        if j in s.fuel_given)
            main = max(int(left[base]) - spent, 0)
            left[base] = main
            for j in range(base + 1, base + size):
                if j in s.fuel_given:
                    if status[j] in _ACTIVE:
                        left[j] = main
                        s.fuel_given[j] = main
                    else:
                        del s.fuel_given[j]
            if main == 0 and status[base] in _ACTIVE:
                status[base] = _TRAPPED
                state[S_TRAP, base] = TRAP_CODE["OUT_OF_FUEL"]
                s.state[S_STATUS, base] = _TRAPPED
                s.state[S_TRAP, base] = TRAP_CODE["OUT_OF_FUEL"]
            changed = True
        if changed:
            s.fuel_left[:] = s.xp.asarray(left)

    def _end_processes(self, state: np.ndarray, size: int) -> None:
        """A thread's trap or exit ends its process so; a process ends with its main thread."""
        s, launcher = self.store, self.launcher
        status = state[S_STATUS]
        groups = status.reshape(-1, size)
        ended = np.isin(groups[:, 1:], (_TRAPPED, _EXITED)) & (state[S_TRAP].reshape(-1, size)[:, 1:]
                                                              != TRAP_CODE["PARKED"])
        main_active = np.isin(groups[:, 0], _ACTIVE)
        for g in np.flatnonzero(ended.any(axis=1) & main_active).tolist():
            base = g * size
            j = base + 1 + int(np.argmax(ended[g]))
            s.state[S_STATUS, base] = int(status[j])
            s.state[S_TRAP, base] = int(state[S_TRAP, j])
            if status[j] == _TRAPPED:
                launcher.trap_lanes[base] = j
            for record in (launcher.exit_codes, launcher.host_traps):
                if j in record:
                    record[base] = record.pop(j)
            status[base] = status[j]
        others = np.isin(groups[:, 1:], _ACTIVE).any(axis=1)
        for g in np.flatnonzero(~np.isin(groups[:, 0], _ACTIVE) & others).tolist():
            self._stop_threads(g * size, size)
            status[g * size + 1:(g + 1) * size] = _DONE

    def _stop_threads(self, base: int, size: int) -> None:
        self.store.state[S_STATUS, base + 1:base + size] = _DONE


def main_lanes(store: Store) -> Any:
    """The lanes that are processes' main threads."""
    return np.arange(0, store.n, 1 << store.thread_shift)
