//! A gradient filling 1024x768, one frame, different in every instance of the batch.
//! no_std: nothing but `core` and the wasmgpu imports (env.present, gpu.instance_id).
#![no_std]

#[path = "../../include/wasmgpu.rs"]
mod wasmgpu;

const W: usize = 1024;
const H: usize = 768;

static mut FRAME: [u32; W * H] = [0; W * H];

/// 0..=255 and back down over `period` steps.
fn triangle(v: u32, period: u32) -> u32 {
    let p = v % period;
    let half = period / 2;
    let up = if p < half { p } else { period - p };
    up * 255 / half
}

#[no_mangle]
pub extern "C" fn main() {
    let id = wasmgpu::instance_id();
    // Per instance: where the blue bands start, and which corner is red.
    let phase = id.wrapping_mul(97);
    let flip = id & 1 == 1;
    let frame = unsafe { &mut *core::ptr::addr_of_mut!(FRAME) };
    for (y, row) in frame.chunks_exact_mut(W).enumerate() {
        let y = y as u32;
        let g = y * 255 / (H as u32 - 1);
        for (x, px) in row.iter_mut().enumerate() {
            let x = x as u32;
            let r = x * 255 / (W as u32 - 1);
            let r = if flip { 255 - r } else { r };
            let b = triangle(x + y + phase, 512);
            *px = r | g << 8 | b << 16 | 0xFF00_0000;
        }
    }
    wasmgpu::present_u32(frame, W as u32, H as u32);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
