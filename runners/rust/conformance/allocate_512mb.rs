fn main() {
    let block = vec![1u8; 512 << 20];
    println!("{}", block[12345]);
}
