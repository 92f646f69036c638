"""How far a GPU lane waits for the lanes behind it (vm.h `near`), chosen while a batch runs.

The best reconvergence window differs per program (bench/NOTES.md: 32 code words for an interpreter
loop, 1024 for Rust's long inlined functions, 2-3x apart either way), and no rule measured on the H200
suits all. So the runtime measures: a short trial launch runs one block in `every` under the candidate
window and the rest under the default, and times each block; then long launches (more of them after
each trial) run every block under the window whose lanes spent more fuel per second. Both windows are
measured in one launch, so a program's phases do not favour either (trials one after another picked
the wrong window for json and fib), and a losing candidate slows only a few lanes, briefly. The window
decides only which lanes run together, never results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WindowTuner:
    default: int = 1024
    candidate: int = 32
    every: int = 8  # one block in `every` tries the candidate
    trial_fuel: int = 8192  # fuel per instance in a trial launch
    # Long launches keep the store's fuel slice (it bounds how long a launch runs: timeouts, host calls are
    # checked between launches); their number between trials doubles after each trial, up to max_hold.
    run_fuel: int = 1 << 20
    max_hold: int = 16
    # A short trial rates a window by its next few thousand steps, which can mislead over a whole run
    # (json, NOTES.md): only a clear gain moves off the default.
    margin: float = 1.3
    chosen: list[tuple[int, float]] = field(default_factory=list)  # each trial: the window taken, the gain
    _left: int = 0  # long launches before the next trial

    def next(self) -> tuple[int, int | None, int]:
        """The window, the trial blocks' window (None: no trial), and the fuel slice for the next launch."""
        if self._left == 0:
            return self.default, self.candidate, self.trial_fuel
        self._left -= 1
        return self.chosen[-1][0], None, self.run_fuel

    def record(self, gain: float) -> None:
        """The trial blocks' fuel rate per lane over the other blocks'."""
        self.chosen.append((self.candidate if gain > self.margin else self.default, gain))
        self._left = min(1 << (len(self.chosen) - 1), self.max_hold)


def trial_gain(spent: np.ndarray, end_ns: np.ndarray, start_ns: np.ndarray, block: int, every: int) -> float:
    """Fuel per lane-second of the trial blocks (every `every`-th) over that of the others, from each
    instance's fuel spent and end time (the low 32 bits of the GPU's nanosecond clock) and each block's start
    time. A block's time runs from its start to the end of its last lane that ran; only lanes that ran count
    (a part-filled last block, or lanes that finished earlier, do not make a block look slow)."""
    nb = len(start_ns)
    pad = nb * block - len(spent)
    fuel = np.pad(spent.astype(np.float64), (0, pad)).reshape(nb, block)
    end = np.pad(end_ns.astype(np.int64), (0, pad)).reshape(nb, block)
    elapsed = (end - (start_ns.astype(np.int64) & 0xFFFFFFFF)[:, None]) % (1 << 32)  # a trial lasts < 4 s
    ran = fuel > 0
    elapsed = np.where(ran, elapsed, 0).max(axis=1).astype(np.float64)
    lane_seconds = elapsed * ran.sum(axis=1)
    trial = np.arange(nb) % every == 0
    rates = []
    for group in (trial, ~trial):
        sel = group & (lane_seconds > 0)
        rates.append(fuel[sel].sum() / lane_seconds[sel].sum() if sel.any() else 0.0)
    return rates[0] / rates[1] if rates[0] > 0 and rates[1] > 0 else 1.0
