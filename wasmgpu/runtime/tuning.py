"""How far a GPU lane waits for the lanes behind it (vm.h `near`), chosen per launch while a batch runs.

The best reconvergence window differs per program (bench/NOTES.md: 32 code words for an interpreter loop,
1024 for Rust's long inlined functions, 2-3x apart either way), and no rule measured on the H200 suits
all. So the runtime measures: it runs one short fuel slice under each window, then a longer stretch under
the one that spent the most fuel per second, then measures again (programs change phase). The window
decides only which lanes run together, never results.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WindowTuner:
    windows: tuple[int, ...] = (1024, 128, 32)  # the first is the default: others must beat it by `margin`
    trial_fuel: int = 16384  # fuel per instance in each trial launch
    run_fuel: int = 65536  # ... in each launch between trials
    hold: int = 8  # launches under the winner before measuring again
    margin: float = 1.1
    rates: dict[int, float] = field(default_factory=dict)
    best: int = 0
    chosen: list[int] = field(default_factory=list)  # each measurement's winner, for reports
    _left: int = 0  # launches left under `best`

    def next(self) -> tuple[int, int]:
        """The window and the fuel slice for the next launch."""
        for w in self.windows:
            if w not in self.rates:
                return w, self.trial_fuel
        return self.best, self.run_fuel

    def record(self, window: int, fuel: int, seconds: float) -> None:
        """What a launch under `window` did: fuel spent over all instances, and its time."""
        if window not in self.rates:
            self.rates[window] = fuel / max(seconds, 1e-9)
            if len(self.rates) == len(self.windows):
                default = self.windows[0]
                top = max(self.rates, key=self.rates.__getitem__)
                self.best = top if self.rates[top] > self.margin * self.rates[default] else default
                self._left = self.hold
                self.chosen.append(self.best)
            return
        self._left -= 1
        if self._left <= 0:
            self.rates.clear()
