//! Black-box: the bad-input corpus (`../shared/corpus/bad_inputs.json`) sent over TCP. Each
//! case gets exactly one response with a status from `expect_any` and `Connection: close`,
//! then the connection is closed: nothing smuggled after the bad request is served.

use std::io::{BufReader, Read, Write};

use ferrocorn_tests::{connect, corpus_dir, python_unescape, read_response, Server};

#[test]
fn python_unescape_handles_the_corpus_escapes() {
    assert_eq!(
        python_unescape(r"a\r\n\x00\xff\\\t\101"),
        b"a\r\n\x00\xff\\\tA"
    );
}

#[test]
fn bad_input_corpus_each_gets_one_closing_answer() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("bad_inputs.json")).expect("read corpus");
    let corpus: serde_json::Value = serde_json::from_str(&text).expect("corpus is json");
    let settings = &corpus["settings"];
    let arg = |name: &str| {
        settings[name]
            .as_u64()
            .expect("numeric setting")
            .to_string()
    };
    let server = Server::start([
        "--limit-request-line",
        &arg("limit_request_line"),
        "--limit-request-fields",
        &arg("limit_request_fields"),
        "--limit-request-field-size",
        &arg("limit_request_field_size"),
        "--limit-request-body",
        &arg("limit_request_body"),
        "echo",
    ]);
    let cases = corpus["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let raw = python_unescape(case["raw"].as_str().expect("raw"));
        let expect: Vec<u64> = case["expect_any"]
            .as_array()
            .expect("expect_any")
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        let mut stream = connect(server.addr).expect("connect");
        // The server may answer and close before reading everything: a failed write of the
        // rest is fine, the answer is what counts.
        let _ = stream.write_all(&raw);
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
        if !response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            failures.push(format!("{name}: no Connection: close"));
        }
        let mut rest = Vec::new();
        match reader.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => failures.push(format!(
                "{name}: bytes after the answer: {:?}",
                String::from_utf8_lossy(&rest)
            )),
            // A reset after our unread input is also a close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => failures.push(format!("{name}: connection not closed: {e}")),
        }
    }
    // The worker kept serving through all of it.
    assert_eq!(server.get("/after").expect("still serving").status, 200);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
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
