//! A connection whose exchange is with a deferred application (`crate::app::DeferredApp`):
//! the request goes out as events, the body follows as it arrives, the response comes back
//! as replies, and the client's going away is reported. The connection stays in
//! `Phase::Deferred` from the dispatch until the application's final reply has been handed
//! to the output; meanwhile it keeps reading (up to a buffer's worth of pipelined input), so
//! that an end of file is seen and reported while the application works or streams.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use super::{drive, queue_response, respond_error, Conn, Ctx, OutBody, Phase, WriteSide};
use crate::app::{Body, Event, ExchangeId, HeaderText, Inbox, Replies, Reply, RequestBody};
use crate::proto::BodyDecoder;

/// Input buffered while the application holds an exchange; past it the socket is not read
/// until the exchange ends.
const HELD_INPUT_MAX: usize = 64 * 1024;

/// The loop's side of a deferred application's channel.
pub(crate) struct Channel {
    inbox: Box<dyn Inbox>,
    replies: Replies,
    /// Events of this turn of the loop, delivered together at its end.
    events: Vec<Event>,
    /// Exchanges numbered in this process (`ExchangeId::seq`).
    seq: u64,
    /// Hand-offs to the application so far, and the events in them.
    pub deliveries: u64,
    pub delivered: u64,
}

impl Channel {
    pub fn new(inbox: Box<dyn Inbox>, replies: Replies) -> Channel {
        Channel {
            inbox,
            replies,
            events: Vec::new(),
            seq: 0,
            deliveries: 0,
            delivered: 0,
        }
    }

    /// Delivers this turn's events, with a `Disconnect` for each exchange in `gone` (its
    /// connection closed in this turn).
    pub fn deliver(&mut self, gone: &mut Vec<ExchangeId>) {
        self.events
            .extend(gone.drain(..).map(|id| Event::Disconnect { id }));
        if self.events.is_empty() {
            return;
        }
        self.deliveries += 1;
        self.delivered += self.events.len() as u64;
        self.inbox.deliver(&mut self.events);
        self.events.clear();
    }

    /// Adds an event to this turn's hand-off.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Takes the replies sent so far (after the waker fired).
    pub fn take_replies(&self, into: &mut Vec<Reply>) {
        self.replies.take(into);
    }

    pub fn stalled_for(&self, now: Instant) -> std::time::Duration {
        self.inbox.stalled_for(now)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({} events pending)", self.events.len())
    }
}

/// Response body not yet handed to the output.
#[derive(Debug)]
enum Piece {
    Data(Vec<u8>),
    /// The end, with trailer fields (possibly none).
    End(Vec<(HeaderText, HeaderText)>),
}

/// Where a deferred exchange stands.
#[derive(Debug)]
pub(crate) struct State {
    pub id: ExchangeId,
    /// The request body is still arriving.
    decoder: Option<BodyDecoder>,
    /// Body bytes sent since the application last resumed the body.
    unacked: usize,
    /// The socket is not read until the application resumes the body.
    paused: bool,
    /// `Reply::Respond` came.
    responded: bool,
    /// Pieces follow the head into a streamed output body.
    streaming: bool,
    pieces: VecDeque<Piece>,
    /// The final reply came.
    ended: bool,
    /// The application waits for `Event::Writable`.
    writer_waiting: bool,
    /// `Event::Disconnect` was sent.
    pub gone: bool,
}

/// Hands the connection's request to the application; `decoder` is the body still to come.
pub(super) fn dispatch(c: &mut Conn, ctx: &mut Ctx, decoder: Option<BodyDecoder>) {
    let (Some(ch), Some(ex)) = (ctx.deferred.as_mut(), c.exchange.as_mut()) else {
        return;
    };
    ch.seq += 1;
    let id = ExchangeId {
        slot: c.slot,
        seq: ch.seq,
    };
    ch.events.push(Event::Request {
        id,
        request: ex.req.hand_over(),
        more_body: decoder.is_some(),
    });
    c.phase = Phase::Deferred(Box::new(State {
        id,
        decoder,
        unacked: 0,
        paused: false,
        responded: false,
        streaming: false,
        pieces: VecDeque::new(),
        ended: false,
        writer_waiting: false,
        gone: false,
    }));
}

/// A body that did not come at once: the application gets the head and the bytes so far
/// now, the rest as it arrives.
pub(super) fn start_streaming(c: &mut Conn, ctx: &mut Ctx) {
    let Phase::Body { decoder, spool, .. } = std::mem::replace(&mut c.phase, Phase::Head) else {
        return;
    };
    if let Some(ex) = c.exchange.as_mut() {
        ex.req.body = RequestBody::from_bytes(spool.mem);
    }
    dispatch(c, ctx, Some(decoder));
}

/// Sends the body bytes buffered so far to the application. Returns whether input was
/// consumed.
pub(super) fn feed(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::Deferred(st) = &mut c.phase else {
        return false;
    };
    let Some(decoder) = st.decoder.as_mut() else {
        return false;
    };
    if st.paused || c.rpos == c.rend {
        return false;
    }
    let mut data = Vec::new();
    let decoded = decoder.decode(&c.rbuf[c.rpos..c.rend], &mut |bytes| {
        data.extend_from_slice(bytes)
    });
    let d = match decoded {
        Ok(d) => d,
        Err(e) => {
            c.rpos = c.rend;
            body_broke(c, ctx, e.status, &e.message);
            return true;
        }
    };
    c.rpos += d.consumed;
    if d.done {
        st.decoder = None;
    }
    st.unacked += data.len();
    st.paused = !d.done && st.unacked > RequestBody::STREAM_BUFFER;
    if !data.is_empty() || d.done {
        if let Some(ch) = ctx.deferred.as_mut() {
            ch.events.push(Event::Body {
                id: st.id,
                data,
                more: !d.done,
                paused: st.paused,
            });
        }
    }
    d.consumed > 0
}

/// Whether the loop reads the socket while the application holds the exchange: to see the
/// client go away, unless the body is paused or a buffer's worth of input waits.
pub(super) fn reads_meanwhile(c: &Conn) -> bool {
    match &c.phase {
        Phase::Deferred(st) => {
            !(st.decoder.is_some() && st.paused) && c.rend - c.rpos < HELD_INPUT_MAX
        }
        _ => false,
    }
}

/// The client closed its side: the application hears of it once.
pub(super) fn client_gone(c: &mut Conn, ctx: &mut Ctx) {
    if let Phase::Deferred(st) = &mut c.phase {
        st.decoder = None;
        disconnect(st, ctx);
    }
}

fn disconnect(st: &mut State, ctx: &mut Ctx) {
    if !st.gone {
        st.gone = true;
        if let Some(ch) = ctx.deferred.as_mut() {
            ch.events.push(Event::Disconnect { id: st.id });
        }
    }
}

/// The request body broke off (malformed, timed out): the application is told the client
/// is gone; the client gets `status` unless the response has begun, and the connection
/// closes either way.
fn body_broke(c: &mut Conn, ctx: &mut Ctx, status: u16, message: &str) {
    let Phase::Deferred(st) = &mut c.phase else {
        return;
    };
    st.decoder = None;
    disconnect(st, ctx);
    if st.responded {
        c.write = WriteSide::CloseLingering;
    } else {
        // The application's later replies find no exchange and are dropped.
        respond_error(c, ctx, status, message);
    }
}

/// The application's `reply` for the exchange the connection holds. Returns false when the
/// connection must be closed.
pub(crate) fn reply(c: &mut Conn, ctx: &mut Ctx, reply: Reply) -> bool {
    if let Phase::WebSocket(_) = c.phase {
        return crate::ws::deferred_reply(c, ctx, reply);
    }
    let Phase::Deferred(st) = &mut c.phase else {
        return true;
    };
    if st.id != reply.id() {
        return true; // an earlier exchange's
    }
    match reply {
        Reply::Respond {
            response,
            more,
            length,
            ..
        } if !st.responded => respond(c, ctx, response, more, length),
        Reply::Respond { .. } => {}
        Reply::Piece {
            data, more, wait, ..
        } if st.responded && !st.ended => {
            if st.streaming && !data.is_empty() {
                st.pieces.push_back(Piece::Data(data));
            }
            if !more {
                st.pieces.push_back(Piece::End(Vec::new()));
                st.ended = true;
            }
            st.writer_waiting |= wait;
        }
        Reply::Trailers { fields, .. } if st.responded && !st.ended => {
            st.pieces.push_back(Piece::End(fields));
            st.ended = true;
        }
        Reply::Piece { .. } | Reply::Trailers { .. } => {}
        // A WebSocket's, before its 101 went out: dropped.
        Reply::Send { .. } | Reply::Close { .. } => {}
        Reply::Abort { .. } => return false,
        Reply::Resume { .. } => {
            if st.paused {
                st.paused = false;
                st.unacked = 0;
                c.read.rearm();
                c.deadline = ctx.now + ctx.cfg.header_timeout;
                // The client was held back, not slow: its rate counts from here.
                c.start_body_clock(ctx.now);
            }
        }
    }
    settle(c);
    drive(c, ctx)
}

/// The head (and the first body bytes) of the application's response.
fn respond(
    c: &mut Conn,
    ctx: &mut Ctx,
    response: crate::app::Response,
    more: bool,
    length: Option<u64>,
) {
    let Some(mut ex) = c.exchange.take() else {
        return;
    };
    let Phase::Deferred(st) = &mut c.phase else {
        c.exchange = Some(ex);
        return;
    };
    st.responded = true;
    ex.res = response;
    if st.decoder.is_some() {
        // Answered before the whole body arrived: the rest is not read (the connection
        // closes after the answer, RFC 9112 §9.6 allows it), and the client, still sending,
        // gets a lingering close.
        ex.keep_alive = false;
        ex.client_last = false;
    }
    let first = if more {
        let first = match std::mem::replace(
            &mut ex.res.body,
            Body::Stream {
                reader: Box::new(io::empty()),
                len: length,
            },
        ) {
            Body::Bytes(bytes) => bytes,
            Body::Static(bytes) => bytes.to_vec(),
            _ => Vec::new(),
        };
        Some(first)
    } else {
        st.ended = true;
        None
    };
    queue_response(c, ctx, &mut ex);
    c.exchange = Some(ex);
    let Phase::Deferred(st) = &mut c.phase else {
        return;
    };
    if let Some(first) = first {
        // The pieces come from the application's replies, one `ready` at a time.
        if let Some(OutBody::Stream {
            reader,
            offload,
            ready,
            ..
        }) = &mut c.out
        {
            *reader = None;
            *offload = true;
            *ready = None;
            st.streaming = true;
            if !first.is_empty() {
                st.pieces.push_back(Piece::Data(first));
            }
        }
    }
}

/// Ends the exchange once the final reply came and nothing of it remains to hand to the
/// output (no streamed body: a whole response, HEAD, 204; or the declared length reached).
fn settle(c: &mut Conn) {
    if let Phase::Deferred(st) = &c.phase {
        let streaming_out = matches!(c.out, Some(OutBody::Stream { .. }));
        if st.responded && st.ended && !(st.streaming && streaming_out) {
            c.phase = Phase::Head;
        }
    }
}

/// The output wants the next piece of a streamed response: hands it over if one is
/// queued (returns true), else tells a waiting application that all it sent is written.
pub(super) fn supply_piece(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::Deferred(st) = &mut c.phase else {
        return false;
    };
    let Some(OutBody::Stream { ready, chunked, .. }) = &mut c.out else {
        return false;
    };
    match st.pieces.pop_front() {
        Some(Piece::Data(data)) => {
            *ready = Some(data);
            true
        }
        Some(Piece::End(trailers)) => {
            if *chunked && !trailers.is_empty() {
                // RFC 9112 §7.1: last-chunk, the trailer section, the final CRLF.
                c.out = None;
                c.wbuf.extend_from_slice(b"0\r\n");
                for (name, value) in trailers.iter().filter(|(n, v)| valid_field(n, v)) {
                    c.wbuf.extend_from_slice(name.as_bytes());
                    c.wbuf.extend_from_slice(b": ");
                    c.wbuf.extend_from_slice(value.as_bytes());
                    c.wbuf.extend_from_slice(b"\r\n");
                }
                c.wbuf.extend_from_slice(b"\r\n");
            } else {
                *ready = Some(Vec::new());
            }
            c.phase = Phase::Head;
            true
        }
        None => {
            if std::mem::take(&mut st.writer_waiting) {
                if let Some(ch) = ctx.deferred.as_mut() {
                    ch.events.push(Event::Writable { id: st.id });
                }
            }
            false
        }
    }
}

/// A trailer field that cannot split the message (RFC 9110 §5.5), and not one that frames
/// it (RFC 9110 §6.5.1).
fn valid_field(name: &str, value: &str) -> bool {
    ferrocorn_http_parser::is_token(name.as_bytes())
        && !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
        && !crate::app::is_hop_or_ours(name)
}

/// The tick for a connection in a deferred exchange: the body's deadline while it arrives,
/// the write timeout while output is stuck; the application's own time is the arbiter's
/// `timeout`'s business. Returns false when the connection must be closed.
pub(super) fn check_deadline(c: &mut Conn, ctx: &mut Ctx) -> bool {
    let Phase::Deferred(st) = &c.phase else {
        return true;
    };
    if ctx.now < c.deadline {
        return true;
    }
    if st.decoder.is_some() && !st.paused {
        // RFC 9110 §15.5.9: the body did not arrive in time.
        body_broke(c, ctx, 408, "request body timeout");
        return drive(c, ctx);
    }
    // Output the client has not taken within the write timeout.
    c.wpos >= c.wbuf.len()
}
