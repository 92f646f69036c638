// Native CUDA build of bench/programs/bulkmem.c (see kernel.cuh).
#include "../programs/bulkmem.c"
#include "kernel.cuh"
