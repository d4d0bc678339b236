//! The HTTP/1 side of a connection: reading requests, calling the application, writing
//! responses, closing. The event loop (`server/`) calls [`drive`] when a connection is ready.

mod conn;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::{AccessLog, LogEntry};
use crate::app::{App, Body, BodyPipe, Peer, RequestBody};
use crate::date::DateCache;
use crate::limits::Config;
use crate::pool::{call_app, Job, Pool, Work};
use crate::proto::{Framing, HeadOutcome, HttpError, Parser, ProxyHeader, ProxyOutcome};
use crate::response::{self, plan, write_error, HeadCache, Method};

pub(crate) use conn::{Conn, Exchange, Flushed, OutBody, Phase, Spool, Stream, STREAM_PIECE};

/// How long a closing connection is drained before it is closed regardless.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Input discarded while lingering before the connection is closed regardless.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Output buffered before the loop stops answering pipelined requests and writes.
const WBUF_HIGH: usize = 64 * 1024;
/// Owned bodies up to this size are copied behind the head so that both go out in one write.
const COPY_BODY_MAX: usize = 16 * 1024;

/// Everything the connection handlers share.
pub(crate) struct Ctx {
    pub(crate) cfg: Config,
    /// The head parser, shared by the connections of the loop (a head is copied into its
    /// `Request` before the next parse). State, not configuration: it keeps its scratch.
    pub(crate) parser: Parser,
    pub(crate) app: Arc<dyn App>,
    pub(crate) pool: Option<Pool>,
    pub(crate) date: DateCache,
    /// The last response head, reused while responses keep the same shape.
    pub(crate) heads: HeadCache,
    pub(crate) log: Option<AccessLog>,
    pub(crate) now: Instant,
    pub(crate) requests: u64,
    /// Set when the worker stops taking new requests (TERM, max_requests).
    pub(crate) stopping: bool,
    /// Set by a handler when `max_requests` is reached; the loop then begins the stop.
    pub(crate) max_requests_reached: bool,
}

/// What processing buffered input achieved.
enum Step {
    Progress,
    Stall,
}

/// Makes all the progress possible on a connection: answer buffered requests, write, read.
/// Returns false when the connection must be closed.
pub(crate) fn drive(c: &mut Conn, ctx: &mut Ctx) -> bool {
    loop {
        if !c.close_after_write && c.out.is_none() && c.wbuf.len() < WBUF_HIGH {
            if let Step::Progress = process(c, ctx) {
                continue;
            }
        }
        if c.output_pending() {
            match c.flush() {
                Ok(Flushed::NeedPiece) => {
                    // Hand the reader to the pool; the piece comes back through the waker.
                    if let (Some(pool), Some(OutBody::Stream { reader, left, .. })) =
                        (&ctx.pool, &mut c.out)
                    {
                        if let Some(reader) = reader.take() {
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
                    }
                    return true;
                }
                Ok(Flushed::Done) => {
                    if c.close_after_write {
                        // Lingering close only where input may still come: the client asked
                        // to close, nothing is buffered and the last read found the socket
                        // empty, so closing now cannot reset the answer (nginx's
                        // `lingering_close on` heuristic). Saves a shutdown, a wake-up and a
                        // read per `Connection: close` request.
                        if c.client_closing && c.rpos == c.rend && c.read_drained {
                            return false;
                        }
                        c.stream.shutdown_write();
                        c.phase = Phase::Draining;
                        c.idle_since = ctx.now;
                        c.close_after_write = false;
                        c.deadline = ctx.now + LINGER;
                    } else if c.is_idle() {
                        match ctx.cfg.keepalive {
                            Some(k) => {
                                c.deadline = ctx.now + k;
                                c.idle_since = ctx.now;
                            }
                            None => return false,
                        }
                        // The usual end of a keep-alive exchange: answered, nothing buffered,
                        // the socket read empty. What the next turn of the loop would
                        // conclude, without its checks.
                        if c.read_drained && !c.peer_hup && !c.read_closed {
                            return true;
                        }
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.deadline = ctx.now + ctx.cfg.write_timeout;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("write failed: {e}");
                    return false;
                }
            }
        }
        if matches!(
            c.phase,
            Phase::Dispatched | Phase::Streaming { paused: true, .. }
        ) {
            return true;
        }
        if c.read_closed {
            if matches!(c.phase, Phase::Streaming { .. }) {
                let message = "the connection closed before the body was complete";
                break_stream(c, 400, message.into());
                return true;
            }
            // The client will send nothing more and everything owed is written.
            return false;
        }
        if c.read_drained && !c.peer_hup {
            return true;
        }
        let was_empty = c.rpos == c.rend;
        let max = match c.phase {
            Phase::Head => ctx.parser.max_head() + 2,
            _ => 64 * 1024,
        };
        match c.read_some(max) {
            Ok((0, _)) => {
                c.read_closed = true;
                if matches!(c.phase, Phase::Draining) {
                    return false;
                }
                // Answer what is complete, then close; a partial request is dropped.
            }
            Ok((n, full)) => {
                c.read_drained = !full;
                match c.phase {
                    Phase::Draining => {
                        c.drained_bytes += n;
                        c.rpos = c.rend;
                        if c.drained_bytes > LINGER_MAX_BYTES {
                            return false;
                        }
                    }
                    Phase::Head if was_empty => c.deadline = ctx.now + ctx.cfg.header_timeout,
                    Phase::Body { .. } | Phase::Streaming { .. } => {
                        c.body_received += n as u64;
                        let cfg = &ctx.cfg;
                        c.deadline =
                            c.body_deadline(ctx.now, cfg.header_timeout, cfg.body_min_rate);
                    }
                    _ => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("read failed: {e}");
                return false;
            }
        }
    }
}

/// Answers `status` with `Connection: close` and discards all further input: nothing after
/// a malformed request is served.
pub(crate) fn respond_error(c: &mut Conn, ctx: &Ctx, status: u16, message: &str) {
    tracing::debug!(status, "refusing request: {message}");
    c.rpos = c.rend;
    c.phase = Phase::Head;
    // The client may still be sending (the rest of a bad request): always linger.
    c.client_closing = false;
    write_error(&mut c.wbuf, status, message, ctx.date.line());
    c.close_after_write = true;
}

/// Consumes buffered input: parses a head, receives a body, calls the application.
fn process(c: &mut Conn, ctx: &mut Ctx) -> Step {
    if c.rpos == c.rend {
        return Step::Stall;
    }
    match &mut c.phase {
        Phase::Dispatched | Phase::Draining => Step::Stall,
        Phase::Head => {
            let Some(ex) = c.exchange.as_mut() else {
                return Step::Stall;
            };
            if c.proxy != ProxyHeader::Done {
                return match ctx.parser.parse_proxy(&c.rbuf[c.rpos..c.rend]) {
                    ProxyOutcome::Partial => Step::Stall,
                    ProxyOutcome::Absent => {
                        c.proxy = ProxyHeader::Done;
                        Step::Progress
                    }
                    ProxyOutcome::Complete { .. } | ProxyOutcome::Error(_)
                        if c.proxy == ProxyHeader::Forbidden =>
                    {
                        c.proxy = ProxyHeader::Done;
                        respond_error(
                            c,
                            ctx,
                            403,
                            "PROXY protocol header from a peer not in proxy_allow_ips",
                        );
                        Step::Progress
                    }
                    ProxyOutcome::Complete { len, source } => {
                        c.proxy = ProxyHeader::Done;
                        c.rpos += len;
                        if let Some(addr) = source {
                            ex.req.peer = Peer::Tcp(addr);
                        }
                        Step::Progress
                    }
                    ProxyOutcome::Error(e) => {
                        respond_error(c, ctx, e.status, &e.message);
                        Step::Progress
                    }
                };
            }
            match ctx.parser.parse_head(
                &c.rbuf[c.rpos..c.rend],
                c.trusted,
                &mut c.head_progress,
                &mut ex.req,
            ) {
                HeadOutcome::Partial => Step::Stall,
                HeadOutcome::Error(e) => {
                    respond_error(c, ctx, e.status, &e.message);
                    Step::Progress
                }
                HeadOutcome::Complete(head) => {
                    if ex.req.is_connect() && !ctx.app.handles_connect() {
                        // RFC 9110 §9.3.6: CONNECT asks for a tunnel, which an application
                        // that does not handle it must never seem to grant (a 2xx). 501, as
                        // for any method the server does not implement (RFC 9110 §9.1), and
                        // nothing after it on the connection is read.
                        respond_error(c, ctx, 501, "CONNECT is not supported here");
                        return Step::Progress;
                    }
                    c.rpos += head.len;
                    ex.started = ctx.now;
                    ex.keep_alive = head.keep_alive && ctx.cfg.keepalive.is_some();
                    c.client_closing = !head.keep_alive;
                    // No body, or `Content-Length: 0`: complete now (no more input may ever
                    // come, and the body phase only runs when bytes arrive).
                    let Some(decoder) = head.decoder else {
                        ex.req.body.clear();
                        dispatch(c, ctx);
                        return Step::Progress;
                    };
                    let reuse = ex.req.body.take_buffer();
                    // RFC 9110 §10.1.1: send 100 only when no body bytes have arrived yet.
                    if head.expect_continue && c.rpos == c.rend {
                        c.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    // With a pool, a large body is streamed to the application (RequestBody).
                    let streamable = ctx.pool.is_some()
                        && match head.framing {
                            Framing::Chunked => true,
                            Framing::Length(n) => n > RequestBody::MEMORY_LIMIT as u64,
                            Framing::None => false,
                        };
                    c.phase = Phase::Body {
                        decoder,
                        spool: Spool::new(reuse),
                        streamable,
                        length: match head.framing {
                            Framing::Length(n) => Some(n),
                            _ => None,
                        },
                    };
                    c.deadline = ctx.now + ctx.cfg.header_timeout;
                    c.start_body_clock(ctx.now);
                    Step::Progress
                }
            }
        }
        Phase::Streaming {
            decoder,
            pipe,
            paused,
        } => {
            if *paused {
                return Step::Stall;
            }
            let mut data = Vec::new();
            let input = &c.rbuf[c.rpos..c.rend];
            match decoder.decode(input, &mut |bytes| data.extend_from_slice(bytes)) {
                Err(e) => {
                    c.rpos = c.rend;
                    break_stream(c, e.status, e.message);
                    Step::Progress
                }
                Ok(d) => {
                    c.rpos += d.consumed;
                    *paused = pipe.push(data);
                    if d.done {
                        pipe.finish();
                        c.phase = Phase::Dispatched;
                        return Step::Progress;
                    }
                    if d.consumed > 0 {
                        Step::Progress
                    } else {
                        Step::Stall
                    }
                }
            }
        }
        Phase::Body {
            decoder,
            spool,
            streamable,
            ..
        } => {
            let input = &c.rbuf[c.rpos..c.rend];
            let decoded = decoder.decode(input, &mut |bytes| spool.push(bytes));
            match decoded {
                Err(e) => {
                    respond_error(c, ctx, e.status, &e.message);
                    Step::Progress
                }
                Ok(d) => {
                    c.rpos += d.consumed;
                    if let Some(e) = spool.error.take() {
                        tracing::error!("cannot store a request body: {e}");
                        respond_error(c, ctx, 500, "cannot store the request body");
                        return Step::Progress;
                    }
                    if !d.done {
                        if d.consumed > 0 && *streamable && spool.file.is_none() {
                            start_streaming(c, ctx);
                        }
                        return if d.consumed > 0 {
                            Step::Progress
                        } else {
                            Step::Stall
                        };
                    }
                    let Phase::Body { spool, .. } = std::mem::replace(&mut c.phase, Phase::Head)
                    else {
                        return Step::Stall;
                    };
                    let body = match spool.file {
                        Some(f) => RequestBody::from_file(f, spool.len),
                        None => Ok(RequestBody::from_bytes(spool.mem)),
                    };
                    match (body, c.exchange.as_mut()) {
                        (Ok(body), Some(ex)) => {
                            ex.req.body = body;
                            dispatch(c, ctx);
                        }
                        (Err(e), _) => {
                            tracing::error!("cannot rewind a request body: {e}");
                            respond_error(c, ctx, 500, "cannot read the request body");
                        }
                        (_, None) => {}
                    }
                    Step::Progress
                }
            }
        }
    }
}

/// Ends a streamed body that broke off: the application's reads fail, and once it returns
/// the client gets `status` (with `Connection: close`) instead of the application's answer.
pub(crate) fn break_stream(c: &mut Conn, status: u16, message: String) {
    if let Phase::Streaming { pipe, .. } = &c.phase {
        pipe.fail(&message);
    }
    c.pending_error = Some(HttpError { status, message });
    c.phase = Phase::Dispatched;
}

/// Hands the exchange to the pool now, with a body fed through a pipe as it arrives.
fn start_streaming(c: &mut Conn, ctx: &mut Ctx) {
    let Some(pool) = &ctx.pool else {
        return;
    };
    let Phase::Body {
        decoder,
        spool,
        length,
        ..
    } = std::mem::replace(&mut c.phase, Phase::Head)
    else {
        return;
    };
    let Some(ex) = c.exchange.as_mut() else {
        return;
    };
    let pipe = Arc::new(BodyPipe::new(pool.resumer(c.slot, c.serial)));
    let paused = pipe.push(spool.mem);
    ex.req.body = RequestBody::from_pipe(Arc::clone(&pipe), length);
    dispatch(c, ctx);
    c.phase = Phase::Streaming {
        decoder,
        pipe,
        paused,
    };
}

/// Calls the application inline, or hands the exchange to the pool.
fn dispatch(c: &mut Conn, ctx: &mut Ctx) {
    let Some(mut ex) = c.exchange.take() else {
        return;
    };
    if let Some(pool) = &ctx.pool {
        c.phase = Phase::Dispatched;
        pool.submit(Job {
            slot: c.slot,
            serial: c.serial,
            work: Work::Call(ex),
        });
        return;
    }
    call_app(&*ctx.app, &mut ex);
    // The call may have taken a while: timeouts set from here on count from now.
    ctx.now = Instant::now();
    queue_response(c, ctx, &mut ex);
    c.exchange = Some(ex);
}

/// Writes the application's response into the connection's output.
pub(crate) fn queue_response(c: &mut Conn, ctx: &mut Ctx, ex: &mut Exchange) {
    if !response::headers_valid(&ex.res) {
        tracing::error!(
            target = ex.req.target(),
            "application answered an invalid status or header: sending 500"
        );
        ex.res.reset();
        ex.res.plain(500, "internal server error\n");
    }
    ctx.requests += 1;
    if ctx.cfg.max_requests > 0 && ctx.requests >= ctx.cfg.max_requests {
        ctx.max_requests_reached = true;
    }
    let method = if ex.req.is_head() {
        Method::Head
    } else if ex.req.is_connect() {
        Method::Connect
    } else {
        Method::Other
    };
    let version = ex.req.version();
    let keep_alive = ex.keep_alive && !ctx.stopping && !ctx.max_requests_reached && !c.read_closed;
    let p = plan(&ex.res, method, version, keep_alive);
    ctx.heads
        .write(&mut c.wbuf, &ex.res, &p, version, &ctx.date);
    let body = std::mem::replace(&mut ex.res.body, Body::Empty);
    let body_len = if p.send_body { body.len() } else { Some(0) };
    if p.send_body {
        match body {
            Body::Empty => {}
            Body::Static(b) => c.wbuf.extend_from_slice(b),
            Body::Bytes(b) if b.len() <= COPY_BODY_MAX => c.wbuf.extend_from_slice(&b),
            other => {
                // A head and its body in separate writes: without TCP_NODELAY, Nagle would
                // hold the body's last small segment until the head is acknowledged. A
                // response that is one write does not need it, so the option is set only
                // here, once per connection (as nginx does), saving a syscall per
                // connection for small answers.
                if !c.nodelay {
                    c.nodelay = true;
                    c.stream.set_nodelay();
                }
                c.out = OutBody::from_body(
                    other,
                    p.framing == response::Framing::Chunked,
                    ctx.pool.is_some(),
                )
            }
        }
    }
    if !p.keep_alive {
        c.close_after_write = true;
    }
    if let Some(log) = &mut ctx.log {
        log.log(&LogEntry {
            req: &ex.req,
            res: &ex.res,
            body_bytes: body_len,
            started: ex.started,
            now_secs: ctx.date.secs(),
        });
    }
}
