/* Returning a non-zero status from main; output on both streams. */
#include <stdio.h>

int main(int argc, char **argv) {
    int code = 7;
    for (int i = 0; i < 3; i++) {
        printf("out %d\n", i);
        fprintf(stderr, "err %d\n", i);
    }
    if (argc > 1) code = argv[1][0] - '0';
    printf("returning %d\n", code);
    return code;
}
