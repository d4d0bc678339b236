//! One WebSocket connection in the event loop: decoding what arrives, handing messages to the
//! handler, answering pings, the closing handshake, writing with backpressure, deadlines.
//!
//! The connection keeps its `Conn` (socket, buffers, read side); its phase becomes
//! `Phase::WebSocket(Session)`. Once the close frames are exchanged (or the connection is
//! failed) and the output is written, it goes to the HTTP side's lingering close
//! (`Phase::Draining`): our side is shut down and the client's end awaited, as RFC 6455 §7.1.1
//! asks of a server (it closes the TCP connection first).

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocorn_websocket::{close_code, encode, is_valid_close_code, Decoder, Item, Opcode};

use super::link::Command;
use super::{head, Handler, Link, LinkHub, LinkShared, Message, Outbox, Upgrade, OUTPUT_HIGH};
use crate::app::{Event, ExchangeId, Reply, RequestBody, WsMessage};
use crate::http1::{self, Conn, Ctx, Exchange, Phase, WriteSide, LINGER};
use crate::pool::panic_message;

/// How long the client has to answer our close frame before the connection is cut.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most read from the socket at a time.
const READ_MAX: usize = 64 * 1024;

/// Where the closing handshake stands (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the client's.
    Sent,
    /// Close frames exchanged, or the connection failed: write what is left, then close.
    Done,
}

/// What an [`Outbox`] changes: the closing state, the reading pause, the link.
#[derive(Debug)]
pub(crate) struct State {
    pub closing: Closing,
    pub paused: bool,
    /// When the close frame we sent must be answered by.
    close_by: Option<Instant>,
    link: Option<Arc<LinkShared>>,
    hub: Arc<LinkHub>,
    slot: usize,
    serial: u64,
    now: Instant,
}

impl State {
    /// Frames a message, unless a close frame was sent.
    pub fn send(&mut self, wbuf: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) -> bool {
        if self.closing != Closing::Open {
            return false;
        }
        encode::frame(wbuf, opcode, payload);
        true
    }

    /// Sends a close frame (RFC 6455 §5.5.1) unless one was sent; then waits for the
    /// client's.
    pub fn close(&mut self, wbuf: &mut Vec<u8>, code: u16, reason: &str) {
        if self.closing != Closing::Open {
            return;
        }
        let code = if is_valid_close_code(code) {
            code
        } else {
            tracing::error!(
                code,
                "the application closed a WebSocket with an invalid code"
            );
            close_code::INTERNAL_ERROR
        };
        encode::close(wbuf, code, reason);
        self.closing = Closing::Sent;
        self.close_by = Some(self.now + CLOSE_TIMEOUT);
    }

    pub fn link(&mut self) -> Link {
        let shared = self.link.get_or_insert_with(|| {
            Arc::new(LinkShared::new(
                self.slot,
                self.serial,
                Arc::clone(&self.hub),
            ))
        });
        Link {
            shared: Arc::clone(shared),
        }
    }
}

/// A WebSocket a deferred application accepted: its messages and its end go out as events
/// of the exchange `id`, its sends come back as replies (`crate::app::deferred`).
#[derive(Debug)]
struct Deferred {
    id: ExchangeId,
    /// Message bytes handed over since the application last resumed reading.
    unacked: usize,
    /// `Event::Closed` was sent (or the disconnect is reported when the connection goes).
    reported: bool,
    /// The application waits for `Event::Writable`.
    writer_waiting: bool,
}

impl Deferred {
    /// Reports the closing handshake to the application, once.
    fn closed(&mut self, ctx: &mut Ctx, code: u16, reason: &str) {
        if !std::mem::replace(&mut self.reported, true) {
            emit(
                ctx,
                Event::Closed {
                    id: self.id,
                    code,
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// Hands a message over; past `STREAM_BUFFER` unresumed bytes, decoding pauses.
    fn message(&mut self, ctx: &mut Ctx, state: &mut State, message: WsMessage) {
        self.unacked += message.len();
        let paused = self.unacked > RequestBody::STREAM_BUFFER;
        state.paused |= paused;
        emit(
            ctx,
            Event::Message {
                id: self.id,
                message,
                paused,
            },
        );
    }
}

fn emit(ctx: &mut Ctx, event: Event) {
    if let Some(channel) = ctx.deferred.as_mut() {
        channel.push(event);
    }
}

/// A WebSocket connection's state besides its `Conn`.
pub(crate) struct Session {
    decoder: Decoder,
    /// `None` once the close was reported (or the handler panicked), or for a deferred
    /// application's WebSocket.
    handler: Option<Box<dyn Handler>>,
    deferred: Option<Deferred>,
    state: State,
    /// The output went past the high-water mark: `on_writable` once it is written.
    full: bool,
    /// A client that accepts no output by then is dropped (`write_timeout`).
    write_by: Option<Instant>,
    commands: VecDeque<Command>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({:?})", self.state.closing)
    }
}

impl Session {
    /// The deferred exchange to tell of the connection's end, if it has not heard of it:
    /// the connection goes without a closing handshake (1006).
    pub(crate) fn unreported(&self) -> Option<ExchangeId> {
        self.deferred.as_ref().filter(|d| !d.reported).map(|d| d.id)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropped before the close was reported: the connection ended without a close
        // handshake (the client left, a deadline, a quick stop).
        report(&mut self.handler, &self.state, close_code::ABNORMAL, "");
    }
}

/// Tells the handler the connection is over (once: it is dropped after), and ends the link.
fn report(handler: &mut Option<Box<dyn Handler>>, state: &State, code: u16, reason: &str) {
    if let Some(link) = &state.link {
        link.end();
    }
    let Some(mut h) = handler.take() else {
        return;
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| h.on_close(code, reason))) {
        let message = panic_message(&*payload);
        std::mem::forget(payload);
        tracing::error!("WebSocket handler panicked in on_close: {message}");
    }
}

/// Runs a handler callback with an outbox on the connection's output; a panic closes the
/// connection with 1011.
fn call(
    handler: &mut Option<Box<dyn Handler>>,
    state: &mut State,
    wbuf: &mut Vec<u8>,
    written: usize,
    f: impl FnOnce(&mut dyn Handler, &mut Outbox<'_>),
) {
    let Some(h) = handler.as_deref_mut() else {
        return;
    };
    let mut out = Outbox {
        wbuf,
        written,
        session: state,
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(h, &mut out))) {
        let message = panic_message(&*payload);
        std::mem::forget(payload);
        tracing::error!("WebSocket handler panicked: {message}; closing with 1011");
        *handler = None;
        state.close(wbuf, close_code::INTERNAL_ERROR, "internal error");
        state.closing = Closing::Done;
        if let Some(link) = &state.link {
            link.end();
        }
    }
}

/// Switches the connection to WebSocket after the application accepted the handshake:
/// writes the `101` head, then `on_open`. Returns false (the response replaced by a 500) when
/// the application's header fields cannot be sent.
pub(crate) fn start(c: &mut Conn, ctx: &mut Ctx, ex: &mut Exchange, upgrade: Box<Upgrade>) -> bool {
    let deferred = match (&upgrade.handler, &c.phase) {
        (Some(_), _) => None,
        (None, Phase::Deferred(st)) => Some(Deferred {
            id: st.id,
            unacked: 0,
            // A client gone before the 101: the application has heard already.
            reported: st.gone,
            writer_waiting: false,
        }),
        (None, _) => {
            tracing::error!(
                target = ex.req.target(),
                "accept_websocket_deferred outside a deferred application: sending 500"
            );
            ex.res.reset();
            ex.res.plain(500, "internal server error\n");
            return false;
        }
    };
    if !head::write(&mut c.wbuf, &ex.res, &upgrade, ctx.date.line()) {
        tracing::error!(
            target = ex.req.target(),
            "application accepted a WebSocket with an invalid header or subprotocol: sending 500"
        );
        ex.res.reset();
        ex.res.plain(500, "internal server error\n");
        return false;
    }
    http1::count_request(ctx);
    http1::log_exchange(ctx, ex, Some(0));
    if !c.nodelay {
        // Messages are small writes each awaited by the client: never hold one back (Nagle).
        c.nodelay = true;
        c.stream.set_nodelay();
    }
    let Upgrade { handler, .. } = *upgrade;
    let mut session = Box::new(Session {
        decoder: Decoder::new(ctx.cfg.websocket_max_message),
        handler,
        deferred,
        state: State {
            closing: Closing::Open,
            paused: false,
            close_by: None,
            link: None,
            hub: Arc::clone(&ctx.links),
            slot: c.slot,
            serial: c.serial,
            now: ctx.now,
        },
        full: false,
        write_by: None,
        commands: VecDeque::new(),
    });
    let s = &mut *session;
    call(
        &mut s.handler,
        &mut s.state,
        &mut c.wbuf,
        c.wpos,
        |h, out| {
            h.on_open(out);
        },
    );
    if ctx.stopping {
        s.state
            .close(&mut c.wbuf, close_code::GOING_AWAY, "server shutting down");
        if let Some(d) = &mut s.deferred {
            d.closed(ctx, close_code::GOING_AWAY, "server shutting down");
        }
    }
    c.phase = Phase::WebSocket(session);
    c.deadline = ctx.now + Duration::from_secs(365 * 24 * 3600);
    true
}

/// Makes all the progress possible: decode and dispatch what was read, write, read. Returns
/// false when the connection must be closed.
///
/// Input is decoded and read while the unwritten output stays under `OUTPUT_HIGH`, also when
/// the socket does not take more for now (a client may send while it reads slowly); past it,
/// the client is held back by TCP's flow control until its output is written.
pub(crate) fn drive(c: &mut Conn, ctx: &mut Ctx) -> bool {
    // The socket took no more output in this call: wait for its next writable edge.
    let mut blocked = false;
    loop {
        let Phase::WebSocket(s) = &mut c.phase else {
            return http1::drive(c, ctx);
        };
        s.state.now = ctx.now;
        let pending = c.wbuf.len() - c.wpos;
        // A handler that sees `is_full` waits for `on_writable`: note it whoever filled it.
        s.full |= pending > OUTPUT_HIGH;
        if c.rpos < c.rend && !s.state.paused && pending <= OUTPUT_HIGH && decode_one(c, ctx) {
            continue;
        }
        if c.output_pending() && !blocked {
            match c.flush() {
                Ok(_) => written(c, ctx),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    if let Phase::WebSocket(s) = &mut c.phase {
                        s.write_by = Some(ctx.now + ctx.cfg.write_timeout);
                        if let Some(link) = &s.state.link {
                            link.set_backlog(c.wbuf.len() - c.wpos);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("WebSocket write failed: {e}");
                    return false;
                }
            }
            continue;
        }
        let Phase::WebSocket(s) = &mut c.phase else {
            continue;
        };
        if s.state.closing == Closing::Done {
            // Once the close frame and what came before it are written.
            return blocked || linger(c, ctx);
        }
        if s.state.paused || c.wbuf.len() - c.wpos > OUTPUT_HIGH {
            return true;
        }
        match read(c) {
            Some(keep) => return keep,
            None => continue,
        }
    }
}

/// Decodes one item from the buffered input and acts on it. Returns whether input was
/// consumed or an item handled.
fn decode_one(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::WebSocket(s) = &mut c.phase else {
        return false;
    };
    let Session {
        decoder,
        handler,
        deferred,
        state,
        ..
    } = &mut **s;
    let (wbuf, written) = (&mut c.wbuf, c.wpos);
    match decoder.decode(&c.rbuf[c.rpos..c.rend]) {
        Ok((used, item)) => {
            c.rpos += used;
            let Some(item) = item else {
                return used > 0;
            };
            let open = state.closing == Closing::Open;
            match item {
                Item::Text(text) if open => match deferred {
                    Some(d) => d.message(ctx, state, WsMessage::Text(text.to_owned())),
                    None => call(handler, state, wbuf, written, |h, out| {
                        h.on_message(Message::Text(text), out)
                    }),
                },
                Item::Binary(bytes) if open => match deferred {
                    Some(d) => d.message(ctx, state, WsMessage::Binary(bytes.to_vec())),
                    None => call(handler, state, wbuf, written, |h, out| {
                        h.on_message(Message::Binary(bytes), out)
                    }),
                },
                // RFC 6455 §5.5.2: a ping is answered with a pong carrying its bytes.
                Item::Ping(bytes) if open => encode::frame(wbuf, Opcode::Pong, bytes),
                Item::Close(frame) => {
                    let (code, reason) =
                        frame.map_or((close_code::NO_STATUS, ""), |f| (f.code, f.reason));
                    if open {
                        // §5.5.1: answer with a close frame, echoing the status code.
                        match frame {
                            Some(f) => encode::close(wbuf, f.code, ""),
                            None => encode::frame(wbuf, Opcode::Close, b""),
                        }
                    }
                    state.closing = Closing::Done;
                    report(handler, state, code, reason);
                    if let Some(d) = deferred {
                        d.closed(ctx, code, reason);
                    }
                }
                // Pongs, and messages arriving after our close frame, are dropped.
                _ => {}
            }
            true
        }
        Err(e) => {
            // §7.1.7: fail the connection, with a close frame saying why.
            tracing::debug!("failing a WebSocket connection: {e}");
            c.rpos = c.rend;
            state.close(wbuf, e.code, e.reason);
            state.closing = Closing::Done;
            report(handler, state, e.code, e.reason);
            if let Some(d) = deferred {
                d.closed(ctx, e.code, e.reason);
            }
            true
        }
    }
}

/// All output is written: the write deadline is off, and a handler that filled the output
/// hears that it may send again.
fn written(c: &mut Conn, ctx: &mut Ctx) {
    let Phase::WebSocket(s) = &mut c.phase else {
        return;
    };
    s.write_by = None;
    if let Some(d) = s.deferred.as_mut().filter(|d| d.writer_waiting) {
        d.writer_waiting = false;
        emit(ctx, Event::Writable { id: d.id });
    }
    if let Some(link) = &s.state.link {
        link.set_backlog(0);
    }
    if std::mem::take(&mut s.full) {
        call(
            &mut s.handler,
            &mut s.state,
            &mut c.wbuf,
            c.wpos,
            |h, out| h.on_writable(out),
        );
    }
}

/// Reads from the socket. `None`: go round again; `Some(keep)`: wait (true) or close.
fn read(c: &mut Conn) -> Option<bool> {
    if c.read == http1::ReadSide::Closed {
        // The client went away without finishing the closing handshake (1006, reported when
        // the session is dropped).
        return Some(false);
    }
    if c.read == http1::ReadSide::Drained {
        // The next readable edge says when more comes.
        return Some(true);
    }
    match c.read_some(READ_MAX) {
        Ok((0, _)) => c.read = http1::ReadSide::Closed,
        Ok((_, full)) => c.read.after_read(full),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.read.after_read(false);
            return Some(true);
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => {
            tracing::debug!("WebSocket read failed: {e}");
            return Some(false);
        }
    }
    None
}

/// The closing handshake is over and the output written: shut down our side and drain the
/// client's until it closes (the HTTP side's lingering close).
fn linger(c: &mut Conn, ctx: &mut Ctx) -> bool {
    if let Phase::WebSocket(s) = &c.phase {
        if let Some(id) = s.unreported() {
            emit(ctx, Event::Disconnect { id });
        }
    }
    c.stream.shutdown_write();
    c.rpos = c.rend;
    c.phase = Phase::Draining;
    c.write = WriteSide::CloseLingering;
    c.idle_since = ctx.now;
    c.deadline = ctx.now + LINGER;
    http1::drive(c, ctx)
}

/// A graceful stop: close with 1001 (RFC 6455 §7.4.1) and let the client answer. Returns
/// false when the connection must be closed.
pub(crate) fn go_away(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::WebSocket(s) = &mut c.phase else {
        return true;
    };
    s.state.now = ctx.now;
    s.state
        .close(&mut c.wbuf, close_code::GOING_AWAY, "server shutting down");
    if let Some(d) = &mut s.deferred {
        // The application need not wait for the client's answer to finish.
        d.closed(ctx, close_code::GOING_AWAY, "server shutting down");
    }
    drive(c, ctx)
}

/// A deferred application's reply for the WebSocket this connection is (see
/// `crate::app::deferred`). Returns false when the connection must be closed.
pub(crate) fn deferred_reply(c: &mut Conn, ctx: &mut Ctx, reply: Reply) -> bool {
    let Phase::WebSocket(s) = &mut c.phase else {
        return true;
    };
    let Some(d) = s.deferred.as_mut().filter(|d| d.id == reply.id()) else {
        return true; // an earlier exchange's
    };
    s.state.now = ctx.now;
    match reply {
        Reply::Send { message, wait, .. } => {
            let sent = match &message {
                WsMessage::Text(t) => s.state.send(&mut c.wbuf, Opcode::Text, t.as_bytes()),
                WsMessage::Binary(b) => s.state.send(&mut c.wbuf, Opcode::Binary, b),
            };
            if wait && sent {
                d.writer_waiting = true;
            } else if wait {
                // Nothing queued: nothing to wait for.
                emit(ctx, Event::Writable { id: d.id });
            }
        }
        Reply::Close { code, reason, .. } => s.state.close(&mut c.wbuf, code, &reason),
        Reply::Resume { .. } => {
            d.unacked = 0;
            if std::mem::take(&mut s.state.paused) {
                c.read.rearm();
            }
        }
        Reply::Abort { .. } => return false,
        Reply::Respond { .. } | Reply::Piece { .. } | Reply::Trailers { .. } => {}
    }
    drive(c, ctx)
}

/// A [`Link`] queued commands for this connection.
pub(crate) fn link_ready(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::WebSocket(s) = &mut c.phase else {
        return true;
    };
    s.state.now = ctx.now;
    let Some(link) = s.state.link.clone() else {
        return true;
    };
    link.take(&mut s.commands);
    while let Some(command) = s.commands.pop_front() {
        let wbuf = &mut c.wbuf;
        match command {
            Command::Text(text) => {
                s.state.send(wbuf, Opcode::Text, text.as_bytes());
            }
            Command::Binary(bytes) => {
                s.state.send(wbuf, Opcode::Binary, &bytes);
            }
            Command::Close(code, reason) => s.state.close(wbuf, code, &reason),
            Command::Resume => {
                s.state.paused = false;
                c.read.rearm();
            }
        }
    }
    drive(c, ctx)
}

/// Applies the connection's deadlines on the loop's tick: output the client does not take
/// (`write_timeout`), a close frame it does not answer. An idle WebSocket has no deadline
/// (keep-alive does not apply). Returns false when the connection must be closed.
pub(crate) fn check_deadline(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::WebSocket(s) = &c.phase else {
        return true;
    };
    let passed = |t: Option<Instant>| t.is_some_and(|t| ctx.now >= t);
    if passed(s.write_by) {
        tracing::debug!("WebSocket client accepts no output: closing");
        return false;
    }
    if s.state.closing == Closing::Sent && passed(s.state.close_by) {
        tracing::debug!("WebSocket client did not answer the close frame: closing");
        return false;
    }
    true
}
