/* What the corpus programs that make raw WASI calls share (tests/corpus/build.sh: -I include): the imports,
   declared here so that every pointer and length is the program's choice (bad pointers included), and the
   output, one buffer written with fd_write on fd 1 only, so that a program that only reads makes no call
   the device cannot serve. */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <wasi/api.h>

#define IMP(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
typedef uint32_t ptr_t;
IMP(path_open) int32_t w_path_open(int32_t, int32_t, ptr_t, uint32_t, int32_t, uint64_t, uint64_t, int32_t, ptr_t);
IMP(fd_read) int32_t w_fd_read(int32_t, ptr_t, uint32_t, ptr_t);
IMP(fd_pread) int32_t w_fd_pread(int32_t, ptr_t, uint32_t, uint64_t, ptr_t);
IMP(fd_write) int32_t w_fd_write(int32_t, ptr_t, uint32_t, ptr_t);
IMP(fd_pwrite) int32_t w_fd_pwrite(int32_t, ptr_t, uint32_t, uint64_t, ptr_t);
IMP(fd_seek) int32_t w_fd_seek(int32_t, int64_t, int32_t, ptr_t);
IMP(fd_tell) int32_t w_fd_tell(int32_t, ptr_t);
IMP(fd_filestat_get) int32_t w_fd_filestat_get(int32_t, ptr_t);
IMP(fd_fdstat_get) int32_t w_fd_fdstat_get(int32_t, ptr_t);
IMP(fd_close) int32_t w_fd_close(int32_t);
IMP(fd_prestat_get) int32_t w_fd_prestat_get(int32_t, ptr_t);
IMP(fd_prestat_dir_name) int32_t w_fd_prestat_dir_name(int32_t, ptr_t, uint32_t);
IMP(fd_advise) int32_t w_fd_advise(int32_t, uint64_t, uint64_t, int32_t);
IMP(fd_allocate) int32_t w_fd_allocate(int32_t, uint64_t, uint64_t);
IMP(fd_filestat_set_times) int32_t w_fd_filestat_set_times(int32_t, uint64_t, uint64_t, int32_t);
IMP(fd_renumber) int32_t w_fd_renumber(int32_t, int32_t);
IMP(path_filestat_get) int32_t w_path_filestat_get(int32_t, int32_t, ptr_t, uint32_t, ptr_t);
IMP(path_unlink_file) int32_t w_path_unlink_file(int32_t, ptr_t, uint32_t);
IMP(path_create_directory) int32_t w_path_create_directory(int32_t, ptr_t, uint32_t);
IMP(path_rename) int32_t w_path_rename(int32_t, ptr_t, uint32_t, int32_t, ptr_t, uint32_t);
IMP(fd_readdir) int32_t w_fd_readdir(int32_t, ptr_t, uint32_t, uint64_t, ptr_t);
IMP(fd_sync) int32_t w_fd_sync(int32_t);
IMP(fd_datasync) int32_t w_fd_datasync(int32_t);
IMP(fd_filestat_set_size) int32_t w_fd_filestat_set_size(int32_t, uint64_t);
IMP(fd_fdstat_set_flags) int32_t w_fd_fdstat_set_flags(int32_t, int32_t);
IMP(fd_fdstat_set_rights) int32_t w_fd_fdstat_set_rights(int32_t, uint64_t, uint64_t);
IMP(poll_oneoff) int32_t w_poll_oneoff(ptr_t, ptr_t, uint32_t, ptr_t);
IMP(sched_yield) int32_t w_sched_yield(void);
IMP(args_sizes_get) int32_t w_args_sizes_get(ptr_t, ptr_t);
IMP(args_get) int32_t w_args_get(ptr_t, ptr_t);
IMP(proc_exit) _Noreturn void w_proc_exit(int32_t);

#define P(x) ((ptr_t)(uintptr_t)(x))
#define R(r) ((uint64_t)__WASI_RIGHTS_##r)

static char out[1 << 16];
static size_t used;

static void flush(void) {
    size_t at = 0;
    while (at < used) {
        __wasi_ciovec_t v = {(const uint8_t *)out + at, used - at};
        uint32_t n = 0;
        if (w_fd_write(1, P(&v), 1, P(&n)) != 0 || n == 0) break;
        at += n;
    }
    used = 0;
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    if (used > sizeof out - 1024) flush();
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    int n = vsnprintf(out + used, sizeof out - used, fmt, ap);
    __builtin_va_end(ap);
    if (n > 0) used += (size_t)n < sizeof out - used ? (size_t)n : sizeof out - used - 1;
}
