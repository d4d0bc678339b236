//! The fast path: complete heads of the ordinary shape, parsed with `httparse::parse_headers`
//! into the parser's header slots, which the [`Head`] then reads in place. It only saves
//! time: anything unusual returns `None` and the reference path (`reference.rs`) decides.

use super::parsed::{FieldStore, HeadState, MethodLoc, Version};
use super::request_line::CONVENTIONAL_METHOD_LEN;
use super::semantics::{parse_content_length, scheme_headers_say, ConnectionTokens};
use super::HeadParser;
use crate::body::Framing;
use crate::fields::ValueLoc;
use crate::limits::{Policy, UnderscoreHeaders};
use crate::syntax::{
    check_host, check_host_block, check_line_start, check_target, name_has_underscore, scan_target,
    TargetForm,
};

/// `HTTP/1.1` and `HTTP/1.0`, read as little-endian words.
const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");

/// Heads with more fields than this (under a larger [`Limits::fields`]) take the reference
/// path, so a parser's fast-path storage stays small (32 bytes a field).
pub(super) const FAST_PATH_MAX_FIELDS: usize = 1024;

impl HeadParser {
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
    /// Its cost is counted in instructions per parse (load-independent: each request parsed
    /// 10,000 times by `examples/parse_loop.rs`, which does per parse what the bench does);
    /// the figures, against httparse's, are in `docs/BENCHMARKS.md` ("The parser's
    /// instructions"):
    ///
    /// ```sh
    /// cargo build --release -p ferrocorn-http-parser --example parse_loop
    /// valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    ///     --toggle-collect='parse_loop::parse_*' \
    ///     target/release/examples/parse_loop ferrocorn browser 10000   # or httparse, minimal, wrk
    /// # "Collected" / 10000 = instructions per parse (loop included, on both sides)
    /// ```
    pub(super) fn parse_fast<'b>(&mut self, buf: &'b [u8]) -> Option<usize> {
        if !self.fast_path {
            return None;
        }
        // The request line (RFC 9112 §3): method SP request-target SP HTTP-version CRLF, from
        // offset 0 (leading empty lines go to the reference path, which bounds them).
        let method_len = fast_method_len(buf)?;
        let method = &buf[..method_len];
        let target_start = method_len + 1;
        let (target_end, has_hash) = scan_target(buf, target_start)?;
        let target = &buf[target_start..target_end];
        let version_11 = fast_version_11(buf, target_end)?;
        if target.is_empty() {
            return None;
        }
        let line_end = target_end + 9;
        if line_end > self.request_line_limit {
            return None;
        }
        let target_form = fast_target_form(method, target, has_hash, &self.policy)?;

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
        let kept = if dropped {
            drop_underscore_names(buf, headers)
        } else {
            count
        };
        let headers = &headers[..kept];
        let framing = self.fast_framing(&special, version_11)?;
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

    /// The body's framing from what `scan_fields` noted, and the Host requirement: RFC 9112
    /// §3.2 (Host), §6.1 and §6.3 items 3-4 (framing), as `analyze_fields` judges them. `None`
    /// for any head the reference path must answer (with an error).
    #[inline(always)]
    fn fast_framing(&self, special: &SpecialFields, version_11: bool) -> Option<Framing> {
        if special.host.is_none() && version_11 && self.policy.require_host {
            return None;
        }
        if special.chunked {
            if !version_11 || special.content_length.is_some() {
                return None;
            }
            return Some(Framing::Chunked);
        }
        match special.content_length {
            None => Some(Framing::None),
            // Over the body limit: the reference path answers 413.
            Some(n) if self.limits.body_limit().is_some_and(|limit| n > limit) => None,
            Some(n) => Some(Framing::Length(n)),
        }
    }
}

/// The method's length, for a method of 3 to 20 upper-case letters followed by SP at the
/// start of `buf`: every such method passes every policy (the others are the reference
/// path's).
#[inline(always)]
fn fast_method_len(buf: &[u8]) -> Option<usize> {
    match buf.get(..5)? {
        b"GET /" => Some(3),
        b"POST " => Some(4),
        _ => {
            let len = buf.iter().take(21).position(|&b| b == b' ')?;
            if !CONVENTIONAL_METHOD_LEN.contains(&len)
                || !buf[..len].iter().all(u8::is_ascii_uppercase)
            {
                return None;
            }
            Some(len)
        }
    }
}

/// The end of the request line from `target_end`, the first byte that cannot be in a target,
/// which must be the SP: `SP HTTP/1.x CRLF`. Whether the version is 1.1 (`false` for 1.0);
/// `None` for anything else.
#[inline(always)]
fn fast_version_11(buf: &[u8], target_end: usize) -> Option<bool> {
    let (sp, version, crlf) = match buf.get(target_end..target_end + 11)? {
        [sp, version @ .., cr, lf] => (*sp, *version.first_chunk::<8>()?, [*cr, *lf]),
        _ => return None,
    };
    if sp != b' ' || crlf != *b"\r\n" {
        return None;
    }
    match u64::from_le_bytes(version) {
        HTTP_11 => Some(true),
        HTTP_10 => Some(false),
        _ => None,
    }
}

/// The target's form: the usual origin-form decided here, every other shape by
/// `check_target` (`None` when it refuses; the reference path then answers).
#[inline(always)]
fn fast_target_form(
    method: &[u8],
    target: &[u8],
    has_hash: bool,
    policy: &Policy,
) -> Option<TargetForm> {
    if target[0] == b'/' && method != b"CONNECT" && (!has_hash || policy.allow_fragment) {
        return Some(TargetForm::Origin);
    }
    check_target(method, target, policy.allow_fragment, policy.allow_userinfo).ok()
}

/// Under [`UnderscoreHeaders::Drop`] (rare): moves the fields whose names hold no `_` down
/// over the others, keeping their order; returns how many are kept.
#[inline(always)]
fn drop_underscore_names(buf: &[u8], headers: &mut [httparse::Header<'_>]) -> usize {
    let base = buf.as_ptr() as usize;
    let mut kept = 0;
    for i in 0..headers.len() {
        let name = headers[i].name.as_bytes();
        if !name_has_underscore(buf, name.as_ptr() as usize - base, name.len()) {
            headers[kept] = headers[i];
            kept += 1;
        }
    }
    kept
}

/// The fast path's checks of the field lines httparse found in `buf` (`lines`: from the start
/// of the first to the start of the empty line): each line ends in CRLF and fits `max_size`,
/// names with `_` follow `header_map`, and the fields that decide framing, persistence and
/// Host are judged (see [`SpecialFields::note`]). Returns what those fields say and whether a
/// field is to be dropped, or `None` when the reference path must decide.
///
/// Two lean passes rather than one: the first folds every line's checks into two flags with
/// no branch out, the second looks only at names; each keeps its few values in registers,
/// where one pass doing both spilled them (fewer instructions a field, `docs/BENCHMARKS.md`).
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
/// comparisons, which cost much of the pass when every name of a matching length was compared
/// (`docs/BENCHMARKS.md`). If `note` changes, change this with it.
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

impl ConnectionTokens {
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
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;
    use crate::error::ErrorKind;
    use crate::limits::{Limits, Policy};

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
    }

    #[test]
    fn fast_path_answers_up_to_each_limit_and_declines_past_it() {
        // The request line here is 16 bytes, `Host: x` 9 with its CRLF, and there are two
        // fields.
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
