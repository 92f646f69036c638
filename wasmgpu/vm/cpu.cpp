// Host build of the interpreter: every instance of a launch, spread over the cores.
#include "vm.h"

extern "C" void vm_run(const u64* P, u32 n, int threads) {
  // Neighbouring instances share the cache lines of every per-instance row (a global of instance i is at
  // globals[g * N + i]; the shadow stack pointer, a global, changes at most calls): each thread takes a run
  // of them, so two threads seldom write one line. A small batch keeps short runs so every core has work.
  long long chunk = (long long)n / ((long long)threads * 8);
  chunk = chunk < 1 ? 1 : chunk > 16 ? 16 : chunk;
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
  for (long long i = 0; i < (long long)n; i++) vm_launch(P, (u32)i, 0);  // near: the CPU has no warps
}

#ifdef WG_SIMT
// Adds v to the first n entries of set unless it is there already.
template <typename T> static void add_distinct(T* set, u32& n, T v) {
  u32 k = 0;
  while (k < n && set[k] != v) k++;
  if (k == n) set[n++] = v;
}

// A model of how warps of 32 instances run on the GPU (bench/simt.py), on one thread: in each step every lane
// that the rule lets run runs one op. A lane waits when 0 < pc - lowest pc <= near_all, or when
// 0 < pc - lowest pc <= near and (policy K = 0, or the lowest pc holds at least 1/K as many lanes as the
// lane's own pc). On CUDA, vm_step's rule is policy 0 with near = 1024 or 32 (runtime/tuning.py). Device-served imports are not modelled: a
// lane that calls one stops. stats, summed over steps: steps, lane-ops, distinct pcs, distinct ops
// (a warp runs their handlers one after another), distinct (pc, frame) pairs (slot accesses apart), steps
// with every lane at one pc.
extern "C" void wg_simt_run(const u64* P, u32 n, u32 near, u32 policy, u32 near_all, u64* stats, const u32* order) {
  const u64 N = P[P_N];
  const u32* st = (const u32*)P[P_STATE];
  const u64* code = (const u64*)P[P_CODE];
  for (u32 w0 = 0; w0 < n; w0 += 32) {
    const u32 lanes = n - w0 < 32 ? n - w0 : 32;
    u64 cap[32];
    for (u32 l = 0; l < lanes; l++) cap[l] = P[P_FUEL_SLICE];
    // Lane l of this warp runs instance order[w0 + l] (the instances regrouped between launches), or w0 + l.
    auto id = [&](u32 l) { return order ? order[w0 + l] : w0 + l; };
    auto live = [&](u32 l) { return cap[l] > 0 && st[S_STATUS * N + id(l)] == STATUS_RUNNING; };
    auto pc_of = [&](u32 l) { return st[S_PC * N + id(l)]; };
    for (;;) {
      u32 low = 0xffffffffu, high = 0, size[32], at_low = 0;
      bool any = false;
      for (u32 l = 0; l < lanes; l++)
        if (live(l)) { any = true; low = pc_of(l) < low ? pc_of(l) : low; high = pc_of(l) > high ? pc_of(l) : high; }
      if (!any) break;
      stats[5] += low == high;  // every lane at one pc: the vote finds nothing to do
      for (u32 l = 0; policy && l < lanes; l++) {  // group sizes: lanes at each lane's pc, and at the lowest
        size[l] = 0;
        for (u32 k = 0; live(l) && k < lanes; k++) size[l] += live(k) && pc_of(k) == pc_of(l);
        at_low += live(l) && pc_of(l) == low;
      }
      u32 pcs[32], npcs = 0, ops[32], nops = 0, nframes = 0, running = 0;
      u64 frames[32];
      for (u32 l = 0; l < lanes; l++) {
        if (!live(l)) continue;
        const u32 pc = pc_of(l), ahead = pc - low - 1;
        if (ahead < near_all || (ahead < near && (policy == 0 || at_low * policy >= size[l]))) continue;
        add_distinct(pcs, npcs, pc);
        add_distinct(ops, nops, (u32)code[pc] & OP_MASK);
        add_distinct(frames, nframes, ((u64)pc << 32) | st[S_FP * N + id(l)]);
        running++;
        wg_simt_ops = 1;
        cap[l] -= vm_step(P, id(l), cap[l], 0);
        if (st[S_STATUS * N + id(l)] == STATUS_OUTSIDE) outside_step(P, id(l));  // as vm_launch does
      }
      stats[0]++;
      stats[1] += running;
      stats[2] += npcs;
      stats[3] += nops;
      stats[4] += nframes;
    }
  }
}
#endif
