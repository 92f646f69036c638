/* Files and directories through WASI: write, append, seek, ftell, stat,
   mkdir, readdir (sorted), rename, unlink, and error paths with errno. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) { printf("opendir %s: %s\n", path, strerror(errno)); return; }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    printf("listing %s (%d):", path, n);
    for (int i = 0; i < n; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        struct stat st;
        if (stat(full, &st) == 0)
            printf(" %s%s[%lld]", names[i], S_ISDIR(st.st_mode) ? "/" : "", S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
        free(names[i]);
    }
    printf("\n");
}

int main(void) {
    /* read a file that the harness put there */
    FILE *f = fopen("input.txt", "r");
    if (!f) { printf("no input.txt: %s\n", strerror(errno)); return 1; }
    char line[256];
    int lines = 0;
    size_t total = 0;
    while (fgets(line, sizeof line, f)) { lines++; total += strlen(line); }
    fclose(f);
    printf("input.txt: %d lines, %zu bytes\n", lines, total);

    /* write, then append */
    f = fopen("out.txt", "w");
    for (int i = 0; i < 5; i++) fprintf(f, "line %d\n", i);
    printf("ftell after write: %ld\n", ftell(f));
    fclose(f);
    f = fopen("out.txt", "a");
    fputs("appended\n", f);
    fclose(f);

    /* seek and read back */
    f = fopen("out.txt", "r+");
    fseek(f, 0, SEEK_END);
    printf("size via ftell: %ld\n", ftell(f));
    fseek(f, 7, SEEK_SET);
    fgets(line, sizeof line, f);
    printf("at 7: %s", line);
    fseek(f, -9, SEEK_END);
    fgets(line, sizeof line, f);
    printf("last: %s", line);
    fseek(f, 0, SEEK_SET);
    fputs("LINE", f); /* overwrite in place */
    fclose(f);

    /* low-level I/O: open/pwrite/lseek */
    int fd = open("raw.bin", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    unsigned char buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (unsigned char)(i * 7);
    printf("write=%zd\n", write(fd, buf, sizeof buf));
    printf("lseek=%lld\n", (long long)lseek(fd, 100, SEEK_SET));
    printf("write2=%zd\n", write(fd, "XYZ", 3));
    close(fd);

    /* directories */
    printf("mkdir sub: %d\n", mkdir("sub", 0755));
    printf("mkdir sub again: %d errno=%s\n", mkdir("sub", 0755), strerror(errno));
    for (int i = 3; i >= 0; i--) {
        char name[64];
        snprintf(name, sizeof name, "sub/file_%c.txt", 'a' + i);
        FILE *g = fopen(name, "w");
        for (int k = 0; k <= i; k++) fputs("0123456789", g);
        fclose(g);
    }
    mkdir("sub/inner", 0755);
    list_dir("sub");
    printf("rename: %d\n", rename("sub/file_b.txt", "sub/renamed.txt"));
    printf("unlink: %d\n", unlink("sub/file_c.txt"));
    printf("unlink missing: %d %s\n", unlink("sub/file_c.txt"), strerror(errno));
    printf("rmdir nonempty: %d\n", rmdir("sub") == 0);
    printf("rmdir inner: %d\n", rmdir("sub/inner"));
    list_dir("sub");
    list_dir(".");

    /* error paths */
    errno = 0;
    f = fopen("missing.txt", "r");
    printf("fopen missing: %s errno=%d (%s)\n", f ? "opened" : "NULL", errno, strerror(errno));
    struct stat st;
    printf("stat missing: %d errno=%d\n", stat("nope/none", &st), errno);
    printf("opendir on file: %s\n", opendir("out.txt") ? "opened" : strerror(errno));
    printf("escape: %s\n", fopen("../outside.txt", "w") ? "opened" : "refused");
    return 0;
}
