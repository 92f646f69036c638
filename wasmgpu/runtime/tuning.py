"""How far a GPU lane waits for the lanes behind it (vm.h `near`), chosen per launch while a batch runs.

The best reconvergence window differs per program (bench/NOTES.md: 32 code words for an interpreter
loop, 1024 for Rust's long inlined functions, 2-3x apart either way), and no rule measured on the H200
suits all. So the runtime measures: it runs one short fuel slice under each window (the default twice,
first and last), then a much longer one under the one that spent the most fuel per second, then measures
again (programs change phase). The window decides only which lanes run together, never results.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WindowTuner:
    windows: tuple[int, ...] = (1024, 32)  # the first is the default: others must beat it by `margin`
    # Fuel per instance in each trial launch, and in the first launch between trials; that one doubles
    # after each measurement, up to `max_doublings` times. Every launch waits for its slowest warp, so
    # launches should be few.
    trial_fuel: int = 8192
    run_fuel: int = 1 << 20
    max_doublings: int = 4
    # A short trial rates a window by its next few thousand steps, which can mislead over a whole run
    # (json, NOTES.md): only a clear gain moves off the default.
    margin: float = 1.3
    rates: dict[int, list[float]] = field(default_factory=dict)
    best: int = 0
    chosen: list[tuple[int, float]] = field(default_factory=list)  # each measurement: winner, its gain

    @property
    def _order(self) -> tuple[int, ...]:
        # The default both first and last: a program whose speed drifts from launch to launch then does
        # not favour the windows tried later.
        return (*self.windows, self.windows[0])

    def next(self) -> tuple[int, int]:
        """The window and the fuel slice for the next launch."""
        done = sum(map(len, self.rates.values()))
        if done < len(self._order):
            return self._order[done], self.trial_fuel
        return self.best, self.run_fuel << min(len(self.chosen) - 1, self.max_doublings)

    def record(self, window: int, fuel: int, seconds: float) -> None:
        """What a launch under `window` did: fuel spent over all instances, and its time."""
        done = sum(map(len, self.rates.values()))
        if done == len(self._order):  # the long launch: measure again next
            self.rates.clear()
            return
        self.rates.setdefault(window, []).append(fuel / max(seconds, 1e-9))
        if done + 1 == len(self._order):
            mean = {w: sum(r) / len(r) for w, r in self.rates.items()}
            default = self.windows[0]
            top = max(mean, key=mean.__getitem__)
            self.best = top if mean[top] > self.margin * mean[default] else default
            self.chosen.append((self.best, mean[top] / max(mean[default], 1e-9)))
