//! The `App` interface: the request an application is handed, the response it fills in, and
//! the body kinds it may answer with (bytes, a file sent with `sendfile`, or a stream).
//!
//! The event loop owns one [`Request`] and one [`Response`] per connection and reuses them
//! from one request to the next: an application that answers with static headers and a
//! static body (like `hello`) causes no allocation per request.
//!
//! `request.rs` holds [`Request`], `body.rs` the [`RequestBody`] and the pipe that streams
//! one, `response.rs` the [`Response`] with its [`Body`] and the notes its fields get as they
//! are set, `deferred.rs` the message channel of an application that answers later. The serializer (`crate::response`) depends on these types; they depend on nothing
//! of the worker's but the pool's "waiting for the client" mark.

mod body;
mod deferred;
mod request;
mod response;

use std::fmt;
use std::net::SocketAddr;

pub(crate) use body::BodyPipe;
pub use body::RequestBody;
pub use deferred::{DeferredApp, Event, ExchangeId, Inbox, Replies, Reply, WsMessage};
pub use request::Request;
pub(crate) use response::{is_hop_or_ours, is_latin1};
pub use response::{Body, HeaderText, Response};

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

    /// An application that answers later, through messages on its own thread (see
    /// [`DeferredApp`]), returns itself here; the worker then never calls
    /// [`call`](App::call). Asked once, after [`init_worker`](App::init_worker), so that
    /// the answer may depend on what the application turned out to be once loaded.
    fn deferred(&self) -> Option<&dyn DeferredApp> {
        None
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
