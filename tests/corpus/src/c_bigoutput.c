/* Many lines of output through the buffered stdio path. */
#include <stdio.h>

int main(int argc, char **argv) {
    int n = 20000;
    if (argc > 1) sscanf(argv[1], "%d", &n);
    unsigned h = 1;
    for (int i = 0; i < n; i++) {
        h = h * 1664525u + 1013904223u;
        printf("%6d %08x %s\n", i, h, (h & 1) ? "odd" : "even");
    }
    return 0;
}
