//! `hello`: the benchmark application, `200 OK` with `Hello, World!\n` in plain text.

use ferrocorn_worker::{App, Body, Request, Response};

/// Answers every request with `200 OK`, `Content-Type: text/plain`, `Hello, World!\n`.
/// Allocates nothing per request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hello;

impl App for Hello {
    fn call(&self, _request: &mut Request, response: &mut Response) {
        response.header("Content-Type", "text/plain");
        response.body = Body::Static(b"Hello, World!\n");
    }
}
