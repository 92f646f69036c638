#!/usr/bin/env python3
"""Interleaving per-instance words across all N instances or within tiles of 32: a micro-benchmark.

    python3 bench/mem_layout.py [--instances N]

Both layouts put word w of the 32 instances of a warp side by side, so converged lanes coalesce.
  rows   word w of instance i at base[w * N + i]: one instance's consecutive words are 4N bytes
         apart (540 KB at N = 135168), so its 32 KB buffer spans 4.4 GB of address space;
  tiles  word w of instance i at base[((i / 32) * W + w) * 32 + i % 32]: the same words are 128 bytes
         apart, and a warp's memories fill one contiguous block of 32 W words.
  contig word w of instance i at base[i * W + w] (memory only; slots stay as in rows): each instance's
         memory in one piece, as on the CPU, so one lane's consecutive words share sectors;
  coop   contig, and the copy pattern done by the whole warp, one lane's range at a time (32 words a step);
  chunkK K-byte chunks interleaved across all N instances (chunk c of instance i at chunk index c * N + i;
         rows is chunk4), copies as in coop: converged lanes touch one block of 32 chunks, and a run of one
         lane's words fills whole chunks.
Patterns, each thread in its own W-word memory:
  converged  every lane touches the same word sequence (a C stack, shared loop indices);
  random     lanes read and update pseudo-random words of a 32 KB table (hash64, sieve);
  copy       lanes move random ranges of 64..1088 words (bulkmem's memmove);
  slots      8-byte slots of a frame at one of four depths per lane (lanes in different calls).
Prints words touched per second for each layout, and checks that both layouts compute the same.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from kernel_timing import best_launch_seconds

SOURCE = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
#ifdef TILES
#define AT_(base, w, width) (base)[(((u64)tid >> 5) * (width) + (w)) * 32 + (tid & 31)]
#else
#define AT_(base, w, width) (base)[(u64)(w) * N + tid]
#endif
#ifdef CONTIG
#define AT_I(base, i, w) (base)[(u64)(i) * W + (w)]
#elif defined(CHUNK)
#define AT_I(base, i, w) (base)[((u64)(w) / CHUNK * N + (i)) * CHUNK + (w) % CHUNK]
#elif defined(TILES)
#define AT_I(base, i, w) (base)[(((u64)(i) >> 5) * W + (w)) * 32 + ((i) & 31)]
#else
#define AT_I(base, i, w) (base)[(u64)(w) * N + (i)]
#endif
#define AT(base, w) AT_I(base, tid, w)
#define SLOT(k) AT_(slots, k, 256)
__device__ u32 xs(u32& s) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
extern "C" __global__ void __launch_bounds__(128, 8)
run(u32* mem, u64* slots, u64 N, u32 pattern, u32 iters, const u32* seq, u64* out) {
  const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (tid >= N) return;
  u32 s = (u32)tid * 747796405u + 2891336453u;
  if (!s) s = 1;
  u64 acc = 0;
  const u32 base = W / 2;  // the buffer sits mid-memory, like a C stack frame
  if (pattern == 0) {
    for (u32 it = 0; it < iters; it++) {
      const u32 w = base + seq[it & 1023];
      const u32 v = AT(mem, w);
      AT(mem, w + 1) = v + (u32)it;
      acc += v;
    }
  } else if (pattern == 1) {
    for (u32 it = 0; it < iters; it++) {
      const u32 w = base + (xs(s) & 8191);
      const u32 v = AT(mem, w);
      if (v & 1) AT(mem, w) = v * 3 + 1;
      acc += v;
    }
  } else if (pattern == 2) {
    for (u32 it = 0; it < iters / 64; it++) {
      const u32 r = xs(s);
      const u32 len = 64 + (r & 1023);
      const u32 src = (r >> 12) % (8192 - len), dst = xs(s) % (8192 - len);
#ifdef COOP
      // The warp moves each lane's range in turn, 32 words per step: one lane's words share sectors.
      const u32 lane = threadIdx.x & 31;
      for (u32 j = 0; j < 32; j++) {
        const u64 ij = tid - lane + j;
        const u32 sj = __shfl_sync(~0u, src, j), dj = __shfl_sync(~0u, dst, j), lj = __shfl_sync(~0u, len, j);
        if (dj < sj) {
          for (u32 k = 0; k < lj; k += 32) {
            u32 v = k + lane < lj ? AT_I(mem, ij, base + sj + k + lane) : 0;
            __syncwarp();
            if (k + lane < lj) AT_I(mem, ij, base + dj + k + lane) = v;
          }
        } else {
          for (u32 k = lj; k > 0; k -= k < 32 ? k : 32) {
            const u32 lo = k < 32 ? 0 : k - 32;
            u32 v = lo + lane < k ? AT_I(mem, ij, base + sj + lo + lane) : 0;
            __syncwarp();
            if (lo + lane < k) AT_I(mem, ij, base + dj + lo + lane) = v;
          }
        }
        __syncwarp();
      }
      acc = acc * 31 + AT(mem, base + dst);
      continue;
#endif
      if (dst < src) for (u32 k = 0; k < len; k++) AT(mem, base + dst + k) = AT(mem, base + src + k);
      else for (u32 k = len; k > 0; k--) AT(mem, base + dst + k - 1) = AT(mem, base + src + k - 1);
      acc = acc * 31 + AT(mem, base + dst);
    }
  } else {
    const u32 fp = (u32)(tid % 4) * 37;
    for (u32 it = 0; it < iters; it++) {
      const u32 w = seq[it & 1023];
      const u32 a = fp + (w & 63), b = fp + ((w >> 8) & 63), c = fp + ((w >> 16) & 63);
      SLOT(a) = SLOT(b) + (SLOT(c) ^ it);
    }
    for (u32 k = 0; k < 64; k++) acc += SLOT(fp + k);
  }
  out[tid] = acc;
}
"""

PATTERNS = ("converged", "random", "copy", "slots")


def main() -> None:
    import cupy as cp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", "-n", type=int, default=135168)
    p.add_argument("--iters", type=int, default=4096)
    args = p.parse_args()
    n = -(-args.instances // 32) * 32
    words = 32768  # 128 KiB per instance, as a C module's two pages
    rng = np.random.default_rng(1)
    seq = cp.asarray((rng.integers(0, 1 << 24, 1024) & 0x3F3F3F).astype(np.uint32))
    seq_conv = cp.asarray(rng.integers(0, 2048, 1024).astype(np.uint32))
    print(f"N = {n}, {words * 4 // 1024} KiB of memory and 256 slots per instance, {args.iters} accesses per thread")
    outs: dict[tuple[str, str], np.ndarray] = {}
    layouts = {"rows": (), "tiles": ("-DTILES",), "contig": ("-DCONTIG",), "coop": ("-DCONTIG", "-DCOOP")}
    layouts |= {f"chunk{k}": (f"-DCHUNK={k // 4}", "-DCOOP") for k in (4, 16, 32, 64, 128)}
    for layout, defines in layouts.items():
        opts = ("-std=c++17", f"-DW={words}") + defines
        kern = cp.RawModule(code=SOURCE, options=opts).get_function("run")
        for pi, pattern in enumerate(PATTERNS):
            mem = cp.zeros(n * words, dtype=cp.uint32)
            slots = cp.zeros(n * 256, dtype=cp.uint64)
            out = cp.zeros(n, dtype=cp.uint64)
            call = (mem, slots, np.uint64(n), np.uint32(pi), np.uint32(args.iters),
                    seq_conv if pi == 0 else seq, out)
            grid = (n // 128 + (n % 128 > 0),)

            def reset(mem: Any = mem, slots: Any = slots) -> None:
                mem.fill(0)
                slots.fill(0)

            best = best_launch_seconds(cp, kern, grid, call, timed=2, reset=reset)
            outs[(layout, pattern)] = out.get()
            touched = {"converged": 2, "random": 1, "copy": 2 * 576 / 64, "slots": 3}[pattern] * args.iters
            print(f"  {layout:8s} {pattern:9s} {n * touched / best / 1e9:8.1f} G words/s  ({best * 1e3:.1f} ms)")
            del mem, slots, reset
    for pattern in PATTERNS:
        for layout in list(layouts)[1:]:
            assert np.array_equal(outs[("rows", pattern)], outs[(layout, pattern)]), f"{pattern}: layouts disagree"
    print("  results agree")


if __name__ == "__main__":
    main()
