"""The per-launch choice of the reconvergence window (runtime/tuning.py) and the launch loop that uses it."""

import numpy as np
import wasmtime

from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine
from wasmgpu.runtime.store import P_FUEL_SLICE
from wasmgpu.runtime.tuning import WindowTuner


def test_tuner_tries_each_window_then_runs_the_fastest_longer_each_time() -> None:
    t = WindowTuner(windows=(1024, 128, 32), trial_fuel=10, run_fuel=100, max_doublings=1, margin=1.1)
    rates = {1024: 1.0, 128: 3.0, 32: 2.0}
    for run_fuel in (100, 200, 200):  # the long launch doubles, up to max_doublings times
        tried = []
        for _ in range(4):
            w, fuel = t.next()
            assert fuel == 10
            tried.append(w)
            t.record(w, int(rates[w] * 1000), 1.0)
        assert tried == [1024, 128, 32, 1024]
        assert t.next() == (128, run_fuel)
        t.record(128, 3000, 1.0)
    assert t.chosen == [(128, 3.0)] * 3


def test_tuner_keeps_the_default_unless_another_is_clearly_faster() -> None:
    t = WindowTuner(windows=(1024, 32), margin=1.1)
    for w, fuel in ((1024, 900), (32, 1150), (1024, 1100)):  # 32 beats the mean of the default by 15%
        assert t.next()[0] == w
        t.record(w, fuel, 1.0)
    assert t.next()[0] == 32
    t.record(32, 1, 1.0)
    for w, fuel in ((1024, 1000), (32, 1050), (1024, 1000)):
        assert t.next()[0] == w
        t.record(w, fuel, 1.0)
    assert t.next()[0] == 1024


class WarpedCpu(CpuBackend):
    """The CPU backend in the GPU's layout, driven through the tuned launch loop as CUDA is."""

    def __init__(self) -> None:
        super().__init__(threads=2, interleaved=True)
        self.launches: list[tuple[int | None, int]] = []

    def tuner(self, fuel_slice: int) -> WindowTuner:
        return WindowTuner(windows=(1024, 128, 32), trial_fuel=50, run_fuel=200, margin=1.1)

    def run(self, params: np.ndarray, n: int, near: int | None = None) -> None:
        self.launches.append((near, int(params[P_FUEL_SLICE])))
        super().run(params, n, near)


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
    # 47 * 37 = 1739 back-edges: four trial slices of 50, then 200 under the winner, then trials again.
    trials = [(1024, 50), (128, 50), (32, 50), (1024, 50)]
    assert backend.launches[:5] == [*trials, (backend.launches[4][0], 200)]
    assert backend.launches[5:9] == trials
