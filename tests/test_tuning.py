"""The choice of the reconvergence window while a batch runs (runtime/tuning.py) and the launch loop using it."""

import numpy as np
import pytest
import wasmtime

from wasmgpu.compiler.vm_abi import P_FUEL_SLICE
from wasmgpu.runtime.backends import CpuBackend, CudaBackend
from wasmgpu.runtime.engine import Engine
from wasmgpu.runtime.tuning import WindowTuner, trial_gain
from wasmgpu.vm.build import CudaKernel


def test_tuner_alternates_trials_with_more_launches_under_the_winner_each_time() -> None:
    t = WindowTuner(default=1024, candidate=32, trial_fuel=10, run_fuel=100, max_hold=2, margin=1.3)
    launches = []
    for gain in (2.0, 1.2, 1.5):
        launches.append(t.next())
        t.record(gain)
        launches += [t.next() for _ in range(len(t.chosen) if len(t.chosen) < 3 else 2)]
    assert launches == [(1024, 32, 10), (32, None, 100),  # the candidate clearly won
                        (1024, 32, 10), (1024, None, 100), (1024, None, 100),  # within the margin: the default
                        (1024, 32, 10), (32, None, 100), (32, None, 100)]  # two launches at most between trials
    assert t.next() == (1024, 32, 10)
    assert t.chosen == [(32, 2.0), (1024, 1.2), (32, 1.5)]


def test_trial_gain_compares_fuel_per_lane_second_of_the_two_groups() -> None:
    block, every, nb = 4, 2, 4  # blocks 0 and 2 are trial blocks
    start = np.array([1000, 1000, 2000, 2000], dtype=np.uint64) + (7 << 32)  # only the low 32 bits count
    spent = np.full(nb * block - 1, 100, dtype=np.uint64)  # the last block is one lane short
    end = np.zeros(nb * block - 1, dtype=np.uint32)
    end[0:4], end[4:8], end[8:12], end[12:15] = 1100, 1400, 2100, 2400  # trial blocks take 100 ns, others 400
    end[1] = 1050  # a block's time runs to its last lane's end
    trial_rate = 800 / (4 * 100 + 4 * 100)
    assert trial_gain(spent, end, start, block, every) == trial_rate / (700 / (4 * 400 + 3 * 400))
    spent[4:7] = 0  # lanes that did not run (finished before) do not count
    assert trial_gain(spent, end, start, block, every) == trial_rate / (400 / (1 * 400 + 3 * 400))
    end[12:15] = 0  # the clock's low 32 bits wrapped during the launch
    start[3] = (8 << 32) - 300
    assert trial_gain(spent, end, start, block, every) == trial_rate / (400 / (1 * 400 + 3 * 300))
    spent[:] = 0  # nothing ran: no evidence either way
    assert trial_gain(spent, end, start, block, every) == 1.0


def test_trial_gain_is_even_for_equal_lanes_in_a_part_filled_block() -> None:
    for n in (129, 257, 513):  # the last block holds one lane; lanes of equal speed must compare equal
        blocks = -(-n // 128)
        spent = np.full(n, 1000, dtype=np.uint64)
        assert trial_gain(spent, np.full(n, 500, np.uint32), np.zeros(blocks, np.uint64), 128, 2) == 1.0


class WarpedCpu(CpuBackend):
    """The CPU backend in the GPU's layout, driven through the tuned launch loop as CUDA is. The CPU has no
    clock in S_END_NS (0): start times just below 2^32 make the trial blocks (1 ns) beat the others (2 ns)."""

    block = 16

    def __init__(self, trial_wins: bool) -> None:
        super().__init__(threads=2, interleaved=True)
        self.trial_wins = trial_wins
        self.launches: list[tuple[int | None, tuple[int, int] | None, int]] = []

    def tuner(self, fuel_slice: int, n: int) -> WindowTuner:
        return WindowTuner(trial_fuel=50, run_fuel=200, every=2)

    def run(self, params: np.ndarray, n: int, near: int | None = None,
            trial: tuple[int, int] | None = None, code: object = None) -> np.ndarray | None:
        self.launches.append((near, trial, int(params[P_FUEL_SLICE])))
        super().run(params, n, near, trial, code)
        if trial is None:
            return None
        blocks = np.arange(-(-n // self.block))
        fast = (blocks % trial[1] == 0) & self.trial_wins
        return np.where(fast, (1 << 32) - 1, (1 << 32) - 2).astype(np.uint64)


@pytest.mark.parametrize("trial_wins", [False, True])
def test_tuned_launches_give_the_same_results(trial_wins: bool) -> None:
    wat = """(module (func (export "f") (param i32) (result i64) (local i64)
      (block (loop
        (br_if 1 (i32.eqz (local.get 0)))
        (local.set 1 (i64.add (i64.mul (local.get 1) (i64.const 31)) (i64.extend_i32_u (local.get 0))))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br 0)))
      (local.get 1)))"""
    backend = WarpedCpu(trial_wins)
    n = 48
    batch = Engine(backend).load(wasmtime.wat2wasm(wat)).instantiate(n, fuel_slice=200)
    got = batch.call("f", [(i * 37,) for i in range(n)])

    def expect(k: int) -> int:
        acc = 0
        for x in range(k, 0, -1):
            acc = (acc * 31 + x) & (2**64 - 1)
        return acc

    assert [r.values[0] for r in got] == [expect(i * 37) for i in range(n)]
    # 47 * 37 = 1739 back-edges: a trial launch of 50 fuel, one of 200 under the winner, a trial, two of 200...
    w = 32 if trial_wins else 1024
    assert backend.launches[:6] == [(1024, (32, 2), 50), (w, None, 200),
                                    (1024, (32, 2), 50), (w, None, 200), (w, None, 200), (1024, (32, 2), 50)]
    window, gain = batch.store.tuner.chosen[0]  # about 2 or 1 (a few lanes finish within the trial)
    assert window == w and abs(gain - (2 if trial_wins else 1)) < 0.05
    assert int(batch.store._sync()[P_FUEL_SLICE]) == 200  # the store's own slice is back after the call


def test_cuda_backend_passes_the_kernel_its_arguments_in_order() -> None:
    """CudaBackend.run without a GPU: NumPy for CuPy, and a kernel that records its arguments."""
    calls = []

    class FakeCuda:
        class cuda:
            class runtime:
                @staticmethod
                def deviceSynchronize() -> None:
                    pass

        full = staticmethod(np.full)

    class FakeParams:  # the kernel's constant block: records what is copied there
        @staticmethod
        def copy_from_device_async(src: object, size: int) -> None:
            calls.append(("params", src, size))

    class FakeArray(np.ndarray):
        @property
        def data(self) -> object:  # CuPy's device pointer
            return ("pointer of", id(self))

    b = object.__new__(CudaBackend)
    b.xp, b.near = FakeCuda, -1
    b.resident_warps, b.fixed_per_warp = 4, 0  # a GPU of 4 warps: 300 instances fill each warp's 32 lanes
    b.kernel = CudaKernel(lambda grid, block, args: calls.append((grid, block, args)), FakeParams)
    b.to_host = np.asarray
    params = np.zeros(4, dtype=np.uint64).view(FakeArray)
    assert b.run(params, 300) is None
    copy, (grid, block, args) = calls
    assert copy == ("params", params.data, 32)  # the block goes to constant memory before the launch
    assert grid == (3,) and block == (128,)
    assert [type(a) for a in args] == [np.uint32, np.uint32, np.uint32, np.uint64, np.uint32]
    assert [int(a) for a in args] == [1024, 0, 0, 0, 32]  # the default window; no trial; a null start pointer
    starts = b.run(params, 300, 1024, (32, 8))
    _, _, args = calls[3]
    assert [int(a) for a in args[:3]] == [1024, 32, 8]
    assert args[3] is starts and starts.dtype == np.uint64 and starts.shape == (3,)
    assert b.tuner(1 << 20, 300).every == 3 and b.tuner(1 << 20, 128) is None  # one block: nothing to compare
    # On a GPU of 100 warps, 300 instances go 3 a warp (12 a block of 4 warps), 90 one a warp.
    b.resident_warps = 100
    b.run(params, 300)
    _, (grid, block, args) = calls[4:]
    assert grid == (25,) and block == (128,) and int(args[4]) == 3
    assert b.per_warp(90) == 1 and b.per_warp(3200) == 32 and b.per_warp(10 ** 6) == 32
    assert b.tuner(1 << 20, 300).every == 8  # 25 blocks to compare
    b.resident_warps = 1000
    assert b.per_warp(200) == 1 and b.tuner(1 << 20, 200) is None  # one instance a warp: no lanes to wait for
    b.resident_warps = 100
    compiled = CudaKernel(lambda grid, block, args: calls.append((grid, block, args)), FakeParams, compiled=True)
    b.run(params, 300, code=compiled)  # a store's compiled code keeps every lane an instance
    _, (grid, block, args) = calls[6:]
    assert grid == (3,) and int(args[4]) == 32 and b.instances_per_block(300, compiled) == 128
    b.fixed_per_warp = 32  # WASMGPU_PER_WARP
    assert b.per_warp(90) == 32 and b.instances_per_block(90) == 128
