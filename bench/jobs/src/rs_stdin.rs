// Summarise stdin: lines, words, bytes, the lines containing NEEDLE (the first argument), and a
// checksum salted with the environment variable JOB_SALT.
use std::env;
use std::io::{self, BufRead};

fn main() {
    let args: Vec<String> = env::args().collect();
    let needle = args.get(1).cloned().unwrap_or_default();
    let salt: u64 = env::var("JOB_SALT").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut lines = 0usize;
    let mut words = 0usize;
    let mut bytes = 0usize;
    let mut hits = Vec::new();
    let mut hash: u64 = 0xcbf29ce484222325 ^ salt;
    for line in io::stdin().lock().lines() {
        let line = line.expect("stdin is not UTF-8");
        lines += 1;
        bytes += line.len() + 1;
        words += line.split_whitespace().count();
        if !needle.is_empty() && line.contains(needle.as_str()) {
            hits.push(lines);
        }
        for b in line.bytes() {
            hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
    println!("{}: needle {:?}, salt {}", args[0], needle, salt);
    println!("lines {} words {} bytes {}", lines, words, bytes);
    println!("hits {} first {:?}", hits.len(), hits.iter().take(5).collect::<Vec<_>>());
    println!("checksum {:016x}", hash);
    if hits.is_empty() {
        eprintln!("note: {:?} not found", needle);
    }
}
