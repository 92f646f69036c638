// Native CUDA build of bench/programs/fib.c (see kernel.cuh).
#include "../programs/fib.c"
#include "kernel.cuh"
