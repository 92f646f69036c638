"""The official spec suite (without SIMD) through our runner: every assertion must pass."""

import os

import pytest

from wasmgpu.spec.runner import collect_files, load_toolchain, run_file

from .conftest import BACKEND, find_testsuite

SUITE = find_testsuite()
FILES = collect_files([str(SUITE)], ["simd_*"]) if SUITE else []


# Without a GPU, the CPU also runs the suite with the GPU's memory layout (vm.h WG_INTERLEAVED).
BACKENDS = [(BACKEND, 1), (BACKEND, 5)] + ([("cpu-interleaved", 5)] if BACKEND == "cpu" else [])
_TOOLS: dict = {}


def tools(backend: str):
    if backend not in _TOOLS:
        # The interpreter, the reference, unless WASMGPU_TIER asks for another tier (auto would build every
        # module of the suite on the CPU too).
        _TOOLS[backend] = load_toolchain(backend, os.environ.get("WASMGPU_TIER") or "interp")
    return _TOOLS[backend]


NO_SUITE = "spec suite not found: set WASMGPU_TESTSUITE or put it at ../shared/wasm-testsuite"


@pytest.mark.skipif(SUITE is None, reason=NO_SUITE)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize(("backend", "instances"), BACKENDS, ids=lambda v: str(v))
def test_spec_file(path: str, backend: str, instances: int) -> None:
    result = run_file(path, tools(backend), instances)
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    assert result.tally.passed > 0 or result.tally.skipped > 0
