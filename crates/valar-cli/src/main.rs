//! The `valar` binary.
fn main() {}
