//! Black-box regression tests for the protocol gaps of issue 12: each sends raw bytes to the
//! real binary and names the bug it pins down.

use std::io::{BufReader, Write};

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
