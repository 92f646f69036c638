"""The translator's rewrites against wasmtime: a result written straight into a local (local.set/tee
retargeting), small constants folded into their users, and the defaults of declared locals."""

import random

import pytest
import wasmtime

from tests.conftest import wasmtime_call

NLOCALS = 3


def _straight_line(rng: random.Random, length: int) -> str:
    """A random i32 body over few locals, dense in the shapes where a value's producer is not the last
    instruction emitted (drop, select, tee, block results, a set right after a call)."""
    out: list[str] = []
    depth = 0

    def push(text: str, pops: int, pushes: int) -> None:
        nonlocal depth
        out.append(text)
        depth += pushes - pops

    for _ in range(length):
        choices = ["const", "get", "global"]
        if depth >= 1:
            choices += ["set", "tee", "drop", "eqz", "gset", "call", "block"]
        if depth >= 2:
            choices += ["add", "sub"]
        if depth >= 3:
            choices += ["select"]
        op = rng.choice(choices)
        k = rng.randrange(NLOCALS)
        if op == "const":
            push(f"i32.const {rng.choice([0, 1, 7, 255, -3, 40000, 0x7FFFFFFF])}", 0, 1)
        elif op == "get":
            push(f"local.get {k}", 0, 1)
        elif op == "global":
            push("global.get $g", 0, 1)
        elif op == "set":
            push(f"local.set {k}", 1, 0)
        elif op == "tee":
            push(f"local.tee {k}", 1, 1)
        elif op == "drop":
            push("drop", 1, 0)
        elif op == "eqz":
            push("i32.eqz", 1, 1)
        elif op == "gset":
            push("global.set $g", 1, 0)
        elif op == "call":
            push("call $id", 1, 1)
        elif op in ("add", "sub"):
            push(f"i32.{op}", 2, 1)
        elif op == "block":  # a block that takes one value and may leave early with another
            push(f"(block (param i32) (result i32) local.get {k} br_if 0 i32.const 5 i32.add)", 1, 1)
        else:
            push("select", 3, 1)
    out += ["drop"] * depth
    ret = " ".join(f"local.get {k} i32.const {31 ** k} i32.mul i32.add" for k in range(NLOCALS))
    return " ".join(out) + f" global.get $g {ret}"  # every function starts by setting $g: calls are independent


def _module(bodies: list[str]) -> str:
    head = '(param i32) (result i32) (local i32 i32) i32.const 11 global.set $g'
    funcs = "\n".join(f'(func (export "f{n}") {head} {body})' for n, body in enumerate(bodies))
    return f"""(module (global $g (mut i32) (i32.const 11))
      (func $id (param i32) (result i32) local.get 0)
      {funcs})"""


def test_set_after_drop_stores_the_value_below() -> None:
    from wasmgpu.runtime.engine import Engine

    wat = """(module (func (export "f") (result i32) (local i32)
      i32.const 255 i32.const 7 drop local.set 0 local.get 0))"""
    batch = Engine("cpu").load(wasmtime.wat2wasm(wat)).instantiate(1)
    assert [r.values for r in batch.call("f", [()])] == [(255,)]


@pytest.mark.parametrize("seed", range(2))
def test_retargeting_rule_on_random_bodies(load, seed: int) -> None:
    rng = random.Random(seed)
    bodies = [_straight_line(rng, rng.randrange(4, 30)) for _ in range(80)]
    wasm = wasmtime.wat2wasm(_module(bodies))
    args = [(0,), (1,), (0x80000000,), (12345,)]
    batch = load(_module(bodies)).instantiate(len(args))
    for n in range(len(bodies)):
        got = [r.values for r in batch.call(f"f{n}", args)]
        want = [(wasmtime_call(wasm, f"f{n}", a) & 0xFFFFFFFF,) for a in args]
        assert got == want, f"f{n}: {bodies[n]}"


def test_reference_locals_start_null(load) -> None:
    wat = """(module (type $t (func (result i32))) (table 1 funcref)
      (func $zero (result i32) i32.const 0)
      (func (export "is_null") (result i32) (local funcref externref)
        (i32.add (ref.is_null (local.get 0)) (i32.shl (ref.is_null (local.get 1)) (i32.const 1))))
      (func (export "call_through") (result i32) (local funcref)
        (table.set (i32.const 0) (local.get 0))
        (call_indirect (type $t) (i32.const 0))))"""
    batch = load(wat).instantiate(2)
    assert [r.values for r in batch.call("is_null", [()] * 2)] == [(3,)] * 2
    assert [r.trap for r in batch.call("call_through", [()] * 2)] == ["uninitialized element"] * 2
