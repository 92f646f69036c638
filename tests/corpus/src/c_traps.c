/* Traps: selected by argv[1]. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "trap";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "trap") == 0) {
        __builtin_trap();
    } else if (strcmp(mode, "oob") == 0) {
        volatile uintptr_t addr = 0xfffffff0u;  /* far past the end of memory */
        int *p = (int *)addr;
        printf("value %d\n", *p);
    } else if (strcmp(mode, "div0") == 0) {
        volatile int zero = 0;
        printf("value %d\n", 10 / zero);
    } else if (strcmp(mode, "overflow") == 0) {
        volatile int a = INT32_MIN, b = -1;
        printf("value %d\n", a / b);
    } else if (strcmp(mode, "abort") == 0) {
        abort();
    } else if (strcmp(mode, "fcvt") == 0) {
        volatile double big = 1e30;
        printf("value %d\n", (int)big);
    }
    printf("no trap\n");
    return 0;
}
