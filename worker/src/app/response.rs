//! [`Response`]: what an application fills in (status, header fields, [`Body`]), and what
//! [`Response::header`] notes about each field as it is set ([`HeaderNotes`]), so that the
//! serializer (`crate::response`) never scans the fields again.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;

use super::reason_phrase;

/// A response header name or value: borrowed when static, owned otherwise.
pub type HeaderText = Cow<'static, str>;

/// What a response body is.
pub enum Body {
    /// No body (`Content-Length: 0`).
    Empty,
    /// A static byte string, copied straight into the output buffer.
    Static(&'static [u8]),
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`, sent with `sendfile(2)`.
    File {
        /// The open file.
        file: File,
        /// Where to start.
        offset: u64,
        /// How many bytes to send.
        len: u64,
    },
    /// Bytes read from `reader` until it reports end of file. With `len` the response carries
    /// `Content-Length` (and the connection closes if the reader ends early); without it,
    /// chunked transfer coding on HTTP/1.1 and end-of-connection framing on HTTP/1.0.
    /// The reader is read in pieces of up to 64 KiB as the client accepts data: on the
    /// thread pool when `threads` > 1 (a slow reader then holds a pool thread, never the
    /// loop), on the event loop thread when `threads` = 1 (it should not block for long).
    Stream {
        /// The source of the bytes.
        reader: Box<dyn Read + Send>,
        /// The exact length, when known.
        len: Option<u64>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Static(b) => write!(f, "Static({} bytes)", b.len()),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::File { offset, len, .. } => write!(f, "File({offset}+{len})"),
            Body::Stream { len, .. } => write!(f, "Stream({len:?})"),
        }
    }
}

impl Body {
    /// The body's length when known before sending.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Static(b) => Some(b.len() as u64),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The response an application fills in.
///
/// The worker adds `Date`, `Server`, the framing (`Content-Length` or
/// `Transfer-Encoding: chunked`) and `Connection`; headers of those names set by the
/// application are not sent, except `Connection: close`, which makes the worker close the
/// connection after this response.
#[derive(Debug)]
pub struct Response {
    /// The status code (200..=999; anything else is answered as 500).
    pub status: u16,
    pub(crate) headers: Vec<(HeaderText, HeaderText)>,
    /// What [`Response::header`] noted about `headers` (validity, names the worker writes
    /// itself), so that the response path does not scan them again. `header` and `reset`
    /// are the only ways `headers` changes; if another appears, it must keep this true.
    pub(crate) notes: HeaderNotes,
    /// A reason phrase replacing the standard one ([`Response::set_reason`]).
    pub(crate) reason: Option<HeaderText>,
    /// Values and the reason phrase go out as ISO-8859-1 ([`Response::set_latin1`]).
    pub(crate) latin1: bool,
    /// A WebSocket accepted ([`Response::accept_websocket`]): the response is its `101`.
    pub(crate) websocket: Option<Box<crate::ws::Upgrade>>,
    /// The body.
    pub body: Body,
}

impl Default for Response {
    fn default() -> Self {
        Response::new()
    }
}

impl Response {
    /// A `200 OK` response with no headers and an empty body.
    pub fn new() -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            notes: HeaderNotes::default(),
            reason: None,
            latin1: false,
            websocket: None,
            body: Body::Empty,
        }
    }

    /// Resets to `200 OK`, no headers, no reason phrase, empty body, keeping the header
    /// vector's memory. The worker resets the response before each call; an application
    /// calls it to start over, for instance to answer an error instead of the response it had
    /// begun to fill in.
    pub fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.notes = HeaderNotes::default();
        self.reason = None;
        self.latin1 = false;
        self.websocket = None;
        // Usually empty already (the loop takes the body to send it): skip the drop glue.
        if !matches!(self.body, Body::Empty) {
            self.body = Body::Empty;
        }
    }

    /// Adds a header field. Names must be tokens and values must not contain CR, LF or NUL
    /// (RFC 9110 §5.5); the worker answers 500 instead of sending a response that breaks
    /// this, so a header value can never split the response.
    pub fn header(&mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) {
        let (name, value) = (name.into(), value.into());
        self.notes.note(&name, &value);
        self.headers.push((name, value));
    }

    /// Sends `reason` as the status line's reason phrase instead of the standard one (a
    /// WSGI application's `"299 Fine"`). Like a header value it must not hold CR, LF or
    /// NUL; the worker answers 500 instead of sending one that does.
    pub fn set_reason(&mut self, reason: impl Into<HeaderText>) {
        let reason = reason.into();
        self.notes.note_reason(&reason);
        self.reason = Some(reason);
    }

    /// Sends the header values and the reason phrase as ISO-8859-1, one byte per character,
    /// instead of their UTF-8 bytes: what WSGI (PEP 3333) and HTTP's obs-text mean by a
    /// value such as `café`. A value or phrase with a character above U+00FF then makes the
    /// worker answer 500 instead (checked once, when the response is sent, so that
    /// [`Response::header`] costs nothing more for everyone else).
    pub fn set_latin1(&mut self) {
        self.latin1 = true;
    }

    /// The reason phrase the status line carries: the one set with
    /// [`Response::set_reason`], else the standard one for the status.
    pub fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// The header fields set so far.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Sets the status and a `text/plain` body.
    pub fn plain(&mut self, status: u16, body: impl Into<Vec<u8>>) {
        self.status = status;
        self.header("Content-Type", "text/plain; charset=utf-8");
        self.body = Body::Bytes(body.into());
    }
}

/// What [`Response::header`] found out about the fields set so far, so that
/// the response path need not look at them again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderNotes {
    /// Some name is not a token, or some value holds CR, LF or NUL (RFC 9110 §5.5).
    pub invalid: bool,
    /// Some name is one the worker writes itself (see [`is_hop_or_ours`]): the serializer
    /// must skip it and look for `Connection: close`.
    pub special: bool,
}

impl HeaderNotes {
    /// Notes one field the application set.
    #[inline]
    pub fn note(&mut self, name: &str, value: &str) {
        self.invalid |= !is_token(name) || !value_is_safe(value);
        self.special |= is_hop_or_ours(name);
    }

    /// Notes a reason phrase the application set.
    pub fn note_reason(&mut self, reason: &str) {
        self.invalid |= !value_is_safe(reason);
    }
}

/// Whether every character of `text` is in ISO-8859-1 (U+0000 to U+00FF).
pub(crate) fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) <= 0xFF)
}

/// Headers the worker writes itself; the application's values for them are not sent.
/// Compares the length first: most names are none of these and cost one branch.
pub(crate) fn is_hop_or_ours(name: &str) -> bool {
    let ours = match name.len() {
        4 => "date",
        6 => "server",
        10 if name.as_bytes()[0] | 0x20 == b'c' => "connection",
        10 => "keep-alive",
        14 => "content-length",
        17 => "transfer-encoding",
        _ => return false,
    };
    name.eq_ignore_ascii_case(ours)
}

fn is_token(s: &str) -> bool {
    ferrocorn_http_parser::is_token(s.as_bytes())
}

/// No CR, LF or NUL: a value that cannot split the head.
fn value_is_safe(s: &str) -> bool {
    !s.bytes()
        .fold(false, |bad, b| bad | (b == b'\r') | (b == b'\n') | (b == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_reset_keeps_capacity() {
        let mut res = Response::new();
        res.header("A", "b");
        res.status = 404;
        let cap = res.headers.capacity();
        res.reset();
        assert_eq!(res.status, 200);
        assert_eq!(res.headers().count(), 0);
        assert_eq!(res.headers.capacity(), cap);
    }

    #[test]
    fn notes_follow_the_fields() {
        let mut res = Response::new();
        res.header("Content-Type", "text/plain");
        assert_eq!(res.notes, HeaderNotes::default());
        res.header("keep-ALIVE", "5");
        assert!(res.notes.special && !res.notes.invalid);
        res.reset();
        assert_eq!(res.notes, HeaderNotes::default());
        for bad in ["", "a b", "a:b", "é", "a\0"] {
            let mut res = Response::new();
            res.header(bad, "v");
            assert!(res.notes.invalid, "name {bad:?}");
        }
        for bad in ["a\rb", "a\nb", "\0", "ok\r"] {
            let mut res = Response::new();
            res.header("X", bad);
            assert!(res.notes.invalid, "value {bad:?}");
        }
        let mut res = Response::new();
        res.header("!#$%&'*+-.^_`|~09azAZ", "any \t visible \u{e9} text");
        assert!(!res.notes.invalid);
    }
}
