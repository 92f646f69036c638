"""Clocks and randomness for WASI: the host's, or deterministic ones derived from a seed."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from ..errors import Trap
from . import abi
from .chacha import keystream
from .memory import WasiError

# The virtual clock's realtime starts here (2024-01-01T00:00:00Z) and advances per call.
VIRTUAL_EPOCH_NS = 1_704_067_200 * 1_000_000_000
VIRTUAL_STEP_NS = 1_000


class Cell:
    """An integer of one instance's state, kept here or, once bound, in an element of a device array.

    The device fast paths (fast.py) bind the virtual clock's time and the random stream's position,
    so that the host, when it serves a call, continues where the device stopped, and the reverse.
    """

    def __init__(self, value: int = 0) -> None:
        self._value = value
        self._array: Any = None
        self._index = 0

    def get(self) -> int:
        return self._value if self._array is None else int(self._array[self._index])

    def set(self, value: int) -> None:
        if self._array is None:
            self._value = value
        else:
            self._array[self._index] = value

    def bind(self, array: Any, index: int) -> None:
        array[index] = self.get()
        self._array, self._index = array, index


class RealClock:
    """The host's clocks; sleeping really sleeps.

    In a batch, the instances waiting in one round of host calls are served one after the other,
    though they run side by side; when `round_start` is set (the runner sets it before each
    round), a sleep lasts until round_start + the time asked for, so that the sleeps of one round
    overlap instead of adding up. A sleep never lasts past `deadline` (time.monotonic()); one that
    would traps with `deadline_message`.
    """

    def __init__(self) -> None:
        self.round_start: float | None = None
        self.deadline: float | None = None
        self.deadline_message = "interrupt"

    def now(self, clock_id: int) -> int:
        if clock_id == abi.CLOCK_REALTIME:
            return time.time_ns()
        if clock_id == abi.CLOCK_MONOTONIC:
            return time.monotonic_ns()
        if clock_id == abi.CLOCK_PROCESS_CPUTIME_ID:
            return time.process_time_ns()
        if clock_id == abi.CLOCK_THREAD_CPUTIME_ID:
            return time.thread_time_ns()
        raise WasiError(abi.EINVAL)

    def resolution(self, clock_id: int) -> int:
        if clock_id not in (0, 1, 2, 3):
            raise WasiError(abi.EINVAL)
        return 1

    def sleep(self, ns: int) -> None:
        if ns <= 0:
            return
        now = time.monotonic()
        start = self.round_start if self.round_start is not None and self.round_start <= now else now
        until = start + ns / 1e9
        if self.deadline is not None and until > self.deadline:
            time.sleep(max(0.0, self.deadline - now))
            raise Trap(self.deadline_message)
        if until > now:
            time.sleep(until - now)


class VirtualClock:
    """A clock of one instance that only moves when read (by a fixed step) or slept on."""

    def __init__(self, epoch_ns: int = VIRTUAL_EPOCH_NS, step_ns: int = VIRTUAL_STEP_NS) -> None:
        self.epoch = epoch_ns
        self.step = step_ns
        self.cell = Cell()  # nanoseconds since the epoch (the device's copy once bound)

    @property
    def elapsed(self) -> int:
        return self.cell.get()

    @elapsed.setter
    def elapsed(self, value: int) -> None:
        self.cell.set(value)

    def now(self, clock_id: int) -> int:
        if clock_id not in (0, 1, 2, 3):
            raise WasiError(abi.EINVAL)
        self.elapsed += self.step
        return self.epoch + self.elapsed if clock_id == abi.CLOCK_REALTIME else self.elapsed

    def resolution(self, clock_id: int) -> int:
        if clock_id not in (0, 1, 2, 3):
            raise WasiError(abi.EINVAL)
        return self.step

    def sleep(self, ns: int) -> None:
        if ns > 0:
            self.elapsed += ns


class SystemRandom:
    def bytes(self, n: int) -> bytes:
        return os.urandom(n)


class SeededRandom:
    """A deterministic stream for instance `index` of a run seeded with `seed`: the ChaCha20 keystream
    keyed by SHA-256("wasmgpu:{seed}:{index}"), the same bytes whether the device or the host serves."""

    def __init__(self, seed: int | str, index: int) -> None:
        self.key = hashlib.sha256(f"wasmgpu:{seed}:{index}".encode()).digest()
        self.cell = Cell()  # bytes of the stream used (the device's copy once bound)

    def bytes(self, n: int) -> bytes:
        pos = self.cell.get()
        self.cell.set(pos + n)
        return keystream(self.key, pos, n)
