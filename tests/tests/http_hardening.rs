//! Black-box regression tests for the protocol gaps of issue 12: each sends raw bytes to the
//! real binary and names the bug it pins down.

use std::io::{BufReader, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocorn_tests::{connect, read_response, Server};

/// Bug: `GET /\xff HTTP/1.1` was served; RFC 9112 §3.2 and RFC 3986 §2 require bytes outside
/// ASCII to be percent-encoded, so a raw one is 400 (and the connection closes).
#[test]
fn bug_raw_bytes_outside_ascii_in_the_target_are_400() {
    let server = Server::start(["echo"]);
    for target in [&b"/\xff"[..], b"/caf\xc3\xa9", b"/a?q=\xe2\x82\xac"] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = server.request(&raw).unwrap();
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(target));
        assert_eq!(r.header("connection"), Some("close"));
    }
    // Percent-encoded, the same path is served.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /caf%C3%A9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut BufReader::new(stream), false).unwrap();
    assert_eq!(r.status, 200);
}

/// Bug: a `205 Reset Content` went out with the application's body (RFC 9110 §15.3.6: a
/// server MUST NOT generate content in a 205). It now says `Content-Length: 0`, sends
/// nothing, and the connection goes on with the next request.
#[test]
fn bug_205_carries_no_content() {
    let server = Server::start(["echo"]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"GET /status/205 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let reset = read_response(&mut reader, false).unwrap();
    assert_eq!(reset.status, 205);
    assert_eq!(reset.header("content-length"), Some("0"));
    assert!(reset.body.is_empty());
    let next = read_response(&mut reader, false).unwrap();
    assert_eq!(next.status, 200);
    assert!(next.text().contains("\"/next\""), "{}", next.text());
}

/// Bug: `CONNECT example.com:443` reached the application, whose `200` with a
/// `Content-Length` and a body a proxy in front may take for an open tunnel, and the
/// connection went on parsing HTTP. The core answers 501 and closes unless the application
/// declares that it handles CONNECT; nothing sent after it is answered.
#[test]
fn bug_connect_is_answered_by_the_core() {
    for threads in ["1", "2"] {
        let server = Server::start(["--threads", threads, "echo"]);
        let mut stream = connect(server.addr).unwrap();
        stream
            .write_all(
                b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\
                  GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
            )
            .unwrap();
        let mut reader = BufReader::new(stream);
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.status, 501, "threads {threads}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(
            read_response(&mut reader, false).is_err(),
            "threads {threads}: the request after CONNECT was answered"
        );
    }
}

/// Bug: `static:DIR` redirected `GET //evil.com` (a directory `evil.com` exists) to
/// `Location: //evil.com/`, which a browser follows to another host: an open redirect.
#[test]
fn bug_static_redirects_stay_on_this_host() {
    let dir = ferrocorn_tests::TempDir::new("http-open-redirect");
    std::fs::create_dir_all(dir.join("evil.com")).unwrap();
    let app = format!("static:{}", dir.path().display());
    let server = Server::start([app.as_str()]);
    for target in ["//evil.com", "///evil.com", "http://t//evil.com"] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = server.request(raw.as_bytes()).unwrap();
        assert_eq!(r.status, 301, "{target}");
        assert_eq!(r.header("location"), Some("/evil.com/"), "{target}");
    }
}

/// Bug: `--proxy-protocol` was a switch, so gunicorn's `--proxy-protocol v1 hello` was
/// refused as two applications. Each mode accepts only its own header version (the other
/// one is not a request: 400); `auto`, the flag alone, accepts both.
#[test]
fn bug_proxy_protocol_modes_are_gunicorns() {
    const V1: &[u8] = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n";
    const V2: &[u8] =
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x15\xb3\x00\x50";
    let status = |server: &Server, header: &[u8]| {
        let mut raw = header.to_vec();
        raw.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        server.request(&raw).unwrap().status
    };
    for (args, v1, v2) in [
        (&["--proxy-protocol", "v1", "hello"][..], 200, 400),
        (&["--proxy-protocol", "v2", "hello"], 400, 200),
        (&["--proxy-protocol", "hello"], 200, 200),
        (&["--proxy-protocol=auto", "hello"], 200, 200),
    ] {
        let server = Server::start(args);
        assert_eq!(status(&server, V1), v1, "{args:?}, v1 header");
        assert_eq!(status(&server, V2), v2, "{args:?}, v2 header");
        assert_eq!(status(&server, b""), 200, "{args:?}, no header");
    }
}

/// Bug: an access log that cannot be written (a full disk, a closed pipe) logged one error per
/// failed batch: 35,000 lines in 5 s. It is said once, then at most once per 10 s with a
/// count.
#[test]
fn bug_access_log_write_failures_are_reported_once_per_interval() {
    let server = Server::start(["--access-logfile", "/dev/full", "hello"]);
    for i in 0..40 {
        let r = server.get(&format!("/{i}")).unwrap();
        assert_eq!(r.status, 200);
    }
    assert!(
        server.wait_for_log("access log write failed", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // The 40 requests came one at a time, each its own batch: a line each before.
    assert!(
        !server.wait_for_log_count("access log write failed", 3, Duration::from_secs(1)),
        "{}",
        server.stderr()
    );
}

/// Bug: with the worker out of file descriptors, `accept failed: Too many open files` was
/// logged on every retry (4 times a second) for as long as it lasted. It is said once, then
/// at most once per 10 s with a count.
#[test]
fn bug_accept_failures_are_reported_once_per_interval() {
    let server = Server::builder()
        .args(["hello"])
        .open_files_limit(32)
        .start();
    assert_eq!(server.get("/").unwrap().status, 200);
    // Hold connections until the worker runs out of descriptors.
    let mut held = Vec::new();
    for _ in 0..40 {
        match connect(server.addr) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    assert!(
        server.wait_for_log("accept failed", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // Retried every 250 ms: at least four failures a second while the connections stay.
    assert!(
        !server.wait_for_log_count("accept failed", 2, Duration::from_secs(2)),
        "{}",
        server.stderr()
    );
    drop(held);
}

/// Bug: at `worker_connections`, connections that had sent nothing (and idle kept-alive
/// ones) held every slot, so a new client waited for the header timeout of an idle one, and
/// an attacker could renew them forever. The connections idle longest now make room at once:
/// here the new client is served although the header timeout is a minute.
#[test]
fn bug_idle_connections_make_room_at_worker_connections() {
    let server = Server::start([
        "--worker-connections",
        "2",
        "--header-timeout",
        "60",
        "--keep-alive",
        "60",
        "hello",
    ]);
    // One connection that never sends, then one kept alive after a request.
    let silent = connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut kept = BufReader::new(connect(server.addr).unwrap());
    kept.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut kept, false).unwrap().status, 200);
    // Each newcomer is served at once and stays, closing the connection idle longest: first
    // the silent one, then the kept-alive one (idle since before the first newcomer's answer).
    let mut newcomers = Vec::new();
    for expected_closed in [&silent, kept.get_ref()] {
        let mut client = BufReader::new(connect(server.addr).unwrap());
        client
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut client, false).expect("served at once");
        assert_eq!(r.status, 200);
        newcomers.push(client);
        let mut byte = [0u8; 1];
        let n = std::io::Read::read(&mut (&*expected_closed), &mut byte);
        assert!(
            matches!(&n, Ok(0)) || matches!(&n, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "the idle connection was closed: {n:?}"
        );
    }
}

/// At `worker_connections` with every connection at work, a newcomer waits; once one of them
/// goes idle (its request answered, kept alive), the newcomer is served in its place.
#[test]
fn a_connection_going_idle_at_worker_connections_makes_room() {
    let server = Server::start(["--worker-connections", "1", "--keep-alive", "60", "hello"]);
    let mut busy = BufReader::new(connect(server.addr).unwrap());
    busy.get_mut().write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut newcomer = BufReader::new(connect(server.addr).unwrap());
    newcomer
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    busy.get_mut().write_all(b"st: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut busy, false).unwrap().status, 200);
    assert_eq!(read_response(&mut newcomer, false).unwrap().status, 200);
}

/// Bug: a request body had no overall deadline: each read moved it `header_timeout` ahead, so
/// a client sending a few bytes a second held its connection forever. Below `body_min_rate`
/// on average (after a grace of `header_timeout`) it is answered 408 and closed, on the loop
/// (`threads` 1) and while streamed to the pool (`threads` 2).
#[test]
fn bug_a_trickling_body_is_answered_408() {
    for threads in ["1", "2"] {
        let server = Server::start([
            "--threads",
            threads,
            "--header-timeout",
            "1",
            "--body-min-rate",
            "100",
            "echo",
        ]);
        let mut stream = connect(server.addr).unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            .unwrap();
        // 10 bytes every 200 ms (50 bytes/s), until the answer or for 12 s: the answer must
        // come while it still trickles (the deadline is due after about 2 s).
        let mut writer = stream.try_clone().unwrap();
        let answered = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&answered);
        let trickle = std::thread::spawn(move || {
            for _ in 0..60 {
                if stop.load(Ordering::SeqCst) || writer.write_all(b"0123456789").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let r = read_response(&mut BufReader::new(stream), false);
        answered.store(true, Ordering::SeqCst);
        let r = r.expect("answered while the body still trickled");
        assert_eq!(r.status, 408, "threads {threads}");
        assert_eq!(r.header("connection"), Some("close"));
        let _ = trickle.join();
    }
}
