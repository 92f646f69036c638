// Host build of the interpreter: every instance of a launch, spread over the cores.
#include "vm.h"

extern "C" void vm_run(const u64* P, u32 n, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long i = 0; i < (long long)n; i++) vm_launch(P, (u32)i);
}

#ifdef WG_SIMT
// A model of how warps of 32 instances run on the GPU (bench/simt.py), one thread: in each step, every lane
// that the reconvergence rule of vm_step lets run (not 0 < pc - lowest pc <= near) runs one op. Counts the
// steps, the lane-ops, and the distinct pcs and ops among the running lanes (a warp runs the handlers of
// distinct ops one after another, and the slot accesses of distinct pcs). policy K > 0: a lane waits only if the lowest pc holds at least 1/K as many lanes as its own,
// or if it is at most near_all words ahead.
// stats: steps, lane-ops, distinct pcs, distinct ops, distinct (pc, frame) pairs, summed over steps.
extern "C" void wg_simt_run(const u64* P, u32 n, u32 near, u32 policy, u32 near_all, u64* stats) {
  const u64 N = P[P_N];
  const u32* st = (const u32*)P[P_STATE];
  const u64* code = (const u64*)P[P_CODE];
  for (u32 w0 = 0; w0 < n; w0 += 32) {
    const u32 lanes = n - w0 < 32 ? n - w0 : 32;
    u64 cap[32];
    for (u32 l = 0; l < lanes; l++) cap[l] = P[P_FUEL_SLICE];
    for (;;) {
      u32 low = 0xffffffffu, pcs[32], npcs = 0, ops[32], nops = 0, nframes = 0, running = 0;
      u64 frames[32];
      bool any = false;
      for (u32 l = 0; l < lanes; l++) {
        const u64 i = w0 + l;
        if (cap[l] == 0 || st[S_STATUS * N + i] != STATUS_RUNNING) continue;
        any = true;
        if (st[S_PC * N + i] < low) low = st[S_PC * N + i];
      }
      if (!any) break;
      // Group sizes: lanes at the lowest pc, and at each lane's own pc.
      u32 at_low = 0, size[32];
      for (u32 l = 0; l < lanes; l++) {
        const u64 i = w0 + l;
        size[l] = 0;
        if (cap[l] == 0 || st[S_STATUS * N + i] != STATUS_RUNNING) continue;
        for (u32 k = 0; k < lanes; k++)
          size[l] += cap[k] && st[S_STATUS * N + w0 + k] == STATUS_RUNNING && st[S_PC * N + w0 + k] == st[S_PC * N + i];
        if (st[S_PC * N + i] == low) at_low++;
      }
      for (u32 l = 0; l < lanes; l++) {
        const u64 i = w0 + l;
        if (cap[l] == 0 || st[S_STATUS * N + i] != STATUS_RUNNING) continue;
        const u32 pc = st[S_PC * N + i];
        if (pc - low - 1 < near_all || (pc - low - 1 < near && (policy == 0 || at_low * policy >= size[l]))) continue;
        // Lanes at different pcs but the same op share its handler; their operands are still different slots.
        const u32 op = (u32)code[pc] & OP_MASK;
        const u64 frame = ((u64)pc << 32) | st[S_FP * N + i];  // lanes at one pc in different frames
        u32 k = 0;
        for (; k < nframes && frames[k] != frame; k++) {}
        if (k == nframes) frames[nframes++] = frame;
        k = 0;
        while (k < npcs && pcs[k] != pc) k++;
        if (k == npcs) pcs[npcs++] = pc;
        for (k = 0; k < nops && ops[k] != op; k++) {}
        if (k == nops) ops[nops++] = op;
        running++;
        wg_simt_ops = 1;
        cap[l] -= vm_step(P, (u32)i, cap[l]);
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
