// Native CUDA build of bench/programs/interp.c (see kernel.cuh).
#include "../programs/interp.c"
#include "kernel.cuh"
