"""The choice of the reconvergence window while a batch runs (runtime/tuning.py) and the launch loop using it."""

import numpy as np
import wasmtime

from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine
from wasmgpu.runtime.store import P_FUEL_SLICE
from wasmgpu.runtime.tuning import WindowTuner, trial_gain


def test_tuner_alternates_trials_and_longer_runs_under_the_winner() -> None:
    t = WindowTuner(default=1024, candidate=32, trial_fuel=10, run_fuel=100, max_doublings=1, margin=1.3)
    launches = []
    for gain in (2.0, 1.2, 1.5):
        launches.append(t.next())
        t.record(gain)
        launches.append(t.next())
    assert launches == [(1024, 32, 10), (32, None, 100),  # the candidate clearly won
                        (1024, 32, 10), (1024, None, 200),  # within the margin: the default
                        (1024, 32, 10), (32, None, 200)]  # doubled once, at most
    assert t.chosen == [(32, 2.0), (1024, 1.2), (32, 1.5)]


def test_trial_gain_compares_fuel_per_second_of_the_two_groups() -> None:
    block, every, nb = 4, 2, 4  # blocks 0 and 2 are trial blocks
    start = np.array([1000, 1000, 2000, 2000], dtype=np.uint64) + (7 << 32)  # only the low 32 bits count
    spent = np.full(nb * block - 1, 100, dtype=np.uint64)  # the last block is one lane short
    end = np.zeros(nb * block - 1, dtype=np.uint32)
    end[0:4], end[4:8], end[8:12], end[12:15] = 1100, 1400, 2100, 2400  # trial blocks take 100 ns, others 400
    end[1] = 1050  # a block's time runs to its last lane's end
    assert trial_gain(spent, end, start, block, every) == (800 / 200) / (700 / 800)
    spent[0:4] = 0  # lanes that did not run (finished before) do not count, nor do blocks with none
    assert trial_gain(spent, end, start, block, every) == (400 / 100) / (700 / 800)
    end[12:15] = 0  # the clock's low 32 bits wrapped during the launch
    start[3] = (8 << 32) - 300
    assert trial_gain(spent, end, start, block, every) == (400 / 100) / (700 / (400 + 300))


class WarpedCpu(CpuBackend):
    """The CPU backend in the GPU's layout, driven through the tuned launch loop as CUDA is."""

    block = 16

    def __init__(self) -> None:
        super().__init__(threads=2, interleaved=True)
        self.launches: list[tuple[int | None, tuple[int, int] | None, int]] = []

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner:
        return WindowTuner(trial_fuel=50, run_fuel=200, every=2)

    def run(self, params: np.ndarray, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None) -> np.ndarray | None:
        self.launches.append((near, trial, int(params[P_FUEL_SLICE])))
        super().run(params, n, near, trial)
        return np.zeros(-(-n // self.block), dtype=np.uint64) if trial else None


def test_tuned_launches_give_the_same_results() -> None:
    wat = """(module (func (export "f") (param i32) (result i64) (local i64)
      (block (loop
        (br_if 1 (i32.eqz (local.get 0)))
        (local.set 1 (i64.add (i64.mul (local.get 1) (i64.const 31)) (i64.extend_i32_u (local.get 0))))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br 0)))
      (local.get 1)))"""
    backend = WarpedCpu()
    n = 48
    got = Engine(backend).load(wasmtime.wat2wasm(wat)).instantiate(n).call("f", [(i * 37,) for i in range(n)])

    def expect(k: int) -> int:
        acc = 0
        for x in range(k, 0, -1):
            acc = (acc * 31 + x) & (2**64 - 1)
        return acc

    assert [r.values[0] for r in got] == [expect(i * 37) for i in range(n)]
    # 47 * 37 = 1739 back-edges: a trial launch of 50 fuel, then 200, then a trial, then 400, ...
    # (the CPU has no clock in S_END_NS: every trial is a tie, and the default stays)
    assert backend.launches[:4] == [(1024, (32, 2), 50), (1024, None, 200), (1024, (32, 2), 50), (1024, None, 400)]
