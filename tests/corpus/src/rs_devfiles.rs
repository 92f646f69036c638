// Reading preopened files with std (served on the device until the 9th file open at once): read_to_string,
// BufReader lines, metadata, seeks from each origin, twelve handles at once; then the host's: path
// metadata, errors, a write, and a handle opened before it reading on.
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

fn main() -> io::Result<()> {
    let text = fs::read_to_string("input.txt")?;
    println!("input.txt: {} bytes, {} lines, {} words", text.len(), text.lines().count(),
             text.split_whitespace().count());

    let f = File::open("input.txt")?;
    for (k, line) in BufReader::with_capacity(16, f).lines().enumerate() {
        println!("line {}: {:?}", k, line?);
    }

    let fmd = File::open("input.txt")?.metadata()?;
    println!("via the handle: len={} file={} dir={} readonly={}", fmd.len(), fmd.is_file(), fmd.is_dir(),
             fmd.permissions().readonly());

    let mut f = File::open("data/numbers.bin")?;
    let end = f.seek(SeekFrom::End(0))?;
    let mut word = [0u8; 4];
    f.seek(SeekFrom::Start(8))?;
    f.read_exact(&mut word)?;
    println!("numbers.bin: len={} word@8={}", end, u32::from_le_bytes(word));
    f.seek(SeekFrom::Current(-8))?;
    f.read_exact(&mut word)?;
    println!("word@4={} pos={}", u32::from_le_bytes(word), f.stream_position()?);
    let mut rest = Vec::new();
    f.read_to_end(&mut rest)?;
    let sum: u64 = rest.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).sum();
    println!("rest: {} bytes, sum {}", rest.len(), sum);

    let mut handles: Vec<File> = (0..12).map(|_| File::open("input.txt")).collect::<io::Result<_>>()?;
    for (k, h) in handles.iter_mut().enumerate() {
        h.seek(SeekFrom::Start(k as u64))?;
        let mut b = [0u8; 1];
        h.read_exact(&mut b)?;
        print!("{}", b[0] as char);
    }
    println!();
    drop(handles);
    let md = fs::metadata("input.txt")?;
    println!("metadata: len={} same as the handle's: {}", md.len(),
             md.len() == fmd.len() && md.modified()? == fmd.modified()?);
    println!("seek before start: {:?}", f.seek(SeekFrom::Current(-1000)).map_err(|e| e.kind()));
    println!("missing: {:?}", File::open("missing.txt").map(|_| ()).map_err(|e| e.kind()));
    println!("a directory: {:?}", fs::read_to_string("data").map_err(|e| e.kind()));

    let mut kept = File::open("input.txt")?;
    let mut head = [0u8; 5];
    kept.read_exact(&mut head)?;
    fs::write("out.txt", format!("{} bytes read\n", text.len()))?;
    let mut out = fs::OpenOptions::new().append(true).open("out.txt")?;
    writeln!(out, "appended")?;
    drop(out);
    println!("out.txt: {:?}", fs::read_to_string("out.txt")?);
    let mut more = String::new();
    kept.read_to_string(&mut more)?;
    println!("kept handle after the write: {:?} then {} bytes", String::from_utf8_lossy(&head), more.len());
    let mut names: Vec<String> = fs::read_dir(".")?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    println!("listing: {:?}", names);
    Ok(())
}
