//! The shared bad-input corpus (`bad_inputs.json`): its cases, the limit flags it was
//! written for, and the check that an answer to a bad request closes the connection.

use std::io::Read;

use crate::{corpus_dir, python_unescape, Response};

/// One case: raw request bytes and the statuses any of which is a right answer.
#[derive(Debug)]
pub struct BadInput {
    pub name: String,
    pub raw: Vec<u8>,
    pub expect_any: Vec<u64>,
}

/// The corpus, read from [`corpus_dir`].
#[derive(Debug)]
pub struct BadInputs {
    pub cases: Vec<BadInput>,
    /// `--limit-request-*` flags and their values, as the corpus's `settings` give them.
    pub limit_args: Vec<String>,
}

/// Reads the bad-input corpus; `None` where [`corpus_dir`] finds none (the caller returns).
pub fn bad_inputs() -> Option<BadInputs> {
    let dir = corpus_dir()?;
    let text = std::fs::read_to_string(dir.join("bad_inputs.json")).expect("read corpus");
    let corpus: serde_json::Value = serde_json::from_str(&text).expect("corpus is json");
    let limit_args = [
        "limit_request_line",
        "limit_request_fields",
        "limit_request_field_size",
        "limit_request_body",
    ]
    .iter()
    .flat_map(|name| {
        let value = corpus["settings"][name]
            .as_u64()
            .expect("a numeric setting");
        [format!("--{}", name.replace('_', "-")), value.to_string()]
    })
    .collect();
    let cases: Vec<BadInput> = corpus["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| BadInput {
            name: case["name"].as_str().unwrap_or("?").to_owned(),
            raw: python_unescape(case["raw"].as_str().expect("raw")),
            expect_any: case["expect_any"]
                .as_array()
                .expect("expect_any")
                .iter()
                .filter_map(|v| v.as_u64())
                .collect(),
        })
        .collect();
    assert!(!cases.is_empty(), "the bad-input corpus has no cases");
    Some(BadInputs { cases, limit_args })
}

/// Checks that `response` (read from `reader`) says `Connection: close` and that the
/// connection then closes with nothing after it; pushes each miss onto `failures`, named
/// `name` and followed by `via` (say `" over TLS"`).
pub fn check_closing_answer(
    name: &str,
    via: &str,
    response: &Response,
    reader: &mut impl Read,
    failures: &mut Vec<String>,
) {
    if !response
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    {
        failures.push(format!("{name}: no Connection: close{via}"));
    }
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => {}
        Ok(_) => failures.push(format!(
            "{name}: bytes after the answer: {:?}",
            String::from_utf8_lossy(&rest)
        )),
        // A reset after our unread input is also a close; so is a TLS peer's close without
        // close_notify (a plain TCP read never reports that).
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => failures.push(format!("{name}: connection not closed: {e}")),
    }
}
