// The native CUDA build of one C benchmark: bench/native/NAME.cu includes bench/programs/NAME.c
// (whose run() common.h makes a __device__ function), then this file. One instance per thread,
// as wasmgpu runs them. Compile with -fmad=false: the wasm build never fuses multiply-add.
extern "C" __global__ void bench_kernel(const int *seeds, long long *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = run(seeds[i]);
}
