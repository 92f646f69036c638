// Strings and UTF-8: chars vs bytes, case mapping, splitting, formatting, parsing.
fn main() {
    let samples = ["hello", "Grüße, Jürgen!", "日本語テキスト", "emoji 🎉🚀 mix", "", "ǅungla ﬁ straße"];
    for s in samples.iter() {
        let rev: String = s.chars().rev().collect();
        println!("{:?}: bytes={} chars={} upper={:?} lower={:?} rev={:?}", s, s.len(), s.chars().count(),
            s.to_uppercase(), s.to_lowercase(), rev);
    }
    let s = "naïve café";
    for (i, c) in s.char_indices() {
        if !c.is_ascii() {
            println!("non-ascii {:?} at byte {} (U+{:04X}, {} bytes)", c, i, c as u32, c.len_utf8());
        }
    }
    println!("is_char_boundary(3)={} get(0..3)={:?} get(0..4)={:?}", s.is_char_boundary(3), s.get(0..3), s.get(0..4));
    let csv = "name,age,city\nAda,36,London\nGrace,85,New York\n\nLinus,54,Helsinki";
    for (n, line) in csv.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        println!("{:>2}| {:<8}|{:>5}|{:^12}|", n, fields[0], fields[1], fields[2]);
    }
    let words = "  many   spaces\there\n and tabs ";
    println!("split_whitespace={:?}", words.split_whitespace().collect::<Vec<_>>());
    println!("trim={:?} splitn={:?}", words.trim(), "a=b=c".splitn(2, '=').collect::<Vec<_>>());
    println!("replace={:?} find={:?} rfind={:?}", "aaa".replace("a", "bb"), "hello".find('l'), "hello".rfind('l'));
    println!("starts={} ends={} contains={}", "prefix".starts_with("pre"), "suffix".ends_with("fix"), "abc".contains("bc"));
    let nums = ["42", "-17", "3.5", "abc", "9999999999", "+8", " 1"];
    for n in nums.iter() {
        println!("parse {:?}: i32={:?} i64={:?}", n, n.parse::<i32>().ok(), n.parse::<i64>().map_err(|e| e.to_string()));
    }
    let mut owned = String::with_capacity(4);
    for i in 0..10 {
        owned.push_str(&i.to_string());
        owned.push('·');
    }
    owned.truncate(owned.len() - '·'.len_utf8());
    println!("built={} len={}", owned, owned.len());
    let bytes = vec![0xf0u8, 0x9f, 0x92, 0x96, b'o', b'k', 0xff, b'!'];
    println!("lossy={:?} strict={:?}", String::from_utf8_lossy(&bytes), String::from_utf8(bytes.clone()).is_err());
    println!("escape_debug={} escape_unicode={}", "tab\t\"q\"\n".escape_debug(), "é".escape_unicode());
    println!("fmt: [{:10}] [{:<10}] [{:^10}] [{:>10}] [{:*^9}] [{:#x}] [{:#b}] [{:08.3}] [{:+}]", "x", "left", "mid", "right",
        "s", 255, 5, -3.14159, 7);
    let width = 6;
    println!("dynamic width: [{:>width$}] [{:>1$}] [{:.*}]", 42, 8, 2, 1.23456, width = width);
    let mut chars: Vec<char> = "the quick brown fox".chars().filter(|c| *c != ' ').collect();
    chars.sort_unstable();
    chars.dedup();
    println!("distinct letters: {}", chars.into_iter().collect::<String>());
}
