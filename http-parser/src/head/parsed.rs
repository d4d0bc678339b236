//! The parsed head: [`Head`], which borrows the caller's buffer and the parser, the
//! [`Headers`] iterator and [`Version`]; and `HeadState`, what the last complete head says,
//! which either path stores before it builds a `Head`.

use super::HeadParser;
use crate::body::{BodyDecoder, Framing};
use crate::fields::{FieldSpan, ValueLoc};
use crate::syntax::TargetForm;

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
pub(super) enum MethodLoc {
    Buf(usize, usize),
    Scratch(usize, usize),
}

/// A complete, validated request head. It borrows the input buffer and the parser (which
/// holds the field offsets and what the head says); copy what you need before parsing again.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    /// The buffer the head was parsed from.
    pub(super) buf: &'a [u8],
    /// The parser that just stored this head's `HeadState`: a `Head` is built only right after
    /// its parse stored the state (see `Head::slots`).
    pub(super) parser: &'a HeadParser,
}

/// Where the last complete head's fields are.
#[derive(Debug, Clone, Copy)]
pub(super) enum FieldStore {
    /// In [`HeadParser::fields`] (the reference path).
    Spans,
    /// The first `n` of [`HeadParser::header_slots`], as httparse filled them for this head
    /// (the fast path, which copies nothing: see [`Head::slots`]).
    Slots(usize),
}

/// What the last complete head says, as offsets into the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadState {
    pub(super) fields: FieldStore,
    pub(super) method: MethodLoc,
    pub(super) target: (usize, usize),
    pub(super) target_form: TargetForm,
    pub(super) version: Version,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    pub(super) expects_continue: bool,
    pub(super) host: Option<ValueLoc>,
    pub(super) forwarded_secure: Option<bool>,
}

impl HeadState {
    pub(super) const EMPTY: HeadState = HeadState {
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

/// A token as `&str`: a method or field name, which both paths checked to be a token
/// (`tchar` bytes, all ASCII) before any [`Head`] could hand it out.
pub(super) fn ascii_str(token: &[u8]) -> &str {
    debug_assert!(
        token.iter().all(|&b| crate::syntax::is_tchar(b)),
        "{token:?}"
    );
    // SAFETY: a token is ASCII (RFC 9110 §5.6.2), so valid UTF-8: `check_method` and
    // `split_name` (reference path) and httparse (fast path, which also hands out its names as
    // `&str`) accept only tchar bytes, and the method is upper-cased only within ASCII.
    unsafe { std::str::from_utf8_unchecked(token) }
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

    /// The method, upper-cased if [`Policy::casefold_http_method`](crate::Policy::casefold_http_method) is set.
    pub fn method(&self) -> &'a str {
        let method = match self.state().method {
            MethodLoc::Buf(s, e) => &self.buf[s..e],
            MethodLoc::Scratch(s, e) => &self.parser.scratch[s..e],
        };
        ascii_str(method)
    }

    /// The request target exactly as sent. It holds no whitespace or control bytes, and no
    /// bytes of 0x80 or more unless [`Policy::allow_non_ascii_target`](crate::Policy::allow_non_ascii_target) permits them.
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

    /// With [`Policy::trust_scheme_headers`](crate::Policy::trust_scheme_headers): `Some(true)` when the scheme headers say
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
mod tests {
    use super::super::Status;
    use super::*;
    use crate::limits::{Limits, Policy, UnderscoreHeaders};

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
}
