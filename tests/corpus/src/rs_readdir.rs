// Lists its directory with std (read_dir, each entry's metadata and file type, relative to the directory's
// descriptor) and reads every file found, one level down too: all of it served on the device.
use std::fs;
use std::io;

fn list(dir: &str, depth: usize) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let md = e.metadata()?;
        let kind = if md.is_dir() { "dir" } else if md.is_file() { "file" } else { "other" };
        print!("{}{:?} {} len={} type_is_dir={}", "  ".repeat(depth), e.file_name(), kind,
               if md.is_file() { md.len() } else { 0 }, e.file_type()?.is_dir());
        if md.is_file() {
            let text = fs::read(e.path())?;
            println!(" sum={}", text.iter().map(|&b| b as u64).sum::<u64>());
        } else {
            println!();
            if md.is_dir() && depth == 0 {
                list(e.path().to_str().unwrap(), depth + 1)?;
            }
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    list(".", 0)?;
    println!("missing: {:?}", fs::read_dir("missing").map(|_| ()).map_err(|e| e.kind()));
    Ok(())
}
