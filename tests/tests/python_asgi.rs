//! Black-box: ASGI 3.0 applications (`tests/python/asgi_app.py`, a raw application with one
//! path per point of the protocol, and `fastapi_app.py` from the test virtualenv): the
//! interface chosen without `-k`, the scope, request bodies as they arrive, streamed
//! responses, trailers, pathsend, exceptions before and after the head, keep-alive and
//! pipelining, disconnects seen by the application, the lifespan in every worker, a
//! blocked event loop meeting the worker timeout.

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use ferrocorn_tests::python::{python_server, test_venv, Record};
use ferrocorn_tests::{connect, read_response, Response, Server, ServerBuilder};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// `ferrocorn --workers 1 ARGS... APP` with a record attached.
fn asgi(record: &Record, args: &[&str], app: &str) -> Server {
    record
        .attach(python_server())
        .args(["--workers", "1"])
        .args(args)
        .args([app])
        .start()
}

fn send(server: &Server, raw: &[u8]) -> Response {
    server
        .request(raw)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()))
}

fn get(server: &Server, path: &str) -> Response {
    send(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Everything the server sends on a new connection until it closes it.
fn raw_exchange(server: &Server, raw: &[u8]) -> Vec<u8> {
    let mut stream = connect(server.addr).unwrap();
    stream.write_all(raw).unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    all
}

#[test]
fn an_async_application_is_detected_and_its_scope_is_complete() {
    let record = Record::new("asgi-scope");
    let server = asgi(&record, &["--root-path", "/mnt"], "asgi_app:app");
    assert!(
        server.wait_for_log("as an ASGI 3.0 application", WAIT),
        "{}",
        server.stderr()
    );
    let r = send(
        &server,
        b"GET /mnt/scope/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: test\r\nX-First: 1\r\n\
          X-MIXED-Case: Value\r\nx-first: 2\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.stderr());
    let scope = r.json();
    assert_eq!(scope["type"], "http");
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert!(scope["asgi"]["spec_version"].is_string());
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "GET");
    assert_eq!(scope["scheme"], "http");
    assert_eq!(scope["root_path"], "/mnt");
    // The path percent-decoded as UTF-8, root_path included; raw_path as received.
    assert_eq!(scope["path"], "/mnt/scope/café x");
    assert_eq!(scope["raw_path"], "/mnt/scope/caf%C3%A9%20x");
    assert_eq!(scope["query_string"], "a=1&b=%20");
    let headers: Vec<(String, String)> = scope["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    let expected = [
        ("host", "test"),
        ("x-first", "1"),
        ("x-mixed-case", "Value"),
        ("x-first", "2"),
        ("connection", "close"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(headers, expected, "lower-cased, in received order");
    assert_eq!(scope["client"][0], "127.0.0.1");
    assert!(scope["client"][1].as_u64().unwrap() > 0);
    assert_eq!(scope["server"][0], "127.0.0.1");
    assert_eq!(scope["server"][1], server.addr.port());
    // The lifespan's state, copied into the request's scope.
    let worker = server.worker_pids()[0];
    assert_eq!(scope["state"]["started_by"], worker);
    assert_eq!(
        scope["extensions"],
        serde_json::json!(["http.response.pathsend", "http.response.trailers"])
    );
    // HTTP/1.0.
    let r = send(&server, b"GET /mnt/scope HTTP/1.0\r\n\r\n");
    assert_eq!(r.json()["http_version"], "1.0");
    // A proxy that took the prefix off: it is put back.
    let r = send(&server, b"GET /scope/x HTTP/1.0\r\n\r\n");
    assert_eq!(r.json()["path"], "/mnt/scope/x");
    assert_eq!(r.json()["raw_path"], "/scope/x");
}

#[test]
fn bodies_arrive_whole_or_in_pieces_of_any_size() {
    let record = Record::new("asgi-bodies");
    let server = asgi(&record, &[], "asgi_app:app");
    let r = send(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(
        r.header("x-messages"),
        Some("1"),
        "a small body in one message"
    );
    // 3 MiB with Content-Length, and chunked: more_body messages as it arrives.
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    for chunked in [false, true] {
        let mut stream = connect(server.addr).unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", body.len())
        };
        let head =
            format!("POST /echo HTTP/1.1\r\nHost: t\r\n{framing}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            let body = body.clone();
            std::thread::spawn(move || {
                for piece in body.chunks(100_000) {
                    if chunked {
                        stream
                            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                            .unwrap();
                        stream.write_all(piece).unwrap();
                        stream.write_all(b"\r\n").unwrap();
                    } else {
                        stream.write_all(piece).unwrap();
                    }
                }
                if chunked {
                    stream.write_all(b"0\r\n\r\n").unwrap();
                }
            })
        };
        let r = read_response(&mut BufReader::new(stream), false).unwrap();
        writer.join().unwrap();
        assert_eq!(r.status, 200, "chunked {chunked}: {}", server.stderr());
        assert!(
            r.body == body,
            "chunked {chunked}: the body came back changed"
        );
        let messages: u32 = r.header("x-messages").unwrap().parse().unwrap();
        assert!(messages > 1, "chunked {chunked}: {messages} message(s)");
    }
}

#[test]
fn responses_stream_with_trailers_and_files() {
    let record = Record::new("asgi-responses");
    let server = asgi(&record, &[], "asgi_app:app");
    let r = get(&server, "/stream?n=4");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "part 0\npart 1\npart 2\npart 3\n");
    // 8 MiB through `send`'s backpressure.
    let r = get(&server, "/big?mib=8");
    assert_eq!(r.body.len(), 8 * 1024 * 1024, "{}", server.stderr());
    // Trailers after the last chunk.
    let raw = raw_exchange(
        &server,
        b"GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.ends_with("5\r\nwith \r\n8\r\ntrailers\r\n0\r\nx-checksum: abc123\r\n\r\n"),
        "{text}"
    );
    // pathsend: the file itself.
    let r = get(&server, "/pathsend");
    let file = std::fs::read(ferrocorn_tests::python::fixtures_dir().join("asgi_app.py")).unwrap();
    assert_eq!(r.body, file);
    assert_eq!(
        r.header("content-length"),
        Some(file.len().to_string().as_str())
    );
    // A latin-1 header value and a status without a standard reason.
    let raw = raw_exchange(
        &server,
        b"GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.starts_with(b"HTTP/1.1 299 "));
    assert!(
        raw.windows(4).any(|w| w == b"caf\xe9"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // HEAD: the head only.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /stream?n=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_response(&mut reader, true).unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));
    let next = read_response(&mut reader, false).unwrap();
    assert_eq!(next.text(), "part 0\n");
}

#[test]
fn exceptions_before_the_head_are_500_and_after_it_close_the_connection() {
    let record = Record::new("asgi-errors");
    let server = asgi(&record, &[], "asgi_app:app");
    let r = get(&server, "/boom");
    assert_eq!(r.status, 500);
    assert!(
        server.wait_for_log("ValueError: boom before the response", WAIT),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("Traceback"));
    let r = get(&server, "/no-response");
    assert_eq!(r.status, 500);
    // After the head: the body breaks off, no last chunk.
    let raw = raw_exchange(
        &server,
        b"GET /boom-after HTTP/1.1\r\nHost: t\r\n\r\nGET /stream HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("partial"), "{text}");
    assert!(
        !text.contains("0\r\n\r\n"),
        "the body must not end cleanly: {text}"
    );
    assert!(
        !text.contains("part 0"),
        "nothing after the broken response: {text}"
    );
    assert!(server.wait_for_log("boom after the response started", WAIT));
    // The worker lives on.
    assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let record = Record::new("asgi-pipelining");
    let server = asgi(&record, &[], "asgi_app:app");
    let mut stream = connect(server.addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for turn in 0..3 {
        stream
            .write_all(
                format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n{turn}")
                    .as_bytes(),
            )
            .unwrap();
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.text(), turn.to_string());
    }
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst\
              GET /sleep?s=0.05 HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n\
              GET /stream?n=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let texts: Vec<String> = (0..4)
        .map(|_| read_response(&mut reader, false).unwrap().text())
        .collect();
    assert_eq!(texts, ["first", "slept", "second", "part 0\npart 1\n"]);
}

#[test]
fn the_application_hears_of_a_client_that_went_away() {
    let record = Record::new("asgi-disconnect");
    let server = asgi(
        &record,
        &["--asgi-disconnect-grace-period", "0.5"],
        "asgi_app:app",
    );
    // While the application waits in receive().
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /wait-disconnect HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(stream);
    assert!(
        record.wait_for("saw http.disconnect", WAIT),
        "{:?}\n{}",
        record.lines(),
        server.stderr()
    );
    // While a response streams and the application ignores it: cancelled after the grace.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut some = [0u8; 256];
    let n = stream.read(&mut some).unwrap();
    assert!(n > 0);
    drop(stream);
    assert!(
        record.wait_for("endless cancelled", WAIT),
        "{:?}\n{}",
        record.lines(),
        server.stderr()
    );
    assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
}

#[test]
fn the_lifespan_starts_and_stops_in_every_worker() {
    let record = Record::new("asgi-lifespan");
    let mut server = record
        .attach(python_server())
        .args(["--workers", "2", "-k", "asgi", "asgi_app:app"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    let workers = server.worker_pids();
    assert!(record.wait_for("startup", WAIT));
    let _ = get(&server, "/stream?n=1");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(WAIT).is_some(), "{}", server.stderr());
    let lines = record.lines();
    for pid in workers {
        assert!(lines.contains(&format!("startup {pid}")), "{lines:?}");
        assert!(lines.contains(&format!("shutdown {pid}")), "{lines:?}");
    }
}

#[test]
fn a_failed_lifespan_startup_stops_the_start_with_its_message() {
    let (status, stderr) = python_server()
        .args(["--workers", "1", "asgi_app:failing_startup"])
        .dont_wait_for_listening()
        .run_to_exit(WAIT);
    assert!(status.is_some_and(|s| !s.success()), "{status:?}\n{stderr}");
    assert!(stderr.contains("the database is unreachable"), "{stderr}");
}

#[test]
fn lifespan_modes_and_other_application_shapes() {
    let record = Record::new("asgi-modes");
    // auto: an application that raises on lifespan serves without it.
    let server = asgi(&record, &[], "asgi_app:no_lifespan");
    assert_eq!(get(&server, "/").text(), "fine without lifespan");
    assert!(server.stderr().contains("lifespan"), "{}", server.stderr());
    drop(server);
    // on: the same application cannot start.
    let (status, stderr) = python_server()
        .args([
            "--workers",
            "1",
            "--asgi-lifespan",
            "on",
            "asgi_app:no_lifespan",
        ])
        .dont_wait_for_listening()
        .run_to_exit(WAIT);
    assert!(status.is_some_and(|s| !s.success()), "{stderr}");
    assert!(stderr.contains("unsupported scope lifespan"), "{stderr}");
    // off: no startup runs.
    let server = asgi(&record, &["--asgi-lifespan", "off"], "asgi_app:app");
    assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
    assert!(!record.lines().iter().any(|l| l.starts_with("startup")));
    drop(server);
    // An object whose __call__ is a coroutine function; asyncio's loop asked for.
    let server = asgi(&record, &["--asgi-loop", "asyncio"], "asgi_app:instance");
    assert_eq!(get(&server, "/").text(), "object");
    assert!(server
        .stderr()
        .contains("ASGI event loop running (asyncio)"));
}

#[test]
fn a_blocked_event_loop_meets_the_worker_timeout() {
    let record = Record::new("asgi-timeout");
    let server = asgi(&record, &["--timeout", "2"], "asgi_app:app");
    assert!(server.wait_for_workers(1, WAIT));
    let first = server.worker_pids()[0];
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /block?s=60 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(
        server.wait_for_log("WORKER TIMEOUT", WAIT),
        "{}",
        server.stderr()
    );
    assert!(ferrocorn_tests::wait_until(WAIT, || {
        server.worker_pids().iter().any(|&p| p != first)
    }));
    assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
}

fn venv_server(record: &Record, args: &[&str], app: &str) -> Option<Server> {
    let venv = test_venv()?;
    let builder: ServerBuilder = venv.activate(record.attach(python_server()));
    Some(
        builder
            .args(["--workers", "1"])
            .args(args)
            .args([app])
            .start(),
    )
}

#[test]
fn fastapi_parameters_validation_streaming_and_lifespan_state() {
    let record = Record::new("asgi-fastapi");
    let Some(server) = venv_server(&record, &[], "fastapi_app:app") else {
        return;
    };
    assert!(
        server.stderr().contains("ASGI event loop running (uvloop)"),
        "{}",
        server.stderr()
    );
    let r = get(&server, "/items/42?q=find%20me");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.json(), serde_json::json!({"item_id": 42, "q": "find me"}));
    let r = get(&server, "/items/not-a-number");
    assert_eq!(r.status, 422);
    let post = |body: &str| {
        send(
            &server,
            format!(
                "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let r = post(r#"{"name": "pen", "price": 1.25, "tags": ["a", "b"]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "pen", "double": 2.5, "tags": ["a", "b"]})
    );
    let r = post(r#"{"name": "pen"}"#);
    assert_eq!(r.status, 422);
    let detail: Value = r.json();
    assert_eq!(
        detail["detail"][0]["loc"],
        serde_json::json!(["body", "price"])
    );
    let r = get(&server, "/stream");
    assert_eq!(r.text(), "line 0\nline 1\nline 2\nline 3\nline 4\n");
    let r = get(&server, "/state");
    let pid = server.worker_pids()[0];
    assert_eq!(r.json()["db"], format!("connection of {pid}"));
    let r = get(&server, "/sync");
    assert_eq!(r.json()["ran"], "in a thread");
}

#[test]
fn hup_and_max_requests_renew_asgi_workers_without_a_failed_request() {
    let record = Record::new("asgi-hup");
    let server = record
        .attach(python_server())
        .args(["--workers", "2", "asgi_app:instance"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    server.assert_hup_renews_workers_under_load(2, WAIT, || {});
    drop(server);
    // max_requests: the worker stops gracefully after its requests and is replaced.
    let server = asgi(&record, &["--max-requests", "3"], "asgi_app:app");
    assert!(server.wait_for_workers(1, WAIT));
    let first = server.worker_pids()[0];
    for _ in 0..3 {
        assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
    }
    assert!(
        record.wait_for(&format!("shutdown {first}"), WAIT),
        "the lifespan shutdown ran: {:?}\n{}",
        record.lines(),
        server.stderr()
    );
    assert!(ferrocorn_tests::wait_until(WAIT, || {
        server.worker_pids().iter().any(|&p| p != first)
    }));
    assert_eq!(get(&server, "/stream?n=1").text(), "part 0\n");
}
