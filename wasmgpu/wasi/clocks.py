"""Clocks and randomness for WASI: the host's, or deterministic ones derived from a seed."""

from __future__ import annotations

import hashlib
import os
import random
import time

from ..errors import Trap
from . import abi
from .memory import WasiError

# The virtual clock's realtime starts here (2024-01-01T00:00:00Z) and advances per call.
VIRTUAL_EPOCH_NS = 1_704_067_200 * 1_000_000_000
VIRTUAL_STEP_NS = 1_000


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
        self.elapsed = 0

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
    """A deterministic stream for instance `index` of a run seeded with `seed`."""

    def __init__(self, seed: int | str, index: int) -> None:
        digest = hashlib.sha256(f"wasmgpu:{seed}:{index}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest, "little"))

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)
