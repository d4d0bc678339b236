//! The `ferrocorn` binary: glue over the library crates.

fn main() {
    println!("ferrocorn {}", env!("CARGO_PKG_VERSION"));
}
