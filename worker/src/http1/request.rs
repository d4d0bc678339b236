//! Reading requests: the PROXY header, the head, the body (received whole, or streamed to an
//! application already running on the pool), then the call. One function per phase.

use std::sync::Arc;

use super::{queue_response, respond_error, Conn, Ctx, Phase, Spool};
use crate::app::{BodyPipe, Peer, RequestBody};
use crate::clock::Moment;
use crate::pool::{call_app, Job, Work};
use crate::proto::{Framing, Head, HeadOutcome, HttpError, ProxyHeader, ProxyOutcome};

/// What processing buffered input achieved.
pub(super) enum Step {
    Progress,
    Stall,
}

impl Step {
    /// `Progress` if some input was consumed.
    fn consumed(n: usize) -> Step {
        if n > 0 {
            Step::Progress
        } else {
            Step::Stall
        }
    }
}

/// Consumes buffered input: parses a head, receives a body, calls the application.
pub(super) fn process(c: &mut Conn, ctx: &mut Ctx) -> Step {
    if c.rpos == c.rend {
        return Step::Stall;
    }
    match c.phase {
        Phase::Dispatched | Phase::Draining | Phase::Deferred(_) | Phase::WebSocket(_) => {
            Step::Stall
        }
        // The exchange is on the pool (not in this phase in practice).
        Phase::Head if c.exchange.is_none() => Step::Stall,
        Phase::Head if c.proxy != ProxyHeader::Done => read_proxy_header(c, ctx),
        Phase::Head => read_head(c, ctx),
        Phase::Body { .. } => receive_body(c, ctx),
        Phase::Streaming { .. } => feed_stream(c),
    }
}

/// Reads the PROXY protocol header a connection may start with.
fn read_proxy_header(c: &mut Conn, ctx: &mut Ctx) -> Step {
    let outcome = ctx.parser.parse_proxy(&c.rbuf[c.rpos..c.rend]);
    match outcome {
        ProxyOutcome::Partial => return Step::Stall,
        ProxyOutcome::Complete { .. } | ProxyOutcome::Error(_)
            if c.proxy == ProxyHeader::Forbidden =>
        {
            respond_error(
                c,
                ctx,
                403,
                "PROXY protocol header from a peer not in proxy_allow_ips",
            );
        }
        ProxyOutcome::Absent => end_prelude(c),
        ProxyOutcome::Complete { len, source } => {
            c.rpos += len;
            if let (Some(addr), Some(ex)) = (source, c.exchange.as_mut()) {
                ex.req.peer = Peer::Tcp(addr);
            }
            end_prelude(c);
        }
        ProxyOutcome::Error(e) => respond_error(c, ctx, e.status, &e.message),
    }
    c.proxy = ProxyHeader::Done;
    Step::Progress
}

/// On a TLS listener the PROXY header precedes the session: what was read after it is the
/// session's first bytes, handed back to the TLS layer and read again through it.
fn end_prelude(c: &mut Conn) {
    if c.stream.end_prelude(&c.rbuf[c.rpos..c.rend]) {
        c.rpos = c.rend;
        c.read.rearm();
    }
}

/// Parses (more of) a request head into the connection's request.
fn read_head(c: &mut Conn, ctx: &mut Ctx) -> Step {
    let Some(ex) = c.exchange.as_mut() else {
        return Step::Stall;
    };
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
            start_request(c, ctx, head);
            Step::Progress
        }
    }
}

/// After a complete head: calls the application at once if no body follows, else starts
/// receiving the body.
fn start_request(c: &mut Conn, ctx: &mut Ctx, head: Head) {
    let Some(ex) = c.exchange.as_mut() else {
        return;
    };
    let limit = ctx.cfg.limit_concurrency;
    if limit != 0 && ctx.metrics.in_flight() >= limit {
        refuse_over_limit(c, ctx, head.len);
        return;
    }
    ctx.metrics.request_started();
    c.in_flight = true;
    if ex.req.is_connect() && !ctx.app.handles_connect() {
        // RFC 9110 §9.3.6: CONNECT asks for a tunnel, which an application that does not
        // handle it must never seem to grant (a 2xx). 501, as for any method the server does
        // not implement (RFC 9110 §9.1), and nothing after it on the connection is read.
        respond_error(c, ctx, 501, "CONNECT is not supported here");
        return;
    }
    c.rpos += head.len;
    ex.started = ctx.now;
    ex.keep_alive = head.keep_alive && ctx.cfg.keepalive.is_some();
    ex.client_last = !head.keep_alive;
    // No body, or `Content-Length: 0`: complete now (no more input may ever come, and the
    // body phase only runs when bytes arrive).
    let Some(decoder) = head.decoder else {
        ex.req.body.clear();
        dispatch(c, ctx);
        return;
    };
    let reuse = ex.req.body.take_buffer();
    // RFC 9110 §10.1.1: send 100 only when no body bytes have arrived yet.
    if head.expect_continue && c.rpos == c.rend {
        c.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    // With a pool, a large body is streamed to the application (RequestBody).
    let streamable = (ctx.pool.is_some() || ctx.deferred.is_some())
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
}

/// `limit_concurrency` requests are in progress: answers 503 with `Retry-After` at once
/// (RFC 9110 §15.6.4) instead of queueing the request, and closes the connection after
/// it, without reading a body that may follow.
#[cold]
fn refuse_over_limit(c: &mut Conn, ctx: &mut Ctx, head_len: usize) {
    let Some(mut ex) = c.exchange.take() else {
        return;
    };
    ctx.metrics.refused();
    c.rpos += head_len;
    ex.started = ctx.now;
    ex.keep_alive = false;
    ex.client_last = false;
    ex.req.body.clear();
    ex.res.reset();
    ex.res.header("Retry-After", "1");
    ex.res
        .plain(503, "service unavailable: too many requests in progress\n");
    queue_response(c, ctx, &mut ex);
    c.exchange = Some(ex);
    // Nothing after it is answered: what follows on the connection is drained.
    c.rpos = c.rend;
}

/// Receives (more of) a body before the call: in memory, or in a temporary file beyond
/// `RequestBody::MEMORY_LIMIT`; a streamable body is handed to the pool once it does not
/// come at once.
fn receive_body(c: &mut Conn, ctx: &mut Ctx) -> Step {
    let Phase::Body {
        decoder,
        spool,
        streamable,
        ..
    } = &mut c.phase
    else {
        return Step::Stall;
    };
    let input = &c.rbuf[c.rpos..c.rend];
    let d = match decoder.decode(input, &mut |bytes| spool.push(bytes)) {
        Ok(d) => d,
        Err(e) => {
            respond_error(c, ctx, e.status, &e.message);
            return Step::Progress;
        }
    };
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
        return Step::consumed(d.consumed);
    }
    let Phase::Body { spool, .. } = std::mem::replace(&mut c.phase, Phase::Head) else {
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

/// Feeds (more of) a streamed body to the application through its pipe, unless the
/// application is behind.
fn feed_stream(c: &mut Conn) -> Step {
    let Phase::Streaming {
        decoder,
        pipe,
        paused,
    } = &mut c.phase
    else {
        return Step::Stall;
    };
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
            Step::consumed(d.consumed)
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
    if ctx.deferred.is_some() {
        return super::deferred::start_streaming(c, ctx);
    }
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
    if ctx.deferred.is_some() {
        return super::deferred::dispatch(c, ctx, None);
    }
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
    ctx.now = Moment::now();
    queue_response(c, ctx, &mut ex);
    c.exchange = Some(ex);
}
