// HashMap, HashSet, BTreeMap, BTreeSet, VecDeque, BinaryHeap and Vec sorting.
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::cmp::Reverse;

fn main() {
    let text = "the quick brown fox jumps over the lazy dog the fox barks and the dog runs over the hill";
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w).or_insert(0) += 1;
    }
    let mut pairs: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (*k, *v)).collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    println!("word counts ({} distinct): {:?}", counts.len(), pairs);
    println!("get(fox)={:?} get(cat)={:?} contains(dog)={}", counts.get("fox"), counts.get("cat"), counts.contains_key("dog"));

    let mut big: HashMap<u64, u64> = HashMap::new();
    let mut x: u64 = 88172645463325252;
    for i in 0..20000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *big.entry(x % 5000).or_default() += i;
    }
    big.retain(|k, _| k % 3 != 0);
    let total: u64 = big.values().sum();
    let mut keys: Vec<&u64> = big.keys().collect();
    keys.sort();
    println!("big: len={} total={} first keys={:?}", big.len(), total, &keys[..5]);

    let mut bt = BTreeMap::new();
    for (i, w) in text.split(' ').enumerate() {
        bt.entry(w.len()).or_insert_with(Vec::new).push(i);
    }
    for (len, idx) in &bt {
        println!("len {}: {:?}", len, idx);
    }
    println!("range 3..5: {:?}", bt.range(3..5).map(|(k, v)| (*k, v.len())).collect::<Vec<_>>());
    println!("first={:?} last={:?}", bt.keys().next(), bt.keys().next_back());

    let hs: HashSet<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let bs: BTreeSet<char> = hs.iter().cloned().collect();
    let missing: String = ('a'..='z').filter(|c| !hs.contains(c)).collect();
    println!("letters={} sorted={:?} missing={:?}", hs.len(), bs.iter().collect::<String>(), missing);

    let mut dq: VecDeque<i32> = (1..=5).collect();
    dq.push_front(0);
    dq.push_back(6);
    dq.rotate_left(2);
    println!("deque={:?} front={:?} back={:?}", dq, dq.front(), dq.back());

    let mut heap = BinaryHeap::new();
    for v in [5, 1, 8, 3, 9, 2, 7] {
        heap.push(Reverse(v));
    }
    let order: Vec<i32> = std::iter::from_fn(|| heap.pop().map(|Reverse(v)| v)).collect();
    println!("heap order={:?}", order);

    let mut v: Vec<i64> = (0..1000).map(|i| (i * 7919) % 1009 - 500).collect();
    v.sort();
    v.dedup();
    println!("sorted dedup len={} min={} max={} search(17)={:?} search(10000)={:?}", v.len(), v[0], v[v.len() - 1],
        v.binary_search(&17), v.binary_search(&10000));
    let mut people = vec![("carol", 35), ("alice", 30), ("bob", 25), ("dave", 30), ("eve", 25)];
    people.sort_by_key(|p| p.1);
    println!("stable by age: {:?}", people);
    people.sort_unstable_by(|a, b| b.0.cmp(a.0));
    println!("by name desc: {:?}", people);
    let chunks: Vec<i32> = [1, 2, 3, 4, 5, 6, 7].chunks(3).map(|c| c.iter().sum()).collect();
    let windows: Vec<i32> = [1, 2, 3, 4, 5].windows(2).map(|w| w[0] * w[1]).collect();
    println!("chunks={:?} windows={:?}", chunks, windows);
}
