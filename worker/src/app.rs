//! The `App` interface: the request an application is handed, the response it fills in, and
//! the body kinds it may answer with (bytes, a file sent with `sendfile`, or a stream).
//!
//! The event loop owns one [`Request`] and one [`Response`] per connection and reuses them
//! from one request to the next: an application that answers with static headers and a
//! static body (like `hello`) causes no allocation per request.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};

use crate::response::HeaderNotes;

/// A Rust application served by the worker.
///
/// `call` runs on the event loop thread when `threads` = 1 and on the worker's thread pool
/// when `threads` > 1, so it must be `Send + Sync`. It reads the request (see
/// [`RequestBody`] for how the body arrives) and fills `response`, which arrives reset to
/// `200 OK` with no headers and an empty body. A panic inside `call` is caught and answered
/// with `500 Internal Server Error`.
///
/// ```
/// use std::io::Read;
/// use ferrocorn_worker::{App, Body, Request, Response};
///
/// /// Answers the length of the request body.
/// struct Length;
///
/// impl App for Length {
///     fn call(&self, request: &mut Request, response: &mut Response) {
///         let mut body = Vec::new();
///         if request.body().read_to_end(&mut body).is_err() {
///             response.plain(400, "the body broke off\n");
///             return;
///         }
///         response.header("Content-Type", "text/plain");
///         response.body = Body::Bytes(format!("{} bytes\n", body.len()).into_bytes());
///     }
/// }
///
/// let mut request = Request::for_test("POST", "/", &[("Host", "x")], b"hello");
/// let mut response = Response::new();
/// Length.call(&mut request, &mut response);
/// assert_eq!(response.status, 200);
/// assert!(matches!(&response.body, Body::Bytes(b) if b == b"5 bytes\n"));
/// ```
pub trait App: Send + Sync + 'static {
    /// Answers one request by filling `response`.
    fn call(&self, request: &mut Request, response: &mut Response);

    /// Prepares this worker process to serve, after the fork and before the first
    /// connection is accepted (an embedded interpreter imports the application here unless
    /// it was preloaded). An error stops the worker before it serves; the arbiter logs the
    /// message and, if nothing has served yet, stops with it.
    fn init_worker(&self) -> Result<(), String> {
        Ok(())
    }

    /// Runs in the worker process after its event loop has stopped, before it exits (an
    /// interpreter's exit handlers).
    fn exit_worker(&self) {}

    /// Runs in the arbiter just before each `fork` of a worker; with
    /// [`after_fork_parent`](App::after_fork_parent) and
    /// [`after_fork_child`](App::after_fork_child) it brackets the fork, so an application
    /// loaded in the arbiter (a preloaded interpreter) can hold its locks across it.
    fn before_fork(&self) {}

    /// Runs in the arbiter right after a `fork` (or a failed one).
    fn after_fork_parent(&self) {}

    /// Runs first thing in a new worker process, before anything else touches the
    /// application.
    fn after_fork_child(&self) {}

    /// Whether `CONNECT` requests reach [`call`](App::call). By default (`false`) the worker
    /// answers them itself with `501 Not Implemented` and closes the connection, so that an
    /// application that does not know CONNECT never answers one with a 2xx, which clients and
    /// proxies read as the start of a tunnel (RFC 9110 §9.3.6). An application that says
    /// `true` gets the request as any other; a 2xx answer is then sent as a tunnel's head
    /// (no framing, no body) and the connection closes after it: the worker does not tunnel.
    fn handles_connect(&self) -> bool {
        false
    }
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
    pub(crate) local: Option<SocketAddr>,
    pub(crate) body: RequestBody,
    pub(crate) secure: bool,
}

impl Request {
    pub(crate) fn new(peer: Peer, local: Option<SocketAddr>) -> Request {
        Request {
            head: Vec::new(),
            method: 0..0,
            target: 0..0,
            version: Version::Http11,
            headers: Vec::new(),
            peer,
            local,
            body: RequestBody::empty(),
            secure: false,
        }
    }

    /// Builds a request by hand, for testing applications without a socket.
    pub fn for_test(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut req = Request::new(
            Peer::Tcp(SocketAddr::from(([127, 0, 0, 1], 1))),
            Some(SocketAddr::from(([127, 0, 0, 1], 8000))),
        );
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

    /// Whether the method is `HEAD` (compared as bytes: no UTF-8 check on the hot path).
    pub(crate) fn is_head(&self) -> bool {
        self.head.get(self.method.clone()) == Some(&b"HEAD"[..])
    }

    /// Whether the method is `CONNECT`.
    pub(crate) fn is_connect(&self) -> bool {
        self.head.get(self.method.clone()) == Some(&b"CONNECT"[..])
    }

    /// The request target, exactly as received (`/a/b?x=1`).
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path part of the target (before `?`), not percent-decoded. For an
    /// absolute-form target (`http://host/a?b`, which a server must accept, RFC 9112
    /// §3.2.2) the path after the authority (`/a`, or `/` when there is none).
    pub fn path(&self) -> &str {
        let t = self.target();
        let t = t.split_once('?').map_or(t, |(p, _)| p);
        match absolute_form_rest(t) {
            Some("") => "/",
            Some(rest) => rest,
            None => t,
        }
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

    /// The address of the TCP listener that accepted the connection, as bound (`0.0.0.0`
    /// for a wildcard bind, as gunicorn reports it); `None` on a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Sets where the request came from and the listener's address (tests of
    /// applications: a Unix-socket client is `(Peer::Unix, None)`).
    pub fn set_peer_for_test(&mut self, peer: Peer, local: Option<SocketAddr>) {
        self.peer = peer;
        self.local = local;
    }

    /// Sets whether the request arrived over a secure channel (tests of applications).
    pub fn set_secure_for_test(&mut self, secure: bool) {
        self.secure = secure;
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

/// For `scheme://authority/rest`, the `/rest` part (possibly empty).
fn absolute_form_rest(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    Some(rest.find('/').map_or("", |i| &rest[i..]))
}

fn push_range(buf: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    start..buf.len()
}

/// The body of a request, decoded (chunked coding removed), readable with [`Read`].
///
/// How it arrives: the event loop never blocks on the socket. A body up to
/// [`RequestBody::MEMORY_LIMIT`] is received in full before the application is called. A
/// larger one is *streamed* when `threads` > 1: the application is called on the pool at once
/// and its reads block until the loop has received more (the loop stops reading the socket
/// while the application is [`RequestBody::STREAM_BUFFER`] bytes behind). With `threads` = 1
/// the application runs on the loop thread and cannot wait for the socket, so a larger body
/// is received in full first, spilling to an unlinked temporary file. Either way
/// `limit_request_body` caps the size (413), and a body that breaks off (malformed chunk,
/// timeout, closed connection) makes `read` fail.
#[derive(Debug)]
pub struct RequestBody {
    inner: BodyStore,
    len: Option<u64>,
}

#[derive(Debug)]
enum BodyStore {
    Memory(Cursor<Vec<u8>>),
    File(File),
    Pipe(Arc<BodyPipe>),
}

impl RequestBody {
    /// Bodies larger than this are streamed (`threads` > 1) or kept in a temporary file.
    pub const MEMORY_LIMIT: usize = 64 * 1024;
    /// How far a streamed body may run ahead of the application's reads.
    pub const STREAM_BUFFER: usize = 256 * 1024;

    pub(crate) fn empty() -> RequestBody {
        RequestBody::from_bytes(Vec::new())
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> RequestBody {
        RequestBody {
            len: Some(bytes.len() as u64),
            inner: BodyStore::Memory(Cursor::new(bytes)),
        }
    }

    pub(crate) fn from_file(mut file: File, len: u64) -> io::Result<RequestBody> {
        file.seek(SeekFrom::Start(0))?;
        Ok(RequestBody {
            inner: BodyStore::File(file),
            len: Some(len),
        })
    }

    pub(crate) fn from_pipe(pipe: Arc<BodyPipe>, len: Option<u64>) -> RequestBody {
        RequestBody {
            inner: BodyStore::Pipe(pipe),
            len,
        }
    }

    /// The body's length in bytes when known: always for a body received in full, from
    /// `Content-Length` for a streamed one, `None` for a streamed chunked body.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// Makes this an empty body, keeping the memory buffer (unless it grew large) in place.
    pub(crate) fn clear(&mut self) {
        match &mut self.inner {
            BodyStore::Memory(c) if c.get_ref().capacity() <= 16 * 1024 => {
                c.get_mut().clear();
                c.set_position(0);
                self.len = Some(0);
            }
            _ => *self = RequestBody::empty(),
        }
    }

    /// Takes back the memory buffer for reuse (unless it grew large), leaving an empty body.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let old = std::mem::take(self);
        match old.inner {
            BodyStore::Memory(c) if c.get_ref().capacity() <= 16 * 1024 => {
                let mut v = c.into_inner();
                v.clear();
                v
            }
            _ => Vec::new(),
        }
    }
}

impl Default for RequestBody {
    /// An empty body: `std::mem::take(request.body())` moves the body out of a request
    /// (an application that reads it after `call` returns, from another object).
    fn default() -> RequestBody {
        RequestBody::empty()
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyStore::Memory(c) => c.read(buf),
            BodyStore::File(f) => f.read(buf),
            BodyStore::Pipe(p) => p.read(buf),
        }
    }
}

/// A streamed body between the event loop (writer) and an application thread (reader).
pub(crate) struct BodyPipe {
    state: Mutex<PipeState>,
    cond: Condvar,
    /// Called (from the reader's thread) when a paused connection may read again.
    resume: Box<dyn Fn() + Send + Sync>,
}

#[derive(Debug, Default)]
struct PipeState {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes in `chunks`, minus what was read of the front chunk.
    buffered: usize,
    /// Read position in the front chunk.
    front_pos: usize,
    finished: bool,
    failed: Option<String>,
    /// The loop stopped reading the socket until the reader catches up.
    paused: bool,
}

impl fmt::Debug for BodyPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyPipe")
            .field("state", &self.state)
            .finish()
    }
}

impl BodyPipe {
    pub(crate) fn new(resume: Box<dyn Fn() + Send + Sync>) -> BodyPipe {
        BodyPipe {
            state: Mutex::new(PipeState::default()),
            cond: Condvar::new(),
            resume,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends decoded body bytes. Returns whether the loop should pause reading (the reader
    /// is [`RequestBody::STREAM_BUFFER`] behind); the pipe then calls `resume` later.
    pub(crate) fn push(&self, bytes: Vec<u8>) -> bool {
        let mut s = self.lock();
        if !bytes.is_empty() {
            s.buffered += bytes.len();
            s.chunks.push_back(bytes);
            self.cond.notify_all();
        }
        if s.buffered > RequestBody::STREAM_BUFFER {
            s.paused = true;
        }
        s.paused
    }

    /// Marks the end of the body.
    pub(crate) fn finish(&self) {
        self.lock().finished = true;
        self.cond.notify_all();
    }

    /// Breaks the body off: pending and later reads fail with `message`.
    pub(crate) fn fail(&self, message: &str) {
        let mut s = self.lock();
        if !s.finished && s.failed.is_none() {
            s.failed = Some(message.to_string());
        }
        self.cond.notify_all();
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.lock();
        loop {
            if let Some(front) = s.chunks.front() {
                let start = s.front_pos;
                let n = (front.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&front[start..start + n]);
                let front_len = front.len();
                s.front_pos += n;
                s.buffered -= n;
                if s.front_pos == front_len {
                    s.chunks.pop_front();
                    s.front_pos = 0;
                }
                if s.paused && s.buffered <= RequestBody::STREAM_BUFFER / 4 {
                    s.paused = false;
                    drop(s);
                    (self.resume)();
                }
                return Ok(n);
            }
            if let Some(message) = &s.failed {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    message.clone(),
                ));
            }
            if s.finished {
                return Ok(0);
            }
            // Waiting for the client is not the application being stuck.
            s = crate::pool::waiting_for_client(|| self.cond.wait(s))
                .unwrap_or_else(|p| p.into_inner());
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
            body: Body::Empty,
        }
    }

    /// Resets to `200 OK`, no headers, empty body, keeping the header vector's memory.
    pub(crate) fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.notes = HeaderNotes::default();
        self.reason = None;
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
        let abs = Request::for_test("GET", "http://example.com/p/q?z=1", &[], b"");
        assert_eq!((abs.path(), abs.query()), ("/p/q", "z=1"));
        let bare = Request::for_test("GET", "http://example.com", &[], b"");
        assert_eq!(bare.path(), "/");
        assert_eq!(Request::for_test("OPTIONS", "*", &[], b"").path(), "*");
        assert_eq!(req.header("X-a"), Some(&b"1"[..]));
        assert_eq!(req.headers().count(), 3);
        let mut body = String::new();
        req.body().read_to_string(&mut body).unwrap();
        assert_eq!(body, "hi");
    }

    #[test]
    fn pipe_streams_pauses_and_resumes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let resumed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&resumed);
        let pipe = Arc::new(BodyPipe::new(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        let mut body = RequestBody::from_pipe(Arc::clone(&pipe), None);
        let big = vec![7u8; RequestBody::STREAM_BUFFER + 1];
        assert!(pipe.push(big.clone()), "over the buffer: pause");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            body.read_to_end(&mut all).map(|_| all)
        });
        pipe.push(b"tail".to_vec());
        pipe.finish();
        let all = reader.join().unwrap().unwrap();
        assert_eq!(all.len(), big.len() + 4);
        assert!(all.ends_with(b"tail"));
        assert_eq!(
            resumed.load(Ordering::SeqCst),
            1,
            "resumed once the reader caught up"
        );
    }

    #[test]
    fn failed_pipe_fails_the_read() {
        let pipe = Arc::new(BodyPipe::new(Box::new(|| {})));
        let mut body = RequestBody::from_pipe(Arc::clone(&pipe), Some(10));
        pipe.push(b"abc".to_vec());
        pipe.fail("client went away");
        let mut buf = [0u8; 8];
        assert_eq!(body.read(&mut buf).unwrap(), 3);
        let err = body.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("client went away"));
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
