//! Five bouncing balls, each in its own colour, over 60 frames of 320x240, presented one by one.
//! Every instance of the batch starts its balls elsewhere (seeded by gpu.instance_id); the motion
//! is plain f32 arithmetic, so each instance's frames are the same on every runtime.
//! Plain std Rust for wasm32-unknown-unknown (f32::sqrt is the f32.sqrt instruction).

#[path = "../../include/wasmgpu.rs"]
mod wasmgpu;

fn f32_sqrt(x: f32) -> f32 {
    x.sqrt()
}

const W: usize = 320;
const H: usize = 240;
const BALLS: usize = 5;
const GRAVITY: f32 = 0.35;

static mut BACKGROUND: [u32; W * H] = [0; W * H];
static mut FRAME: [u32; W * H] = [0; W * H];

// Red, green, blue, yellow, magenta.
const COLOURS: [[f32; 3]; BALLS] = [
    [0.92, 0.22, 0.20],
    [0.25, 0.80, 0.30],
    [0.22, 0.45, 0.95],
    [0.98, 0.82, 0.18],
    [0.85, 0.30, 0.85],
];

#[derive(Clone, Copy)]
struct Ball {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    r: f32,
}

struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        // xorshift32
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    /// A float in [lo, hi).
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next() >> 8) as f32 / 16_777_216.0;
        lo + (hi - lo) * unit
    }
}

fn clamp01(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else if v > 1.0 {
        1.0
    } else {
        v
    }
}

fn channel(v: f32) -> u32 {
    (clamp01(v) * 255.0 + 0.5) as u32
}

fn unpack(p: u32) -> [f32; 3] {
    [
        (p & 0xFF) as f32 / 255.0,
        (p >> 8 & 0xFF) as f32 / 255.0,
        (p >> 16 & 0xFF) as f32 / 255.0,
    ]
}

fn pack(c: [f32; 3]) -> u32 {
    channel(c[0]) | channel(c[1]) << 8 | channel(c[2]) << 16 | 0xFF00_0000
}

fn draw_background(bg: &mut [u32]) {
    for (y, row) in bg.chunks_exact_mut(W).enumerate() {
        let t = y as f32 / (H - 1) as f32;
        let sky = pack([0.10 + 0.10 * t, 0.12 + 0.16 * t, 0.22 + 0.25 * t]);
        for px in row.iter_mut() {
            *px = sky;
        }
    }
}

fn step(b: &mut Ball) {
    b.vy += GRAVITY;
    b.x += b.vx;
    b.y += b.vy;
    if b.x < b.r {
        b.x = 2.0 * b.r - b.x;
        b.vx = -b.vx;
    } else if b.x > W as f32 - b.r {
        b.x = 2.0 * (W as f32 - b.r) - b.x;
        b.vx = -b.vx;
    }
    if b.y > H as f32 - b.r {
        b.y = 2.0 * (H as f32 - b.r) - b.y;
        b.vy = -b.vy * 0.92;
    } else if b.y < b.r {
        b.y = 2.0 * b.r - b.y;
        b.vy = -b.vy;
    }
}

/// An anti-aliased, shaded disc, touching only the pixels of its bounding box.
fn draw_ball(frame: &mut [u32], b: &Ball, colour: [f32; 3]) {
    let x0 = (b.x - b.r - 1.0).max(0.0) as usize;
    let y0 = (b.y - b.r - 1.0).max(0.0) as usize;
    let x1 = ((b.x + b.r + 2.0) as usize).min(W);
    let y1 = ((b.y + b.r + 2.0) as usize).min(H);
    let (lx, ly) = (b.x - 0.35 * b.r, b.y - 0.4 * b.r); // the highlight
    for y in y0..y1 {
        let py = y as f32 + 0.5;
        for x in x0..x1 {
            let px = x as f32 + 0.5;
            let (dx, dy) = (px - b.x, py - b.y);
            let d = f32_sqrt(dx * dx + dy * dy);
            let cover = clamp01(b.r + 0.5 - d);
            if cover <= 0.0 {
                continue;
            }
            let (hx, hy) = (px - lx, py - ly);
            let shine = clamp01(1.0 - f32_sqrt(hx * hx + hy * hy) / (1.6 * b.r));
            let shade = 0.55 + 0.45 * shine;
            let glint = shine * shine * shine * 0.6;
            let under = unpack(frame[y * W + x]);
            let mut out = [0.0f32; 3];
            for c in 0..3 {
                let lit = colour[c] * shade + glint;
                out[c] = under[c] + (lit - under[c]) * cover;
            }
            frame[y * W + x] = pack(out);
        }
    }
}

/// Run `frames` frames, presenting each; returns the number presented.
#[no_mangle]
pub extern "C" fn animate(frames: i32) -> i32 {
    let id = wasmgpu::instance_id();
    let mut rng = Rng(id.wrapping_mul(0x9E37_79B9) ^ 0x2545_F491 | 1);
    let mut balls = [Ball { x: 0.0, y: 0.0, vx: 0.0, vy: 0.0, r: 0.0 }; BALLS];
    for b in balls.iter_mut() {
        b.r = rng.range(10.0, 24.0);
        b.x = rng.range(b.r, W as f32 - b.r);
        b.y = rng.range(b.r, H as f32 * 0.6);
        b.vx = rng.range(-4.0, 4.0);
        b.vy = rng.range(-3.0, 1.0);
    }
    let bg = unsafe { &mut *core::ptr::addr_of_mut!(BACKGROUND) };
    let frame = unsafe { &mut *core::ptr::addr_of_mut!(FRAME) };
    draw_background(bg);
    for _ in 0..frames {
        frame.copy_from_slice(bg); // memory.copy (built with bulk memory)
        for (b, colour) in balls.iter().zip(COLOURS.iter()) {
            draw_ball(frame, b, *colour);
        }
        wasmgpu::present_u32(frame, W as u32, H as u32);
        for b in balls.iter_mut() {
            step(b);
        }
    }
    frames
}

#[no_mangle]
pub extern "C" fn main() {
    animate(60);
}
