//! The ASGI host seen through the worker's deferred channel, without sockets: events in,
//! replies out, on a real event loop thread.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrocorn_worker::{App, Body, Event, ExchangeId, Inbox, Replies, Reply, Request, WsMessage};

use crate::{load, Interface, PythonOptions};

const WAIT: Duration = Duration::from_secs(20);

/// The directory the test applications are written to (on `sys.path`).
fn apps_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrocorn-asgi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn load_module(name: &str, source: &str, interface: Interface) -> Arc<dyn App> {
    std::fs::write(apps_dir().join(format!("{name}.py")), source).unwrap();
    let options = PythonOptions {
        pythonpath: vec![apps_dir().clone()],
        preload: true,
        threads: 1,
        workers: 1,
        interface,
        asgi_disconnect_grace: Duration::from_millis(100),
        graceful_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let app = load(&format!("{name}:app"), &options).unwrap();
    app.init_worker().unwrap();
    app
}

/// An application's open channel: deliver events, wait for replies.
struct Channel {
    inbox: Box<dyn Inbox>,
    replies: Replies,
    woken: mpsc::Receiver<()>,
}

impl Channel {
    fn open(app: &dyn App) -> Channel {
        let (tx, woken) = mpsc::channel();
        let replies = Replies::for_test(move || {
            let _ = tx.send(());
        });
        let inbox = app
            .deferred()
            .expect("an ASGI application is deferred")
            .open(replies.clone())
            .unwrap();
        Channel {
            inbox,
            replies,
            woken,
        }
    }

    fn deliver(&mut self, event: Event) {
        self.inbox.deliver(&mut vec![event]);
    }

    /// Replies until one is final for `seq` (a whole response, the end of a stream, abort).
    fn replies_until_final(&self) -> Vec<Reply> {
        let mut all = Vec::new();
        loop {
            self.woken.recv_timeout(WAIT).expect("a reply in time");
            let mut batch = Vec::new();
            self.replies.take(&mut batch);
            let done = batch.iter().any(|r| {
                matches!(
                    r,
                    Reply::Respond { more: false, .. }
                        | Reply::Piece { more: false, .. }
                        | Reply::Trailers { .. }
                        | Reply::Abort { .. }
                )
            });
            all.extend(batch);
            if done {
                return all;
            }
        }
    }
}

fn request(id: u64, method: &str, target: &str, body: &[u8], more_body: bool) -> Event {
    Event::Request {
        id: ExchangeId::for_test(id),
        request: Request::for_test(method, target, &[("Host", "h"), ("X-Tag", "t")], body),
        more_body,
    }
}

const ECHO: &str = r#"
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = b"%s %s %s %s|" % (scope["method"].encode(), scope["path"].encode(),
                              scope["query_string"], dict(scope["headers"])[b"x-tag"])
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text + body})
"#;

#[test]
fn a_request_and_its_body_pieces_come_back_as_one_response() {
    let app = load_module("asgi_unit_echo", ECHO, Interface::Auto);
    let mut channel = Channel::open(&*app);
    channel.deliver(request(1, "POST", "/a%20b?q=1", b"ab", true));
    channel.deliver(Event::Body {
        id: ExchangeId::for_test(1),
        data: b"cd".to_vec(),
        more: false,
        paused: false,
    });
    let replies = channel.replies_until_final();
    let [Reply::Respond {
        response,
        more: false,
        ..
    }] = &replies[..]
    else {
        panic!("{replies:?}");
    };
    assert_eq!(response.status, 201);
    assert_eq!(response.header_value("content-type"), Some("text/plain"));
    assert!(
        matches!(&response.body, Body::Bytes(b) if b == b"POST /a b q=1 t|abcd"),
        "{:?}",
        response.body
    );
}

const STREAM: &str = r#"
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/wait":
        message = await receive()          # the (empty) body
        message = await receive()          # blocks until the disconnect
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["type"].encode()})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"def", "more_body": False})
"#;

#[test]
fn a_streamed_response_and_a_disconnect() {
    let app = load_module("asgi_unit_stream", STREAM, Interface::Asgi);
    let mut channel = Channel::open(&*app);
    channel.deliver(request(7, "GET", "/", b"", false));
    let replies = channel.replies_until_final();
    let mut body = Vec::new();
    for reply in &replies {
        match reply {
            Reply::Respond {
                response,
                more: true,
                length,
                ..
            } => {
                assert_eq!(*length, Some(6));
                if let Body::Bytes(b) = &response.body {
                    body.extend_from_slice(b);
                }
            }
            Reply::Piece { data, .. } => body.extend_from_slice(data),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(body, b"abcdef");
    channel.deliver(request(8, "GET", "/wait", b"", false));
    channel.deliver(Event::Disconnect {
        id: ExchangeId::for_test(8),
    });
    let replies = channel.replies_until_final();
    assert!(
        matches!(&replies[..], [Reply::Respond { response, .. }]
            if matches!(&response.body, Body::Bytes(b) if b == b"http.disconnect")),
        "{replies:?}"
    );
}

#[test]
fn an_exception_before_the_head_is_a_500_and_wsgi_is_not_deferred() {
    let app = load_module(
        "asgi_unit_boom",
        "async def app(scope, receive, send):\n    if scope['type'] == 'http':\n        raise ValueError('no')\n",
        Interface::Auto,
    );
    let mut channel = Channel::open(&*app);
    channel.deliver(request(3, "GET", "/", b"", false));
    let replies = channel.replies_until_final();
    assert!(
        matches!(&replies[..], [Reply::Respond { response, .. }] if response.status == 500),
        "{replies:?}"
    );
    let wsgi = load_module(
        "asgi_unit_wsgi",
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'']\n",
        Interface::Auto,
    );
    assert!(
        wsgi.deferred().is_none(),
        "a WSGI function is called, not deferred"
    );
}

const WS_ECHO: &str = r#"
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await send({"type": "websocket.send", "text": "never sent"})
        await send({"type": "websocket.send", "text": message.get("text") or "binary"})
"#;

impl Channel {
    /// The next batch of replies.
    fn next_batch(&self) -> Vec<Reply> {
        self.woken.recv_timeout(WAIT).expect("a reply in time");
        let mut batch = Vec::new();
        self.replies.take(&mut batch);
        batch
    }
}

#[test]
fn a_websocket_is_accepted_and_its_messages_go_both_ways() {
    let app = load_module("asgi_unit_ws", WS_ECHO, Interface::Asgi);
    let mut channel = Channel::open(&*app);
    let id = ExchangeId::for_test(9);
    let headers = [
        ("Host", "h"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Protocol", "a, b"),
    ];
    channel.deliver(Event::Request {
        id,
        request: Request::for_test("GET", "/ws", &headers, b""),
        more_body: false,
    });
    let replies = channel.replies_until_final();
    assert!(
        matches!(&replies[..], [Reply::Respond { response, .. }] if response.status == 101),
        "{replies:?}"
    );
    // Two messages in one hand-off, the second marked paused: both echoed, and reading
    // resumed once the application took it.
    channel.inbox.deliver(&mut vec![
        Event::Message {
            id,
            message: WsMessage::Text("one".into()),
            paused: false,
        },
        Event::Message {
            id,
            message: WsMessage::Binary(vec![1, 2]),
            paused: true,
        },
    ]);
    let mut replies = Vec::new();
    while replies.len() < 3 {
        replies.extend(channel.next_batch());
    }
    let sent: Vec<&WsMessage> = replies
        .iter()
        .filter_map(|r| match r {
            Reply::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            &WsMessage::Text("one".into()),
            &WsMessage::Text("binary".into())
        ]
    );
    assert!(replies.iter().any(|r| matches!(r, Reply::Resume { .. })));
    // After the client's close, a send raises: the task ends without another reply.
    channel.deliver(Event::Closed {
        id,
        code: 1000,
        reason: String::new(),
    });
    assert!(
        channel
            .woken
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "nothing is sent after the close"
    );
}
