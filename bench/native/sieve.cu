// Native CUDA build of bench/programs/sieve.c (see kernel.cuh).
#include "../programs/sieve.c"
#include "kernel.cuh"
