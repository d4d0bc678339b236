//! Calls a WSGI application through `App::call` in a loop, without sockets: the cost of
//! the WSGI host per request (environ, start_response, body) plus the application's own.
//! `cargo run --release -p ferrocorn-python --example call_loop -- [N] [DIR]` prints the
//! mean time per call; under `valgrind --tool=callgrind` (N small) it gives instructions
//! per request. DIR holds the application (`call_loop_app.py` is written there when
//! missing: a function returning one bytes object, the benchmark's WSGI hello).

use std::time::Instant;

use ferrocorn_python::{load, PythonOptions};
use ferrocorn_worker::{Request, Response};

const HELLO: &str = r#"def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!"]
"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let module = dir.join("call_loop_app.py");
    if !module.exists() {
        std::fs::write(&module, HELLO).expect("write the application");
    }
    let options = PythonOptions {
        pythonpath: vec![dir],
        preload: true,
        threads: 1,
        workers: 2,
        ..Default::default()
    };
    let app = load("call_loop_app:app", &options).unwrap_or_else(|e| panic!("{e}"));
    let headers = [
        ("Host", "127.0.0.1:8000"),
        ("User-Agent", "wrk"),
        ("Accept", "*/*"),
    ];
    let mut res = Response::new();
    let start = Instant::now();
    for _ in 0..n {
        let mut req = Request::for_test("GET", "/", &headers, b"");
        res = Response::new();
        app.call(&mut req, &mut res);
    }
    let elapsed = start.elapsed();
    assert_eq!(res.status, 200);
    println!(
        "{n} calls: {:.0} ns per call",
        elapsed.as_nanos() as f64 / n as f64
    );
}
