/* Interleaved stdout/stderr, unbuffered and buffered, puts/putchar/fwrite, then return 1. */
#include <stdio.h>
#include <string.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < 5; i++) {
        printf("stdout line %d\n", i);
        fprintf(stderr, "stderr line %d\n", i);
    }
    puts("puts adds a newline");
    putchar('x');
    putchar('\n');
    const char big[] = "0123456789abcdef";
    for (int i = 0; i < 300; i++) fwrite(big, 1, 16, stdout);
    putchar('\n');
    fputs("bye from stderr\n", stderr);
    return 1;
}
