"""The official spec suite through our runner: every assertion must pass."""

import fnmatch
import os

import pytest

from wasmgpu.spec.runner import collect_files, load_toolchain, run_file

from .conftest import BACKEND, find_testsuite

SUITE = find_testsuite()
FILES = collect_files([str(SUITE)], []) if SUITE else []


# Without a GPU, the CPU also runs the suite with the GPU's memory layout (vm.h WG_INTERLEAVED).
BACKENDS = [(BACKEND, 1), (BACKEND, 64)] + ([("cpu-interleaved", 64)] if BACKEND == "cpu" else [])
_TOOLS: dict = {}


def tools(backend: str, tier: str | None = None):
    # The interpreter, the reference, unless asked for or WASMGPU_TIER names another tier (auto would build
    # every module of the suite on the CPU too).
    tier = tier or os.environ.get("WASMGPU_TIER") or "interp"
    if (backend, tier) not in _TOOLS:
        _TOOLS[backend, tier] = load_toolchain(backend, tier)
    return _TOOLS[backend, tier]


NO_SUITE = "spec suite not found: set WASMGPU_TESTSUITE or put it at ../shared/wasm-testsuite"


@pytest.mark.skipif(SUITE is None, reason=NO_SUITE)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize(("backend", "instances"), BACKENDS, ids=lambda v: str(v))
def test_spec_file(path: str, backend: str, instances: int) -> None:
    result = run_file(path, tools(backend), instances)
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    assert result.tally.passed > 0 or result.tally.skipped > 0


# The 3.0 suite's scripts but those of the GC proposal, which is not built: they must pass whole.
WASM_3_0 = SUITE / "proposals" / "wasm-3.0" if SUITE else None
GC_SCRIPTS = ("array*", "struct*", "i31*", "ref_cast*", "ref_test*", "br_on_cast*", "ref_eq*", "type-*",
              "binary-gc*", "extern*")
WASM_3_0_FILES = sorted(p.stem for p in WASM_3_0.glob("*.wast")
                        if not any(fnmatch.fnmatch(p.name, g) for g in GC_SCRIPTS)) if WASM_3_0 else []


@pytest.mark.skipif(WASM_3_0 is None or not WASM_3_0.is_dir(), reason=NO_SUITE)
@pytest.mark.parametrize("name", WASM_3_0_FILES)
@pytest.mark.parametrize(("backend", "instances"), [BACKENDS[0], BACKENDS[-1]], ids=lambda v: str(v))
def test_wasm_3_0_file(name: str, backend: str, instances: int) -> None:
    result = run_file(str(WASM_3_0 / f"{name}.wast"), tools(backend), instances)
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    # ref_null's module uses GC types: all of it is skipped, each skip naming GC.
    assert result.tally.passed > 0 or all("GC proposal" in o.reason for o in result.outcomes), name


# The threads proposal's scripts (shared memories, atomics; 1.0 otherwise): they must pass whole.
THREADS = SUITE / "proposals" / "threads" if SUITE else None
THREADS_FILES = sorted(p.stem for p in THREADS.glob("*.wast")) if THREADS and THREADS.is_dir() else []


@pytest.mark.skipif(not THREADS_FILES, reason=NO_SUITE)
@pytest.mark.parametrize("name", THREADS_FILES)
@pytest.mark.parametrize(("backend", "instances"), [BACKENDS[0], BACKENDS[-1]], ids=lambda v: str(v))
def test_threads_file(name: str, backend: str, instances: int) -> None:
    result = run_file(str(THREADS / f"{name}.wast"), tools(backend), instances)  # type: ignore[operator]
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    assert result.tally.passed > 0


# The compiled tier over both suites, on the CPU with the GPU's memory layout: each of the suites' 1,270-odd
# stores built by the host compiler (about a second each), then run at 1 and at 64 instances (the second run
# finds the build cached). On a GPU, scripts/gpu_check.sh's compiled section runs it (NVRTC builds).
COMPILED_FILES = FILES + ([str(WASM_3_0 / f"{n}.wast") for n in WASM_3_0_FILES] if WASM_3_0 else [])


@pytest.mark.skipif(SUITE is None, reason=NO_SUITE)
@pytest.mark.skipif(BACKEND != "cpu", reason="the GPU's compiled tier runs in scripts/gpu_check.sh compiled")
@pytest.mark.parametrize("path", COMPILED_FILES, ids=lambda p: "/".join(p.rsplit("/", 2)[-2:]))
def test_spec_file_compiled(path: str) -> None:
    for instances in (1, 64):
        result = run_file(path, tools("cpu-interleaved", "compiled"), instances)
        failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
        assert not failures, f"{instances} instances:\n" + "\n".join(failures[:20])
        # Scripts of text modules alone (quote), and 3.0's ref_null (GC types), skip whole, each skip named.
        skips_named = all(o.reason == "text-format module" or "GC proposal" in o.reason for o in result.outcomes)
        assert result.tally.passed > 0 or skips_named, path
