"""The official spec suite through our runner: every assertion must pass."""

import os

import pytest

from wasmgpu.spec.runner import collect_files, load_toolchain, run_file

from .conftest import BACKEND, find_testsuite

SUITE = find_testsuite()
FILES = collect_files([str(SUITE)], []) if SUITE else []


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


# The 3.0 suite's scripts of what is built of it (multi-memory, extended constant expressions, tail calls,
# relaxed SIMD, 64-bit memories and tables, and the 2.0 features' new scripts): they must pass whole.
WASM_3_0 = SUITE / "proposals" / "wasm-3.0" if SUITE else None
WASM_3_0_FILES = [
    "address", "address0", "address1", "address64", "align", "align0", "align64", "binary", "binary-leb128",
    "binary0", "br_if", "bulk", "bulk64", "call_indirect64", "data", "data0", "data1", "data_drop0", "endianness64",
    "exports", "exports0", "float_exprs0", "float_exprs1", "float_memory0", "float_memory64", "func",
    "i16x8_relaxed_q15mulr_s", "i32x4_relaxed_trunc", "i8x16_relaxed_swizzle", "id", "if", "imports0", "imports1",
    "imports2", "imports3", "imports4", "linking0", "linking1", "linking2", "linking3", "load0", "load1", "load2",
    "load64", "local_get", "local_tee", "memory", "memory-multi", "memory64", "memory64-imports", "memory_copy",
    "memory_copy0", "memory_copy1", "memory_copy64", "memory_fill", "memory_fill0", "memory_fill64", "memory_grow",
    "memory_grow64", "memory_init", "memory_init0", "memory_init64", "memory_redundancy64", "memory_size0",
    "memory_size1", "memory_size2", "memory_size3", "memory_size_import", "memory_trap0", "memory_trap1",
    "memory_trap64", "relaxed_dot_product", "relaxed_laneselect", "relaxed_madd_nmadd", "relaxed_min_max",
    "return_call", "return_call_indirect", "simd_address", "simd_lane", "simd_memory-multi", "start0", "store0",
    "store1", "store2", "table_copy", "table_copy64", "table_copy_mixed", "table_fill", "table_fill64", "table_get",
    "table_get64", "table_grow", "table_init", "table_init64", "table_set64", "table_size64", "token", "traps0",
    "unreached-invalid",
]


@pytest.mark.skipif(WASM_3_0 is None or not WASM_3_0.is_dir(), reason=NO_SUITE)
@pytest.mark.parametrize("name", WASM_3_0_FILES)
@pytest.mark.parametrize(("backend", "instances"), BACKENDS[-1:], ids=lambda v: str(v))
def test_wasm_3_0_file(name: str, backend: str, instances: int) -> None:
    result = run_file(str(WASM_3_0 / f"{name}.wast"), tools(backend), instances)
    failures = [f"line {o.line}: {o.kind}: {o.reason}" for o in result.failures]
    assert not failures, "\n".join(failures[:20])
    assert result.tally.passed > 0


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
