//! Black-box: the parser crate used alone, as issue 2 shows it: `cargo run -p
//! ferrocorn-http-parser --example parse [--limit-… N] < request.bin`. Nothing else ran it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use ferrocorn_tests::cargo_build;

/// Builds the example once with the cargo that runs the tests; its path.
fn example() -> &'static PathBuf {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        cargo_build(
            &["-p", "ferrocorn-http-parser", "--example", "parse"],
            "examples/parse",
        )
    })
}

fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(example())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The example may exit before reading (a usage error): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_request_is_printed_as_json_and_errors_as_status_lines() {
    let out = run(
        &[],
        b"POST /a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3;e=1\r\nab\xe9\r\n0\r\nT: 1\r\n\r\n",
    );
    assert!(out.status.success());
    let text = stdout(&out);
    let (first, json) = text.split_once('\n').unwrap();
    assert_eq!(first, "ok");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/a?b");
    assert_eq!(v["body"], "ab\u{e9}");
    assert_eq!(v["trailers"], serde_json::json!([["T", "1"]]));

    let truncated = run(&[], b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(
        stdout(&truncated).lines().next(),
        Some("error 400 Bad Request")
    );
    let long = run(
        &["--limit-request-line", "10"],
        b"GET /aaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(stdout(&long).lines().next(), Some("error 414 URI Too Long"));
}

/// Bug: `parse --help` said "--help needs a value" and exited 2, and an unknown option
/// was reported as "needs a value" instead of being named as unknown.
#[test]
fn bug_help_prints_usage_and_unknown_options_are_named() {
    let help = run(&["--help"], b"");
    assert!(help.status.success(), "{help:?}");
    assert!(stdout(&help).starts_with("usage: parse"), "{help:?}");
    let bogus = run(&["--bogus"], b"");
    assert_eq!(bogus.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bogus.stderr);
    assert!(stderr.contains("unknown option \"--bogus\""), "{stderr}");
}
