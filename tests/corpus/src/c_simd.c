/* build: -msimd128 -O3 */
/* SIMD128: loops over u8/i16/i32/float/double arrays that clang auto-vectorizes at -O3 (sums,
   saturating adds, min/max, abs, dot products, a 3x3 blur, byte counting, float scaling), then most
   of <wasm_simd128.h> applied to a pool of edge and pseudo-random vectors (seeded from argv[1]),
   one FNV hash per intrinsic so that a wrong lane shows which one. Float results that are NaN are
   printed as "nan" (their sign and payload are nondeterministic in WebAssembly); NaN inputs are
   constants, and the ops that must keep their bits (abs, neg, pmin, pmax, shuffles) hash them raw. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <wasm_simd128.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define FNV0 0xcbf29ce484222325ull
static uint64_t fnv(uint64_t h, uint64_t x) {
    for (int i = 0; i < 8; i++) {
        h ^= (x >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}
static __attribute__((noinline)) uint64_t hv(uint64_t h, v128_t v) {
    uint64_t lo, hi;
    memcpy(&lo, &v, 8);
    memcpy(&hi, (char *)&v + 8, 8);
    return fnv(fnv(h, lo), hi);
}
/* NaN lanes -> the canonical NaN bits, so that any NaN hashes the same. */
static v128_t canon_f32(v128_t r) {
    v128_t isnan = wasm_f32x4_ne(r, r);
    return wasm_v128_bitselect(wasm_i32x4_splat(0x7fc00000), r, isnan);
}
static v128_t canon_f64(v128_t r) {
    v128_t isnan = wasm_f64x2_ne(r, r);
    return wasm_v128_bitselect(wasm_i64x2_splat(0x7ff8000000000000ll), r, isnan);
}
static void pvec(const char *name, v128_t v) {
    uint8_t b[16];
    memcpy(b, &v, 16);
    printf("%-22s", name);
    for (int i = 0; i < 16; i++) printf("%s%02x", (i && i % 4 == 0) ? " " : "", b[i]);
    printf("\n");
}
static void pf32(const char *name, float f) {
    if (f != f) printf("%-22s nan\n", name);
    else printf("%-22s %.9g\n", name, f);
}

/* ------------------------------------------------------------------ part 1: auto-vectorized loops */

#define N 1003 /* not a multiple of 16: the scalar tails run too */
#define W 67
#define H 45

static uint8_t a8[N], b8[N], c8[N];
static int16_t a16[N], b16[N], c16[N];
static int32_t a32[N], b32[N], c32[N];
static uint32_t u32s[N];
static float fa[N], fb[N], fc[N];
static double da[N], db[N], dc[N];
static uint8_t img[H][W], out[H][W];
static uint8_t text[4099];

static __attribute__((noinline)) void fill_arrays(void) {
    for (int i = 0; i < N; i++) {
        uint64_t r = rng();
        a8[i] = (uint8_t)r;
        b8[i] = (uint8_t)(r >> 8);
        a16[i] = (int16_t)(r >> 16);
        b16[i] = (int16_t)(r >> 32);
        a32[i] = (int32_t)(r >> 20) - (1 << 23);
        b32[i] = (int32_t)r;
        u32s[i] = (uint32_t)(r >> 29);
        fa[i] = (float)(int32_t)(r >> 40) / 1024.0f;   /* about +-8e3 */
        fb[i] = (float)((r >> 8) & 0xffff) / 256.0f;    /* 0 .. 256 */
        da[i] = (double)(int64_t)(r >> 11) / 4096.0;
        db[i] = (double)((r >> 3) & 0xfffff) / 65536.0;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) img[y][x] = (uint8_t)(rng() >> 13);
    for (int i = 0; i < (int)sizeof text; i++) {
        uint64_t r = rng();
        text[i] = (uint8_t)("acgt acgtNN\n"[r % 12]);
    }
}

static __attribute__((noinline)) uint32_t sum_u8(const uint8_t *p, int n) {
    uint32_t s = 0;
    for (int i = 0; i < n; i++) s += p[i];
    return s;
}
static __attribute__((noinline)) void add_sat_u8(uint8_t *restrict d, const uint8_t *restrict x,
                                                  const uint8_t *restrict y, int n) {
    for (int i = 0; i < n; i++) {
        unsigned s = (unsigned)x[i] + y[i];
        d[i] = s > 255 ? 255 : (uint8_t)s;
    }
}
static __attribute__((noinline)) void sub_sat_u8(uint8_t *restrict d, const uint8_t *restrict x,
                                                  const uint8_t *restrict y, int n) {
    for (int i = 0; i < n; i++) d[i] = x[i] > y[i] ? x[i] - y[i] : 0;
}
static __attribute__((noinline)) void add_sat_i16(int16_t *restrict d, const int16_t *restrict x,
                                                   const int16_t *restrict y, int n) {
    for (int i = 0; i < n; i++) {
        int s = (int)x[i] + y[i];
        d[i] = (int16_t)(s > 32767 ? 32767 : s < -32768 ? -32768 : s);
    }
}
static __attribute__((noinline)) void minmax_u8(uint8_t *restrict lo, uint8_t *restrict hi, const uint8_t *x,
                                                 const uint8_t *y, int n) {
    for (int i = 0; i < n; i++) {
        lo[i] = x[i] < y[i] ? x[i] : y[i];
        hi[i] = x[i] > y[i] ? x[i] : y[i];
    }
}
static __attribute__((noinline)) int32_t max_i32(const int32_t *p, int n) {
    int32_t m = INT32_MIN;
    for (int i = 0; i < n; i++) m = p[i] > m ? p[i] : m;
    return m;
}
static __attribute__((noinline)) int32_t min_i32(const int32_t *p, int n) {
    int32_t m = INT32_MAX;
    for (int i = 0; i < n; i++) m = p[i] < m ? p[i] : m;
    return m;
}
static __attribute__((noinline)) uint32_t umax_u32(const uint32_t *p, int n) {
    uint32_t m = 0;
    for (int i = 0; i < n; i++) m = p[i] > m ? p[i] : m;
    return m;
}
static __attribute__((noinline)) void abs_i32(int32_t *restrict d, const int32_t *restrict x, int n) {
    for (int i = 0; i < n; i++) d[i] = x[i] < 0 ? -x[i] : x[i];
}
static __attribute__((noinline)) void abs_diff_i16(int16_t *restrict d, const int16_t *restrict x,
                                                    const int16_t *restrict y, int n) {
    for (int i = 0; i < n; i++) {
        int v = x[i] - y[i];
        d[i] = (int16_t)(v < 0 ? -v : v);
    }
}
static __attribute__((noinline)) int32_t dot_i16(const int16_t *x, const int16_t *y, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)x[i] * y[i];
    return s;
}
static __attribute__((noinline)) int64_t dot_i32_i64(const int32_t *x, const int32_t *y, int n) {
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += (int64_t)x[i] * y[i];
    return s;
}
static __attribute__((noinline)) uint32_t dot_u8(const uint8_t *x, const uint8_t *y, int n) {
    uint32_t s = 0;
    for (int i = 0; i < n; i++) s += (uint32_t)x[i] * y[i];
    return s;
}
static __attribute__((noinline)) void mix_i32(int32_t *restrict d, const int32_t *restrict x,
                                               const int32_t *restrict y, int n) {
    for (int i = 0; i < n; i++) d[i] = (x[i] * 3 - y[i]) ^ (x[i] >> 3) ^ (int32_t)((uint32_t)y[i] >> 7) ^ (x[i] << 2);
}
static __attribute__((noinline)) void avg_u8(uint8_t *restrict d, const uint8_t *restrict x,
                                              const uint8_t *restrict y, int n) {
    for (int i = 0; i < n; i++) d[i] = (uint8_t)(((unsigned)x[i] + y[i] + 1) >> 1);
}
static __attribute__((noinline)) void blur3x3(void) {
    for (int y = 1; y < H - 1; y++)
        for (int x = 1; x < W - 1; x++) {
            unsigned s = img[y - 1][x - 1] + 2u * img[y - 1][x] + img[y - 1][x + 1]
                       + 2u * img[y][x - 1] + 4u * img[y][x] + 2u * img[y][x + 1]
                       + img[y + 1][x - 1] + 2u * img[y + 1][x] + img[y + 1][x + 1];
            out[y][x] = (uint8_t)((s + 8) >> 4);
        }
}
static __attribute__((noinline)) void sobel(void) {
    for (int y = 1; y < H - 1; y++)
        for (int x = 1; x < W - 1; x++) {
            int gx = -img[y - 1][x - 1] + img[y - 1][x + 1] - 2 * img[y][x - 1] + 2 * img[y][x + 1]
                   - img[y + 1][x - 1] + img[y + 1][x + 1];
            int gy = -img[y - 1][x - 1] - 2 * img[y - 1][x] - img[y - 1][x + 1]
                   + img[y + 1][x - 1] + 2 * img[y + 1][x] + img[y + 1][x + 1];
            int m = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
            out[y][x] = (uint8_t)(m > 255 ? 255 : m);
        }
}
static __attribute__((noinline)) uint32_t count_byte(const uint8_t *p, int n, uint8_t c) {
    uint32_t k = 0;
    for (int i = 0; i < n; i++) k += p[i] == c;
    return k;
}
static __attribute__((noinline)) int find_pair(const uint8_t *p, int n, uint8_t c0, uint8_t c1) {
    for (int i = 0; i + 1 < n; i++)
        if (p[i] == c0 && p[i + 1] == c1) return i;
    return -1;
}
static __attribute__((noinline)) void to_upper(uint8_t *restrict d, const uint8_t *restrict s, int n) {
    for (int i = 0; i < n; i++) d[i] = (s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i];
}
static __attribute__((noinline)) void scale_f32(float *restrict d, const float *restrict x, const float *restrict y,
                                                 int n, float k) {
    for (int i = 0; i < n; i++) {
        float v = __builtin_sqrtf(y[i]) * k + x[i] * 0.25f;
        v = v < -1000.0f ? -1000.0f : v;
        v = v > 1000.0f ? 1000.0f : v;
        d[i] = v;
    }
}
static __attribute__((noinline)) void f32_misc(float *restrict d, const float *restrict x, int n) {
    for (int i = 0; i < n; i++)
        d[i] = __builtin_fabsf(x[i]) + __builtin_floorf(x[i] * 0.01f) - __builtin_ceilf(x[i] * 0.003f)
             + __builtin_truncf(x[i] * 0.1f) + __builtin_rintf(x[i] * 0.7f) - x[i] * x[i] * 1e-4f;
}
static __attribute__((noinline)) void u8_to_f32(float *restrict d, const uint8_t *restrict s, int n) {
    for (int i = 0; i < n; i++) d[i] = (float)s[i] * (1.0f / 255.0f);
}
static __attribute__((noinline)) void f32_to_i32(int32_t *restrict d, const float *restrict s, int n) {
    for (int i = 0; i < n; i++) d[i] = (int32_t)(s[i] * 7.5f);
}
static __attribute__((noinline)) void i32_to_f32(float *restrict d, const int32_t *restrict s, int n) {
    for (int i = 0; i < n; i++) d[i] = (float)s[i] * 0.125f;
}
static __attribute__((noinline)) void daxpy(double *restrict d, const double *restrict x, const double *restrict y,
                                             int n, double k) {
    for (int i = 0; i < n; i++) d[i] = k * x[i] + y[i] - __builtin_sqrt(y[i]) / (1.0 + y[i]);
}
static __attribute__((noinline)) void d_clamp_abs(double *restrict d, const double *restrict x, int n) {
    for (int i = 0; i < n; i++) {
        double v = __builtin_fabs(x[i]) * 1e-6;
        d[i] = v > 50.0 ? 50.0 : v;
    }
}
static __attribute__((noinline)) void widen_i16_i64(int64_t *restrict d, const int16_t *restrict s, int n) {
    for (int i = 0; i < n; i++) d[i] = (int64_t)s[i] * s[i] - ((int64_t)s[i] << 20);
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = FNV0;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
static double fsum(const float *p, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += p[i];
    return s;
}
static double dsum(const double *p, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += p[i];
    return s;
}

static void part1(void) {
    static int64_t wide[N];
    printf("== auto-vectorized loops\n");
    printf("sum_u8 %u %u\n", sum_u8(a8, N), sum_u8(b8 + 3, N - 7));
    add_sat_u8(c8, a8, b8, N);
    printf("add_sat_u8 %016llx\n", (unsigned long long)hash_bytes(c8, N));
    sub_sat_u8(c8, a8, b8, N);
    printf("sub_sat_u8 %016llx\n", (unsigned long long)hash_bytes(c8, N));
    add_sat_i16(c16, a16, b16, N);
    printf("add_sat_i16 %016llx\n", (unsigned long long)hash_bytes(c16, sizeof c16));
    minmax_u8(c8, out[0], a8, b8, N < W * H ? N : W * H);
    printf("minmax_u8 %016llx %016llx\n", (unsigned long long)hash_bytes(c8, N),
           (unsigned long long)hash_bytes(out[0], N));
    printf("max_i32 %d min_i32 %d umax %u\n", max_i32(a32, N), min_i32(b32, N), umax_u32(u32s, N));
    abs_i32(c32, b32, N);
    printf("abs_i32 %016llx\n", (unsigned long long)hash_bytes(c32, sizeof c32));
    abs_diff_i16(c16, a16, b16, N);
    printf("abs_diff_i16 %016llx\n", (unsigned long long)hash_bytes(c16, sizeof c16));
    printf("dot_i16 %d dot_u8 %u dot_i32_i64 %lld\n", dot_i16(a16, b16, N), dot_u8(a8, b8, N),
           (long long)dot_i32_i64(a32, b32, N));
    mix_i32(c32, a32, b32, N);
    printf("mix_i32 %016llx\n", (unsigned long long)hash_bytes(c32, sizeof c32));
    avg_u8(c8, a8, b8, N);
    printf("avg_u8 %016llx\n", (unsigned long long)hash_bytes(c8, N));
    memset(out, 0, sizeof out);
    blur3x3();
    printf("blur3x3 %016llx\n", (unsigned long long)hash_bytes(out, sizeof out));
    sobel();
    printf("sobel %016llx\n", (unsigned long long)hash_bytes(out, sizeof out));
    printf("count a=%u c=%u N=%u nl=%u\n", count_byte(text, sizeof text, 'a'), count_byte(text, sizeof text, 'c'),
           count_byte(text, sizeof text, 'N'), count_byte(text, sizeof text, '\n'));
    printf("find NN=%d tt=%d gA=%d\n", find_pair(text, sizeof text, 'N', 'N'), find_pair(text, sizeof text, 't', 't'),
           find_pair(text, sizeof text, 'g', 'A'));
    static uint8_t up[sizeof text];
    to_upper(up, text, sizeof text);
    printf("to_upper %016llx\n", (unsigned long long)hash_bytes(up, sizeof up));
    scale_f32(fc, fa, fb, N, 3.5f);
    printf("scale_f32 %016llx %.6f\n", (unsigned long long)hash_bytes(fc, sizeof fc), fsum(fc, N));
    f32_misc(fc, fa, N);
    printf("f32_misc %016llx\n", (unsigned long long)hash_bytes(fc, sizeof fc));
    u8_to_f32(fc, a8, N);
    printf("u8_to_f32 %016llx %.6f\n", (unsigned long long)hash_bytes(fc, sizeof fc), fsum(fc, N));
    f32_to_i32(c32, fa, N);
    printf("f32_to_i32 %016llx\n", (unsigned long long)hash_bytes(c32, sizeof c32));
    i32_to_f32(fc, a32, N);
    printf("i32_to_f32 %016llx\n", (unsigned long long)hash_bytes(fc, sizeof fc));
    daxpy(dc, da, db, N, -1.25);
    printf("daxpy %016llx %.17g\n", (unsigned long long)hash_bytes(dc, sizeof dc), dsum(dc, N));
    d_clamp_abs(dc, da, N);
    printf("d_clamp_abs %016llx\n", (unsigned long long)hash_bytes(dc, sizeof dc));
    widen_i16_i64(wide, a16, N);
    printf("widen_i16_i64 %016llx\n", (unsigned long long)hash_bytes(wide, sizeof wide));
}

/* ------------------------------------------------------------------ part 2: intrinsics */

#define NP 28
static v128_t ip[NP]; /* integer lanes: edges and random, lane widths 8/16/32/64 */
static v128_t fp[NP]; /* f32 lanes */
static v128_t dp[NP]; /* f64 lanes */

static const uint64_t edge_bits[4][12] = {
    {0x00, 0x01, 0x7f, 0x80, 0x81, 0xff, 0xfe, 0x40, 0x3f, 0x10, 0x0f, 0xc0},
    {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0xfffe, 0x4000, 0x00ff, 0xff00, 0x0100, 0x7f80},
    {0, 1, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff, 0xfffffffe, 0x40000000, 0xffff, 0x10000, 0x7fff8000,
     0x8000ffff},
    {0, 1, 0x7fffffffffffffffull, 0x8000000000000000ull, 0x8000000000000001ull, 0xffffffffffffffffull,
     0xfffffffffffffffeull, 0x4000000000000000ull, 0xffffffffull, 0x100000000ull, 0x7fffffff80000000ull,
     0x80000000ffffffffull},
};
static const uint32_t f32_edges[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3f000000, 0xbf000000, 0x3fc00000, 0x40200000,
    0xc0200000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc12345, 0x00000001, 0x80000001,
    0x7f7fffff, 0x4f000000, 0xcf000000, 0x4f800000, 0x4effffff, 0xcf000001, 0x3effffff, 0x4b000001,
    0x4b7fffff, 0xcb7fffff, 0x3f7fffff, 0x40400000, 0x2f800000, 0x4e6e6b28,
};
static const uint64_t f64_edges[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
    0x3fe0000000000000ull, 0xbfe0000000000000ull, 0x3ff8000000000000ull, 0x4004000000000000ull,
    0xc004000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
    0xfff8000000000000ull, 0x7ff8000000012345ull, 0x0000000000000001ull, 0x8000000000000001ull,
    0x7fefffffffffffffull, 0x41e0000000000000ull, 0xc1e0000000000000ull, 0x41f0000000000000ull,
    0x41dfffffffc00000ull, 0xc1e0000000200000ull, 0x3fdfffffffffffffull, 0x4330000000000001ull,
    0x433fffffffffffffull, 0x36a0000000000000ull, 0x47efffffe0000000ull, 0x3810000000000000ull,
    0x41efffffffe00000ull, 0xc1dfffffffc00001ull,
};
#define NF32E (int)(sizeof f32_edges / sizeof f32_edges[0])
#define NF64E (int)(sizeof f64_edges / sizeof f64_edges[0])

static void build_pools(void) {
    for (int k = 0; k < NP; k++) {
        uint8_t b[16];
        int wlog = k % 4, bytes = 1 << wlog;
        for (int lane = 0; lane < 16 / bytes; lane++) {
            uint64_t r = rng();
            uint64_t v = (k < NP / 2 || (r & 3) == 0) ? edge_bits[wlog][(r >> 8) % 12] : r >> 3;
            memcpy(b + lane * bytes, &v, bytes);
        }
        memcpy(&ip[k], b, 16);
        uint32_t f[4];
        for (int lane = 0; lane < 4; lane++) {
            uint64_t r = rng();
            if (k < NP / 2 || (r & 1))
                f[lane] = f32_edges[(r >> 8) % NF32E];
            else { /* ordinary values around +-1e6, some of them integral or halves */
                float x = (float)((int32_t)(r >> 32) >> 11) / (float)(1u << ((r >> 4) % 12));
                memcpy(&f[lane], &x, 4);
            }
        }
        memcpy(&fp[k], f, 16);
        uint64_t d[2];
        for (int lane = 0; lane < 2; lane++) {
            uint64_t r = rng();
            if (k < NP / 2 || (r & 1))
                d[lane] = f64_edges[(r >> 8) % NF64E];
            else {
                double x = (double)((int64_t)r >> 20) / (double)(1u << ((r >> 4) % 20));
                memcpy(&d[lane], &x, 8);
            }
        }
        memcpy(&dp[k], d, 16);
    }
}

static void report(const char *name, uint64_t h) { printf("%-30s %016llx\n", name, (unsigned long long)h); }

/* Every intrinsic as a small function (called through a table, so v128 values also cross
   call_indirect), applied to all pairs (a, b) of a pool (BIN), to each vector with a scalar c (UN),
   or to each vector giving a scalar (SC). */
typedef v128_t (*bin_fn)(v128_t, v128_t);
typedef v128_t (*un_fn)(v128_t, uint32_t);
typedef uint64_t (*sc_fn)(v128_t);
#define BIN_DEF(id, expr) static v128_t id(v128_t a, v128_t b) { return expr; }
#define UN_DEF(id, expr) static v128_t id(v128_t a, uint32_t c) { (void)c; return expr; }
#define SC_DEF(id, expr) static uint64_t id(v128_t a) { return (uint64_t)(expr); }
#define BIN_INIT(id) {.bin = id}
#define UN_INIT(id) {.un = id}
#define SC_INIT(id) {.sc = id}
enum { BIN, UN, SC };
struct op {
    const char *name;
    int kind;
    const v128_t *pool;
    union { bin_fn bin; un_fn un; sc_fn sc; } fn;
};

#define OPS(X) \
    X(BIN, ip, op_v128_and, wasm_v128_and(a, b)) \
    X(BIN, ip, op_v128_or, wasm_v128_or(a, b)) \
    X(BIN, ip, op_v128_xor, wasm_v128_xor(a, b)) \
    X(BIN, ip, op_v128_andnot, wasm_v128_andnot(a, b)) \
    X(UN, ip, op_v128_not, wasm_v128_not(a)) \
    X(BIN, ip, op_v128_bitselect, wasm_v128_bitselect(a, b, wasm_i8x16_shuffle(a, b, 3, 17, 30, 9, 12, 0, 22, 5, 16, 1, 31, 8, 2, 27, 6, 19))) \
    X(SC, ip, op_v128_any_true, wasm_v128_any_true(wasm_v128_and(a, wasm_i64x2_shuffle(a, a, 1, 0)))) \
    X(BIN, ip, op_i8x16_add, wasm_i8x16_add(a, b)) \
    X(BIN, ip, op_i8x16_sub, wasm_i8x16_sub(a, b)) \
    X(BIN, ip, op_i8x16_add_sat_s, wasm_i8x16_add_sat(a, b)) \
    X(BIN, ip, op_i8x16_add_sat_u, wasm_u8x16_add_sat(a, b)) \
    X(BIN, ip, op_i8x16_sub_sat_s, wasm_i8x16_sub_sat(a, b)) \
    X(BIN, ip, op_i8x16_sub_sat_u, wasm_u8x16_sub_sat(a, b)) \
    X(BIN, ip, op_i8x16_min_s, wasm_i8x16_min(a, b)) \
    X(BIN, ip, op_i8x16_min_u, wasm_u8x16_min(a, b)) \
    X(BIN, ip, op_i8x16_max_s, wasm_i8x16_max(a, b)) \
    X(BIN, ip, op_i8x16_max_u, wasm_u8x16_max(a, b)) \
    X(BIN, ip, op_i8x16_avgr_u, wasm_u8x16_avgr(a, b)) \
    X(BIN, ip, op_i8x16_eq, wasm_i8x16_eq(a, b)) \
    X(BIN, ip, op_i8x16_ne, wasm_i8x16_ne(a, b)) \
    X(BIN, ip, op_i8x16_lt_s, wasm_i8x16_lt(a, b)) \
    X(BIN, ip, op_i8x16_lt_u, wasm_u8x16_lt(a, b)) \
    X(BIN, ip, op_i8x16_gt_s, wasm_i8x16_gt(a, b)) \
    X(BIN, ip, op_i8x16_gt_u, wasm_u8x16_gt(a, b)) \
    X(BIN, ip, op_i8x16_le_s, wasm_i8x16_le(a, b)) \
    X(BIN, ip, op_i8x16_le_u, wasm_u8x16_le(a, b)) \
    X(BIN, ip, op_i8x16_ge_s, wasm_i8x16_ge(a, b)) \
    X(BIN, ip, op_i8x16_ge_u, wasm_u8x16_ge(a, b)) \
    X(UN, ip, op_i8x16_abs, wasm_i8x16_abs(a)) \
    X(UN, ip, op_i8x16_neg, wasm_i8x16_neg(a)) \
    X(UN, ip, op_i8x16_popcnt, wasm_i8x16_popcnt(a)) \
    X(UN, ip, op_i8x16_shl, wasm_i8x16_shl(a, c)) \
    X(UN, ip, op_i8x16_shr_s, wasm_i8x16_shr(a, c)) \
    X(UN, ip, op_i8x16_shr_u, wasm_u8x16_shr(a, c)) \
    X(SC, ip, op_i8x16_all_true, wasm_i8x16_all_true(a)) \
    X(SC, ip, op_i8x16_bitmask, wasm_i8x16_bitmask(a)) \
    X(BIN, ip, op_i8x16_narrow_i16x8_s, wasm_i8x16_narrow_i16x8(a, b)) \
    X(BIN, ip, op_i8x16_narrow_i16x8_u, wasm_u8x16_narrow_i16x8(a, b)) \
    X(BIN, ip, op_i8x16_swizzle, wasm_i8x16_swizzle(a, wasm_u8x16_min(b, wasm_u8x16_splat(0x13)))) \
    X(BIN, ip, op_i8x16_swizzle_raw, wasm_i8x16_swizzle(a, b)) \
    X(BIN, ip, op_i8x16_shuffle, wasm_i8x16_shuffle(a, b, 0, 17, 2, 19, 31, 30, 7, 7, 8, 24, 10, 26, 15, 0, 16, 5)) \
    X(BIN, ip, op_i16x8_shuffle, wasm_i16x8_shuffle(a, b, 7, 8, 1, 15, 3, 3, 12, 0)) \
    X(BIN, ip, op_i32x4_shuffle, wasm_i32x4_shuffle(a, b, 3, 4, 1, 6)) \
    X(BIN, ip, op_i64x2_shuffle, wasm_i64x2_shuffle(a, b, 1, 2)) \
    X(BIN, ip, op_i16x8_add, wasm_i16x8_add(a, b)) \
    X(BIN, ip, op_i16x8_sub, wasm_i16x8_sub(a, b)) \
    X(BIN, ip, op_i16x8_mul, wasm_i16x8_mul(a, b)) \
    X(BIN, ip, op_i16x8_add_sat_s, wasm_i16x8_add_sat(a, b)) \
    X(BIN, ip, op_i16x8_add_sat_u, wasm_u16x8_add_sat(a, b)) \
    X(BIN, ip, op_i16x8_sub_sat_s, wasm_i16x8_sub_sat(a, b)) \
    X(BIN, ip, op_i16x8_sub_sat_u, wasm_u16x8_sub_sat(a, b)) \
    X(BIN, ip, op_i16x8_min_s, wasm_i16x8_min(a, b)) \
    X(BIN, ip, op_i16x8_min_u, wasm_u16x8_min(a, b)) \
    X(BIN, ip, op_i16x8_max_s, wasm_i16x8_max(a, b)) \
    X(BIN, ip, op_i16x8_max_u, wasm_u16x8_max(a, b)) \
    X(BIN, ip, op_i16x8_avgr_u, wasm_u16x8_avgr(a, b)) \
    X(BIN, ip, op_i16x8_q15mulr_sat_s, wasm_i16x8_q15mulr_sat(a, b)) \
    X(BIN, ip, op_i16x8_eq, wasm_i16x8_eq(a, b)) \
    X(BIN, ip, op_i16x8_ne, wasm_i16x8_ne(a, b)) \
    X(BIN, ip, op_i16x8_lt_s, wasm_i16x8_lt(a, b)) \
    X(BIN, ip, op_i16x8_lt_u, wasm_u16x8_lt(a, b)) \
    X(BIN, ip, op_i16x8_gt_s, wasm_i16x8_gt(a, b)) \
    X(BIN, ip, op_i16x8_gt_u, wasm_u16x8_gt(a, b)) \
    X(BIN, ip, op_i16x8_le_s, wasm_i16x8_le(a, b)) \
    X(BIN, ip, op_i16x8_le_u, wasm_u16x8_le(a, b)) \
    X(BIN, ip, op_i16x8_ge_s, wasm_i16x8_ge(a, b)) \
    X(BIN, ip, op_i16x8_ge_u, wasm_u16x8_ge(a, b)) \
    X(BIN, ip, op_i16x8_extmul_low_s, wasm_i16x8_extmul_low_i8x16(a, b)) \
    X(BIN, ip, op_i16x8_extmul_high_s, wasm_i16x8_extmul_high_i8x16(a, b)) \
    X(BIN, ip, op_i16x8_extmul_low_u, wasm_u16x8_extmul_low_u8x16(a, b)) \
    X(BIN, ip, op_i16x8_extmul_high_u, wasm_u16x8_extmul_high_u8x16(a, b)) \
    X(BIN, ip, op_i16x8_narrow_i32x4_s, wasm_i16x8_narrow_i32x4(a, b)) \
    X(BIN, ip, op_i16x8_narrow_i32x4_u, wasm_u16x8_narrow_i32x4(a, b)) \
    X(UN, ip, op_i16x8_abs, wasm_i16x8_abs(a)) \
    X(UN, ip, op_i16x8_neg, wasm_i16x8_neg(a)) \
    X(UN, ip, op_i16x8_shl, wasm_i16x8_shl(a, c)) \
    X(UN, ip, op_i16x8_shr_s, wasm_i16x8_shr(a, c)) \
    X(UN, ip, op_i16x8_shr_u, wasm_u16x8_shr(a, c)) \
    X(UN, ip, op_i16x8_extend_low_s, wasm_i16x8_extend_low_i8x16(a)) \
    X(UN, ip, op_i16x8_extend_high_s, wasm_i16x8_extend_high_i8x16(a)) \
    X(UN, ip, op_i16x8_extend_low_u, wasm_u16x8_extend_low_u8x16(a)) \
    X(UN, ip, op_i16x8_extend_high_u, wasm_u16x8_extend_high_u8x16(a)) \
    X(UN, ip, op_i16x8_extadd_pairwise_s, wasm_i16x8_extadd_pairwise_i8x16(a)) \
    X(UN, ip, op_i16x8_extadd_pairwise_u, wasm_u16x8_extadd_pairwise_u8x16(a)) \
    X(SC, ip, op_i16x8_all_true, wasm_i16x8_all_true(a)) \
    X(SC, ip, op_i16x8_bitmask, wasm_i16x8_bitmask(a)) \
    X(BIN, ip, op_i32x4_add, wasm_i32x4_add(a, b)) \
    X(BIN, ip, op_i32x4_sub, wasm_i32x4_sub(a, b)) \
    X(BIN, ip, op_i32x4_mul, wasm_i32x4_mul(a, b)) \
    X(BIN, ip, op_i32x4_min_s, wasm_i32x4_min(a, b)) \
    X(BIN, ip, op_i32x4_min_u, wasm_u32x4_min(a, b)) \
    X(BIN, ip, op_i32x4_max_s, wasm_i32x4_max(a, b)) \
    X(BIN, ip, op_i32x4_max_u, wasm_u32x4_max(a, b)) \
    X(BIN, ip, op_i32x4_dot_i16x8_s, wasm_i32x4_dot_i16x8(a, b)) \
    X(BIN, ip, op_i32x4_eq, wasm_i32x4_eq(a, b)) \
    X(BIN, ip, op_i32x4_ne, wasm_i32x4_ne(a, b)) \
    X(BIN, ip, op_i32x4_lt_s, wasm_i32x4_lt(a, b)) \
    X(BIN, ip, op_i32x4_lt_u, wasm_u32x4_lt(a, b)) \
    X(BIN, ip, op_i32x4_gt_s, wasm_i32x4_gt(a, b)) \
    X(BIN, ip, op_i32x4_gt_u, wasm_u32x4_gt(a, b)) \
    X(BIN, ip, op_i32x4_le_s, wasm_i32x4_le(a, b)) \
    X(BIN, ip, op_i32x4_le_u, wasm_u32x4_le(a, b)) \
    X(BIN, ip, op_i32x4_ge_s, wasm_i32x4_ge(a, b)) \
    X(BIN, ip, op_i32x4_ge_u, wasm_u32x4_ge(a, b)) \
    X(BIN, ip, op_i32x4_extmul_low_s, wasm_i32x4_extmul_low_i16x8(a, b)) \
    X(BIN, ip, op_i32x4_extmul_high_s, wasm_i32x4_extmul_high_i16x8(a, b)) \
    X(BIN, ip, op_i32x4_extmul_low_u, wasm_u32x4_extmul_low_u16x8(a, b)) \
    X(BIN, ip, op_i32x4_extmul_high_u, wasm_u32x4_extmul_high_u16x8(a, b)) \
    X(UN, ip, op_i32x4_abs, wasm_i32x4_abs(a)) \
    X(UN, ip, op_i32x4_neg, wasm_i32x4_neg(a)) \
    X(UN, ip, op_i32x4_shl, wasm_i32x4_shl(a, c)) \
    X(UN, ip, op_i32x4_shr_s, wasm_i32x4_shr(a, c)) \
    X(UN, ip, op_i32x4_shr_u, wasm_u32x4_shr(a, c)) \
    X(UN, ip, op_i32x4_extend_low_s, wasm_i32x4_extend_low_i16x8(a)) \
    X(UN, ip, op_i32x4_extend_high_s, wasm_i32x4_extend_high_i16x8(a)) \
    X(UN, ip, op_i32x4_extend_low_u, wasm_u32x4_extend_low_u16x8(a)) \
    X(UN, ip, op_i32x4_extend_high_u, wasm_u32x4_extend_high_u16x8(a)) \
    X(UN, ip, op_i32x4_extadd_pairwise_s, wasm_i32x4_extadd_pairwise_i16x8(a)) \
    X(UN, ip, op_i32x4_extadd_pairwise_u, wasm_u32x4_extadd_pairwise_u16x8(a)) \
    X(SC, ip, op_i32x4_all_true, wasm_i32x4_all_true(a)) \
    X(SC, ip, op_i32x4_bitmask, wasm_i32x4_bitmask(a)) \
    X(BIN, ip, op_i64x2_add, wasm_i64x2_add(a, b)) \
    X(BIN, ip, op_i64x2_sub, wasm_i64x2_sub(a, b)) \
    X(BIN, ip, op_i64x2_mul, wasm_i64x2_mul(a, b)) \
    X(BIN, ip, op_i64x2_eq, wasm_i64x2_eq(a, b)) \
    X(BIN, ip, op_i64x2_ne, wasm_i64x2_ne(a, b)) \
    X(BIN, ip, op_i64x2_lt_s, wasm_i64x2_lt(a, b)) \
    X(BIN, ip, op_i64x2_gt_s, wasm_i64x2_gt(a, b)) \
    X(BIN, ip, op_i64x2_le_s, wasm_i64x2_le(a, b)) \
    X(BIN, ip, op_i64x2_ge_s, wasm_i64x2_ge(a, b)) \
    X(BIN, ip, op_i64x2_extmul_low_s, wasm_i64x2_extmul_low_i32x4(a, b)) \
    X(BIN, ip, op_i64x2_extmul_high_s, wasm_i64x2_extmul_high_i32x4(a, b)) \
    X(BIN, ip, op_i64x2_extmul_low_u, wasm_u64x2_extmul_low_u32x4(a, b)) \
    X(BIN, ip, op_i64x2_extmul_high_u, wasm_u64x2_extmul_high_u32x4(a, b)) \
    X(UN, ip, op_i64x2_abs, wasm_i64x2_abs(a)) \
    X(UN, ip, op_i64x2_neg, wasm_i64x2_neg(a)) \
    X(UN, ip, op_i64x2_shl, wasm_i64x2_shl(a, c)) \
    X(UN, ip, op_i64x2_shr_s, wasm_i64x2_shr(a, c)) \
    X(UN, ip, op_i64x2_shr_u, wasm_u64x2_shr(a, c)) \
    X(UN, ip, op_i64x2_extend_low_s, wasm_i64x2_extend_low_i32x4(a)) \
    X(UN, ip, op_i64x2_extend_high_s, wasm_i64x2_extend_high_i32x4(a)) \
    X(UN, ip, op_i64x2_extend_low_u, wasm_u64x2_extend_low_u32x4(a)) \
    X(UN, ip, op_i64x2_extend_high_u, wasm_u64x2_extend_high_u32x4(a)) \
    X(SC, ip, op_i64x2_all_true, wasm_i64x2_all_true(a)) \
    X(SC, ip, op_i64x2_bitmask, wasm_i64x2_bitmask(a)) \
    X(SC, ip, op_i8x16_extract_lane_s, (int64_t)wasm_i8x16_extract_lane(a, 13) + wasm_i8x16_extract_lane(a, 2)) \
    X(SC, ip, op_i8x16_extract_lane_u, wasm_u8x16_extract_lane(a, 15) * 1000u + wasm_u8x16_extract_lane(a, 0)) \
    X(SC, ip, op_i16x8_extract_lane_s, (int64_t)wasm_i16x8_extract_lane(a, 7) * 3 + wasm_i16x8_extract_lane(a, 1)) \
    X(SC, ip, op_i16x8_extract_lane_u, wasm_u16x8_extract_lane(a, 4) * 70000ull + wasm_u16x8_extract_lane(a, 6)) \
    X(SC, ip, op_i32x4_extract_lane, (int64_t)wasm_i32x4_extract_lane(a, 3) - wasm_i32x4_extract_lane(a, 1)) \
    X(SC, ip, op_i64x2_extract_lane, wasm_i64x2_extract_lane(a, 1) ^ (wasm_i64x2_extract_lane(a, 0) << 1)) \
    X(UN, ip, op_i8x16_replace_lane, wasm_i8x16_replace_lane(a, 11, (int8_t)c)) \
    X(UN, ip, op_i16x8_replace_lane, wasm_i16x8_replace_lane(a, 5, (int16_t)(c * 999))) \
    X(UN, ip, op_i32x4_replace_lane, wasm_i32x4_replace_lane(a, 2, (int32_t)(c * 123456789u))) \
    X(UN, ip, op_i64x2_replace_lane, wasm_i64x2_replace_lane(a, 1, (int64_t)c * -987654321987ll)) \
    X(UN, ip, op_i8x16_splat, wasm_i8x16_splat((int8_t)wasm_i8x16_extract_lane(a, 3))) \
    X(UN, ip, op_i16x8_splat, wasm_i16x8_splat((int16_t)(c * 4099))) \
    X(UN, ip, op_i32x4_splat, wasm_i32x4_splat(wasm_i32x4_extract_lane(a, 0))) \
    X(UN, ip, op_i64x2_splat, wasm_i64x2_splat(wasm_i64x2_extract_lane(a, 1))) \
    X(BIN, fp, op_f32x4_add, canon_f32(wasm_f32x4_add(a, b))) \
    X(BIN, fp, op_f32x4_sub, canon_f32(wasm_f32x4_sub(a, b))) \
    X(BIN, fp, op_f32x4_mul, canon_f32(wasm_f32x4_mul(a, b))) \
    X(BIN, fp, op_f32x4_div, canon_f32(wasm_f32x4_div(a, b))) \
    X(BIN, fp, op_f32x4_min, canon_f32(wasm_f32x4_min(a, b))) \
    X(BIN, fp, op_f32x4_max, canon_f32(wasm_f32x4_max(a, b))) \
    X(BIN, fp, op_f32x4_pmin, wasm_f32x4_pmin(a, b)) \
    X(BIN, fp, op_f32x4_pmax, wasm_f32x4_pmax(a, b)) \
    X(BIN, fp, op_f32x4_eq, wasm_f32x4_eq(a, b)) \
    X(BIN, fp, op_f32x4_ne, wasm_f32x4_ne(a, b)) \
    X(BIN, fp, op_f32x4_lt, wasm_f32x4_lt(a, b)) \
    X(BIN, fp, op_f32x4_gt, wasm_f32x4_gt(a, b)) \
    X(BIN, fp, op_f32x4_le, wasm_f32x4_le(a, b)) \
    X(BIN, fp, op_f32x4_ge, wasm_f32x4_ge(a, b)) \
    X(UN, fp, op_f32x4_abs, wasm_f32x4_abs(a)) \
    X(UN, fp, op_f32x4_neg, wasm_f32x4_neg(a)) \
    X(UN, fp, op_f32x4_sqrt, canon_f32(wasm_f32x4_sqrt(a))) \
    X(UN, fp, op_f32x4_ceil, canon_f32(wasm_f32x4_ceil(a))) \
    X(UN, fp, op_f32x4_floor, canon_f32(wasm_f32x4_floor(a))) \
    X(UN, fp, op_f32x4_trunc, canon_f32(wasm_f32x4_trunc(a))) \
    X(UN, fp, op_f32x4_nearest, canon_f32(wasm_f32x4_nearest(a))) \
    X(UN, fp, op_i32x4_trunc_sat_f32x4_s, wasm_i32x4_trunc_sat_f32x4(a)) \
    X(UN, fp, op_i32x4_trunc_sat_f32x4_u, wasm_u32x4_trunc_sat_f32x4(a)) \
    X(UN, ip, op_f32x4_convert_i32x4_s, wasm_f32x4_convert_i32x4(a)) \
    X(UN, ip, op_f32x4_convert_i32x4_u, wasm_f32x4_convert_u32x4(a)) \
    X(UN, fp, op_f64x2_promote_low_f32x4, canon_f64(wasm_f64x2_promote_low_f32x4(a))) \
    X(UN, fp, op_f32x4_extract_lane, canon_f32(wasm_f32x4_splat(wasm_f32x4_extract_lane(a, 2)))) \
    X(UN, fp, op_f32x4_replace_lane, wasm_f32x4_replace_lane(a, 1, (float)c * -0.75f)) \
    X(UN, fp, op_f32x4_splat, wasm_f32x4_splat((float)c / 3.0f)) \
    X(BIN, dp, op_f64x2_add, canon_f64(wasm_f64x2_add(a, b))) \
    X(BIN, dp, op_f64x2_sub, canon_f64(wasm_f64x2_sub(a, b))) \
    X(BIN, dp, op_f64x2_mul, canon_f64(wasm_f64x2_mul(a, b))) \
    X(BIN, dp, op_f64x2_div, canon_f64(wasm_f64x2_div(a, b))) \
    X(BIN, dp, op_f64x2_min, canon_f64(wasm_f64x2_min(a, b))) \
    X(BIN, dp, op_f64x2_max, canon_f64(wasm_f64x2_max(a, b))) \
    X(BIN, dp, op_f64x2_pmin, wasm_f64x2_pmin(a, b)) \
    X(BIN, dp, op_f64x2_pmax, wasm_f64x2_pmax(a, b)) \
    X(BIN, dp, op_f64x2_eq, wasm_f64x2_eq(a, b)) \
    X(BIN, dp, op_f64x2_ne, wasm_f64x2_ne(a, b)) \
    X(BIN, dp, op_f64x2_lt, wasm_f64x2_lt(a, b)) \
    X(BIN, dp, op_f64x2_gt, wasm_f64x2_gt(a, b)) \
    X(BIN, dp, op_f64x2_le, wasm_f64x2_le(a, b)) \
    X(BIN, dp, op_f64x2_ge, wasm_f64x2_ge(a, b)) \
    X(UN, dp, op_f64x2_abs, wasm_f64x2_abs(a)) \
    X(UN, dp, op_f64x2_neg, wasm_f64x2_neg(a)) \
    X(UN, dp, op_f64x2_sqrt, canon_f64(wasm_f64x2_sqrt(a))) \
    X(UN, dp, op_f64x2_ceil, canon_f64(wasm_f64x2_ceil(a))) \
    X(UN, dp, op_f64x2_floor, canon_f64(wasm_f64x2_floor(a))) \
    X(UN, dp, op_f64x2_trunc, canon_f64(wasm_f64x2_trunc(a))) \
    X(UN, dp, op_f64x2_nearest, canon_f64(wasm_f64x2_nearest(a))) \
    X(UN, dp, op_i32x4_trunc_sat_f64x2_s_zero, wasm_i32x4_trunc_sat_f64x2_zero(a)) \
    X(UN, dp, op_i32x4_trunc_sat_f64x2_u_zero, wasm_u32x4_trunc_sat_f64x2_zero(a)) \
    X(UN, ip, op_f64x2_convert_low_i32x4_s, wasm_f64x2_convert_low_i32x4(a)) \
    X(UN, ip, op_f64x2_convert_low_i32x4_u, wasm_f64x2_convert_low_u32x4(a)) \
    X(UN, dp, op_f32x4_demote_f64x2_zero, canon_f32(wasm_f32x4_demote_f64x2_zero(a))) \
    X(UN, dp, op_f64x2_extract_lane, canon_f64(wasm_f64x2_splat(wasm_f64x2_extract_lane(a, 1)))) \
    X(UN, dp, op_f64x2_replace_lane, wasm_f64x2_replace_lane(a, 0, (double)c * 1e-3)) \
    X(UN, dp, op_f64x2_splat, wasm_f64x2_splat((double)c / 7.0))

#define DEFINE(kind, pool, id, expr) kind##_DEF(id, expr)
OPS(DEFINE)
#define ENTRY(kind, pool, id, expr) {&#id[3], kind, pool, kind##_INIT(id)},
static const struct op ops[] = {OPS(ENTRY)};

static void part2_ops(void) {
    printf("== intrinsics (%d)\n", (int)(sizeof ops / sizeof ops[0]));
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const struct op *op = &ops[k];
        uint64_t h = FNV0;
        for (int i = 0; i < NP; i++) {
            v128_t a = op->pool[i];
            if (op->kind == BIN)
                for (int j = 0; j < NP; j++) h = hv(h, op->fn.bin(a, op->pool[j]));
            else if (op->kind == UN)
                h = hv(h, op->fn.un(a, (uint32_t)(i * 7 + 3)));
            else
                h = fnv(h, op->fn.sc(a));
        }
        report(op->name, h);
    }
}

static void part2_lanes(void) {
    printf("== lanes in the clear\n");
    /* A few lanes in the clear, with the edge cases named in them. */
    v128_t x = wasm_f32x4_make(-0.0f, 0.0f, -2.5f, 2.5f);
    v128_t y = wasm_f32x4_make(0.0f, -0.0f, -1.5f, 0.5f);
    x = wasm_f32x4_add(x, wasm_f32x4_splat((float)(rng_state & 0) * 1.0f)); /* keep clang from folding */
    pvec("min(-0,0|0,-0|..)", wasm_f32x4_min(x, y));
    pvec("max(-0,0|0,-0|..)", wasm_f32x4_max(x, y));
    pvec("pmin(-0,0|0,-0|..)", wasm_f32x4_pmin(x, y));
    pvec("pmax(-0,0|0,-0|..)", wasm_f32x4_pmax(x, y));
    pvec("nearest(x)", wasm_f32x4_nearest(x));
    pvec("nearest(y)", wasm_f32x4_nearest(y));
    pvec("ceil(y)", wasm_f32x4_ceil(y));
    pvec("floor(y)", wasm_f32x4_floor(y));
    v128_t nanv = fp[0];
    nanv = wasm_f32x4_replace_lane(nanv, 0, __builtin_nanf(""));
    nanv = wasm_f32x4_replace_lane(nanv, 1, -3.75f);
    nanv = wasm_f32x4_replace_lane(nanv, 2, 3e9f);
    nanv = wasm_f32x4_replace_lane(nanv, 3, -3e9f);
    pvec("trunc_sat_s(nan,..)", wasm_i32x4_trunc_sat_f32x4(nanv));
    pvec("trunc_sat_u(nan,..)", wasm_u32x4_trunc_sat_f32x4(nanv));
    pvec("pmin(nan,..|1)", wasm_f32x4_pmin(nanv, wasm_f32x4_splat(1.0f)));
    pvec("pmax(1|nan,..)", wasm_f32x4_pmax(wasm_f32x4_splat(1.0f), nanv));
    pf32("lane0 min(nan,1)", wasm_f32x4_extract_lane(wasm_f32x4_min(nanv, wasm_f32x4_splat(1.0f)), 0));
    pf32("lane1 sqrt(-3.75)", wasm_f32x4_extract_lane(wasm_f32x4_sqrt(nanv), 1));
    pf32("lane2 3e9/7", wasm_f32x4_extract_lane(wasm_f32x4_div(nanv, wasm_f32x4_splat(7.0f)), 2));
}

static void part2_mem(void) {
    printf("== loads and stores\n");
    static uint8_t buf[256];
    for (int i = 0; i < 256; i++) buf[i] = (uint8_t)(rng() >> 17);
    uint64_t h = FNV0;
    for (int off = 0; off < 96; off += 5) {
        const uint8_t *p = buf + off;
        h = hv(h, wasm_v128_load(p));
        h = hv(h, wasm_v128_load8_splat(p));
        h = hv(h, wasm_v128_load16_splat(p + 1));
        h = hv(h, wasm_v128_load32_splat(p + 2));
        h = hv(h, wasm_v128_load64_splat(p + 3));
        h = hv(h, wasm_v128_load32_zero(p + 4));
        h = hv(h, wasm_v128_load64_zero(p + 5));
        h = hv(h, wasm_i16x8_load8x8(p + 6));
        h = hv(h, wasm_u16x8_load8x8(p + 7));
        h = hv(h, wasm_i32x4_load16x4(p + 8));
        h = hv(h, wasm_u32x4_load16x4(p + 9));
        h = hv(h, wasm_i64x2_load32x2(p + 10));
        h = hv(h, wasm_u64x2_load32x2(p + 11));
        v128_t v = ip[off % NP];
        h = hv(h, wasm_v128_load8_lane(p + 12, v, 9));
        h = hv(h, wasm_v128_load16_lane(p + 13, v, 3));
        h = hv(h, wasm_v128_load32_lane(p + 14, v, 2));
        h = hv(h, wasm_v128_load64_lane(p + 15, v, 1));
        h = hv(h, wasm_v128_load8_lane(p + 16, v, 0));
        h = hv(h, wasm_v128_load32_lane(p + 17, v, 0));
        h = hv(h, wasm_v128_load64_lane(p + 18, v, 0));
    }
    report("loads", h);
    static uint8_t dst[160];
    memset(dst, 0xa5, sizeof dst);
    for (int k = 0; k < NP; k++) {
        v128_t v = ip[k];
        uint8_t *p = dst + (k * 5) % 128;
        switch (k % 8) {
        case 0: wasm_v128_store(p, v); break;
        case 1: wasm_v128_store8_lane(p, v, 14); break;
        case 2: wasm_v128_store16_lane(p, v, 5); break;
        case 3: wasm_v128_store32_lane(p, v, 3); break;
        case 4: wasm_v128_store64_lane(p, v, 1); break;
        case 5: wasm_v128_store8_lane(p, v, 0); break;
        case 6: wasm_v128_store32_lane(p, v, 0); break;
        default: wasm_v128_store64_lane(p, v, 0); break;
        }
    }
    report("stores", hash_bytes(dst, sizeof dst));
    pvec("dst[0..16]", wasm_v128_load(dst));
    pvec("dst[64..80]", wasm_v128_load(dst + 64));
}

/* A small SIMD kernel by hand: RGBA -> grey with u8 widen, i16 multiply-add, narrow. */
static void part2_kernel(void) {
    printf("== hand-written kernels\n");
    static uint8_t rgba[64 * 4], grey[64];
    for (int i = 0; i < (int)sizeof rgba; i++) rgba[i] = (uint8_t)(rng() >> 21);
    const v128_t wr = wasm_i16x8_splat(77), wg = wasm_i16x8_splat(150), wb = wasm_i16x8_splat(29);
    for (int i = 0; i < 64; i += 4) {
        v128_t px = wasm_v128_load(rgba + 4 * i);                   /* 4 pixels */
        v128_t r = wasm_i8x16_shuffle(px, px, 0, 4, 8, 12, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0);
        v128_t g = wasm_i8x16_shuffle(px, px, 1, 5, 9, 13, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
        v128_t b = wasm_i8x16_shuffle(px, px, 2, 6, 10, 14, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
        v128_t acc = wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(r), wr);
        acc = wasm_i16x8_add(acc, wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(g), wg));
        acc = wasm_i16x8_add(acc, wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(b), wb));
        acc = wasm_u16x8_shr(wasm_i16x8_add(acc, wasm_i16x8_splat(128)), 8);
        v128_t n = wasm_u8x16_narrow_i16x8(acc, acc);
        wasm_v128_store32_lane(grey + i, n, 0);
    }
    report("grey", hash_bytes(grey, sizeof grey));
    /* Byte search with eq + bitmask + ctz, as a strchr would. */
    uint32_t found = 0, positions = 0;
    for (int i = 0; i + 16 <= (int)sizeof text; i += 16) {
        v128_t chunk = wasm_v128_load(text + i);
        uint32_t m = wasm_i8x16_bitmask(wasm_i8x16_eq(chunk, wasm_i8x16_splat('N')));
        while (m) {
            positions = positions * 31 + (uint32_t)(i + __builtin_ctz(m));
            found++;
            m &= m - 1;
        }
        if (!wasm_i8x16_all_true(wasm_i8x16_ne(chunk, wasm_i8x16_splat('\n')))) positions ^= (uint32_t)i;
    }
    printf("search N: %u hits, %08x\n", found, positions);
    /* A 16-lane dot product of int16 with the dot instruction, horizontally summed by shuffles. */
    v128_t acc = wasm_i32x4_splat(0);
    for (int i = 0; i + 8 <= N; i += 8)
        acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_v128_load(a16 + i), wasm_v128_load(b16 + i)));
    acc = wasm_i32x4_add(acc, wasm_i32x4_shuffle(acc, acc, 2, 3, 0, 1));
    acc = wasm_i32x4_add(acc, wasm_i32x4_shuffle(acc, acc, 1, 0, 3, 2));
    printf("dot by i32x4.dot_i16x8_s: %d (scalar %d)\n", wasm_i32x4_extract_lane(acc, 0), dot_i16(a16, b16, N / 8 * 8));
    /* A table lookup of nibbles by swizzle (popcount the hard way) against i8x16.popcnt. */
    const v128_t table = wasm_i8x16_make(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    uint32_t pc1 = 0, pc2 = 0;
    for (int i = 0; i + 16 <= N; i += 16) {
        v128_t v = wasm_v128_load(a8 + i);
        v128_t lo = wasm_i8x16_swizzle(table, wasm_v128_and(v, wasm_i8x16_splat(15)));
        v128_t hi = wasm_i8x16_swizzle(table, wasm_u8x16_shr(v, 4));
        v128_t s = wasm_u16x8_extadd_pairwise_u8x16(wasm_i8x16_add(lo, hi));
        s = wasm_u32x4_extadd_pairwise_u16x8(s);
        pc1 += (uint32_t)(wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) + wasm_i32x4_extract_lane(s, 2)
                          + wasm_i32x4_extract_lane(s, 3));
        v128_t p = wasm_i8x16_popcnt(v);
        p = wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(p));
        pc2 += (uint32_t)wasm_i64x2_extract_lane(wasm_i64x2_add(wasm_u64x2_extend_low_u32x4(p),
                                                                 wasm_u64x2_extend_high_u32x4(p)), 0);
        pc2 += (uint32_t)wasm_i64x2_extract_lane(wasm_i64x2_add(wasm_u64x2_extend_low_u32x4(p),
                                                                 wasm_u64x2_extend_high_u32x4(p)), 1);
    }
    printf("popcount swizzle %u popcnt %u\n", pc1, pc2);
    /* Q15 fixed-point filter. */
    v128_t q = wasm_i16x8_splat(0);
    const v128_t coef = wasm_i16x8_make(16384, -16384, 32767, -32768, 1, -1, 12345, -23456);
    for (int i = 0; i + 8 <= N; i += 8)
        q = wasm_i16x8_add_sat(q, wasm_i16x8_q15mulr_sat(wasm_v128_load(a16 + i), coef));
    pvec("q15 filter", q);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 12345;
    rng_state = seed * 0x2545F4914F6CDD1Dull + 1;
    printf("c_simd seed %llu\n", (unsigned long long)seed);
    fill_arrays();
    part1();
    build_pools();
    part2_ops();
    part2_lanes();
    part2_mem();
    part2_kernel();
    return 0;
}
