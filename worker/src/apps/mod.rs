//! The built-in applications chosen by the binary's `APP` argument: `hello`, `echo` and
//! `static:DIR`.

mod echo;
mod hello;
mod static_files;

pub use echo::Echo;
pub use hello::Hello;
pub use static_files::StaticFiles;
