//! std-heavy Rust: HashMap<u64, u64> (std's SipHash), Vec allocation, sorting and dedup.
//! Built as a wasm32-unknown-unknown cdylib (std without WASI): `run(seed) -> i64`.
use std::collections::HashMap;

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[no_mangle]
pub extern "C" fn run(seed: i32) -> i64 {
    let mut rng = SplitMix(seed as u32 as u64);
    let mut acc: u64 = 0;
    for round in 0..15u64 {
        let mut map: HashMap<u64, u64> = HashMap::new();
        for i in 0..1500u64 {
            let k = rng.next() % 1024;
            *map.entry(k).or_insert(round) += i ^ k;
        }
        let mut hits = 0u64;
        for _ in 0..1500 {
            let k = rng.next() % 2048;
            if let Some(v) = map.get(&k) {
                hits = hits.wrapping_add(*v);
            }
        }
        let doomed: Vec<u64> = map.keys().copied().filter(|k| k % 3 == 0).collect();
        for k in &doomed {
            map.remove(k);
        }
        // Order-independent from here: the map's iteration order may vary between calls.
        let mut pairs: Vec<(u64, u64)> = map.iter().map(|(k, v)| (*v, *k)).collect();
        pairs.sort_unstable();
        let mut vals: Vec<u64> = pairs.iter().map(|p| p.0 % 97).collect();
        vals.sort();
        vals.dedup();
        let mut s = 0u64;
        for (i, (v, k)) in pairs.iter().enumerate() {
            s = s.wrapping_mul(1_000_003).wrapping_add(v ^ (k << 20) ^ i as u64);
        }
        acc = acc.rotate_left(13) ^ s ^ hits ^ ((vals.len() as u64) << 48) ^ (map.len() as u64);
    }
    acc as i64
}
