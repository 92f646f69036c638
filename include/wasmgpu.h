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
 * Under a plain runtime (wasmtime, a browser) the embedder provides these three functions itself.
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

#ifdef __cplusplus
}
#endif

#endif /* WASMGPU_H */
