/* wasmgpu.h: what a wasmgpu host gives a guest written in C (clang --target=wasm32...).
 *
 *   #include "wasmgpu.h"
 *   static uint8_t frame[W * H * 4];
 *   ...draw RGBA8 pixels, row-major, 4 bytes per pixel (R, G, B, A)...
 *   wasmgpu_present(frame, W, H);           // one call = one frame of this instance
 *
 * Imports:
 *   env.present(ptr: i32, width: i32, height: i32)   one frame of width*height RGBA8 pixels at ptr;
 *       1 <= width, height <= 8192 and the pixels must lie inside the memory, or the instance traps.
 *   gpu.instance_id() -> i32       this instance's index in the batch (0 .. instance_count - 1)
 *   gpu.instance_count() -> i32    the number of instances in the batch
 *   gpu.spawn, gpu.spawn_in, gpu.wait, gpu.output   child processes (below); gpu-run --max-children C: C
 *       alive at once
 * Under a plain runtime (wasmtime, a browser) the embedder provides these functions itself.
 */
#ifndef WASMGPU_H
#define WASMGPU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WASMGPU_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

/* Show one frame: width*height RGBA8 pixels, row-major, at `rgba` in this instance's memory. */
WASMGPU_IMPORT("env", "present") void wasmgpu_present(const void *rgba, int32_t width, int32_t height);

/* This instance's index in the batch, from 0. */
WASMGPU_IMPORT("gpu", "instance_id") int32_t wasmgpu_instance_id(void);

/* How many instances run in the batch. */
WASMGPU_IMPORT("gpu", "instance_count") int32_t wasmgpu_instance_count(void);

/* Start a child process: a new instance of this module (of another one where gpu-run's --child-module
 * NAME=FILE names argv[0]), run from _start on the batch's lanes (on the GPU,
 * beside this one). The room for children (gpu-run --max-children) is the batch's, shared by its instances;
 * a child's wasmgpu_instance_id is wasmgpu_instance_count or more; it starts with its parent's fuel left;
 * it ends when its parent does. `args` holds its argv as NUL-terminated strings one after another, `args_len` bytes in
 * all (the last one too ends with its NUL, or -28, EINVAL); `env` its environment the same way ("KEY=VALUE"
 * strings). It sees this process's preopened
 * directories, writes its stderr to this process's stderr and keeps its stdout for wasmgpu_output.
 * Returns a handle (>= 0), or a negative WASI errno: -6 (EAGAIN) when no room is left, -21 (EFAULT) for a
 * pointer outside the memory, -1 (E2BIG) past 1 MiB of arguments and environment. */
WASMGPU_IMPORT("gpu", "spawn") int32_t wasmgpu_spawn(const char *args, uint32_t args_len, const char *env,
                                                     uint32_t env_len);

/* wasmgpu_spawn, with the child's own preopened directories instead of this process's: `dirs` holds
 * NUL-terminated "NAME=PATH" strings the same way (or "PATH", named PATH), `dirs_len` bytes in all. PATH is a
 * directory as this process sees it: relative to its preopened "." or under another of its preopened
 * directories by name, and it may not leave them (`..` or a link out: -63, EPERM). The child sees it
 * preopened as NAME. With no string, the child has no directory. Errors besides wasmgpu_spawn's: -76
 * (ENOTCAPABLE) for a path under none of this process's directories, -44 (ENOENT), -54 (ENOTDIR). */
WASMGPU_IMPORT("gpu", "spawn_in") int32_t wasmgpu_spawn_in(const char *args, uint32_t args_len, const char *env,
                                                           uint32_t env_len, const char *dirs, uint32_t dirs_len);

/* A child that trapped: what wasmgpu_wait returns for it. */
#define WASMGPU_CHILD_TRAPPED (-1000)

/* Wait for a child of this process to end: its exit status (0 to 255; 0 when _start returned), or
 * WASMGPU_CHILD_TRAPPED, or -8 (EBADF) when `child` is no child of this process. */
WASMGPU_IMPORT("gpu", "wait") int32_t wasmgpu_wait(int32_t child);

/* Copy at most `len` bytes of a child's stdout, from byte `offset` of it, to `buf`: the number copied (0
 * past its end; what it wrote so far, if it still runs), or a negative WASI errno. */
WASMGPU_IMPORT("gpu", "output") int32_t wasmgpu_output(int32_t child, uint32_t offset, void *buf, uint32_t len);

#ifdef __cplusplus
}
#endif

#endif /* WASMGPU_H */
