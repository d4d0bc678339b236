//! Black-box: the worker's HTTP/1.1 behaviour through the real binary: pipelining,
//! keep-alive and header timeouts, slow clients, `100-continue`, HEAD, bodies, errors on one
//! connection while others go on, the thread pool and the access log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ferrocorn_tests::{connect, read_response, wait_until, Response, Server};

fn echo_json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("echo json: {e}: {}", r.text()))
}

/// Reads until the peer closes; true for a clean end of file with no bytes.
fn closed_without_more(reader: &mut impl Read) -> bool {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(["echo"]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
              POST /three HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
              HEAD /four HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /five HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut targets = Vec::new();
    for (i, head) in [false, false, false, true, false].into_iter().enumerate() {
        let r = read_response(&mut reader, head).unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("server"), Some("ferrocorn"));
        assert!(r.header("date").is_some());
        if head {
            assert!(
                r.header("content-length").is_some(),
                "HEAD keeps the length"
            );
            targets.push("/four".to_string());
        } else {
            let v = echo_json(&r);
            targets.push(v["target"].as_str().unwrap().to_string());
            if i == 1 {
                assert_eq!(v["body"], "hello");
            }
            if i == 2 {
                assert_eq!(v["body"], "abc");
            }
        }
    }
    assert_eq!(targets, ["/one", "/two", "/three", "/four", "/five"]);
    assert!(
        closed_without_more(&mut reader),
        "closed after Connection: close"
    );
}

#[test]
fn idle_keep_alive_connection_is_closed_after_keepalive() {
    let server = Server::start(["--keep-alive", "1", "hello"]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), None, "kept alive");
    // The read timeout (10 s) bounds the wait; the server closes long before.
    assert!(
        closed_without_more(&mut reader),
        "idle connection closed by the server"
    );
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let server = Server::start(["hello"]);
    let mut reader = BufReader::new({
        let mut s = connect(server.addr).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        s
    });
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_without_more(&mut reader));

    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut reader, false).unwrap().text(),
        "Hello, World!\n"
    );
}

#[test]
fn slow_client_does_not_block_others_and_times_out() {
    let server = Server::start(["--header-timeout", "1", "hello"]);
    // Half a request head, never finished.
    let mut slow = connect(server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    // A client that sends a request and never reads.
    let mut sink = connect(server.addr).unwrap();
    for _ in 0..64 {
        sink.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for _ in 0..5 {
        assert_eq!(server.get("/").unwrap().status, 200);
    }
    // The unfinished head gets 408 and a close once header_timeout passes.
    let mut reader = BufReader::new(slow);
    let r = read_response(&mut reader, false).expect("an answer to the slow head");
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_without_more(&mut reader));
    drop(sink);
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let server = Server::start(["echo"]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let interim = read_response(&mut reader, false).unwrap();
    assert_eq!(interim.status, 100);
    stream.write_all(b"12345").unwrap();
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(echo_json(&r)["body"], "12345");
}

#[test]
fn body_over_limit_is_413_before_continue() {
    let server = Server::start(["--limit-request-body", "10", "echo"]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn malformed_request_on_one_connection_leaves_others_served() {
    let server = Server::start(["echo"]);
    let mut good = connect(server.addr).unwrap();
    good.write_all(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut good_reader = BufReader::new(good.try_clone().unwrap());
    assert_eq!(read_response(&mut good_reader, false).unwrap().status, 200);

    let mut bad = connect(server.addr).unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut bad_reader = BufReader::new(bad);
    let r = read_response(&mut bad_reader, false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        closed_without_more(&mut bad_reader),
        "nothing after the error"
    );

    good.write_all(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut good_reader, false).unwrap();
    assert_eq!(echo_json(&r)["target"], "/2");
}

#[test]
fn echo_reports_headers_in_order_and_large_bodies_intact() {
    let server = Server::start(["echo"]);
    // Larger than the in-memory threshold: the body goes through a temporary file.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = format!(
        "PUT /status/201?q=1 HTTP/1.1\r\nHost: t\r\nX-B: 2\r\nX-A: @\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    // A raw latin-1 byte (obs-text) in a header value.
    let pos = raw.iter().position(|&b| b == b'@').unwrap();
    raw[pos] = 0xe9;
    raw.extend_from_slice(&body);
    let r = server.request(&raw).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = echo_json(&r);
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["target"], "/status/201?q=1");
    assert_eq!(v["version"], "HTTP/1.1");
    let headers: Vec<(String, String)> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(headers[1], ("X-B".into(), "2".into()));
    assert_eq!(headers[2], ("X-A".into(), "\u{e9}".into()));
    let echoed: Vec<u8> = v["body"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    assert!(echoed == body, "body round-trips ({} bytes)", echoed.len());
}

#[test]
fn thread_pool_serves_while_a_slow_call_runs() {
    let server = Server::start(["--threads", "4", "echo"]);
    let addr = server.addr;
    let slow =
        std::thread::spawn(move || ferrocorn_tests::get(addr, "/delay/1500").map(|r| r.status));
    // While the slow call sleeps on a pool thread, the loop keeps answering.
    for i in 0..5 {
        let r = server.get(&format!("/fast/{i}")).unwrap();
        assert_eq!(echo_json(&r)["target"], format!("/fast/{i}"));
    }
    assert_eq!(slow.join().unwrap().unwrap(), 200);
    // Pipelined requests through the pool keep their order.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"GET /delay/50/a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(
        echo_json(&read_response(&mut reader, false).unwrap())["target"],
        "/delay/50/a"
    );
    assert_eq!(
        echo_json(&read_response(&mut reader, false).unwrap())["target"],
        "/b"
    );
}

#[test]
fn access_log_lines_use_the_format() {
    let server = Server::start([
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(m)s %(U)s %(q)s %(s)s %(b)s %({x-tag}i)s %({content-type}o)s",
        "hello",
    ]);
    let r = server
        .request(b"GET /path?x=1 HTTP/1.1\r\nHost: t\r\nX-Tag: tagged\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        wait_until(Duration::from_secs(10), || server
            .stdout()
            .contains("GET /path x=1 200 14 tagged text/plain")),
        "access log line:\n{}",
        server.stdout()
    );
}

#[test]
fn max_requests_recycles_the_worker_without_failing_requests() {
    let server = Server::start(["--max-requests", "3", "hello"]);
    let first = server.worker_pids();
    for _ in 0..10 {
        assert_eq!(server.get("/").unwrap().status, 200);
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = server.worker_pids();
            now.len() == 1 && now != first
        }),
        "the worker was replaced"
    );
}

#[test]
fn worker_connections_caps_open_connections() {
    let server = Server::start(["--worker-connections", "2", "hello"]);
    // Two connections in the middle of a request: at work, so not reclaimed for newcomers
    // (idle ones would be, see http_hardening.rs).
    let busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(server.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            assert_eq!(read_response(&mut r, false).unwrap().status, 200);
            s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    // A third connection is accepted by the kernel but not served while two are open.
    let mut third = connect(server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(third);
    let mut first_line = String::new();
    assert!(
        reader.read_line(&mut first_line).is_err(),
        "not served while full"
    );
    drop(busy);
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let r = read_response(&mut reader, false).expect("served once a slot is free");
    assert_eq!(r.status, 200);
}

#[test]
fn unix_socket_listener_is_served() {
    let tmp = ferrocorn_tests::TempDir::new("worker-unix");
    let path = tmp.join("ferrocorn.sock");
    let server = Server::start([
        "--bind".to_string(),
        format!("unix:{}", path.display()),
        "echo".to_string(),
    ]);
    assert!(wait_until(Duration::from_secs(10), || path.exists()));
    let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /over-unix HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut BufReader::new(stream), false).unwrap();
    assert_eq!(echo_json(&r)["target"], "/over-unix");
    // The TCP listener of the same server still works.
    assert_eq!(server.get("/tcp").unwrap().status, 200);
}

#[test]
fn large_bodies_stream_to_the_pool_intact() {
    let server = Server::start(["--threads", "2", "echo"]);
    // Content-Length framing, several times the stream buffer: the loop pauses and resumes.
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let mut raw = format!(
        "POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = server.request(&raw).unwrap();
    let v = echo_json(&r);
    let echoed: Vec<u8> = v["body"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    assert!(
        echoed == body,
        "content-length body intact ({} bytes)",
        echoed.len()
    );

    // Chunked, sent in pieces with pauses between them, on a kept-alive connection.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..20u8 {
        let piece = vec![b'a' + i; 10_000];
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        stream.write_all(&piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
        expected.extend_from_slice(&piece);
        if i % 5 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        echo_json(&r)["body"].as_str().unwrap().as_bytes(),
        &expected[..]
    );
    // The connection is still usable after a streamed body.
    stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        echo_json(&read_response(&mut reader, false).unwrap())["target"],
        "/next"
    );
}

#[test]
fn abandoned_streamed_bodies_do_not_tie_up_the_pool() {
    let server = Server::start(["--threads", "2", "echo"]);
    // More abandoned uploads than pool threads: each must release its thread.
    for _ in 0..4 {
        let mut stream = connect(server.addr).unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
            .unwrap();
        stream.write_all(&vec![b'x'; 200_000]).unwrap();
        drop(stream);
    }
    for _ in 0..3 {
        assert_eq!(server.get("/alive").unwrap().status, 200);
    }
    // A malformed chunk in the middle of a streamed body is answered with 400.
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    stream
        .write_all(format!("{:x}\r\n", 100_000).as_bytes())
        .unwrap();
    stream.write_all(&vec![b'y'; 100_000]).unwrap();
    stream.write_all(b"\r\nzz\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let r = read_response(&mut reader, false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn proxy_protocol_header_sets_the_client_address() {
    let server = Server::start([
        "--proxy-protocol",
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(h)s %(U)s",
        "hello",
    ]);
    let r = server
        .request(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nGET /proxied HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 200);
    // Without a header the connection's own address is used (the header is optional).
    assert_eq!(server.get("/direct").unwrap().status, 200);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = server.stdout();
            log.contains("192.0.2.7 /proxied") && log.contains("127.0.0.1 /direct")
        }),
        "access log:\n{}",
        server.stdout()
    );
    let r = server
        .request(
            b"PROXY TCP4 not-an-address 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn proxy_header_from_a_peer_not_allowed_is_403() {
    let server = Server::start([
        "--proxy-protocol",
        "--proxy-allow-from",
        "192.0.2.1",
        "hello",
    ]);
    for header in [
        &b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n"[..],
        b"PROXY TCP4 not-an-address\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x15\xb3\x00\x50",
    ] {
        let mut request = header.to_vec();
        request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = server.request(&request).unwrap();
        assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(header));
        assert_eq!(r.header("connection"), Some("close"));
    }
    // The same peer without a header is served: only the header is refused.
    assert_eq!(server.get("/").unwrap().status, 200);
}

/// Whether an idle worker goes back to sleep instead of polling on is measured by
/// `cargo xtask bench` (its CPU time; tests do not judge CPU time).
#[test]
fn busy_poll_serves_the_same() {
    for busy_poll in ["0", "50", "10000"] {
        let server = Server::start(["--workers", "1", "--busy-poll", busy_poll, "hello"]);
        assert!(server.wait_for_workers(1, Duration::from_secs(10)));
        // Three keep-alive connections taking turns, then all at once, so that turns serve
        // one connection and several.
        let mut readers: Vec<BufReader<TcpStream>> = (0..3)
            .map(|_| BufReader::new(connect(server.addr).unwrap()))
            .collect();
        for round in 0..100 {
            for reader in &mut readers {
                reader
                    .get_mut()
                    .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    .unwrap();
                if round % 2 == 0 {
                    let r = read_response(reader, false).unwrap();
                    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!\n"));
                }
            }
            if round % 2 == 1 {
                for reader in &mut readers {
                    let r = read_response(reader, false).unwrap();
                    assert_eq!(r.status, 200, "busy_poll {busy_poll}");
                }
            }
        }
    }
}
