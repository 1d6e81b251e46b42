use std::thread;

fn main() {
    let workers: Vec<_> = (0..4).map(|_| thread::spawn(|| 6 * 7)).collect();
    let results: Vec<i32> = workers.into_iter().map(|worker| worker.join().expect("worker")).collect();
    println!("{}", results[3]);
}
