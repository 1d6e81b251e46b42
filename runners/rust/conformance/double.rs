use std::io::Read;
use std::os::unix::fs::MetadataExt;

// Doubles its input; prints on stderr the identity of the binary that runs (same for every case = compiled once).
fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let n: i64 = input.trim().parse().expect("a number");
    println!("{}", n * 2);
    if let Ok(meta) = std::fs::metadata("/proc/self/exe") {
        eprint!("{}:{}.{}", meta.ino(), meta.mtime(), meta.mtime_nsec());
    }
}
