"""The CUDA build, without a GPU: NVRTC from NVIDIA's wheels (nvidia-cuda-nvrtc, nvidia-nvjitlink; the test
extra installs them) compiles the interpreter in both memory layouts, and a store compiled in pieces as
units (vm/cuda_units.py) that link into one cubin. Nothing here runs on a GPU: CI's only check of cuda.cu."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmgpu import disasm
from wasmgpu.compiler import to_c
from wasmgpu.vm import cuda_units
from wasmgpu.vm.build import NVRTC_FLAGS, VM_DIR, BuildError, device_units, runtime_unit, step_units, vm_source

REPO = Path(__file__).resolve().parent.parent
ARCH = 90  # the H100's and H200's
OPTIONS = [*NVRTC_FLAGS, f"--gpu-architecture=sm_{ARCH}"]

pytestmark = pytest.mark.skipif(cuda_units.library("nvrtc") is None, reason="no NVRTC (pip install nvidia-cuda-nvrtc)")


@pytest.mark.parametrize("layout", [["-DWG_CONTIGUOUS"], []], ids=["contiguous", "interleaved"])
def test_the_interpreter_compiles(layout: list[str]) -> None:
    cubin = cuda_units.compile_unit(vm_source("cuda.cu"), [*OPTIONS, *layout])
    assert cubin[:4] == b"\x7fELF"


def test_a_small_compiled_store_compiles_as_one_program() -> None:
    """The GPU's default build of a compiled store under the pieces bound: its code with the runtime."""
    store = disasm.load((REPO / "bench" / "wasm" / "qsort.wasm").read_bytes())
    store.params.sync()
    source = vm_source("cuda.cu", store.params.compiled_source(pieces=False))
    assert cuda_units.compile_unit(source, [*OPTIONS, "-DWG_CONTIGUOUS"])[:4] == b"\x7fELF"


def test_a_store_in_pieces_builds_as_units_and_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(to_c, "PART_CHARS", 1 << 12)  # qsort's pieces in two groups, each a unit
    store = disasm.load((REPO / "bench" / "wasm" / "qsort.wasm").read_bytes())
    store.params.sync()
    units = device_units(store.params.compiled_source(pieces=True))
    assert len(units) >= 3 and all("#define WG_RDC 1" in u for u in units)
    assert sum("#define WG_PIECES_UNIT 1" in u for u in units) == len(units) - 1  # all but the step's unit
    cap = cuda_units.register_cap((VM_DIR / "cuda.cu").read_text(), ())
    assert cap == 64 and cuda_units.register_cap("", ("WG_MIN_BLOCKS=4",)) == 128
    cubin = cuda_units.build_units(units, [*OPTIONS, "-DWG_CONTIGUOUS", f"--maxrregcount={cap}"], ARCH)
    assert cubin[:4] == b"\x7fELF"
    # Without the cap the pieces would take more registers than the kernel's launch bounds allow: no link.
    with pytest.raises(BuildError, match="regcount"):
        cuda_units.build_units(units[-2:], [*OPTIONS, "-DWG_CONTIGUOUS"], ARCH)


def test_a_unit_that_does_not_compile_says_why() -> None:
    with pytest.raises(BuildError, match="unit.cu"):
        cuda_units.compile_unit("this is not C", OPTIONS)


@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "pieces"])
def test_a_stores_code_links_to_the_runtime_built_apart(pieces: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """WASMGPU_CUDA_STEP_APART: the runtime compiled once (relocatable), a store's code compiled alone (its
    step function exported, the runtime's declaration resolved by the link)."""
    monkeypatch.setattr(to_c, "PART_CHARS", 1 << 12)
    store = disasm.load((REPO / "bench" / "wasm" / "qsort.wasm").read_bytes())
    store.params.sync()
    units = step_units(store.params.compiled_source(pieces=pieces))
    assert len(units) >= (3 if pieces else 1) and sum("#define WG_STEP_UNIT 1" in u for u in units) == 1
    options = [*OPTIONS, "-DWG_CONTIGUOUS", "--maxrregcount=64"]
    runtime = cuda_units.compile_unit(runtime_unit(), [*options, "-rdc=true"])
    cubin = cuda_units.build_units(units, options, ARCH, linked=[runtime])
    assert cubin[:4] == b"\x7fELF" and b"vm_kernel" in cubin and b"vm_step_compiled" in cubin
    with pytest.raises(BuildError, match="vm_step_compiled"):  # the runtime alone does not link
        cuda_units.build_units(units[:-1], options, ARCH, linked=[runtime])
