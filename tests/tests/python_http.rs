//! Black-box: HTTP/1.1 and robustness for a Python application, with 1 thread (calls on the
//! loop thread) and 4 (calls on the pool): keep-alive, pipelining, `100-continue`, HEAD,
//! the access log; exceptions, clients leaving mid-stream or not reading, a 1 GiB upload
//! and 1,000 idle connections never take a worker down or hold memory; a hung call meets
//! the worker timeout. Memory is judged by the worker's peak RSS (`VmHWM`), never timing.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use ferrocorn_tests::python::{python_server, Record};
use ferrocorn_tests::{
    connect, peak_rss_kib, read_response, rss_kib, wait_until, Load, Response, Server,
};

const WAIT: Duration = Duration::from_secs(30);
/// The most a worker may ever hold resident while a body streams through it, in KiB: far
/// below the gigabyte that passes, far above an interpreter with its buffers.
const WORKER_RSS_BOUND_KIB: u64 = 256 * 1024;

/// `ferrocorn --workers 1 --threads THREADS ARGS... edge_app`.
fn edge(threads: &str, args: &[&str]) -> Server {
    python_server()
        .args(["--workers", "1", "--threads", threads])
        .args(args)
        .args(["edge_app"])
        .start()
}

fn hello_on(reader: &mut BufReader<TcpStream>, what: &str) {
    let r = read_response(reader, false).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Python"),
        "{what}"
    );
}

fn assert_hello(server: &Server, what: &str) {
    let r = server
        .get("/hello")
        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", server.stderr()));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Python"),
        "{what}\n{}",
        server.stderr()
    );
}

/// The only worker of a `--workers 1` server.
fn only_worker(server: &Server) -> i32 {
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    server.worker_pids()[0]
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    for threads in ["1", "4"] {
        let server = edge(threads, &[]);
        let mut stream = connect(server.addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for turn in 0..3 {
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            hello_on(&mut reader, &format!("threads {threads}, turn {turn}"));
        }
        stream
            .write_all(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst\
                  POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n\
                  HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n\
                  GET /hello HTTP/1.1\r\nHost: t\r\n\r\n\
                  POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthird",
            )
            .unwrap();
        let mut texts = Vec::new();
        for head in [false, false, true, false, false] {
            let r = read_response(&mut reader, head)
                .unwrap_or_else(|e| panic!("threads {threads}: {e}\n{}", server.stderr()));
            assert_eq!(r.status, 200, "threads {threads}");
            texts.push(if head { "HEAD".to_string() } else { r.text() });
        }
        assert_eq!(
            texts,
            [
                "POST /echo first",
                "POST /echo second",
                "HEAD",
                "Hello from Python",
                "POST /echo third"
            ],
            "threads {threads}"
        );
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    for threads in ["1", "4"] {
        let server = edge(threads, &[]);
        let mut stream = connect(server.addr).unwrap();
        stream
            .write_all(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\
                  Expect: 100-continue\r\n\r\n",
            )
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let interim = read_response(&mut reader, false).unwrap();
        assert_eq!(interim.status, 100, "threads {threads}");
        stream.write_all(b"hello world").unwrap();
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "POST /echo hello world"),
            "threads {threads}"
        );
    }
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let server = edge("1", &[]);
    let mut stream = connect(server.addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let get = read_response(&mut reader, false).unwrap();
    stream
        .write_all(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_response(&mut reader, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    // Had the HEAD answer carried a body, it would be read as this response's start.
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    hello_on(&mut reader, "after HEAD");
}

#[test]
fn header_values_and_the_reason_phrase_go_out_as_latin1() {
    let server = edge("1", &[]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 299 Caf\xe9\r\n"), "{raw:?}");
    assert!(
        raw.windows(12).any(|w| w == b"X-Name: caf\xe9"),
        "one byte 0xE9, not UTF-8's two: {raw:?}"
    );
    assert!(raw.ends_with(b"latin-1"), "{raw:?}");
}

#[test]
fn the_access_log_has_a_line_for_each_python_request() {
    let server = edge("1", &["--access-logfile", "-"]);
    let r = server
        .request(
            b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: test-agent\r\n\
              Referer: http://ref.test/\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let expected = r#""GET /hello?x=1 HTTP/1.1" 200 17 "http://ref.test/" "test-agent""#;
    assert!(
        wait_until(WAIT, || server.stdout().lines().any(|line| line
            .starts_with("127.0.0.1 - - [")
            && line.ends_with(expected))),
        "access log:\n{}",
        server.stdout()
    );
}

#[test]
fn python_exceptions_never_take_a_worker_down() {
    for threads in ["1", "4"] {
        let server = python_server()
            .args(["--workers", "2", "--threads", threads, "edge_app"])
            .start();
        assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
        let workers = server.worker_pids();
        for round in 0..15 {
            for path in ["/exception", "/non-bytes", "/bad-status"] {
                let r = server.get(path).unwrap();
                assert_eq!(r.status, 500, "threads {threads}, round {round}, {path}");
            }
            // Cut short after the head: the client sees the connection close.
            let r = server.get("/exception-after-head");
            assert!(
                r.is_err(),
                "threads {threads}: a response cut short is not complete: {r:?}"
            );
            assert_hello(&server, &format!("threads {threads}, round {round}"));
        }
        assert_eq!(
            server.worker_pids(),
            workers,
            "threads {threads}: the same workers serve on\n{}",
            server.stderr()
        );
        // The worker logs the traceback after it has answered: wait for the line.
        assert!(
            wait_until(WAIT, || server
                .stderr()
                .contains("edge_app: raised on purpose")),
            "{}",
            server.stderr()
        );
    }
}

/// One round of what must leave nothing behind: exceptions before and after the head, a
/// non-bytes piece, a client leaving in the middle of a stream, and a served request.
fn failing_round(server: &Server, what: &str) {
    for path in ["/exception", "/non-bytes"] {
        let r = server.get(path).unwrap();
        assert_eq!(r.status, 500, "{what}: {path}");
    }
    assert!(server.get("/exception-after-head").is_err(), "{what}");
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /stream?name=leak HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    stream.read_exact(&mut head).unwrap();
    drop(stream);
    assert_hello(server, what);
}

#[test]
fn failed_and_abandoned_requests_leave_no_memory_behind() {
    // After a warm-up (the interpreter's caches, the allocator's arenas), 1,500 more rounds
    // must not grow the worker by a MiB: a leak of 1 KiB in one of the five requests of a
    // round adds 1.5 MiB (checked by hand), where the worker grew 24 and 208 KiB.
    const GROWTH_BOUND_KIB: u64 = 1024;
    for threads in ["1", "4"] {
        let server = edge(threads, &[]);
        let worker = only_worker(&server);
        for round in 0..200 {
            failing_round(&server, &format!("threads {threads}, warm-up {round}"));
        }
        let before = rss_kib(worker).unwrap();
        for round in 0..1500 {
            failing_round(&server, &format!("threads {threads}, round {round}"));
        }
        let after = rss_kib(worker).unwrap();
        assert_eq!(server.worker_pids(), [worker], "threads {threads}");
        assert!(
            after <= before + GROWTH_BOUND_KIB,
            "threads {threads}: the worker grew from {before} KiB to {after} KiB"
        );
    }
}

/// Requests the endless stream `name`, reads its head and `read` bytes of body, and
/// returns the connection.
fn start_stream(server: &Server, name: &str, read: usize) -> TcpStream {
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(format!("GET /stream?name={name} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut received = vec![0; read];
    stream.read_exact(&mut received).unwrap_or_else(|e| {
        panic!("{name}: {e}\n{}", server.stderr());
    });
    assert!(
        received.starts_with(b"HTTP/1.1 200 "),
        "{name}: {}",
        String::from_utf8_lossy(&received[..64])
    );
    stream
}

#[test]
fn a_client_leaving_mid_stream_gets_close_called_and_the_worker_serves_on() {
    for threads in ["1", "4"] {
        let record = Record::new("leaving");
        let server = record
            .attach(python_server())
            .args(["--workers", "1", "--threads", threads, "edge_app"])
            .start();
        let worker = only_worker(&server);
        for turn in 0..3 {
            let name = format!("leaving-t{threads}-{turn}");
            let stream = start_stream(&server, &name, 256 * 1024);
            if turn == 2 {
                // A reset rather than an orderly close.
                let _ = nix::sys::socket::setsockopt(
                    &stream,
                    nix::sys::socket::sockopt::Linger,
                    &nix::libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
            }
            drop(stream);
            assert!(
                record.wait_for(&format!("closed {name} after"), WAIT),
                "close() was not called for {name}: {:?}\n{}",
                record.lines(),
                server.stderr()
            );
            assert_hello(&server, &name);
        }
        assert_eq!(server.worker_pids(), [worker], "threads {threads}");
    }
}

/// The bytes the endless stream `name` produced so far, from its progress records.
fn produced(record: &Record, name: &str) -> u64 {
    record
        .lines()
        .iter()
        .filter_map(|line| {
            let rest = line
                .strip_prefix(&format!("progress {name} "))
                .or_else(|| line.strip_prefix(&format!("closed {name} after ")))?;
            rest.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_client_that_stops_reading_pauses_the_stream() {
    /// Far above what the sockets' buffers and the worker's can hold, far below what an
    /// iteration that is not paused produces in the time given.
    const PRODUCED_BOUND: u64 = 64 << 20;
    for threads in ["1", "4"] {
        let record = Record::new("stalled");
        let server = record
            .attach(python_server())
            .args(["--workers", "1", "--threads", threads, "edge_app"])
            .start();
        let worker = only_worker(&server);
        let name = format!("stalled-t{threads}");
        let stream = start_stream(&server, &name, 64 * 1024);
        // The client reads no more; give an unpaused iteration time to show itself.
        std::thread::sleep(Duration::from_millis(1500));
        let stalled = produced(&record, &name);
        let peak = peak_rss_kib(worker).unwrap();
        stream.shutdown(Shutdown::Both).unwrap();
        drop(stream);
        assert!(
            stalled < PRODUCED_BOUND,
            "threads {threads}: {stalled} bytes produced for a client that stopped reading"
        );
        assert!(
            peak < WORKER_RSS_BOUND_KIB,
            "threads {threads}: the worker's peak RSS is {peak} KiB"
        );
        assert!(
            record.wait_for(&format!("closed {name} after"), WAIT),
            "{:?}",
            record.lines()
        );
        assert_hello(&server, &name);
        assert_eq!(server.worker_pids(), [worker]);
    }
}

/// How long the answer to an upload may take after its last byte was sent.
const UPLOAD_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Sends a POST /count of `size` bytes (byte i is i % 256) framed by Content-Length, and
/// returns the answer.
fn upload_pattern(server: &Server, size: u64) -> Response {
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            format!(
                "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let block: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
    let mut sent = 0;
    while sent < size {
        let n = (size - sent).min(block.len() as u64) as usize;
        stream
            .write_all(&block[..n])
            .unwrap_or_else(|e| panic!("after {sent} bytes: {e}\n{}", server.stderr()));
        sent += n as u64;
    }
    // With 1 thread the body is first received into a file and the application reads it
    // all after the last byte arrived: the answer may take a while (a debug build on a busy
    // machine), so the wait for it is bounded by UPLOAD_ANSWER_TIMEOUT, not IO_TIMEOUT.
    stream
        .set_read_timeout(Some(UPLOAD_ANSWER_TIMEOUT))
        .unwrap();
    read_response(&mut BufReader::new(stream), false)
        .unwrap_or_else(|e| panic!("the answer to the upload: {e}\n{}", server.stderr()))
}

fn one_gib_upload_streams_through_wsgi_input(threads: &str) {
    const SIZE: u64 = 1 << 30;
    let server = edge(threads, &[]);
    let worker = only_worker(&server);
    let r = upload_pattern(&server, SIZE);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.stderr());
    let counts = r.json();
    assert_eq!(counts["bytes"], SIZE, "{counts}");
    assert_eq!(counts["mismatch_at"], serde_json::Value::Null, "{counts}");
    let peak = peak_rss_kib(worker).unwrap();
    assert!(
        peak < WORKER_RSS_BOUND_KIB,
        "threads {threads}: the worker's peak RSS is {peak} KiB after a 1 GiB upload"
    );
    assert_hello(&server, "after the upload");
    assert_eq!(server.worker_pids(), [worker]);
}

#[test]
fn a_1_gib_upload_streams_through_wsgi_input_with_1_thread() {
    one_gib_upload_streams_through_wsgi_input("1");
}

#[test]
fn a_1_gib_upload_streams_through_wsgi_input_with_4_threads() {
    one_gib_upload_streams_through_wsgi_input("4");
}

#[test]
fn a_thousand_idle_keep_alive_connections_do_not_stop_other_requests() {
    const IDLE: usize = 1000;
    let server = edge(
        "1",
        &["--worker-connections", "1100", "--keep-alive", "120"],
    );
    let worker = only_worker(&server);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut stream = connect(server.addr)
            .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", server.stderr()));
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        hello_on(&mut reader, &format!("connection {i}"));
        idle.push((stream, reader));
    }

    let load = Load::start(server.addr, "/hello", 2);
    let served = load.wait_for_more(100, WAIT);
    let report = load.stop();
    assert!(served, "requests go on beside {IDLE} idle connections");
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    for (i, (stream, reader)) in idle.iter_mut().enumerate() {
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        hello_on(reader, &format!("idle connection {i}, again"));
    }
    drop(idle);
    assert_hello(&server, "after the idle connections closed");
    assert_eq!(server.worker_pids(), [worker]);
}

#[test]
fn a_hung_application_call_meets_the_worker_timeout() {
    let server = edge("1", &["--timeout", "2"]);
    let worker = only_worker(&server);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /sleep?seconds=300 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(
        server.wait_for_log("WORKER TIMEOUT", WAIT),
        "{}",
        server.stderr()
    );
    // The hung request is not answered 200 (the worker was killed under it).
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    assert!(
        !String::from_utf8_lossy(&received).contains("slept"),
        "{received:?}"
    );
    assert!(
        wait_until(WAIT, || {
            let now = server.worker_pids();
            now.len() == 1 && now[0] != worker
        }),
        "a new worker replaces the one killed\n{}",
        server.stderr()
    );
    assert_hello(&server, "the new worker");
}

#[test]
fn max_requests_recycles_a_python_worker_without_a_failed_request() {
    let server = edge("1", &["--max-requests", "5"]);
    let first = only_worker(&server);
    let load = Load::start(server.addr, "/hello", 2);
    let served = load.wait_for_more(30, WAIT);
    let report = load.stop();
    assert!(served, "{}", server.stderr());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        wait_until(WAIT, || {
            let now = server.worker_pids();
            now.len() == 1 && now[0] != first
        }),
        "the worker was recycled"
    );
}
