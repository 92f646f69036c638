/* Reads input.txt and writes three result files: out/upper.txt (the text upper-cased),
   out/lines.txt (the lines in reverse order) and stats.txt (counts and a checksum). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void put(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fwrite(data, 1, len, f);
    fclose(f);
}

int main(void) {
    size_t len;
    char *text = slurp("input.txt", &len);
    if (mkdir("out", 0755) != 0) { perror("out"); return 1; }

    char *upper = malloc(len + 1);
    for (size_t k = 0; k < len; k++) upper[k] = (char)toupper((unsigned char)text[k]);
    put("out/upper.txt", upper, len);

    /* lines in reverse order: find each line's start, then copy them back to front */
    size_t *starts = malloc((len + 1) * sizeof *starts);
    size_t lines = 0;
    for (size_t k = 0; k < len; k++)
        if (k == 0 || text[k - 1] == '\n') starts[lines++] = k;
    char *rev = malloc(len + 1);
    size_t r = 0;
    for (size_t j = lines; j-- > 0;) {
        size_t stop = j + 1 < lines ? starts[j + 1] : len;
        size_t n = stop - starts[j];
        memcpy(rev + r, text + starts[j], n);
        r += n;
        if (n == 0 || rev[r - 1] != '\n') rev[r++] = '\n';
    }
    put("out/lines.txt", rev, r);

    unsigned counts[26] = {0};
    unsigned words = 0, in_word = 0;
    unsigned long sum = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)text[k];
        if (isalpha(c)) counts[tolower(c) - 'a']++;
        if (isspace(c)) in_word = 0; else if (!in_word) { in_word = 1; words++; }
        sum = sum * 31 + c;
    }
    FILE *s = fopen("stats.txt", "w");
    if (!s) { perror("stats.txt"); return 1; }
    fprintf(s, "bytes %zu\nlines %zu\nwords %u\nchecksum %08lx\n", len, lines, words, sum & 0xffffffffUL);
    for (int c = 0; c < 26; c++) if (counts[c]) fprintf(s, "%c %u\n", 'a' + c, counts[c]);
    fclose(s);
    printf("wrote 3 files for %zu bytes (%zu lines)\n", len, lines);
    return 0;
}
