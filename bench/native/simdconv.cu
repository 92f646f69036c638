// Native CUDA build of bench/programs/simdconv.c (see kernel.cuh).
#include "../programs/simdconv.c"
#include "kernel.cuh"
