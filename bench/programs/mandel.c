/* f64 arithmetic: the Mandelbrot set on a small grid, escape-time iteration per pixel. The window
 * moves a little with the seed. The checksum includes the bits of the final z of every pixel, so
 * any difference in rounding (a fused multiply-add, a flushed subnormal) shows. */
#include "common.h"

#define W 128
#define H 96
#define MAXIT 256

EXPORT i64 run(i32 seed) {
    u32 s = (u32)seed;
    double x0 = -2.2 + (double)(s % 101u) * 1e-3;
    double y0 = -1.2 + (double)((s / 101u) % 103u) * 1e-3;
    double dx = 3.0 / W, dy = 2.4 / H;
    u64 acc = 0;
    for (u32 py = 0; py < H; py++) {
        double ci = y0 + py * dy;
        for (u32 px = 0; px < W; px++) {
            double cr = x0 + px * dx;
            double zr = 0.0, zi = 0.0, zr2 = 0.0, zi2 = 0.0;
            u32 it = 0;
            while (it < MAXIT && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                it++;
            }
            acc = (acc ^ it) * 0x100000001B3ull;
            acc ^= f64_bits(zr) + 3 * f64_bits(zi);
        }
    }
    return (i64)acc;
}
