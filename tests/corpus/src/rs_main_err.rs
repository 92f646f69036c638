// main returning Err: the error is printed to stderr with Debug and the exit code is 1.
use std::fmt;

#[derive(Debug)]
enum AppError {
    Parse { line: usize, text: String },
    Limit(u32),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            AppError::Parse { line, text } => write!(f, "line {}: cannot parse {:?}", line, text),
            AppError::Limit(n) => write!(f, "limit {} exceeded", n),
        }
    }
}

fn parse_all(input: &str) -> Result<Vec<i32>, AppError> {
    input
        .lines()
        .enumerate()
        .map(|(i, l)| l.trim().parse().map_err(|_| AppError::Parse { line: i + 1, text: l.to_string() }))
        .collect()
}

fn main() -> Result<(), AppError> {
    let good = parse_all("1\n2\n 3 \n")?;
    println!("good: {:?}", good);
    if good.len() > 10 {
        return Err(AppError::Limit(10));
    }
    match parse_all("4\nfive\n6") {
        Ok(v) => println!("unexpected {:?}", v),
        Err(e) => println!("handled: {}", e),
    }
    let bad = parse_all("7\n8\nnine")?;
    println!("never: {:?}", bad);
    Ok(())
}
