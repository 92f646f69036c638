/* Random sequences of WASI file calls on the tree of tests/test_devfiles.py (make_tree), every result
   printed: the device's answers must be the host's, byte for byte, whatever the order of the calls.
   Usage: wasi_random SEED STEPS [easy] [portable] [make]. Only reads (and opens asked with write rights,
   which change nothing by themselves): the tree stays as it was; with "make", also new files and
   directories, created (or truncated), written and seeked in. With "easy", only names of the
   snapshot, descriptors opened here (or the preopen) and the flags the device serves: long sequences
   stay on the device before a call hands them to the host. With "portable", listings print only whether
   they gave anything, which wasmtime's (in the OS's order) agree with. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

#include "wasi_raw.h"

static uint64_t state;
static uint32_t rnd(uint32_t n) {  /* xorshift64*, in [0, n) */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)((state * 2685821657736338717ull) >> 33) % n;
}

static uint32_t fnv(const uint8_t *b, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < n; k++) h = (h ^ b[k]) * 16777619u;
    return h;
}

static const char *PATHS[] = {".", "a.txt", "b.txt", "sub", "sub/x.txt", "sub/deep", "sub/deep/y.txt", "m",
                              "m/f03.txt", "empty.txt", "m/f13.txt", "x.txt", "deep/y.txt", "y.txt", "missing", "..",
                              "a.txt/", "sub/", "./a.txt", "sub/../a.txt", "big.bin", "link_in", "link_dir",
                              "unicode-\xc3\xa9.txt", "hard.txt", "deep", "f00.txt", "one.txt"};
#define NPATHS (sizeof PATHS / sizeof PATHS[0])

static int32_t fds[16];
static int dirs[16];  /* fds[k] is a directory */
static int nfds;
static int easy, portable, make;
/* PATHS[0 .. NEASY) are in the snapshot; which of them are directories */
#define NEASY 10
static const int IS_DIR[NEASY] = {1, 0, 0, 1, 0, 1, 0, 1, 0, 0};

/* a descriptor to act on: one opened here mostly, else a preopen, stdio or a number never given; easy: a
   directory (or the preopen) for a listing, a file for the rest */
static int32_t pick_fd(int want_dir) {
    uint32_t r = rnd(10);
    if (easy) {
        int32_t pick[16];
        int n = 0;
        for (int k = 0; k < nfds; k++)
            if (dirs[k] == want_dir) pick[n++] = fds[k];
        return n ? pick[rnd(n)] : want_dir == 1 ? 3 : -1;
    }
    if (r < 7 && nfds) return fds[rnd(nfds)];
    if (r < 9) return 3;
    return (int32_t)rnd(24);
}

static int pick_path(void) { return (int)rnd(easy ? NEASY : NPATHS); }

/* an inode as printed: wasmtime gives a directory's fstat another number than the file system's; runs that
   make files are compared across trees, whose inodes and times differ */
static uint64_t ino_of(const __wasi_filestat_t *s) {
    return make || (portable && s->filetype == __WASI_FILETYPE_DIRECTORY) ? 0 : s->ino;
}

/* what "make" creates: new names (some twice, some below others), and names the tree has (files, one with
   two links, a directory) */
static const char *MAKE_FILES[] = {"n0.txt", "n1.txt", "new/n2.txt", "sub/n3.txt", "new/deep/n4.txt", "a.txt", "m",
                                   "sub/nd/n5.txt", "n0.txt", "b.txt", "one.txt", "sub/x.txt"};
static const char *MAKE_DIRS[] = {"new", "new/deep", "sub/nd", "new", "sub", "n0.txt"};
#define NMAKE_FILES (sizeof MAKE_FILES / sizeof MAKE_FILES[0])
#define NMAKE_DIRS (sizeof MAKE_DIRS / sizeof MAKE_DIRS[0])

static void step(int k) {
    static uint8_t buf[8192];
    uint32_t op = rnd(make ? 18 : 13);
    if (op == 17) {  /* make: unlink a name made (or not) */
        const char *path = MAKE_FILES[rnd(NMAKE_FILES)];
        int32_t e = w_path_unlink_file(3, P(path), (uint32_t)strlen(path));
        say("%d unlink %s -> e=%d\n", k, path, e);
        return;
    }
    if (op >= 13 && op <= 16) {  /* make: create, mkdir, write twice as often */
        int32_t e;
        static char fresh[32];
        if (op == 13) {
            /* easy: a new name below a directory of the snapshot, every time */
            const char *path = MAKE_FILES[rnd(NMAKE_FILES)];
            if (easy) snprintf(fresh, sizeof fresh, "%se%d.txt", rnd(2) ? "sub/" : "", k), path = fresh;
            uint32_t oflags = __WASI_OFLAGS_CREAT | (rnd(2) ? __WASI_OFLAGS_TRUNC : 0) | (rnd(4) ? 0 : __WASI_OFLAGS_EXCL);
            uint64_t rights = R(FD_WRITE) | R(FD_SEEK) | R(FD_TELL) | (rnd(2) ? R(FD_READ) : 0);
            uint32_t fdflags = rnd(6) || easy ? 0 : __WASI_FDFLAGS_APPEND, got = 0xdeadbeef;
            e = w_path_open(3, 0, P(path), (uint32_t)strlen(path), (int32_t)oflags, rights, rights, (int32_t)fdflags,
                            P(&got));
            say("%d create %s of=%u fl=%u -> e=%d", k, path, oflags, fdflags, e);
            if (e == 0) {
                say(" new=%u", got);
                if (nfds < 16) dirs[nfds] = 2, fds[nfds++] = (int32_t)got;  /* 2: a file made here */
            }
        } else if (op == 14) {
            const char *path = MAKE_DIRS[rnd(NMAKE_DIRS)];
            if (easy) snprintf(fresh, sizeof fresh, "d%d", k), path = fresh;
            e = w_path_create_directory(3, P(path), (uint32_t)strlen(path));
            say("%d mkdir %s -> e=%d", k, path, e);
        } else {
            int32_t fd = pick_fd(easy ? 2 : 0);  /* easy: a file made here */
            if (fd < 0) fd = 1;
            uint32_t n = rnd(3) ? rnd(40) : 300;
            for (uint32_t j = 0; j < n; j++) buf[j] = (uint8_t)('a' + (k + j) % 26);
            __wasi_ciovec_t v[2] = {{buf, n / 3}, {buf + n / 3, n - n / 3}};
            uint32_t got = 0;
            e = w_fd_write(fd, P(v), 1 + rnd(2), P(&got));
            say("%d write fd=%d %u -> e=%d n=%u", k, fd, n, e, got);
        }
        say("\n");
        return;
    }
    int32_t fd = pick_fd(op == 0 || op == 1 || op == 4 || op == 5 || op == 8);
    if (fd < 0) op = 0, fd = 3;  /* easy, and no file open yet */
    say("%d op%u fd=%d", k, op, fd);
    switch (op) {
        case 0: case 1: {  /* path_open */
            int which = pick_path();
            const char *path = PATHS[which];
            if (easy && which != 0) fd = 3;  /* the snapshot's names are the preopen's */
            /* never CREAT or TRUNC: the tree must stay as it is for the next run to compare with */
            uint32_t of = rnd(easy ? 7 : 8), oflags = of < 5 ? 0 : of < 7 ? __WASI_OFLAGS_DIRECTORY
                                                                          : rnd(16) & ~(__WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC);
            if (easy && !IS_DIR[which]) oflags = 0;
            uint32_t fl = rnd(easy ? 5 : 8), fdflags = fl < 5 ? 0 : fl < 7 ? __WASI_FDFLAGS_NONBLOCK : rnd(32);
            uint32_t rr = rnd(easy ? 9 : 10);
            uint64_t rights = rr < 6 ? R(FD_READ) | R(FD_SEEK) | R(FD_TELL) | R(FD_FILESTAT_GET)
                              : rr < 9 ? R(FD_READ) | R(FD_READDIR) : R(FD_READ) | R(FD_WRITE);
            uint32_t got = 0xdeadbeef;
            int32_t e = w_path_open(fd, rnd(2), P(path), (uint32_t)strlen(path), (int32_t)oflags, rights, rights,
                                    (int32_t)fdflags, P(&got));
            say(" open %s of=%u fl=%u -> e=%d", path, oflags, fdflags, e);
            if (e == 0) {
                say(" new=%u", got);
                if (nfds < 16) dirs[nfds] = which < NEASY && IS_DIR[which], fds[nfds++] = (int32_t)got;
            }
            break;
        }
        case 2: case 3: {  /* fd_read */
            uint32_t n = rnd(3) ? rnd(64) : 4096;
            __wasi_iovec_t v[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
            uint32_t got = 0;
            int32_t e = w_fd_read(fd, P(v), 1 + rnd(2), P(&got));
            say(" read %u -> e=%d n=%u h=%08x", n, e, got, e == 0 ? fnv(buf, got) : 0);
            break;
        }
        case 4: case 5: {  /* fd_readdir */
            static const uint32_t sizes[] = {0, 10, 24, 30, 100, 200, 8192};
            static const uint64_t cookies[] = {0, 1, 2, 3, 5, 16, 1000, 0xffffffffffffffffull};
            uint32_t n = sizes[rnd(7)], got = 0xdead;
            /* with "make", from the start: the host keeps a listing from its cookie-0 read, which the device's
               hand-over may or may not have come before */
            uint64_t cookie = make ? 0 : cookies[rnd(8)];
            int32_t e = w_fd_readdir(fd, P(buf), n, cookie, P(&got));
            for (uint32_t at = 0; make && e == 0 && at + 8 < got;) {  /* inodes differ between trees */
                uint32_t len;
                memset(buf + at + 8, 0, got - (at + 8) < 8 ? got - (at + 8) : 8);
                if (at + 20 > got) break;
                memcpy(&len, buf + at + 16, 4);
                at += 24 + len;
            }
            if (portable)  /* wasmtime lists in the OS's order, its ".." is the parent: only whether it gave any */
                say(" readdir %u cookie=%llu -> e=%d some=%d", n, (unsigned long long)cookie, e, e == 0 && got > 0);
            else
                say(" readdir %u cookie=%llu -> e=%d used=%u h=%08x", n, (unsigned long long)cookie, e,
                    e == 0 ? got : 0, e == 0 ? fnv(buf, got) : 0);
            break;
        }
        case 6: {  /* fd_seek, fd_tell */
            int64_t off = (int64_t)rnd(200) - 50;
            uint32_t whence = rnd(3);
            uint64_t pos = 0;
            int32_t e = w_fd_seek(fd, off, (int32_t)whence, P(&pos));
            say(" seek %lld/%u -> e=%d pos=%llu", (long long)off, whence, e, e == 0 ? (unsigned long long)pos : 0);
            e = w_fd_tell(fd, P(&pos));
            say(" tell -> e=%d pos=%llu", e, e == 0 ? (unsigned long long)pos : 0);
            break;
        }
        case 7: {  /* fd_filestat_get */
            __wasi_filestat_t s;
            memset(&s, 0, sizeof s);
            int32_t e = w_fd_filestat_get(fd, P(&s));
            say(" fstat -> e=%d", e);
            if (e == 0)
                say(" type=%d size=%llu nlink=%llu ino=%llu mtim=%llu", s.filetype, (unsigned long long)s.size,
                    (unsigned long long)s.nlink, (unsigned long long)ino_of(&s), (unsigned long long)(make ? 0 : s.mtim));
            break;
        }
        case 8: {  /* path_filestat_get */
            int which = pick_path();
            const char *path = PATHS[which];
            if (easy && which != 0) fd = 3;
            __wasi_filestat_t s;
            memset(&s, 0, sizeof s);
            int32_t e = w_path_filestat_get(fd, (int32_t)rnd(2), P(path), (uint32_t)strlen(path), P(&s));
            say(" stat %s -> e=%d", path, e);
            if (e == 0)
                say(" type=%d size=%llu ino=%llu", s.filetype, (unsigned long long)s.size,
                    (unsigned long long)ino_of(&s));
            break;
        }
        case 9: {  /* fd_fdstat_get */
            __wasi_fdstat_t s;
            memset(&s, 0, sizeof s);
            int32_t e = w_fd_fdstat_get(fd, P(&s));
            say(" fdstat -> e=%d", e);
            if (e == 0)
                say(" type=%d flags=%d base=%llx inh=%llx", s.fs_filetype, s.fs_flags,
                    (unsigned long long)s.fs_rights_base, (unsigned long long)s.fs_rights_inheriting);
            break;
        }
        case 10: {  /* fd_pread, fd_prestat */
            __wasi_iovec_t v = {buf, rnd(40)};
            uint32_t got = 0;
            int32_t e = w_fd_pread(fd, P(&v), 1, rnd(100), P(&got));
            say(" pread -> e=%d n=%u h=%08x", e, got, e == 0 ? fnv(buf, got) : 0);
            __wasi_prestat_t ps;
            e = w_fd_prestat_get(fd, P(&ps));
            say(" prestat -> e=%d", e);
            if (e == 0) {
                char name[32] = {0};
                say(" len=%u name_e=%d", (unsigned)ps.u.dir.pr_name_len, w_fd_prestat_dir_name(fd, P(name), sizeof name - 1));
            }
            break;
        }
        case 12: {  /* stdin */
            uint32_t n = rnd(50), got = 0;
            __wasi_iovec_t v = {buf, n};
            int32_t e = w_fd_read(0, P(&v), 1, P(&got));
            say(" stdin %u -> e=%d n=%u h=%08x", n, e, got, e == 0 ? fnv(buf, got) : 0);
            break;
        }
        default: {  /* fd_close */
            int32_t e = w_fd_close(fd);
            say(" close -> e=%d", e);
            if (e == 0)
                for (int j = 0; j < nfds; j++)
                    if (fds[j] == fd) --nfds, fds[j] = fds[nfds], dirs[j] = dirs[nfds];
            if (fd < 3 && e == 0) {  /* stdout closed: nothing more to say */
                used = 0;
                w_proc_exit(0);
            }
        }
    }
    say("\n");
}

int main(void) {
    static char *argv[8];
    static char argbuf[256];
    uint32_t argc = 0, size = 0;
    if (w_args_sizes_get(P(&argc), P(&size)) != 0 || argc < 3 || argc > 5 || size > sizeof argbuf) return 2;
    w_args_get(P(argv), P(argbuf));
    for (uint32_t k = 3; k < argc; k++) {
        easy |= !strcmp(argv[k], "easy");
        portable |= !strcmp(argv[k], "portable");
        make |= !strcmp(argv[k], "make");
    }
    for (const char *q = argv[1]; *q; q++) state = state * 10 + (uint64_t)(*q - '0');
    state = state * 0x9E3779B97F4A7C15ull + 1;
    int steps = 0;
    for (const char *q = argv[2]; *q; q++) steps = steps * 10 + (*q - '0');
    for (int k = 0; k < steps; k++) step(k);
    flush();
    w_proc_exit(0);
}
