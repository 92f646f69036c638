/* Byte-level memory traffic: a byte-per-number sieve of Eratosthenes for the small primes, then a
 * segmented byte sieve over a window whose position depends on the seed. */
#include "common.h"

#define SMALL 32768u  /* sieves segments up to SMALL^2 (about 1.07e9) */
#define SEG 16384u
#define ROUNDS 64u

EXPORT i64 run(i32 seed) {
    u8 small[SMALL];
    u8 seg[SEG];
    for (u32 i = 0; i < SMALL; i++) small[i] = 1;
    small[0] = small[1] = 0;
    for (u32 p = 2; p * p < SMALL; p++)
        if (small[p])
            for (u32 m = p * p; m < SMALL; m += p) small[m] = 0;

    u64 acc = 0;
    u32 base = 1000000u + ((u32)seed & 0xFFFFu) * 8191u;
    for (u32 r = 0; r < ROUNDS; r++) {
        u32 lo = base + r * SEG, hi = lo + SEG;
        for (u32 i = 0; i < SEG; i++) seg[i] = 1;
        for (u32 p = 2; p * p < hi; p++) {
            if (!small[p]) continue;
            u32 start = (lo + p - 1) / p * p;
            if (start < p * p) start = p * p;
            for (u32 m = start; m < hi; m += p) seg[m - lo] = 0;
        }
        u32 count = 0, last = 0;
        for (u32 i = 0; i < SEG; i++)
            if (seg[i]) {
                count++;
                last = lo + i;
            }
        acc = acc * 31ull + count * 1000003ull + last;
    }
    return (i64)acc;
}
