/* Shared by the C benchmarks. Each one builds three ways from the same source:
 *   wasm32, freestanding:  clang --target=wasm32 -O2 -nostdlib -fno-builtin ... (see bench/build.sh)
 *   CUDA:                  bench/native/NAME.cu #includes NAME.c (nvcc or NVRTC); run() is a __device__ function
 *   host C (tests only):   cc -O2 -include ... checks that the source is portable to 64-bit pointers
 * Rules that keep the three builds in agreement: no libc, no pointer values in results, unsigned
 * arithmetic where it may wrap, per-instance state on the stack only (a global would be shared by all
 * GPU threads in the CUDA build), read-only tables declared with RODATA. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FN static __device__
#define EXPORT static __device__
#define RODATA static __device__ const
#define NOINLINE __noinline__
#else
#define FN static
#define EXPORT __attribute__((visibility("default")))
#define RODATA static const
#define NOINLINE __attribute__((noinline))
#endif

/* The same f64 -> bits on every build. */
FN u64 f64_bits(double d) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
    return (u64)__double_as_longlong(d);
#else
    union { double d; u64 u; } v;
    v.d = d;
    return v.u;
#endif
}

FN u64 splitmix64(u64 *state) {
    u64 z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

FN u32 xorshift32(u32 *state) {
    u32 x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

FN u64 rotl64(u64 x, u32 r) { return (x << (r & 63)) | (x >> ((64 - r) & 63)); }

#endif
