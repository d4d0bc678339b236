//! Black-box: `--access-logformat json` writes one JSON object a line that a strict JSON
//! parser reads, and a header full of quotes, backslashes and bytes that are not UTF-8
//! stays inside its own value.

use std::time::Duration;

use ferrocorn_tests::{wait_until, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// The access log lines written so far, each parsed (a line that is not JSON fails).
fn lines(server: &Server) -> Vec<Value> {
    server
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn every_line_is_json_and_hostile_headers_stay_in_their_values() {
    let server = Server::start([
        "echo",
        "--workers",
        "1",
        "--access-logfile",
        "-",
        "--access-logformat",
        "json",
    ]);
    let plain = server
        .request(
            b"GET /status/404?a=1&b=%22 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\n\
              User-Agent: curl/8\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    assert_eq!(plain.status, 404);
    // A quote, a backslash, a tab and bytes that are not UTF-8, shaped to close the value
    // and add fields if they were copied as they are.
    let hostile: &[u8] = b"x\",\"status\":999,\"pid\":1,\"y\":\"\\\t\xff\xfe\xc3";
    let mut raw = b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nUser-Agent: ".to_vec();
    raw.extend_from_slice(hostile);
    raw.extend_from_slice(b"\r\nX-Request-Id: ");
    raw.extend_from_slice(hostile);
    raw.extend_from_slice(b"\r\nConnection: close\r\n\r\nhi");
    assert_eq!(server.request(&raw).unwrap().status, 200);

    assert!(
        wait_until(WAIT, || server.stdout().lines().count() >= 2),
        "two access log lines: {:?}\n{}",
        server.stdout(),
        server.stderr()
    );
    // A parser keeps the last of two equal keys: the raw text must hold each key once.
    for raw in server.stdout().lines() {
        for key in ["\"status\":", "\"pid\":", "\"user_agent\":"] {
            assert_eq!(raw.matches(key).count(), 1, "{key} in {raw}");
        }
    }
    let lines = lines(&server);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let worker = server.worker_pids()[0];

    let first = &lines[0];
    assert_eq!(first["remote_addr"], "127.0.0.1");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/status/404");
    assert_eq!(first["query"], "a=1&b=%22");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["status"], 404);
    assert!(first["bytes"].as_u64().is_some(), "{first}");
    assert_eq!(first["referer"], "http://r/");
    assert_eq!(first["user_agent"], "curl/8");
    assert_eq!(first["user"], Value::Null);
    assert_eq!(first["request_id"], "req-42");
    assert_eq!(first["pid"], worker);
    let time = first["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{time}"
    );
    assert!(first["duration_s"].as_f64().unwrap() >= 0.0);

    // The hostile values, byte for byte: a non-UTF-8 byte reads as the character of the
    // same number (ISO-8859-1).
    let expected: String = hostile
        .utf8_chunks()
        .flat_map(|c| {
            c.valid()
                .chars()
                .chain(c.invalid().iter().map(|&b| b as char))
        })
        .collect();
    let second = &lines[1];
    assert_eq!(second["user_agent"], expected.as_str(), "{second}");
    assert_eq!(second["request_id"], expected.as_str(), "{second}");
    assert_eq!(
        second["status"], 200,
        "the forged status stayed in its value"
    );
    assert_eq!(second["pid"], worker, "the forged pid stayed in its value");
    assert_eq!(second["method"], "POST");
    let keys: Vec<&str> = second
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut wanted = vec![
        "time",
        "remote_addr",
        "method",
        "path",
        "query",
        "protocol",
        "status",
        "bytes",
        "duration_s",
        "referer",
        "user_agent",
        "user",
        "request_id",
        "pid",
    ];
    wanted.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, wanted, "no field was added");
}
