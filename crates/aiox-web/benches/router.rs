//! Router lookup benchmark (placeholder).
fn main() {}
