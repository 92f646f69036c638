// SystemTime, Instant and HashMap's random seeding work; only properties are printed.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now();
    let since = now.duration_since(UNIX_EPOCH).expect("clock before 1970");
    println!("after 2020: {}", since > Duration::from_secs(1_577_836_800));
    let t0 = Instant::now();
    let mut x = 0u64;
    for i in 0..200_000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    let el = t0.elapsed();
    println!("work {} elapsed is sane: {}", x % 1000, el < Duration::from_secs(3600));
    println!("instant ordering: {}", Instant::now() >= t0);
    std::thread::sleep(Duration::from_millis(2));
    println!("slept at least 2ms: {}", t0.elapsed() >= Duration::from_millis(2));
    let a = RandomState::new();
    let b = RandomState::new();
    let h = |s: &RandomState| {
        let mut hasher = s.build_hasher();
        hasher.write_u64(12345);
        hasher.finish()
    };
    println!("same state hashes equal: {}", h(&a) == h(&a));
    println!("two states differ: {}", h(&a) != h(&b));
}
