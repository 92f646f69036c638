/* Recursion over memory: recursive quicksort (median of three, Hoare partition) of seed-generated
 * arrays on the stack, then a weighted checksum of the sorted order. */
#include "common.h"

#define LEN 6000u
#define ROUNDS 6u

FN NOINLINE void quicksort(u32 *a, i32 lo, i32 hi) {
    while (hi - lo > 16) {
        i32 mid = lo + (hi - lo) / 2;
        u32 x = a[lo], y = a[mid], z = a[hi];
        u32 pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        i32 i = lo - 1, j = hi + 1;
        for (;;) {
            do i++; while (a[i] < pivot);
            do j--; while (a[j] > pivot);
            if (i >= j) break;
            u32 t = a[i]; a[i] = a[j]; a[j] = t;
        }
        /* recurse into the smaller part, loop on the larger: depth stays logarithmic */
        if (j - lo < hi - j) { quicksort(a, lo, j); lo = j + 1; }
        else { quicksort(a, j + 1, hi); hi = j; }
    }
    for (i32 i = lo + 1; i <= hi; i++) {
        u32 v = a[i];
        i32 k = i - 1;
        while (k >= lo && a[k] > v) { a[k + 1] = a[k]; k--; }
        a[k + 1] = v;
    }
}

EXPORT i64 run(i32 seed) {
    u32 a[LEN];
    u32 st = (u32)seed * 2654435761u + 0x9E3779B9u;
    if (st == 0) st = 1;
    u64 acc = 0;
    for (u32 r = 0; r < ROUNDS; r++) {
        for (u32 i = 0; i < LEN; i++) a[i] = xorshift32(&st) % (1000u << r);
        quicksort(a, 0, (i32)LEN - 1);
        for (u32 i = 0; i < LEN; i += 7) acc = acc * 1000003ull + a[i] * (u64)(i + 1);
        for (u32 i = 1; i < LEN; i++) if (a[i - 1] > a[i]) return -1;
    }
    return (i64)acc;
}
