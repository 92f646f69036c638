// Native CUDA build of bench/programs/hash64.c (see kernel.cuh).
#include "../programs/hash64.c"
#include "kernel.cuh"
