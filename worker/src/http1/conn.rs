//! One client connection: its socket, read and write buffers, and where it stands in the
//! request/response cycle. The event loop (`server/`) drives it through `http1::drive`.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::{OutBody, Transport};
use crate::app::{BodyPipe, Peer, Request, Response};
use crate::proto::{BodyDecoder, HttpError, ProxyHeader};

/// A connected socket, TCP or Unix.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// Sets TCP_NODELAY (TCP only); a failure only costs latency, so it is ignored.
    pub fn set_nodelay(&self) {
        if let Stream::Tcp(s) = self {
            let _ = s.set_nodelay(true);
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// A request and its response, owned by the connection and reused from one request to the
/// next; moved to the thread pool and back when `threads` > 1.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub req: Request,
    pub res: Response,
    /// When the head was complete (for the access log's duration atoms).
    pub started: Instant,
    /// The same time in nanoseconds on the loop's clock (for the duration histogram).
    pub started_ns: u64,
    /// Whether the connection may stay open after this response.
    pub keep_alive: bool,
    /// The request asked to close the connection (`Connection: close`, or HTTP/1.0 without
    /// keep-alive): the client sends nothing after it.
    pub client_last: bool,
}

/// The input side of a connection. Readiness is edge-triggered: after a read that did not
/// fill the room offered, the socket is known to be empty and the loop waits for the next
/// edge instead of issuing a read that would return `EAGAIN` (Linux raises a new readable
/// edge for every arrival of data): one system call fewer per keep-alive request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadSide {
    /// Nothing has arrived yet. A stopping worker keeps such a connection: its request may
    /// be on the way (closing it would drop it); it is served with `Connection: close`, or
    /// closed at its header deadline.
    Fresh,
    /// Data may be waiting in the socket: read it.
    Ready,
    /// The last read found the socket empty: wait for the next readable edge.
    Drained,
    /// The poller reported the peer's FIN, possibly along with data: no later edge will
    /// announce the end of file, so reads go on until it comes, whatever they return.
    Ending,
    /// As `Ending`, and the last read did not fill the room offered.
    EndingDrained,
    /// End of file read: the client sends nothing more.
    Closed,
}

// The states carry no data, so that comparing them is comparing a byte: `drive` does it
// several times per request.
impl ReadSide {
    /// After a readiness event: readable, and whether the peer closed its side.
    pub fn on_event(&mut self, readable: bool, peer_closed: bool) {
        if peer_closed {
            if *self != ReadSide::Closed {
                *self = ReadSide::Ending;
            }
        } else if readable {
            self.rearm();
        }
    }

    /// Reads again although no new edge came (the loop has a reason to look: a stop, a
    /// stream resumed).
    pub fn rearm(&mut self) {
        match *self {
            ReadSide::Drained => *self = ReadSide::Ready,
            ReadSide::EndingDrained => *self = ReadSide::Ending,
            _ => {}
        }
    }

    /// After a read of `n` > 0 bytes; `full`: it filled all the room offered.
    pub fn after_read(&mut self, full: bool) {
        *self = match (*self, full) {
            (ReadSide::Closed, _) => ReadSide::Closed,
            (ReadSide::Ending | ReadSide::EndingDrained, true) => ReadSide::Ending,
            (ReadSide::Ending | ReadSide::EndingDrained, false) => ReadSide::EndingDrained,
            (_, true) => ReadSide::Ready,
            (_, false) => ReadSide::Drained,
        };
    }

    /// Whether nothing unread is known to wait in the socket: the last read was short, or
    /// the end of file was read.
    pub fn is_drained(self) -> bool {
        matches!(
            self,
            ReadSide::Drained | ReadSide::EndingDrained | ReadSide::Closed
        )
    }
}

/// The output side of a connection: what follows once everything owed is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteSide {
    /// Wait for the next request.
    Open,
    /// Close after a lingering drain: shut down our side, then read until the client
    /// closes, so that unread input does not turn our close into a reset that destroys
    /// the response in flight (see `Phase::Draining`).
    CloseLingering,
    /// Close: the request answered was the client's last. If nothing is unread, closing at
    /// once cannot reset the answer (nginx's `lingering_close on` heuristic), which saves a
    /// shutdown, a wake-up and a read; otherwise as `CloseLingering`.
    CloseAfterLast,
}

/// The size a connection's read buffer starts at: a request of a head and a 4 KiB body (the
/// `echo-post-4k-64` benchmark) fits in one read (at 4 KiB it took two). 64 connections
/// hold 0.5 MiB.
const READ_BUFFER_START: usize = 8 * 1024;

/// Where a connection stands.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Waiting for (more of) a request head.
    Head,
    /// Receiving a request body before calling the application.
    Body {
        decoder: BodyDecoder,
        spool: Spool,
        /// Stream the body to the pool if it does not arrive at once.
        streamable: bool,
        /// `Content-Length`, if that is the framing.
        length: Option<u64>,
    },
    /// The application runs on the pool and reads the body as it arrives through `pipe`.
    Streaming {
        decoder: BodyDecoder,
        pipe: Arc<BodyPipe>,
        /// The application is behind: the socket is not read until it catches up.
        paused: bool,
    },
    /// The application is running on the pool.
    Dispatched,
    /// A deferred application holds the exchange (`http1::deferred`).
    Deferred(Box<super::deferred::State>),
    /// A WebSocket connection after a `101` (`crate::ws`); no more HTTP.
    WebSocket(Box<crate::ws::Session>),
    /// The last response is written and our side is shut down; reading until the client
    /// closes, so that unread input does not turn our close into a reset that destroys the
    /// response in flight (lingering close).
    Draining,
}

/// A request body being received: memory first, an unlinked temporary file beyond
/// `RequestBody::MEMORY_LIMIT`.
#[derive(Debug)]
pub(crate) struct Spool {
    pub mem: Vec<u8>,
    pub file: Option<File>,
    pub len: u64,
    pub error: Option<io::Error>,
}

impl Spool {
    pub fn new(mem: Vec<u8>) -> Spool {
        Spool {
            mem,
            file: None,
            len: 0,
            error: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.len += bytes.len() as u64;
        if self.file.is_none()
            && self.mem.len() + bytes.len() > crate::app::RequestBody::MEMORY_LIMIT
        {
            match temp_file() {
                Ok(mut f) => {
                    if let Err(e) = f.write_all(&self.mem) {
                        self.error = Some(e);
                        return;
                    }
                    self.mem.clear();
                    self.file = Some(f);
                }
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        match &mut self.file {
            Some(f) => {
                if let Err(e) = f.write_all(bytes) {
                    self.error = Some(e);
                }
            }
            None => self.mem.extend_from_slice(bytes),
        }
    }
}

/// Creates an unlinked temporary file in the system temporary directory.
fn temp_file() -> io::Result<File> {
    let template = std::env::temp_dir().join("ferrocorn-body-XXXXXX");
    let (fd, path) = nix::unistd::mkstemp(&template).map_err(io::Error::from)?;
    let _ = std::fs::remove_file(&path);
    Ok(File::from(fd))
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The socket, or a TLS session over it.
    pub stream: Transport,
    /// Distinguishes this connection from a later one in the same slot.
    pub serial: u64,
    /// The slot (and token) of this connection.
    pub slot: usize,
    /// Read buffer; always initialized to its length, data lives in `rpos..rend`.
    pub rbuf: Vec<u8>,
    /// Bytes of `rbuf` already consumed.
    pub rpos: usize,
    /// Where the head parser stopped in a partial head at `rbuf[rpos..rend]`, so that each
    /// read does not re-parse it from its start. The parser clears it when a head completes
    /// or fails; the bytes from `rpos` may move (compaction) but never change meanwhile.
    pub head_progress: ferrocorn_http_parser::Progress,
    /// End of the received data in `rbuf`.
    pub rend: usize,
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    pub out: Option<OutBody>,
    pub phase: Phase,
    /// `None` while the exchange is on the pool.
    pub exchange: Option<Box<Exchange>>,
    pub deadline: Instant,
    /// When the connection last became idle (accepted, a response written with nothing
    /// after it, a lingering close begun): at `worker_connections`, the connections idle
    /// longest are closed first (see [`Conn::is_reclaimable`]).
    pub idle_since: Instant,
    /// When the body being received began (its head ended, or a paused stream resumed) and
    /// the bytes read since: the body's deadline follows from them (see
    /// [`Conn::body_deadline`]).
    pub body_started: Instant,
    pub body_received: u64,
    /// What is known of the input: whether to read now, wait for an edge, or expect no more.
    pub read: ReadSide,
    /// What follows once the output is written.
    pub write: WriteSide,
    /// Bytes discarded while draining.
    pub drained_bytes: usize,
    /// Whether a PROXY protocol header may still come first, and from whom.
    pub proxy: ProxyHeader,
    /// The peer may set the scheme headers (`forwarded_allow_ips`).
    pub trusted: bool,
    /// An error to answer instead of the application's response (a streamed body broke off
    /// while the application ran).
    pub pending_error: Option<HttpError>,
    /// TCP_NODELAY has been set (see `queue_response`).
    pub nodelay: bool,
    /// A request whose head has arrived and whose response is not queued yet: counted in
    /// flight until then (or until the connection closes).
    pub in_flight: bool,
}

impl Conn {
    pub fn new(
        stream: Transport,
        peer: Peer,
        local: Option<std::net::SocketAddr>,
        serial: u64,
        now: Instant,
        deadline: Instant,
    ) -> Conn {
        let tls = matches!(stream, Transport::Tls(_));
        Conn {
            stream,
            serial,
            slot: 0,
            rbuf: Vec::new(),
            rpos: 0,
            head_progress: ferrocorn_http_parser::Progress::default(),
            rend: 0,
            wbuf: Vec::new(),
            wpos: 0,
            out: None,
            phase: Phase::Head,
            exchange: Some(Box::new(Exchange {
                req: Request::new(peer, local, tls),
                res: Response::new(),
                started: deadline,
                started_ns: 0,
                keep_alive: true,
                client_last: false,
            })),
            deadline,
            idle_since: now,
            body_started: now,
            body_received: 0,
            read: ReadSide::Fresh,
            write: WriteSide::Open,
            drained_bytes: 0,
            proxy: ProxyHeader::Done,
            trusted: false,
            pending_error: None,
            nodelay: false,
            in_flight: false,
        }
    }

    /// Whether output is waiting to be written (TLS records included).
    pub fn output_pending(&self) -> bool {
        self.wpos < self.wbuf.len() || self.out.is_some() || self.stream.has_queued()
    }

    /// Whether the connection waits for a pool thread to read its streamed body.
    pub fn awaiting_piece(&self) -> bool {
        matches!(
            &self.out,
            Some(OutBody::Stream {
                offload: true,
                ready: None,
                ..
            })
        ) && self.wpos == self.wbuf.len()
    }

    /// Whether the connection is between requests with nothing buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head) && self.rpos == self.rend && !self.output_pending()
    }

    /// Starts counting a request body's bytes from `now` (see [`Conn::body_deadline`]).
    pub fn start_body_clock(&mut self, now: Instant) {
        self.body_started = now;
        self.body_received = 0;
    }

    /// When the body being received times out, after a read at `now` (see
    /// [`body_deadline`]).
    pub fn body_deadline(&self, now: Instant, timeout: Duration, min_rate: u64) -> Instant {
        body_deadline(
            self.body_started,
            self.body_received,
            now,
            timeout,
            min_rate,
        )
    }

    /// Whether closing the connection loses no work: it waits for a request that has not begun
    /// (a new connection that has sent nothing, a kept-alive one between requests) or is in
    /// its lingering close. At `worker_connections`, such connections make room for new ones
    /// (nginx's "reusable" connections): the client of an idle one may open another.
    pub fn is_reclaimable(&self) -> bool {
        self.is_idle() || matches!(self.phase, Phase::Draining)
    }

    /// Idle after at least one exchange: what a stopping worker may close at once. A
    /// connection accepted but silent so far may carry a request already in flight.
    pub fn is_idle_between_requests(&self) -> bool {
        self.read != ReadSide::Fresh && self.is_idle()
    }

    /// Reads once into the free end of `rbuf`, growing it (doubling) while unconsumed input
    /// stays under `max` bytes. Returns the bytes read (0 on end of file) and whether the
    /// read filled all the room it was offered (if not, the socket is drained for now).
    pub fn read_some(&mut self, max: usize) -> io::Result<(usize, bool)> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
            if self.rbuf.len() > 64 * 1024 {
                self.rbuf = Vec::new();
            }
        } else if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        if self.rbuf.len() - self.rend < 1024 {
            let grown = (self.rbuf.len() * 2)
                .max(READ_BUFFER_START)
                .min(max.max(READ_BUFFER_START) + 1024);
            if grown <= self.rbuf.len() {
                return Err(io::Error::other("read buffer full"));
            }
            self.rbuf.resize(grown, 0);
        }
        let (n, more) = self.stream.read_some(&mut self.rbuf[self.rend..])?;
        self.rend += n;
        Ok((n, more))
    }
}

/// When a request body that began at `started` and has brought `received` bytes so far times
/// out, after a read at `now`: `timeout` without a byte, or, with a `min_rate` (bytes per
/// second, 0 for none), once it has come slower than that on average since `started`, after
/// a grace of `timeout` (Apache's `mod_reqtimeout` `MinRate`). Without the rate a client
/// sending a few bytes at a time held its connection forever, as long as some byte came
/// within each `timeout`.
pub(crate) fn body_deadline(
    started: Instant,
    received: u64,
    now: Instant,
    timeout: Duration,
    min_rate: u64,
) -> Instant {
    let idle = now + timeout;
    if min_rate == 0 {
        return idle;
    }
    let earned =
        Duration::try_from_secs_f64(received as f64 / min_rate as f64).unwrap_or(Duration::MAX);
    started
        .checked_add(timeout.saturating_add(earned))
        .map_or(idle, |by_rate| by_rate.min(idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_fin_that_came_with_data_is_read_to_the_end_of_file() {
        let mut read = ReadSide::Fresh;
        read.on_event(true, true);
        read.after_read(false);
        // A short read does not mean "wait for an edge": none will come for the FIN.
        assert_eq!(read, ReadSide::EndingDrained);
        assert!(read.is_drained());
        read.rearm();
        assert_eq!(read, ReadSide::Ending);
        // An ordinary short read waits for the next edge, which makes the socket ready.
        let mut read = ReadSide::Ready;
        read.after_read(false);
        assert_eq!(read, ReadSide::Drained);
        read.on_event(true, false);
        assert_eq!(read, ReadSide::Ready);
        read.on_event(false, true);
        assert_eq!(read, ReadSide::Ending);
    }

    /// Regression: a body's deadline moved `timeout` ahead with every read, so 40 bytes a
    /// second held a connection forever. With a minimum rate it comes once the body is behind.
    #[test]
    fn a_trickling_body_runs_out_of_time() {
        let start = Instant::now();
        let at = |secs: u64| start + SECOND * secs as u32;
        // 40 bytes a second against 500: the deadline stops following the reads.
        let mut received = 0;
        let mut deadline = body_deadline(start, 0, start, 10 * SECOND, 500);
        let mut t = 0;
        while at(t) < deadline {
            t += 1;
            received += 40;
            deadline = body_deadline(start, received, at(t), 10 * SECOND, 500);
        }
        assert_eq!(t, 11, "timed out after {t} s");
        // Without a rate, only a pause of `timeout` ends it.
        let no_rate = body_deadline(start, 40 * 1000, at(1000), 10 * SECOND, 0);
        assert_eq!(no_rate, at(1010));
    }

    #[test]
    fn a_fast_body_is_bounded_by_its_pauses_only() {
        let start = Instant::now();
        // 1 MB in the first second at 500 bytes/s earns 2000 s: a pause of 10 s still ends it.
        let d = body_deadline(start, 1_000_000, start + SECOND, 10 * SECOND, 500);
        assert_eq!(d, start + 11 * SECOND);
        // Huge counts and rates do not overflow.
        let d = body_deadline(start, u64::MAX, start, 10 * SECOND, 1);
        assert_eq!(d, start + 10 * SECOND);
        let d = body_deadline(start, 0, start, 10 * SECOND, u64::MAX);
        assert_eq!(d, start + 10 * SECOND);
    }
}
