//! Writing the application's response into a connection's output: the head, the body or
//! what remains of it to send, whether the connection stays open, the access log line and
//! the statsd lines.

use super::{Conn, Ctx, Exchange, OutBody, ReadSide, WriteSide};
use crate::access_log::LogEntry;
use crate::app::Body;
use crate::metrics;
use crate::response::{self, plan, Method};

/// Owned bodies up to this size are copied behind the head so that both go out in one write.
const COPY_BODY_MAX: usize = 16 * 1024;

/// Writes the application's response into the connection's output.
pub(crate) fn queue_response(c: &mut Conn, ctx: &mut Ctx, ex: &mut Exchange) {
    if let Some(upgrade) = ex.res.websocket.take() {
        if crate::ws::start(c, ctx, ex, upgrade) {
            count_answer(c, ctx, ex, 101);
            return;
        }
    }
    if !response::headers_valid(&ex.res) {
        tracing::error!(
            target = ex.req.target(),
            "application answered an invalid status or header: sending 500"
        );
        ex.res.reset();
        ex.res.plain(500, "internal server error\n");
    }
    count_answer(c, ctx, ex, ex.res.status);
    count_request(ctx);
    let method = if ex.req.is_head() {
        Method::Head
    } else if ex.req.is_connect() {
        Method::Connect
    } else {
        Method::Other
    };
    let version = ex.req.version();
    let keep_alive =
        ex.keep_alive && !ctx.stopping && !ctx.max_requests_reached && c.read != ReadSide::Closed;
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
        c.write = if ex.client_last {
            WriteSide::CloseAfterLast
        } else {
            WriteSide::CloseLingering
        };
    }
    log_exchange(ctx, ex, body_len);
}

/// Counts a response for the metrics: its method, `status` and duration, and the request
/// no longer in flight. Inlined in both callers: out of line it costs the response path a
/// call and its spills.
#[inline(always)]
fn count_answer(c: &mut Conn, ctx: &Ctx, ex: &Exchange, status: u16) {
    let started = std::mem::take(&mut c.in_flight);
    ctx.metrics.answered(
        started,
        metrics::method_of(&ex.req),
        status,
        ctx.now_ns.wrapping_sub(ex.started_ns),
    );
}

/// Counts an answered request against `max_requests`.
pub(crate) fn count_request(ctx: &mut Ctx) {
    ctx.requests += 1;
    if ctx.cfg.max_requests > 0 && ctx.requests >= ctx.cfg.max_requests {
        ctx.max_requests_reached = true;
    }
}

/// Writes the access log line of an exchange whose response carries `body_len` bytes.
pub(crate) fn log_exchange(ctx: &mut Ctx, ex: &Exchange, body_len: Option<u64>) {
    if let Some(log) = &mut ctx.log {
        log.log(&LogEntry {
            req: &ex.req,
            res: &ex.res,
            body_bytes: body_len,
            started: ex.started,
            now_secs: ctx.date.secs(),
        });
    }
    if let Some(statsd) = &mut ctx.statsd {
        statsd.request(ex.res.status, ex.started.elapsed());
    }
}
