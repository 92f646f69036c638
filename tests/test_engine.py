"""The engine on batches of instances with differing inputs (layout and divergence bugs show)."""

import struct

import numpy as np
import pytest
import wasmtime

from tests.conftest import wasmtime_call
from wasmgpu.compiler.vm_abi import STATUS
from wasmgpu.errors import InstantiationTrap, LinkError, WasmGpuError
from wasmgpu.runtime.engine import Engine
from wasmgpu.wasm.types import FuncType, GlobalType, Limits, MemoryType

N = 40

FIB = """(module
 (func $fib (export "fib") (param i32) (result i32)
   (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
     (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                    (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"""


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_recursion_diverges_per_instance(load) -> None:
    batch = load(FIB).instantiate(N)
    results = batch.call("fib", [(i % 20,) for i in range(N)])
    assert [r.values for r in results] == [(fib(i % 20),) for i in range(N)]


def test_loops_locals_and_select(load) -> None:
    wat = """(module (func (export "f") (param i32) (result i64) (local i64)
      (block (loop
        (br_if 1 (i32.eqz (local.get 0)))
        (local.set 1 (i64.add (local.get 1)
          (select (i64.const 3) (i64.extend_i32_u (local.get 0)) (i32.and (local.get 0) (i32.const 1)))))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br 0)))
      (local.get 1)))"""
    batch = load(wat).instantiate(N)
    expect = [sum(3 if k & 1 else k for k in range(1, i + 1)) for i in range(N)]
    assert [r.values[0] for r in batch.call("f", [(i,) for i in range(N)])] == expect


def test_traps_are_per_instance_with_backtrace(load) -> None:
    wat = """(module (func $inner (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
      (func (export "f") (param i32) (result i32) (call $inner (i32.const 100) (local.get 0))))"""
    results = load(wat).instantiate(N).call("f", [(i % 3,) for i in range(N)])
    for i, r in enumerate(results):
        if i % 3 == 0:
            assert r.trap == "integer divide by zero"
            assert "inner" in r.backtrace[0] or "function 0" in r.backtrace[0]
            assert len(r.backtrace) == 2
        else:
            assert r.values == (100 // (i % 3),)


def test_stack_exhaustion_traps_cleanly(load) -> None:
    wat = """(module (func $f (export "f") (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1)))))"""
    results = load(wat).instantiate(4).call("f", [(0,)] * 4)
    assert all(r.trap == "call stack exhausted" for r in results)


def test_memory_grow_and_bulk_ops(load) -> None:
    wat = """(module (memory 1 100)
      (func (export "f") (param i32) (result i32)
        (drop (memory.grow (local.get 0)))
        (memory.fill (i32.const 70000) (local.get 0) (i32.const 16))
        (memory.copy (i32.const 5) (i32.const 70003) (i32.const 4))
        (i32.add (i32.load (i32.const 5)) (i32.mul (memory.size) (i32.const 1000)))))"""
    results = load(wat).instantiate(N).call("f", [(1 + i % 5,) for i in range(N)])
    for i, r in enumerate(results):
        k = 1 + i % 5
        assert r.values == (k * 0x01010101 + (1 + k) * 1000,)


def test_float_results_are_exact_and_nan_canonical(load) -> None:
    wat = """(module (func (export "f") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
      (func (export "m") (param f32 f32) (result f32) (f32.min (local.get 0) (local.get 1))))"""
    batch = load(wat).instantiate(3)
    bits = [struct.unpack("<Q", struct.pack("<d", x))[0] for x in (1.0, 3.0, 0.0)]
    res = batch.call("f", [(bits[0], bits[1]), (bits[2], bits[2]), (bits[0], bits[2])])
    assert res[0].values == (struct.unpack("<Q", struct.pack("<d", 1.0 / 3.0))[0],)
    assert res[1].values[0] & 0x7FFFFFFFFFFFFFFF == 0x7FF8000000000000
    assert res[2].values == (0x7FF0000000000000,)
    neg0, pos0 = 0x80000000, 0
    assert batch.call("m", [(pos0, neg0)] * 3)[0].values == (neg0,)


def test_tables_call_indirect_and_signature_check(load) -> None:
    wat = """(module (type $t (func (result i32)))
      (table 3 funcref) (elem (i32.const 0) $a $b $c)
      (func $a (result i32) (i32.const 10)) (func $b (result i32) (i32.const 20))
      (func $c (param i32) (result i32) (local.get 0))
      (func (export "f") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"""
    results = load(wat).instantiate(5).call("f", [(i,) for i in range(5)])
    assert [r.values or r.trap for r in results] == [
        (10,), (20,), "indirect call type mismatch", "undefined element", "undefined element"]


def test_host_functions_globals_and_linking(engine, load) -> None:
    store = engine.store(N)
    seen = []

    def log(i: int, args: tuple[int, ...]) -> tuple[int, ...]:
        seen.append((i, args[0]))
        return (args[0] * 2,)

    host = store.host_func(FuncType((0x7F,), (0x7F,)), log)
    g = store.host_global(GlobalType(0x7F, True), 5)
    mem = store.host_memory(MemoryType(Limits(1, 2)))
    lib = load("""(module (import "h" "log" (func $log (param i32) (result i32)))
      (import "h" "g" (global $g (mut i32))) (import "h" "mem" (memory 1))
      (func (export "f") (param i32) (result i32)
        (global.set $g (i32.add (global.get $g) (local.get 0)))
        (i32.store (i32.const 0) (call $log (local.get 0)))
        (i32.load (i32.const 0))))""")
    inst = store.instantiate(lib.module, {("h", "log"): host, ("h", "g"): g, ("h", "mem"): mem})
    results = store.call(inst.exports["f"], [(i,) for i in range(N)])
    assert [r.values for r in results] == [(2 * i,) for i in range(N)]
    assert store.global_value(g) == [5 + i for i in range(N)]
    assert sorted(seen) == [(i, i) for i in range(N)]
    with pytest.raises(LinkError):
        store.instantiate(lib.module, {("h", "log"): host, ("h", "g"): g})


def test_start_function_trap_is_an_instantiation_trap(load) -> None:
    with pytest.raises(InstantiationTrap, match="unreachable"):
        load("(module (func $s unreachable) (start $s))").instantiate(2)


def test_fuel_stops_runaway_instances(load) -> None:
    results = load("(module (func (export \"f\") (loop (br 0))))").instantiate(3).call("f", fuel=1000)
    assert all(r.trap == "all fuel consumed" for r in results)


def test_no_fuel_at_all_stops_before_the_first_step(load) -> None:
    """fuel=0 (gpu-run --fuel 0) is none, as wasmtime's: not a 32-bit tank of 0 that wraps to 2^32."""
    m = load("(module (func (export \"f\") (result i32) (i32.const 5)) (func (export \"g\") (loop (br 0))))")
    assert [(r.values, r.trap) for r in m.instantiate(2).call("f", fuel=0)] == [(None, "all fuel consumed")] * 2
    assert [r.trap for r in m.instantiate(2).call("g", fuel=0)] == ["all fuel consumed"] * 2


def test_fuel_beyond_32_bits(load) -> None:
    """The VM counts a slice's fuel in 32 bits: a larger slice or limit is cut into several, not wrapped."""
    m = load("""(module (func (export "f") (param i32) (result i32)
      (loop (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))) (i32.const 7)))""")
    for inst in (m.instantiate(2, fuel_slice=(1 << 32) + 5), m.instantiate(2)):
        assert [r.values for r in inst.call("f", [(3000,), (1,)], fuel=(1 << 32) + 3)] == [(7,), (7,)]
        assert [r.trap for r in inst.call("f", [(3000,), (1,)], fuel=2000)] == ["all fuel consumed", None]


def test_statuses_and_fuel_between_launches(load) -> None:
    """What a layer above reads and changes between launches (on_slice): the statuses, the fuel left, and
    set_fuel, which stops a running instance at its next branch."""
    batch = load("""(module (func (export "f") (param i32) (result i32)
      (loop (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))) (i32.const 7)))""").instantiate(
        3, fuel_slice=1000)
    store = batch.store
    seen = []

    def on_slice() -> None:
        seen.append(store.statuses().tolist())
        if len(seen) == 1:
            store.set_fuel(np.flatnonzero(store.statuses() == STATUS["RUNNING"]), 1)

    results = batch.call("f", [(1 << 30,), (5,), (1 << 30,)], on_slice=on_slice)
    assert seen == [[STATUS["RUNNING"], STATUS["DONE"], STATUS["RUNNING"]], [STATUS["TRAPPED"], STATUS["DONE"],
                                                                            STATUS["TRAPPED"]]]
    assert [r.trap for r in results] == ["all fuel consumed", None, "all fuel consumed"]
    left = store.fuel_remaining()
    assert left.dtype == np.uint64 and left[0] == left[2] == 0 and 0 < (1 << 64) - 1 - int(left[1]) < 100


def test_gpu_intrinsics_are_served_on_the_device(engine, load) -> None:
    store = engine.store(N)
    m = load("""(module (import "gpu" "instance_id" (func $id (result i32)))
      (import "gpu" "instance_count" (func $count (result i32)))
      (func (export "f") (result i32) (i32.add (i32.mul (call $id) (i32.const 1000)) (call $count))))""")
    imports = {("gpu", n): store.intrinsic(n) for n in ("instance_id", "instance_count")}
    inst = store.instantiate(m.module, imports)
    assert [r.values for r in store.call(inst.exports["f"], [()] * N)] == [(i * 1000 + N,) for i in range(N)]


@pytest.mark.parametrize("t", ["f32", "f64", "i32", "i64"])
def test_fused_compare_branches_match_wasmtime(engine, t: str) -> None:
    """A compare fused with the branch on it: taken on true (br_if) and on false (if), with NaN, -0, and
    immediates (a small constant operand, negative too), per instance."""
    floats = t[0] == "f"
    ops = ["eq", "ne", "lt", "gt", "le", "ge"] if floats else \
        ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
    funcs = []
    for op in ops:
        funcs.append(f"""(func (export "if_{op}") (param {t} {t}) (result i32)
          (if (result i32) ({t}.{op} (local.get 0) (local.get 1)) (then (i32.const 1)) (else (i32.const 0))))
        (func (export "br_{op}") (param {t} {t}) (result i32)
          (block (br_if 0 ({t}.{op} (local.get 0) (local.get 1))) (return (i32.const 0))) (i32.const 1))""")
        if not floats:
            funcs.append(f"""(func (export "imm_{op}") (param {t} {t}) (result i32)
              (block (br_if 0 ({t}.{op} (local.get 0) ({t}.const -3))) (return (i32.const 0))) (i32.const 1))""")
    wasm = wasmtime.wat2wasm("(module " + "\n".join(funcs) + ")")
    if floats:
        values = [0.0, -0.0, 1.5, -2.0, float("nan"), float("inf"), -float("inf")]
    else:
        values = [0, 1, -1, -3, 5, -(1 << (31 if t == "i32" else 63)), 7]
    pairs = [(x, y) for x in values for y in values]
    if t == "f32":
        bits = [tuple(struct.unpack("<I", struct.pack("<f", v))[0] for v in p) for p in pairs]
    elif t == "f64":
        bits = [tuple(struct.unpack("<Q", struct.pack("<d", v))[0] for v in p) for p in pairs]
    else:
        bits = [tuple(v & ((1 << int(t[1:])) - 1) for v in p) for p in pairs]
    batch = engine.load(wasm).instantiate(len(pairs))
    names = [f"{kind}_{op}" for op in ops for kind in (("if", "br") if floats else ("if", "br", "imm"))]
    for name in names:
        got = [r.values[0] for r in batch.call(name, bits)]
        want = [wasmtime_call(wasm, name, p) for p in pairs]
        assert got == want, name


def test_small_constant_stores_match_wasmtime(load) -> None:
    """Stores whose value is a small constant take it as an immediate: every width and sign."""
    wat = """(module (memory (export "m") 1)
      (func (export "f") (param i32) (result i64)
        (i32.store8 (local.get 0) (i32.const -1))
        (i32.store16 offset=2 (local.get 0) (i32.const 0x7fff))
        (i32.store offset=4 (local.get 0) (i32.const -32768))
        (i64.store offset=8 (local.get 0) (i64.const -2))
        (i64.store32 offset=16 (local.get 0) (i64.const 300))
        (f32.store offset=20 (local.get 0) (f32.const 0))
        (i64.xor (i64.xor (i64.load (local.get 0)) (i64.load offset=8 (local.get 0)))
                 (i64.load offset=16 (local.get 0)))))"""
    wasm = wasmtime.wat2wasm(wat)
    addrs = [8 * i for i in range(N)]
    got = [r.values[0] for r in load(wat).instantiate(N).call("f", [(a,) for a in addrs])]
    assert got == [wasmtime_call(wasm, "f", (a,)) for a in addrs]


def test_memory_copy_every_alignment_and_overlap_matches_wasmtime(engine) -> None:
    """memory.copy over a patterned buffer: source and destination at each alignment, overlapping either
    way and apart, lengths around word multiples, ranges ending at the end of memory; each instance copies its
    own range. The 700-byte copies take several steps of a crew of lanes on the GPU."""
    # The pattern and the hash cover the first 1024 and the last 128 bytes of the page.
    at = "(i32.add (local.get $i) (i32.mul (i32.ge_u (local.get $i) (i32.const 1024)) (i32.const 64384)))"
    wat = f"""(module (memory 1)
      (func (export "f") (param $d i32) (param $s i32) (param $n i32) (result i64)
        (local $i i32) (local $h i64)
        (loop $fill
          (i32.store8 {at} (i32.mul (i32.add (local.get $i) (i32.const 7)) (i32.const 37)))
          (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 1152))))
        (memory.copy (local.get $d) (local.get $s) (local.get $n))
        (local.set $i (i32.const 0))
        (loop $sum
          (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 1099511628211)) (i64.load8_u {at})))
          (br_if $sum (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 1152))))
        (local.get $h)))"""
    wasm = wasmtime.wat2wasm(wat)
    cases = [(16 + dd, 16 + ds + delta, n) for dd in range(4) for ds in range(4)
             for delta in (-9, -4, -1, 1, 3, 8, 40, 200) for n in (0, 1, 3, 4, 7, 13, 24, 700)]
    # Ranges that end at the last byte of memory, from either side.
    cases += [(65536 - n - dd, 65536 - n - ds, n) for dd in range(5) for ds in range(5) for n in (5, 8, 11)]
    want = [wasmtime_call(wasm, "f", c) & (1 << 64) - 1 for c in cases]
    # The interleaved layout copies by shifting word pairs; the GPU's default has instance-minor slots and
    # contiguous memory: run both here too.
    for e in {engine, Engine("cpu-interleaved"), Engine("cpu-interleaved", "contiguous")}:
        assert [r.values[0] for r in e.load(wasm).instantiate(len(cases)).call("f", cases)] == want, e.backend.name


def test_memory_fill_every_alignment_matches_wasmtime(engine) -> None:
    """memory.fill of each instance's own range: every start alignment, lengths around word multiples, up to
    the last byte of memory (with the contiguous layout on the GPU, the lanes fill each range together)."""
    at = "(i32.add (local.get $i) (i32.mul (i32.ge_u (local.get $i) (i32.const 128)) (i32.const 65280)))"
    wat = f"""(module (memory 1)
      (func (export "f") (param $d i32) (param $v i32) (param $n i32) (result i64)
        (local $i i32) (local $h i64)
        (memory.fill (local.get $d) (local.get $v) (local.get $n))
        (loop $sum
          (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 1099511628211)) (i64.load8_u {at})))
          (br_if $sum (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 256))))
        (local.get $h)))"""
    wasm = wasmtime.wat2wasm(wat)
    cases = [(16 + d, 0x1A5 + 7 * n, n) for d in range(5) for n in (0, 1, 3, 4, 5, 8, 11, 40)]
    cases += [(65536 - n - d, 200 + d, n) for d in range(5) for n in (4, 7, 64)]
    want = [wasmtime_call(wasm, "f", c) & (1 << 64) - 1 for c in cases]
    assert [r.values[0] for r in engine.load(wasm).instantiate(len(cases)).call("f", cases)] == want


def test_memory_layout_option() -> None:
    """The GPU's layout can be chosen; the cpu backend's memory is always contiguous."""
    assert Engine("cpu").backend.memory_layout == "contiguous"
    assert Engine("cpu-interleaved").backend.memory_layout == "interleaved"
    assert Engine("cpu-interleaved", "contiguous").backend.memory_layout == "contiguous"
    with pytest.raises(WasmGpuError, match="keeps each instance's memory contiguous"):
        Engine("cpu", "interleaved")
    with pytest.raises(WasmGpuError, match="unknown memory layout 'rows'"):
        Engine("cpu-interleaved", "rows")


def test_unaligned_loads_and_stores_match_wasmtime(engine) -> None:
    """Every width of load and store at every alignment, up to the last byte of memory, in both tiers and in
    the interleaved layout (which reads and writes the words an unaligned access spans)."""
    wat = """(module (memory 1)
      (func (export "f") (param $a i32) (param $v i64) (result i64) (local $h i64)
        (i64.store (local.get $a) (local.get $v))
        (i32.store16 offset=1 (local.get $a) (i32.const 0xbeef))
        (i32.store offset=3 (local.get $a) (i32.wrap_i64 (i64.rotl (local.get $v) (i64.const 13))))
        (i64.store8 offset=7 (local.get $a) (i64.const 0x5a))
        (local.set $h (i64.load (local.get $a)))
        (local.set $h (i64.xor (i64.mul (local.get $h) (i64.const 31)) (i64.load32_u offset=1 (local.get $a))))
        (local.set $h (i64.xor (i64.mul (local.get $h) (i64.const 31)) (i64.load16_s offset=5 (local.get $a))))
        (local.set $h (i64.xor (i64.mul (local.get $h) (i64.const 31)) (i64.load32_s offset=4 (local.get $a))))
        (local.set $h (i64.xor (i64.mul (local.get $h) (i64.const 31))
          (i64.extend_i32_u (i32.load16_u offset=6 (local.get $a)))))
        (local.set $h (i64.xor (i64.mul (local.get $h) (i64.const 31))
          (i64.extend_i32_u (i32.reinterpret_f32 (f32.load offset=2 (local.get $a))))))
        (i64.xor (local.get $h) (i64.reinterpret_f64 (f64.load (local.get $a))))))"""
    wasm = wasmtime.wat2wasm(wat)
    cases = [(a, v) for a in [*range(9), *range(65520, 65529)] for v in (-1, 0x0123456789ABCDEF)]
    want = [wasmtime_call(wasm, "f", c) & (1 << 64) - 1 for c in cases]
    args = [(a, v & (1 << 64) - 1) for a, v in cases]
    for e in {engine, Engine("cpu-interleaved")}:
        for tier in ("interp", "compiled"):
            got = [r.values[0] for r in e.load(wasm).instantiate(len(args), tier=tier).call("f", args)]
            assert got == want, (e.backend.name, tier)


def test_backtraces_of_a_batch_are_fetched_in_chunks(load, monkeypatch) -> None:
    from wasmgpu.runtime import backtrace

    monkeypatch.setattr(backtrace, "FETCH_BYTES", 64)  # a few instances per transfer
    wat = """(module (func $f (export "f") (param i32)
      (if (i32.eqz (local.get 0)) (then unreachable))
      (call $f (i32.sub (local.get 0) (i32.const 1)))))"""
    results = load(wat).instantiate(N).call("f", [(i % 9,) for i in range(N)])
    for i, r in enumerate(results):
        assert r.trap == "unreachable"
        assert len(r.backtrace) == i % 9 + 1, (i, r.backtrace)
        assert len(set(r.backtrace[1:])) <= 1  # every caller at the same call instruction


def test_a_large_data_segment_per_instance_matches_wasmtime(load) -> None:
    """A data segment large enough to be shared copy-on-write on the CPU (runtime/memory_image.py): each
    instance writes into it and reads it back, as with a copy of its own."""
    seg = bytes((k * 7 + k // 251) % 256 for k in range(300_000))
    text = "".join(f"\\{b:02x}" for b in seg)
    wat = f"""(module (memory 8) (data (i32.const 1000) "{text}")
      (func (export "f") (param i32) (result i64) (local $k i32) (local $sum i64)
        (i32.store8 (i32.add (i32.const 5000) (i32.mul (local.get 0) (i32.const 4099))) (local.get 0))
        (block (loop
          (local.set $sum (i64.add (local.get $sum)
            (i64.mul (i64.extend_i32_u (i32.load8_u (i32.add (i32.const 1000) (local.get $k))))
                     (i64.extend_i32_u (i32.add (local.get $k) (i32.const 1))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if 1 (i32.eq (local.get $k) (i32.const 300000))) (br 0)))
        (local.get $sum)))"""
    got = [r.values[0] for r in load(wat).instantiate(N).call("f", [(i,) for i in range(N)])]
    wasm = wasmtime.wat2wasm(wat)
    assert got == [wasmtime_call(wasm, "f", (i,)) for i in range(N)]
