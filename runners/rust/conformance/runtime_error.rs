fn main() {
    let values: Vec<i32> = Vec::new();
    let index = values.len() + std::env::args().count();
    println!("{}", values[index]);
}
