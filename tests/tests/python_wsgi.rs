//! Black-box: PEP 3333 through the real binary. `pep3333_app` runs every exchange through
//! `wsgiref.validate.validator`, so a 200 from it means the server's side was valid; the
//! tests then compare what the application saw. `edge_app` checks what the server does
//! when the application gets it wrong: a 500 before the head is sent, a cut-short response
//! after, and never an injected header or a lying length on the wire.

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use ferrocorn_tests::python::{fixtures_dir, python_server, Record};
use ferrocorn_tests::{connect, read_response, Response, Server, TempDir};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// `ferrocorn --bind 127.0.0.1:0 ARGS... APP` with the fixtures as working directory.
fn serve(app: &str, args: &[&str]) -> Server {
    python_server().args(args).args([app]).start()
}

/// Sends `raw` on a new connection and reads until the server closes it. Fails (rather
/// than waiting forever) when the server keeps the connection open past the read timeout.
fn exchange_until_closed(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).unwrap();
    stream.write_all(raw).unwrap();
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .unwrap_or_else(|e| panic!("the server did not close the connection ({e}): {received:?}"));
    received
}

/// `POST path` with `body` framed by Content-Length, or chunked in pieces of 1000 bytes.
fn post(path: &str, body: &[u8], chunked: bool) -> Vec<u8> {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if chunked {
        raw.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut raw = raw.into_bytes();
        for piece in body.chunks(1000) {
            raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    } else {
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        raw
    }
}

fn ok(response: std::io::Result<Response>, what: &str, server: &Server) -> Response {
    let response = response.unwrap_or_else(|e| panic!("{what}: {e}\n{}", server.stderr()));
    assert_eq!(
        response.status,
        200,
        "{what}: {}\n{}",
        response.text(),
        server.stderr()
    );
    response
}

#[test]
fn environ_holds_every_cgi_key_as_a_native_string() {
    let server = serve("pep3333_app", &["--workers", "1", "--threads", "1"]);
    let mut stream = connect(server.addr).unwrap();
    let client_port = stream.local_addr().unwrap().port();
    stream
        .write_all(
            b"POST /environ/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\n\
              Host: example.test:8080\r\n\
              X-Multi: one\r\n\
              X-Multi: two\r\n\
              X_Under: dropped\r\n\
              Content-Type: text/plain\r\n\
              Content-Length: 4\r\n\
              Connection: close\r\n\r\nbody",
        )
        .unwrap();
    let r = ok(
        read_response(&mut BufReader::new(stream), false),
        "environ",
        &server,
    );
    let report = r.json();
    let s = &report["str"];
    for (key, expected) in [
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", ""),
        // Percent-decoded, then each byte one latin-1 character (PEP 3333 "bytes as str").
        ("PATH_INFO", "/environ/caf\u{c3}\u{a9} x"),
        ("QUERY_STRING", "a=1&b=%20"),
        ("RAW_URI", "/environ/caf%C3%A9%20x?a=1&b=%20"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "4"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", client_port.to_string().as_str()),
        ("HTTP_HOST", "example.test:8080"),
        ("HTTP_X_MULTI", "one,two"),
        ("HTTP_CONNECTION", "close"),
        ("wsgi.url_scheme", "http"),
    ] {
        assert_eq!(s[key], expected, "{key} in {report:#}");
    }
    assert!(
        s["SERVER_NAME"]
            .as_str()
            .is_some_and(|name| !name.is_empty()),
        "SERVER_NAME in {report:#}"
    );
    assert!(
        s["SERVER_PORT"]
            .as_str()
            .is_some_and(|port| port.parse::<u16>().is_ok()),
        "SERVER_PORT in {report:#}"
    );
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert!(
        !keys.iter().any(|key| key.contains("UNDER")),
        "a field name with `_` is dropped under the default header policy: {keys:?}"
    );
    assert!(
        !keys.contains(&&"HTTP_CONTENT_TYPE".to_string())
            && !keys.contains(&&"HTTP_CONTENT_LENGTH".to_string()),
        "{keys:?}"
    );
    // Only extension keys (with a dot) may hold anything but str (the validator checks it
    // too), and every key is a str.
    let others = report["other"].as_object().unwrap();
    assert!(
        others.keys().all(|key| key.contains('.')),
        "non-str values: {others:?}"
    );
    assert!(others.contains_key("wsgi.input") && others.contains_key("wsgi.errors"));
    assert_eq!(report["non_str_keys"], serde_json::json!([]));
    assert_eq!(report["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(report["wsgi.multithread"], false, "threads = 1");
    assert_eq!(report["wsgi.multiprocess"], false, "workers = 1");
    assert_eq!(report["wsgi.run_once"], false);
    assert_eq!(report["wsgi.input_terminated"], true);
    assert_eq!(report["wsgi.file_wrapper"], true);
}

#[test]
fn wsgi_multithread_and_multiprocess_follow_threads_and_workers() {
    let server = serve("pep3333_app", &["--workers", "2", "--threads", "4"]);
    let report = ok(server.get("/environ"), "environ", &server).json();
    assert_eq!(report["wsgi.multithread"], true, "threads = 4");
    assert_eq!(report["wsgi.multiprocess"], true, "workers = 2");
}

#[test]
fn url_scheme_is_https_only_from_a_trusted_forwarder() {
    let forwarded = b"GET /environ HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n\
                      Connection: close\r\n\r\n";
    // 127.0.0.1 is trusted by default.
    let server = serve("pep3333_app", &[]);
    let report = ok(server.request(forwarded), "trusted", &server).json();
    assert_eq!(report["str"]["wsgi.url_scheme"], "https");
    drop(server);

    let server = serve("pep3333_app", &["--forwarded-allow-ips", "192.0.2.1"]);
    let report = ok(server.request(forwarded), "untrusted", &server).json();
    assert_eq!(report["str"]["wsgi.url_scheme"], "http");
}

#[test]
fn root_path_becomes_script_name_and_leaves_path_info() {
    let server = serve("pep3333_app", &["--root-path", "/prefix"]);
    let report = ok(
        server.get("/prefix/environ?x=1"),
        "under the prefix",
        &server,
    )
    .json();
    assert_eq!(report["str"]["SCRIPT_NAME"], "/prefix", "{report:#}");
    assert_eq!(report["str"]["PATH_INFO"], "/environ", "{report:#}");
    assert_eq!(report["str"]["QUERY_STRING"], "x=1");
    assert_eq!(report["str"]["RAW_URI"], "/prefix/environ?x=1");
    let report = ok(server.get("/prefix"), "the prefix itself", &server).json();
    assert_eq!(report["str"]["SCRIPT_NAME"], "/prefix", "{report:#}");
    assert_eq!(report["str"]["PATH_INFO"], "", "{report:#}");
    drop(server);

    // Without the flag, the SCRIPT_NAME variable gives the prefix, as in gunicorn.
    let server = python_server()
        .env("SCRIPT_NAME", "/mounted")
        .args(["pep3333_app"])
        .start();
    let report = ok(server.get("/mounted/environ"), "SCRIPT_NAME", &server).json();
    assert_eq!(report["str"]["SCRIPT_NAME"], "/mounted", "{report:#}");
    assert_eq!(report["str"]["PATH_INFO"], "/environ", "{report:#}");
}

/// Bodies for the `wsgi.input` test: empty, a few lines (the last without a newline), and
/// 200 KiB of lines of every length up to 300 (beyond the 64 KiB the worker buffers, so
/// the streamed paths are taken: a temporary file with 1 thread, a pipe with more).
fn input_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let mut large = Vec::new();
    let mut i = 0;
    while large.len() < 200 * 1024 {
        large.extend_from_slice(format!("line {i} {}\n", "y".repeat(i % 300)).as_bytes());
        i += 1;
    }
    large.extend_from_slice(b"the end, no newline");
    vec![
        ("empty", Vec::new()),
        ("small", b"first line\nsecond\n\nthird, no newline".to_vec()),
        ("large", large),
    ]
}

#[test]
fn wsgi_input_reads_the_same_bytes_every_way_with_any_framing() {
    let modes = [
        "read-sized",
        "read-all",
        "readline",
        "readline-limit",
        "readlines",
        "readlines-hint",
        "iter",
        "mixed",
    ];
    for threads in ["1", "4"] {
        let server = serve("pep3333_app", &["--workers", "1", "--threads", threads]);
        for (name, body) in input_bodies() {
            let lines = body.split_inclusive(|&b| b == b'\n').count();
            for chunked in [false, true] {
                for mode in modes {
                    let what = format!("threads {threads}, {name} body, chunked {chunked}, {mode}");
                    let r = ok(
                        server.request(&post(&format!("/input/{mode}"), &body, chunked)),
                        &what,
                        &server,
                    );
                    assert!(r.body == body, "{what}: the body read differs");
                    let report: Value =
                        serde_json::from_str(r.header("x-input-report").unwrap()).unwrap();
                    assert_eq!(
                        report["after_end"], "",
                        "{what}: reads at the end give b\"\""
                    );
                    match mode {
                        "read-sized" => {
                            assert!(report["longest"].as_u64().is_some_and(|n| n <= 7), "{what}")
                        }
                        "readline-limit" => {
                            assert!(report["longest"].as_u64().is_some_and(|n| n <= 5), "{what}");
                            assert_eq!(report["split_badly"], 0, "{what}: {report}");
                        }
                        "readline" | "readlines" | "readlines-hint" | "iter" => {
                            assert_eq!(report["pieces"], lines, "{what}: one piece a line");
                            assert_eq!(report["split_badly"], 0, "{what}: {report}");
                        }
                        "mixed" if name == "small" => assert_eq!(
                            report["first"],
                            serde_json::json!(["fir", "st line\n", "second\n\nthird, no newline"]),
                            "{what}"
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn write_callable_sends_before_the_returned_body() {
    let server = serve("pep3333_app", &[]);
    let r = ok(server.get("/write"), "write", &server);
    assert_eq!(r.text(), "written, then returned");
}

#[test]
fn exc_info_before_anything_was_sent_replaces_status_and_headers() {
    let server = serve("pep3333_app", &[]);
    let r = server.get("/exc-info").unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (503, "replaced by exc_info"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        r.header("x-first-try"),
        None,
        "the first call's headers are replaced too: {:?}",
        r.headers
    );
}

#[test]
fn exc_info_after_the_head_was_sent_raises_and_cuts_the_response_short() {
    let record = Record::new("exc-info-late");
    let server = record
        .attach(python_server())
        .args(["--workers", "1", "pep3333_app"])
        .start();
    let worker = server.worker_pids();
    let received = exchange_until_closed(
        server.addr,
        b"GET /exc-info-late HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("sent before the error"), "{text}");
    assert!(!text.contains("never sent"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a response cut short must not look complete: {text}"
    );
    assert!(
        record.wait_for("exc_info raised", WAIT),
        "start_response did not raise: {:?}",
        record.lines()
    );
    assert!(
        record
            .lines()
            .contains(&"exc_info raised ValueError".to_string()),
        "it re-raises the application's exception: {:?}",
        record.lines()
    );
    ok(server.get("/environ"), "served on", &server);
    assert_eq!(server.worker_pids(), worker);
}

#[test]
fn start_response_may_be_called_inside_the_iterator() {
    let server = serve("pep3333_app", &[]);
    let r = ok(server.get("/late-start"), "late start", &server);
    assert_eq!(r.header("x-late"), Some("yes"));
    assert_eq!(r.text(), "started late");
}

#[test]
fn file_wrapper_under_another_iterator_still_sends_the_file() {
    let server = serve("pep3333_app", &[]);
    let r = ok(server.get("/file-wrapper"), "file wrapper", &server);
    let source = std::fs::read(fixtures_dir().join("pep3333_app.py")).unwrap();
    assert!(r.body == source, "the body is the file");
}

#[test]
fn close_is_called_after_every_response() {
    let record = Record::new("close");
    let server = record.attach(python_server()).args(["pep3333_app"]).start();
    let r = ok(server.get("/close?name=first"), "close", &server);
    assert_eq!(r.text(), "closing first");
    // Three on one kept-alive connection.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"GET /close?name=ka1 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /close?name=ka2 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /close?name=ka3 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    for name in ["ka1", "ka2", "ka3"] {
        let r = ok(read_response(&mut reader, false), name, &server);
        assert_eq!(r.text(), format!("closing {name}"));
    }
    for name in ["first", "ka1", "ka2", "ka3"] {
        assert!(
            record.wait_for(&format!("closed {name}"), WAIT),
            "close() of {name}: {:?}",
            record.lines()
        );
    }
    assert!(
        !server
            .stderr()
            .contains("garbage collected without being closed"),
        "{}",
        server.stderr()
    );
}

#[test]
fn wsgi_errors_writes_to_the_error_log() {
    let server = serve("pep3333_app", &[]);
    ok(server.get("/errors"), "errors", &server);
    assert!(
        server.wait_for_log("pep3333_app: a line on wsgi.errors", WAIT)
            && server.wait_for_log("pep3333_app: writelines on wsgi.errors", WAIT),
        "{}",
        server.stderr()
    );
}

#[test]
fn an_exception_before_the_head_is_a_500_with_the_traceback_logged() {
    let server = serve("edge_app", &[]);
    let r = server.get("/exception").unwrap();
    assert_eq!(r.status, 500, "{}", server.stderr());
    assert!(
        server.wait_for_log("RuntimeError: edge_app: raised on purpose", WAIT),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("Traceback"), "{}", server.stderr());
    assert!(
        !r.text().contains("raised on purpose"),
        "the traceback goes to the log, not to the client: {}",
        r.text()
    );
    ok(server.get("/hello"), "served on", &server);
}

#[test]
fn an_exception_after_the_head_cuts_the_response_short() {
    let server = serve("edge_app", &[]);
    let received = exchange_until_closed(
        server.addr,
        b"GET /exception-after-head HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("partial body"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "cut short: {text}");
    assert!(
        server.wait_for_log("edge_app: raised after the head", WAIT),
        "{}",
        server.stderr()
    );
    ok(server.get("/hello"), "served on", &server);
}

#[test]
fn a_bad_response_from_the_application_is_a_500() {
    let server = serve("edge_app", &[]);
    for path in ["/non-bytes", "/bad-status", "/header-injection"] {
        let received = exchange_until_closed(
            server.addr,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.starts_with("HTTP/1.1 500 "),
            "{path}: {text}\n{}",
            server.stderr()
        );
        assert!(
            !text.to_ascii_lowercase().contains("\r\ninjected:"),
            "{path}: a CR LF in a value never makes a header: {text}"
        );
    }
    ok(server.get("/hello"), "served on", &server);
}

#[test]
fn a_declared_content_length_is_enforced() {
    let server = serve("edge_app", &[]);

    // Too few bytes: the connection closes, so the client sees a truncated response.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /content-length/short HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let error = read_response(&mut reader, false).expect_err("10 bytes declared, 5 sent");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "the connection is closed, not left hanging: {error}"
    );

    // Too many: the extra bytes are cut off and never read as the next response.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"GET /content-length/long HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let r = ok(read_response(&mut reader, false), "long", &server);
    assert_eq!(r.text(), "12345");
    match read_response(&mut reader, false) {
        Ok(next) => assert_eq!(
            (next.status, next.text().as_str()),
            (200, "Hello from Python")
        ),
        Err(error) => assert_eq!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof,
            "either the next answer or a closed connection, never the extra bytes: {error}"
        ),
    }
}

/// 3 MiB of bytes that differ from their neighbours, so that any offset error shows.
fn blob() -> Vec<u8> {
    let mut state: u32 = 12345;
    (0..3 * 1024 * 1024)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) as u8
        })
        .collect()
}

#[test]
fn file_wrapper_sends_the_file_from_its_current_position_and_closes_it() {
    let dir = TempDir::new("file-wrapper");
    let path = dir.join("blob.bin");
    let content = blob();
    std::fs::write(&path, &content).unwrap();
    let record = Record::new("file-wrapper");
    for threads in ["1", "4"] {
        let server = record
            .attach(python_server())
            .args(["--threads", threads, "edge_app"])
            .start();
        // skip: the application read that many bytes before wrapping the file (a buffered
        // file's descriptor is then further on than its position).
        for (skip, length) in [(0, false), (0, true), (100, true), (5000, false)] {
            let name = format!("t{threads}-s{skip}-l{length}");
            let query = format!(
                "/file?path={}&name={name}&skip={skip}&length={}",
                path.display(),
                u8::from(length)
            );
            let r = ok(server.get(&query), &name, &server);
            assert_eq!(r.body.len(), content.len() - skip, "{name}");
            assert!(r.body == content[skip..], "{name}: the bytes differ");
            assert!(
                record.wait_for(&format!("file closed {name}"), WAIT),
                "{name}: close() of the file: {:?}",
                record.lines()
            );
        }
    }
}
