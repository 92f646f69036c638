/* Deep non-tail recursion (depth 10000 and more) and mutual recursion. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static unsigned long long deep(int n, unsigned long long salt) {
    if (n == 0) return salt;
    unsigned long long below = deep(n - 1, salt * 6364136223846793005ull + 1442695040888963407ull);
    return (below ^ (unsigned long long)n) * 0x100000001b3ull + (salt >> 7);
}

__attribute__((noinline)) static int is_odd(int n);
__attribute__((noinline)) static int is_even(int n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) static int is_odd(int n) { return n == 0 ? 0 : is_even(n - 1); }

/* recursion that keeps an array on the shadow stack */
__attribute__((noinline)) static int framed(int n) {
    volatile int local[8];
    for (int i = 0; i < 8; i++) local[i] = n + i;
    if (n == 0) return local[3];
    int r = framed(n - 1);
    return r + local[n % 8] % 3;
}

static int ackermann(int m, int n) {
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 10000;
    printf("deep(%d) = %016llx\n", depth, deep(depth, 1));
    printf("deep(%d) = %016llx\n", depth / 2, deep(depth / 2, 2));
    printf("is_even(%d) = %d\n", depth + 1, is_even(depth + 1));
    printf("framed(%d) = %d\n", depth / 20, framed(depth / 20));  /* 64 KiB shadow stack */
    printf("ackermann(2, 300) = %d\n", ackermann(2, 300));
    printf("ackermann(3, 5) = %d\n", ackermann(3, 5));
    return 0;
}
