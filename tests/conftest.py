import os
from pathlib import Path

import pytest
import wasmtime

from wasmgpu.runtime.engine import Engine

REPO = Path(__file__).resolve().parent.parent
BACKEND = os.environ.get("WASMGPU_TEST_BACKEND", "cpu")
# WASMGPU_TEST_MEMORY_LAYOUT=contiguous runs the suite with that memory layout (cuda, cpu-interleaved).
MEMORY_LAYOUT = os.environ.get("WASMGPU_TEST_MEMORY_LAYOUT") or None
# Large modules run by the tests would each start a build of their compiled code (vm/background.py), which
# would compete with the tests for the cores: off, but where a test turns it on.
os.environ["WASMGPU_BACKGROUND_BUILD"] = "0"
# The same choice as gpu-run options, for the tests that run the command line.
CLI_BACKEND_ARGS = ["--backend", BACKEND, *(["--memory-layout", MEMORY_LAYOUT] if MEMORY_LAYOUT else [])]


def wasmtime_call(wasm: bytes, name: str, args: tuple) -> object:
    """The reference: export `name` of a fresh wasmtime instance of `wasm`, called with `args`."""
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    return inst.exports(store)[name](store, *args)


def find_testsuite() -> Path | None:
    path = Path(os.environ.get("WASMGPU_TESTSUITE") or REPO.parent / "shared" / "wasm-testsuite")
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine(BACKEND, MEMORY_LAYOUT)


@pytest.fixture
def load(engine):
    def _load(wat: str):
        return engine.load(wasmtime.wat2wasm(wat))
    return _load
