/* exit(3) from a nested call after buffered output: stdio must be flushed. */
#include <stdio.h>
#include <stdlib.h>

static void finish(int depth) {
    if (depth == 0) {
        printf("about to exit with 3");  /* no newline: only exit() flushes it */
        fprintf(stderr, "stderr before exit\n");
        exit(3);
    }
    finish(depth - 1);
    printf("never printed\n");
}

static void on_exit_handler(void) { printf("\natexit handler ran\n"); }

int main(void) {
    atexit(on_exit_handler);
    printf("start\n");
    finish(5);
    return 0;
}
