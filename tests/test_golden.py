"""Golden files: the bytecode (python -m wasmgpu.disasm) and the compiled tier's C (compile_store) of a few
small modules, so that a change to the translator or the code generator shows in review as a diff.
`WASMGPU_UPDATE_GOLDEN=1 pytest tests/test_golden.py` writes them afresh."""

import os
from pathlib import Path

import pytest

from wasmgpu import disasm

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
MODULES = {
    "examples_fib": REPO / "examples" / "fib.wasm",
    "examples_gradient": REPO / "examples" / "gradient" / "gradient.wasm",
    "bench_fib": REPO / "bench" / "wasm" / "fib.wasm",
    "calls": GOLDEN / "calls.wat",
    "memory_refs": GOLDEN / "memory_refs.wat",
}
UPDATE = os.environ.get("WASMGPU_UPDATE_GOLDEN") == "1"


def check(path: Path, text: str) -> None:
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path.name} is missing: run with WASMGPU_UPDATE_GOLDEN=1"
    assert path.read_text() == text, f"{path.name} differs: if the change is meant, run with WASMGPU_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_golden(name: str) -> None:
    if MODULES[name].suffix == ".wat":
        pytest.importorskip("wasmtime")
    store = disasm.load(MODULES[name].read_bytes())
    check(GOLDEN / f"{name}.dis", disasm.disassemble(store))
    check(GOLDEN / f"{name}.c", store.compiled_source())


def test_disasm_command_prints_one_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert disasm.main([str(MODULES["examples_fib"]), "fib"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("func 0 fib: ") and "I32_LT_U" in out and "func 1" not in out
    assert disasm.main([str(MODULES["examples_fib"]), "nope"]) == 1
