//! The request head: [`HeadParser`] (push parser, reusable per connection) and the [`Head`] it
//! returns, which borrows from the caller's buffer.

use crate::body::{BodyDecoder, Framing};
use crate::error::{Error, ErrorKind};
use crate::fields::{line_size, parse_fields, FieldSpan, Resume, Rules, ValueLoc};
use crate::limits::{Limits, Policy, UnderscoreHeaders};
use crate::syntax::{
    check_host, check_host_block, check_line_start, check_target, is_target_byte_under, is_tchar,
    name_has_underscore, scan_target, trim_ows, TargetForm,
};
use std::mem::MaybeUninit;

/// The outcome of feeding bytes to a push parser.
#[derive(Debug)]
pub enum Status<T> {
    /// Not enough bytes yet: call again with the same bytes and more appended.
    Partial,
    /// Done: the value and how many bytes of the input it consumed.
    Complete(T, usize),
}

/// The HTTP version of a request. Only HTTP/1.x is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1, or a later 1.x minor version (RFC 9110 §2.5: processed as the highest minor
    /// version we conform to).
    Http11,
}

impl Version {
    /// `(major, minor)`: `(1, 0)` or `(1, 1)`.
    pub fn as_tuple(self) -> (u8, u8) {
        match self {
            Version::Http10 => (1, 0),
            Version::Http11 => (1, 1),
        }
    }

    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field as received: the name as sent (a token, so ASCII) and the value without
/// leading or trailing whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name, in the case the client sent.
    pub name: &'a str,
    /// The field value, trimmed of surrounding spaces and tabs. It may hold obs-text bytes
    /// (>= 0x80); it holds no control bytes.
    pub value: &'a [u8],
}

/// Where the method lives: the buffer, or (casefolded) the parser's scratch.
#[derive(Debug, Clone, Copy)]
enum MethodLoc {
    Buf(usize, usize),
    Scratch(usize, usize),
}

/// `HTTP/1.1` and `HTTP/1.0`, read as little-endian words.
const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");

/// At most this many empty lines may precede a request line (RFC 9112 §2.2 asks servers to
/// ignore "at least one"; a few cover clients that add CRLF after a body).
pub const MAX_LEADING_EMPTY_LINES: usize = 8;

/// The longest method accepted without [`Policy::permit_unconventional_http_method`]
/// (gunicorn's bound).
const CONVENTIONAL_METHOD_LEN: std::ops::RangeInclusive<usize> = 3..=20;

/// Heads with more fields than this (under a larger [`Limits::fields`]) take the reference
/// path, so a parser's fast-path storage stays small (32 bytes a field).
const FAST_PATH_MAX_FIELDS: usize = 1024;

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

/// A complete, validated request head. It borrows the input buffer and the parser (which
/// holds the field offsets and what the head says); copy what you need before parsing again.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    buf: &'a [u8],
    parser: &'a HeadParser,
}

/// Where the last complete head's fields are.
#[derive(Debug, Clone, Copy)]
enum FieldStore {
    /// In [`HeadParser::fields`] (the reference path).
    Spans,
    /// The first `n` of [`HeadParser::header_slots`], as httparse filled them for this head
    /// (the fast path, which copies nothing: see [`Head::slots`]).
    Slots(usize),
}

/// What the last complete head says, as offsets into the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
struct HeadState {
    fields: FieldStore,
    method: MethodLoc,
    target: (usize, usize),
    target_form: TargetForm,
    version: Version,
    framing: Framing,
    keep_alive: bool,
    expects_continue: bool,
    host: Option<ValueLoc>,
    forwarded_secure: Option<bool>,
}

impl HeadState {
    const EMPTY: HeadState = HeadState {
        fields: FieldStore::Spans,
        method: MethodLoc::Buf(0, 0),
        target: (0, 0),
        target_form: TargetForm::Origin,
        version: Version::Http11,
        framing: Framing::None,
        keep_alive: false,
        expects_continue: false,
        host: None,
        forwarded_secure: None,
    };
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

    /// The head by the reference path, for [`HeadParser::parse_resuming`] once the fast path
    /// declined.
    #[inline(never)]
    fn parse_reference_head<'a>(
        &'a mut self,
        buf: &'a [u8],
        progress: &mut Progress,
    ) -> Result<Status<Head<'a>>, Error> {
        self.pending = None;
        self.fields.clear();
        self.scratch.clear();
        match self.parse_reference(buf)? {
            Some(parts) => self.finish(buf, parts),
            None => {
                progress.pending = self.pending.take();
                Ok(Status::Partial)
            }
        }
    }

    /// Turns the fast path off (`false`) or on, so that tests and the fuzz target can check
    /// that both paths agree. Not for production use.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }

    /// The fast path, for complete heads of the ordinary shape: the request line is scanned
    /// here, `httparse::parse_headers` tokenizes the field lines into `header_slots`, and two
    /// lean passes over its output add what httparse does not check (see `scan_fields`).
    /// Stores the head's state, whose fields stay in the slots (no copy: see `Head::slots`),
    /// and returns the head's length. Anything unusual (partial input, any httparse error,
    /// leading empty lines, bare LF, a limit reached, a method that is not 3 to 20 upper-case
    /// letters, a target byte outside visible ASCII (`scan_target` stops there, also at a byte
    /// of 0x80 or more, which only the reference path may accept), a target `check_target`
    /// refuses, an underscore name under
    /// [`UnderscoreHeaders::Refuse`], a Content-Length over the body limit) returns `None` and
    /// the reference path decides, so every verdict and every error status is the reference
    /// path's; the fast path only saves time, and the tests check that both paths give the
    /// same heads.
    ///
    /// httparse's `parse_headers` (its strict defaults: no whitespace before the first field or
    /// the colon, no obs-fold, no ignored lines) checks that field names are tokens and values
    /// hold no CTL but HTAB, the byte classes of `syntax.rs`. It accepts a bare LF as a line
    /// end, which we do not (RFC 9112 §2.2), so each line's CR is checked from the slice
    /// positions. The request line is ours because we judge it more strictly than httparse
    /// anyway (method rule, target form and `#`, line limit, CRLF) and httparse's request-line
    /// parse (runtime SIMD dispatch, a UTF-8 check of the target) cost more than ours does.
    ///
    /// Measured: instructions per parse (load-independent), with each request parsed 10,000
    /// times by `examples/parse_loop.rs`, which does per parse what the bench does:
    ///
    /// ```sh
    /// cargo build --release -p ferrocorn-http-parser --example parse_loop
    /// valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    ///     --toggle-collect='parse_loop::parse_*' \
    ///     target/release/examples/parse_loop ferrocorn browser 10000   # or httparse, minimal, wrk
    /// # "Collected" / 10000 = instructions per parse (loop included, on both sides)
    /// ```
    ///
    /// 10:00 UTC 2026-11-23: ours 4949 against httparse's 4064 on the 700-byte browser GET
    /// (0.82x httparse's throughput), 638 against 522 on the 27-byte GET (0.82x), and 728
    /// against 552 on wrk's `GET / HTTP/1.1` with `Host: 127.0.0.1:8000` (`parse_loop ... wrk`;
    /// 894 while a Host with a port went to the byte-at-a-time check); before this design
    /// (httparse for the whole head, fields copied into `fields`) 5937 and 1019 (0.69x, 0.51x).
    /// httparse's `parse_headers` takes ~3690 and ~270 of ours; the rest (~1250 and ~370) is
    /// per field ~40 (the two passes) and per head the request line (~60, ~120 with the
    /// 65-byte target), emptying the slots the last parse filled, the Host check and
    /// storing the state. Wall-clock, `cargo
    /// bench -p ferrocorn-http-parser --bench parse -- --warm-up-time 1 --measurement-time 3` on
    /// this shared 2-core machine (load 1-2.3, five runs 09:14-09:29 UTC): 0.71x to 0.92x on
    /// the browser GET (e.g. 290 ns against 380 ns) and 0.59x to 0.82x on the 27-byte GET (e.g.
    /// 29.6 ns against 39.1 ns): the two sides of a pair run seconds apart under a load that
    /// other builds change, so a single run says little; the counts do not move.
    fn parse_fast<'b>(&mut self, buf: &'b [u8]) -> Option<usize> {
        if !self.fast_path {
            return None;
        }
        // The request line (RFC 9112 §3): method SP request-target SP HTTP-version CRLF, from
        // offset 0 (leading empty lines go to the reference path, which bounds them).
        let method_len = match buf.get(..5)? {
            b"GET /" => 3,
            b"POST " => 4,
            _ => {
                // Upper-case letters only, 3 to 20 of them: every such method passes every
                // policy (the others are the reference path's).
                let len = buf.iter().take(21).position(|&b| b == b' ')?;
                if !CONVENTIONAL_METHOD_LEN.contains(&len)
                    || !buf[..len].iter().all(u8::is_ascii_uppercase)
                {
                    return None;
                }
                len
            }
        };
        let method = &buf[..method_len];
        let target_start = method_len + 1;
        let (target_end, has_hash) = scan_target(buf, target_start)?;
        let target = &buf[target_start..target_end];
        // `target_end` is the first byte that cannot be in a target: it must be the SP.
        let (sp, version, crlf) = match buf.get(target_end..target_end + 11)? {
            [sp, version @ .., cr, lf] => (*sp, *version.first_chunk::<8>()?, [*cr, *lf]),
            _ => return None,
        };
        if sp != b' ' || crlf != *b"\r\n" {
            return None;
        }
        let version_11 = match u64::from_le_bytes(version) {
            HTTP_11 => true,
            HTTP_10 => false,
            _ => return None,
        };
        if target.is_empty() {
            return None;
        }
        let line_end = target_end + 9;
        if line_end > self.request_line_limit {
            return None;
        }
        // The usual origin-form target, decided here; every other shape by `check_target`.
        let target_form = if target[0] == b'/'
            && method != b"CONNECT"
            && (!has_hash || self.policy.allow_fragment)
        {
            TargetForm::Origin
        } else {
            check_target(
                method,
                target,
                self.policy.allow_fragment,
                self.policy.allow_userinfo,
            )
            .ok()?
        };

        // The field lines: httparse tokenizes them (with its strict defaults: no whitespace
        // before the first field or the colon, no obs-fold, no ignored lines), checking that
        // names are tokens and values hold no CTL but HTAB, the byte classes of `syntax.rs`.
        let fields_start = line_end + 2;
        // Every slot httparse may see must hold a valid `Header`: those an earlier parse filled
        // may point into a buffer that is gone, so they are emptied first.
        let dirty = std::mem::replace(&mut self.dirty_slots, self.header_slots.len());
        for slot in &mut self.header_slots[..dirty] {
            slot.write(httparse::EMPTY_HEADER);
        }
        let (ptr, len) = (self.header_slots.as_mut_ptr(), self.header_slots.len());
        // SAFETY: the same `len` slots that `header_slots` owns, borrowed mutably for this call
        // only. Each holds a valid `Header<'static>` (`EMPTY_HEADER`, written by `new` or just
        // above), so also a valid `Header<'b>` (one layout; only the lifetime shrinks).
        // httparse writes headers borrowing `buf` into them; they are read here, and later only
        // by `Head::slots`, for the head whose state this call stores (which holds this same
        // `buf`). `dirty_slots` counts the slots that may have been written.
        let slots: &mut [httparse::Header<'b>] =
            unsafe { std::slice::from_raw_parts_mut(ptr.cast(), len) };
        let (fields_len, count) = match httparse::parse_headers(&buf[fields_start..], slots) {
            Ok(httparse::Status::Complete((fields_len, headers))) => (fields_len, headers.len()),
            _ => return None,
        };
        self.dirty_slots = count;
        let end = fields_start + fields_len;
        let base = buf.as_ptr() as usize;
        let offset = |s: &[u8]| s.as_ptr() as usize - base;
        let headers = &mut slots[..count];
        if count > self.fields_limit {
            return None;
        }
        let mut special = SpecialFields::default();
        let dropped = scan_fields(
            buf,
            headers,
            fields_start..end - 2,
            self.field_size_limit,
            self.policy.header_map,
            version_11,
            &mut special,
        )?;
        let mut kept = count;
        if dropped {
            // UnderscoreHeaders::Drop (rare): move the kept fields down over the dropped ones.
            kept = 0;
            for i in 0..count {
                let name = headers[i].name.as_bytes();
                if !name_has_underscore(buf, offset(name), name.len()) {
                    headers[kept] = headers[i];
                    kept += 1;
                }
            }
        }
        let headers = &headers[..kept];
        // RFC 9112 §3.2 (Host), §6.1 and §6.3 items 3-4 (framing): see `analyze_fields`.
        if special.host.is_none() && version_11 && self.policy.require_host {
            return None;
        }
        let framing = if special.chunked {
            if !version_11 || special.content_length.is_some() {
                return None;
            }
            Framing::Chunked
        } else {
            match special.content_length {
                None => Framing::None,
                Some(n) => {
                    // Over the body limit: the reference path answers 413.
                    if self.limits.body_limit().is_some_and(|limit| n > limit) {
                        return None;
                    }
                    Framing::Length(n)
                }
            }
        };
        let forwarded_secure = if self.policy.trust_scheme_headers {
            scheme_headers_say(headers.iter().map(|h| (h.name.as_bytes(), h.value))).ok()?
        } else {
            None
        };

        self.head = HeadState {
            fields: FieldStore::Slots(kept),
            method: MethodLoc::Buf(0, method_len),
            target: (target_start, target_end),
            target_form,
            version: if version_11 {
                Version::Http11
            } else {
                Version::Http10
            },
            framing,
            keep_alive: special.connection.keep_alive(version_11),
            expects_continue: special.expects_continue,
            host: special.host,
            forwarded_secure,
        };
        Some(end)
    }

    /// The reference path: parses the head line by line, judging each line in byte order
    /// (see `fields.rs`), so that a prefix of the input is `Partial` or fails exactly as the
    /// whole would. Returns `None` for `Partial`.
    #[inline(never)]
    fn parse_reference(&mut self, buf: &[u8]) -> Result<Option<HeadParts>, Error> {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        let mut pos = 0;
        let mut empty_lines = 0;
        loop {
            match buf.get(pos..pos + 2) {
                Some(b"\r\n") => {
                    empty_lines += 1;
                    if empty_lines > MAX_LEADING_EMPTY_LINES {
                        return Err(Error::new(ErrorKind::InvalidRequestLine));
                    }
                    pos += 2;
                }
                None if buf.get(pos) == Some(&b'\r') || pos == buf.len() => return Ok(None),
                _ => break,
            }
        }

        // The request line.
        let line_start = pos;
        let rest = &buf[pos..];
        let newline = memchr::memchr(b'\n', rest);
        let line = &rest[..newline.unwrap_or(rest.len())];
        // The method and target first, decided from the bytes so far (see `check_line_prefix`):
        // garbage that has no LF for a while (a TLS ClientHello, binary noise) is answered at
        // once instead of when the header timeout runs out.
        let prefix = check_line_prefix(line, self.limits.request_line_limit(), &self.policy)?;
        let line_len = line_size(line) - 2;
        if let Some(limit) = self.limits.request_line_limit() {
            if line_len > limit {
                return Err(Error::with_limit(
                    ErrorKind::RequestLineTooLong,
                    line_len as u64,
                    limit as u64,
                ));
            }
        }
        let Some(newline) = newline else {
            // A CR just after the method or target waits for the next byte, which decides it.
            if !line.is_empty() && prefix != LinePrefix::AwaitingCr {
                self.pending = Some(Pending {
                    seen: buf.len(),
                    request_line: Some(prefix),
                    resume: Resume {
                        line_start,
                        base: 0,
                    },
                    limit: self
                        .limits
                        .request_line_limit()
                        .map_or(usize::MAX, |limit| limit.saturating_add(2)),
                });
            }
            return Ok(None);
        };
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(Error::with_value(ErrorKind::InvalidLineEnding, line));
        };
        let line_end = line_start + line.len();
        let request_line = parse_request_line(line, &self.policy)?;

        // The field lines.
        let mut resume = None;
        let Some(end) = parse_fields(
            buf,
            line_start + newline + 1,
            Rules {
                limits: &self.limits,
                policy: &self.policy,
                forbid: None,
            },
            &mut self.fields,
            &mut self.scratch,
            &mut resume,
        )?
        else {
            self.pending = resume.map(|resume| Pending {
                seen: buf.len(),
                request_line: None,
                resume,
                limit: self.limits.field_size_limit(),
            });
            return Ok(None);
        };
        Ok(Some(self.line_parts(
            buf,
            line_start,
            line_end,
            request_line,
            end,
        )))
    }

    /// Locates the request line's pieces; upper-cases the method into the scratch buffer if
    /// the policy says so.
    #[inline(always)]
    fn line_parts(
        &mut self,
        buf: &[u8],
        line_start: usize,
        line_end: usize,
        line: RequestLine,
        end: usize,
    ) -> HeadParts {
        let method = &buf[line_start..line_start + line.method_len];
        let method_loc =
            if self.policy.casefold_http_method && method.iter().any(u8::is_ascii_lowercase) {
                let start = self.scratch.len();
                self.scratch
                    .extend(method.iter().map(u8::to_ascii_uppercase));
                MethodLoc::Scratch(start, self.scratch.len())
            } else {
                MethodLoc::Buf(line_start, line_start + method.len())
            };
        let target_start = line_start + line.method_len + 1;
        HeadParts {
            method: method_loc,
            target: (target_start, target_start + line.target_len),
            target_form: line.target_form,
            version: line.version,
            version_at: line_end - 8,
            end,
        }
    }

    /// The checks on the whole head, common to both paths, and the [`Head`].
    #[inline(never)]
    fn finish<'a>(
        &'a mut self,
        buf: &'a [u8],
        parts: HeadParts,
    ) -> Result<Status<Head<'a>>, Error> {
        let version = match parts.version {
            (1, 0) => Version::Http10,
            _ => Version::Http11,
        };
        let meta = analyze_fields(buf, &self.scratch, &self.fields, version, &self.policy)?;
        // RFC 9110 §15.6.6: 505 for a major version we do not support, once the head has
        // proved well-formed as HTTP/1.x (a malformed one is 400).
        if parts.version.0 != 1 {
            return Err(Error::with_value(
                ErrorKind::UnsupportedVersion,
                &buf[parts.version_at..parts.version_at + 8],
            ));
        }
        if let Framing::Length(n) = meta.framing {
            if let Some(limit) = self.limits.body_limit() {
                if n > limit {
                    return Err(Error::with_limit(ErrorKind::BodyTooLarge, n, limit));
                }
            }
        }
        if meta.unsupported_expectation {
            return Err(Error::new(ErrorKind::UnsupportedExpectation));
        }

        self.head = HeadState {
            fields: FieldStore::Spans,
            method: parts.method,
            target: parts.target,
            target_form: parts.target_form,
            version,
            framing: meta.framing,
            keep_alive: meta.keep_alive,
            expects_continue: meta.expects_continue,
            host: meta.host,
            forwarded_secure: meta.forwarded_secure,
        };
        // The state just stored is this head's (see `Head::slots`).
        let head = Head { buf, parser: self };
        Ok(Status::Complete(head, parts.end))
    }
}

/// The request line's pieces as offsets into the buffer, and the end of the head.
struct HeadParts {
    method: MethodLoc,
    target: (usize, usize),
    target_form: TargetForm,
    version: (u8, u8),
    /// Where the 8-byte version starts.
    version_at: usize,
    end: usize,
}

/// A token as `&str`: a method or field name, which both paths checked to be a token
/// (`tchar` bytes, all ASCII) before any [`Head`] could hand it out.
fn ascii_str(token: &[u8]) -> &str {
    debug_assert!(
        token.iter().all(|&b| crate::syntax::is_tchar(b)),
        "{token:?}"
    );
    // SAFETY: a token is ASCII (RFC 9110 §5.6.2), so valid UTF-8: `check_method` and
    // `split_name` (reference path) and httparse (fast path, which also hands out its names as
    // `&str`) accept only tchar bytes, and the method is upper-cased only within ASCII.
    unsafe { std::str::from_utf8_unchecked(token) }
}

/// A method the policy's defaults accept: 3 to 20 bytes without lower case or `#` (gunicorn's
/// rule; the caller checked it is a token). The common methods answer without the loop.
#[inline(always)]
fn is_conventional_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"POST" | b"HEAD" | b"PUT")
        || (CONVENTIONAL_METHOD_LEN.contains(&method.len())
            && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#'))
}

struct RequestLine {
    method_len: usize,
    target_len: usize,
    target_form: TargetForm,
    version: (u8, u8),
}

/// Parses `method SP request-target SP HTTP-version` (RFC 9112 §3), without its CRLF.
fn parse_request_line(line: &[u8], policy: &Policy) -> Result<RequestLine, Error> {
    let invalid = || Error::with_value(ErrorKind::InvalidRequestLine, line);
    let method_len = line.iter().position(|&b| b == b' ').ok_or_else(invalid)?;
    let method = &line[..method_len];
    check_method(method, line, policy)?;

    let rest = &line[method_len + 1..];
    let target_len = rest.iter().position(|&b| b == b' ').ok_or_else(invalid)?;
    let target = &rest[..target_len];
    if target.is_empty() {
        return Err(invalid());
    }
    if !target
        .iter()
        .all(|&b| is_target_byte_under(b, policy.allow_non_ascii_target))
    {
        return Err(Error::with_value(ErrorKind::InvalidTarget, target));
    }
    let version = parse_version(&rest[target_len + 1..])?;
    let target_form = check_target(method, target, policy.allow_fragment, policy.allow_userinfo)?;
    Ok(RequestLine {
        method_len,
        target_len,
        target_form,
        version,
    })
}

/// Checks the method: a token (RFC 9110 §9.1), and unless the policy permits unconventional
/// methods, 3 to 20 bytes without lower case or `#`, as gunicorn checks.
fn check_method(method: &[u8], line: &[u8], policy: &Policy) -> Result<(), Error> {
    let bad = || Error::with_value(ErrorKind::InvalidMethod, line);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad());
    }
    if !policy.permit_unconventional_http_method && !is_conventional_method(method) {
        return Err(bad());
    }
    Ok(())
}

/// What the bytes of a request line so far say about its method and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinePrefix {
    /// Only tchars so far, none the method rules refuse: more bytes may still decide it.
    MethodOpen,
    /// An acceptable method and SP, then only target bytes so far.
    TargetOpen,
    /// An acceptable method or method and target, then a CR as the last byte so far: the
    /// next byte decides.
    AwaitingCr,
    /// Method and target complete (each ended by SP); the rest is judged with the whole line.
    Done,
}

/// Judges the method and the target from the bytes of the request line received so far
/// (`line`: up to its LF or the end of the input), so that input that cannot begin a valid
/// request line is answered at once, not when its line ends. RFC 9112 §3: a request line is
/// `method SP request-target SP HTTP-version`, the method a token (RFC 9110 §9.1), the target
/// visible ASCII (RFC 3986 §2; bytes >= 0x80 only under
/// [`Policy::allow_non_ascii_target`]).
///
/// Fails with [`ErrorKind::InvalidMethod`] as soon as a byte that is not a tchar comes before
/// the first SP, or the method's bytes so far break [`check_method`]'s rules (too long, lower
/// case, `#`), or the method ends at SP and is refused (empty, too short); then with
/// [`ErrorKind::InvalidRequestLine`] for an empty target, or [`ErrorKind::InvalidTarget`] as
/// soon as a byte that cannot be in a target comes before the second SP. A CR as the last byte
/// so far decides nothing yet: it may end the line.
///
/// The verdict does not depend on how the input arrives: it looks only at the first `limit`
/// bytes (past them the line is too long, which a prefix may already say), and once bytes
/// decide it, every longer input with those bytes decides it the same way. It runs before the
/// other checks of the request line, so the whole input gets the error a prefix got.
fn check_line_prefix(
    line: &[u8],
    limit: Option<usize>,
    policy: &Policy,
) -> Result<LinePrefix, Error> {
    let seen = &line[..limit.map_or(line.len(), |limit| line.len().min(limit))];
    let end = seen.iter().position(|&b| !is_tchar(b));
    let method = &seen[..end.unwrap_or(seen.len())];
    let bad_method = |upto: usize| Error::with_value(ErrorKind::InvalidMethod, &seen[..upto]);
    let conventional = |method: &[u8]| {
        policy.permit_unconventional_http_method
            || (method.len() <= *CONVENTIONAL_METHOD_LEN.end()
                && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#'))
    };
    let method_end = match end.map(|end| (end, seen[end])) {
        None if conventional(method) => return Ok(LinePrefix::MethodOpen),
        Some((end, b'\r')) if end + 1 == seen.len() && conventional(method) => {
            return Ok(LinePrefix::AwaitingCr)
        }
        Some((end, b' ')) => {
            check_method(method, &seen[..=end], policy)?;
            end
        }
        None => return Err(bad_method(seen.len())),
        Some((end, _)) => return Err(bad_method(end + 1)),
    };
    let target = &seen[method_end + 1..];
    let allow_non_ascii = policy.allow_non_ascii_target;
    match target
        .iter()
        .position(|&b| !is_target_byte_under(b, allow_non_ascii))
    {
        None => Ok(LinePrefix::TargetOpen),
        Some(0) if target[0] == b' ' => Err(Error::with_value(
            ErrorKind::InvalidRequestLine,
            &seen[..method_end + 2],
        )),
        Some(end) if target[end] == b' ' => Ok(LinePrefix::Done),
        Some(end) if target[end] == b'\r' && end + 1 == target.len() => Ok(LinePrefix::AwaitingCr),
        Some(end) => Err(Error::with_value(ErrorKind::InvalidTarget, &target[..=end])),
    }
}

/// For [`HeadParser::parse_resuming`]: whether the bytes `new`, appended to the incomplete
/// request `line` (which ends with them) whose prefix was `prefix`, leave what was open open,
/// so that [`check_line_prefix`] would still answer the same (conservatively: `false` sends
/// the caller to the full parse, which decides). Always `true` for other lines.
fn stays_open(prefix: Option<LinePrefix>, line: &[u8], new: &[u8], policy: &Policy) -> bool {
    let lenient = policy.permit_unconventional_http_method;
    match prefix {
        Some(LinePrefix::MethodOpen) => {
            new.iter()
                .all(|&b| is_tchar(b) && (lenient || !(b.is_ascii_lowercase() || b == b'#')))
                && (lenient || line.len() <= *CONVENTIONAL_METHOD_LEN.end())
        }
        Some(LinePrefix::TargetOpen) => new
            .iter()
            .all(|&b| is_target_byte_under(b, policy.allow_non_ascii_target)),
        Some(LinePrefix::AwaitingCr) => false,
        Some(LinePrefix::Done) | None => true,
    }
}

/// Parses `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 9112 §2.3), exactly.
fn parse_version(v: &[u8]) -> Result<(u8, u8), Error> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Ok((major - b'0', minor - b'0'))
        }
        _ => Err(Error::with_value(ErrorKind::InvalidVersion, v)),
    }
}

/// What the fields say about the request.
struct FieldMeta {
    framing: Framing,
    keep_alive: bool,
    expects_continue: bool,
    unsupported_expectation: bool,
    host: Option<ValueLoc>,
    forwarded_secure: Option<bool>,
}

/// gunicorn's default `secure_scheme_headers`: the header and the value that means https.
pub const SECURE_SCHEME_HEADERS: [(&str, &str); 3] = [
    ("x-forwarded-protocol", "ssl"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-ssl", "on"),
];

/// What the scheme headers ([`SECURE_SCHEME_HEADERS`]) among `fields` (name, value) say:
/// `Some(true)` for https, `Some(false)` for otherwise, `None` when none is present. Fails when
/// they disagree.
fn scheme_headers_say<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<bool>, Error> {
    let (mut secure_seen, mut insecure_seen) = (false, false);
    for (name, value) in fields {
        for (header, secure_value) in SECURE_SCHEME_HEADERS {
            if name.eq_ignore_ascii_case(header.as_bytes()) {
                if value.eq_ignore_ascii_case(secure_value.as_bytes()) {
                    secure_seen = true;
                } else {
                    insecure_seen = true;
                }
            }
        }
    }
    if secure_seen && insecure_seen {
        return Err(Error::new(ErrorKind::InvalidSchemeHeaders));
    }
    Ok((secure_seen || insecure_seen).then_some(secure_seen))
}

/// Transfer codings that [`Policy::permit_unimplemented_transfer_codings`] passes through.
const PASS_THROUGH_CODINGS: [&[u8]; 5] =
    [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

fn analyze_fields<'a>(
    buf: &'a [u8],
    scratch: &'a [u8],
    fields: &[FieldSpan],
    version: Version,
    policy: &Policy,
) -> Result<FieldMeta, Error> {
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_count = 0usize;
    let mut codings = 0usize;
    let mut last_is_chunked = false;
    let mut unsupported_coding: Option<&[u8]> = None;
    let mut host: Option<ValueLoc> = None;
    let mut content_type_seen = false;
    let mut connection = ConnectionTokens::default();
    let mut expects_continue = false;
    let mut unsupported_expectation = false;

    for field in fields {
        let name = field.name(buf);
        let value = field.value(buf, scratch);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                // RFC 9112 §3.2: more than one Host field line is answered 400.
                if host.is_some() {
                    return Err(Error::with_value(ErrorKind::InvalidHost, value));
                }
                check_host(value)?;
                host = Some(field.value);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                // RFC 9110 §10.1.1; a 100-continue on HTTP/1.0 MUST be ignored.
                if value.eq_ignore_ascii_case(b"100-continue") {
                    expects_continue = version == Version::Http11;
                } else {
                    unsupported_expectation = true;
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => connection.scan(value),
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                if content_type_seen {
                    return Err(Error::with_value(ErrorKind::DuplicateField, name));
                }
                content_type_seen = true;
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // RFC 9112 §6.3 item 5: a repeated or list-valued Content-Length is an
                // unrecoverable framing error, even with equal values.
                if content_length.is_some() {
                    return Err(Error::with_value(ErrorKind::InvalidContentLength, value));
                }
                content_length = Some(parse_content_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding = true;
                // The field is a list; several lines concatenate (RFC 9110 §5.3).
                for coding in value.split(|&b| b == b',').map(trim_ows) {
                    let compat = policy.permit_unimplemented_transfer_codings;
                    // RFC 9110 §5.6.1: empty list elements are ignored. Under the
                    // compatibility policy `identity` (which changes nothing) is too.
                    if coding.is_empty() || (compat && coding.eq_ignore_ascii_case(b"identity")) {
                        continue;
                    }
                    codings += 1;
                    last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if last_is_chunked {
                        chunked_count += 1;
                    } else if unsupported_coding.is_none()
                        && !(compat
                            && PASS_THROUGH_CODINGS
                                .iter()
                                .any(|c| coding.eq_ignore_ascii_case(c)))
                    {
                        unsupported_coding = Some(coding);
                    }
                }
            }
            _ => {}
        }
    }

    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    if host.is_none() && version == Version::Http11 && policy.require_host {
        return Err(Error::new(ErrorKind::MissingHost));
    }

    // Under the compatibility policy a Transfer-Encoding of only `identity` is no coding.
    let transfer_encoding = if policy.permit_unimplemented_transfer_codings {
        codings > 0
    } else {
        transfer_encoding
    };
    let framing = if transfer_encoding {
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        if version == Version::Http10 {
            return Err(Error::new(ErrorKind::InvalidTransferEncoding));
        }
        // RFC 9112 §6.3 item 3: both headers is a smuggling attempt; reject.
        if content_length.is_some() {
            return Err(Error::new(ErrorKind::ConflictingFraming));
        }
        // RFC 9112 §6.3 item 4, §7: chunked must be the last coding, applied once.
        if chunked_count != 1 || !last_is_chunked {
            return Err(Error::new(ErrorKind::InvalidTransferEncoding));
        }
        if let Some(coding) = unsupported_coding {
            return Err(Error::with_value(
                ErrorKind::UnsupportedTransferCoding,
                coding,
            ));
        }
        Framing::Chunked
    } else {
        match content_length {
            Some(n) => Framing::Length(n),
            // RFC 9112 §6.3 item 7: no Content-Length or Transfer-Encoding, no body.
            None => Framing::None,
        }
    };

    let forwarded_secure = if policy.trust_scheme_headers {
        scheme_headers_say(
            fields
                .iter()
                .map(|field| (field.name(buf), field.value(buf, scratch))),
        )?
    } else {
        None
    };

    let keep_alive = connection.keep_alive(version == Version::Http11);

    Ok(FieldMeta {
        framing,
        keep_alive,
        expects_continue,
        unsupported_expectation,
        host,
        forwarded_secure,
    })
}

/// The fast path's checks of the field lines httparse found in `buf` (`lines`: from the start
/// of the first to the start of the empty line): each line ends in CRLF and fits `max_size`,
/// names with `_` follow `header_map`, and the fields that decide framing, persistence and
/// Host are judged (see [`SpecialFields::note`]). Returns what those fields say and whether a
/// field is to be dropped, or `None` when the reference path must decide.
///
/// Two lean passes rather than one: the first folds every line's checks into two flags with
/// no branch out, the second looks only at names; each keeps its few values in registers
/// (measured with `parse_loop`: one pass doing both spilled, ~50 instructions a field against
/// ~30 for the two).
#[inline(always)]
fn scan_fields(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    lines: std::ops::Range<usize>,
    max_size: usize,
    header_map: UnderscoreHeaders,
    version_11: bool,
    special: &mut SpecialFields,
) -> Option<bool> {
    let std::ops::Range {
        start: first_line,
        end: last_line,
    } = lines;
    // The empty line: CRLF, after a line that ended in CRLF (the request line's, checked by
    // the caller, when there are no fields).
    if buf.get(last_line - 2..last_line + 2) != Some(b"\r\n\r\n") {
        return None;
    }
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    // Each line starts after CRLF (httparse accepts a bare LF as a line end; RFC 9112 §2.2
    // lets us refuse it); which names hold `_`.
    let mut bare_lf = false;
    let mut underscore = false;
    for header in headers {
        let name = header.name.as_bytes();
        let (after_crlf, has_underscore) = check_line_start(buf, offset(name), name.len());
        bare_lf |= !after_crlf;
        underscore |= has_underscore;
    }
    if bare_lf {
        return None;
    }
    // No line is longer than the field section, so only a section over the limit needs each
    // line measured; a line's size (CRLF included) is the distance between line starts.
    if last_line - first_line > max_size {
        let mut line_start = first_line;
        for header in headers {
            let name_start = offset(header.name.as_bytes());
            if name_start - line_start > max_size {
                return None;
            }
            line_start = name_start;
        }
        if !headers.is_empty() && last_line - line_start > max_size {
            return None;
        }
    }
    let dropped = underscore
        && match header_map {
            UnderscoreHeaders::Drop => true,
            UnderscoreHeaders::Refuse => return None,
            UnderscoreHeaders::Keep => false,
        };
    // The special fields. A name with `_` is none of them, so dropped fields need no care.
    for header in headers {
        let name = header.name.as_bytes();
        let first = name[0] | 0x20;
        if SPECIAL_NAME_FIRST_BYTE.get(name.len()) != Some(&first) {
            continue;
        }
        let value = header.value;
        // Host, in every HTTP/1.1 request, is judged here; the rarer ones out of line.
        if name.len() == 4 {
            if !eq_lower(name, b"host") {
                continue;
            }
            // RFC 9112 §3.2: more than one Host field line is answered 400.
            let value_start = offset(value);
            // Long names by blocks; short ones (often at the end of a small head) by bytes.
            let host_ok = if (8..=16).contains(&value.len()) {
                check_host_block(buf, value_start, value.len()).is_ok()
            } else {
                check_host(value).is_ok()
            };
            if special.host.is_some() || !host_ok {
                return None;
            }
            special.host = Some(ValueLoc::Buf(value_start, value_start + value.len()));
        } else if !special.note(name, value, version_11) {
            return None;
        }
    }
    Some(dropped)
}

/// Indexed by name length: the first byte (lower case) of the field name of that length that
/// [`SpecialFields::note`] judges, 0 for lengths it does not. Other names skip the
/// comparisons (measured: comparing every name of a matching length cost a tenth of our
/// pass on the browser request). If `note` changes, change this with it.
const SPECIAL_NAME_FIRST_BYTE: [u8; 18] = {
    let mut first = [0; 18];
    first[4] = b'h'; // host
    first[6] = b'e'; // expect
    first[10] = b'c'; // connection
    first[12] = b'c'; // content-type
    first[14] = b'c'; // content-length
    first[17] = b't'; // transfer-encoding
    first
};

/// What the fast path learns from the fields that decide framing, persistence and Host.
#[derive(Default)]
struct SpecialFields {
    content_length: Option<u64>,
    chunked: bool,
    host: Option<ValueLoc>,
    content_type_seen: bool,
    connection: ConnectionTokens,
    expects_continue: bool,
}

impl SpecialFields {
    /// Notes one field that [`SPECIAL_NAME_FIRST_BYTE`] lets through, judging it as
    /// `analyze_fields` does; `false` when that could fail (the reference path then decides).
    /// Kept out of line so the fast path's loop over ordinary fields stays small.
    #[inline(never)]
    fn note(&mut self, name: &[u8], value: &[u8], version_11: bool) -> bool {
        match name.len() {
            // Host is judged by `scan_fields` itself.
            6 if eq_lower(name, b"expect") => {
                if !eq_lower(value, b"100-continue") {
                    return false;
                }
                self.expects_continue = version_11;
            }
            10 if eq_lower(name, b"connection") => self.connection.scan_fast(value),
            12 if eq_lower(name, b"content-type") => {
                if self.content_type_seen {
                    return false;
                }
                self.content_type_seen = true;
            }
            14 if eq_lower(name, b"content-length") => {
                if self.content_length.is_some() {
                    return false;
                }
                match parse_content_length(value) {
                    Ok(n) => self.content_length = Some(n),
                    Err(_) => return false,
                }
            }
            // Only a lone `chunked` here; every other coding list is the reference path's.
            17 if eq_lower(name, b"transfer-encoding") => {
                if self.chunked || !eq_lower(value, b"chunked") {
                    return false;
                }
                self.chunked = true;
            }
            _ => {}
        }
        true
    }
}

/// `bytes` equals `lower` ignoring ASCII case, for the fast path: `lower` holds only lower-case
/// letters, digits and `-`, and `bytes` only what httparse lets into a field name or value (no
/// control byte but HTAB). Both are compared eight bytes at a time with the 0x20 bit set, which
/// is exact here: a byte with that bit set matches a letter of `lower` only as its upper or
/// lower case, and a digit or `-` only as itself or as a control byte (0x10-0x19, CR), which
/// httparse refused.
#[inline(always)]
fn eq_lower(bytes: &[u8], lower: &[u8]) -> bool {
    fn word(b: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w) | 0x2020_2020_2020_2020
    }
    fn half(b: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(w) | 0x2020_2020
    }
    let len = lower.len();
    if bytes.len() != len {
        return false;
    }
    match len {
        0..=3 => bytes.iter().zip(lower).all(|(&b, &l)| b | 0x20 == l),
        4..=8 => half(bytes, 0) == half(lower, 0) && half(bytes, len - 4) == half(lower, len - 4),
        _ => {
            let mut at = 0;
            while at + 8 < len {
                if word(bytes, at) != word(lower, at) {
                    return false;
                }
                at += 8;
            }
            word(bytes, len - 8) == word(lower, len - 8)
        }
    }
}

/// The `Connection` options that decide persistence, over all `Connection` lines.
#[derive(Default)]
struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
}

impl ConnectionTokens {
    /// Notes the `close` and `keep-alive` options of one `Connection` value (a list).
    #[inline]
    fn scan(&mut self, value: &[u8]) {
        // The usual values are one option.
        if value.eq_ignore_ascii_case(b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if value.eq_ignore_ascii_case(b"close") {
            self.close = true;
            return;
        }
        for token in value.split(|&b| b == b',').map(trim_ows) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// [`ConnectionTokens::scan`] for the fast path, where the value is what httparse accepts
    /// (see [`eq_lower`]).
    #[inline]
    fn scan_fast(&mut self, value: &[u8]) {
        if eq_lower(value, b"keep-alive") {
            self.keep_alive = true;
        } else if eq_lower(value, b"close") {
            self.close = true;
        } else {
            self.scan(value);
        }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    fn keep_alive(&self, http_11: bool) -> bool {
        !self.close && (http_11 || self.keep_alive)
    }
}

/// Parses `Content-Length = 1*DIGIT` (RFC 9110 §8.6), refusing overflow.
fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    let bad = || Error::with_value(ErrorKind::InvalidContentLength, value);
    if value.is_empty() {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(n)
}

impl<'a> Head<'a> {
    fn state(&self) -> &'a HeadState {
        &self.parser.head
    }

    /// The fields of a head that the fast path parsed ([`FieldStore::Slots`]`(n)`): the first
    /// `n` header slots, as httparse filled them (less any dropped field).
    fn slots(&self, n: usize) -> &'a [httparse::Header<'a>] {
        debug_assert!(n < self.parser.header_slots.len());
        // SAFETY: `FieldStore::Slots(n)` is stored only by `parse_fast`, after httparse
        // returned `Complete` having initialized its first `count >= n` slots with headers
        // borrowing that call's `buf` (the kept ones moved down within them). A `Head` is built
        // only right after its parse stored the state, with that same `buf`; it borrows both
        // the parser and `buf` for `'a`, so neither the slots nor the bytes they point into can
        // change while it lives, and the next parse stores a new state before building the next
        // `Head`. `Header<'static>` and `Header<'a>` have one layout.
        unsafe { std::slice::from_raw_parts(self.parser.header_slots.as_ptr().cast(), n) }
    }

    fn resolve(&self, loc: ValueLoc) -> &'a [u8] {
        match loc {
            ValueLoc::Buf(s, e) => &self.buf[s..e],
            ValueLoc::Scratch(s, e) => &self.parser.scratch[s..e],
        }
    }

    /// The method, upper-cased if [`Policy::casefold_http_method`] is set.
    pub fn method(&self) -> &'a str {
        let method = match self.state().method {
            MethodLoc::Buf(s, e) => &self.buf[s..e],
            MethodLoc::Scratch(s, e) => &self.parser.scratch[s..e],
        };
        ascii_str(method)
    }

    /// The request target exactly as sent. It holds no whitespace or control bytes, and no
    /// bytes of 0x80 or more unless [`Policy::allow_non_ascii_target`] permits them.
    pub fn target(&self) -> &'a [u8] {
        let (s, e) = self.state().target;
        &self.buf[s..e]
    }

    /// The form of the target (RFC 9112 §3.2).
    pub fn target_form(&self) -> TargetForm {
        self.state().target_form
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.state().version
    }

    /// The header fields in received order (without those dropped by
    /// [`crate::UnderscoreHeaders::Drop`]).
    pub fn headers(&self) -> Headers<'a> {
        let fields = match self.state().fields {
            FieldStore::Spans => HeaderSource::Spans {
                buf: self.buf,
                scratch: &self.parser.scratch,
                fields: self.parser.fields.iter(),
            },
            FieldStore::Slots(n) => HeaderSource::Slots(self.slots(n).iter()),
        };
        Headers { fields }
    }

    /// The number of header fields [`Head::headers`] yields.
    pub fn header_count(&self) -> usize {
        match self.state().fields {
            FieldStore::Spans => self.parser.fields.len(),
            FieldStore::Slots(n) => n,
        }
    }

    /// The value of the first field named `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// How the body is framed.
    pub fn framing(&self) -> Framing {
        self.state().framing
    }

    /// A decoder for this request's body, with the parser's limits and policy. It owns its
    /// state, so it outlives the head.
    pub fn body_decoder(&self) -> BodyDecoder {
        BodyDecoder::new(self.framing(), &self.parser.limits, &self.parser.policy)
    }

    /// Whether the connection may carry another request after this one (RFC 9112 §9.3):
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.state().keep_alive
    }

    /// Whether the client waits for `100 Continue` before sending the body
    /// (`Expect: 100-continue` on HTTP/1.1, RFC 9110 §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.state().expects_continue
    }

    /// The `Host` field value, if one was sent (validated as `uri-host [":" port]`).
    pub fn host(&self) -> Option<&'a [u8]> {
        self.state().host.map(|loc| self.resolve(loc))
    }

    /// With [`Policy::trust_scheme_headers`]: `Some(true)` when the scheme headers say
    /// https, `Some(false)` when they say otherwise, `None` when absent or untrusted.
    pub fn forwarded_secure(&self) -> Option<bool> {
        self.state().forwarded_secure
    }
}

impl std::fmt::Debug for Head<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("method", &self.method())
            .field("target", &String::from_utf8_lossy(self.target()))
            .field("version", &self.version())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("framing", &self.framing())
            .field("keep_alive", &self.keep_alive())
            .finish()
    }
}

/// The iterator of [`Head::headers`].
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    fields: HeaderSource<'a>,
}

/// Where [`Headers`] reads the fields (see [`FieldStore`]).
#[derive(Debug, Clone)]
enum HeaderSource<'a> {
    Spans {
        buf: &'a [u8],
        scratch: &'a [u8],
        fields: std::slice::Iter<'a, FieldSpan>,
    },
    Slots(std::slice::Iter<'a, httparse::Header<'a>>),
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    #[inline]
    fn next(&mut self) -> Option<Header<'a>> {
        match &mut self.fields {
            HeaderSource::Spans {
                buf,
                scratch,
                fields,
            } => {
                let field = fields.next()?;
                Some(Header {
                    name: ascii_str(field.name(buf)),
                    value: field.value(buf, scratch),
                })
            }
            HeaderSource::Slots(slots) => {
                let header = slots.next()?;
                Some(Header {
                    name: header.name,
                    value: header.value,
                })
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.fields {
            HeaderSource::Spans { fields, .. } => fields.size_hint(),
            HeaderSource::Slots(slots) => slots.size_hint(),
        }
    }
}

impl ExactSizeIterator for Headers<'_> {}

#[cfg(test)]
mod fast_path_tests {
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

    #[test]
    fn a_head_sees_only_its_own_fields() {
        // The fast path's heads read httparse's slots in place; a head from the reference path
        // or a later fast head with fewer fields must not see what an earlier parse left there.
        let names = |parser: &mut HeadParser, input: &[u8]| -> Vec<String> {
            let Ok(Status::Complete(head, _)) = parser.parse(input) else {
                panic!("{:?}", String::from_utf8_lossy(input))
            };
            assert_eq!(head.headers().len(), head.header_count());
            head.headers()
                .map(|h| format!("{}={}", h.name, String::from_utf8_lossy(h.value)))
                .collect()
        };
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        let many = b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC_D: 2\r\nE: 3\r\n\r\n";
        assert_eq!(names(&mut parser, many), ["Host=a", "B=1", "E=3"]);
        // Leading CRLF: the reference path.
        let reference = b"\r\nGET / HTTP/1.1\r\nHost: r\r\n\r\n";
        assert_eq!(names(&mut parser, reference), ["Host=r"]);
        assert_eq!(names(&mut parser, b"GET / HTTP/1.0\r\n\r\n"), [""; 0]);
        assert_eq!(names(&mut parser, many), ["Host=a", "B=1", "E=3"]);
        let keep = Policy {
            header_map: UnderscoreHeaders::Keep,
            ..Policy::default()
        };
        parser.set_policy(keep);
        assert_eq!(names(&mut parser, many), ["Host=a", "B=1", "C_D=2", "E=3"]);
        // A head that httparse tokenizes but the fast path then declines (bare LF).
        let bare_lf = b"GET / HTTP/1.1\r\nHost: a\nB: 1\r\n\r\n";
        assert!(parser.parse(bare_lf).is_err());
        assert_eq!(names(&mut parser, reference), ["Host=r"]);
    }

    #[test]
    fn input_that_cannot_begin_a_request_line_is_refused_at_once() {
        // Regression: bytes with no LF (a TLS ClientHello, binary noise) waited for the header
        // timeout (408) because only complete lines were judged; they are 400 from the first
        // byte that decides it, and the whole input gets the same error as any prefix.
        let client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x15";
        let verdicts = |limits: Limits, policy: Policy, input: &[u8]| -> Vec<String> {
            let mut parser = HeadParser::new(limits, policy);
            let mut progress = Progress::default();
            (1..=input.len())
                .map(|n| {
                    let resumed = match parser.parse_resuming(&input[..n], &mut progress) {
                        Ok(Status::Partial) => "partial".to_string(),
                        Ok(Status::Complete(..)) => "complete".to_string(),
                        Err(e) => {
                            progress = Progress::default();
                            format!("{} {:?}", e.status(), e.kind())
                        }
                    };
                    let fresh = match HeadParser::new(limits, policy).parse(&input[..n]) {
                        Ok(Status::Partial) => "partial".to_string(),
                        Ok(Status::Complete(..)) => "complete".to_string(),
                        Err(e) => format!("{} {:?}", e.status(), e.kind()),
                    };
                    assert_eq!(resumed, fresh, "{:?}", String::from_utf8_lossy(&input[..n]));
                    fresh
                })
                .collect()
        };
        let refused = "400 InvalidMethod";
        let strict = || verdicts(Limits::default(), Policy::default(), client_hello);
        assert!(strict().iter().all(|v| v == refused), "{:?}", strict());
        let g0t = b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = verdicts(Limits::default(), Policy::default(), g0t);
        assert_eq!(got[0], "partial");
        assert!(got[1..].iter().all(|v| v == refused), "{got:?}");
        // Which prefixes decide, under the default policy and under gunicorn's lenient one.
        let lenient = Policy {
            permit_unconventional_http_method: true,
            ..Policy::default()
        };
        for (input, strict_last, lenient_last) in [
            (&b"GET"[..], "partial", "partial"),
            (b"GET\r", "partial", "partial"),
            (b"GET\rX", refused, refused),
            (b"GET /", "partial", "partial"),
            (b"get", refused, "partial"),
            (b"GE#T", refused, "partial"),
            (b"ABCDEFGHIJKLMNOPQRSTU", refused, "partial"),
            (b"GE ", refused, "partial"),
            (b" ", refused, refused),
            (b"GET\t/", refused, refused),
            (b"\r\n\x16", refused, refused),
            // Then the target: its bytes, up to the second SP.
            (b"GET /a\x00", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\x7f", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\rb", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\r", "partial", "partial"),
            (b"GET /\xc3\xa9", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a HTTP/1.1\x00", "partial", "partial"),
            (b"GET  ", "400 InvalidRequestLine", "400 InvalidRequestLine"),
        ] {
            let last = |policy| verdicts(Limits::default(), policy, input).pop();
            let shown = String::from_utf8_lossy(input);
            assert_eq!(
                last(Policy::default()).as_deref(),
                Some(strict_last),
                "{shown:?}"
            );
            assert_eq!(last(lenient).as_deref(), Some(lenient_last), "{shown:?}");
        }
        // Past the request-line limit the line is too long, whatever comes there.
        let short_line = Limits {
            request_line: 4,
            ..Limits::default()
        };
        let got = verdicts(short_line, lenient, b"GETX\0 / HTTP/1.1\r\n");
        assert_eq!(got[3], "partial");
        assert_eq!(got[4], "414 RequestLineTooLong");
        let got = verdicts(short_line, lenient, b"GE\0X / HTTP/1.1\r\n");
        assert_eq!(got[2], refused);
    }

    /// What a parse says, for comparing the two paths.
    fn verdict(parser: &mut HeadParser, input: &[u8]) -> String {
        match parser.parse(input) {
            Ok(Status::Complete(head, n)) => format!(
                "{head:?} {n} host={:?} continue={} secure={:?}",
                head.host(),
                head.expects_continue(),
                head.forwarded_secure()
            ),
            Ok(Status::Partial) => "partial".to_string(),
            Err(e) => format!("{} {:?}", e.status(), e.kind()),
        }
    }

    /// Parses `input` with and without the fast path; returns whether the fast path answered,
    /// after checking that both paths give the same verdict.
    fn fast_path_answers(limits: Limits, policy: Policy, input: &[u8]) -> bool {
        let mut fast = HeadParser::new(limits, policy);
        let mut reference = HeadParser::new(limits, policy);
        reference.set_fast_path(false);
        let shown = String::from_utf8_lossy(input);
        assert_eq!(
            verdict(&mut fast, input),
            verdict(&mut reference, input),
            "{shown:?}"
        );
        fast.fields.clear();
        fast.scratch.clear();
        fast.parse_fast(input).is_some()
    }

    #[test]
    fn fast_path_leaves_unusual_heads_to_the_reference_path() {
        let ok = |input: &[u8]| fast_path_answers(Limits::default(), Policy::default(), input);
        // Ordinary heads, with the fields the fast path judges itself.
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /u HTTP/1.1\r\nhost: x\r\nContent-Length: 12\r\nContent-Type: a/b\r\n\r\n",
            b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n",
            b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: te, close\r\nX_Dropped: 1\r\nY: _\r\n\r\n",
            b"GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n",
            // The shape of the bench's browser request: `_` in a value, not in a name.
            b"GET /a?ref=home&utm_source=x HTTP/1.1\r\nHost: www.example.com\r\n\
              User-Agent: Mozilla/5.0\r\nAccept: text/html\r\nConnection: keep-alive\r\n\
              Cookie: _ga=GA1.2\r\nSec-Fetch-Dest: document\r\n\r\n",
        ] {
            assert!(ok(input), "{:?}", String::from_utf8_lossy(input));
        }
        // Everything else is decided by the reference path (same verdict, checked above).
        for input in [
            &b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\nB: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GE / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /#f HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n  folded\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        ] {
            assert!(!ok(input), "{:?}", String::from_utf8_lossy(input));
        }
        // Underscore names under each policy.
        for (header_map, answers) in [
            (UnderscoreHeaders::Drop, true),
            (UnderscoreHeaders::Keep, true),
            (UnderscoreHeaders::Refuse, false),
        ] {
            let policy = Policy {
                header_map,
                ..Policy::default()
            };
            let input = b"GET / HTTP/1.1\r\nHost: x\r\nA_B: 1\r\nC: _\r\n\r\n";
            assert_eq!(fast_path_answers(Limits::default(), policy, input), answers);
        }
        // Limits, at and one past each (the request line here is 16 bytes, `Host: x` 9 with
        // its CRLF, and there are two fields).
        let input = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n";
        for (limits, answers) in [
            (
                Limits {
                    request_line: 14,
                    ..Limits::default()
                },
                true,
            ),
            (
                Limits {
                    request_line: 13,
                    ..Limits::default()
                },
                false,
            ),
            (
                Limits {
                    field_size: 9,
                    ..Limits::default()
                },
                true,
            ),
            (
                Limits {
                    field_size: 8,
                    ..Limits::default()
                },
                false,
            ),
            (
                Limits {
                    fields: 2,
                    ..Limits::default()
                },
                true,
            ),
            (
                Limits {
                    fields: 1,
                    ..Limits::default()
                },
                false,
            ),
        ] {
            assert_eq!(
                fast_path_answers(limits, Policy::default(), input),
                answers,
                "{limits:?}"
            );
        }
    }

    /// Regression: a target holding raw bytes outside ASCII (`GET /\xff`) was accepted,
    /// though RFC 9112 §3.2 and RFC 3986 §2 require them percent-encoded. Both paths refuse
    /// it with 400 from the first such byte, unless the policy permits them.
    #[test]
    fn raw_bytes_outside_ascii_in_the_target_are_400_unless_permitted() {
        let permissive = Policy {
            allow_non_ascii_target: true,
            ..Policy::default()
        };
        for input in [
            &b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /caf\xc3\xa9?q=\xe2\x82\xac HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /0123456789abcdef0123456789\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET http://x/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let shown = String::from_utf8_lossy(input);
            assert!(!fast_path_answers(
                Limits::default(),
                Policy::default(),
                input
            ));
            let err = HeadParser::new(Limits::default(), Policy::default())
                .parse(input)
                .unwrap_err();
            assert_eq!((err.status(), err.kind()), (400, ErrorKind::InvalidTarget));
            // Decided by the first such byte, before the line ends.
            let first = input.iter().position(|&b| b >= 0x80).unwrap();
            let prefix = HeadParser::new(Limits::default(), Policy::default())
                .parse(&input[..=first])
                .map(|_| ())
                .unwrap_err();
            assert_eq!(prefix.kind(), ErrorKind::InvalidTarget, "{shown:?}");
            // Permitted: the reference path accepts it (the fast path declines, same verdict).
            assert!(!fast_path_answers(Limits::default(), permissive, input));
            let mut parser = HeadParser::new(Limits::default(), permissive);
            let Ok(Status::Complete(head, _)) = parser.parse(input) else {
                panic!("{shown:?} refused under allow_non_ascii_target")
            };
            assert!(head.target().iter().any(|&b| b >= 0x80), "{shown:?}");
        }
        assert!(Policy::gunicorn_compatible().allow_non_ascii_target);
        // Percent-encoded, the same target takes the fast path.
        let encoded = b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(fast_path_answers(
            Limits::default(),
            Policy::default(),
            encoded
        ));
    }

    #[test]
    fn fast_path_answers_ordinary_requests() {
        let mut parser = HeadParser::new(Limits::default(), Policy::default());
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /a?b HTTP/1.0\r\nA:\r\nB:  c  \r\n\r\n",
            b"POST /0123456789abcdef0123456789 HTTP/1.1\r\nHost: example.com:80\r\n\
              Content-Length: 0\r\nA-Very-Long-Header-Name-Here: 0123456789abcdef\tx\t\r\n\r\n",
        ] {
            assert!(
                parser.parse_fast(input).is_some(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
