// build: -C target-feature=+simd128
//! SIMD128 from Rust: iterator loops that LLVM auto-vectorizes with +simd128 (saturating adds,
//! sums, min/max, absolute differences, dot products, a 3x3 box filter, byte counting, float
//! scaling), then std::arch::wasm32 intrinsics (swizzle, narrow, dot, bitselect, bitmask, shuffles,
//! lanes, float ops) over edge and pseudo-random vectors seeded from argv[1]. NaN results print as
//! "nan": their sign and payload are nondeterministic in WebAssembly.
use std::arch::wasm32::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
}

fn fnv_bytes(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}
const FNV0: u64 = 0xcbf29ce484222325;

fn bytes_of(v: v128) -> [u8; 16] {
    let mut b = [0u8; 16];
    unsafe { v128_store(b.as_mut_ptr() as *mut v128, v) };
    b
}
fn hv(h: u64, v: v128) -> u64 {
    fnv_bytes(h, &bytes_of(v))
}
fn hex(v: v128) -> String {
    bytes_of(v).iter().map(|b| format!("{:02x}", b)).collect()
}
fn canon_f32(r: v128) -> v128 {
    v128_bitselect(u32x4_splat(0x7fc00000), r, f32x4_ne(r, r))
}
fn canon_f64(r: v128) -> v128 {
    v128_bitselect(u64x2_splat(0x7ff8000000000000), r, f64x2_ne(r, r))
}
fn show_f32(x: f32) -> String {
    if x.is_nan() { "nan".to_string() } else { format!("{:?}", x) }
}

// ---------------------------------------------------------------- auto-vectorized loops

#[inline(never)]
fn sat_add(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
}
#[inline(never)]
fn sat_sub_i16(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect()
}
#[inline(never)]
fn sum_u8(a: &[u8]) -> u32 {
    a.iter().map(|&x| x as u32).sum()
}
#[inline(never)]
fn max_i32(a: &[i32]) -> i32 {
    a.iter().copied().fold(i32::MIN, |m, x| if x > m { x } else { m })
}
#[inline(never)]
fn min_u16(a: &[u16]) -> u16 {
    a.iter().copied().fold(u16::MAX, |m, x| if x < m { x } else { m })
}
#[inline(never)]
fn abs_diff_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(&x, &y)| if x > y { (x - y) as u32 } else { (y - x) as u32 }).sum()
}
#[inline(never)]
fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| (x as i32).wrapping_mul(y as i32)).fold(0i32, |s, p| s.wrapping_add(p))
}
#[inline(never)]
fn dot_i64(a: &[i32], b: &[i32]) -> i64 {
    a.iter().zip(b).map(|(&x, &y)| x as i64 * y as i64).fold(0i64, |s, p| s.wrapping_add(p))
}
#[inline(never)]
fn count_byte(a: &[u8], c: u8) -> usize {
    a.iter().filter(|&&x| x == c).count()
}
#[inline(never)]
fn box3(img: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; w * h];
    for y in 1..h - 1 {
        let (r0, r1, r2) = (&img[(y - 1) * w..y * w], &img[y * w..(y + 1) * w], &img[(y + 1) * w..(y + 2) * w]);
        let o = &mut out[y * w..(y + 1) * w];
        for x in 1..w - 1 {
            let s = r0[x - 1] as u16 + r0[x] as u16 + r0[x + 1] as u16
                + r1[x - 1] as u16 + r1[x] as u16 + r1[x + 1] as u16
                + r2[x - 1] as u16 + r2[x] as u16 + r2[x + 1] as u16;
            o[x] = ((s as u32 * 7282) >> 16) as u8; // s / 9
        }
    }
    out
}
#[inline(never)]
fn scale_f32(a: &[f32], k: f32) -> Vec<f32> {
    a.iter().map(|&x| {
        let v = x * k + 0.5;
        let v = if v < -100.0 { -100.0 } else { v };
        if v > 100.0 { 100.0 } else { v }
    }).collect()
}
#[inline(never)]
fn sqrt_f64(a: &[f64]) -> Vec<f64> {
    a.iter().map(|&x| (x.abs()).sqrt() * 0.5 - x / 3.0).collect()
}
#[inline(never)]
fn shifts(a: &[u32]) -> Vec<u32> {
    a.iter().map(|&x| (x << 3) ^ (x >> 5) ^ x.wrapping_mul(0x9E3779B9)).collect()
}

fn part1(rng: &mut Rng) {
    const N: usize = 1001;
    let a8: Vec<u8> = (0..N).map(|_| rng.next() as u8).collect();
    let b8: Vec<u8> = (0..N).map(|_| (rng.next() >> 8) as u8).collect();
    let a16: Vec<i16> = (0..N).map(|_| (rng.next() >> 16) as i16).collect();
    let b16: Vec<i16> = (0..N).map(|_| (rng.next() >> 24) as i16).collect();
    let u16s: Vec<u16> = (0..N).map(|_| (rng.next() >> 40) as u16 | 0x100).collect();
    let a32: Vec<i32> = (0..N).map(|_| (rng.next() >> 7) as i32).collect();
    let b32: Vec<i32> = (0..N).map(|_| (rng.next() >> 9) as i32).collect();
    let f: Vec<f32> = (0..N).map(|_| ((rng.next() >> 40) as i32 - (1 << 23)) as f32 / 4096.0).collect();
    let d: Vec<f64> = (0..N).map(|_| (rng.next() >> 12) as i64 as f64 / 1e9 - 2e6).collect();
    println!("== auto-vectorized loops");
    println!("sat_add {:016x}", fnv_bytes(FNV0, &sat_add(&a8, &b8)));
    let s = sat_sub_i16(&a16, &b16);
    println!("sat_sub_i16 {:016x}", s.iter().fold(FNV0, |h, &x| fnv_bytes(h, &x.to_le_bytes())));
    println!("sum_u8 {} max_i32 {} min_u16 {}", sum_u8(&a8), max_i32(&a32), min_u16(&u16s));
    println!("abs_diff_u8 {} dot_i16 {} dot_i64 {}", abs_diff_u8(&a8, &b8), dot_i16(&a16, &b16), dot_i64(&a32, &b32));
    let text: Vec<u8> = (0..4093).map(|_| b"xyz \n0123"[(rng.next() % 9) as usize]).collect();
    println!("count x={} space={} nl={}", count_byte(&text, b'x'), count_byte(&text, b' '), count_byte(&text, b'\n'));
    let (w, h) = (53, 31);
    let img: Vec<u8> = (0..w * h).map(|_| (rng.next() >> 33) as u8).collect();
    println!("box3 {:016x}", fnv_bytes(FNV0, &box3(&img, w, h)));
    let sf = scale_f32(&f, 0.37);
    println!("scale_f32 {:016x} {:?}", sf.iter().fold(FNV0, |h, x| fnv_bytes(h, &x.to_bits().to_le_bytes())),
             sf.iter().map(|&x| x as f64).sum::<f64>());
    let sd = sqrt_f64(&d);
    println!("sqrt_f64 {:016x} {:?}", sd.iter().fold(FNV0, |h, x| fnv_bytes(h, &x.to_bits().to_le_bytes())),
             sd.iter().sum::<f64>());
    let us: Vec<u32> = a32.iter().map(|&x| x as u32).collect();
    println!("shifts {:016x}", shifts(&us).iter().fold(FNV0, |h, x| fnv_bytes(h, &x.to_le_bytes())));
}

// ---------------------------------------------------------------- intrinsics

const NP: usize = 24;

fn pools(rng: &mut Rng) -> (Vec<v128>, Vec<v128>, Vec<v128>) {
    let edges: [u64; 10] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000];
    let f32e: [f32; 12] = [0.0, -0.0, 1.0, -1.5, 2.5, -0.5, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 3e9, -3e9, 1e-40];
    let f64e: [f64; 12] = [0.0, -0.0, 1.0, -1.5, 2.5, -0.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 5e9, -5e9, 1e-310];
    let mut ip = Vec::new();
    let mut fp = Vec::new();
    let mut dp = Vec::new();
    for k in 0..NP {
        let mut b = [0u8; 16];
        let width = 1usize << (k % 4);
        for lane in 0..16 / width {
            let r = rng.next();
            let v = if k < NP / 2 || r & 3 == 0 {
                let e = edges[(r >> 8) as usize % edges.len()];
                if r & 0x10000 != 0 { e.wrapping_neg() } else { e }
            } else {
                r >> 3
            };
            b[lane * width..(lane + 1) * width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        ip.push(unsafe { v128_load(b.as_ptr() as *const v128) });
        let mut fl = [0f32; 4];
        for x in fl.iter_mut() {
            let r = rng.next();
            *x = if k < NP / 2 || r & 1 == 1 { f32e[(r >> 8) as usize % 12] } else { (r >> 40) as i32 as f32 / 1024.0 - 8000.0 };
        }
        fp.push(f32x4(fl[0], fl[1], fl[2], fl[3]));
        let mut dl = [0f64; 2];
        for x in dl.iter_mut() {
            let r = rng.next();
            *x = if k < NP / 2 || r & 1 == 1 { f64e[(r >> 8) as usize % 12] } else { (r >> 20) as i64 as f64 / 4096.0 - 1e9 };
        }
        dp.push(f64x2(dl[0], dl[1]));
    }
    (ip, fp, dp)
}

fn pairs(name: &str, pool: &[v128], f: impl Fn(v128, v128) -> v128) {
    let mut h = FNV0;
    for &a in pool {
        for &b in pool {
            h = hv(h, f(a, b));
        }
    }
    println!("{:<26} {:016x}", name, h);
}
fn each(name: &str, pool: &[v128], f: impl Fn(v128, u32) -> v128) {
    let mut h = FNV0;
    for (i, &a) in pool.iter().enumerate() {
        h = hv(h, f(a, i as u32 * 5 + 1));
    }
    println!("{:<26} {:016x}", name, h);
}
fn each_scalar(name: &str, pool: &[v128], f: impl Fn(v128) -> u64) {
    let mut h = FNV0;
    for &a in pool {
        h = fnv_bytes(h, &f(a).to_le_bytes());
    }
    println!("{:<26} {:016x}", name, h);
}

fn part2(rng: &mut Rng) {
    let (ip, fp, dp) = pools(rng);
    println!("== intrinsics");
    pairs("i8x16_swizzle", &ip, |a, b| i8x16_swizzle(a, b));
    pairs("i8x16_swizzle_masked", &ip, |a, b| i8x16_swizzle(a, v128_and(b, u8x16_splat(0x1f))));
    pairs("i8x16_shuffle", &ip, |a, b| i8x16_shuffle::<1, 3, 5, 7, 16, 18, 20, 22, 31, 0, 15, 17, 9, 9, 27, 4>(a, b));
    pairs("u8x16_narrow_i16x8", &ip, |a, b| u8x16_narrow_i16x8(a, b));
    pairs("i8x16_narrow_i16x8", &ip, |a, b| i8x16_narrow_i16x8(a, b));
    pairs("u16x8_narrow_i32x4", &ip, |a, b| u16x8_narrow_i32x4(a, b));
    pairs("i32x4_dot_i16x8", &ip, |a, b| i32x4_dot_i16x8(a, b));
    pairs("v128_bitselect", &ip, |a, b| v128_bitselect(a, b, i8x16_shuffle::<15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0>(a, a)));
    pairs("u8x16_add_sat", &ip, |a, b| u8x16_add_sat(a, b));
    pairs("i16x8_sub_sat", &ip, |a, b| i16x8_sub_sat(a, b));
    pairs("i16x8_q15mulr_sat", &ip, |a, b| i16x8_q15mulr_sat(a, b));
    pairs("u8x16_avgr", &ip, |a, b| u8x16_avgr(a, b));
    pairs("i32x4_min/u32x4_max", &ip, |a, b| v128_xor(i32x4_min(a, b), u32x4_max(a, b)));
    pairs("i16x8_extmul_high_i8x16", &ip, |a, b| i16x8_extmul_high_i8x16(a, b));
    pairs("u64x2_extmul_low_u32x4", &ip, |a, b| u64x2_extmul_low_u32x4(a, b));
    pairs("i64x2_mul", &ip, |a, b| i64x2_mul(a, b));
    pairs("i64x2_lt/ge", &ip, |a, b| v128_or(i64x2_lt(a, b), u64x2_shr(i64x2_ge(b, a), 3)));
    pairs("u8x16_lt", &ip, |a, b| u8x16_lt(a, b));
    pairs("i16x8_gt", &ip, |a, b| i16x8_gt(a, b));
    pairs("v128_andnot", &ip, |a, b| v128_andnot(a, b));
    each("i8x16_popcnt", &ip, |a, _| i8x16_popcnt(a));
    each("i8x16_abs", &ip, |a, _| i8x16_abs(a));
    each("i64x2_abs", &ip, |a, _| i64x2_abs(a));
    each("i8x16_shr", &ip, |a, c| i8x16_shr(a, c));
    each("u16x8_shr", &ip, |a, c| u16x8_shr(a, c));
    each("i64x2_shl", &ip, |a, c| i64x2_shl(a, c));
    each("i32x4_extend_high_i16x8", &ip, |a, _| i32x4_extend_high_i16x8(a));
    each("u16x8_extend_low_u8x16", &ip, |a, _| u16x8_extend_low_u8x16(a));
    each("i32x4_extadd_pairwise", &ip, |a, _| i32x4_extadd_pairwise_i16x8(a));
    each("i8x16_replace_lane", &ip, |a, c| i8x16_replace_lane::<7>(a, c as i8));
    each("u64x2_replace_lane", &ip, |a, c| u64x2_replace_lane::<1>(a, c as u64 * 0x1234567890abc));
    each_scalar("u8x16_bitmask", &ip, |a| u8x16_bitmask(a) as u64);
    each_scalar("i32x4_bitmask", &ip, |a| i32x4_bitmask(a) as u64);
    each_scalar("all_true/any_true", &ip, |a| i8x16_all_true(a) as u64 | (i16x8_all_true(a) as u64) << 1
        | (i32x4_all_true(a) as u64) << 2 | (i64x2_all_true(a) as u64) << 3 | (v128_any_true(a) as u64) << 4);
    each_scalar("extract_lane", &ip, |a| (i8x16_extract_lane::<5>(a) as i64 as u64)
        ^ (u16x8_extract_lane::<6>(a) as u64) << 8 ^ (i32x4_extract_lane::<1>(a) as i64 as u64) << 24
        ^ u64x2_extract_lane::<0>(a).rotate_left(7));

    pairs("f32x4_add", &fp, |a, b| canon_f32(f32x4_add(a, b)));
    pairs("f32x4_mul", &fp, |a, b| canon_f32(f32x4_mul(a, b)));
    pairs("f32x4_div", &fp, |a, b| canon_f32(f32x4_div(a, b)));
    pairs("f32x4_min", &fp, |a, b| canon_f32(f32x4_min(a, b)));
    pairs("f32x4_max", &fp, |a, b| canon_f32(f32x4_max(a, b)));
    pairs("f32x4_pmin", &fp, |a, b| f32x4_pmin(a, b));
    pairs("f32x4_pmax", &fp, |a, b| f32x4_pmax(a, b));
    pairs("f32x4_lt/eq", &fp, |a, b| v128_xor(f32x4_lt(a, b), u32x4_shr(f32x4_eq(a, b), 1)));
    each("f32x4_sqrt", &fp, |a, _| canon_f32(f32x4_sqrt(a)));
    each("f32x4_nearest", &fp, |a, _| canon_f32(f32x4_nearest(a)));
    each("f32x4_floor/ceil", &fp, |a, _| canon_f32(f32x4_sub(f32x4_ceil(a), f32x4_floor(a))));
    each("f32x4_trunc", &fp, |a, _| canon_f32(f32x4_trunc(a)));
    each("f32x4_abs/neg", &fp, |a, _| v128_xor(f32x4_abs(a), f32x4_neg(a)));
    each("i32x4_trunc_sat_f32x4", &fp, |a, _| i32x4_trunc_sat_f32x4(a));
    each("u32x4_trunc_sat_f32x4", &fp, |a, _| u32x4_trunc_sat_f32x4(a));
    each("f32x4_convert_i32x4", &ip, |a, _| f32x4_convert_i32x4(a));
    each("f32x4_convert_u32x4", &ip, |a, _| f32x4_convert_u32x4(a));
    each("f64x2_promote_low_f32x4", &fp, |a, _| canon_f64(f64x2_promote_low_f32x4(a)));
    pairs("f64x2_sub", &dp, |a, b| canon_f64(f64x2_sub(a, b)));
    pairs("f64x2_min", &dp, |a, b| canon_f64(f64x2_min(a, b)));
    pairs("f64x2_pmax", &dp, |a, b| f64x2_pmax(a, b));
    pairs("f64x2_le/ne", &dp, |a, b| v128_xor(f64x2_le(a, b), u64x2_shr(f64x2_ne(a, b), 1)));
    each("f64x2_sqrt", &dp, |a, _| canon_f64(f64x2_sqrt(a)));
    each("f64x2_nearest", &dp, |a, _| canon_f64(f64x2_nearest(a)));
    each("i32x4_trunc_sat_f64x2_zero", &dp, |a, _| i32x4_trunc_sat_f64x2_zero(a));
    each("u32x4_trunc_sat_f64x2_zero", &dp, |a, _| u32x4_trunc_sat_f64x2_zero(a));
    each("f32x4_demote_f64x2_zero", &dp, |a, _| canon_f32(f32x4_demote_f64x2_zero(a)));
    each("f64x2_convert_low_i32x4", &ip, |a, _| f64x2_convert_low_i32x4(a));
    each("f64x2_convert_low_u32x4", &ip, |a, _| f64x2_convert_low_u32x4(a));

    // Loads and stores with lanes.
    let buf: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
    let mut h = FNV0;
    for off in 0..40 {
        let p = unsafe { buf.as_ptr().add(off) };
        unsafe {
            h = hv(h, v128_load(p as *const v128));
            h = hv(h, v128_load8_splat(p));
            h = hv(h, v128_load32_zero(p.add(1) as *const u32));
            h = hv(h, v128_load64_zero(p.add(2) as *const u64));
            h = hv(h, i16x8_load_extend_i8x8(p.add(3) as *const i8));
            h = hv(h, u32x4_load_extend_u16x4(p.add(4) as *const u16));
            h = hv(h, v128_load16_lane::<5>(ip[off % NP], p.add(5) as *const u16));
            h = hv(h, v128_load64_lane::<1>(ip[off % NP], p.add(6) as *const u64));
        }
    }
    println!("{:<26} {:016x}", "loads", h);
    let mut out = [0u8; 48];
    for k in 0..NP {
        unsafe {
            let p = out.as_mut_ptr().add(k);
            match k % 3 {
                0 => v128_store8_lane::<11>(ip[k], p),
                1 => v128_store32_lane::<2>(ip[k], p as *mut u32),
                _ => v128_store(p as *mut v128, ip[k]),
            }
        }
    }
    println!("{:<26} {:016x}", "stores", fnv_bytes(FNV0, &out));

    // In the clear: -0.0 and NaN cases.
    let x = f32x4(-0.0, 0.0, -2.5, f32::NAN);
    let y = f32x4(0.0, -0.0, 0.5, 1.0);
    println!("pmin {}  pmax {}", hex(f32x4_pmin(x, y)), hex(f32x4_pmax(x, y)));
    println!("min lanes {} {} {} {}", show_f32(f32x4_extract_lane::<0>(f32x4_min(x, y))),
             show_f32(f32x4_extract_lane::<1>(f32x4_min(x, y))), show_f32(f32x4_extract_lane::<2>(f32x4_min(x, y))),
             show_f32(f32x4_extract_lane::<3>(f32x4_min(x, y))));
    println!("nearest {}", hex(f32x4_nearest(f32x4(-0.5, 0.5, 1.5, -2.5))));
    println!("trunc_sat {}", hex(i32x4_trunc_sat_f32x4(x)));
    let m = u8x16_bitmask(i8x16_eq(u8x16(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), u8x16_splat(rng.next() as u8 % 4 + 5)));
    println!("bitmask of eq: {:#06x}", m);
}

fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(99);
    println!("rs_simd seed {}", seed);
    let mut rng = Rng(seed.wrapping_mul(0x2545F4914F6CDD1D) ^ 0x1234);
    part1(&mut rng);
    part2(&mut rng);
}
