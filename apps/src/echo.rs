//! `echo`: answers the request it received as JSON, for tests and debugging; `/delay/<ms>`
//! sleeps first and `/status/<code>` picks the status. A WebSocket handshake is accepted and
//! every message is sent back as it came (the Autobahn-style tests and the benchmark use it).

use std::io::Read;
use std::time::Duration;

use ferrocorn_worker::ws::{self, Message, Outbox};
use ferrocorn_worker::{App, Body, Request, Response};

/// Answers `application/json`:
/// `{"method", "target", "version", "headers": [[name, value], ...], "body"}`, headers in
/// received order; header values and the body are strings whose code points are the bytes
/// (latin-1), so any byte sequence round-trips.
///
/// Path segments `delay/<ms>` (sleep that long first, at most 10 minutes) and
/// `status/<code>` (answer that status, 200..=999) may appear anywhere in the path.
///
/// A WebSocket handshake is accepted (with the client's first subprotocol, if it offers
/// any) and every message is sent back as it came, unless the path has a `status/<code>`
/// segment: then the handshake is refused with that status, as above.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

/// The longest `/delay/<ms>` honoured.
const MAX_DELAY_MS: u64 = 600_000;

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Sends every WebSocket message back, text as text and binary as binary.
#[derive(Debug)]
struct EchoSocket;

impl ws::Handler for EchoSocket {
    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>) {
        match message {
            Message::Text(text) => out.send_text(text),
            Message::Binary(bytes) => out.send_binary(bytes),
        };
    }
}

impl App for Echo {
    fn call(&self, request: &mut Request, response: &mut Response) {
        let mut status = 200;
        let mut delay = None;
        let mut segments = request.path().split('/');
        while let Some(seg) = segments.next() {
            match seg {
                "delay" => delay = segments.next().and_then(|v| v.parse::<u64>().ok()),
                "status" => match segments.next().and_then(|v| v.parse::<u16>().ok()) {
                    Some(code) if (200..=999).contains(&code) => status = code,
                    _ => {
                        response.plain(400, "status must be a number in 200..=999\n");
                        return;
                    }
                },
                _ => {}
            }
        }
        if let Some(ms) = delay {
            std::thread::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS)));
        }
        if request.is_websocket() && status == 200 {
            // The client's first subprotocol, if it offers any: an echo speaks them all.
            let protocol = request.websocket_protocols().into_iter().next();
            response.accept_websocket(request, protocol.as_deref(), Box::new(EchoSocket));
            return;
        }
        let known = request.body().len().unwrap_or(0).min(1 << 20);
        let mut body = Vec::with_capacity(usize::try_from(known).unwrap_or(0));
        if let Err(e) = request.body().read_to_end(&mut body) {
            response.plain(500, format!("cannot read the request body: {e}\n"));
            return;
        }
        // Written by hand to keep the documented key order (serde_json's map sorts keys).
        let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let mut out = String::with_capacity(128 + body.len() * 2);
        out.push_str("{\"method\":");
        out.push_str(&string(request.method()));
        out.push_str(",\"target\":");
        out.push_str(&string(request.target()));
        out.push_str(",\"version\":");
        out.push_str(&string(request.version().as_str()));
        out.push_str(",\"headers\":[");
        for (i, (name, value)) in request.headers().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            out.push_str(&string(name));
            out.push(',');
            out.push_str(&string(&latin1(value)));
            out.push(']');
        }
        out.push_str("],\"body\":");
        out.push_str(&string(&latin1(&body)));
        out.push_str("}\n");
        response.status = status;
        response.header("Content-Type", "application/json");
        response.body = Body::Bytes(out.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(req: &mut Request) -> (u16, serde_json::Value) {
        let mut res = Response::new();
        Echo.call(req, &mut res);
        let Body::Bytes(b) = &res.body else {
            panic!("echo answers bytes")
        };
        (res.status, serde_json::from_slice(b).unwrap())
    }

    #[test]
    fn echoes_headers_in_order_and_body_as_latin1() {
        let mut req = Request::for_test(
            "POST",
            "/x?y",
            &[("Host", "a"), ("X-B", "2"), ("x-a", "1")],
            b"caf\xe9\x00",
        );
        let (status, v) = call(&mut req);
        assert_eq!(status, 200);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["target"], "/x?y");
        assert_eq!(v["version"], "HTTP/1.1");
        assert_eq!(
            v["headers"],
            serde_json::json!([["Host", "a"], ["X-B", "2"], ["x-a", "1"]])
        );
        assert_eq!(v["body"], "caf\u{e9}\u{0}");
        let mut res = Response::new();
        Echo.call(&mut Request::for_test("GET", "/", &[], b""), &mut res);
        let Body::Bytes(b) = &res.body else { panic!() };
        assert!(b.starts_with(b"{\"method\":\"GET\",\"target\":\"/\",\"version\":"));
    }

    #[test]
    fn status_segment_sets_status() {
        let (status, _) = call(&mut Request::for_test("GET", "/status/418", &[], b""));
        assert_eq!(status, 418);
        let mut res = Response::new();
        Echo.call(
            &mut Request::for_test("GET", "/status/abc", &[], b""),
            &mut res,
        );
        assert_eq!(res.status, 400);
    }

    #[test]
    fn delay_segment_still_echoes() {
        let (status, v) = call(&mut Request::for_test(
            "GET",
            "/delay/1/status/201",
            &[],
            b"",
        ));
        assert_eq!(status, 201);
        assert_eq!(v["target"], "/delay/1/status/201");
    }
}
