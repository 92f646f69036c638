//! wasmgpu.rs: what a wasmgpu host gives a guest written in Rust. `no_std`-friendly (core only).
//!
//! Include it as a module: `#[path = "path/to/include/wasmgpu.rs"] mod wasmgpu;`, then
//!
//!     let id = wasmgpu::instance_id();            // 0 .. wasmgpu::instance_count() - 1
//!     wasmgpu::present(&pixels, width, height);   // pixels: width*height*4 bytes of RGBA8, row-major
//!
//! Imports:
//! - `env.present(ptr: i32, width: i32, height: i32)`: one frame of this instance; 1 <= width,
//!   height <= 8192 and the pixels must lie inside the memory, or the instance traps;
//! - `gpu.instance_id() -> i32`, `gpu.instance_count() -> i32`: served by the GPU itself;
//! - `gpu.spawn`, `gpu.spawn_in`, `gpu.wait`, `gpu.output`: child processes (see `spawn`; `gpu-run
//!   --max-children C`).
#![allow(dead_code)]

/// The raw imports, as the host declares them.
pub mod sys {
    #[link(wasm_import_module = "env")]
    extern "C" {
        #[link_name = "present"]
        pub fn present(ptr: *const u8, width: i32, height: i32);
    }

    #[link(wasm_import_module = "gpu")]
    extern "C" {
        #[link_name = "instance_id"]
        pub fn instance_id() -> i32;
        #[link_name = "instance_count"]
        pub fn instance_count() -> i32;
        #[link_name = "spawn"]
        pub fn spawn(args: *const u8, args_len: u32, env: *const u8, env_len: u32) -> i32;
        #[link_name = "spawn_in"]
        pub fn spawn_in(args: *const u8, args_len: u32, env: *const u8, env_len: u32, dirs: *const u8,
                        dirs_len: u32) -> i32;
        #[link_name = "wait"]
        pub fn wait(child: i32) -> i32;
        #[link_name = "output"]
        pub fn output(child: i32, offset: u32, buf: *mut u8, len: u32) -> i32;
    }
}

/// What `wait` gives for a child that trapped.
pub const CHILD_TRAPPED: i32 = -1000;

/// Starts a child process: a new instance of this module, run from `_start` on the batch's lanes, with
/// `args` as its argv and `env` ("KEY=VALUE" strings) as its environment, this process's preopened
/// directories and stderr, and a stdout of its own (`output`). Its handle, or a negative WASI errno
/// (-6, EAGAIN: no room left).
pub fn spawn(args: &[&str], env: &[&str]) -> i32 {
    spawn_with(args, env, None)
}

/// `spawn`, with the child's own preopened directories: "NAME=PATH" strings (or "PATH", named PATH), each
/// PATH a directory as this process sees it, inside its own preopened ones (include/wasmgpu.h,
/// wasmgpu_spawn_in). No string: the child has no directory.
pub fn spawn_in(args: &[&str], env: &[&str], dirs: &[&str]) -> i32 {
    spawn_with(args, env, Some(dirs))
}

fn spawn_with(args: &[&str], env: &[&str], dirs: Option<&[&str]>) -> i32 {
    fn pack(items: &[&str], out: &mut [u8]) -> usize {
        let mut n = 0;
        for s in items {
            out[n..n + s.len()].copy_from_slice(s.as_bytes());
            out[n + s.len()] = 0;
            n += s.len() + 1;
        }
        n
    }
    let need = |items: &[&str]| items.iter().map(|s| s.len() + 1).sum::<usize>();
    let mut buf = [0u8; 4096];
    let (a, e, d) = (need(args), need(env), need(dirs.unwrap_or(&[])));
    if a + e + d > buf.len() {
        return -1; // E2BIG: larger command lines need sys::spawn with a buffer of their own
    }
    pack(args, &mut buf[..a]);
    pack(env, &mut buf[a..a + e]);
    pack(dirs.unwrap_or(&[]), &mut buf[a + e..a + e + d]);
    let p = buf.as_ptr();
    unsafe {
        match dirs {
            None => sys::spawn(p, a as u32, p.add(a), e as u32),
            Some(_) => sys::spawn_in(p, a as u32, p.add(a), e as u32, p.add(a + e), d as u32),
        }
    }
}

/// Waits for a child of this process: its exit status (0 to 255), `CHILD_TRAPPED`, or -8 (EBADF).
pub fn wait(child: i32) -> i32 {
    unsafe { sys::wait(child) }
}

/// Copies at most `buf.len()` bytes of a child's stdout from `offset`: the number copied, or a negative
/// WASI errno.
pub fn output(child: i32, offset: u32, buf: &mut [u8]) -> i32 {
    unsafe { sys::output(child, offset, buf.as_mut_ptr(), buf.len() as u32) }
}

/// This instance's index in the batch, from 0.
pub fn instance_id() -> u32 {
    unsafe { sys::instance_id() as u32 }
}

/// How many instances run in the batch.
pub fn instance_count() -> u32 {
    unsafe { sys::instance_count() as u32 }
}

/// Show one frame: `width * height` RGBA8 pixels, row-major (4 bytes per pixel: R, G, B, A).
pub fn present(rgba: &[u8], width: u32, height: u32) {
    assert!(rgba.len() >= width as usize * height as usize * 4, "present: too few pixels");
    unsafe { sys::present(rgba.as_ptr(), width as i32, height as i32) }
}

/// The same for pixels held as one u32 per pixel (little-endian: 0xAABBGGRR).
pub fn present_u32(pixels: &[u32], width: u32, height: u32) {
    assert!(pixels.len() >= width as usize * height as usize, "present: too few pixels");
    unsafe { sys::present(pixels.as_ptr() as *const u8, width as i32, height as i32) }
}

/// Pack R, G, B, A into the u32 that `present_u32` writes as those four bytes.
pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> u32 {
    (r as u32) | (g as u32) << 8 | (b as u32) << 16 | (a as u32) << 24
}
