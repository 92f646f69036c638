// Command-line arguments and environment variables.
use std::env;

fn main() {
    let args: Vec<String> = env::args().collect();
    println!("{} args", args.len());
    for (i, a) in args.iter().enumerate() {
        println!("  [{}] {:?} ({} chars)", i, a, a.chars().count());
    }
    let mut vars: Vec<(String, String)> = env::vars().collect();
    vars.sort();
    println!("{} env vars", vars.len());
    for (k, v) in &vars {
        println!("  {}={:?}", k, v);
    }
    for key in ["GREETING", "NOT_SET", "NUM"] {
        match env::var(key) {
            Ok(v) => println!("var {} = {:?}", key, v),
            Err(e) => println!("var {}: {}", key, e),
        }
    }
    let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let tri: i64 = (1..=n).sum();
    let fact = (1..=(n % 21) as u64).product::<u64>();
    println!("n={} triangle={} factorial(n%21)={} square={}", n, tri, fact, n * n);
}
