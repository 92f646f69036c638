/* Lists its directory (fd_readdir), reads every regular file and prints its name, size and an
   Adler-32 checksum, in name order (the host's directory order is not portable). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    DIR *d = opendir(".");
    if (!d) { perror("opendir"); return 1; }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == 256) { fprintf(stderr, "too many entries\n"); return 1; }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    unsigned long total = 0;
    for (int k = 0; k < n; k++) {
        struct stat st;
        if (stat(names[k], &st) != 0) { perror(names[k]); return 1; }
        if (!S_ISREG(st.st_mode)) { printf("%s/ (directory)\n", names[k]); continue; }
        FILE *f = fopen(names[k], "rb");
        if (!f) { perror(names[k]); return 1; }
        unsigned long a = 1, b = 0, size = 0;
        unsigned char buf[512];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            for (size_t j = 0; j < got; j++) { a = (a + buf[j]) % 65521; b = (b + a) % 65521; }
            size += got;
        }
        fclose(f);
        if ((long)size != (long)st.st_size) fprintf(stderr, "%s: read %lu of %lld bytes\n", names[k], size,
                                                    (long long)st.st_size);
        printf("%-16s %6lu %08lx\n", names[k], size, (b << 16) | a);
        total += size;
    }
    printf("%d entries, %lu bytes\n", n, total);
    return 0;
}
