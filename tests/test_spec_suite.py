"""The official spec suite (without SIMD) through our runner: every assertion must pass."""

import pytest

from wasmgpu.spec.runner import collect_files, load_toolchain, run_file

from .conftest import BACKEND, find_testsuite

SUITE = find_testsuite()
FILES = collect_files([str(SUITE)], ["simd_*"]) if SUITE else []


@pytest.fixture(scope="module")
def tools():
    return load_toolchain(BACKEND)


NO_SUITE = "spec suite not found: set WASMGPU_TESTSUITE or put it at ../shared/wasm-testsuite"


@pytest.mark.skipif(SUITE is None, reason=NO_SUITE)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize("instances", [1, 5])
def test_spec_file(tools, path: str, instances: int) -> None:
    result = run_file(path, tools, instances)
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    assert result.tally.passed > 0 or result.tally.skipped > 0
