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
//! - `gpu.instance_id() -> i32`, `gpu.instance_count() -> i32`: served by the GPU itself.
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
    }
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
