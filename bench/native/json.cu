// Native CUDA build of bench/programs/json.c (see kernel.cuh).
#include "../programs/json.c"
#include "kernel.cuh"
