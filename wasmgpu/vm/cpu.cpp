// Host build of the interpreter: every instance of a launch, spread over the cores.
#include "vm.h"

extern "C" void vm_run(const u64* P, u32 n, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long i = 0; i < (long long)n; i++) vm_launch(P, (u32)i);
}
