fn main() {
    let mut i: u64 = 0;
    loop {
        i = i.wrapping_add(1);
        // A volatile read keeps the loop from being optimised away.
        unsafe { std::ptr::read_volatile(&i) };
    }
}
