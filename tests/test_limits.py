"""The store's memory budget (max_memory) and the CPU's lazily committed stacks and memories."""

import json
import subprocess
import sys
import time

import pytest
import wasmtime

from tests.conftest import BACKEND, MEMORY_LAYOUT, REPO
from wasmgpu.errors import ResourceLimitError, WasmGpuError
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine

MiB = 1 << 20
GROW = """(module (memory (export "mem") 1)
 (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
 (func (export "size") (result i32) (memory.size))
 (func (export "poke") (param i32) (i32.store8 (local.get 0) (i32.const 7))))"""
FIB = """(module
 (func $fib (export "fib") (param i32) (result i32)
   (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
     (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                    (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"""


class EagerCpuBackend(CpuBackend):
    """The CPU backend allocating as the GPU does (memories at their size, grown by the host), so that the
    GPU's budget path runs without a GPU."""

    lazy = False


def engines(max_memory: int) -> list[Engine]:
    return [Engine(BACKEND, MEMORY_LAYOUT, max_memory=max_memory),
            Engine("cpu-interleaved", max_memory=max_memory),
            Engine(EagerCpuBackend(), max_memory=max_memory)]


def test_a_huge_instance_count_is_refused_at_once() -> None:
    engine = Engine("cpu")
    t0 = time.perf_counter()
    with pytest.raises(ResourceLimitError) as e:
        engine.store(600_000_000)
    assert time.perf_counter() - t0 < 1.0
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("600000000 instances need at least ")
    assert msg.endswith("available (--max-memory)")
    assert isinstance(e.value, WasmGpuError)


def test_the_budget_is_the_engines_and_a_store_may_override_it() -> None:
    engine = Engine("cpu", max_memory=10 * MiB)
    with pytest.raises(ResourceLimitError, match=r"^2000 instances need at least 16\.\d MB of host memory "
                                                   r"for their state and stacks; 10\.5 MB available"):
        engine.store(2000)
    assert engine.store(2000, max_memory=64 * MiB).max_memory == 64 * MiB
    assert engine.store(10).max_memory == 10 * MiB


def test_a_minimum_memory_that_cannot_fit_fails_instantiation_cleanly() -> None:
    wasm = wasmtime.wat2wasm("(module (memory 65536))")  # 4 GiB
    for engine in [Engine(BACKEND, MEMORY_LAYOUT, max_memory=16 << 30), Engine("cpu", max_memory=16 << 30)]:
        with pytest.raises(ResourceLimitError, match=r"^1000 instances of a memory of 65536 pages \(4\.3 GB "
                                                       r"each\) need .* available \(--max-memory\)$"):
            engine.load(wasm).instantiate(1000)


def test_memory_grow_past_the_budget_returns_minus_one() -> None:
    for engine in engines(64 * MiB):
        batch = engine.load(wasmtime.wat2wasm(GROW)).instantiate(4)
        # 4 instances, a page each: 60 MiB of room left, 15 MiB (240 pages) each.
        assert [r.unwrap() for r in batch.call("grow", [(100,)] * 4)] == [(1,)] * 4, engine.backend.name
        assert [r.unwrap() for r in batch.call("grow", [(1000,)] * 4)] == [(0xFFFFFFFF,)] * 4
        assert [r.unwrap() for r in batch.call("size")] == [(101,)] * 4
        # What is left may still be taken, in smaller steps.
        assert [r.unwrap() for r in batch.call("grow", [(100,)] * 4)] == [(101,)] * 4
        batch.call("poke", [(201 * 65536 - 1,)] * 4)
        assert batch.store.read_memory(batch.instance.exports["mem"], 3, 201 * 65536 - 1, 1).tolist() == [7]


def test_growth_is_shared_evenly_between_instances() -> None:
    # Instances grow without asking the host, so each gets an even share of what is left: one instance of
    # four cannot take the whole budget, one alone can.
    for engine in engines(64 * MiB):
        batch = engine.load(wasmtime.wat2wasm(GROW)).instantiate(4)
        results = [r.unwrap()[0] for r in batch.call("grow", [(800,), (0,), (0,), (0,)])]
        assert results == [0xFFFFFFFF, 1, 1, 1], engine.backend.name
        alone = engine.load(wasmtime.wat2wasm(GROW)).instantiate(1)
        assert alone.call("grow", [(800,)])[0].unwrap() == (1,)
        assert alone.call("grow", [(300,)])[0].unwrap() == (0xFFFFFFFF,)  # past 1024 pages


def _child(code: str) -> dict:
    """Runs `code` in a fresh interpreter (which prints a JSON object) and adds its peak RSS (VmHWM)."""
    tail = ("\nimport json as _j\nfor _l in open('/proc/self/status'):\n"
            "    if _l.startswith('VmHWM'): print(_j.dumps({'hwm_mib': int(_l.split()[1]) // 1024}))")
    out = subprocess.run([sys.executable, "-c", code + tail], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    res: dict = {}
    for line in out.stdout.splitlines():
        res.update(json.loads(line))
    return res


def test_many_instances_commit_only_the_stack_they_use() -> None:
    # 4000 instances reserve 2.5 GB of stack (512 KiB of slots, 128 KiB of frames each); recursing 20 deep
    # commits a page or two of each.
    res = _child(f"""
import json, wasmtime
from wasmgpu.runtime.engine import Engine
batch = Engine("cpu").load(wasmtime.wat2wasm('''{FIB}''')).instantiate(4000, tier="interp")
print(json.dumps({{"ok": all(r.unwrap() == (6765,) for r in batch.call("fib", [(20,)] * 4000))}}))
""")
    assert res["ok"]
    assert res["hwm_mib"] < 400, res


def test_memory_grow_reserves_without_copying_or_committing() -> None:
    # One instance grows to 4 GiB and writes its last byte: nothing is copied and one page is committed.
    res = _child(f"""
import json, wasmtime
from wasmgpu.runtime.engine import Engine
batch = Engine("cpu", max_memory=8 << 30).load(wasmtime.wat2wasm('''{GROW}''')).instantiate(1)
old = batch.call("grow", [(65535,)])[0].unwrap()
batch.call("poke", [((1 << 32) - 1,)])
mem = batch.store.read_memory(batch.instance.exports["mem"], 0, (1 << 32) - 1, 1)
print(json.dumps({{"old": old[0], "size": batch.call("size")[0].unwrap()[0], "last": int(mem[0])}}))
""")
    assert (res["old"], res["size"], res["last"]) == (1, 65536, 7)
    assert res["hwm_mib"] < 300, res


def test_growth_past_the_reserved_span_moves_the_pages_in_use(monkeypatch) -> None:
    # Where N instances cannot each reserve their limit, a memory reserves less and grows past it by a
    # reallocation; what the instances wrote stays.
    import wasmgpu.runtime.store as store_module

    monkeypatch.setattr(store_module, "RESERVE_PER_MEMORY", 3 * 65536 * 4)
    for name in ("cpu", "cpu-interleaved"):
        batch = Engine(name, max_memory=256 * MiB).load(wasmtime.wat2wasm(GROW)).instantiate(4)
        mem = batch.instance.exports["mem"]
        assert batch.store.mems[0].data.capacity == 3 * 65536
        assert [r.unwrap() for r in batch.call("grow", [(1,), (0,), (1,), (0,)])] == [(1,)] * 4
        batch.call("poke", [(2 * 65536 - 1,), (100,), (65536,), (0,)])
        assert [r.unwrap() for r in batch.call("grow", [(0,), (9,), (2,), (0,)])] == [(2,), (1,), (2,), (1,)]
        assert batch.store.mems[0].data.capacity >= 10 * 65536
        assert [r.unwrap() for r in batch.call("size")] == [(2,), (10,), (4,), (1,)]
        reads = [(0, 2 * 65536 - 1), (1, 100), (2, 65536), (3, 0), (1, 10 * 65536 - 1)]
        assert [int(batch.store.read_memory(mem, i, a, 1)[0]) for i, a in reads] == [7, 7, 7, 7, 0], name


@pytest.mark.skipif(BACKEND != "cpu", reason="the CPU backend's reservations meet the address-space limit")
def test_growth_page_by_page_under_an_address_space_limit_stays_fast(tmp_path) -> None:
    """Under `ulimit -v`, a reservation that does not fit is tried smaller, not cut to the pages asked
    for: else every later grow of one page moved every instance's memory (minutes, and the host's RAM)."""
    import resource

    wat = tmp_path / "grow.wat"
    wat.write_text("""(module (memory 1) (func (export "main") (result i32) (local i32)
      (loop $l (local.set 0 (memory.grow (i32.const 1))) (br_if $l (i32.ne (local.get 0) (i32.const -1))))
      (memory.size)))""")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--backend", "cpu", "-n", "12", "--invoke", "main",
                           str(wat)], capture_output=True, text=True, timeout=120, preexec_fn=limit, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sizes = [int(line.split(": ")[1]) for line in proc.stdout.splitlines()]
    assert len(sizes) == 12 and min(sizes) >= 1024 and time.monotonic() - start < 60


@pytest.mark.skipif(BACKEND != "cpu", reason="the CPU backend's reservations meet the address-space limit")
def test_batches_under_an_address_space_limit_run_in_waves(tmp_path) -> None:
    """Under `ulimit -v`, a store whose reservations are refused is tried again with half the instances
    (its refusal names no budget to share), and OpenMP's threads exist before the stores take the space."""
    import resource

    big = tmp_path / "big.wat"  # 4 GiB of memory an instance: two at once under 8 GiB at most
    big.write_text("""(module (memory 65536) (func (export "main") (result i32)
      (i32.store (i32.const 0x7ffffff0) (i32.const 7)) (i32.load (i32.const 0x7ffffff0))))""")
    fib = tmp_path / "fib.wat"
    fib.write_text(FIB)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    for wat, n, line in ((big, 12, "7"), (fib, 15000, "1")):
        proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--backend", "cpu", "-n", str(n), "--invoke",
                               "main" if wat == big else "fib", str(wat), *([] if wat == big else ["1"])],
                              capture_output=True, text=True, timeout=120, preexec_fn=limit, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert [v.split(": ")[1] for v in proc.stdout.splitlines()] == [line] * n
