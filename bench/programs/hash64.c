/* 64-bit integer math: splitmix64, xorshift and multiply-rotate mixing over a small table that the
 * mixing itself indexes (data-dependent addresses, the same instruction stream in every lane). */
#include "common.h"

#define ITERS 450000u

EXPORT i64 run(i32 seed) {
    u64 table[256];
    u64 st = (u64)(u32)seed * 0x2545F4914F6CDD1Dull + 1;
    for (u32 i = 0; i < 256; i++) table[i] = splitmix64(&st);
    u64 h = (u64)(u32)seed ^ 0xCBF29CE484222325ull;
    u64 x = st | 1;
    for (u32 i = 0; i < ITERS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        u64 t = table[(h ^ x) & 255];
        h = rotl64(h ^ t, 29) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 33;
        h += x * 0xC4CEB9FE1A85EC53ull;
        table[(h >> 11) & 255] = t + (h ^ (h >> 29));
    }
    u64 sum = 0;
    for (u32 i = 0; i < 256; i++) sum = sum * 31ull + table[i];
    return (i64)(h ^ sum);
}
