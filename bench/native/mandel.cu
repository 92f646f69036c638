// Native CUDA build of bench/programs/mandel.c (see kernel.cuh).
#include "../programs/mandel.c"
#include "kernel.cuh"
