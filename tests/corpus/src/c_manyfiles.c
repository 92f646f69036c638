/* Many directory entries (readdir must continue past one buffer), pread/pwrite,
   ftruncate, holes, dot-dot paths; the base directory comes from argv[1]. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path_buf[512];
static const char *P(const char *base, const char *rel) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", base, rel);
    return path_buf;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list(const char *dir, int show) {
    DIR *d = opendir(dir);
    if (!d) { printf("opendir %s: %s\n", dir, strerror(errno)); return -1; }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) names = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    unsigned h = 5381;
    for (int i = 0; i < n; i++) {
        for (char *p = names[i]; *p; p++) h = h * 33 + (unsigned char)*p;
        if (show) printf("  %s\n", names[i]);
        free(names[i]);
    }
    free(names);
    printf("%s: %d entries, name hash %08x\n", dir, n, h);
    return n;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : ".";
    char dir[256];
    snprintf(dir, sizeof dir, "%s/many", base);
    printf("mkdir: %d\n", mkdir(dir, 0755));
    long total = 0;
    for (int i = 0; i < 300; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "many/entry_%03d_%.*s.dat", i, i % 37, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF");
        FILE *f = fopen(P(base, rel), "w");
        if (!f) { printf("fopen %s: %s\n", rel, strerror(errno)); return 1; }
        for (int k = 0; k < i % 13; k++) fprintf(f, "%d,", i * k);
        total += ftell(f);
        fclose(f);
    }
    printf("wrote %ld bytes in 300 files\n", total);
    list(dir, 0);
    long sizes = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char full[600];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (e->d_name[0] != '.' && stat(full, &st) == 0) sizes += st.st_size;
    }
    closedir(d);
    printf("sum of stat sizes %ld\n", sizes);

    /* pread / pwrite / ftruncate / a hole past the end */
    int fd = open(P(base, "pio.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    char block[64];
    for (int i = 0; i < 64; i++) block[i] = (char)('A' + i % 26);
    printf("pwrite %zd\n", pwrite(fd, block, 64, 0));
    printf("pwrite at 1000: %zd\n", pwrite(fd, "END", 3, 1000));
    struct stat st;
    fstat(fd, &st);
    printf("size after hole %lld\n", (long long)st.st_size);
    char rb[16] = {0};
    printf("pread %zd: %.10s\n", pread(fd, rb, 10, 20), rb);
    memset(rb, 'x', sizeof rb);
    printf("pread in hole %zd: %d %d\n", pread(fd, rb, 4, 500), rb[0], rb[3]);
    printf("file offset still %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("ftruncate %d\n", ftruncate(fd, 50));
    fstat(fd, &st);
    printf("size after truncate %lld\n", (long long)st.st_size);
    printf("read at end %zd\n", pread(fd, rb, 10, 50));
    printf("seek past end %lld, write %zd\n", (long long)lseek(fd, 60, SEEK_SET), write(fd, "Z", 1));
    fstat(fd, &st);
    printf("size now %lld\n", (long long)st.st_size);
    close(fd);
    printf("read on closed fd: %zd (%s)\n", read(fd, rb, 1), strerror(errno));

    /* paths with ./ and .. that stay inside the preopen */
    FILE *f = fopen(P(base, "many/../dotdot.txt"), "w");
    printf("dotdot inside: %s\n", f ? "ok" : strerror(errno));
    if (f) { fputs("via ..\n", f); fclose(f); }
    printf("dot path stat: %d\n", stat(P(base, "./many/./entry_000_.dat"), &st));
    printf("escaping: %s\n", fopen(P(base, "many/../../escape.txt"), "w") ? "opened" : "refused");
    printf("O_EXCL on existing: %d (%s)\n", open(P(base, "pio.bin"), O_CREAT | O_EXCL | O_WRONLY, 0644), strerror(errno));
    printf("O_DIRECTORY on file: %d (%s)\n", open(P(base, "pio.bin"), O_RDONLY | O_DIRECTORY), strerror(errno));
    printf("rmdir nonempty: %d (%s)\n", rmdir(dir), strerror(errno));
    printf("unlink dir: %d\n", unlink(dir) == 0);

    /* remove two thirds of the entries, list again */
    int removed = 0;
    for (int i = 0; i < 300; i++) {
        if (i % 3 == 0) continue;
        char rel[128];
        snprintf(rel, sizeof rel, "many/entry_%03d_%.*s.dat", i, i % 37, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF");
        removed += unlink(P(base, rel)) == 0;
    }
    printf("removed %d\n", removed);
    list(dir, 0);
    printf("rename dir: %d\n", rename(dir, P(base, "kept")));
    list(base, 1);
    return 0;
}
