/* printf of tricky floating-point values: rounding, subnormals, specials.
   NaNs are constants: the sign of a NaN computed by arithmetic is not deterministic in wasm. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>

static double from_bits(uint64_t b) { double d; memcpy(&d, &b, sizeof d); return d; }

int main(void) {
    volatile double zero = 0.0;
    double vals[] = {
        0.0, -0.0, 0.1, 0.5, 1.5, 2.5, -2.5, 1.0 / 3.0, 2.0 / 3.0, 123456789.125,
        1e21, 1e22, 1e-7, 9.999999e-5, 0.000123456, 1e300 * 10, DBL_MAX, DBL_MIN,
        from_bits(1), /* smallest subnormal */ from_bits(0x000fffffffffffffULL),
        NAN, -NAN, 1.0 / zero, -1.0 / zero, 4503599627370497.0,
        0.125, 1e15 + 0.3, 3.14159265358979, -1234.5678e-10, 5e-324 * 3,
    };
    int n = (int)(sizeof vals / sizeof vals[0]);
    for (int i = 0; i < n; i++) {
        double v = vals[i];
        printf("%2d: %f | %.3f | %.0f | %g | %.10g | %e | %.2e | %a\n",
               i, v, v, v, v, v, v, v, v);
    }
    /* float (promoted to double) and width/flags */
    float fs[] = {0.1f, 16777217.0f, FLT_MIN, FLT_MAX, 1e-45f, 3.4028235e38f};
    for (int i = 0; i < 6; i++)
        printf("f%d: [%+12.5f] [%-14g] [%014.4e] [%#g]\n", i, fs[i], fs[i], fs[i], fs[i]);
    /* libm on some values */
    printf("sqrt2=%.17g exp1=%.17g log10=%.17g sin1=%.17g pow=%.17g\n",
           sqrt(2.0), exp(1.0), log(10.0), sin(1.0), pow(2.0, 0.5));
    printf("fmod=%g floor=%g ceil=%g round=%g trunc=%g rint=%g\n",
           fmod(-7.5, 2.0), floor(-2.5), ceil(-2.5), round(-2.5), trunc(-2.7), rint(2.5));
    printf("isnan=%d isinf=%d signbit=%d fpclassify_sub=%d\n",
           isnan(zero / zero), isinf(1.0 / zero), signbit(-0.0) != 0,
           fpclassify(from_bits(1)) == FP_SUBNORMAL);
    /* conversions */
    printf("(int)-3.99=%d (long long)1e18=%lld (unsigned)3e9=%u\n",
           (int)-3.99, (long long)1e18, (unsigned)3e9);
    return 0;
}
