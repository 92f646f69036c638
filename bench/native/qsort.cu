// Native CUDA build of bench/programs/qsort.c (see kernel.cuh).
#include "../programs/qsort.c"
#include "kernel.cuh"
