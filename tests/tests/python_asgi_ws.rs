//! Black-box: the ASGI 3.0 `websocket` scope (`tests/python/asgi_ws_app.py`, a raw
//! application with one path per point of the protocol, and the WebSocket endpoint of
//! `fastapi_app.py`): the scope, accept with a subprotocol and headers, rejection (403) and
//! denial responses, exceptions before and after accept, the application's close, sends
//! after a close or a disconnect, disconnect codes (1000, 1006, 1009, 1001 on TERM), send
//! backpressure, the `websockets` client library (text, binary, 1 MiB, subprotocol,
//! rejection, 100 connections) and the Autobahn-style suite.

use std::io::Write;
use std::time::Duration;

use ferrocorn_tests::python::{base_python, python_server, run_script, test_venv, Record};
use ferrocorn_tests::websocket::{
    assert_websockets_client_passes, handshake_request, judge_autobahn, WsClient, BINARY, CLOSE,
    TEXT,
};
use ferrocorn_tests::{connect, request, Server, ServerBuilder, Signal};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Cases whose result may be other than OK, and why. Autobahn grades NON-STRICT and
/// INFORMATIONAL as passed.
const NOT_STRICT: &[(&str, &str, &str)] = &[
    (
        "7.1.6",
        "INFORMATIONAL",
        "whether an echo is sent before a close that follows it is implementation-defined",
    ),
    (
        "7.13.1",
        "INFORMATIONAL",
        "close code 5000 is outside every range RFC 6455 defines: failed with 1002",
    ),
    ("7.13.2", "INFORMATIONAL", "close code 65535, likewise"),
    // A valid message, then a protocol error in the same read: the server fails the
    // connection (1002) before the application's echo of the message comes back from the
    // event loop thread, so the echo is not sent. Autobahn: "NON-STRICT" (the close came,
    // the echo before it is missing).
    ("3.2", "NON-STRICT", "echo overtaken by the failure"),
    ("3.3", "NON-STRICT", "echo overtaken by the failure"),
    ("3.4", "NON-STRICT", "echo overtaken by the failure"),
    ("4.1.3", "NON-STRICT", "echo overtaken by the failure"),
    ("4.1.4", "NON-STRICT", "echo overtaken by the failure"),
    ("4.1.5", "NON-STRICT", "echo overtaken by the failure"),
    ("4.2.3", "NON-STRICT", "echo overtaken by the failure"),
    ("4.2.4", "NON-STRICT", "echo overtaken by the failure"),
    ("4.2.5", "NON-STRICT", "echo overtaken by the failure"),
    ("5.15", "NON-STRICT", "echo overtaken by the failure"),
];

/// `ferrocorn --workers 1 ARGS... asgi_ws_app:app` with a record attached.
fn ws_app(record: &Record, args: &[&str]) -> Server {
    record
        .attach(python_server())
        .args(["--workers", "1"])
        .args(args)
        .args(["asgi_ws_app:app"])
        .start()
}

fn handshake(server: &Server, path: &str) -> ferrocorn_tests::Response {
    request(server.addr, &handshake_request(path, "")).unwrap()
}

#[test]
fn the_websocket_scope_is_complete_and_accept_sets_protocol_and_headers() {
    let record = Record::new("asgi-ws-scope");
    let server = ws_app(&record, &["--root-path", "/mnt"]);
    let mut ws = WsClient::connect_with(
        server.addr,
        "/mnt/scope/caf%C3%A9%20x?a=1&b=%20",
        "Sec-WebSocket-Protocol: first, second\r\nX-Mixed-Case: Value\r\n",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()));
    assert_eq!(ws.response.header("Sec-WebSocket-Protocol"), Some("second"));
    assert_eq!(ws.response.header("X-Accepted"), Some("yes"));
    assert_eq!(ws.response.header("Set-Cookie"), Some("a=1"));
    let (op, text) = ws.recv().unwrap();
    assert_eq!(op, TEXT);
    let scope: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(scope["type"], "websocket");
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert!(scope["asgi"]["spec_version"].is_string());
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["scheme"], "ws");
    assert_eq!(scope["root_path"], "/mnt");
    assert_eq!(scope["path"], "/mnt/scope/café x");
    assert_eq!(scope["raw_path"], "/mnt/scope/caf%C3%A9%20x");
    assert_eq!(scope["query_string"], "a=1&b=%20");
    assert_eq!(
        scope["subprotocols"],
        serde_json::json!(["first", "second"])
    );
    let headers = scope["headers"].as_array().unwrap();
    assert_eq!(headers[0], serde_json::json!(["host", "test"]));
    assert!(headers.contains(&serde_json::json!(["x-mixed-case", "Value"])));
    assert!(headers.contains(&serde_json::json!(["sec-websocket-version", "13"])));
    assert_eq!(scope["client"][0], "127.0.0.1");
    assert_eq!(scope["server"][1], server.addr.port());
    assert_eq!(scope["state"]["greeting"], "from lifespan");
    assert_eq!(
        scope["extensions"],
        serde_json::json!(["websocket.http.response"])
    );
    assert!(
        scope.get("method").is_none(),
        "no method in a websocket scope"
    );
    // Behind a TLS-terminating proxy the forwarder trusts: wss, as http's https.
    let mut wss =
        WsClient::connect_with(server.addr, "/mnt/scope", "X-Forwarded-Proto: https\r\n").unwrap();
    let scope: Value = serde_json::from_slice(&wss.recv().unwrap().1).unwrap();
    assert_eq!(scope["scheme"], "wss");
}

#[test]
fn rejections_denials_and_exceptions_answer_the_handshake_over_http() {
    let record = Record::new("asgi-ws-reject");
    let server = ws_app(&record, &[]);
    // websocket.close before accept: 403, no upgrade.
    let r = handshake(&server, "/status/403");
    assert_eq!(r.status, 403, "{}", server.stderr());
    assert_eq!(r.header("Upgrade"), None);
    // The Denial Response extension: the application's own response.
    let r = handshake(&server, "/deny");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Token"));
    assert_eq!(r.text(), "who are you?");
    // An exception (or a return) before accept: 500, the traceback logged.
    assert_eq!(handshake(&server, "/raise-before").status, 500);
    assert!(server.wait_for_log("raised before accept", WAIT));
    assert_eq!(handshake(&server, "/return-before").status, 500);
    // Not a valid handshake: refused before the application hears of it.
    let v8 = String::from_utf8(handshake_request("/", ""))
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let r = request(server.addr, v8.as_bytes()).unwrap();
    assert_eq!(r.status, 426);
    assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"));
    // After accept: an exception closes with 1011, a return with 1000.
    let mut ws = WsClient::connect(server.addr, "/raise-after").unwrap();
    assert_eq!(ws.recv().unwrap(), (TEXT, b"about to fail".to_vec()));
    assert_eq!(ws.recv_close().unwrap(), Some(1011));
    assert!(server.wait_for_log("raised after accept", WAIT));
    let mut ws = WsClient::connect(server.addr, "/return-after").unwrap();
    assert_eq!(ws.recv().unwrap(), (BINARY, b"bye".to_vec()));
    assert_eq!(ws.recv_close().unwrap(), Some(1000));
    // The application's close: its code and reason; a send after it raises RuntimeError;
    // the client's answer is its websocket.disconnect.
    let mut ws = WsClient::connect(server.addr, "/close/4001").unwrap();
    assert_eq!(ws.recv().unwrap(), (TEXT, b"closing".to_vec()));
    let (op, payload) = ws.recv().unwrap();
    assert_eq!(op, CLOSE);
    assert_eq!(&payload[..2], &4001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"bye");
    ws.send(true, CLOSE, &4001u16.to_be_bytes()).unwrap();
    assert!(ws.at_eof());
    assert!(record.wait_for("after close disconnect 4001", WAIT));
    assert!(record
        .lines()
        .iter()
        .any(|l| l.starts_with("send after close: RuntimeError")));
    // The worker lives on.
    let mut ws = WsClient::connect(server.addr, "/").unwrap();
    ws.send(true, TEXT, b"still here").unwrap();
    assert_eq!(ws.recv().unwrap(), (TEXT, b"still here".to_vec()));
}

#[test]
fn the_application_hears_every_kind_of_disconnect() {
    let record = Record::new("asgi-ws-disconnect");
    let server = ws_app(&record, &["--websocket-max-message-size", "1000"]);
    // The client's close frame.
    let mut ws = WsClient::connect(server.addr, "/disconnect").unwrap();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    ws.send(true, CLOSE, &payload).unwrap();
    assert_eq!(ws.recv_close().unwrap(), Some(1000));
    assert!(
        record.wait_for("disconnect 1000 'done'", WAIT),
        "{}",
        server.stderr()
    );
    // Gone without a close frame: 1006; a send after it raises an OSError.
    let ws = WsClient::connect(server.addr, "/disconnect").unwrap();
    drop(ws);
    assert!(record.wait_for("disconnect 1006 ''", WAIT));
    assert!(record.wait_for("send after disconnect: ClientDisconnected OSError", WAIT));
    // Gone before the application answered the handshake.
    let mut raw = connect(server.addr).unwrap();
    raw.write_all(&handshake_request("/slow-accept", ""))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(raw);
    assert!(record.wait_for("before accept websocket.disconnect 1006", WAIT));
    // A message over websocket_max_message_size: the worker fails it with 1009.
    let mut ws = WsClient::connect(server.addr, "/").unwrap();
    ws.send(true, BINARY, &[1; 1001]).unwrap();
    assert_eq!(ws.recv_close().unwrap(), Some(1009));
    assert!(record.wait_for("echo disconnect 1009", WAIT));
}

#[test]
fn a_graceful_stop_closes_with_1001_and_the_application_hears_it() {
    let record = Record::new("asgi-ws-term");
    let mut server = ws_app(&record, &[]);
    let mut ws = WsClient::connect(server.addr, "/disconnect").unwrap();
    let mut echo = WsClient::connect(server.addr, "/").unwrap();
    echo.send(true, TEXT, b"before").unwrap();
    assert_eq!(echo.recv().unwrap(), (TEXT, b"before".to_vec()));
    server.signal(Signal::SIGTERM);
    assert_eq!(ws.recv_close().unwrap(), Some(1001));
    assert_eq!(echo.recv_close().unwrap(), Some(1001));
    assert!(record.wait_for("disconnect 1001", WAIT));
    assert!(record.wait_for("echo disconnect 1001", WAIT));
    ws.send(true, CLOSE, &1001u16.to_be_bytes()).unwrap();
    echo.send(true, CLOSE, &1001u16.to_be_bytes()).unwrap();
    assert!(ws.at_eof() && echo.at_eof());
    assert!(server.wait_exit(WAIT).is_some(), "{}", server.stderr());
}

/// `send` waits while the client does not read: the application is held back instead of
/// queueing without bound, and every message arrives once the client reads.
#[test]
fn sends_wait_for_a_client_that_does_not_read() {
    let record = Record::new("asgi-ws-flood");
    let server = ws_app(&record, &[]);
    let mut ws = WsClient::connect(server.addr, "/flood").unwrap();
    assert!(record.wait_for("flood sent 16", WAIT));
    std::thread::sleep(Duration::from_millis(1500));
    let progress = record
        .lines()
        .iter()
        .filter(|l| l.starts_with("flood sent"))
        .count();
    assert!(
        progress < 32,
        "32 MiB were sent to a client that reads nothing: {progress} × 16 sends"
    );
    for i in 0..512 {
        let (op, payload) = ws.recv().unwrap();
        assert_eq!((op, payload.len()), (BINARY, 65536), "message {i}");
    }
    assert_eq!(ws.recv().unwrap(), (TEXT, b"done".to_vec()));
}

#[test]
fn the_websockets_library_and_the_autobahn_cases_pass_against_an_asgi_echo() {
    let record = Record::new("asgi-ws-conformance");
    let server = ws_app(&record, &[]);
    let stdout = run_script(&base_python(), "autobahn_cases.py", &server);
    let wrong = judge_autobahn(&stdout, NOT_STRICT);
    assert!(wrong.is_empty(), "cases not passed:\n{}", wrong.join("\n"));
    let Some(venv) = test_venv() else {
        return;
    };
    assert_websockets_client_passes(venv.dir().join("bin/python").as_os_str(), &server);
}

#[test]
fn a_fastapi_websocket_endpoint() {
    let record = Record::new("asgi-ws-fastapi");
    let Some(venv) = test_venv() else {
        return;
    };
    let builder: ServerBuilder = venv.activate(record.attach(python_server()));
    let server = builder.args(["--workers", "1", "fastapi_app:app"]).start();
    // No token: closed before accept, 403.
    assert_eq!(handshake(&server, "/ws/lobby").status, 403);
    let mut ws = WsClient::connect_with(
        server.addr,
        "/ws/lobby?token=secret",
        "Sec-WebSocket-Protocol: json\r\n",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()));
    assert_eq!(ws.response.header("Sec-WebSocket-Protocol"), Some("json"));
    ws.send(true, TEXT, "héllo".as_bytes()).unwrap();
    let (op, reply) = ws.recv().unwrap();
    assert_eq!(op, TEXT);
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["room"], "lobby");
    assert_eq!(reply["echo"], "héllo");
    let worker = server.worker_pids()[0];
    assert_eq!(reply["db"], format!("connection of {worker}"));
    ws.send(true, CLOSE, &1000u16.to_be_bytes()).unwrap();
    assert_eq!(ws.recv_close().unwrap(), Some(1000));
    assert!(record.wait_for("fastapi websocket disconnect 1000", WAIT));
}
