/* Integer arithmetic: 64-bit mul/div/rem, shifts, bit counting, wrap-around. */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

int main(void) {
    volatile int64_t vals[] = {0, 1, -1, 7, -7, 1000000007, INT64_MAX, INT64_MIN, 0x123456789abcdefLL,
                               -0x7edcba987654321LL, 4294967296LL, 65535};
    int n = (int)(sizeof vals / sizeof vals[0]);
    uint64_t acc = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            int64_t a = vals[i], b = vals[j];
            uint64_t m = (uint64_t)a * (uint64_t)b;
            acc = acc * 1099511628211ull ^ m;
            if (b != 0 && !(a == INT64_MIN && b == -1)) {
                acc += (uint64_t)(a / b) ^ ((uint64_t)(a % b) << 1);
                acc ^= (uint64_t)a / (uint64_t)b + (uint64_t)a % (uint64_t)b;
            }
        }
    }
    printf("acc=%016" PRIx64 "\n", acc);
    for (int i = 0; i < n; i++) {
        uint64_t u = (uint64_t)vals[i];
        uint32_t lo = (uint32_t)u;
        printf("%20" PRId64 ": pop=%2d clz=%2d ctz=%2d pop32=%2d clz32=%2d ctz32=%2d rotl=%016" PRIx64
               " sar=%" PRId64 " shr=%" PRIu64 "\n",
               vals[i], __builtin_popcountll(u), u ? __builtin_clzll(u) : 64, u ? __builtin_ctzll(u) : 64,
               __builtin_popcount(lo), lo ? __builtin_clz(lo) : 32, lo ? __builtin_ctz(lo) : 32,
               (u << 13) | (u >> 51), vals[i] >> 5, u >> 5);
    }
    /* 32-bit wrap and sign extension */
    volatile int32_t x = INT32_MAX;
    volatile uint32_t ux = (uint32_t)x + 1u;
    printf("wrap: %u %d %d %lld\n", ux, (int32_t)ux, (int8_t)0x80 + 0, (long long)(int32_t)0xffff0000u);
    printf("int8=%d uint8=%u int16=%d\n", (int8_t)200, (uint8_t)-1, (int16_t)40000);
    printf("div: %d %d %d %d\n", -7 / 2, -7 % 2, 7 / -2, 7 % -2);
    /* fast power modulo and gcd */
    uint64_t base = 3, e = 1000000, mod = 1000000007, r = 1;
    while (e) { if (e & 1) r = r * base % mod; base = base * base % mod; e >>= 1; }
    uint64_t g1 = 1071, g2 = 462;
    while (g2) { uint64_t t = g1 % g2; g1 = g2; g2 = t; }
    printf("3^1e6 mod p=%" PRIu64 " gcd=%" PRIu64 "\n", r, g1);
    /* 128-bit via compiler helpers */
    unsigned __int128 big = (unsigned __int128)UINT64_MAX * UINT64_MAX;
    printf("u128 hi=%016" PRIx64 " lo=%016" PRIx64 " div=%" PRIu64 "\n", (uint64_t)(big >> 64), (uint64_t)big,
           (uint64_t)(big / 1000000007u));
    return 0;
}
