// ASCII Mandelbrot in f64 and f32, plus a few float-heavy reductions.
fn mandel64(cx: f64, cy: f64, max: u32) -> u32 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < max && x * x + y * y <= 4.0 {
        let t = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = t;
        i += 1;
    }
    i
}

fn mandel32(cx: f32, cy: f32, max: u32) -> u32 {
    let (mut x, mut y) = (0.0f32, 0.0f32);
    let mut i = 0;
    while i < max && x * x + y * y <= 4.0 {
        let t = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = t;
        i += 1;
    }
    i
}

fn main() {
    let shades: Vec<char> = " .:-=+*#%@".chars().collect();
    let (w, h) = (72, 28);
    let mut total64 = 0u64;
    let mut total32 = 0u64;
    let mut diff = 0;
    for row in 0..h {
        let mut line = String::new();
        for col in 0..w {
            let cx = -2.2 + 3.0 * col as f64 / w as f64;
            let cy = -1.2 + 2.4 * row as f64 / h as f64;
            let n = mandel64(cx, cy, 500);
            let m = mandel32(cx as f32, cy as f32, 500);
            total64 += n as u64;
            total32 += m as u64;
            diff += (n != m) as u32;
            line.push(if n >= 500 { '@' } else { shades[n as usize % (shades.len() - 1)] });
        }
        println!("{}", line.trim_end());
    }
    println!("iterations f64={} f32={} differing pixels={}", total64, total32, diff);
    // a deeper zoom where f32 and f64 part ways
    let mut s = 0u64;
    for k in 0..400 {
        let cx = -0.743643887037151 + (k as f64 - 200.0) * 1e-9;
        s += mandel64(cx, 0.131825904205330, 2000) as u64 * (k + 1);
    }
    println!("zoom checksum {}", s);
    let v: Vec<f32> = (1..=10000).map(|i| (i as f32).sqrt().sin()).collect();
    let sum32: f32 = v.iter().sum();
    let sum64: f64 = v.iter().map(|x| *x as f64).sum();
    let dot: f32 = v.iter().zip(v.iter().rev()).map(|(a, b)| a * b).sum();
    println!("f32 sum {:?} f64 sum {:?} dot {:?} bits {:08x}", sum32, sum64, dot, dot.to_bits());
    let mut x = 0.5f64;
    for _ in 0..1000 {
        x = 3.9 * x * (1.0 - x);
    }
    println!("logistic map after 1000 steps: {:?}", x);
}
