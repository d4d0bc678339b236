//! A custom Rust application served by the whole server (arbiter, forked workers, signals,
//! the command line, `FERROCORN_*` variables, the config file, logging) through
//! [`ferrocorn::Server`]: `cargo run -p ferrocorn --example custom_app -- --workers 4
//! --threads 4` serves it on 127.0.0.1:8000 (the `ferrocorn` binary's default bind), and
//! `custom_app --help` lists every option. HUP reloads the configuration; TERM stops it.
//!
//! The application answers `GET /` with a greeting naming the worker's pid, `POST /sum` with
//! the sum of the whitespace-separated integers in the body, `GET /stream` with a
//! streamed (chunked) body, and `GET /held` with a streamed body whose second piece waits
//! until `GET /release` (with 4 threads per worker the stream is read on the pool, so the
//! worker serves `/release` meanwhile).

use std::io::Read;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ferrocorn::{App, Body, Request, Response};

/// The example application.
#[derive(Debug, Default)]
struct Calculator {
    /// Opened by `/release`; the `/held` stream waits for it.
    gate: Arc<(Mutex<bool>, Condvar)>,
}

/// A body that sends `first`, waits (at most 30 s) for the gate, then sends `second`.
struct Held {
    gate: Arc<(Mutex<bool>, Condvar)>,
    step: u8,
}

impl Read for Held {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step += 1;
        let piece: &[u8] = match self.step {
            1 => b"first\n",
            2 => {
                let (lock, cvar) = &*self.gate;
                let open = lock.lock().unwrap_or_else(|p| p.into_inner());
                let _ = cvar
                    .wait_timeout_while(open, Duration::from_secs(30), |open| !*open)
                    .unwrap_or_else(|p| p.into_inner());
                b"second\n"
            }
            _ => b"",
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        Ok(n)
    }
}

impl App for Calculator {
    fn call(&self, request: &mut Request, response: &mut Response) {
        match (request.method(), request.path()) {
            ("GET", "/") => {
                response.header("Content-Type", "text/plain");
                response.body =
                    Body::Bytes(format!("hello from worker {}\n", std::process::id()).into_bytes());
            }
            ("POST", "/sum") => {
                let mut text = String::new();
                if request.body().read_to_string(&mut text).is_err() {
                    response.plain(400, "the body is not utf-8\n");
                    return;
                }
                let sum: Result<i64, _> = text.split_whitespace().map(str::parse::<i64>).sum();
                match sum {
                    Ok(sum) => response.plain(200, format!("{sum}\n")),
                    Err(e) => response.plain(400, format!("not an integer: {e}\n")),
                }
            }
            ("GET", "/stream") => {
                let lines: Vec<u8> = (1..=5)
                    .flat_map(|i| format!("line {i}\n").into_bytes())
                    .collect();
                response.header("Content-Type", "text/plain");
                response.body = Body::Stream {
                    reader: Box::new(std::io::Cursor::new(lines)),
                    len: None,
                };
            }
            ("GET", "/held") => {
                response.header("Content-Type", "text/plain");
                response.body = Body::Stream {
                    reader: Box::new(Held {
                        gate: Arc::clone(&self.gate),
                        step: 0,
                    }),
                    len: None,
                };
            }
            ("GET", "/release") => {
                let (lock, cvar) = &*self.gate;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
                cvar.notify_all();
                response.plain(200, "released\n");
            }
            _ => response.plain(404, "not found\n"),
        }
    }
}

fn main() -> ExitCode {
    // Takes every option of the `ferrocorn` binary but `APP`: it serves the calculator.
    ferrocorn::Server::new(Calculator::default())
        .name("custom_app")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A calculator served by ferrocorn (an example of the library).")
        .run()
}
