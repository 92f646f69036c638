/* build: -I ../../include */
/* Child processes (include/wasmgpu.h, gpu-run --max-children): argv[1] picks the test.
 *   tree D     a process that spawns two `tree D-1` children and prints 1 + what they print: the number of
 *              processes in a binary tree of depth D (children spawning grandchildren)
 *   statuses   children that exit 0, exit 7, return from main with 3 and trap: their statuses
 *   exhaust K  spawns K children that each print their index; how many spawns succeeded, the first
 *              failure's errno, and the outputs of those that ran
 *   env        a child with its own environment and arguments prints them back
 *   orphan     spawns a child that never ends, and returns: the child ends with it
 *   inherit    a child that spawns a grandchild and ends without waiting; a second child, maybe in the first
 *              one's place, tries every handle: none is its (the grandchild was the first child's)
 *   ids        instance_id and instance_count, in the instance and in a child
 *   sequential N   N children one after another, each checking that it starts from a fresh instance (its
 *              data, bss and heap as a new instance has them) before dirtying them: how many were fresh
 *   run PROG ARGS...   a child with argv PROG ARGS (another module where gpu-run's --child-module names PROG):
 *              its status and output
 *   dirs [DIRS FILE]...   for each pair, a child with DIRS as its own preopened directories (wasmgpu_spawn_in;
 *              "-" for none, "+" between two) that prints FILE: its status and output, or the spawn's errno
 *   files      reads data.txt, has a child overwrite it (`write data.txt new`) and reads it again, then writes
 *              mine.txt and has a child print it (`cat mine.txt`): "BEFORE|AFTER|CHILD'S OUTPUT"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgpu.h"

static int spawn(const char *a0, const char *a1, const char *a2, const char *env) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "c_spawn%c%s%c%s%c", 0, a0, 0, a1, 0);
    if (a2) n += snprintf(buf + n, sizeof buf - n, "%s%c", a2, 0);
    return wasmgpu_spawn(buf, (uint32_t)n, env ? env : "", env ? (uint32_t)strlen(env) + 1 : 0);
}

/* A spawned child's exit status and output ("STATUS OUTPUT"), or the spawn's errno. */
static void report(int child) {
    if (child < 0) { printf("%d\n", child); return; }
    char out[128] = {0};
    int status = wasmgpu_wait(child);
    wasmgpu_output(child, 0, out, sizeof out - 1);
    printf("%d %s\n", status, out);
}

static int marker = 12345;
static unsigned char bss[4096];

/* Whether this instance's data, bss and memory size are a fresh instance's (`pages`: a fresh one's, as
 * main saw it first thing); then dirties them, and grows the memory with a heap block. */
static int fresh(unsigned long pages) {
    int ok = marker == 12345 && __builtin_wasm_memory_size(0) == pages;
    for (int i = 0; i < (int)sizeof bss; i++) ok &= bss[i] == 0;
    unsigned char *heap = malloc(1 << 20);
    if (!heap) return 0;
    memset(bss, 0xAB, sizeof bss);
    memset(heap, 0xCD, 1 << 20);
    marker = 0;
    return ok;
}

static long output_number(int child) {
    char out[32] = {0};
    if (wasmgpu_output(child, 0, out, sizeof out - 1) <= 0) return -1;
    return atol(out);
}

static int tree(int depth) {
    long total = 1;
    if (depth > 0) {
        char d[16];
        snprintf(d, sizeof d, "%d", depth - 1);
        int a = spawn("tree", d, NULL, NULL), b = spawn("tree", d, NULL, NULL);
        if (a < 0 || b < 0) { printf("spawn failed\n"); return 1; }
        if (wasmgpu_wait(a) != 0 || wasmgpu_wait(b) != 0) { printf("child failed\n"); return 1; }
        total += output_number(a) + output_number(b);
    }
    printf("%ld\n", total);
    return 0;
}

int main(int argc, char **argv) {
    unsigned long pages = __builtin_wasm_memory_size(0);  /* before stdio's buffers take any */
    if (argc < 2) return 2;
    const char *what = argv[1];
    if (!strcmp(what, "tree")) return tree(argc > 2 ? atoi(argv[2]) : 3);
    if (!strcmp(what, "exit")) exit(atoi(argv[2]));
    if (!strcmp(what, "ret")) return atoi(argv[2]);
    if (!strcmp(what, "trap")) __builtin_trap();
    if (!strcmp(what, "echo")) { printf("%s %s\n", argv[2], getenv("GREETING") ? getenv("GREETING") : "-"); return 0; }
    if (!strcmp(what, "index")) { printf("%s\n", argv[2]); return 0; }
    if (!strcmp(what, "forever")) for (volatile int i = 0;; i++) {}
    if (!strcmp(what, "orphan")) { printf("%d\n", spawn("forever", "x", NULL, NULL) >= 0); return 0; }
    if (!strcmp(what, "grandparent")) { printf("%d\n", spawn("index", "secret", NULL, NULL)); return 0; }
    if (!strcmp(what, "probe")) {
        int seen = 0;
        char b[64];
        for (int h = 0; h < 8; h++) seen += wasmgpu_wait(h) != -8 || wasmgpu_output(h, 0, b, sizeof b) != -8;
        printf("%d\n", seen);
        return 0;
    }
    if (!strcmp(what, "inherit")) {
        int a = spawn("grandparent", "x", NULL, NULL);
        int wa = wasmgpu_wait(a);
        int p = spawn("probe", "x", NULL, NULL);
        int wp = wasmgpu_wait(p);
        printf("waits %d %d, the probe reached %ld handles\n", wa, wp, output_number(p));
        return 0;
    }
    if (!strcmp(what, "ids")) {
        if (argc > 2) { printf("%d %d\n", wasmgpu_instance_id(), wasmgpu_instance_count()); return 0; }
        int c = spawn("ids", "child", NULL, NULL);
        char out[32] = {0};
        wasmgpu_wait(c);
        wasmgpu_output(c, 0, out, sizeof out - 1);
        printf("%d %d child %s", wasmgpu_instance_id(), wasmgpu_instance_count(), out);
        return 0;
    }
    if (!strcmp(what, "nonul")) { printf("%d\n", wasmgpu_spawn("c_spawn\0index\0x", 15, "", 0)); return 0; }
    if (!strcmp(what, "fresh")) {
        unsigned long expect = argc > 2 ? strtoul(argv[2], NULL, 10) : pages;
        printf("%s\n", fresh(expect) ? "fresh" : "dirty");
        return 0;
    }
    if (!strcmp(what, "sequential")) {
        int n = atoi(argv[2]), ok = 0;
        for (int k = 0; k < n; k++) {
            char p[16];
            snprintf(p, sizeof p, "%lu", pages);
            int c = spawn("fresh", p, NULL, NULL);
            char out[16] = {0};
            if (c < 0 || wasmgpu_wait(c) != 0) { printf("child %d failed (%d)\n", k, c); return 1; }
            wasmgpu_output(c, 0, out, sizeof out - 1);
            ok += !strcmp(out, "fresh\n");
        }
        printf("sequential fresh=%d of %d\n", ok, n);
        return 0;
    }
    if (!strcmp(what, "statuses")) {
        int kids[4] = {spawn("exit", "0", NULL, NULL), spawn("exit", "7", NULL, NULL), spawn("ret", "3", NULL, NULL),
                       spawn("trap", "x", NULL, NULL)};
        for (int k = 0; k < 4; k++) printf("%d ", wasmgpu_wait(kids[k]));
        printf("%d\n", wasmgpu_wait(12345));
        return 0;
    }
    if (!strcmp(what, "exhaust")) {
        int want = atoi(argv[2]), ok = 0, err = 0, kids[64];
        for (int k = 0; k < want && k < 64; k++) {
            char i[16];
            snprintf(i, sizeof i, "%d", k);
            int c = spawn("index", i, NULL, NULL);
            if (c < 0) { if (!err) err = c; continue; }
            kids[ok++] = c;
        }
        long sum = 0;
        for (int k = 0; k < ok; k++) { wasmgpu_wait(kids[k]); sum += output_number(kids[k]); }
        printf("spawned=%d error=%d sum=%ld\n", ok, err, sum);
        return 0;
    }
    if (!strcmp(what, "cat")) {
        FILE *f = fopen(argv[2], "r");
        if (!f) { printf("cannot open %s", argv[2]); return 1; }
        char b[64] = {0};
        fread(b, 1, sizeof b - 1, f);
        printf("%s", b);
        return 0;
    }
    if (!strcmp(what, "run")) {
        char args[512];
        int n = 0;
        for (int k = 2; k < argc; k++) n += snprintf(args + n, sizeof args - n, "%s%c", argv[k], 0);
        report(wasmgpu_spawn(args, (uint32_t)n, "", 0));
        return 0;
    }
    if (!strcmp(what, "dirs")) {
        for (int k = 2; k + 1 < argc; k += 2) {
            char args[256], dirs[256];
            int n = snprintf(args, sizeof args, "c_spawn%ccat%c%s%c", 0, 0, argv[k + 1], 0), d = 0;
            if (strcmp(argv[k], "-"))
                for (const char *c = argv[k];; c++) { dirs[d++] = *c == '+' ? 0 : *c; if (!*c) break; }
            report(wasmgpu_spawn_in(args, (uint32_t)n, "", 0, dirs, (uint32_t)d));
        }
        return 0;
    }
    if (!strcmp(what, "write")) {
        FILE *f = fopen(argv[2], "w");
        if (!f) return 1;
        fputs(argv[3], f);
        return fclose(f) != 0;
    }
    if (!strcmp(what, "files")) {
        char before[64] = {0}, after[64] = {0}, out[64] = {0};
        FILE *f = fopen("data.txt", "r");
        if (!f) return 3;
        fread(before, 1, sizeof before - 1, f);
        fclose(f);
        wasmgpu_wait(spawn("write", "data.txt", "new", NULL));
        if (!(f = fopen("data.txt", "r"))) return 3;
        fread(after, 1, sizeof after - 1, f);
        fclose(f);
        if (!(f = fopen("mine.txt", "w"))) return 3;
        fputs("made by the parent", f);
        fclose(f);
        int c = spawn("cat", "mine.txt", NULL, NULL);
        wasmgpu_wait(c);
        wasmgpu_output(c, 0, out, sizeof out - 1);
        printf("%s|%s|%s\n", before, after, out);
        return 0;
    }
    if (!strcmp(what, "env")) {
        int c = spawn("echo", "hello", NULL, "GREETING=world");
        char out[64] = {0};
        wasmgpu_wait(c);
        wasmgpu_output(c, 0, out, sizeof out - 1);
        printf("child said: %s", out);
        return 0;
    }
    return 2;
}
