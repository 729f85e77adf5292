//! Placeholder until the fpp benchmark lands.
fn main() {}
