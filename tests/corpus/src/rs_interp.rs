// A tiny interpreter: tokenizer, recursive-descent parser and evaluator for a little
// language with variables, while loops and print.
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Tok { Num(i64), Id(String), Op(char), Kw(&'static str) }

fn lex(src: &str) -> Vec<Tok> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() { i += 1; continue; }
        if c.is_ascii_digit() {
            let mut n = 0i64;
            while i < cs.len() && cs[i].is_ascii_digit() { n = n * 10 + cs[i].to_digit(10).unwrap() as i64; i += 1; }
            out.push(Tok::Num(n));
        } else if c.is_alphabetic() {
            let start = i;
            while i < cs.len() && cs[i].is_alphanumeric() { i += 1; }
            let w: String = cs[start..i].iter().collect();
            out.push(match w.as_str() { "while" => Tok::Kw("while"), "print" => Tok::Kw("print"), "if" => Tok::Kw("if"), _ => Tok::Id(w) });
        } else { out.push(Tok::Op(c)); i += 1; }
    }
    out
}

#[derive(Debug)]
enum Node { Num(i64), Var(String), Bin(char, Box<Node>, Box<Node>), Assign(String, Box<Node>), While(Box<Node>, Vec<Node>), If(Box<Node>, Vec<Node>), Print(Box<Node>) }

struct P { t: Vec<Tok>, i: usize }
impl P {
    fn peek(&self) -> Option<&Tok> { self.t.get(self.i) }
    fn eat(&mut self, c: char) { assert_eq!(self.t[self.i], Tok::Op(c), "at token {}", self.i); self.i += 1; }
    fn block(&mut self) -> Vec<Node> {
        self.eat('{');
        let mut v = Vec::new();
        while self.peek() != Some(&Tok::Op('}')) { v.push(self.stmt()); }
        self.eat('}');
        v
    }
    fn stmt(&mut self) -> Node {
        match self.peek().cloned() {
            Some(Tok::Kw("while")) => { self.i += 1; let c = self.expr(0); Node::While(Box::new(c), self.block()) }
            Some(Tok::Kw("if")) => { self.i += 1; let c = self.expr(0); Node::If(Box::new(c), self.block()) }
            Some(Tok::Kw("print")) => { self.i += 1; let e = self.expr(0); self.eat(';'); Node::Print(Box::new(e)) }
            Some(Tok::Id(name)) => { self.i += 1; self.eat('='); let e = self.expr(0); self.eat(';'); Node::Assign(name, Box::new(e)) }
            t => panic!("unexpected {:?}", t),
        }
    }
    fn prec(c: char) -> Option<u8> {
        match c { '<' | '>' | '#' => Some(1), '+' | '-' => Some(2), '*' | '/' | '%' => Some(3), _ => None }
    }
    fn expr(&mut self, min: u8) -> Node {
        let mut lhs = match self.t[self.i].clone() {
            Tok::Num(n) => { self.i += 1; Node::Num(n) }
            Tok::Id(v) => { self.i += 1; Node::Var(v) }
            Tok::Op('(') => { self.i += 1; let e = self.expr(0); self.eat(')'); e }
            t => panic!("bad expr {:?}", t),
        };
        while let Some(Tok::Op(c)) = self.peek().cloned() {
            let p = match P::prec(c) { Some(p) if p > min => p, _ => break };
            self.i += 1;
            let rhs = self.expr(p);
            lhs = Node::Bin(c, Box::new(lhs), Box::new(rhs));
        }
        lhs
    }
}

fn eval(n: &Node, env: &mut HashMap<String, i64>, out: &mut Vec<i64>, steps: &mut u64) -> i64 {
    *steps += 1;
    match n {
        Node::Num(v) => *v,
        Node::Var(v) => *env.get(v).unwrap_or(&0),
        Node::Bin(op, a, b) => {
            let (x, y) = (eval(a, env, out, steps), eval(b, env, out, steps));
            match op { '+' => x.wrapping_add(y), '-' => x.wrapping_sub(y), '*' => x.wrapping_mul(y), '/' => x / y, '%' => x % y,
                '<' => (x < y) as i64, '>' => (x > y) as i64, '#' => (x != y) as i64, _ => unreachable!() }
        }
        Node::Assign(v, e) => { let x = eval(e, env, out, steps); env.insert(v.clone(), x); x }
        Node::While(c, body) => { while eval(c, env, out, steps) != 0 { for s in body { eval(s, env, out, steps); } } 0 }
        Node::If(c, body) => { if eval(c, env, out, steps) != 0 { for s in body { eval(s, env, out, steps); } } 0 }
        Node::Print(e) => { let x = eval(e, env, out, steps); out.push(x); x }
    }
}

fn main() {
    let programs = [
        ("gcd", "a = 1071; b = 462; while b > 0 { t = a % b; a = b; b = t; } print a;"),
        ("fib", "a = 0; b = 1; i = 0; while i < 60 { t = a + b; a = b; b = t; i = i + 1; if i % 10 < 1 { print a; } } print a;"),
        ("primes", "n = 2; c = 0; while n < 2000 { d = 2; p = 1; while d * d < n + 1 { if n % d < 1 { p = 0; d = n; } d = d + 1; } c = c + p; n = n + 1; } print c;"),
        ("collatz", "m = 0; best = 0; s = 1; while s < 300 { x = s; k = 0; while x # 1 { if x % 2 { x = 3 * x + 1; } if x % 2 < 1 { x = x / 2; } k = k + 1; } if k > m { m = k; best = s; } s = s + 1; } print best; print m;"),
    ];
    for (name, src) in programs.iter() {
        let toks = lex(src);
        let mut p = P { t: toks, i: 0 };
        let mut prog = Vec::new();
        while p.i < p.t.len() { prog.push(p.stmt()); }
        let mut env = HashMap::new();
        let mut out = Vec::new();
        let mut steps = 0;
        for s in &prog { eval(s, &mut env, &mut out, &mut steps); }
        let mut vars: Vec<_> = env.into_iter().collect();
        vars.sort();
        println!("{}: {} tokens, {} steps, output {:?}, vars {:?}", name, p.t.len(), steps, out, vars);
    }
}
