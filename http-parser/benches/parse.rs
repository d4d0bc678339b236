//! Criterion bench: raw httparse vs our full head parse (filled below).
fn main() {}
