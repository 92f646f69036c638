/* Clocks and randomness exist and behave; only their properties are printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec r, m1, m2, res;
    int rc = clock_gettime(CLOCK_REALTIME, &r);
    printf("realtime rc=%d after 2020: %d nsec in range: %d\n", rc, r.tv_sec > 1577836800, r.tv_nsec >= 0 && r.tv_nsec < 1000000000);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    volatile unsigned spin = 0;
    for (int i = 0; i < 100000; i++) spin += i;
    clock_gettime(CLOCK_MONOTONIC, &m2);
    long long d = (m2.tv_sec - m1.tv_sec) * 1000000000LL + (m2.tv_nsec - m1.tv_nsec);
    printf("monotonic non-decreasing: %d\n", d >= 0);
    printf("clock_getres rc=%d positive: %d\n", clock_getres(CLOCK_MONOTONIC, &res), res.tv_sec > 0 || res.tv_nsec > 0);
    time_t t = time(NULL);
    printf("time() after 2020: %d\n", t > 1577836800);
    unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    printf("getentropy rc=%d\n", getentropy(buf, sizeof buf));
    int nonzero = 0, distinct = 0;
    int seen[256] = {0};
    for (int i = 0; i < 64; i++) { nonzero += buf[i] != 0; if (!seen[buf[i]]++) distinct++; }
    printf("random bytes look random: %d\n", nonzero > 32 && distinct > 20);
    unsigned char a[16], b[16];
    getentropy(a, 16);
    getentropy(b, 16);
    printf("two draws differ: %d\n", memcmp(a, b, 16) != 0);
    struct timespec sl = {0, 1000000};
    printf("nanosleep rc=%d\n", nanosleep(&sl, NULL));
    return 0;
}
