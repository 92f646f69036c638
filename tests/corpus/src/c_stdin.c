/* Read all of stdin: count lines, words, bytes; sum numbers; checksum. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    int c;
    while ((c = getchar()) != EOF) {
        if (len == cap) buf = realloc(buf, cap *= 2);
        buf[len++] = (char)c;
    }
    long lines = 0, words = 0, numsum = 0;
    int inword = 0;
    unsigned crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') lines++;
        if (isspace(ch)) inword = 0;
        else if (!inword) { inword = 1; words++; }
        crc ^= ch;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    crc ^= 0xffffffffu;
    for (size_t i = 0; i < len;) {
        if (isdigit((unsigned char)buf[i]) || (buf[i] == '-' && i + 1 < len && isdigit((unsigned char)buf[i + 1]))) {
            char *end;
            numsum += strtol(buf + i, &end, 10);
            i = (size_t)(end - buf);
        } else {
            i++;
        }
    }
    printf("lines=%ld words=%ld bytes=%zu numsum=%ld crc32=%08x\n", lines, words, len, numsum, crc);
    if (len && buf[len - 1] != '\n') printf("no trailing newline\n");
    fprintf(stderr, "read %zu bytes from stdin\n", len);
    return 0;
}
