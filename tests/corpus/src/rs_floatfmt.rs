// Display and Debug of f32/f64, including NaN, infinities, subnormals and signed zero.
fn main() {
    let f64s: [f64; 22] = [
        0.0, -0.0, 0.1, 0.1 + 0.2, 1.0 / 3.0, 1e15, 1e16, 1e21, 1e-7, 123456.789,
        f64::MAX, f64::MIN_POSITIVE, 5e-324, f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::EPSILON, 2.5, -1.5e300, 9007199254740993.0,
    ];
    for (i, v) in f64s.iter().enumerate() {
        println!("{:2}: {} | {:?} | {:e} | {:.3} | {:>12.2} | {:+} | bits={:016x}", i, v, v, v, v, v, v, v.to_bits());
    }
    let f32s: [f32; 12] = [
        0.1, 1.0 / 3.0, 16777217.0, f32::MAX, f32::MIN_POSITIVE, 1e-45, f32::from_bits(0x007f_ffff),
        f32::NAN, f32::INFINITY, -0.0, 3.4e38, 1e10,
    ];
    for (i, v) in f32s.iter().enumerate() {
        println!("f{:2}: {} | {:?} | {:e} | {:.4} | as f64 {}", i, v, v, v, v, *v as f64);
    }
    let parsed: Vec<f64> = ["3.14", "-0", "1e-320", "inf", "-infinity", "NaN", "2.5E10", "0x10", "1_0"]
        .iter()
        .map(|s| s.parse::<f64>().unwrap_or(-999.0))
        .collect();
    println!("parsed: {:?}", parsed);
    let x = 2.0f64;
    println!("sqrt={} powi={} powf={} exp={} ln={} sin={} atan2={}", x.sqrt(), x.powi(10), x.powf(0.5), x.exp(),
        x.ln(), x.sin(), (1.0f64).atan2(-1.0));
    println!("round={} floor={} ceil={} trunc={} fract={} abs={} signum={}", (-2.5f64).round(), (-2.5f64).floor(),
        (-2.5f64).ceil(), (-2.7f64).trunc(), (2.75f64).fract(), (-3.0f64).abs(), (-0.0f64).signum());
    println!("min={} max={} minnan={} clamp={}", 1.0f64.min(2.0), 1.0f64.max(2.0), f64::NAN.min(3.0), 7.5f64.clamp(0.0, 5.0));
    println!("casts: {} {} {} {} {} {}", 1e20f64 as i32, -1e20f64 as i64, f64::NAN as i32, 3.99f64 as u8, -1.0f64 as u32,
        300.7f32 as u8);
    println!("total_cmp: {:?}", (-0.0f64).total_cmp(&0.0));
    let mut v = vec![3.5, -1.0, f64::INFINITY, 0.0, -0.0, 2.25, -7.75];
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("sorted: {:?}", v);
    let sum: f64 = (1..=1000).map(|i| 1.0 / i as f64).sum();
    println!("harmonic(1000) = {} / {:.12}", sum, sum);
}
