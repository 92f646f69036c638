// GPU build of the interpreter: one thread per instance.
#include "vm.h"

extern "C" __global__ void vm_kernel(const u64* P) {
  u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < P[P_N]) vm_step(P, (u32)i);
}
