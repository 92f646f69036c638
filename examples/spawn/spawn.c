/* A parent process that splits its input among children it starts on the GPU, waits for them and
 * combines what they print (include/wasmgpu.h: wasmgpu_spawn, wasmgpu_wait, wasmgpu_output).
 *
 *   gpu-run --max-children 1000 --dir . examples/spawn/spawn.wasm count input.txt 1000
 *
 * The parent (`count FILE N`) cuts FILE into N byte ranges and spawns `word FILE LO HI` for each; a child
 * opens FILE (the parent's preopened directory is its too), counts the words that start in [LO, HI) and
 * prints the count. The parent adds the children's counts, counts the whole file itself as a check, and
 * prints both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgpu.h"

static long file_size(FILE *f) {
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    return n;
}

static int space(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Words that start in [lo, hi): a non-space byte after a space, or at the start of the file. */
static long words(FILE *f, long lo, long hi) {
    int prev = ' ';
    if (lo > 0) {
        fseek(f, lo - 1, SEEK_SET);
        prev = fgetc(f);
    }
    long count = 0;
    for (long at = lo; at < hi; at++) {
        int c = fgetc(f);
        if (c == EOF) break;
        if (!space(c) && space(prev)) count++;
        prev = c;
    }
    return count;
}

static int child(const char *path, long lo, long hi) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 2; }
    printf("%ld\n", words(f, lo, hi));
    fclose(f);
    return 0;
}

static int parent(const char *path, int n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 2; }
    long size = file_size(f);
    int *kids = malloc(sizeof(int) * (size_t)n);
    char cmd[512];
    for (int k = 0; k < n; k++) {
        long lo = size * k / n, hi = size * (k + 1) / n;
        int len = snprintf(cmd, sizeof cmd, "spawn.wasm%cword%c%s%c%ld%c%ld%c", 0, 0, path, 0, lo, 0, hi, 0);
        kids[k] = wasmgpu_spawn(cmd, (uint32_t)len, "", 0);
        if (kids[k] < 0) { fprintf(stderr, "spawn %d failed: %d\n", k, kids[k]); return 1; }
    }
    long total = 0;
    for (int k = 0; k < n; k++) {
        int status = wasmgpu_wait(kids[k]);
        char out[64] = {0};
        int got = wasmgpu_output(kids[k], 0, out, sizeof out - 1);
        if (status != 0 || got <= 0) { fprintf(stderr, "child %d: status %d, %d bytes\n", k, status, got); return 1; }
        total += atol(out);
    }
    long whole = words(f, 0, size);
    printf("words=%ld children=%d check=%s\n", total, n, total == whole ? "ok" : "MISMATCH");
    fclose(f);
    free(kids);
    return total == whole ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "word") == 0) return child(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 4 && strcmp(argv[1], "count") == 0) return parent(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: spawn.wasm count FILE N\n");
    return 2;
}
