// Count the distinct characters of input.txt (opened relative to the preopened directory).
use std::collections::HashMap;
use std::fs;

fn main() {
    let text = fs::read_to_string("input.txt").expect("cannot read input.txt");
    let mut counts: HashMap<char, usize> = HashMap::new();
    for c in text.chars() {
        *counts.entry(c).or_insert(0) += 1;
    }
    println!("Found {} unique chars", counts.len());
}
