"""The opcode set is defined once (compiler/isa.py); the VM's header is generated from it."""

import inspect
import re
from pathlib import Path

from wasmgpu.compiler import bytecode, isa, to_c
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


# The compiled tier's facts about each op (compiler/to_c.py) must cover every op: an op missing from one
# would fall to a rule meant for other ops without any error.
VM_H = (Path(isa.__file__).resolve().parent.parent / "vm" / "vm.h").read_text()


def _opc_macros() -> dict[str, str]:
    """vm.h's OPC_<name> macros: name -> body (continuation lines joined)."""
    text = VM_H.replace("\\\n", " ")
    return {m.group(1): m.group(2) for m in re.finditer(r"^#define OPC_(\w+) (.*)$", text, re.M)}


def test_every_op_is_control_or_generated() -> None:
    generated = set(isa.handler_cases())
    assert not set(isa.CONTROL) & generated
    assert set(isa.CONTROL) | generated == set(isa.OP_NAMES)


def test_control_records_match_the_vm() -> None:
    macros = _opc_macros()
    assert {n for n, c in isa.CONTROL.items() if c.macro} == set(macros)
    for name, c in isa.CONTROL.items():
        if not c.macro:
            assert re.search(rf"case OP_{name}:", VM_H), f"{name}: no handler in vm.h"
            continue
        body = macros[name]
        read = {r for r in "abc" if re.search(rf"RD_\w+\({r.upper()}\)", body)}
        assert read == set(c.reads), name
        assert c.writes == bool(re.search(r"WR_\w+\(A,", body)), name
        assert c.next_words == body.count("NEXT_WORD()"), name
        assert c.leaves == ("goto leave" in body), name
        assert not c.ends, name


def test_generated_handlers_read_no_follow_on_words() -> None:
    for name, case in isa.handler_cases().items():
        assert "NEXT_WORD" not in case and "goto leave" not in case, name


def test_compiled_tier_has_a_rule_for_every_op() -> None:
    macro = {n for n, c in isa.CONTROL.items() if c.macro}
    assert set(isa.CONTROL) == to_c._OWN_C | macro
    assert set(isa.CONTROL) == to_c._OWN_USE_DEF | macro
    instruction = inspect.getsource(to_c._FuncEmitter.instruction)
    use_def = inspect.getsource(to_c._use_def)
    for name in to_c._OWN_C:
        assert f'"{name}"' in instruction, name
    for name in to_c._OWN_USE_DEF:
        assert f'"{name}"' in use_def, name
    handlers = to_c._handlers()
    for name in set(isa.OP_NAMES) - set(isa.CONTROL):
        assert isa.OP[name] in handlers, name
        assert isa.OP[name] not in bytecode.NEXT_WORDS | to_c._LEAVES | to_c._NO_FALLTHROUGH, name


def test_narrow_results_follow_the_wasm_types() -> None:
    for name in isa.NUMERIC:
        narrow = wo.BY_NAME[name].results[0] in (wo.I32_T, wo.F32_T)
        assert (isa.OP[isa.isa_name(name)] in to_c._NARROW) == narrow, name
    for name in isa.LOADS:
        assert (isa.OP[isa.isa_name(name)] in to_c._NARROW) == (name[:3] in ("i32", "f32")), name
    for name, c in isa.CONTROL.items():
        assert (isa.OP[name] in to_c._NARROW) == c.narrow, name
        assert c.writes or not c.narrow, name


def test_operand_roles_agree_with_the_facts() -> None:
    fields = {"sa", "sb", "sc", "a", "b", "c", "y", "imm32", "ext", "sext", "next", "next.lo", "next.hi"}
    for name, c in isa.CONTROL.items():
        tokens = c.operands.split()
        roles = [t.split("=") for t in tokens if t != "targets"]
        assert all(len(r) == 2 and r[1] in fields for r in roles), name
        slots = {f[1] for _, f in roles if f in ("sa", "sb", "sc")} | {"c" for _, f in roles if f == "y"}
        assert slots == set(c.reads) | ({"a"} if c.writes else set()), name
        assert c.next_words == 0 or any(f.startswith("next") for _, f in roles), name
