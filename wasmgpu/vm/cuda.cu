// GPU build of the interpreter: one thread per instance.
#include "vm.h"

// At most 64 registers (8 blocks of 128 threads per multiprocessor): occupancy hides the latency of the
// interpreter's dependent loads better than more registers would.
#ifndef WG_MIN_BLOCKS
#define WG_MIN_BLOCKS 8
#endif
extern "C" __global__ void __launch_bounds__(128, WG_MIN_BLOCKS) vm_kernel(const u64* P, u32 near) {
  u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < P[P_N]) vm_launch(P, (u32)i, near);
}
