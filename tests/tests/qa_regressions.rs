//! Black-box regression tests for defects found by using the real binary as a new user
//! would (curl, Python clients, raw sockets); each test names the bug it pins down.

use ferrocorn_tests::Server;

/// Bug: a request with `Content-Length: 0` and nothing after it (what Python's
/// `http.client` sends for `POST` with an empty body) was never answered: the worker waited
/// for body bytes that would never come.
#[test]
fn bug_empty_content_length_body_is_answered() {
    for threads in ["1", "4"] {
        let server = Server::start(["--threads", threads, "echo"]);
        for method in ["POST", "PUT", "GET"] {
            let raw = format!("{method} /empty HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
            let r = server
                .request(raw.as_bytes())
                .unwrap_or_else(|e| panic!("{method} with threads={threads}: {e}"));
            assert_eq!(r.status, 200, "{method} with threads={threads}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["method"], method);
            assert_eq!(v["body"], "");
        }
    }
}
