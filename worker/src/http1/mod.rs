//! The HTTP/1 side of a connection: reading requests, calling the application, writing
//! responses, closing. The event loop (`server/`) calls [`drive`] when a connection is ready;
//! `request.rs` consumes input phase by phase, `respond.rs` queues the answer, `output.rs`
//! writes it, `conn.rs` holds the connection's state.

mod conn;
mod deferred;
mod output;
mod request;
mod respond;
mod transport;
mod wakeups;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::AccessLog;
use crate::app::App;
use crate::clock::Clock;
use crate::date::DateCache;
use crate::limits::Config;
use crate::metrics::{self, WorkerCounters};
use crate::pool::{Job, Pool, Work};
use crate::proto::Parser;
use crate::response::{write_error, HeadCache};
use crate::statsd::Statsd;

pub(crate) use conn::{Conn, Exchange, Phase, ReadSide, Spool, Stream, WriteSide};
pub(crate) use deferred::{reply as deferred_reply, Channel};
pub(crate) use output::{Flushed, OutBody, STREAM_PIECE};
use request::break_stream;
use request::{process, Step};
use respond::queue_response;
pub(crate) use respond::{count_request, log_exchange};
pub(crate) use transport::Transport;
pub(crate) use wakeups::{call_returned, check_deadline, piece_read};

/// How long a closing connection is drained before it is closed regardless.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Input discarded while lingering before the connection is closed regardless.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Output buffered before the loop stops answering pipelined requests and writes.
const WBUF_HIGH: usize = 64 * 1024;

/// Everything the connection handlers share.
pub(crate) struct Ctx<'s> {
    pub(crate) cfg: Config,
    /// The head parser, shared by the connections of the loop (a head is copied into its
    /// `Request` before the next parse). State, not configuration: it keeps its scratch.
    pub(crate) parser: Parser,
    pub(crate) app: Arc<dyn App>,
    pub(crate) pool: Option<Pool>,
    /// The channel of an application that answers later (`App::deferred`).
    pub(crate) deferred: Option<Channel>,
    pub(crate) date: DateCache,
    /// The last response head, reused while responses keep the same shape.
    pub(crate) heads: HeadCache,
    pub(crate) log: Option<AccessLog>,
    /// `statsd_host`'s client: one timer and two counters per request (`statsd.rs`).
    pub(crate) statsd: Option<Statsd>,
    pub(crate) now: Instant,
    /// `now` in nanoseconds on CLOCK_MONOTONIC (see `clock.rs`).
    pub(crate) now_ns: u64,
    pub(crate) clock: Clock,
    pub(crate) requests: u64,
    /// Set when the worker stops taking new requests (TERM, max_requests).
    pub(crate) stopping: bool,
    /// Set by a handler when `max_requests` is reached; the loop then begins the stop.
    pub(crate) max_requests_reached: bool,
    /// Where responses, durations and requests in flight are counted (`metrics.rs`).
    pub(crate) metrics: &'s WorkerCounters,
    /// Where WebSocket links (`crate::ws::Link`) say which connections have sends queued.
    pub(crate) links: Arc<crate::ws::LinkHub>,
}

/// What `drive` does after a step.
enum Next {
    /// Go round again: more progress may be possible.
    Again,
    /// Wait for the next event (readiness, the pool, a tick).
    Wait,
    /// Close the connection.
    Close,
}

/// Makes all the progress possible on a connection: answer buffered requests, write, read.
/// Returns false when the connection must be closed.
pub(crate) fn drive(c: &mut Conn, ctx: &mut Ctx) -> bool {
    loop {
        if let Phase::WebSocket(_) = c.phase {
            return crate::ws::drive(c, ctx);
        }
        if deferred::feed(c, ctx) {
            continue;
        }
        if c.write == WriteSide::Open && c.out.is_none() && c.wbuf.len() < WBUF_HIGH {
            if let Step::Progress = process(c, ctx) {
                continue;
            }
        }
        let next = if c.output_pending() {
            match write_output(c, ctx) {
                // A deferred exchange keeps reading while its output waits, to see the
                // client go away.
                Next::Wait if deferred::reads_meanwhile(c) => read_input(c, ctx),
                next => next,
            }
        } else if matches!(
            c.phase,
            Phase::Dispatched | Phase::Streaming { paused: true, .. }
        ) || (matches!(c.phase, Phase::Deferred(_)) && !deferred::reads_meanwhile(c))
        {
            Next::Wait
        } else {
            read_input(c, ctx)
        };
        match next {
            Next::Again => {}
            Next::Wait => return true,
            Next::Close => return false,
        }
    }
}

/// Writes pending output; once it is all written, decides what follows (see
/// [`output_written`]).
fn write_output(c: &mut Conn, ctx: &mut Ctx) -> Next {
    match c.flush() {
        Ok(Flushed::NeedPiece) => {
            if deferred::supply_piece(c, ctx) {
                return Next::Again;
            }
            request_piece(c, ctx);
            Next::Wait
        }
        Ok(Flushed::Done) => output_written(c, ctx),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.deadline = ctx.now + ctx.cfg.write_timeout;
            Next::Wait
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Next::Again,
        Err(e) => {
            tracing::debug!("write failed: {e}");
            Next::Close
        }
    }
}

/// Hands a streamed response body's reader to the pool; the piece comes back through the
/// waker.
fn request_piece(c: &mut Conn, ctx: &Ctx) {
    let (Some(pool), Some(OutBody::Stream { reader, left, .. })) = (&ctx.pool, &mut c.out) else {
        return;
    };
    let Some(reader) = reader.take() else {
        return;
    };
    let cap = left.map_or(STREAM_PIECE, |l| {
        usize::try_from(l).unwrap_or(STREAM_PIECE).min(STREAM_PIECE)
    });
    if let Some(timeout) = ctx.cfg.piece_timeout {
        c.deadline = ctx.now + timeout;
    }
    pool.submit(Job {
        slot: c.slot,
        serial: c.serial,
        work: Work::Fill { reader, cap },
    });
}

/// Everything owed is written: close (lingering if input may still come), or keep the
/// connection alive for the next request.
fn output_written(c: &mut Conn, ctx: &mut Ctx) -> Next {
    if c.write != WriteSide::Open {
        // Lingering close only where input may still come (see `WriteSide::CloseAfterLast`).
        if c.write == WriteSide::CloseAfterLast && c.rpos == c.rend && c.read.is_drained() {
            return Next::Close;
        }
        if matches!(c.phase, Phase::Draining) {
            return Next::Again; // already shut down
        }
        c.stream.shutdown_write();
        c.phase = Phase::Draining;
        c.idle_since = ctx.now;
        c.deadline = ctx.now + LINGER;
    } else if c.is_idle() && c.read != ReadSide::Fresh {
        // (`Fresh`: TLS handshake records went out, no request has come yet; the header
        // deadline set at accept stays.)
        match ctx.cfg.keepalive {
            Some(k) => {
                c.deadline = ctx.now + k;
                c.idle_since = ctx.now;
            }
            None => return Next::Close,
        }
        // The usual end of a keep-alive exchange: answered, nothing buffered, the socket
        // read empty. What the next turn of the loop would conclude, without its checks.
        if c.read == ReadSide::Drained {
            return Next::Wait;
        }
    }
    Next::Again
}

/// Reads what the socket holds, unless the last read drained it (then the next edge says
/// when more comes) or the client has closed its side.
fn read_input(c: &mut Conn, ctx: &mut Ctx) -> Next {
    if c.read == ReadSide::Closed {
        if matches!(c.phase, Phase::Deferred(_)) {
            // The application hears of it and still ends the exchange.
            deferred::client_gone(c, ctx);
            return Next::Wait;
        }
        if matches!(c.phase, Phase::Streaming { .. }) {
            let message = "the connection closed before the body was complete";
            break_stream(c, 400, message.into());
            return Next::Wait;
        }
        // The client will send nothing more and everything owed is written.
        return Next::Close;
    }
    if c.read == ReadSide::Drained {
        return Next::Wait;
    }
    let was_empty = c.rpos == c.rend;
    let max = match c.phase {
        Phase::Head => ctx.parser.max_head() + 2,
        _ => 64 * 1024,
    };
    match c.read_some(max) {
        Ok((0, _)) => {
            c.read = ReadSide::Closed;
            if matches!(c.phase, Phase::Draining) {
                return Next::Close;
            }
            // Answer what is complete, then close; a partial request is dropped.
        }
        Ok((n, full)) => {
            c.read.after_read(full);
            match c.phase {
                Phase::Draining => {
                    c.drained_bytes += n;
                    c.rpos = c.rend;
                    if c.drained_bytes > LINGER_MAX_BYTES {
                        return Next::Close;
                    }
                }
                Phase::Head if was_empty => c.deadline = ctx.now + ctx.cfg.header_timeout,
                Phase::Body { .. } | Phase::Streaming { .. } | Phase::Deferred(_) => {
                    c.body_received += n as u64;
                    let cfg = &ctx.cfg;
                    c.deadline = c.body_deadline(ctx.now, cfg.header_timeout, cfg.body_min_rate);
                }
                _ => {}
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) if crate::tls::is_plain_http(&e) => {
            // As nginx: a plain answer the client can read, rather than a hang or an alert.
            respond_error(c, ctx, 400, "plain HTTP request sent to a TLS port");
        }
        Err(e) => {
            tracing::debug!("read failed: {e}");
            return Next::Close;
        }
    }
    Next::Again
}

/// Answers `status` with `Connection: close` and discards all further input: nothing after
/// a malformed request is served.
fn respond_error(c: &mut Conn, ctx: &Ctx, status: u16, message: &str) {
    tracing::debug!(status, "refusing request: {message}");
    // A malformed request has no method to speak of: `other`.
    let mut method = metrics::OTHER;
    if std::mem::take(&mut c.in_flight) {
        ctx.metrics.request_ended();
        if let Some(ex) = &c.exchange {
            method = metrics::method_of(&ex.req);
        }
    }
    ctx.metrics.response(method, status);
    c.rpos = c.rend;
    c.phase = Phase::Head;
    write_error(&mut c.wbuf, status, message, ctx.date.line());
    // The client may still be sending (the rest of a bad request): always linger.
    c.write = WriteSide::CloseLingering;
}
