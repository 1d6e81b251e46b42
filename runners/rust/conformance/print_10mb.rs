use std::io::Write;

fn main() {
    let out = std::io::stdout();
    let mut out = out.lock();
    out.write_all(&vec![b'x'; 10_000_000]).expect("stdout");
}
