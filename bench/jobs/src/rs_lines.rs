// Many small writes: 2,000 short lines, one println! (one fd_write) each, from a seed in input.txt.
use std::fs;

fn main() {
    let text = fs::read_to_string("input.txt").expect("cannot read input.txt");
    let mut x: u32 = text.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    for k in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        println!("{:4} {:08x} {}", k, x, x % 1000);
    }
}
