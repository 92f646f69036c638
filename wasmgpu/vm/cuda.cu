// GPU build of the interpreter: one thread per instance.
#include "vm.h"

// At most 64 registers (8 blocks of 128 threads per multiprocessor): occupancy hides the latency of the
// interpreter's dependent loads better than more registers would.
#ifndef WG_MIN_BLOCKS
#define WG_MIN_BLOCKS 8
#endif
// near: the reconvergence window (vm.h). A trial launch (runtime/tuning.py) runs every `every`-th block under
// window `trial` instead, and each block records when its first lane started in start[block] (each lane's
// end goes to its state, S_END_NS), so that both windows are measured in the same launch.
// The parameter block (vm.h enum Param) in constant memory, copied there before each launch: its values
// then serve as instruction operands, where a pointer argument kept them in registers or spilled them.
extern "C" {  // a definition (with C linkage, for the loader), also where units are linked (-rdc)
__constant__ u64 wg_params[P_COUNT];
}
// per_warp: the instances each warp runs, on its first lanes (the others return at once). Lanes of a warp on
// different paths take turns, so a batch too small to fill the GPU's warps runs spread over more of them
// (runtime/backends.py CudaBackend.per_warp).
extern "C" __global__ void __launch_bounds__(128, WG_MIN_BLOCKS)
vm_kernel(u32 near, u32 trial, u32 every, unsigned long long* start, u32 per_warp) {
  const u64* P = wg_params;
  const u32 lane = threadIdx.x & 31;
  if (lane >= per_warp) return;
  const u64 i = ((u64)blockIdx.x * blockDim.x + threadIdx.x) / 32 * per_warp + lane;
  if (every && blockIdx.x % every == 0) near = trial;
  if (start) atomicMin(&start[blockIdx.x], global_ns());
  if (i < P[P_N]) vm_launch(P, (u32)i, near);
}
