/* SIMD128: image convolution on a 96x96 u8 image (a separable 5x5 Gaussian blur with i16 and i32
 * accumulators, a Sobel gradient with saturation, a brightness adjust) for a few passes, plus a
 * byte-pattern search and a weighted checksum per pass. Plain C loops: bench/build.sh builds it with
 * -msimd128 -O3, so clang auto-vectorizes them into v128 code; the CUDA build runs them scalar. */
#include "common.h"

typedef short i16;

#define W 96
#define H 96
#define PASSES 48

EXPORT i64 run(i32 seed) {
    u8 img[W * H];
    i16 tmp[W * H];
    u8 out[W * H];
    u32 st = (u32)seed * 2654435761u + 12345u;
    if (st == 0) st = 1;
    for (u32 i = 0; i < W * H; i++) img[i] = (u8)(xorshift32(&st) >> 11);
    for (u32 i = 0; i < W * H; i++) {
        tmp[i] = 0;
        out[i] = 0;
    }
    u64 acc = 0;
    for (u32 pass = 0; pass < PASSES; pass++) {
        /* Horizontal 5-tap [1 4 6 4 1] into i16 (at most 16 * 255). */
        for (u32 y = 0; y < H; y++) {
            const u8 *r = img + y * W;
            i16 *t = tmp + y * W;
            for (u32 x = 2; x < W - 2; x++)
                t[x] = (i16)(r[x - 2] + 4 * r[x - 1] + 6 * r[x] + 4 * r[x + 1] + r[x + 2]);
        }
        /* Vertical 5-tap with i32 accumulators (at most 256 * 255), rounded back to u8. */
        for (u32 y = 2; y < H - 2; y++) {
            const i16 *t0 = tmp + (y - 2) * W, *t1 = tmp + (y - 1) * W, *t2 = tmp + y * W;
            const i16 *t3 = tmp + (y + 1) * W, *t4 = tmp + (y + 2) * W;
            u8 *o = out + y * W;
            for (u32 x = 2; x < W - 2; x++) {
                i32 s = (i32)t0[x] + 4 * (i32)t1[x] + 6 * (i32)t2[x] + 4 * (i32)t3[x] + (i32)t4[x];
                o[x] = (u8)((s + 128) >> 8);
            }
        }
        /* Sobel magnitude (|gx| + |gy|, saturated to 255) of the blurred image, back into img. */
        for (u32 y = 1; y < H - 1; y++) {
            const u8 *a = out + (y - 1) * W, *b = out + y * W, *c = out + (y + 1) * W;
            u8 *d = img + y * W;
            for (u32 x = 1; x < W - 1; x++) {
                i32 gx = (i32)a[x + 1] - a[x - 1] + 2 * ((i32)b[x + 1] - b[x - 1]) + (i32)c[x + 1] - c[x - 1];
                i32 gy = (i32)c[x - 1] + 2 * (i32)c[x] + c[x + 1] - a[x - 1] - 2 * (i32)a[x] - a[x + 1];
                i32 m = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
                d[x] = (u8)(m > 255 ? 255 : m);
            }
        }
        /* Brightness: the edges plus half the blur, saturating; a threshold count; then a pattern
         * xor-ed in, so that the passes do not converge. */
        u32 bright = 0;
        for (u32 i = 0; i < W * H; i++) {
            u32 v = (u32)img[i] + (out[i] >> 1) + (pass & 7);
            u8 b = (u8)(v > 255 ? 255 : v);
            bright += b > 160;
            img[i] = b ^ (u8)((i * 5u + pass * 3u) & 0x7fu);
        }
        /* Byte-pattern search: positions where the top 3 bits of three consecutive bytes read 4, 5, 6. */
        u32 hits = 0, where = 0;
        for (u32 i = 0; i + 2 < W * H; i++) {
            u32 m = ((img[i] >> 5) == 4) & ((img[i + 1] >> 5) == 5) & ((img[i + 2] >> 5) == 6);
            hits += m;
            where += m * i;
        }
        /* A weighted sum of both images (wraps in u32). */
        u32 sum = 0, wsum = 0;
        for (u32 i = 0; i < W * H; i++) {
            sum += out[i];
            wsum += (u32)img[i] * ((i & 255u) + 1u);
        }
        acc = (acc * 0x100000001B3ull) ^ (((u64)sum << 32) | wsum);
        acc = acc * 31ull + ((u64)hits << 40) + ((u64)where << 8) + bright;
    }
    return (i64)acc;
}
