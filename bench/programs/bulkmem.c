/* Bulk memory: memcpy / memmove / memset heavy. Built with -mbulk-memory, so clang emits
 * memory.copy and memory.fill for them; lengths and offsets come from the seed. */
#include "common.h"

#define BUF 32768u
#define ITERS 45000u

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
/* CUDA has device memcpy and memset but no memmove. */
FN void move_bytes(u8 *d, const u8 *s, u32 n) {
    if (d + n <= s || s + n <= d) memcpy(d, s, n);
    else if (d < s) for (u32 i = 0; i < n; i++) d[i] = s[i];
    else for (u32 i = n; i-- > 0;) d[i] = s[i];
}
#define COPY(d, s, n) move_bytes((d), (s), (n))
#define FILL(d, v, n) memset((d), (v), (n))
#else
/* wasm32 with -mbulk-memory: memory.copy (which has memmove semantics) and memory.fill. */
#define COPY(d, s, n) __builtin_memmove((d), (s), (n))
#define FILL(d, v, n) __builtin_memset((d), (v), (n))
#endif

EXPORT i64 run(i32 seed) {
    u8 buf[BUF];
    u32 st = (u32)seed * 747796405u + 2891336453u;
    if (st == 0) st = 1;
    FILL(buf, (int)(st & 255), BUF);
    for (u32 i = 0; i < BUF; i += 64) buf[i] = (u8)(i >> 6);
    u64 acc = 0;
    for (u32 it = 0; it < ITERS; it++) {
        u32 r = xorshift32(&st);
        u32 len = 256u + (r & 4095u);                  /* 256 .. 4351 bytes */
        u32 src = (r >> 12) % (BUF - len);
        u32 dst = xorshift32(&st) % (BUF - len);
        if (it & 3) {
            COPY(buf + dst, buf + src, len);            /* may overlap: memmove semantics */
        } else {
            FILL(buf + dst, (int)(it & 255), len >> 1);
        }
        acc = acc * 31ull + buf[(dst + len / 2) % BUF] + ((u64)buf[src] << 8);
    }
    const u8 *p = buf;
    for (u32 i = 0; i < BUF; i += 8) {
        u64 w = 0;
        for (u32 k = 0; k < 8; k++) w |= (u64)p[i + k] << (8 * k);
        acc = (acc ^ w) * 0x100000001B3ull;
    }
    return (i64)acc;
}
