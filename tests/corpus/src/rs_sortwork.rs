// A sort-heavy workload: pseudo-random integers, floats and strings sorted several ways.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn checksum<T: Copy + Into<u64>>(v: &[T]) -> u64 {
    v.iter().enumerate().fold(0u64, |a, (i, x)| a.wrapping_mul(31).wrapping_add((*x).into() ^ i as u64))
}

fn merge_sort(v: &mut Vec<u32>) {
    if v.len() <= 1 { return; }
    let mut right = v.split_off(v.len() / 2);
    merge_sort(v);
    merge_sort(&mut right);
    let left = std::mem::take(v);
    let (mut i, mut j) = (0, 0);
    v.reserve(left.len() + right.len());
    while i < left.len() && j < right.len() {
        if left[i] <= right[j] { v.push(left[i]); i += 1; } else { v.push(right[j]); j += 1; }
    }
    v.extend_from_slice(&left[i..]);
    v.extend_from_slice(&right[j..]);
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let data: Vec<u32> = (0..n).map(|_| (rng.next() >> 40) as u32).collect();
    let mut a = data.clone();
    a.sort();
    let mut b = data.clone();
    b.sort_unstable();
    let mut c = data.clone();
    merge_sort(&mut c);
    println!("n={} equal={} {} checksum={:016x} min={} max={}", n, a == b, a == c, checksum(&a), a[0], a[n - 1]);
    let mut d = data.clone();
    d.sort_by(|x, y| y.cmp(x));
    let mut e = data.clone();
    e.sort_by_key(|x| (x % 1000, *x));
    println!("desc first={:?} bykey first={:?} checksum={:016x}", &d[..3], &e[..3], checksum(&e));
    let mut f: Vec<f64> = data.iter().map(|x| (*x as f64).sin() * 1e3).collect();
    f.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!("floats: first={:.6} median={:.6} last={:.6}", f[0], f[n / 2], f[n - 1]);
    let mut words: Vec<String> = (0..n / 10).map(|i| format!("w{:x}-{}", data[i] % 65536, i % 7)).collect();
    words.sort();
    words.dedup_by(|x, y| x[..3] == y[..3]);
    println!("words: kept={} first={:?} last={:?}", words.len(), &words[..2], words.last());
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by_key(|&i| std::cmp::Reverse(data[i]));
    println!("argmax={} top={:?}", idx[0], idx[..4].iter().map(|&i| data[i]).collect::<Vec<_>>());
    let k = n / 3;
    let mut g = data.clone();
    let (_, kth, _) = g.select_nth_unstable(k);
    println!("kth({})={} matches={}", k, kth, *kth == a[k]);
}
