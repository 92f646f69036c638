"""How NVRTC's unit builds scale over a host's cores: a large module's units (vm/build.py step_units) compiled
one after another, then by as many threads (what vm/cuda_units.build_units does) and as many processes.

    python3 bench/nvrtc_parallel.py MODULE.wasm [--units 32] [--workers 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from wasmgpu.runtime import params
from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.engine import Engine, Linker
from wasmgpu.vm.build import NVRTC_FLAGS, step_units, vm_source
from wasmgpu.vm.cuda_units import _compile, _nvrtc, register_cap

OPTIONS: list[str] = []


def _one(unit: str) -> int:
    return len(_compile(_nvrtc(), unit, OPTIONS, "unit.cu"))


def _init(options: list[str]) -> None:
    OPTIONS[:] = options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module")
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--arch", default="90")
    a = ap.parse_args()
    engine = Engine(CpuBackend(interleaved=True))
    linker = Linker(engine)
    linker.define_wasi()
    batch = linker.instantiate(engine.load(Path(a.module).read_bytes()), 1, tier="interp")
    p = batch.store.params
    interpreted = params.left_to_interpreter("cuda", batch.store.code, p._infos(), True)
    units = step_units(p.compiled_source(pieces=True, interpreted=interpreted))[: a.units]
    cap = register_cap(vm_source("cuda.cu"), [])
    _init([*NVRTC_FLAGS, f"--gpu-architecture=sm_{a.arch}", f"--maxrregcount={cap}", "-rdc=true",
           "--ptxas-options=--disable-optimizer-constants"])
    t = time.perf_counter()
    for u in units[:4]:
        _one(u)
    one = (time.perf_counter() - t) / 4
    print(f"{len(units)} units; one after another: {one:.2f} s a unit", flush=True)
    t = time.perf_counter()
    with ThreadPoolExecutor(a.workers) as pool:
        list(pool.map(_one, units))
    th = time.perf_counter() - t
    print(f"{a.workers} threads: {th:.1f} s ({len(units) * one / th:.1f}x one)", flush=True)
    t = time.perf_counter()
    with ProcessPoolExecutor(a.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                             initargs=(OPTIONS,)) as pool:
        list(pool.map(_one, units))
    pr = time.perf_counter() - t
    print(f"{a.workers} processes: {pr:.1f} s ({len(units) * one / pr:.1f}x one)", flush=True)


if __name__ == "__main__":
    main()
