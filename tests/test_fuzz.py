"""Differential fuzzing against wasmtime (wasmgpu/fuzz): the minimized modules of past mismatches, a bounded
random sample from binaryen when wasm-opt is installed, and the comparison rules themselves."""

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from tests.conftest import BACKEND, MEMORY_LAYOUT, REPO
from wasmgpu.fuzz import generate
from wasmgpu.fuzz.campaign import Settings, check_module, make_engine
from wasmgpu.fuzz.compare import INVALID, MISMATCH, PASS, UNSUPPORTED, nan_class, run_module, same_value
from wasmgpu.runtime.engine import Engine
from wasmgpu.wasm import opcodes as wo

REGRESSIONS = sorted((REPO / "tests" / "fuzz_regressions").glob("*.wat"))
SAMPLE_SEED = 20260
SAMPLE = 48  # modules of the random sample, on the interpreter
SAMPLE_COMPILED = 6  # of them also on the compiled tier (a host compiler build each)


@pytest.fixture(scope="module")
def fuzz_engine() -> Engine:
    return make_engine(BACKEND, MEMORY_LAYOUT)


@pytest.mark.parametrize("tier", ["interp", "compiled"])
@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_regression_agrees_with_wasmtime(fuzz_engine, path: Path, tier: str) -> None:
    wasm = wasmtime.wat2wasm(path.read_text())
    out = run_module(fuzz_engine, wasm, instances=3, tier=tier)
    assert out.status == PASS, out.detail
    assert out.calls > 0


def test_regressions_have_a_comment_saying_what_they_check() -> None:
    assert REGRESSIONS
    for path in REGRESSIONS:
        assert path.read_text().lstrip().startswith(";;"), path.name


needs_binaryen = pytest.mark.skipif(generate.wasm_opt() is None,
                                    reason="wasm-opt (binaryen) is not on PATH: no random modules")


@needs_binaryen
@pytest.mark.parametrize("part", range(4))
def test_random_sample_agrees_with_wasmtime(fuzz_engine, part: int) -> None:
    s = Settings(backend=BACKEND, tier="interp", instances=2, seed=SAMPLE_SEED)
    outcomes = [check_module(fuzz_engine, s, i).outcome for i in range(part, SAMPLE, 4)]
    bad = [o.detail for o in outcomes if o.status == MISMATCH]
    assert not bad, bad
    # The sample is not vacuous: most modules run and compare calls.
    assert sum(o.status == PASS for o in outcomes) >= len(outcomes) // 2
    assert sum(o.calls for o in outcomes) > 0


@needs_binaryen
def test_random_sample_compiled_tier(fuzz_engine) -> None:
    s = Settings(backend=BACKEND, tier="compiled", instances=2, seed=SAMPLE_SEED)
    outcomes = [check_module(fuzz_engine, s, i).outcome for i in range(SAMPLE_COMPILED)]
    assert not [o.detail for o in outcomes if o.status == MISMATCH]
    assert any(o.status == PASS and o.calls for o in outcomes)


def test_nan_classes() -> None:
    f32, f64 = wo.F32_T, wo.F64_T
    assert nan_class(f32, 0x7FC00000) == nan_class(f32, 0xFFC00000) == "canonical"
    assert nan_class(f32, 0x7FC00001) == "arithmetic"
    assert nan_class(f32, 0x7F800001) == "signalling"
    assert nan_class(f32, 0x7F800000) is None and nan_class(wo.I32_T, 0x7FC00000) is None
    assert nan_class(f64, 0x7FF8000000000000) == "canonical"
    assert nan_class(f64, 0xFFF8000000000001) == "arithmetic"
    # wasmtime's arithmetic NaN: any arithmetic NaN of ours, canonical included.
    assert same_value(f32, 0x7FC00000, 0xFFFFFFE2)
    assert same_value(f32, 0x7FC00010, 0xFFFFFFE2)
    # wasmtime's canonical NaN: ours must be canonical (the sign may differ).
    assert same_value(f32, 0xFFC00000, 0x7FC00000)
    assert not same_value(f32, 0x7FC00001, 0x7FC00000)
    # Signalling NaNs and numbers: bit for bit.
    assert not same_value(f32, 0x7F800002, 0x7F800001)
    assert not same_value(f64, 0, 1 << 63)
    assert same_value(wo.I64_T, 5, 5)


WRONG = """
(module
  (func (export "f") (result i32) (i32.const 1))
  (func (export "g") (param i32) (result f64) (f64.const nan:0x4))
)
"""


def test_comparison_sees_agreement_and_unsupported(fuzz_engine) -> None:
    assert run_module(fuzz_engine, wasmtime.wat2wasm(WRONG), instances=2).status == PASS
    simd = wasmtime.wat2wasm('(module (func (export "v") (param v128) (result i32 v128) '
                             '(i32x4.extract_lane 3 (local.get 0)) (i32x4.add (local.get 0) (local.get 0))))')
    out = run_module(fuzz_engine, simd, instances=2)
    assert out.status == PASS and out.calls == 1, out.detail
    # More locals than a frame of ours holds: valid, and refused as unsupported.
    big = wasmtime.wat2wasm(f'(module (func (export "a") (result i32) (local {"i32 " * 40000}) (i32.const 1)))')
    out = run_module(fuzz_engine, big, instances=2)
    assert out.status == UNSUPPORTED, out.detail
    # A function of type [] -> [i32] with an empty body: both engines refuse it.
    invalid = b"\0asm\1\0\0\0" + bytes.fromhex("010501600001 7f 03020100 0a040102000b".replace(" ", ""))
    out = run_module(fuzz_engine, invalid, instances=2)
    assert out.status == INVALID, out.detail
    # `unreachable; throw_ref` (0x0a), as a mutation made it: an exceptions instruction, outside the proposals
    # both engines take in a campaign (oracle.FEATURES), so both refuse it; wasmgpu took it with its defaults.
    throw_ref = b"\0asm\1\0\0\0" + bytes.fromhex("0104016000000302010007050101660000 0a06010400000a0b".replace(" ", ""))
    out = run_module(fuzz_engine, throw_ref, instances=2)
    assert out.status == INVALID, out.detail


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmgpu.fuzz", *args], capture_output=True, text=True, cwd=REPO)


def test_cli_corpus_and_bad_flags(tmp_path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.wasm").write_bytes(wasmtime.wat2wasm(WRONG))
    p = _cli("--corpus", str(corpus), "--backend", BACKEND, "--instances", "3")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1].startswith("modules 1, passed 1 (100.00%), mismatched 0")
    for bad in (["--count", "x"], ["--backend", "tpu"], ["--instances", "0"], ["--nope"]):
        p = _cli(*bad)
        assert p.returncode == 2 and "Traceback" not in p.stderr and "usage:" in p.stderr, bad
    p = _cli("--corpus", str(tmp_path / "missing"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
