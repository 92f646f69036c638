/* Preopened files through the raw WASI calls, every result printed: the calls the device serves from its
   snapshot (path_open read-only, fd_read/pread/seek/tell/filestat_get/fdstat_get/close, prestat) and the
   hand-over to the host (writes, renames, fd_advise, ...) with descriptors still open.
   Usage: devfiles SCENARIO...  (run in order; see main). The raw imports and the output are wasi_raw.h's. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wasi/api.h>

#include "wasi_raw.h"

static const uint64_t READ = R(FD_READ) | R(FD_SEEK) | R(FD_TELL) | R(FD_FILESTAT_GET) | R(FD_ADVISE) |
                             R(FD_FDSTAT_SET_FLAGS) | R(POLL_FD_READWRITE);
static const uint64_t WRITE = READ | R(FD_WRITE) | R(FD_ALLOCATE) | R(FD_FILESTAT_SET_SIZE) | R(FD_DATASYNC) |
                              R(FD_SYNC) | R(FD_FILESTAT_SET_TIMES);

/* descriptor numbers are printed unless the argument "nofd" came first (then they print as 0) */
static int show_fds = 1;
#define FD(fd) (show_fds ? (int32_t)(fd) : 0)

/* bytes as text, non-printables escaped, at most `max` shown */
static void show(const char *label, const uint8_t *b, size_t n, size_t max) {
    say("%s[%zu]=\"", label, n);
    for (size_t k = 0; k < n && k < max; k++) {
        uint8_t c = b[k];
        if (c >= 32 && c < 127 && c != '"' && c != '\\') say("%c", c);
        else say("\\x%02x", c);
    }
    say(n > max ? "\"...\n" : "\"\n");
}

static uint32_t mem_end(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }

/* ---- thin wrappers that print ---- */
static int32_t open_at(int32_t dir, const char *path, size_t len, int32_t lookup, int32_t oflags, uint64_t rights,
                       int32_t fdflags, const char *label) {
    uint32_t fd = 0xdeadbeef;
    int32_t e = w_path_open(dir, lookup, P(path), (uint32_t)len, oflags, rights, rights, fdflags, P(&fd));
    say("open %s -> e=%d fd=%d\n", label, e, e == 0 ? FD(fd) : -1);
    return e == 0 ? (int32_t)fd : -1;
}

static int32_t open_r(const char *path) { return open_at(3, path, strlen(path), 1, 0, READ, 0, path); }

static void close_fd(int32_t fd) { say("close %d -> e=%d\n", FD(fd), w_fd_close(fd)); }

static uint8_t buf[1 << 16];

static void read_n(int32_t fd, size_t n, const char *label) {
    if (n > sizeof buf) n = sizeof buf;
    memset(buf, '#', n + 1);
    __wasi_iovec_t v = {buf, n};
    uint32_t got = 0xdeadbeef;
    int32_t e = w_fd_read(fd, P(&v), 1, P(&got));
    say("read %s fd=%d want=%zu -> e=%d ", label, FD(fd), n, e);
    if (e == 0) show("got", buf, got, 48);
    else say("\n");
    if (e == 0 && buf[got] != '#') say("  wrote past nread!\n");
}

/* read the whole rest of fd: total bytes and a hash */
static void read_all(int32_t fd, const char *label) {
    uint32_t h = 2166136261u;
    size_t total = 0;
    int32_t e;
    for (;;) {
        __wasi_iovec_t v = {buf, sizeof buf};
        uint32_t got = 0;
        e = w_fd_read(fd, P(&v), 1, P(&got));
        if (e != 0 || got == 0) break;
        for (uint32_t k = 0; k < got; k++) h = (h ^ buf[k]) * 16777619u;
        total += got;
    }
    say("read_all %s fd=%d -> e=%d total=%zu hash=%08x\n", label, FD(fd), e, total, h);
}

static void pread_at(int32_t fd, uint64_t off, size_t n) {
    memset(buf, '#', n + 1);
    __wasi_iovec_t v = {buf, n};
    uint32_t got = 0xdeadbeef;
    int32_t e = w_fd_pread(fd, P(&v), 1, off, P(&got));
    say("pread fd=%d off=%llu n=%zu -> e=%d ", FD(fd), (unsigned long long)off, n, e);
    if (e == 0) show("got", buf, got, 32);
    else say("\n");
}

static uint64_t tell(int32_t fd) {
    uint64_t pos = 0xdeadbeef;
    int32_t e = w_fd_tell(fd, P(&pos));
    say("tell fd=%d -> e=%d pos=%lld\n", FD(fd), e, e == 0 ? (long long)pos : -1LL);
    return pos;
}

static void seek(int32_t fd, int64_t off, int32_t whence) {
    uint64_t pos = 0xdeadbeef;
    int32_t e = w_fd_seek(fd, off, whence, P(&pos));
    say("seek fd=%d off=%lld whence=%d -> e=%d pos=%lld\n", FD(fd), (long long)off, whence, e,
        e == 0 ? (long long)pos : -1LL);
}

/* what a filestat says, with the inode, device and mtime compared to those of the first stat of a 39-byte
   regular file, a.txt (the numbers differ between directories; their relations do not) */
static uint64_t a_dev, a_ino, a_mtim;
static void print_filestat(const char *label, int32_t e, const __wasi_filestat_t *s) {
    say("%s -> e=%d", label, e);
    if (e == 0) {
        if (a_ino == 0 && s->filetype == __WASI_FILETYPE_REGULAR_FILE && s->size == 39)
            a_dev = s->dev, a_ino = s->ino, a_mtim = s->mtim;
        say(" type=%d nlink=%llu size=%llu ino_is_a=%d dev_is_a=%d ino_nonzero=%d mtim_is_a=%d times_nonzero=%d",
            s->filetype, (unsigned long long)s->nlink, (unsigned long long)s->size, s->ino == a_ino,
            s->dev == a_dev, s->ino != 0, s->mtim == a_mtim, s->atim != 0 && s->mtim != 0 && s->ctim != 0);
    }
    say("\n");
}

static void fstat_fd(int32_t fd) {
    __wasi_filestat_t s;
    memset(&s, 0, sizeof s);
    char label[48];
    snprintf(label, sizeof label, "filestat fd=%d", FD(fd));
    print_filestat(label, w_fd_filestat_get(fd, P(&s)), &s);
}

static void stat_path(const char *path, int32_t follow) {
    __wasi_filestat_t s;
    memset(&s, 0, sizeof s);
    char label[300];
    snprintf(label, sizeof label, "path_filestat %s follow=%d", path, follow);
    print_filestat(label, w_path_filestat_get(3, follow, P(path), strlen(path), P(&s)), &s);
}

static void fdstat(int32_t fd) {
    __wasi_fdstat_t s;
    memset(&s, 0x5a, sizeof s);
    int32_t e = w_fd_fdstat_get(fd, P(&s));
    say("fdstat fd=%d -> e=%d", FD(fd), e);
    if (e == 0)
        say(" type=%d flags=%d base=%llx inheriting=%llx", s.fs_filetype, s.fs_flags,
            (unsigned long long)s.fs_rights_base, (unsigned long long)s.fs_rights_inheriting);
    say("\n");
}

static int32_t create(const char *path, const char *text) {
    int32_t fd = open_at(3, path, strlen(path), 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, WRITE, 0, path);
    if (fd < 0) return fd;
    __wasi_ciovec_t v = {(const uint8_t *)text, strlen(text)};
    uint32_t n = 0;
    int32_t e = w_fd_write(fd, P(&v), 1, P(&n));
    say("write %s -> e=%d n=%u\n", path, e, n);
    return fd;
}

/* ================================================================ scenarios */

static void s_basic(void) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 1000, "whole");
    read_n(fd, 10, "at eof");
    read_n(fd, 0, "zero");
    tell(fd);
    close_fd(fd);
    fd = open_r("empty.txt");
    read_n(fd, 10, "empty");
    fstat_fd(fd);
    close_fd(fd);
    fd = open_r("one.txt");
    read_n(fd, 10, "one");
    close_fd(fd);
    fd = open_r("big.bin");
    read_all(fd, "big.bin");
    tell(fd);
    fstat_fd(fd);
    close_fd(fd);
}

/* fd_read with several iovecs, some empty */
static void s_iovecs(void) {
    int32_t fd = open_r("a.txt");
    static uint8_t p1[8], p2[8], p3[8];
    for (int round = 0; round < 8; round++) {
        memset(p1, '.', 8), memset(p2, '.', 8), memset(p3, '.', 8);
        __wasi_iovec_t v[4] = {{p1, 3}, {p2, 0}, {p3, 5}, {p2, 2}};
        uint32_t got = 0xdeadbeef;
        int32_t e = w_fd_read(fd, P(v), 4, P(&got));
        say("readv round=%d -> e=%d got=%u ", round, e, got);
        show("p1", p1, 8, 8);
        show("  p2", p2, 8, 8);
        show("  p3", p3, 8, 8);
        if (e != 0 || got == 0) break;
    }
    __wasi_iovec_t none[1] = {{buf, 0}};
    uint32_t got = 0xdeadbeef;
    say("readv count=0 -> e=%d got=%u\n", w_fd_read(fd, P(none), 0, P(&got)), got);
    tell(fd);
    /* several iovecs through pread */
    memset(p1, '.', 8), memset(p3, '.', 8);
    __wasi_iovec_t v2[2] = {{p1, 4}, {p3, 4}};
    say("preadv -> e=%d ", w_fd_pread(fd, P(v2), 2, 30, P(&got)));
    say("got=%u ", got);
    show("p1", p1, 8, 8);
    show("  p3", p3, 8, 8);
    close_fd(fd);
}

static void s_pread(void) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 4, "first4");
    const uint64_t offs[] = {0, 5, 38, 39, 40, 1000, 1ull << 32, 1ull << 62, 1ull << 63, ~0ull};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) pread_at(fd, offs[k], 6);
    pread_at(fd, 10, 0);
    tell(fd);
    read_n(fd, 4, "after preads");
    close_fd(fd);
}

/* offsets whose end passes INT64_MAX: the host's pread(2) answers EINVAL */
static void s_preadfar(void) {
    int32_t fd = open_r("a.txt");
    pread_at(fd, INT64_MAX - 6, 6);
    pread_at(fd, INT64_MAX - 5, 6);
    pread_at(fd, INT64_MAX, 6);
    pread_at(fd, INT64_MAX, 0);
    read_n(fd, 4, "after");
    close_fd(fd);
}

/* positions past what the host's file system allows (lseek(2) answers EINVAL; ext4: 16 TiB) */
static void s_seekfar(void) {
    int32_t fd = open_r("a.txt");
    seek(fd, 1ll << 40, __WASI_WHENCE_SET);
    seek(fd, INT64_MAX, __WASI_WHENCE_SET);
    tell(fd);
    seek(fd, 1, __WASI_WHENCE_CUR);
    tell(fd);
    read_n(fd, 4, "far");
    close_fd(fd);
}

static void s_seek(void) {
    int32_t fd = open_r("a.txt");
    seek(fd, 0, __WASI_WHENCE_SET);
    seek(fd, 10, __WASI_WHENCE_SET);
    read_n(fd, 3, "at 10");
    seek(fd, 5, __WASI_WHENCE_CUR);
    read_n(fd, 3, "at 18");
    seek(fd, -3, __WASI_WHENCE_CUR);
    tell(fd);
    seek(fd, -100, __WASI_WHENCE_CUR);
    tell(fd);
    seek(fd, -1, __WASI_WHENCE_SET);
    seek(fd, 0, __WASI_WHENCE_END);
    read_n(fd, 3, "at end");
    seek(fd, -4, __WASI_WHENCE_END);
    read_n(fd, 10, "last 4");
    seek(fd, -40, __WASI_WHENCE_END);
    tell(fd);
    seek(fd, -39, __WASI_WHENCE_END);
    seek(fd, 10, __WASI_WHENCE_END);
    read_n(fd, 3, "past end");
    tell(fd);
    seek(fd, 1000000, __WASI_WHENCE_SET);
    read_n(fd, 3, "far past end");
    seek(fd, INT64_MIN, __WASI_WHENCE_CUR);
    seek(fd, INT64_MIN, __WASI_WHENCE_END);
    tell(fd);
    seek(fd, 2, __WASI_WHENCE_SET);
    read_n(fd, 3, "at 2");
    close_fd(fd);
}

static void s_stat(void) {
    int32_t fa = open_r("a.txt");
    int32_t fh = open_r("hard.txt");
    int32_t fb = open_r("b.txt");
    int32_t fx = open_r("sub/x.txt");
    fstat_fd(fa);
    fstat_fd(fh);
    fstat_fd(fb);
    fstat_fd(fx);
    fdstat(fa);
    fdstat(fx);
    read_n(fa, 5, "a after stats");
    /* the host's stat of the same paths, after the device's */
    stat_path("a.txt", 1);
    stat_path("hard.txt", 0);
    stat_path("b.txt", 1);
    fstat_fd(fa);
    fdstat(fa);
    read_n(fa, 5, "a after host stat");
    close_fd(fa), close_fd(fh), close_fd(fb), close_fd(fx);
}

/* descriptor numbers: which freed one is reused first */
static void s_reuse(void) {
    int32_t a = open_r("a.txt"), b = open_r("b.txt"), c = open_r("one.txt");
    say("abc %d %d %d\n", FD(a), FD(b), FD(c));
    close_fd(b);
    close_fd(a);
    int32_t d = open_r("empty.txt"), e = open_r("a.txt"), f = open_r("b.txt");
    say("def %d %d %d\n", FD(d), FD(e), FD(f));
    read_n(e, 5, "e");
    close_fd(c), close_fd(f), close_fd(d);
    close_fd(d);
    close_fd(e);
    int32_t fds[8];
    for (int k = 0; k < 8; k++) fds[k] = open_r(k & 1 ? "b.txt" : "a.txt");
    for (int k = 7; k >= 0; k -= 2) close_fd(fds[k]);
    for (int k = 0; k < 8; k += 2) close_fd(fds[k]);
    for (int k = 0; k < 8; k++) fds[k] = open_r("one.txt");
    for (int k = 0; k < 8; k++) close_fd(fds[k]);
    for (int k = 0; k < 3; k++) fds[k] = open_r("a.txt");
    read_n(fds[2], 3, "third");
    for (int k = 0; k < 3; k++) close_fd(fds[k]);
}

/* more files open at once than the device holds */
static void s_many(void) {
    int32_t fds[14];
    char name[32];
    for (int k = 0; k < 14; k++) {
        snprintf(name, sizeof name, "m/f%02d.txt", k);
        fds[k] = open_r(name);
        read_n(fds[k], 2, name);
    }
    for (int k = 0; k < 14; k++) {
        read_n(fds[k], 100, "rest");
        tell(fds[k]);
    }
    for (int k = 13; k >= 0; k -= 3) close_fd(fds[k]);
    for (int k = 0; k < 5; k++) {
        int32_t fd = open_r("a.txt");
        read_n(fd, 3, "again");
    }
    for (int k = 0; k < 14; k++) close_fd(fds[k]);
}

/* numbers freed in decreasing order, so that the oldest freed is also the largest */
static void s_reuse_desc(void) {
    int32_t fds[8];
    for (int k = 0; k < 8; k++) fds[k] = open_r(k & 1 ? "b.txt" : "a.txt");
    for (int k = 7; k >= 0; k--) close_fd(fds[k]);
    for (int k = 0; k < 8; k++) fds[k] = open_r("one.txt");
    read_n(fds[3], 2, "one");
    for (int k = 2; k < 8; k++) close_fd(fds[k]);
    for (int k = 2; k < 8; k++) fds[k] = open_r(k & 1 ? "b.txt" : "a.txt");
    read_n(fds[4], 3, "a");
    read_n(fds[5], 3, "b");
    for (int k = 0; k < 8; k++) close_fd(fds[k]);
}

static void try_path(const char *path, size_t len, int32_t lookup) {
    char label[200];
    snprintf(label, sizeof label, "\"%.*s\"/%zu lookup=%d", (int)(len < 100 ? len : 100), path, len, lookup);
    for (char *q = label; *q; q++)
        if (*q == 0 || (uint8_t)*q < 32 || (uint8_t)*q > 126) *q = '?';
    int32_t fd = open_at(3, path, len, lookup, 0, READ, 0, label);
    if (fd >= 0) {
        read_n(fd, 40, label);
        fstat_fd(fd);
        close_fd(fd);
    }
}

static void s_paths(void) {
    static const char *paths[] = {"missing.txt", "sub", "sub/", "sub/deep", ".", "./a.txt", "sub/x.txt",
                                  "sub//x.txt", "sub/./x.txt", "sub/../a.txt", "sub/deep/y.txt", "a.txt/",
                                  "a.txt/.", "a.txt/x", "../a.txt", "/a.txt", "//a.txt", "link_in",
                                  "link_out", "link_abs", "link_dir/x.txt", "link_dir", "link_loop", "link_none",
                                  "sub/../../a.txt", "A.TXT", "a.tx", "a.txt ", "b.txt", "sub/x.txt/",
                                  "m/f00.txt", "m/../m/f01.txt", "unicode-\xc3\xa9.txt", "sp ace.txt"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) try_path(paths[k], strlen(paths[k]), 1);
    try_path("link_in", 7, 0);
    try_path("link_dir/x.txt", 14, 0);
    try_path("", 0, 1);
    try_path("a.txt\0b", 7, 1);
    try_path("a.txt", 3, 1);                 /* "a.t" */
    try_path("\xff\xfe", 2, 1);              /* not UTF-8 */
    static char longp[1100];
    memset(longp, 'x', sizeof longp);
    try_path(longp, 1030, 1);
    try_path(longp, 300, 1);
    /* the preopen given as a file descriptor, a file as the directory */
    int32_t fa = open_r("a.txt");
    open_at(fa, "x", 1, 1, 0, READ, 0, "x relative to a file");
    open_at(0, "a.txt", 5, 1, 0, READ, 0, "a.txt relative to stdin");
    open_at(77, "a.txt", 5, 1, 0, READ, 0, "a.txt relative to fd 77");
    read_n(fa, 4, "a");
    close_fd(fa);
}

/* calls on descriptors that are not open (or not files) */
static void s_badf(void) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 4, "open");
    close_fd(fd);
    read_n(fd, 4, "closed");
    pread_at(fd, 0, 4);
    seek(fd, 0, 0);
    tell(fd);
    fstat_fd(fd);
    fdstat(fd);
    close_fd(fd);
    const int32_t bad[] = {99, -1, 9, 4};
    for (size_t k = 0; k < 4; k++) {
        read_n(bad[k], 4, "bad");
        tell(bad[k]);
        fstat_fd(bad[k]);
        fdstat(bad[k]);
        close_fd(bad[k]);
    }
    int32_t again = open_r("b.txt");
    read_n(again, 4, "reopened");
    close_fd(again);
}

/* calls on stdio and the preopen itself: the host's, without taking the device's files over */
static void s_dirfd(void) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 4, "before");
    read_n(3, 4, "preopen");
    seek(3, 0, 0);
    tell(3);
    fstat_fd(3);
    fdstat(3);
    pread_at(3, 0, 4);
    fdstat(1);
    seek(1, 0, 1);
    fdstat(0);
    read_n(fd, 4, "between");
    int32_t d = open_r("sub");
    read_n(d, 4, "dir");
    fdstat(d);
    open_at(d, "x.txt", 5, 1, 0, READ, 0, "x.txt relative to sub");
    read_n(fd, 4, "after");
    int32_t f2 = open_r("b.txt");
    read_n(f2, 4, "b");
}

static void s_prestat(void) {
    for (int32_t fd = 0; fd < 8; fd++) {
        uint8_t ps[8];
        memset(ps, 0x77, sizeof ps);
        int32_t e = w_fd_prestat_get(fd, P(ps));
        say("prestat %d -> e=%d", fd, e);
        if (e == 0) say(" tag=%d len=%u", ps[0], *(uint32_t *)(ps + 4));
        say("\n");
        if (e != 0) continue;
        const uint32_t lens[] = {0, 1, *(uint32_t *)(ps + 4), 200};
        for (int k = 0; k < 4; k++) {
            uint8_t name[256];
            memset(name, '=', sizeof name);
            int32_t e2 = w_fd_prestat_dir_name(fd, P(name), lens[k]);
            say("prestat_dir_name %d len=%u -> e=%d ", fd, lens[k], e2);
            show("name", name, 12, 12);
        }
    }
    int32_t f = open_r("a.txt");
    uint8_t ps[8];
    say("prestat of a file -> e=%d\n", w_fd_prestat_get(f, P(ps)));
    close_fd(f);
}

/* rights and flags that leave path_open to the host, or not */
static void s_rights(int sync_flags) {
    const uint64_t rights[] = {0, R(FD_READ), R(FD_SEEK), R(FD_READDIR), R(FD_ALLOCATE) | R(FD_READ),
                               R(FD_DATASYNC) | R(FD_READ), R(FD_FILESTAT_SET_SIZE) | R(FD_READ), 0x1fffffffull,
                               0x1fffffffull & ~R(FD_WRITE)};
    for (size_t k = 0; k < (sync_flags ? 0 : sizeof rights / sizeof rights[0]); k++) {
        char label[64];
        snprintf(label, sizeof label, "a.txt rights=%llx", (unsigned long long)rights[k]);
        int32_t fd = open_at(3, "a.txt", 5, 1, 0, rights[k], 0, label);
        read_n(fd, 4, label);
        fdstat(fd);
        seek(fd, 1, 0);
        tell(fd);
        fstat_fd(fd);
        close_fd(fd);
    }
    const int32_t flags[] = {__WASI_FDFLAGS_APPEND, __WASI_FDFLAGS_NONBLOCK, __WASI_FDFLAGS_SYNC,
                             __WASI_FDFLAGS_RSYNC, __WASI_FDFLAGS_DSYNC};
    for (size_t k = sync_flags ? 2 : 0; k < (sync_flags ? 5u : 2u); k++) {
        char label[64];
        snprintf(label, sizeof label, "a.txt fdflags=%d", flags[k]);
        int32_t fd = open_at(3, "a.txt", 5, 1, 0, READ, flags[k], label);
        read_n(fd, 4, label);
        fdstat(fd);
        close_fd(fd);
    }
    if (sync_flags) return;
    int32_t fd = open_at(3, "a.txt", 5, 1, __WASI_OFLAGS_DIRECTORY, READ, 0, "a.txt O_DIRECTORY");
    close_fd(fd);
    fd = open_at(3, "sub", 3, 1, __WASI_OFLAGS_DIRECTORY, READ, 0, "sub O_DIRECTORY");
    close_fd(fd);
}

static void s_renumber(void) {
    int32_t a = open_r("a.txt"), b = open_r("b.txt"), c = open_r("one.txt");
    read_n(a, 3, "a");
    read_n(b, 3, "b");
    say("renumber %d->%d -> e=%d\n", FD(a), FD(b), w_fd_renumber(a, b));
    read_n(b, 3, "b (was a)");
    read_n(a, 3, "a (gone)");
    int32_t d = open_r("empty.txt"), e = open_r("a.txt");
    say("after renumber %d %d\n", FD(d), FD(e));
    read_n(e, 3, "e");
    close_fd(c);
    close_fd(b);
}

/* the host takes over: a write in the directory, with device descriptors open and read halfway */
static void s_handover(void) {
    int32_t a = open_r("a.txt"), b = open_r("b.txt"), gone = open_r("one.txt");
    read_n(a, 7, "a before");
    pread_at(b, 100, 5);
    seek(b, 50, 0);
    close_fd(gone);
    int32_t w = create("new.txt", "freshly written\n");
    close_fd(w);
    int32_t n = open_r("new.txt");
    read_n(n, 100, "new.txt");
    fstat_fd(n);  /* a made file's stat is the host's: the hand-over, four files open on the device */
    read_n(a, 7, "a after");
    read_n(b, 5, "b after");
    tell(a), tell(b);
    seek(a, -2, __WASI_WHENCE_CUR);
    read_n(a, 4, "a back 2");
    fstat_fd(a);
    fdstat(a);
    pread_at(b, 0, 5);
    int32_t x = open_r("one.txt");
    read_n(x, 4, "one again");
    say("numbers %d %d %d %d\n", FD(a), FD(b), FD(n), FD(x));
    close_fd(a), close_fd(b), close_fd(n), close_fd(x);
    read_n(a, 4, "closed a");
}

/* host-only calls on a device-opened read-only descriptor */
static void s_hostcall(const char *which) {
    int32_t a = open_r("a.txt"), b = open_r("b.txt");
    read_n(a, 6, "a before");
    int32_t e;
    if (!strcmp(which, "advise")) {
        e = w_fd_advise(a, 0, 10, __WASI_ADVICE_SEQUENTIAL);
        say("advise -> e=%d\n", e);
        say("advise len 0 -> e=%d\n", w_fd_advise(b, 5, 0, __WASI_ADVICE_DONTNEED));
    } else if (!strcmp(which, "allocate")) {
        say("allocate -> e=%d\n", w_fd_allocate(a, 0, 100));
        say("allocate 0 -> e=%d\n", w_fd_allocate(b, 0, 0));
    } else if (!strcmp(which, "sync")) {
        say("sync -> e=%d\n", w_fd_sync(a));
        say("datasync -> e=%d\n", w_fd_datasync(b));
    } else if (!strcmp(which, "set_size")) {
        say("set_size -> e=%d\n", w_fd_filestat_set_size(a, 3));
    } else if (!strcmp(which, "set_flags")) {
        say("set_flags append -> e=%d\n", w_fd_fdstat_set_flags(a, __WASI_FDFLAGS_APPEND));
        fdstat(a);
        say("set_flags sync -> e=%d\n", w_fd_fdstat_set_flags(b, __WASI_FDFLAGS_SYNC));
        say("set_rights -> e=%d\n", w_fd_fdstat_set_rights(b, R(FD_READ), 0));
        fdstat(b);
    } else if (!strcmp(which, "poll")) {
        static __wasi_subscription_t sub[2];
        static __wasi_event_t ev[2];
        memset(sub, 0, sizeof sub);
        sub[0].userdata = 11, sub[0].u.tag = __WASI_EVENTTYPE_FD_READ, sub[0].u.u.fd_read.file_descriptor = a;
        sub[1].userdata = 22, sub[1].u.tag = __WASI_EVENTTYPE_FD_READ, sub[1].u.u.fd_read.file_descriptor = b;
        uint32_t n = 0;
        say("poll -> e=%d", w_poll_oneoff(P(sub), P(ev), 2, P(&n)));
        say(" n=%u", n);
        for (uint32_t k = 0; k < n && k < 2; k++)
            say(" [ud=%llu e=%d type=%d nbytes=%llu]", (unsigned long long)ev[k].userdata, ev[k].error, ev[k].type,
                (unsigned long long)ev[k].fd_readwrite.nbytes);
        say("\n");
    } else {
        say("set_times -> e=%d\n", w_fd_filestat_set_times(a, 0, 0, __WASI_FSTFLAGS_ATIM_NOW));
        say("set_times bad -> e=%d\n", w_fd_filestat_set_times(b, 1, 1, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
    }
    read_n(a, 6, "a after");
    read_n(b, 6, "b after");
    fstat_fd(a);
    int32_t c = open_r("a.txt");
    say("new fd %d\n", FD(c));
    read_n(c, 6, "c");
    close_fd(a), close_fd(b), close_fd(c);
}

/* a descriptor open for reading while the same file is rewritten in place (wasmtime reads the new bytes) */
static void s_overwrite(void) {
    int32_t a = open_r("a.txt");
    read_n(a, 3, "a before");
    int32_t w = open_at(3, "a.txt", 5, 1, 0, WRITE, 0, "a.txt for writing");
    __wasi_ciovec_t v = {(const uint8_t *)"XYZW", 4};
    uint32_t n = 0;
    say("pwrite -> e=%d n=%u\n", w_fd_pwrite(w, P(&v), 1, 2, P(&n)), n);
    read_n(a, 6, "a after");
    pread_at(a, 0, 8);
    close_fd(w);
    close_fd(a);
}

/* renamed over and unlinked while open: an open descriptor keeps the old file */
static void s_rename(void) {
    int32_t a = open_r("a.txt"), b = open_r("b.txt");
    read_n(a, 3, "a before");
    read_n(b, 3, "b before");
    close_fd(create("tmp.txt", "replacement\n"));
    say("rename -> e=%d\n", w_path_rename(3, P("tmp.txt"), 7, 3, P("a.txt"), 5));
    say("unlink -> e=%d\n", w_path_unlink_file(3, P("b.txt"), 5));
    read_n(a, 100, "a after");
    read_n(b, 100, "b after");
    fstat_fd(a);
    fstat_fd(b);
    int32_t c = open_r("a.txt");
    read_n(c, 100, "a reopened");
    open_r("b.txt");
    open_r("tmp.txt");
    close_fd(a), close_fd(b), close_fd(c);
}

/* bad pointers: each its own run (wasmtime may trap) */
static void s_fault(const char *which) {
    const uint32_t end = mem_end();
    int32_t fd = open_r("a.txt");
    static __wasi_iovec_t v[2];
    v[0].buf = buf, v[0].buf_len = 4;
    uint32_t got = 0;
    int32_t e;
    flush();
    if (!strcmp(which, "fault_prestat")) e = w_fd_prestat_get(3, end - 4);
    else if (!strcmp(which, "fault_prestat_far")) e = w_fd_prestat_get(3, 0xfffffffc);
    else if (!strcmp(which, "fault_dirname")) e = w_fd_prestat_dir_name(3, end, 1);
    else if (!strcmp(which, "fault_open_out")) e = w_path_open(3, 1, P("a.txt"), 5, 0, READ, READ, 0, end - 2);
    else if (!strcmp(which, "fault_open_path")) e = w_path_open(3, 1, end - 3, 5, 0, READ, READ, 0, P(&got));
    else if (!strcmp(which, "fault_read_iovs")) e = w_fd_read(fd, end - 4, 1, P(&got));
    else if (!strcmp(which, "fault_read_buf")) {
        v[0].buf = (uint8_t *)(uintptr_t)(end - 2);
        e = w_fd_read(fd, P(v), 1, P(&got));
    } else if (!strcmp(which, "fault_read_nread")) e = w_fd_read(fd, P(v), 1, end - 1);
    else if (!strcmp(which, "fault_pread_nread")) e = w_fd_pread(fd, P(v), 1, 0, end);
    else if (!strcmp(which, "fault_seek")) e = w_fd_seek(fd, 1, 0, end - 4);
    else if (!strcmp(which, "fault_tell")) e = w_fd_tell(fd, end - 7);
    else if (!strcmp(which, "fault_filestat")) e = w_fd_filestat_get(fd, end - 63);
    else if (!strcmp(which, "fault_fdstat")) e = w_fd_fdstat_get(fd, end - 23);
    else if (!strcmp(which, "fault_unaligned")) {
        static uint8_t space[16];
        e = w_fd_tell(fd, P(space + 1));
    } else e = -1;
    say("%s -> e=%d got=%u\n", which, e, got);
    read_n(fd, 4, "after the fault");
    tell(fd);
    close_fd(fd);
}

/* arguments wasmtime refuses outright (an invalid enum or flags value) */
static void s_badargs(const char *which) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 2, "before");
    flush();
    if (!strcmp(which, "badwhence")) seek(fd, 0, 3);
    else if (!strcmp(which, "badadvise")) say("advise 9 -> e=%d\n", w_fd_advise(fd, 0, 10, 9));
    else if (!strcmp(which, "badrights")) open_at(3, "a.txt", 5, 1, 0, ~0ull, 0, "a.txt rights=~0");
    read_n(fd, 2, "after");
    close_fd(fd);
}

/* fd_prestat_dir_name on what is not a preopen */
static void s_prestat_file(void) {
    int32_t f = open_r("a.txt");
    uint8_t name[16];
    const int32_t fds[] = {0, 1, 2, f, 99};
    for (int k = 0; k < 5; k++) say("prestat_dir_name %d -> e=%d\n", fds[k], w_fd_prestat_dir_name(fds[k], P(name), 16));
    read_n(f, 2, "a");
    close_fd(f);
}

/* access times: the tree's files were last read and written in 2001 (relatime: a read updates atime) */
static void atime_of(const char *label, int32_t fd, const char *path) {
    __wasi_filestat_t s;
    memset(&s, 0, sizeof s);
    int32_t e = fd >= 0 ? w_fd_filestat_get(fd, P(&s)) : w_path_filestat_get(3, 1, P(path), strlen(path), P(&s));
    say("%s -> e=%d atim_is_mtim=%d\n", label, e, s.atim == s.mtim);
}

static void s_atime(void) {
    int32_t fd = open_r("a.txt");
    atime_of("a opened", fd, 0);
    read_n(fd, 3, "a");
    atime_of("a read", fd, 0);
    int32_t b = open_r("b.txt");
    atime_of("b opened", b, 0);
    atime_of("one.txt never opened", -1, "one.txt");
    atime_of("a read, after the hand-over", fd, 0);
}

/* the preopen closed, renumbered over */
static void s_closepre(void) {
    int32_t fd = open_r("a.txt");
    read_n(fd, 3, "a");
    close_fd(3);
    open_r("b.txt");
    read_n(fd, 3, "a again");
    uint8_t ps[8];
    say("prestat 3 -> e=%d\n", w_fd_prestat_get(3, P(ps)));
    int32_t g = open_at(4, "a.txt", 5, 1, 0, READ, 0, "a.txt in fd 4");
    read_n(g, 3, "a in 4");
}

/* five preopens (3..7: more than the device serves) */
static void s_five(void) {
    for (int32_t pre = 3; pre < 9; pre++) {
        char label[32];
        snprintf(label, sizeof label, "a.txt in fd %d", pre);
        int32_t fd = open_at(pre, "a.txt", 5, 1, 0, READ, 0, label);
        read_n(fd, 5, label);
        fstat_fd(fd);
    }
}

/* whether the preopen's listing (fd_readdir) holds `name` */
static int listed(const char *name) {
    static uint8_t d[8192];
    uint32_t used = 0;
    if (w_fd_readdir(3, P(d), sizeof d, 0, P(&used)) != 0) return -1;
    for (uint32_t at = 0; at + sizeof(__wasi_dirent_t) <= used;) {
        __wasi_dirent_t e;
        memcpy(&e, d + at, sizeof e);
        at += sizeof e;
        if (e.d_namlen == strlen(name) && at + e.d_namlen <= used && !memcmp(d + at, name, e.d_namlen)) return 1;
        at += e.d_namlen;
    }
    return 0;
}

/* one instance removes a file (args: unlink NAME), another watches it (args: watch NAME): the listing and
   an open of the name, each round; a name already gone from the listing cannot be opened afterwards */
static void s_watch(const char *name) {
    int last = -1;
    for (int round = 0; round < 40; round++) {
        int l = listed(name);
        uint32_t fd;
        int opened = w_path_open(3, 1, P(name), strlen(name), 0, READ, READ, 0, P(&fd)) == 0;
        if (opened) w_fd_close(fd);
        if (l * 2 + opened != last) say("watch %s: listed=%d opened=%d\n", name, l, opened);
        last = l * 2 + opened;
        w_sched_yield();
    }
}

/* stdio on the preopen (wasi-libc: fopen, fread through readv, fgets, fseek, ftell, fstat, stat) */
/* Files and directories made new, written in place and at the end, in a new directory, beside the snapshot's,
   opened to write only and to read and write: the device makes them all (the host, when the run ends). */
static void write_text(int32_t fd, const char *label, const char *a, const char *b) {
    __wasi_ciovec_t v[2] = {{(const uint8_t *)a, strlen(a)}, {(const uint8_t *)b, strlen(b)}};
    uint32_t n = 0xdeadbeef;
    int32_t e = w_fd_write(fd, P(v), b[0] ? 2 : 1, P(&n));
    say("write %s fd=%d -> e=%d n=%u\n", label, FD(fd), e, e == 0 ? n : 0);
}
static void s_make(void) {
    say("mkdir out -> e=%d\n", w_path_create_directory(3, P("out"), 3));
    say("mkdir out/in -> e=%d\n", w_path_create_directory(3, P("out/in"), 6));
    int32_t fd = create("out/in/new.txt", "first line\n");
    tell(fd);
    fdstat(fd);
    write_text(fd, "more", "two parts\n", "");
    seek(fd, 0, 0);
    write_text(fd, "in place", "FIRST", "");
    seek(fd, 0, 2);
    write_text(fd, "at the end", "end\n", "");
    seek(fd, -4, 1);
    tell(fd);
    close_fd(fd);
    int32_t wo = open_at(3, "sub/wo.txt", 10, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R(FD_WRITE), 0,
                         "sub/wo.txt excl, write only");
    fdstat(wo);
    write_text(wo, "wo", "only written\n", "");
    int32_t top = create("top.txt", "at the top\n");
    write_text(wo, "wo again", "second\n", "");
    seek(top, 5, 2);
    write_text(top, "past the end", "after a hole\n", "");
    close_fd(top);
    close_fd(wo);
    int32_t empty = open_at(3, "out/empty.txt", 13, 0, __WASI_OFLAGS_CREAT, WRITE, 0, "out/empty.txt");
    close_fd(empty);
    int32_t log = open_at(3, "log.txt", 7, 0, __WASI_OFLAGS_CREAT, WRITE, __WASI_FDFLAGS_APPEND, "log.txt append");
    write_text(log, "log", "one\n", "");
    seek(log, 0, 0);
    write_text(log, "log at 0", "two\n", "");
    seek(log, 2, 0);
    write_text(log, "nothing", "", "");
    tell(log);
    fdstat(log);
    close_fd(log);
    /* relative to a directory opened below the preopen */
    int32_t sub = open_at(3, "sub/deep", 8, 0, __WASI_OFLAGS_DIRECTORY, READ, 0, "sub/deep");
    say("mkdir sub/deep/made -> e=%d\n", w_path_create_directory(sub, P("made"), 4));
    int32_t in = open_at(sub, "made/in.txt", 11, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0,
                         "sub/deep/made/in.txt");
    write_text(in, "in", "below a directory fd\n", "");
    close_fd(in);
    close_fd(sub);
}
/* Made on the device, then a call only the host answers (a path below a made file: ENOTDIR); the files still
   open on the device go on being written after the hand-over. */
static void s_make_back(void) {
    say("mkdir made -> e=%d\n", w_path_create_directory(3, P("made"), 4));
    int32_t fd = create("made/f.txt", "written on the device\n");
    int32_t log = open_at(3, "made/log.txt", 12, 0, __WASI_OFLAGS_CREAT, WRITE, __WASI_FDFLAGS_APPEND, "made/log.txt");
    write_text(log, "log", "on the device\n", "");
    int32_t again = create("made/g.txt", "second file\n");
    write_text(fd, "f.txt again", "more of f\n", "");
    /* a file made here is no directory: paths below it are the host's (ENOTDIR) */
    open_at(fd, "x", 1, 0, 0, READ, 0, "x below made/f.txt");
    close_fd(again);
    say("mkdir sub -> e=%d\n", w_path_create_directory(3, P("sub"), 3));
    open_at(3, "a.txt", 5, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0, "a.txt excl");
    write_text(fd, "after the hand-over", "and on the host\n", "");
    seek(log, 0, 0);
    write_text(log, "log after the hand-over", "on the host\n", "");
    fdstat(log);
    close_fd(log);
    fstat_fd(fd);
    seek(fd, 0, 0);
    read_all(fd, "made/f.txt");
    close_fd(fd);
    int32_t g = open_r("made/g.txt");
    read_n(g, 100, "made/g.txt");
    close_fd(g);
}
/* More bytes than the device's buffer holds (with `big`), more new names than it has slots for: the host
   takes over. */
static void s_make_many(int with_big) {
    if (!with_big) goto names;
    int32_t big = create("big.out", "start\n");
    for (int k = 0; k < (int)sizeof buf; k++) buf[k] = (uint8_t)('a' + k % 26);
    for (int k = 0; k < 18; k++) {  /* 1.1 MiB: past OV_BUF_MAX (devfiles.py) */
        __wasi_ciovec_t v = {buf, sizeof buf};
        uint32_t n = 0;
        say("write 64 KiB -> e=%d n=%u\n", w_fd_write(big, P(&v), 1, P(&n)), n);
    }
    close_fd(big);
names:;
    char name[32];
    for (int k = 0; k < 20; k++) {
        snprintf(name, sizeof name, "many%02d.txt", k);
        int32_t fd = create(name, name);
        close_fd(fd);
    }
}

/* Preopens "." and "s" (its sub): a file made through one is there through the other. */
static void s_make_nested(void) {
    int32_t fd = create("sub/n.txt", "made through .\n");
    close_fd(fd);
    open_at(4, "n.txt", 5, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0, "s/n.txt excl");
    int32_t again = open_at(4, "m.txt", 5, 0, __WASI_OFLAGS_CREAT, WRITE, 0, "s/m.txt");
    close_fd(again);
    open_at(3, "sub/m.txt", 9, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0, "sub/m.txt excl");
}

/* Files of the snapshot opened to truncate: replaced on the device (one with another link, or open, is the
   host's); reading one back is the host's. */
static void s_make_replace(void) {
    int32_t fd = create("b.txt", "b replaced\n");
    write_text(fd, "b", "second line\n", "");
    close_fd(fd);
    int32_t one = create("one.txt", "one replaced\n");
    close_fd(one);
    int32_t keep = open_r("empty.txt");
    int32_t busy = create("empty.txt", "not while open\n");
    close_fd(busy);
    close_fd(keep);
    int32_t b = open_r("b.txt");
    read_n(b, 100, "b.txt");
    close_fd(b);
    int32_t hard = create("a.txt", "a has two names\n");
    close_fd(hard);
}

/* Names that exist, asked for anew (what a job run again in its own directories does): EEXIST. */
static void s_make_exists(void) {
    const char *names[] = {"sub", "a.txt", "link_none", "link_dir", "m/f00.txt"};
    for (int k = 0; k < 5; k++) {
        const char *name = names[k];
        say("mkdir %s -> e=%d\n", name, w_path_create_directory(3, P(name), (uint32_t)strlen(name)));
        open_at(3, name, strlen(name), 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0, name);
    }
    say("mkdir fresh -> e=%d\n", w_path_create_directory(3, P("fresh"), 5));
    say("mkdir fresh again -> e=%d\n", w_path_create_directory(3, P("fresh"), 5));
    open_at(3, "fresh", 5, 0, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, WRITE, 0, "fresh excl");
}

/* A file made here, opened to read too, read back: from its records on the device, holes as zeros. */
static void s_make_readback(void) {
    int32_t fd = create("rb.txt", "hello world\n");
    seek(fd, 0, 0);
    read_n(fd, 5, "rb.txt");
    read_n(fd, 100, "rb.txt");
    pread_at(fd, 6, 5);
    seek(fd, 20, 0);
    write_text(fd, "past the end", "X", "");
    seek(fd, 3, 0);
    write_text(fd, "over", "LO", "");
    pread_at(fd, 0, 30);
    seek(fd, 0, 0);
    read_all(fd, "rb.txt");
    close_fd(fd);
    int32_t wo = open_at(3, "wo.txt", 6, 0, __WASI_OFLAGS_CREAT, R(FD_WRITE), 0, "wo.txt write only");
    write_text(wo, "wo", "unread\n", "");
    read_n(wo, 5, "wo.txt");
    close_fd(wo);
}

/* A file made here, closed, then opened again to write (as a WAV writer patches its header): without
   O_CREAT, with it but not O_EXCL, to append, and to truncate while still empty; read and written at
   seeked positions. */
static void s_make_reopen(void) {
    int32_t fd = create("w.bin", "RIFF....WAVEdata");
    close_fd(fd);
    int32_t rw = open_at(3, "w.bin", 5, 0, 0, WRITE, 0, "w.bin again");
    read_n(rw, 4, "w.bin");
    seek(rw, 0, 2);
    write_text(rw, "samples", "0123456789", "");
    seek(rw, 4, 0);
    write_text(rw, "size", "SIZE", "");
    fdstat(rw);
    close_fd(rw);
    int32_t c = open_at(3, "w.bin", 5, 0, __WASI_OFLAGS_CREAT, WRITE, 0, "w.bin creat");
    seek(c, 0, 0);
    read_all(c, "w.bin");
    close_fd(c);
    int32_t a = open_at(3, "w.bin", 5, 0, 0, R(FD_WRITE), __WASI_FDFLAGS_APPEND, "w.bin append");
    write_text(a, "appended", "END\n", "");
    fdstat(a);
    close_fd(a);
    int32_t e = open_at(3, "e.bin", 5, 0, __WASI_OFLAGS_CREAT, WRITE, 0, "e.bin");
    close_fd(e);
    int32_t t = open_at(3, "e.bin", 5, 0, __WASI_OFLAGS_TRUNC, WRITE, 0, "e.bin trunc");
    write_text(t, "e.bin", "was empty\n", "");
    close_fd(t);
    int32_t r = open_at(3, "w.bin", 5, 0, 0, WRITE, 0, "w.bin to read");
    read_all(r, "w.bin");
    close_fd(r);
    int32_t ro = open_r("w.bin");
    read_n(ro, 8, "w.bin read-only");
    fdstat(ro);
    seek(ro, -4, 2);
    read_all(ro, "w.bin read-only");
    close_fd(ro);
    /* "./" before a name: the same name */
    int32_t dot = create("./dot.txt", "made as ./dot.txt\n");
    close_fd(dot);
    int32_t dr = open_r("dot.txt");
    read_all(dr, "dot.txt");
    close_fd(dr);
    say("mkdir ./././dd -> e=%d\n", w_path_create_directory(3, P("./././dd"), 8));
    int32_t in = create("./dd/in.txt", "in dd\n");
    close_fd(in);
    int32_t x = open_r("./sub/x.txt");
    read_all(x, "./sub/x.txt");
    close_fd(x);
    say("unlink ./dd/in.txt -> e=%d\n", w_path_unlink_file(3, P("./dd/in.txt"), 11));
}

/* A made file opened again to read only, then truncated: the host takes the instance over and refuses it
   (EINVAL), as a read-only descriptor. */
static void s_make_reopen_size(void) {
    int32_t fd = create("t.txt", "keep me\n");
    close_fd(fd);
    int32_t ro = open_r("t.txt");
    say("set_size read-only -> e=%d\n", w_fd_filestat_set_size(ro, 0));
    read_all(ro, "t.txt");
    close_fd(ro);
}

/* Opening a made file again where the host answers: while open in another descriptor, to truncate it with
   bytes in it, as a directory, after it was unlinked, a made directory to write, and to read only. */
static void s_make_reopen_host(void) {
    int32_t fd = create("h.txt", "first\n");
    int32_t two = open_at(3, "h.txt", 5, 0, 0, WRITE, 0, "h.txt while open");
    write_text(two, "h.txt second", "2nd", "");
    close_fd(two);
    close_fd(fd);
    int32_t t = open_at(3, "h.txt", 5, 0, __WASI_OFLAGS_TRUNC, WRITE, 0, "h.txt trunc");
    write_text(t, "h.txt", "trunc", "");
    close_fd(t);
    open_at(3, "h.txt", 5, 0, __WASI_OFLAGS_DIRECTORY, READ, 0, "h.txt as a directory");
    int32_t g = create("gone.txt", "gone\n");
    close_fd(g);
    say("unlink gone.txt -> e=%d\n", w_path_unlink_file(3, P("gone.txt"), 8));
    open_at(3, "gone.txt", 8, 0, 0, WRITE, 0, "gone.txt");
    say("mkdir md -> e=%d\n", w_path_create_directory(3, P("md"), 2));
    open_at(3, "md", 2, 0, 0, WRITE, 0, "md to write");
    int32_t w = open_at(3, "h.txt", 5, 0, 0, WRITE, 0, "h.txt to write");
    int32_t h = open_r("h.txt");
    read_all(h, "h.txt while open to write");
    close_fd(h);
    close_fd(w);
    int32_t ro = open_r("h.txt");
    write_text(ro, "h.txt read-only", "no", "");
    close_fd(ro);
    say("mkdir ./ -> e=%d\n", w_path_create_directory(3, P("./"), 2));
    open_at(3, ".//h.txt", 8, 0, 0, READ, 0, ".//h.txt");
}

/* A temporary file: made, written, read back, closed and unlinked on the device; one unlinked while open,
   a directory and a file of the snapshot are the host's. */
static void s_make_temp(void) {
    int32_t fd = create("tmp.txt", "scratch\n");
    seek(fd, 0, 0);
    read_n(fd, 100, "tmp.txt");
    close_fd(fd);
    say("unlink tmp.txt -> e=%d\n", w_path_unlink_file(3, P("tmp.txt"), 7));
    say("unlink tmp.txt again -> e=%d\n", w_path_unlink_file(3, P("tmp.txt"), 7));
    int32_t again = create("tmp.txt", "second life\n");
    close_fd(again);
    say("mkdir d -> e=%d\n", w_path_create_directory(3, P("d"), 1));
    int32_t open_one = create("d/open.txt", "still open\n");
    say("unlink d/open.txt -> e=%d\n", w_path_unlink_file(3, P("d/open.txt"), 10));
    close_fd(open_one);
    say("unlink d -> e=%d\n", w_path_unlink_file(3, P("d"), 1));
    say("unlink b.txt -> e=%d\n", w_path_unlink_file(3, P("b.txt"), 5));
}

static void s_libc(void) {
    FILE *f = fopen("a.txt", "r");
    if (!f) { say("fopen failed\n"); return; }
    char line[64];
    while (fgets(line, sizeof line, f)) say("line %s", line);
    say("ftell %ld\n", ftell(f));
    fseek(f, 7, SEEK_SET);
    size_t n = fread(line, 1, 6, f);
    show("fread", (uint8_t *)line, n, 16);
    fseek(f, -3, SEEK_END);
    n = fread(line, 1, 10, f);
    show("tail", (uint8_t *)line, n, 16);
    fclose(f);
    f = fopen("big.bin", "rb");
    if (!f) { say("no big.bin\n"); return; }
    size_t total = 0;
    uint32_t h = 2166136261u;
    int c;
    while ((c = fgetc(f)) != EOF) h = (h ^ (uint8_t)c) * 16777619u, total++;
    say("big.bin via fgetc: %zu bytes hash=%08x\n", total, h);
    fclose(f);
    say("fopen missing -> %s\n", fopen("missing.txt", "r") ? "opened" : "NULL");
}

/* a directory's records from fd_readdir into d (at most cap bytes; the bytes used), from `cookie` */
static uint32_t list_raw(int32_t fd, uint8_t *d, uint32_t cap, uint64_t cookie, int32_t *e) {
    uint32_t got = 0;
    *e = w_fd_readdir(fd, P(d), cap, cookie, P(&got));
    return got;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* fd_readdir of `fd` with a buffer of `chunk` bytes at a time, as libc walks it (the next cookie from the
   last whole record): the names and types in name order (the order and the cookies are the runtime's), and
   whether the walk gave the records one large read gives */
static void list_dir(int32_t fd, uint32_t chunk, const char *label) {
    static uint8_t whole[16384], part[16384], joined[16384];
    int32_t e;
    uint32_t n = list_raw(fd, whole, sizeof whole, 0, &e);
    say("readdir %s -> e=%d", label, e);
    if (e != 0) { say("\n"); return; }
    uint32_t have = 0, rounds = 0;
    uint64_t cookie = 0;
    for (;;) {
        uint32_t got = list_raw(fd, part, chunk, cookie, &e);
        if (e != 0 || ++rounds > 1000) break;
        uint32_t at = 0;
        while (at + sizeof(__wasi_dirent_t) <= got) {
            __wasi_dirent_t r;
            memcpy(&r, part + at, sizeof r);
            if (at + sizeof r + r.d_namlen > got) break;
            memcpy(joined + have, part + at, sizeof r + r.d_namlen);
            have += sizeof r + r.d_namlen;
            at += sizeof r + r.d_namlen;
            cookie = r.d_next;
        }
        if (got < chunk) break;
    }
    char *names[300];
    int count = 0;
    for (uint32_t at = 0; at + sizeof(__wasi_dirent_t) <= n && count < 300;) {
        __wasi_dirent_t r;
        memcpy(&r, whole + at, sizeof r);
        at += sizeof r;
        char *name = malloc(r.d_namlen + 8);
        snprintf(name, r.d_namlen + 8, "%.*s:%d", (int)r.d_namlen, (const char *)whole + at, r.d_type);
        names[count++] = name;
        at += r.d_namlen;
    }
    qsort(names, count, sizeof names[0], by_string);
    say(" entries=%d walk_matches=%d rounds>1=%d:", count, have == n && !memcmp(joined, whole, n), rounds > 1);
    for (int k = 0; k < count; k++) say(" %s", names[k]), free(names[k]);
    say("\n");
}

/* directories: the preopen's listing and those of directories opened here, their stat and fdstat; then
   what a directory refuses (reading it), and what only a directory allows (fd_readdir of a file) */
static void s_readdir(void) {
    list_dir(3, 8192, "preopen");
    list_dir(3, 64, "preopen 64 bytes at a time");
    int32_t dot = open_at(3, ".", 1, 1, __WASI_OFLAGS_DIRECTORY, READ | R(FD_READDIR), 0, ". as a directory");
    list_dir(dot, 100, ".");
    fdstat(dot);
    fstat_fd(dot);
    int32_t sub = open_at(3, "sub", 3, 1, __WASI_OFLAGS_DIRECTORY, READ | R(FD_READDIR), 0, "sub");
    list_dir(sub, 50, "sub");
    fstat_fd(sub);
    stat_path("sub", 1);
    stat_path("sub/deep", 0);
    /* paths relative to a directory opened here */
    int32_t x = open_at(sub, "x.txt", 5, 1, 0, READ, 0, "x.txt relative to sub");
    read_all(x, "x.txt");
    close_fd(x);
    int32_t y = open_at(sub, "deep/y.txt", 10, 1, 0, READ, 0, "deep/y.txt relative to sub");
    read_all(y, "deep/y.txt");
    fstat_fd(y);
    close_fd(y);
    __wasi_filestat_t st;
    memset(&st, 0, sizeof st);
    print_filestat("path_filestat deep relative to sub", w_path_filestat_get(sub, 0, P("deep"), 4, P(&st)), &st);
    int32_t again = open_at(sub, ".", 1, 1, __WASI_OFLAGS_DIRECTORY, READ | R(FD_READDIR), 0, ". relative to sub");
    list_dir(again, 8192, "sub again");
    close_fd(again);
    int32_t m = open_at(3, "m", 1, 1, 0, READ | R(FD_READDIR), 0, "m without O_DIRECTORY");
    list_dir(m, 40, "m");
    uint8_t d[64];
    int32_t e;
    uint32_t got = list_raw(m, d, sizeof d, 1000, &e);
    say("readdir m past the end -> e=%d used=%u\n", e, got);
    close_fd(m);
    close_fd(dot);
    /* the host's from here: a name the snapshot lacks, then a file asked for as a directory */
    open_at(sub, "missing.txt", 11, 1, 0, READ, 0, "missing.txt relative to sub");
    open_at(3, "a.txt", 5, 1, __WASI_OFLAGS_DIRECTORY, READ, 0, "a.txt as a directory");
    int32_t a = open_r("a.txt");
    got = list_raw(a, d, sizeof d, 0, &e);
    say("readdir a.txt -> e=%d\n", e);
    read_n(sub, 4, "sub");
    list_dir(sub, 8192, "sub after the host took over");
    close_fd(sub);
    close_fd(a);
}

/* wasi-libc's opendir/readdir/rewinddir on a directory of 14 files, each stat'ed and read by path */
static void s_libc_readdir(void) {
    DIR *dir = opendir("m");
    if (!dir) { say("opendir failed\n"); return; }
    char *names[64];
    int count = 0;
    struct dirent *ent;
    while ((ent = readdir(dir)) != NULL && count < 64)
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..")) names[count++] = strdup(ent->d_name);
    rewinddir(dir);
    int again = 0;
    while (readdir(dir) != NULL) again++;
    closedir(dir);
    qsort(names, count, sizeof names[0], by_string);
    say("libc readdir m: %d entries, %d after rewinddir\n", count, again);
    for (int k = 0; k < count; k++) {
        char path[64];
        snprintf(path, sizeof path, "m/%s", names[k]);
        struct stat st;
        int r = stat(path, &st);
        FILE *f = fopen(path, "r");
        char line[32] = "";
        if (f) fgets(line, sizeof line, f), fclose(f);
        say("%s stat=%d dir=%d size=%lld %s", names[k], r, r == 0 && S_ISDIR(st.st_mode), (long long)st.st_size,
            f ? line : "(not opened)\n");
        free(names[k]);
    }
}

/* one instance of a batch with its own directory (args: sizes INDEX): data.bin of any size, names n*.txt */
static void s_sizes(int index) {
    int32_t fd = open_r("data.bin");
    fstat_fd(fd);
    read_all(fd, "data.bin");
    tell(fd);
    pread_at(fd, 1, 4);
    seek(fd, -2, __WASI_WHENCE_END);
    read_n(fd, 10, "last 2");
    seek(fd, 3000000, __WASI_WHENCE_SET);
    read_n(fd, 8, "at 3000000");
    seek(fd, 1, __WASI_WHENCE_SET);
    read_n(fd, 2, "at 1");
    for (int k = 0; k < 6; k++) {
        char name[16];
        snprintf(name, sizeof name, "n%d.txt", k);
        int32_t n = open_r(name);
        if (n >= 0) read_n(n, 40, name), close_fd(n);
    }
    if (index % 3 == 0) {
        close_fd(create("out.txt", "written by an instance\n"));
        int32_t o = open_r("out.txt");
        read_n(o, 100, "out.txt");
        close_fd(o);
    }
    read_n(fd, 8, "data.bin at the end");
    close_fd(fd);
}

/* a second preopen (fd 4) and files with the same name in both */
static void s_two(void) {
    int32_t a = open_r("a.txt");
    int32_t c = open_at(4, "c.txt", 5, 1, 0, READ, 0, "c.txt in fd 4");
    int32_t a4 = open_at(4, "a.txt", 5, 1, 0, READ, 0, "a.txt in fd 4");
    open_at(4, "b.txt", 5, 1, 0, READ, 0, "b.txt in fd 4");
    read_n(a, 100, "a in 3");
    read_n(c, 100, "c in 4");
    read_n(a4, 100, "a in 4");
    fstat_fd(a4);
}

/* one instance of a batch sharing the directory (args: share INDEX) */
static void s_share(int index) {
    if (index == 0) {
        int32_t a = open_r("shared.txt");
        read_n(a, 3, "writer before");
        for (int k = 0; k < 3; k++) w_sched_yield(); /* the readers read a few rounds first */
        close_fd(create("shared.tmp", "after\n"));
        say("rename -> e=%d\n", w_path_rename(3, P("shared.tmp"), 10, 3, P("shared.txt"), 10));
        say("unlink -> e=%d\n", w_path_unlink_file(3, P("doomed.txt"), 10));
        int32_t b = open_r("shared.txt");
        read_n(b, 100, "writer after");
        read_n(a, 100, "writer old fd");
        return;
    }
    /* readers: read the file and whether doomed.txt exists, many times; print each change only */
    char last[64] = "";
    int last_doomed = -1;
    for (int round = 0; round < 60; round++) {
        uint32_t fd, got = 0;
        __wasi_iovec_t v = {buf, 63};
        if (w_path_open(3, 1, P("shared.txt"), 10, 0, READ, READ, 0, P(&fd)) == 0) {
            w_fd_read(fd, P(&v), 1, P(&got));
            w_fd_close(fd);
        }
        buf[got] = 0;
        uint32_t d;
        int32_t e = w_path_open(3, 1, P("doomed.txt"), 10, 0, READ, READ, 0, P(&d));
        if (e == 0) w_fd_close(d);
        int doomed = e == 0;
        if (strcmp((char *)buf, last) || doomed != last_doomed) {
            say("reader sees %s", (char *)buf);
            say("reader doomed=%d\n", doomed);
            strcpy(last, (char *)buf);
            last_doomed = doomed;
        }
        w_sched_yield(); /* a host call that sees no descriptor: the others get their turn */
    }
}

int main(void) {
    static char *argv[64];
    static char argbuf[4096];
    uint32_t argc = 0, size = 0;
    if (w_args_sizes_get(P(&argc), P(&size)) != 0 || argc > 64 || size > sizeof argbuf) return 2;
    w_args_get(P(argv), P(argbuf));
    for (uint32_t k = 1; k < argc; k++) {
        const char *s = argv[k];
        say("== %s\n", s);
        if (!strcmp(s, "nofd")) show_fds = 0;
        else if (!strcmp(s, "basic")) s_basic();
        else if (!strcmp(s, "iovecs")) s_iovecs();
        else if (!strcmp(s, "pread")) s_pread();
        else if (!strcmp(s, "seek")) s_seek();
        else if (!strcmp(s, "stat")) s_stat();
        else if (!strcmp(s, "reuse")) s_reuse();
        else if (!strcmp(s, "many")) s_many();
        else if (!strcmp(s, "paths")) s_paths();
        else if (!strcmp(s, "badf")) s_badf();
        else if (!strcmp(s, "dirfd")) s_dirfd();
        else if (!strcmp(s, "prestat")) s_prestat();
        else if (!strcmp(s, "rights") || !strcmp(s, "syncflags")) s_rights(s[0] == 's');
        else if (!strcmp(s, "renumber")) s_renumber();
        else if (!strcmp(s, "handover")) s_handover();
        else if (!strcmp(s, "advise") || !strcmp(s, "allocate") || !strcmp(s, "set_times") || !strcmp(s, "sync") ||
                 !strcmp(s, "set_size") || !strcmp(s, "set_flags") || !strcmp(s, "poll"))
            s_hostcall(s);
        else if (!strcmp(s, "badwhence") || !strcmp(s, "badadvise") || !strcmp(s, "badrights")) s_badargs(s);
        else if (!strcmp(s, "preadfar")) s_preadfar();
        else if (!strcmp(s, "seekfar")) s_seekfar();
        else if (!strcmp(s, "reuse_desc")) s_reuse_desc();
        else if (!strcmp(s, "prestat_file")) s_prestat_file();
        else if (!strcmp(s, "atime")) s_atime();
        else if (!strcmp(s, "closepre")) s_closepre();
        else if (!strcmp(s, "five")) s_five();
        else if (!strcmp(s, "libc")) s_libc();
        else if (!strcmp(s, "make")) s_make();
        else if (!strcmp(s, "make_back")) s_make_back();
        else if (!strcmp(s, "make_nested")) s_make_nested();
        else if (!strcmp(s, "make_replace")) s_make_replace();
        else if (!strcmp(s, "make_exists")) s_make_exists();
        else if (!strcmp(s, "make_readback")) s_make_readback();
        else if (!strcmp(s, "make_temp")) s_make_temp();
        else if (!strcmp(s, "make_reopen")) s_make_reopen();
        else if (!strcmp(s, "make_reopen_host")) s_make_reopen_host();
        else if (!strcmp(s, "make_reopen_size")) s_make_reopen_size();
        else if (!strcmp(s, "make_many") || !strcmp(s, "make_names")) s_make_many(s[5] == 'm');
        else if (!strcmp(s, "readdir")) s_readdir();
        else if (!strcmp(s, "libc_readdir")) s_libc_readdir();
        else if (!strcmp(s, "watch") && k + 1 < argc) s_watch(argv[++k]);
        else if (!strcmp(s, "unlink") && k + 1 < argc) {
            const char *name = argv[++k];
            say("unlink %s -> e=%d\n", name, w_path_unlink_file(3, P(name), strlen(name)));
        }
        else if (!strcmp(s, "overwrite")) s_overwrite();
        else if (!strcmp(s, "rename")) s_rename();
        else if (!strncmp(s, "fault_", 6)) s_fault(s);
        else if (!strcmp(s, "two")) s_two();
        else if ((!strcmp(s, "share") || !strcmp(s, "sizes")) && k + 1 < argc) {
            int index = 0;
            for (const char *q = argv[++k]; *q; q++) index = index * 10 + (*q - '0');
            if (s[1] == 'h') s_share(index);
            else s_sizes(index);
        } else say("unknown scenario %s\n", s);
    }
    flush();
    w_proc_exit(0);
}
