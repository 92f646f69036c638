"""Stores that move their memories to the other layout while they run (Store.relayout, tuning.LayoutTrial):
the bytes move exactly, programs give the same answers when moved between any two launches, and the trial
keeps the layout whose lanes spent fuel faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BACKEND
from tests.test_devfiles import make_tree, tree_files
from wasmgpu.runtime import launch, tuning
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine
from wasmgpu.runtime.linear_memory import MemoryArray
from wasmgpu.runtime.tuning import LayoutTrial
from wasmgpu.wasi import Wasi, WasiContext

REPO = Path(__file__).resolve().parent.parent
# The backends with both layouts: the GPU, or the CPU build of the GPU's layouts.
MOVABLE = "cuda" if BACKEND == "cuda" else "cpu-interleaved"


@pytest.mark.parametrize("start", ["contiguous", "interleaved"])
@pytest.mark.parametrize("used", [0, 7, 64, 253, 256])
def test_relayout_moves_the_bytes_in_use(start: str, used: int) -> None:
    backend = CpuBackend(threads=1, interleaved=True, memory_layout=start)
    n, cap = 5, 256
    mem = MemoryArray.zeros(backend, n, cap)
    rng = np.random.default_rng(used)
    model = rng.integers(0, 256, (n, cap), dtype=np.uint8)
    for i in range(n):
        mem.write(i, 0, model[i].tobytes())
    other = tuning.OTHER_LAYOUT[start]
    moved = mem.relayout(other, used)
    assert moved.layout == other and moved.capacity >= cap
    back = moved.relayout(start, cap)
    for i in range(n):
        want = model[i, :used].tobytes() + bytes(cap - used)
        assert moved.read(i, 0, cap).tobytes() == want
        assert back.read(i, 0, cap).tobytes() == want
    assert mem.relayout(start, cap) is mem


def _feed(trial: LayoutTrial, rates: list[float], ready: bool = True) -> list[str | None]:
    """Launches of one second at the given fuel rates: the moves the trial asked for before each."""
    moves = []
    for rate in rates:
        moves.append(trial.next_layout(ready))
        trial.record(rate, 1.0)
    return moves


def test_the_trial_keeps_the_other_layout_only_where_it_is_clearly_faster() -> None:
    fast = LayoutTrial("contiguous", watch_s=2.0)
    # watch 3 launches (the least), wait for the build (here there: one launch), measure 3 just before the
    # move, try 3 in the other layout
    moves = _feed(fast, [10, 10, 10, 10, 10, 10, 10, 30, 30, 30, 30])
    assert moves == [None] * 7 + ["interleaved", None, None, None]
    assert fast.next_layout(True) is None and fast.state == "done"
    assert fast.chosen == "interleaved" and fast.gain == pytest.approx(3.0)
    slow = LayoutTrial("contiguous", watch_s=2.0)
    moves = _feed(slow, [10] * 7 + [11] * 3)
    assert moves[7] == "interleaved" and slow.next_layout(True) == "contiguous" and slow.chosen == "contiguous"
    waiting = LayoutTrial("contiguous", watch_s=0.0)
    assert _feed(waiting, [10] * 8, ready=False) == [None] * 8 and waiting.state == "wait"
    assert not waiting.measuring and waiting.wants_build  # no build asked yet: launches go uncapped meanwhile
    recalled = LayoutTrial.recalled("contiguous", 2.5)
    assert recalled.wants_build and recalled.next_layout(False) is None
    assert recalled.next_layout(True) == "interleaved" and recalled.chosen == "interleaved"


def _make_run(engine: Engine, tmp: Path, move_each_launch: bool) -> tuple[list[bytes], list[object], list[dict]]:
    """tests/corpus/src/wasi_random.c "make" sequences, 8 instances on trees of their own (files made and
    written on the device, output buffered there), with short launches; `move_each_launch`: the store changes
    layout after every launch."""
    module = REPO / "tests" / "corpus" / "wasm" / "wasi_random.wasm"
    roots = [make_tree(tmp / str(k)) for k in range(8)]
    contexts = [WasiContext(args=["wasi_random.wasm", str(seed), "80", "make", "easy"], preopens=[(str(r), ".")])
                for seed, r in enumerate(roots)]
    compiled = engine.load(module.read_bytes())
    store = engine.store(len(contexts))
    store.fuel_slice = 5000
    wasi = Wasi(store, contexts)
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    layouts = []

    def move() -> None:
        layouts.append(store.memory_layout)
        store.relayout(tuning.OTHER_LAYOUT[store.memory_layout])

    try:
        results = store.call(instance.exports["_start"], [()] * len(contexts), on_slice=move if move_each_launch
                             else None)
    finally:
        wasi.close()
    if move_each_launch:
        assert {"contiguous", "interleaved"} <= set(layouts), layouts
    return [bytes(c.stdout.data) for c in contexts], [r.exit_code for r in results], [tree_files(r) for r in roots]


def test_a_program_moved_between_every_two_launches_gives_the_same_answers(tmp_path: Path) -> None:
    engine = Engine(MOVABLE, "auto")
    want = _make_run(Engine(MOVABLE, "contiguous"), tmp_path / "fixed", False)
    got = _make_run(engine, tmp_path / "moved", True)
    assert got == want
    assert all(code == 0 for code in want[1])


def test_auto_settles_on_a_layout_and_remembers_it(tmp_path: Path, monkeypatch) -> None:
    """A long run under auto (here every launch counts as long) measures both layouts, gives the answers the
    fixed layout gives, and a later run of the same code starts from the choice without measuring."""
    memory: dict[str, tuple[str, float]] = {}  # the compile cache's choices, kept apart from other tests'
    monkeypatch.setattr(launch, "remembered_layout", memory.get)
    monkeypatch.setattr(launch, "remember_layout", lambda key, layout, gain: memory.__setitem__(key, (layout, gain)))
    monkeypatch.setattr(tuning, "LAYOUT_WATCH_S", 0.0)
    wasm = (REPO / "bench" / "wasm" / "sieve.wasm").read_bytes()
    args = [(i,) for i in range(16)]

    def run(layout: str) -> tuple[list, LayoutTrial | None, str]:
        inst = Engine(MOVABLE, layout).load(wasm).instantiate(16)
        inst.store.fuel_slice = 3000
        values = [r.values for r in inst.call("run", args)]
        return values, inst.store.launcher.layout_trial, inst.store.memory_layout

    Engine(MOVABLE, "interleaved")  # both layouts' interpreters built (background builds are off in tests)
    want, _, _ = run("contiguous")
    got, trial, settled = run("auto")
    assert got == want
    assert trial is not None and trial.state == "done" and settled == trial.chosen
    assert trial.note.startswith("memory layout: interleaved ran")
    again, second, _ = run("auto")
    assert again == want
    if trial.chosen == "contiguous":
        assert second is None  # nothing to try again
    else:
        assert second is not None and second.note.startswith("memory layout: interleaved, measured")


def test_gpu_run_says_which_layout_it_kept(capsysbinary, monkeypatch) -> None:
    """`gpu-run -v --memory-layout auto`: the program's output as in a fixed layout, and a line saying what
    the trial measured and kept."""
    from tests.test_cli import gpu_run

    memory: dict[str, tuple[str, float]] = {}
    monkeypatch.setattr(launch, "remembered_layout", memory.get)
    monkeypatch.setattr(launch, "remember_layout", lambda key, layout, gain: memory.__setitem__(key, (layout, gain)))
    monkeypatch.setattr(tuning, "LAYOUT_WATCH_S", 0.0)
    Engine(MOVABLE, "interleaved")  # both layouts' interpreters built (background builds are off in tests)
    Engine(MOVABLE, "contiguous")
    nbody = REPO / "tests" / "corpus" / "wasm" / "c_nbody.wasm"
    run = ["--backend", MOVABLE, "--tier", "interp", "-n", "4", str(nbody), "20000"]
    fixed = gpu_run(capsysbinary, "--memory-layout", "contiguous", *run)
    auto = gpu_run(capsysbinary, "-v", "--memory-layout", "auto", *run)
    assert fixed[0] == auto[0] == 0 and auto[1] == fixed[1] and fixed[1].count(b"step") >= 4
    assert b"gpu-run: memory layout: interleaved ran" in auto[2], auto[2].decode()[-2000:]


def test_a_move_that_does_not_fit_changes_nothing_and_is_not_remembered(monkeypatch) -> None:
    """Where the WASI buffers' copies do not fit, the memories stay where they were (the VM must not read
    freed arrays), the run ends right in its first layout, and no choice is remembered."""
    from wasmgpu.errors import ResourceLimitError
    from wasmgpu.wasi import fast

    memory: dict[str, tuple[str, float]] = {}
    monkeypatch.setattr(launch, "remembered_layout", memory.get)
    monkeypatch.setattr(launch, "remember_layout", lambda key, layout, gain: memory.__setitem__(key, (layout, gain)))
    monkeypatch.setattr(tuning, "LAYOUT_WATCH_S", 0.0)
    Engine(MOVABLE, "interleaved")

    def full(self, layout):
        raise ResourceLimitError("no room for the WASI output buffer (simulated)")

    def run(layout: str) -> tuple[list[bytes], object]:
        engine = Engine(MOVABLE, layout)
        compiled = engine.load((REPO / "tests" / "corpus" / "wasm" / "c_nbody.wasm").read_bytes())
        contexts = [WasiContext(args=["c_nbody.wasm", "20000"]) for _ in range(4)]
        store = engine.store(4, tier="interp")
        store.fuel_slice = 3000
        wasi = Wasi(store, contexts)
        inst = store.instantiate(compiled.module, wasi.imports(compiled.module))
        wasi.bind(inst)
        try:
            results = store.call(inst.exports["_start"], [()] * 4)
        finally:
            wasi.close()
        assert all(r.trap is None and not r.exit_code for r in results)
        assert store.memory_layout == "contiguous" and {m.data.layout for m in store.mems} == {"contiguous"}
        return [bytes(c.stdout.data) for c in contexts], store.launcher.layout_trial

    want, _ = run("contiguous")
    monkeypatch.setattr(fast.FastPaths, "relayout", full)
    got, trial = run("auto")
    assert got == want
    assert trial is not None and "no room" in trial.note and memory == {}
