#!/usr/bin/env python3
"""Where an interpreter's frame slots should live on the GPU: a micro-benchmark.

    python3 bench/slot_storage.py [--instances N] [--iters K]

Each thread runs a tiny register-bytecode loop (read two slots, combine, write one; the slot numbers
come from a code array shared by all threads, as in converged interpretation) over a frame of 64
slots, with slots in one of these places:
  global     slots[k * N + thread] in global memory (the engine's layout, DESIGN.md section 3);
  local      a per-thread array in local memory (the hardware interleaves it across the warp);
and with the frame at the same depth in every lane ("converged") or at one of four depths
("depths": lanes in different recursion depths, as in fib). Prints interpreted ops per second.
"""

from __future__ import annotations

import argparse

import numpy as np
from kernel_timing import best_launch_seconds

SOURCE = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
extern "C" __global__ void __launch_bounds__(128, 8)
run(const u32* code, u32 ncode, u64* gslots, u64 N, u32 iters, u32 spread, u64* out) {
  const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (tid >= N) return;
  const u32 fp = spread ? (u32)(tid % 4) * 37 : 0;
#ifdef LOCAL
  u64 ls[SLOTS];
  u64* fb = ls + fp;
  for (int i = 0; i < 64; i++) fb[i] = tid * 7 + i;
#define S(k) fb[k]
#else
  u64* fb = gslots + tid + (u64)fp * N;
  for (int i = 0; i < 64; i++) fb[(u64)i * N] = tid * 7 + i;
#define S(k) fb[(u64)(k) * N]
#endif
  u32 pc = 0;
  for (u32 it = 0; it < iters; it++) {
    const u32 w = code[pc];
    pc = pc + 1 == ncode ? 0 : pc + 1;
    const u32 a = w & 63, b = (w >> 8) & 63, c = (w >> 16) & 63, op = w >> 24;
    const u64 x = S(b), y = S(c);
    S(a) = op == 0 ? x + y : op == 1 ? (x ^ (y >> 3)) : x * (y | 1);
  }
  u64 acc = 0;
  for (int i = 0; i < 64; i++) acc += S(i);
  out[tid] = acc;
}
"""


def main() -> None:
    import cupy as cp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=135168)
    p.add_argument("--iters", type=int, default=20000)
    p.add_argument("--slots", type=int, default=1024)
    args = p.parse_args()
    n = args.instances
    rng = np.random.default_rng(1)
    code = cp.asarray(((rng.integers(0, 3, 256) << 24) | (rng.integers(0, 64, 256) << 16)
                       | (rng.integers(0, 64, 256) << 8) | rng.integers(0, 64, 256)).astype(np.uint32))
    gslots = cp.zeros((args.slots, n), dtype=cp.uint64)
    outs = {}
    print(f"N = {n}, {args.iters} ops per thread, frame of 64 slots in a stack of {args.slots}")
    for place in ("global", "local"):
        opts = ("-DLOCAL", f"-DSLOTS={args.slots}") if place == "local" else ()
        kern = cp.RawModule(code=SOURCE, options=("-std=c++17",) + opts).get_function("run")
        print(f"  {place}: {kern.num_regs} registers, {kern.local_size_bytes} B local per thread")
        for spread in (0, 1):
            out = cp.zeros(n, dtype=cp.uint64)
            call = (code, np.uint32(256), gslots, np.uint64(n), np.uint32(args.iters), np.uint32(spread), out)
            grid = ((n + 127) // 128,)
            best = best_launch_seconds(cp, kern, grid, call, timed=3)
            outs[(place, spread)] = out.get()
            label = "depths" if spread else "converged"
            print(f"    {label:9s} {n * args.iters / best / 1e9:8.1f} G ops/s  ({best * 1e3:.1f} ms)")
    for spread in (0, 1):
        assert np.array_equal(outs[("global", spread)], outs[("local", spread)]), "the two placements disagree"
    print("  results agree")


if __name__ == "__main__":
    main()
