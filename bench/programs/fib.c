/* Calls and recursion: naive recursive Fibonacci. Every seed computes the same six fib(n), in an
 * order that depends on the seed, so the total work is fixed while neighbouring lanes recurse to
 * different depths at any moment. */
#include "common.h"

FN NOINLINE u32 fib(u32 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

EXPORT i64 run(i32 seed) {
    u32 s = (u32)seed;
    u64 acc = 0x12345;
    for (u32 k = 0; k < 6; k++) {
        u32 n = 23 + (s + k) % 6;
        acc = acc * 1000003ull + fib(n) + (s ^ k);
    }
    return (i64)acc;
}
