//! std-heavy Rust: String building with format!, splitting and parsing, Vec<String> sorting,
//! char iteration. Built as a wasm32-unknown-unknown cdylib: `run(seed) -> i64`.
use std::fmt::Write;

fn next(state: &mut u32) -> u32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

#[no_mangle]
pub extern "C" fn run(seed: i32) -> i64 {
    let mut st = (seed as u32).wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
    if st == 0 {
        st = 1;
    }
    let mut acc: u64 = 0;
    for _round in 0..12 {
        let mut text = String::new();
        for i in 0..400u32 {
            let r = next(&mut st);
            let word: String = (0..3 + r % 7).map(|k| (b'a' + ((r >> (k * 3)) % 26) as u8) as char).collect();
            write!(text, "{}={}:{};", word, r % 100_000, i).unwrap();
        }
        let mut words: Vec<String> = Vec::new();
        let mut total = 0u64;
        for item in text.split(';').filter(|s| !s.is_empty()) {
            let (word, rest) = item.split_once('=').unwrap();
            let mut nums = rest.split(':').map(|n| n.parse::<u64>().unwrap());
            total = total.wrapping_add(nums.next().unwrap() * 3 + nums.next().unwrap());
            words.push(word.to_uppercase());
        }
        words.sort();
        words.dedup();
        let joined = words.join(",");
        let vowels = joined.chars().filter(|c| "AEIOU".contains(*c)).count() as u64;
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for b in joined.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        acc = acc.rotate_left(7) ^ h ^ total ^ (vowels << 40) ^ (words.len() as u64) ^ ((text.len() as u64) << 20);
    }
    acc as i64
}
