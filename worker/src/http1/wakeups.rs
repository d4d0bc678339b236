//! What the loop tells a connection besides readiness: the pool finished a call or read a
//! piece of a streamed response body, or the connection's deadline passed (the tick).

use std::io::{self, Read};

use super::{
    break_stream, drive, queue_response, respond_error, Conn, Ctx, Exchange, OutBody, Phase, LINGER,
};

/// The application returned from a call made on the pool. Returns false when the connection
/// must be closed.
pub(crate) fn call_returned(c: &mut Conn, ctx: &mut Ctx, mut ex: Box<Exchange>) -> bool {
    if !matches!(c.phase, Phase::Dispatched | Phase::Streaming { .. }) {
        return true;
    }
    let mid_body = match &c.phase {
        Phase::Streaming { pipe, .. } => {
            // Answered before the whole body arrived: the rest is not read (the connection
            // closes after the answer, RFC 9112 §9.6 allows it).
            pipe.fail("the application answered before reading the whole body");
            true
        }
        _ => false,
    };
    c.phase = Phase::Head;
    if let Some(e) = c.pending_error.take() {
        // Back first, so that the error is counted under the request's method.
        c.exchange = Some(ex);
        respond_error(c, ctx, e.status, &e.message);
        return drive(c, ctx);
    } else {
        if mid_body {
            ex.keep_alive = false;
            // The client is still sending the body: linger.
            ex.client_last = false;
        }
        queue_response(c, ctx, &mut ex);
    }
    c.exchange = Some(ex);
    drive(c, ctx)
}

/// A pool thread read the next piece of a streamed response body (`reader` comes back with
/// it). Returns false when the connection must be closed.
pub(crate) fn piece_read(
    c: &mut Conn,
    ctx: &mut Ctx,
    reader: Box<dyn Read + Send>,
    piece: io::Result<Vec<u8>>,
) -> bool {
    match (piece, &mut c.out) {
        (
            Ok(data),
            Some(OutBody::Stream {
                reader: slot,
                ready,
                ..
            }),
        ) => {
            *slot = Some(reader);
            *ready = Some(data);
            drive(c, ctx)
        }
        (Err(e), _) => {
            tracing::debug!("streamed response body failed: {e}");
            false
        }
        (Ok(_), _) => true,
    }
}

/// Applies the connection's deadline at `ctx.now`, on the loop's tick. Returns false when
/// the connection must be closed.
pub(crate) fn check_deadline(c: &mut Conn, ctx: &mut Ctx) -> bool {
    if matches!(c.phase, Phase::WebSocket(_)) {
        return crate::ws::check_deadline(c, ctx);
    }
    let now = ctx.now;
    if matches!(c.phase, Phase::Deferred(_)) {
        return super::deferred::check_deadline(c, ctx);
    }
    if c.awaiting_piece() {
        // The application owes the next piece of its streamed body: `timeout`.
        if let Some(timeout) = ctx.cfg.piece_timeout.filter(|_| now >= c.deadline) {
            tracing::error!(
                "the application's response body gave no data for {}s: closing the connection",
                timeout.as_secs_f64()
            );
            return false;
        }
        return true;
    }
    // The application is at work on a call: `timeout` in the arbiter bounds that (a silent
    // loop, or every pool thread stuck), not the client's deadlines.
    if now < c.deadline
        || matches!(
            c.phase,
            Phase::Dispatched | Phase::Streaming { paused: true, .. }
        )
    {
        return true;
    }
    if matches!(c.phase, Phase::Streaming { .. }) {
        // RFC 9110 §15.5.9: the body did not arrive in time.
        break_stream(c, 408, "request body timeout".into());
        return true;
    }
    match c.phase {
        Phase::Draining => false,
        _ if c.output_pending() => false,
        _ if c.is_idle() => false,
        _ => {
            // RFC 9110 §15.5.9: 408 for a request not completed in time.
            respond_error(c, ctx, 408, "request timeout");
            c.deadline = now + LINGER;
            drive(c, ctx)
        }
    }
}
