"""Exception handling, fuzzed: modules from wasmgpu.fuzz.exceptions (tags, throw, throw_ref, try_table with
every kind of catch clause, calls, loops, recursion) run on the interpreter, the compiled tier, the compiled
tier in pieces, and in pieces with the larger functions left to the interpreter, seven instances a batch, each
result against wasmtime's."""

from functools import cache

import pytest

from wasmgpu.fuzz.exceptions import UNCAUGHT, assemble, diff, wasmgpu_outcomes, wasmtime_outcomes
from wasmgpu.runtime.engine import Engine

# Seeds that pass now; a failing module found by a campaign (python -m wasmgpu.fuzz.exceptions) becomes a
# test of its own once fixed, rather than a gap in this range.
SEEDS = range(20)
CONFIGS = ["interp", "compiled", "pieces", "hybrid"]


@cache
def module(seed: int) -> tuple[str, bytes | None]:
    return assemble(seed)


@cache
def reference(seed: int) -> list:
    wasm = module(seed)[1]
    assert wasm is not None
    return wasmtime_outcomes(wasm)


def test_generator_is_deterministic_and_valid() -> None:
    assert module(3)[0] == assemble(3)[0]
    invalid = [s for s in SEEDS if module(s)[1] is None]
    assert len(invalid) <= 1, f"the generator made invalid modules: seeds {invalid}"


def test_runs_take_both_ways() -> None:
    """The seeds cover values and uncaught exceptions, and every construct the generator knows."""
    outcomes = [o[0] for s in SEEDS if module(s)[1] is not None for o in reference(s)]
    assert 0.1 < outcomes.count(UNCAUGHT) / len(outcomes) < 0.6
    text = "".join(module(s)[0] for s in SEEDS)
    for word in ("(catch ", "(catch_ref ", "(catch_all ", "(catch_all_ref ", "throw_ref", "(type $bt", "(return",
                 "(br_if ", "(loop "):
        assert word in text, word


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_wasmtime(seed: int, config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wat, wasm = module(seed)
    if wasm is None:
        pytest.skip("invalid module (counted by test_generator_is_deterministic_and_valid)")
    if config in ("pieces", "hybrid"):
        monkeypatch.setenv("WASMGPU_PIECES_WORDS", "0")  # one C function per wasm function
    if config == "hybrid":  # the larger functions left to the interpreter (params.left_to_interpreter)
        monkeypatch.setenv("WASMGPU_PIECE_MAX_WORDS", "25")
    got = wasmgpu_outcomes(Engine("cpu"), wasm, "interp" if config == "interp" else "compiled")
    assert not diff(reference(seed), got), f"seed {seed} ({config}):\n" + "\n".join(diff(reference(seed), got))
