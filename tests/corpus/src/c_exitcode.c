/* Batch-friendly: exit status and output depend on argv[1]. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    unsigned long long x = (unsigned long long)n * 0x9E3779B97F4A7C15ull;
    long steps = 0;
    for (long v = n + 1; v != 1; steps++) v = (v & 1) ? 3 * v + 1 : v / 2;
    printf("n=%ld hash=%016llx collatz_steps=%ld\n", n, x, steps);
    if (n % 7 == 3) {
        fprintf(stderr, "instance %ld fails\n", n);
        exit((int)(n % 5) + 1);
    }
    return 0;
}
