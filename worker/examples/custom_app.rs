//! A custom application served by the worker: `cargo run -p ferrocorn-worker --example
//! custom_app -- [ADDR]` serves it on ADDR (default 127.0.0.1:8080) in this one process.
//!
//! It answers `/` with a greeting, `/sum` with the sum of the numbers in a POST body, and
//! `/stream` with a chunked streamed body.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrocorn_worker::{
    App, Body, Listener, Request, Response, Settings, Supervisor, WorkerStatus,
};

/// Counts the requests it answered.
#[derive(Debug, Default)]
struct Calculator {
    served: AtomicU64,
}

impl App for Calculator {
    fn call(&self, request: &mut Request, response: &mut Response) {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        match (request.method(), request.path()) {
            ("GET", "/") => {
                response.header("Content-Type", "text/plain");
                response.body =
                    Body::Bytes(format!("hello from a custom app, request {n}\n").into_bytes());
            }
            ("POST", "/sum") => {
                let mut text = String::new();
                if request.body().read_to_string(&mut text).is_err() {
                    response.plain(400, "body is not utf-8\n");
                    return;
                }
                let sum: Result<i64, _> = text.split_whitespace().map(str::parse::<i64>).sum();
                match sum {
                    Ok(s) => response.plain(200, format!("{s}\n")),
                    Err(e) => response.plain(400, format!("not a number: {e}\n")),
                }
            }
            ("GET", "/stream") => {
                response.header("Content-Type", "text/plain");
                let lines: Vec<u8> = (1..=5)
                    .flat_map(|i| format!("line {i}\n").into_bytes())
                    .collect();
                response.body = Body::Stream {
                    reader: Box::new(std::io::Cursor::new(lines)),
                    len: None,
                };
            }
            _ => response.plain(404, "not found\n"),
        }
    }
}

/// Without an arbiter, heartbeats go nowhere.
struct NoSupervisor;

impl Supervisor for NoSupervisor {
    fn heartbeat(&self, _status: WorkerStatus) {}
    fn reopen_logs(&self) {}
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    if let Ok(a) = listener.local_addr() {
        println!("listening on http://{a}");
    }
    let mut settings = Settings::default();
    if let Ok(app) = std::env::var("FERROCORN_EXAMPLE_APP") {
        settings.app = app;
    }
    settings.accesslog = std::env::var("FERROCORN_EXAMPLE_ACCESSLOG").ok();
    settings.threads = std::env::var("FERROCORN_EXAMPLE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let app: Arc<dyn App> =
        if settings.app.starts_with("static:") && std::env::var("FERROCORN_EXAMPLE_APP").is_err() {
            Arc::new(Calculator::default())
        } else {
            match ferrocorn_worker::load_app(&settings.app) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        };
    let exit = ferrocorn_worker::run(&settings, vec![Listener::Tcp(listener)], app, &NoSupervisor);
    println!("worker stopped: {exit:?}");
    std::process::exit(exit.code());
}
