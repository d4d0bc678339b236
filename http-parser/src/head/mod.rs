//! The request head parser: [`HeadParser`], its entry points [`HeadParser::parse`] and
//! [`HeadParser::parse_resuming`], and the per-connection [`Progress`]. Each entry point tries
//! the fast path (`fast.rs`) and leaves every head it declines to the reference path
//! (`reference.rs`), which decides every verdict; the [`Head`] both return is in `parsed.rs`.
//!
//! The other files: `request_line.rs` (the request line's grammar, also judged on a prefix),
//! `semantics.rs` (what the fields mean: framing, persistence, Host, Expect, scheme headers).

mod fast;
mod parsed;
mod reference;
mod request_line;
mod semantics;

pub use parsed::{Head, Header, Headers, Version};
pub use reference::MAX_LEADING_EMPTY_LINES;
pub use semantics::SECURE_SCHEME_HEADERS;

use crate::error::Error;
use crate::fields::{line_size, FieldSpan, Resume};
use crate::limits::{Limits, Policy};
use fast::FAST_PATH_MAX_FIELDS;
use parsed::HeadState;
use request_line::{stays_open, LinePrefix};
use std::mem::MaybeUninit;

/// The outcome of feeding bytes to a push parser.
#[derive(Debug)]
pub enum Status<T> {
    /// Not enough bytes yet: call again with the same bytes and more appended.
    Partial,
    /// Done: the value and how many bytes of the input it consumed.
    Complete(T, usize),
}

/// A push parser for request heads. Keep one per connection: it owns the scratch space that
/// the returned [`Head`] borrows, so parsing allocates nothing per header once warmed up.
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: Limits,
    policy: Policy,
    fields: Vec<FieldSpan>,
    scratch: Vec<u8>,
    fast_path: bool,
    /// Storage httparse fills on the fast path: the field limit plus one (so that one field
    /// too many is seen), capped at [`FAST_PATH_MAX_FIELDS`] plus one. Each slot always holds
    /// an initialized `Header`, but the first `dirty_slots` may borrow an earlier buffer, so
    /// they are never read as `Header<'static>` (see `parse_fast` and `Head::slots`).
    header_slots: Vec<MaybeUninit<httparse::Header<'static>>>,
    dirty_slots: usize,
    /// The effective limits, resolved once for the fast path: request line (`usize::MAX` for
    /// none), field count, field size.
    request_line_limit: usize,
    fields_limit: usize,
    field_size_limit: usize,
    head: HeadState,
    /// Set by the reference path when it answers `Partial` inside a line.
    pending: Option<Pending>,
}

/// Where a partial head stopped, for [`HeadParser::parse_resuming`]: keep one per connection
/// (it is small and `Copy`), start with `Progress::default()`, and pass it with that
/// connection's buffer each time. With it, the next call need not parse the head again from
/// its start while no line ends, so a client sending a large head a byte at a time costs
/// linear time instead of a full re-parse per byte (quadratic).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pending: Option<Pending>,
}

/// See [`Progress`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The length of the buffer last seen.
    seen: usize,
    /// The start of the incomplete line and the bytes its field held before it.
    resume: Resume,
    /// The largest size the line may reach ([`line_size`] plus `resume.base`).
    limit: usize,
    /// For the request line, what its bytes so far said ([`check_line_prefix`]): while its
    /// method or target is open, new bytes may decide it, so they must continue it to keep
    /// the verdict `Partial`.
    request_line: Option<LinePrefix>,
}

impl HeadParser {
    /// A parser enforcing `limits` and `policy`.
    pub fn new(limits: Limits, policy: Policy) -> Self {
        let slots = limits.fields_limit().min(FAST_PATH_MAX_FIELDS) + 1;
        HeadParser {
            limits,
            policy,
            fields: Vec::with_capacity(32),
            scratch: Vec::new(),
            fast_path: true,
            header_slots: vec![MaybeUninit::new(httparse::EMPTY_HEADER); slots],
            dirty_slots: 0,
            request_line_limit: limits.request_line_limit().unwrap_or(usize::MAX),
            fields_limit: limits.fields_limit(),
            field_size_limit: limits.field_size_limit(),
            head: HeadState::EMPTY,
            pending: None,
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The policy this parser applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Changes the policy, e.g. [`Policy::trust_scheme_headers`] for a new peer.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Parses the request head at the start of `buf`, the bytes received so far.
    ///
    /// Returns [`Status::Partial`] when `buf` is a prefix of a head that may still be valid:
    /// call again once more bytes arrived, with the same bytes and the new ones. The parser
    /// keeps no state between calls, so one parser may serve many connections; to avoid
    /// re-parsing a long partial head on every call, use [`HeadParser::parse_resuming`].
    ///
    /// Returns [`Status::Complete`] with the head and the number of bytes it spans (the body,
    /// if any, starts there).
    ///
    /// Fails with the [`Error`] that answers the request; the verdict does not depend on how
    /// the bytes were split. Limits are enforced on partial input too, so with non-zero limits
    /// the caller needs no buffer limit of its own for the head, and so are the method and the
    /// target: input that cannot begin a request line (a byte that is not a token character
    /// before the first SP, as in a TLS ClientHello, a method the policy refuses, a control
    /// byte in the target) fails as soon as the byte that decides it arrives.
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Result<Status<Head<'a>>, Error> {
        if let Some(end) = self.parse_fast(buf) {
            // `parse_fast` stored this head's state (see `Head::slots`).
            return Ok(Status::Complete(Head { buf, parser: self }, end));
        }
        self.parse_reference_head(buf, &mut Progress::default())
    }

    /// [`HeadParser::parse`], resuming where the last call on this connection stopped.
    ///
    /// `progress` belongs to the connection whose bytes `buf` holds: after `Partial`, the next
    /// call must pass the same bytes with more appended (the buffer may move; its content may
    /// not change). While no LF arrives, only the incomplete line's size is checked; once one
    /// does, the head is parsed from its start, so the verdict is the one
    /// [`HeadParser::parse`] gives. `progress` is cleared on `Complete` and on errors; reset it
    /// to `Progress::default()` before the connection's next request.
    pub fn parse_resuming<'a>(
        &'a mut self,
        buf: &'a [u8],
        progress: &mut Progress,
    ) -> Result<Status<Head<'a>>, Error> {
        if let Some(pending) = progress.pending.take() {
            // While no LF arrives, the new bytes only lengthen the incomplete line: the verdict
            // stays `Partial` unless that line outgrows its limit (then the full parse below
            // finds the first error in byte order, as it would have).
            if let Some(new) = buf.get(pending.seen..) {
                let line = &buf[pending.resume.line_start..];
                if memchr::memchr(b'\n', new).is_none()
                    && pending.resume.base + line_size(line) <= pending.limit
                    && stays_open(pending.request_line, line, new, &self.policy)
                {
                    progress.pending = Some(Pending {
                        seen: buf.len(),
                        ..pending
                    });
                    return Ok(Status::Partial);
                }
            }
        }
        if let Some(end) = self.parse_fast(buf) {
            // `parse_fast` stored this head's state (see `Head::slots`).
            return Ok(Status::Complete(Head { buf, parser: self }, end));
        }
        self.parse_reference_head(buf, progress)
    }

    /// Turns the fast path off (`false`) or on, so that tests and the fuzz target can check
    /// that both paths agree. Not for production use.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parser_serves_interleaved_connections() {
        // Regression: the resume point once lived in the parser, so a partial head on one
        // connection made the next call, with another connection's bytes, answer `Partial`
        // for a complete head (its end lay before the first connection's resume offset).
        let a = b"GET /a HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let b = b"POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 40\r\n\r\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        let (mut pa, mut pb) = (Progress::default(), Progress::default());
        assert!(matches!(
            parser.parse_resuming(&a[..], &mut pa),
            Ok(Status::Partial)
        ));
        assert!(matches!(
            parser.parse_resuming(&b[..], &mut pb),
            Ok(Status::Complete(_, 49))
        ));
        assert!(matches!(parser.parse(&a[..]), Ok(Status::Partial)));
        assert!(matches!(parser.parse(&b[..]), Ok(Status::Complete(_, 49))));
        // Resuming connection a still works.
        let mut a_full = a.to_vec();
        a_full.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            parser.parse_resuming(&a_full, &mut pa),
            Ok(Status::Complete(_, n)) if n == a_full.len()
        ));
    }
}
