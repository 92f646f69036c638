#!/usr/bin/env python3
"""Where the CUDA backend's time goes: the kernel's resources, and per benchmark the split between
kernel launches and host work.

    python3 bench/profile.py [--instances N] [--only NAME[,NAME]] [--fuel-slice K] [--fuel K] [--same-input]

Prints the interpreter kernel's registers and local memory (spills; bench/sass.py shows its machine
code). Then for each benchmark:
one call of run(i) over N instances, with the number of launches, the time inside launches (kernel
plus synchronization) and the rest (host calls, status checks, copies). With --fuel K every instance
stops after K units of fuel, and the figure is fuel per second: fixed work, to compare engine versions.
With --same-input every instance calls run(0): a warp's lanes never part, so the figure against the usual
one tells what divergence costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from wasmgpu.compiler.vm_abi import P_FUEL_SLICE  # noqa: E402
from wasmgpu.runtime.backends import MEMORY_LAYOUTS, CudaBackend  # noqa: E402
from wasmgpu.runtime.engine import Engine  # noqa: E402

STORE_OPTIONS = {"stack_slots": 1024, "max_depth": 256}


def kernel_report(backend: CudaBackend) -> None:
    k = backend.kernel.function
    print(f"kernel: {k.num_regs} registers, {k.local_size_bytes} B local memory per thread, "
          f"{k.max_threads_per_block} threads per block at most")


def profile(engine: Engine, wasm: Path, n: int, opts: dict[str, int], fuel: int | None, each: bool = False,
            same: bool = False) -> str:
    backend = engine.backend
    launches = 0
    kernel_s = 0.0
    run = backend.run

    def timed_run(params, count, *rest, **kw):  # type: ignore[no-untyped-def]
        nonlocal launches, kernel_s
        t = time.perf_counter()
        starts = run(params, count, *rest, **kw)
        dt = time.perf_counter() - t
        kernel_s += dt
        launches += 1
        if each:
            trial = f" (trial: {rest[1][0]} in 1 block of {rest[1][1]})" if len(rest) > 1 and rest[1] else ""
            print(f"  launch {launches}: window {rest[0] if rest else '-'}{trial}, "
                  f"slice {int(params[P_FUEL_SLICE])} fuel, {dt:.3f} s", flush=True)
        return starts

    batch = engine.load(wasm.read_bytes()).instantiate(n, **opts)
    t = time.perf_counter()
    code = batch.store.prepare()
    build = (f"  compiled in {time.perf_counter() - t:.1f} s: {code.num_regs} registers, "
             f"{code.local_size_bytes} B local" if code is not None else "")
    backend.run = timed_run  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        res = batch.call("run", [(0 if same else i,) for i in range(n)], fuel=fuel)
        total = time.perf_counter() - t0
    finally:
        backend.run = run  # type: ignore[method-assign]
    if fuel:
        stopped = sum(1 for r in res if r.trap == "all fuel consumed")
        return (f"{wasm.stem:11s} {n * fuel / kernel_s / 1e9:8.3f} G fuel/s  in launches {kernel_s:7.3f} s  "
                f"launches {launches:3d}  stopped by fuel {stopped}/{n}{build}")
    bad = sum(1 for r in res if r.trap or r.exit_code is not None)
    tuner = batch.store.tuner
    chosen = (f"  windows {' '.join(f'{w}({gain:.2f})' for w, gain in tuner.chosen)}" if tuner is not None
              else "")
    return (f"{wasm.stem:11s} {n / total:10.1f}/s  total {total:7.2f} s  launches {launches:4d}  "
            f"in launches {kernel_s:7.2f} s  host {total - kernel_s:6.2f} s  failed {bad}{chosen}{build}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=16384)
    p.add_argument("--only", default="")
    p.add_argument("--fuel-slice", type=int)
    p.add_argument("--memory-layout", choices=MEMORY_LAYOUTS, default=None)
    p.add_argument("--each", action="store_true", help="print every launch: window, fuel slice, time")
    p.add_argument("--fuel", type=int, help="stop every instance after this much fuel (calls and back-edges) and "
                   "report fuel per second: the same work for every version of the engine")
    p.add_argument("--same-input", action="store_true", help="every instance runs run(0): lanes that never part")
    args = p.parse_args()
    engine = Engine("cuda", args.memory_layout)
    kernel_report(engine.backend)  # type: ignore[arg-type]
    opts = dict(STORE_OPTIONS)
    if args.fuel_slice or args.fuel:
        opts["fuel_slice"] = args.fuel_slice or args.fuel
    names = [s for s in args.only.split(",") if s]
    for wasm in sorted((BENCH_DIR / "wasm").glob("*.wasm")):
        if names and wasm.stem not in names:
            continue
        print(profile(engine, wasm, args.instances, opts, args.fuel, args.each, args.same_input), flush=True)


if __name__ == "__main__":
    main()
