// Deep non-tail recursion: a linked list built and folded recursively, tree recursion, mutual recursion.
enum List {
    Cons(u64, Box<List>),
    Nil,
}

fn build(n: u64) -> List {
    if n == 0 { List::Nil } else { List::Cons(n, Box::new(build(n - 1))) }
}

fn fold(l: &List) -> u64 {
    match l {
        List::Nil => 17,
        List::Cons(v, rest) => fold(rest).wrapping_mul(31).wrapping_add(*v ^ 0x5555),
    }
}

fn depth_sum(n: u32, acc: &mut Vec<u32>) -> u64 {
    if n == 0 {
        return acc.len() as u64;
    }
    acc.push(n);
    let below = depth_sum(n - 1, acc);
    let mine = acc.pop().unwrap() as u64;
    below * 3 % 1_000_000_007 + mine
}

fn is_even(n: u32) -> bool { if n == 0 { true } else { is_odd(n - 1) } }
fn is_odd(n: u32) -> bool { if n == 0 { false } else { is_even(n - 1) } }

fn fib(n: u32) -> u64 { if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) } }

#[derive(Debug)]
enum Expr {
    Num(i64),
    Add(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
}

fn eval(e: &Expr) -> i64 {
    match e {
        Expr::Num(n) => *n,
        Expr::Add(a, b) => eval(a).wrapping_add(eval(b)),
        Expr::Mul(a, b) => eval(a).wrapping_mul(eval(b)) % 1_000_003,
    }
}

fn main() {
    let depth: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10000);
    let list = build(depth);
    println!("fold(list of {}) = {}", depth, fold(&list));
    // drop the list iteratively so dropping does not also recurse
    let mut cur = list;
    let mut dropped = 0;
    while let List::Cons(_, next) = cur {
        cur = *next;
        dropped += 1;
    }
    println!("dropped {}", dropped);
    let mut acc = Vec::new();
    // (larger frames: at 10000 these overflow wasmtime's default 512 KiB native stack)
    println!("depth_sum({}) = {}", depth / 2, depth_sum(depth as u32 / 2, &mut acc));
    println!("is_even({}) = {}", depth + 1, is_even(depth as u32 + 1));
    println!("fib(24) = {}", fib(24));
    let mut e = Expr::Num(1);
    for i in 0..2000 {
        e = if i % 3 == 0 { Expr::Mul(Box::new(e), Box::new(Expr::Num(i + 2))) } else { Expr::Add(Box::new(Expr::Num(i)), Box::new(e)) };
    }
    println!("eval(expr of depth 2000) = {}", eval(&e));
    std::mem::forget(e);
}
