//! The built-in applications of the ferrocorn server, each an implementation of the
//! worker's [`App`](ferrocorn_worker::App) trait:
//!
//! - [`Hello`]: `200 OK`, `Hello, World!\n` in plain text, allocating nothing per request
//!   (the benchmark application).
//! - [`Echo`]: the request it received, as JSON (tests and debugging).
//! - [`StaticFiles`]: GET and HEAD of the files under a directory, confined to it, with
//!   validators, conditional and range requests and `sendfile` bodies.
//!
//! The `ferrocorn` binary picks one from its `APP` argument (`hello`, `echo`,
//! `static:DIR`); a Rust program uses them as any `App`: serve one, wrap one, or call one
//! directly, as a test does:
//!
//! ```
//! use ferrocorn_apps::Hello;
//! use ferrocorn_worker::{App, Body, Request, Response};
//!
//! let mut request = Request::for_test("GET", "/", &[("Host", "example.com")], b"");
//! let mut response = Response::new();
//! Hello.call(&mut request, &mut response);
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header_value("content-type"), Some("text/plain"));
//! assert!(matches!(response.body, Body::Static(b"Hello, World!\n")));
//! ```

mod echo;
mod hello;
mod static_files;

pub use echo::Echo;
pub use hello::Hello;
pub use static_files::StaticFiles;

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
