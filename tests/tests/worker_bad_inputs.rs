//! Black-box: the bad-input corpus (`../shared/corpus/bad_inputs.json`) sent over TCP. Each
//! case gets exactly one response with a status from `expect_any` and `Connection: close`,
//! then the connection is closed: nothing smuggled after the bad request is served.

use std::io::{BufReader, Read, Write};

use ferrocorn_tests::corpus::{bad_inputs, check_closing_answer};
use ferrocorn_tests::{connect, python_unescape, read_response, Server};

#[test]
fn python_unescape_handles_the_corpus_escapes() {
    assert_eq!(
        python_unescape(r"a\r\n\x00\xff\\\t\101"),
        b"a\r\n\x00\xff\\\tA"
    );
}

#[test]
fn bad_input_corpus_each_gets_one_closing_answer() {
    let Some(corpus) = bad_inputs() else {
        return;
    };
    let server = Server::builder()
        .args(&corpus.limit_args)
        .args(["echo"])
        .start();
    let mut failures = Vec::new();
    for case in &corpus.cases {
        let name = &case.name;
        let expect = &case.expect_any;
        let mut stream = connect(server.addr).expect("connect");
        // The server may answer and close before reading everything: a failed write of the
        // rest is fine, the answer is what counts.
        let _ = stream.write_all(&case.raw);
        let mut reader = BufReader::new(stream);
        let response = match read_response(&mut reader, false) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: no response: {e}"));
                continue;
            }
        };
        if !expect.contains(&u64::from(response.status)) {
            failures.push(format!(
                "{name}: status {} not in {expect:?} ({})",
                response.status,
                response.text().trim()
            ));
        }
        check_closing_answer(name, "", &response, &mut reader, &mut failures);
    }
    // The worker kept serving through all of it.
    assert_eq!(server.get("/after").expect("still serving").status, 200);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn garbage_without_a_newline_is_answered_400_at_once() {
    // Regression: a TLS ClientHello (or binary noise) sent to the plain-HTTP port has no LF,
    // so it waited for the header timeout and got 408. The header timeout here is longer than
    // the test's read timeout: a late answer fails the read instead of passing.
    let server = Server::start(["--header-timeout", "60", "hello"]);
    for (name, raw) in [
        (
            "tls client hello",
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a"[..],
        ),
        ("nul in the method", b"G\0T / HTTP/1.1"),
    ] {
        let mut stream = connect(server.addr).expect("connect");
        // The connection stays open for writing: the answer must not wait for more bytes.
        stream.write_all(raw).expect("send");
        let mut reader = BufReader::new(stream);
        let response = read_response(&mut reader, false)
            .unwrap_or_else(|e| panic!("{name}: no answer before the read timeout: {e}"));
        assert_eq!(response.status, 400, "{name}: {}", response.text());
        assert!(
            response
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close")),
            "{name}: no Connection: close"
        );
        let mut rest = Vec::new();
        match reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "{name}: bytes after the answer"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{name}"),
        }
    }
    assert_eq!(server.get("/after").expect("still serving").status, 200);
}
