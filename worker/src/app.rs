//! The `App` interface: the request an application is handed, the response it fills in, and
//! the body kinds it may answer with (bytes, a file sent with `sendfile`, or a stream).
//!
//! The event loop owns one [`Request`] and one [`Response`] per connection and reuses them
//! from one request to the next: an application that answers with static headers and a
//! static body (like `hello`) causes no allocation per request.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::ops::Range;

/// A Rust application served by the worker.
///
/// `call` runs on the event loop thread when `threads` = 1 and on the worker's thread pool
/// when `threads` > 1, so it must be `Send + Sync`. It reads the request (the body is fully
/// received before `call`, see [`RequestBody`]) and fills `response`, which arrives reset to
/// `200 OK` with no headers and an empty body. A panic inside `call` is caught and answered
/// with `500 Internal Server Error`.
pub trait App: Send + Sync + 'static {
    /// Answers one request by filling `response`.
    fn call(&self, request: &mut Request, response: &mut Response);
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    /// The version as written on the request line (`HTTP/1.1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A client on a Unix socket (no address).
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{}", addr.ip()),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// A parsed request: the head's bytes kept in one reusable buffer, the parts as ranges into
/// it, and the body.
#[derive(Debug)]
pub struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
    pub(crate) peer: Peer,
    pub(crate) body: RequestBody,
    pub(crate) secure: bool,
}

impl Request {
    pub(crate) fn new(peer: Peer) -> Request {
        Request {
            head: Vec::new(),
            method: 0..0,
            target: 0..0,
            version: Version::Http11,
            headers: Vec::new(),
            peer,
            body: RequestBody::empty(),
            secure: false,
        }
    }

    /// Builds a request by hand, for testing applications without a socket.
    pub fn for_test(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut req = Request::new(Peer::Tcp(SocketAddr::from(([127, 0, 0, 1], 1))));
        req.method = push_range(&mut req.head, method.as_bytes());
        req.target = push_range(&mut req.head, target.as_bytes());
        for (name, value) in headers {
            let n = push_range(&mut req.head, name.as_bytes());
            let v = push_range(&mut req.head, value.as_bytes());
            req.headers.push((n, v));
        }
        req.body = RequestBody::from_bytes(body.to_vec());
        req
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // The parser only accepts token characters in the method and visible ASCII in the
        // target, so these ranges are always valid UTF-8; fall back to "" defensively.
        std::str::from_utf8(&self.head[range.clone()]).unwrap_or("")
    }

    /// The method, exactly as received (`GET`).
    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The request target, exactly as received (`/a/b?x=1`).
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path part of the target (before `?`), not percent-decoded.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The query part of the target (after `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target().split_once('?').map_or("", |(_, q)| q)
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// `"https"` when a peer in `forwarded_allow_ips` said so with a scheme header
    /// (`X-Forwarded-Proto: https`, …), else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    /// The client's address (from the PROXY protocol header when one was accepted).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The header fields in received order, names as received, values as bytes (they may
    /// hold obs-text, RFC 9110 §5.5).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (self.text(n), &self.head[v.clone()]))
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The request body, readable with [`std::io::Read`].
    pub fn body(&mut self) -> &mut RequestBody {
        &mut self.body
    }
}

fn push_range(buf: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    start..buf.len()
}

/// The body of a request, already received in full and decoded (chunked coding removed).
///
/// Design: the event loop receives and decodes the whole body before it calls the
/// application, never blocking on the socket. Bodies up to [`RequestBody::MEMORY_LIMIT`]
/// stay in memory; a larger body spills to an unlinked temporary file, so a slow upload
/// costs neither a thread nor unbounded memory. `limit_request_body` caps the size (413).
#[derive(Debug)]
pub struct RequestBody {
    inner: BodyStore,
    len: u64,
}

#[derive(Debug)]
enum BodyStore {
    Memory(Cursor<Vec<u8>>),
    File(File),
}

impl RequestBody {
    /// Bodies larger than this are kept in a temporary file rather than in memory.
    pub const MEMORY_LIMIT: usize = 64 * 1024;

    pub(crate) fn empty() -> RequestBody {
        RequestBody {
            inner: BodyStore::Memory(Cursor::new(Vec::new())),
            len: 0,
        }
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> RequestBody {
        RequestBody {
            len: bytes.len() as u64,
            inner: BodyStore::Memory(Cursor::new(bytes)),
        }
    }

    pub(crate) fn from_file(mut file: File, len: u64) -> io::Result<RequestBody> {
        file.seek(SeekFrom::Start(0))?;
        Ok(RequestBody {
            inner: BodyStore::File(file),
            len,
        })
    }

    /// The body's length in bytes (after removing any chunked coding).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes back the memory buffer for reuse, leaving an empty body.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let old = std::mem::replace(self, RequestBody::empty());
        match old.inner {
            BodyStore::Memory(c) => {
                let mut v = c.into_inner();
                v.clear();
                v
            }
            BodyStore::File(_) => Vec::new(),
        }
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyStore::Memory(c) => c.read(buf),
            BodyStore::File(f) => f.read(buf),
        }
    }
}

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
    /// The reader is read on the event loop thread, in pieces, as the client accepts data:
    /// it should not block for long.
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
            body: Body::Empty,
        }
    }

    /// Resets to `200 OK`, no headers, empty body, keeping the header vector's memory.
    pub(crate) fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body = Body::Empty;
    }

    /// Adds a header field. Names must be tokens and values must not contain CR, LF or NUL
    /// (RFC 9110 §5.5); the worker answers 500 instead of sending a response that breaks
    /// this, so a header value can never split the response.
    pub fn header(&mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) {
        self.headers.push((name.into(), value.into()));
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

/// The reason phrase for a status code (RFC 9110 §15), empty when unknown.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_accessors_split_target_and_find_headers() {
        let mut req = Request::for_test(
            "GET",
            "/a/b?x=1&y",
            &[("Host", "h"), ("X-A", "1"), ("x-a", "2")],
            b"hi",
        );
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), "x=1&y");
        assert_eq!(req.header("X-a"), Some(&b"1"[..]));
        assert_eq!(req.headers().count(), 3);
        let mut body = String::new();
        req.body().read_to_string(&mut body).unwrap();
        assert_eq!(body, "hi");
    }

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
}
