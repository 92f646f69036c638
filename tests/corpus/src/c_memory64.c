/* A 64-bit memory past 4 GiB: grows to `gib` GiB, then writes a pattern at pages spread over it (most past
 * 4 GiB), sums it back with a checksum, and returns the checksum (or a negative code). */
#include <stdint.h>

#define PAGE 65536ull

__attribute__((export_name("run"))) int64_t run(int32_t gib, int32_t samples) {
    uint64_t have = __builtin_wasm_memory_size(0);
    uint64_t want = (uint64_t)gib << 14; /* pages */
    if (want > have && __builtin_wasm_memory_grow(0, want - have) == (uint64_t)-1) return -1;
    uint64_t top = want * PAGE;
    uint64_t step = top / (uint64_t)samples;
    for (int32_t k = 0; k < samples; k++) {
        volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(step * (uint64_t)k + 4096);
        *p = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    }
    uint64_t sum = 0, far = 0;
    for (int32_t k = 0; k < samples; k++) {
        uint64_t at = step * (uint64_t)k + 4096;
        sum = sum * 31 + *(volatile uint64_t *)(uintptr_t)at;
        far += at >> 32 ? 1 : 0;
    }
    return (int64_t)((sum & 0xFFFFFFFFFFFull) << 12 | (far & 0xFFF));
}
