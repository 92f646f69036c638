// Allocate 64 MiB in 1 MiB chunks (memory.grow), touch every page, checksum, then reallocate.
fn main() {
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for c in 0..64usize {
        let mut v = vec![0u8; CHUNK];
        let mut off = 0;
        while off < CHUNK {
            v[off] = (c as u8).wrapping_mul(7) ^ (off >> 12) as u8;
            v[off + 4095] = c as u8;
            off += 4096;
        }
        chunks.push(v);
    }
    let mut sum: u64 = 0;
    for v in &chunks {
        let mut off = 0;
        while off < CHUNK {
            sum = sum.wrapping_mul(1_000_003).wrapping_add(v[off] as u64 + v[off + 4095] as u64 * 256);
            off += 4096;
        }
        sum ^= v[12345] as u64; // untouched bytes are zero
    }
    println!("chunks={} checksum={:016x}", chunks.len(), sum);
    chunks.truncate(16);
    let mut grow: Vec<u32> = Vec::new();
    for i in 0..(8 << 20) / 4 {
        grow.push(i as u32 ^ 0xdead_beef);
    }
    let x = grow.iter().step_by(4099).fold(0u32, |a, b| a.rotate_left(5) ^ b);
    println!("grown vec len={} cap>=len={} fold={:08x}", grow.len(), grow.capacity() >= grow.len(), x);
    let boxed: Box<[u64]> = (0..1_000_000u64).map(|i| i * i).collect();
    println!("boxed last={} sum mod={}", boxed[boxed.len() - 1], boxed.iter().fold(0u64, |a, b| (a + b) % 998_244_353));
    let s = "abc".repeat(1 << 20);
    println!("string len={} count(b)={}", s.len(), s.bytes().filter(|b| *b == b'b').count());
}
