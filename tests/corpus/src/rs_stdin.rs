// Read stdin line by line: count lines, words and chars, sum numbers, longest line.
use std::io::{self, BufRead, Read, Write};

fn main() {
    let stdin = io::stdin();
    let mut lines = 0usize;
    let mut words = 0usize;
    let mut chars = 0usize;
    let mut longest = String::new();
    let mut sum = 0i64;
    let mut first_line = String::new();
    {
        let mut lock = stdin.lock();
        lock.read_line(&mut first_line).unwrap();
        let mut rest = String::new();
        lock.read_to_string(&mut rest).unwrap();
        for line in first_line.lines().chain(rest.lines()) {
            lines += 1;
            words += line.split_whitespace().count();
            chars += line.chars().count();
            if line.chars().count() > longest.chars().count() {
                longest = line.to_string();
            }
            sum += line.split_whitespace().filter_map(|w| w.parse::<i64>().ok()).sum::<i64>();
        }
    }
    let out = io::stdout();
    let mut out = out.lock();
    writeln!(out, "first={:?}", first_line.trim_end()).unwrap();
    writeln!(out, "lines={} words={} chars={} sum={}", lines, words, chars, sum).unwrap();
    writeln!(out, "longest={:?}", longest).unwrap();
    eprintln!("done reading");
}
