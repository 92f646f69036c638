// std::process::exit(42) from inside nested calls, after output on both streams.
use std::io::Write;

fn leave(depth: u32) -> ! {
    if depth == 0 {
        println!("exiting with 42");
        eprintln!("goodbye on stderr");
        std::io::stdout().flush().unwrap();
        std::process::exit(42);
    }
    leave(depth - 1)
}

fn main() {
    let v: Vec<u32> = (1..=10).collect();
    println!("sum={}", v.iter().sum::<u32>());
    leave(3);
}
