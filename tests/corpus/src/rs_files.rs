// std::fs through WASI: write, append, seek, metadata, directories, errors.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

fn list(path: &str) -> io::Result<()> {
    let mut entries: Vec<(String, bool, u64)> = Vec::new();
    for e in fs::read_dir(path)? {
        let e = e?;
        let md = e.metadata()?;
        entries.push((e.file_name().to_string_lossy().into_owned(), md.is_dir(), if md.is_dir() { 0 } else { md.len() }));
    }
    entries.sort();
    println!("{} -> {:?}", path, entries);
    Ok(())
}

fn main() -> io::Result<()> {
    let data = fs::read_to_string("data/numbers.txt")?;
    let nums: Vec<i64> = data.lines().filter_map(|l| l.trim().parse().ok()).collect();
    println!("numbers: count={} sum={} max={:?}", nums.len(), nums.iter().sum::<i64>(), nums.iter().max());

    let f = File::open("data/numbers.txt")?;
    let first: Vec<String> = BufReader::new(f).lines().take(2).collect::<Result<_, _>>()?;
    println!("first lines: {:?}", first);

    fs::write("report.txt", format!("sum={}\n", nums.iter().sum::<i64>()))?;
    {
        let mut f = OpenOptions::new().append(true).open("report.txt")?;
        writeln!(f, "appended line")?;
        writeln!(f, "another")?;
    }
    let mut f = OpenOptions::new().read(true).write(true).open("report.txt")?;
    let end = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(4))?;
    let mut buf = [0u8; 6];
    f.read_exact(&mut buf)?;
    println!("len={} bytes[4..10]={:?}", end, String::from_utf8_lossy(&buf));
    f.seek(SeekFrom::Current(-6))?;
    f.write_all(b"######")?;
    let pos = f.stream_position()?;
    drop(f);
    println!("pos after overwrite={} content={:?}", pos, fs::read_to_string("report.txt")?);

    let mut big = File::create("big.bin")?;
    let block: Vec<u8> = (0..=255u8).collect();
    for _ in 0..100 {
        big.write_all(&block)?;
    }
    big.set_len(20000)?;
    drop(big);
    println!("big.bin len={}", fs::metadata("big.bin")?.len());

    fs::create_dir("out")?;
    fs::create_dir_all("out/a/b/c")?;
    for name in ["zeta.txt", "alpha.txt", "mid.txt"] {
        fs::write(format!("out/{}", name), name.repeat(3))?;
    }
    list("out")?;
    fs::rename("out/zeta.txt", "out/a/moved.txt")?;
    fs::remove_file("out/mid.txt")?;
    fs::copy("out/alpha.txt", "out/a/b/copy.txt")?;
    list("out")?;
    list("out/a")?;
    fs::remove_dir("out/a/b/c")?;
    list("out/a/b")?;

    match fs::read_to_string("does/not/exist.txt") {
        Ok(_) => println!("unexpected"),
        Err(e) => println!("missing file: kind={:?}", e.kind()),
    }
    match fs::create_dir("out") {
        Ok(_) => println!("unexpected"),
        Err(e) => println!("create existing dir: kind={:?}", e.kind()),
    }
    match fs::remove_dir("out") {
        Ok(_) => println!("unexpected"),
        Err(e) => println!("remove non-empty dir: is_err={} kind_other={}", true, e.kind() != io::ErrorKind::NotFound),
    }
    match File::open("out/a") {
        Ok(mut d) => {
            let mut s = String::new();
            println!("open dir then read: is_err={}", d.read_to_string(&mut s).is_err());
        }
        Err(e) => println!("open dir failed: {:?}", e.kind()),
    }
    match OpenOptions::new().write(true).create_new(true).open("report.txt") {
        Ok(_) => println!("unexpected"),
        Err(e) => println!("create_new existing: kind={:?}", e.kind()),
    }
    println!("exists: {} {}", fs::metadata("out/alpha.txt").is_ok(), fs::metadata("out/zeta.txt").is_ok());
    fs::remove_file("big.bin")?;
    Ok(())
}
