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

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

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


# Launch seconds a store runs in each layout before the trial compares them (tests make it 0).
LAYOUT_WATCH_S = 0.25
# Fuel per lane of the launches that measure a layout: a program whose lanes finish in one long launch still
# gets several to measure, and moves early.
LAYOUT_SLICE = 1 << 14
# How often a run waiting for the other layout's build looks for it in the compile cache (seconds).
LAYOUT_PROBE_S = 0.5
# The layout a store's memories start in, and the other one a long run tries.
OTHER_LAYOUT = {"contiguous": "interleaved", "interleaved": "contiguous"}


@dataclass
class LayoutTrial:
    """Which memory layout a long run keeps, measured while it runs (Store.relayout between launches).

    Neither layout suits every program (bench/NOTES.md): contiguous memory wins where each lane works through
    its own bytes (copies, parsers, sorts), interleaved words by up to 4x where lanes touch the same addresses
    in step (a SIMD kernel over equal-sized images). A store that launches for a while (`watch`) has the VM of
    the other layout built in the background (`wait`); once it is built, launches measure the fuel rate in
    the first layout (`measure`), the store moves, launches measure it in the other (`try`), and the store
    keeps the other only where its lanes spent fuel `margin` times faster. The choice is remembered per code
    (`remember_layout`), so a later run of the same program moves as soon as it can (`recall`). Layouts change
    where data lie, never results.
    """

    first: str
    watch_s: float = field(default_factory=lambda: LAYOUT_WATCH_S)
    margin: float = 1.2
    state: str = "watch"  # watch -> wait -> measure -> try -> done; recall -> done
    fuel: float = 0.0  # fuel spent in the current measure, its launch seconds, and its launches
    seconds: float = 0.0
    launches: int = 0
    min_launches: int = 3  # a measure spans at least this many launches (one launch's time is noisy)
    rate_first: float = 0.0
    gain: float = 0.0
    build: bool = False  # whether the other layout's build was started (or found)
    found: bool = False  # whether the other layout's VM is built (in the compile cache)
    next_probe: float = 0.0  # when to look for that build again (time.monotonic)
    key: str = ""  # the code's, for remember_layout
    note: str = ""  # what happened, for gpu-run -v

    @classmethod
    def recalled(cls, first: str, gain: float) -> LayoutTrial:
        """A store whose code an earlier run measured faster in the other layout (gain): it moves there as
        soon as that layout's VM is built, measuring nothing."""
        return cls(first, state="recall", gain=gain,
                   note=f"memory layout: {OTHER_LAYOUT[first]}, measured {gain:.2f}x by an earlier run")

    @property
    def other(self) -> str:
        return OTHER_LAYOUT[self.first]

    @property
    def measuring(self) -> bool:
        """Whether launches now count, and so are kept short (LAYOUT_SLICE)."""
        return self.state in ("watch", "measure", "try")

    def record(self, fuel: float, seconds: float) -> None:
        """One launch's fuel spent (all lanes) and seconds, in the layout the store has now."""
        if self.measuring:
            self.fuel += fuel
            self.seconds += seconds
            self.launches += 1

    def next_layout(self, ready: bool) -> str | None:
        """The layout to move to before the next launch (None: stay). `ready`: whether the other layout's VM
        is built."""
        measured = self.seconds >= self.watch_s and self.launches >= self.min_launches
        if self.state == "recall" and ready:
            self.state = "done"
            return self.other
        if self.state == "watch" and measured:
            self.state = "wait"
        elif self.state == "wait" and ready:
            self.state = "measure"  # the first layout's rate, from the launches just before the move
            self._restart()
        elif self.state == "measure" and measured:
            self.rate_first = self.fuel / self.seconds
            self.state = "try"
            self._restart()
            return self.other
        elif self.state == "try" and measured:
            self.gain = self.fuel / self.seconds / self.rate_first if self.rate_first > 0 else 0.0
            self.state = "done"
            keep = self.gain >= self.margin
            self.note = (f"memory layout: {self.other} ran {self.gain:.2f}x {self.first}'s fuel rate; "
                         f"keeping {self.other if keep else self.first}")
            return None if keep else self.first
        return None

    def _restart(self) -> None:
        self.fuel, self.seconds, self.launches = 0.0, 0.0, 0

    @property
    def wants_build(self) -> bool:
        """Whether to start the other layout's build now: early in a run that launches for a while, so that
        it is there by the time the first layout is measured (a build takes seconds)."""
        early = self.state == "watch" and self.seconds >= self.watch_s / 4
        return not self.build and (early or self.state in ("wait", "recall"))

    @property
    def chosen(self) -> str | None:
        """The layout the trial settled on, once done."""
        if self.state != "done":
            return None
        return self.other if self.gain >= self.margin else self.first


def remembered_layout(key: str) -> tuple[str, float] | None:
    """The layout an earlier run of this code chose over its first one, and the gain it measured."""
    from ..vm.build import cache_dir

    try:
        layout, gain = (cache_dir() / f"layout-{key}.txt").read_text().split()
        return (layout, float(gain)) if layout in OTHER_LAYOUT else None
    except (OSError, ValueError):
        return None


def remember_layout(key: str, layout: str, gain: float) -> None:
    from ..vm.build import cache_dir

    try:
        (cache_dir() / f"layout-{key}.txt").write_text(f"{layout} {gain:.3f}\n")
    except OSError:  # a read-only cache: the next run measures again
        pass


# Launch seconds each tier runs before a TierTrial compares them (tests make it 0), and how much faster the
# interpreter must run for the run to leave its compiled code.
TIER_WATCH_S = 1.0
TIER_MARGIN = 1.2


@dataclass
class TierTrial:
    """Whether a run of a large store keeps its compiled code (a background build), measured while it runs.

    On the GPU, compiled code is not always faster: the lanes of a warp that take different paths through
    compiled functions run them one after another, where the interpreter shares each opcode's handler among
    them (bench/NOTES.md: Rust programs' compiled pieces 1.4-2x slower than the interpreter with each instance
    on its own input, 1.33x faster with one input). So a run interprets first, also where it finds its build
    made, and keeps the fuel rate of its newest `watch_s` of launches; it moves to the compiled code
    (ParamBlock.tier_up) once that is measured and the build is there, measures `watch_s` of compiled
    launches, and goes back to the interpreter where that ran `margin` times faster. Both tiers spend fuel
    alike (a backward branch or a call a unit); launches that spent none (waiting threads) do not count. The
    choice is kept per code and batch size (remember_tier): later runs start in it.
    """

    watch_s: float = field(default_factory=lambda: TIER_WATCH_S)
    margin: float = field(default_factory=lambda: TIER_MARGIN)
    min_launches: int = 3
    state: str = "interp"  # what is measured now: interp, compiled, or done
    interp: list[tuple[float, float]] = field(default_factory=list)  # the interpreter's launches: fuel, seconds
    compiled: list[tuple[float, float]] = field(default_factory=list)
    gain: float = 0.0  # the compiled code's fuel rate over the interpreter's
    note: str = ""  # what happened, for gpu-run -v

    @property
    def measuring(self) -> bool:
        return self.state != "done"

    @property
    def ready(self) -> bool:
        """Whether the interpreter is measured: the run may move to its compiled code."""
        return self.state != "interp" or self._measured(self.interp)

    def record(self, fuel: float, seconds: float, tier: str) -> None:
        """One launch's fuel spent (all lanes) and seconds, in `tier`."""
        if fuel <= 0 or tier != self.state:
            return
        launches = self.interp if tier == "interp" else self.compiled
        launches.append((fuel, seconds))
        if tier == "interp":  # until the move, only the newest watch_s count: the phase just before it
            while len(launches) > self.min_launches and sum(s for _, s in launches[1:]) >= self.watch_s:
                launches.pop(0)

    def moved(self) -> None:
        """The run moved to its compiled code."""
        if self.state == "interp":
            self.state = "compiled"

    def verdict(self, final: bool = False) -> str | None:
        """Once the compiled code has run watch_s (with `final`, the run's end: at least a launch), the tier
        the run keeps ("interp" or "compiled"); else None."""
        if self.state != "compiled" or not (self._measured(self.compiled) or (final and self.compiled)):
            return None
        rate = [sum(f for f, _ in ls) / max(sum(s for _, s in ls), 1e-9) for ls in (self.interp, self.compiled)]
        self.gain = rate[1] / rate[0] if rate[0] > 0 else 1.0
        self.state = "done"
        keep = "interp" if self.gain * self.margin < 1.0 else "compiled"
        self.note = f"compiled code ran {self.gain:.2f}x the interpreter's fuel rate; keeping {keep}"
        return keep

    def _measured(self, launches: list[tuple[float, float]]) -> bool:
        return len(launches) >= self.min_launches and sum(s for _, s in launches) >= self.watch_s


def _tier_entry(what: str) -> Path:
    from ..vm.build import cache_dir

    return cache_dir() / f"tier-{hashlib.sha256(what.encode()).hexdigest()[:24]}.txt"


def remembered_tier(what: str) -> tuple[str, float] | None:
    """The tier an earlier run kept after a TierTrial (`what`: its code's digest and batch), and the gain."""
    try:
        kept, tier, gain = _tier_entry(what).read_text().split()
        return (tier, float(gain)) if kept == what and tier in ("interp", "compiled") else None
    except (OSError, ValueError):
        return None


def remember_tier(what: str, tier: str, gain: float) -> None:
    try:
        _tier_entry(what).write_text(f"{what} {tier} {gain:.3f}\n")
    except OSError:  # a read-only cache: the next run measures again
        pass
