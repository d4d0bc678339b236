//! WebSocket connections (RFC 6455) after an HTTP/1.1 upgrade: how an application accepts
//! one ([`Response::accept_websocket`] with a [`Handler`]), the messages it gets and sends
//! ([`Message`], [`Outbox`]), and a [`Link`] to send from other threads.
//!
//! After the `101 Switching Protocols` head the connection stays in the worker's event loop:
//! frames are decoded as bytes arrive (`ferrocorn-websocket`), whole messages are handed to
//! the handler on the loop thread, what it sends is framed into the connection's output and
//! written as the socket allows. `session.rs` runs one connection, `link.rs` carries what
//! other threads send, `head.rs` writes the `101` head.

mod head;
mod link;
mod session;

use ferrocorn_websocket::handshake;

pub use ferrocorn_websocket::close_code;
pub use link::{Closed, Link};
pub(crate) use link::{LinkHub, LinkShared};
pub(crate) use session::{
    check_deadline, deferred_reply, drive, go_away, link_ready, start, Session,
};

use crate::app::{Request, Response};

/// A whole message, fragments joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message, checked to be UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// What an application does with an accepted WebSocket. Every method runs on the worker's
/// event loop thread, which serves all the worker's connections: it must not block (hand
/// long work to another thread and answer through a [`Link`]). A panic is caught; the
/// connection is then closed with code 1011.
pub trait Handler: Send + 'static {
    /// The `101` head is queued: the connection is open. `out` may send at once.
    fn on_open(&mut self, out: &mut Outbox<'_>) {
        let _ = out;
    }

    /// A whole message arrived.
    fn on_message(&mut self, message: Message<'_>, out: &mut Outbox<'_>);

    /// The output, which was past [`Outbox::is_full`], is all written: sending may go on.
    fn on_writable(&mut self, out: &mut Outbox<'_>) {
        let _ = out;
    }

    /// The connection is over, called exactly once: the code and reason of the client's
    /// close frame (1005 when it had none), the code the server failed it with (1002, 1007,
    /// 1009, 1011), or 1006 when it ended without a close frame (the client went away, a
    /// timeout, the worker stopped before the close handshake finished).
    fn on_close(&mut self, code: u16, reason: &str) {
        let _ = (code, reason);
    }
}

/// Sends on a WebSocket from a [`Handler`]'s methods: the messages are framed into the
/// connection's output at once and written as the client accepts them.
pub struct Outbox<'a> {
    pub(crate) wbuf: &'a mut Vec<u8>,
    pub(crate) written: usize,
    pub(crate) session: &'a mut session::State,
}

impl std::fmt::Debug for Outbox<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbox({} bytes buffered)", self.buffered())
    }
}

/// Output buffered past which [`Outbox::is_full`] says so and no more input is decoded until
/// it is written (the client is then held back by TCP's flow control).
pub(crate) const OUTPUT_HIGH: usize = 256 * 1024;

impl Outbox<'_> {
    /// Sends a text message. Returns false (and sends nothing) once a close frame was sent.
    pub fn send_text(&mut self, text: &str) -> bool {
        self.session.send(
            self.wbuf,
            ferrocorn_websocket::Opcode::Text,
            text.as_bytes(),
        )
    }

    /// Sends a binary message. Returns false (and sends nothing) once a close frame was sent.
    pub fn send_binary(&mut self, bytes: &[u8]) -> bool {
        self.session
            .send(self.wbuf, ferrocorn_websocket::Opcode::Binary, bytes)
    }

    /// Starts the closing handshake with `code` (1000–1003, 1007–1014 or 3000–4999; any
    /// other is sent as 1011) and `reason` (cut to 123 bytes): nothing more is sent, messages
    /// that still arrive are dropped, and the connection closes once the client answers (or
    /// after a few seconds). Does nothing if a close frame was sent already.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.session.close(self.wbuf, code, reason);
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered(&self) -> usize {
        self.wbuf.len().saturating_sub(self.written)
    }

    /// Whether the output is past the high-water mark: the client reads slower than the
    /// application sends. [`Handler::on_writable`] says when it is written.
    pub fn is_full(&self) -> bool {
        self.buffered() > OUTPUT_HIGH
    }

    /// Stops decoding the client's messages (and reading its socket) until
    /// [`Outbox::resume_reading`] or [`Link::resume_reading`]: backpressure for a handler
    /// whose consumer is behind.
    pub fn pause_reading(&mut self) {
        self.session.paused = true;
    }

    /// Reads the client's messages again after [`Outbox::pause_reading`].
    pub fn resume_reading(&mut self) {
        self.session.paused = false;
    }

    /// A handle to send on this connection from any thread (see [`Link`]).
    pub fn link(&mut self) -> Link {
        self.session.link()
    }
}

/// What [`Response::accept_websocket`] leaves in the response for the worker.
pub(crate) struct Upgrade {
    pub accept: String,
    pub protocol: Option<String>,
    /// `None`: the connection stays with the deferred application that accepted it
    /// ([`Response::accept_websocket_deferred`]).
    pub handler: Option<Box<dyn Handler>>,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upgrade(protocol {:?})", self.protocol)
    }
}

impl Request {
    /// Whether the client asks for a WebSocket (`Upgrade: websocket`). Whether the
    /// handshake is valid is [`Response::accept_websocket`]'s judgement.
    pub fn is_websocket(&self) -> bool {
        handshake::is_upgrade(self.headers())
    }

    /// The subprotocols the client offers (`Sec-WebSocket-Protocol`), in its order of
    /// preference.
    pub fn websocket_protocols(&self) -> Vec<String> {
        handshake::offered_protocols(self.headers())
    }
}

impl Response {
    /// Accepts the WebSocket opening handshake of `request` (RFC 6455 §4.2): the response
    /// becomes `101 Switching Protocols` with `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol` when `protocol` is given (one of
    /// [`Request::websocket_protocols`]), and the header fields set on this response
    /// (cookies, ...; `Upgrade` and the `Sec-WebSocket-*` fields are the worker's). The
    /// connection then belongs to `handler`.
    ///
    /// A request that is not a valid handshake gets `400 Bad Request`, or `426 Upgrade
    /// Required` with `Sec-WebSocket-Version: 13` for another protocol version, filled in
    /// here; the result is then false and `handler` is dropped.
    pub fn accept_websocket(
        &mut self,
        request: &Request,
        protocol: Option<&str>,
        handler: Box<dyn Handler>,
    ) -> bool {
        self.accept(request, protocol, Some(handler))
    }

    /// Accepts the handshake as [`Response::accept_websocket`] does, for a deferred
    /// application ([`crate::DeferredApp`]) that answers with this response in a
    /// [`crate::Reply::Respond`]: the WebSocket then goes on as the exchange's conversation
    /// ([`crate::Event::Message`], [`crate::Reply::Send`], ...) instead of a [`Handler`].
    /// Returns false, with the `400`/`426` filled in, for a request that is not a valid
    /// handshake. Such a response given back by [`crate::App::call`] is answered 500.
    pub fn accept_websocket_deferred(&mut self, request: &Request, protocol: Option<&str>) -> bool {
        self.accept(request, protocol, None)
    }

    fn accept(
        &mut self,
        request: &Request,
        protocol: Option<&str>,
        handler: Option<Box<dyn Handler>>,
    ) -> bool {
        let http11 = request.version() == crate::Version::Http11;
        match handshake::check(request.method(), http11, request.headers()) {
            Ok(h) => {
                self.status = 101;
                self.websocket = Some(Box::new(Upgrade {
                    accept: h.accept,
                    protocol: protocol.map(str::to_string),
                    handler,
                }));
                true
            }
            Err(rejection) => {
                self.reset();
                if rejection.status == 426 {
                    self.header("Sec-WebSocket-Version", handshake::VERSION);
                }
                self.plain(rejection.status, format!("{}\n", rejection.reason));
                false
            }
        }
    }
}
