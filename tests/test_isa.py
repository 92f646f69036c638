"""The opcode set is defined once (compiler/isa.py); the VM's header is generated from it."""

from wasmgpu.compiler import isa
from wasmgpu.wasm import opcodes as wo


def test_generated_header_is_fresh() -> None:
    assert isa.HEADER_PATH.read_text() == isa.generate_header(), (
        "wasmgpu/vm/isa.h is stale: run `python -m wasmgpu.compiler.isa`")


def test_every_numeric_wasm_op_has_semantics() -> None:
    numeric = {i.name for k, i in wo.OPS.items()
               if k >> 16 != 0xFD and i.imm == wo.NONE and i.params is not None and i.name != "nop"}
    assert numeric == set(isa.NUMERIC)


def test_op_numbers_are_dense_and_unique() -> None:
    assert sorted(isa.OP.values()) == list(range(len(isa.OP_NAMES)))
