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
extern "C" __global__ void __launch_bounds__(128, WG_MIN_BLOCKS)
vm_kernel(u32 near, u32 trial, u32 every, unsigned long long* start) {
  const u64* P = wg_params;
  u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (every && blockIdx.x % every == 0) near = trial;
  if (start) atomicMin(&start[blockIdx.x], global_ns());
  if (i < P[P_N]) vm_launch(P, (u32)i, near);
}
