/* Allocate 64 MB in 1 MB chunks (memory.grow), touch every page, checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    enum { CHUNK = 1 << 20, COUNT = 64 };
    unsigned char *chunks[COUNT];
    uint64_t sum = 0;
    for (int c = 0; c < COUNT; c++) {
        chunks[c] = malloc(CHUNK);
        if (!chunks[c]) { printf("malloc failed at chunk %d\n", c); return 1; }
        memset(chunks[c], c, 256);
        for (int off = 0; off < CHUNK; off += 4096) {
            uint32_t v = (uint32_t)(c * 2654435761u) ^ (uint32_t)off;
            memcpy(chunks[c] + off + 256, &v, 4);
            chunks[c][off + 4095] = (unsigned char)(off >> 12);
        }
    }
    for (int c = 0; c < COUNT; c++) {
        for (int off = 0; off < CHUNK; off += 4096) {
            uint32_t v;
            memcpy(&v, chunks[c] + off + 256, 4);
            sum = sum * 31 + v + chunks[c][off + 4095];
        }
        for (int k = 0; k < 256; k++) sum += chunks[c][k];
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    /* free half, allocate again: the allocator reuses memory */
    for (int c = 0; c < COUNT; c += 2) free(chunks[c]);
    unsigned char *big = malloc(16 * CHUNK);
    if (!big) { printf("second malloc failed\n"); return 1; }
    for (int i = 0; i < 16 * CHUNK; i += 65536) big[i] = (unsigned char)(i >> 16);
    unsigned tot = 0;
    for (int i = 0; i < 16 * CHUNK; i += 65536) tot += big[i];
    printf("big sum=%u\n", tot);
    printf("pages now >= %d: %d\n", 64 * 16, (int)(__builtin_wasm_memory_size(0) >= 64 * 16));
    /* a calloc that must come back zeroed */
    unsigned *z = calloc(1 << 18, sizeof *z);
    unsigned nz = 0;
    for (int i = 0; i < (1 << 18); i += 97) nz += z[i] != 0;
    printf("calloc nonzero=%u\n", nz);
    /* more than the 4 GiB address space can hold: memory.grow fails, malloc returns NULL */
    volatile size_t huge_size = 0xfff00000u;
    unsigned char *volatile huge = malloc(huge_size);  /* volatile: the compiler may not elide it */
    if (huge) huge[huge_size - 1] = 1;
    printf("huge malloc: %s\n", huge ? "succeeded" : "NULL");
    free(huge);
    unsigned char *after = malloc(1000);
    after[999] = 1;
    printf("malloc after failure works: %d\n", after[999]);
    return 0;
}
