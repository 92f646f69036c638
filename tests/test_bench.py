"""The benchmark programs (bench/): the same checksums under wasmgpu, wasmtime and a native build of
the C sources; the harness (bench/run.py) runs end to end on the CPU backends."""

import json
import shutil
import subprocess
import sys

import pytest
import wasmtime

from tests.conftest import REPO

BENCH = REPO / "bench"
WASMS = sorted((BENCH / "wasm").glob("*.wasm"))
C_PROGRAMS = sorted((BENCH / "programs").glob("*.c"))
SEEDS = (0, 1, 40503)
MASK = (1 << 64) - 1


def wasmtime_checksums(wasm: bytes, seeds) -> list[int]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    run = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)["run"]
    return [run(store, s) & MASK for s in seeds]


def test_the_suite_is_complete() -> None:
    names = {p.stem for p in WASMS}
    sources = {p.stem for p in (BENCH / "programs").iterdir() if p.suffix in (".c", ".rs")}
    assert len(names) >= 8
    assert names == sources, "bench/wasm/ and bench/programs/ differ: run bench/build.sh"
    assert any(p.suffix == ".rs" for p in (BENCH / "programs").iterdir())
    for c in C_PROGRAMS:  # every C program has its native CUDA build
        assert (BENCH / "native" / f"{c.stem}.cu").exists(), c.stem


@pytest.mark.parametrize("path", WASMS, ids=lambda p: p.stem)
def test_program_matches_wasmtime(engine, path) -> None:
    wasm = path.read_bytes()
    expect = wasmtime_checksums(wasm, SEEDS)
    assert len(set(expect)) == len(SEEDS), "the checksum should depend on the seed"
    batch = engine.load(wasm).instantiate(len(SEEDS), stack_slots=1024, max_depth=256)
    results = batch.call("run", [(s,) for s in SEEDS])
    assert [r.values[0] if r.trap is None else r.trap for r in results] == expect


HOST_MAIN = """
#include <stdio.h>
long long run(int seed);
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) printf("%llu\\n", (unsigned long long)run(atoi(argv[i])));
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
def test_c_sources_are_portable_to_64_bit(tmp_path) -> None:
    """The CUDA build compiles the same C with 64-bit pointers: a host build catches what would differ."""
    main = tmp_path / "main.c"
    main.write_text("#include <stdlib.h>\n" + HOST_MAIN)
    for src in C_PROGRAMS:
        exe = tmp_path / src.stem
        proc = subprocess.run(["cc", "-O1", "-ffp-contract=off", "-w", str(src), str(main), "-o", str(exe)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        out = subprocess.run([str(exe), *map(str, SEEDS)], capture_output=True, text=True, check=True).stdout
        expect = wasmtime_checksums((BENCH / "wasm" / f"{src.stem}.wasm").read_bytes(), SEEDS)
        assert [int(x) for x in out.split()] == expect, src.stem


def test_harness_runs_on_the_cpu_backends(tmp_path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--backends", "cpu,wasmtime", "--instances", "4", "--only", "fib",
         "--workers", "2", "--cpu-seconds", "0.05", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cpu/wasmtime" in proc.stdout
    doc = json.loads(out.read_text())
    fib = doc["benchmarks"]["fib"]
    assert fib["agree"], fib["verdict"]
    for backend in ("cpu", "wasmtime"):
        m = fib["backends"][backend]
        assert m["n"] == 4 and m["instances_per_s"] > 0 and len(m["times_s"]) >= 1
    assert fib["backends"]["cpu"]["bytes_per_instance"]["total"] > 0
    assert fib["backends"]["cpu"]["translate_s"] >= 0
    assert set(doc["launch_overhead"]) == {"cpu", "wasmtime"}


def test_warp_model_runs_op_by_op_and_reconverges(load, monkeypatch) -> None:
    """bench/simt.py's model: instances stepped one op at a time give the results of normal runs, and with a
    reconvergence window lanes that looped different numbers of times meet again (fewer distinct pcs)."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from simt import SimtBackend

    from wasmgpu.runtime.engine import Engine

    wat = """(module (func (export "run") (param $n i32) (result i32) (local $i i32) (local $acc i32)
      (loop $spin  ;; a data-dependent trip count: lanes leave at different times
        (local.set $acc (i32.add (local.get $acc) (local.get $i)))
        (br_if $spin (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                               (i32.rem_u (local.get $n) (i32.const 7)))))
      (local.set $i (i32.const 0))
      (loop $common  ;; the same work for every lane
        (local.set $acc (i32.xor (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
        (local.set $acc (i32.rotl (i32.add (local.get $acc) (i32.const 7)) (local.get $i)))
        (br_if $common (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 50))))
      (local.get $acc)))"""
    args = [(i,) for i in range(64)]
    want = [r.values for r in load(wat).instantiate(64).call("run", args)]
    backend = SimtBackend()
    module = Engine(backend).load(wasmtime.wat2wasm(wat))
    per_step, executed = {}, set()
    for near in (0, 1024):
        backend.rule = (0, near, 0)
        backend.stats[:] = 0
        assert [r.values for r in module.instantiate(64).call("run", args)] == want
        steps, lane_ops, pcs, _ops, _frames, _one_pc = (int(x) for x in backend.stats)
        assert lane_ops > 64 * 150  # at least the common loop's 50 x 3 ops per lane
        executed.add(lane_ops)
        per_step[near] = pcs / steps
    assert len(executed) == 1  # the same ops, whatever the schedule
    assert per_step[0] > 1.5 and per_step[1024] < 1.1, per_step
    # Warps formed anew at each launch from the instances sorted by pc: the same results and ops.
    backend.regroup = True
    backend.stats[:] = 0
    assert [r.values for r in module.instantiate(64, fuel_slice=13).call("run", args)] == want
    assert int(backend.stats[1]) in executed
