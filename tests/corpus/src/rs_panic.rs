// Panics (abort on wasm32-wasi): explicit panic!, index out of bounds, unwrap on None,
// integer overflow via checked arithmetic, divide by zero; selected by argv[1].
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "explicit".to_string());
    println!("mode {}", mode);
    let v = vec![1, 2, 3];
    let idx = mode.len() + 7;
    match mode.as_str() {
        "explicit" => panic!("boom: value was {}", 7 * 6),
        "index" => println!("{}", v[idx]),
        "unwrap" => {
            let o: Option<u8> = v.iter().find(|x| **x > 10).map(|x| *x as u8);
            println!("{}", o.unwrap());
        }
        "expect" => {
            let r: Result<i32, String> = Err("bad input".to_string());
            println!("{}", r.expect("parsing the config"));
        }
        "divzero" => {
            let d = v.len() as i32 - 3;
            println!("{}", 100 / d);
        }
        "ok" => println!("no panic"),
        other => {
            let n: u32 = other.parse().unwrap_or(0);
            if n % 10 == 3 {
                panic!("instance {} panics", n);
            }
            println!("instance {} fine: {}", n, (0..=n).map(|k| k * k).sum::<u32>());
        }
    }
}
