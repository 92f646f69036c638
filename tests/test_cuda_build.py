"""The CUDA build, without a GPU: NVRTC from NVIDIA's wheels (nvidia-cuda-nvrtc, nvidia-nvjitlink; the test
extra installs them) compiles the interpreter in both memory layouts, and a compiled store's code, whole and
in pieces, as units (vm/cuda_units.py) that link to the runtime into one cubin. Nothing here runs on a GPU:
CI's only check of cuda.cu."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmgpu import disasm
from wasmgpu.compiler import to_c
from wasmgpu.vm import cuda_units
from wasmgpu.vm.build import NVRTC_FLAGS, VM_DIR, BuildError, runtime_unit, step_units, vm_source

REPO = Path(__file__).resolve().parent.parent
ARCH = 90  # the H100's and H200's
OPTIONS = [*NVRTC_FLAGS, f"--gpu-architecture=sm_{ARCH}"]

pytestmark = pytest.mark.skipif(cuda_units.library("nvrtc") is None, reason="no NVRTC (pip install nvidia-cuda-nvrtc)")


@pytest.mark.parametrize("layout", [["-DWG_CONTIGUOUS"], []], ids=["contiguous", "interleaved"])
def test_the_interpreter_compiles(layout: list[str]) -> None:
    cubin = cuda_units.compile_unit(vm_source("cuda.cu"), [*OPTIONS, *layout])
    assert cubin[:4] == b"\x7fELF"


def test_a_unit_that_does_not_compile_says_why() -> None:
    with pytest.raises(BuildError, match="unit.cu"):
        cuda_units.compile_unit("this is not C", OPTIONS)


@pytest.mark.parametrize("kind", ["whole", "pieces", "hybrid"])
def test_a_stores_code_links_to_the_runtime_built_apart(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime compiled once (relocatable), a store's code compiled alone (its step function exported, the
    runtime's declaration resolved by the link), each unit under vm_kernel's register cap. Hybrid: the
    larger functions left to the interpreter, which the runtime then holds, and each unit compiled in a
    process of its own."""
    pieces = kind != "whole"
    monkeypatch.setattr(to_c, "PART_CHARS", 1 << 12)  # qsort's pieces in two groups, each a unit
    if kind == "hybrid":
        monkeypatch.setenv("WASMGPU_PIECE_MAX_WORDS", "30")
        monkeypatch.setattr(cuda_units, "APART_UNITS", 0)
    store = disasm.load((REPO / "bench" / "wasm" / "qsort.wasm").read_bytes())
    store.params.sync()
    units = step_units(store.params.compiled_source(pieces=pieces))
    assert any(to_c.TIER_QUERY in u for u in units) == (kind == "hybrid")
    assert len(units) >= {"whole": 1, "pieces": 3, "hybrid": 2}[kind] and all("#define WG_RDC 1" in u for u in units)
    assert sum("STEP_FN u64 vm_step_compiled(" in u for u in units) == 1
    cap = cuda_units.register_cap((VM_DIR / "cuda.cu").read_text(), ())
    assert cap == 64 and cuda_units.register_cap("", ("WG_MIN_BLOCKS=4",)) == 128
    options = [*OPTIONS, "-DWG_CONTIGUOUS", f"--maxrregcount={cap}"]
    runtime = cuda_units.compile_unit(runtime_unit(hybrid=kind == "hybrid"), [*options, "-rdc=true"])
    cubin = cuda_units.build_units(units, options, ARCH, linked=[runtime])
    assert cubin[:4] == b"\x7fELF" and b"vm_kernel" in cubin and b"vm_step_compiled" in cubin
    assert (b"wg_compiled_at" in cubin) == (kind == "hybrid")
    with pytest.raises(BuildError, match="vm_step_compiled"):  # the runtime alone does not link
        cuda_units.build_units(units[:-1], options, ARCH, linked=[runtime])
    if kind == "pieces":  # without the cap the pieces take more registers than the kernel's launch bounds allow
        with pytest.raises(BuildError, match="regcount"):
            cuda_units.build_units(units, [*OPTIONS, "-DWG_CONTIGUOUS"], ARCH, linked=[runtime])
