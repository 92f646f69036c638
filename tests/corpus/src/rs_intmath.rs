// Integer arithmetic: wrapping/checked/saturating ops, bit counting, i128, division semantics.
fn main() {
    let vals: [i64; 10] = [0, 1, -1, 7, -7, i64::MAX, i64::MIN, 0x0123_4567_89ab_cdef, -1_000_000_007, 1 << 40];
    let mut acc: u64 = 0xcbf2_9ce4_8422_2325;
    for &a in &vals {
        for &b in &vals {
            acc = (acc ^ a.wrapping_mul(b) as u64).wrapping_mul(0x100_0000_01b3);
            if let Some(q) = a.checked_div(b) {
                acc = acc.rotate_left(7) ^ q as u64 ^ (a.wrapping_rem(b) as u64).wrapping_shl(3);
            }
            acc ^= (a as u64).checked_div(b as u64).unwrap_or(0xffff);
        }
    }
    println!("acc={:016x}", acc);
    for &v in &vals {
        let u = v as u64;
        println!("{:>20}: ones={:2} lz={:2} tz={:2} lz32={:2} rotr={:016x} swap={:016x} rev={:016x} signum={}",
            v, u.count_ones(), u.leading_zeros(), u.trailing_zeros(), (u as u32).leading_zeros(), u.rotate_right(17),
            u.swap_bytes(), u.reverse_bits(), v.signum());
    }
    println!("checked: {:?} {:?} {:?} {:?}", i32::MAX.checked_add(1), 5u8.checked_sub(6), i64::MIN.checked_neg(),
        2i32.checked_pow(31));
    println!("saturating: {} {} {}", i32::MAX.saturating_add(5), 3u16.saturating_sub(9), i8::MIN.saturating_mul(2));
    println!("overflowing: {:?} {:?}", 200u8.overflowing_add(100), i32::MIN.overflowing_sub(1));
    println!("wrapping: {} {} {}", i32::MIN.wrapping_abs(), (-128i8).wrapping_neg(), 3u32.wrapping_sub(5));
    println!("div_euclid: {} {} rem_euclid: {} {}", (-7i32).div_euclid(2), 7i32.div_euclid(-2), (-7i32).rem_euclid(2),
        7i32.rem_euclid(-2));
    println!("div: {} {} {} {}", -7 / 2, -7 % 2, 7 / -2, 7 % -2);
    println!("pow: {} {} isqrt-ish: {}", 3u64.pow(40), (-2i64).pow(63), (1e18f64.sqrt()) as u64);
    let a: i128 = 170141183460469231731687303715884105727;
    let b: u128 = u64::MAX as u128 * u64::MAX as u128;
    println!("i128: {} {} {} {}", a, a / 1_000_000_007, b, b % 998_244_353);
    println!("mulhi: {:x}", ((0xdead_beef_cafe_babeu64 as u128 * 0x1234_5678_9abc_def0u128) >> 64) as u64);
    println!("casts: {} {} {} {} {}", -1i32 as u32, 300i32 as u8, -1i8 as u64, u64::MAX as i32, 0x1_0000_0001u64 as i32);
    println!("from_str_radix: {:?} {:?} {:?}", i64::from_str_radix("-ff", 16), u8::from_str_radix("256", 10).is_err(),
        u32::from_str_radix("1010", 2));
    let mut sieve = vec![true; 100_001];
    sieve[0] = false;
    sieve[1] = false;
    let mut i = 2;
    while i * i <= 100_000 {
        if sieve[i] {
            let mut j = i * i;
            while j <= 100_000 { sieve[j] = false; j += i; }
        }
        i += 1;
    }
    let primes: Vec<usize> = (0..=100_000).filter(|&k| sieve[k]).collect();
    println!("primes<=1e5: {} last={} sum={}", primes.len(), primes[primes.len() - 1], primes.iter().sum::<usize>());
    let gcd = |mut a: u64, mut b: u64| { while b != 0 { let t = a % b; a = b; b = t; } a };
    println!("gcd={} lcm={}", gcd(1071, 462), 1071 / gcd(1071, 462) * 462);
}
