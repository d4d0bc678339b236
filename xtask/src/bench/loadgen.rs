//! The built-in load generator, used when wrk is not installed: one thread per connection,
//! blocking sockets, the same figures as the wrk scripts (requests, bytes, errors, p50/p99
//! latency from the write of a request, or of a pipelined batch, to the end of its last
//! response). It drives the TLS scenarios too, with a rustls client (TLS 1.3, no session
//! resumption: every new connection is a full handshake).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::thread;
use std::time::{Duration, Instant};

use super::procfs::{rusage_cpu, Who};
use super::scenario::{Latency, LoadFigures, Mode, Scenario};

/// How long a read or a write may block before it counts as a timeout (wrk's `--timeout`).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What one connection thread counted.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    bytes: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// The TLS client of the TLS scenarios: TLS 1.3 only, trusting `cert` (the servers' own),
/// keeping no session, so that `Connection: close` means a full handshake per request.
pub fn tls_client(cert: &Path) -> Result<Arc<ClientConfig>> {
    let cert = CertificateDer::from_pem_file(cert)
        .with_context(|| format!("could not read {}", cert.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).context("the bench certificate")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// A connection of the generator: plain TCP or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A new connection to `addr`, with a finished TLS handshake when `tls` is given.
fn open(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
    let stream = connect(addr)?;
    let Some(config) = tls else {
        return Ok(Conn::Plain(stream));
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(Conn::Tls(Box::new(tls)))
}

/// Runs `scenario` against `addr` for `duration` and returns its figures; over TLS with
/// `tls`.
pub fn run(
    addr: SocketAddr,
    scenario: &Scenario,
    duration: Duration,
    tls: Option<Arc<ClientConfig>>,
) -> LoadFigures {
    let request = Arc::new(scenario.request_bytes(&addr.to_string()));
    let depth = match scenario.mode {
        Mode::Pipeline(depth) => depth,
        _ => 1,
    };
    let batch: Arc<Vec<u8>> = Arc::new(
        request
            .iter()
            .copied()
            .cycle()
            .take(request.len() * depth)
            .collect(),
    );
    let close_each = scenario.mode == Mode::Close;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = rusage_cpu(Who::SelfProcess);
    let start = Instant::now();
    let threads: Vec<_> = (0..scenario.connections)
        .map(|_| {
            let (batch, stop, tls) = (Arc::clone(&batch), Arc::clone(&stop), tls.clone());
            thread::spawn(move || {
                connection_loop(addr, tls.as_ref(), &batch, depth, close_each, &stop)
            })
        })
        .collect();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for handle in threads {
        // A thread that panicked counted nothing; the panic message is on stderr.
        if let Ok(tally) = handle.join() {
            total.requests += tally.requests;
            total.bytes += tally.bytes;
            total.errors += tally.errors;
            total.latencies_us.extend(tally.latencies_us);
        }
    }
    let elapsed = start.elapsed();
    let client_cpu = rusage_cpu(Who::SelfProcess).saturating_sub(cpu_before);
    total.latencies_us.sort_unstable();
    LoadFigures {
        requests: total.requests,
        elapsed,
        bytes: total.bytes,
        errors: total.errors,
        latency: Latency::checked(
            percentile(&total.latencies_us, 50.0),
            percentile(&total.latencies_us, 99.0),
        ),
        client_cpu,
    }
}

/// The `p`th percentile (nearest rank) of sorted microsecond samples.
fn percentile(sorted_us: &[u32], p: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    Duration::from_micros(u64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]))
}

/// One connection's loop: write a batch, read its `depth` responses, repeat until `stop`.
fn connection_loop(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    batch: &[u8],
    depth: usize,
    close_each: bool,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<ResponseReader> = None;
    while !stop.load(Ordering::Relaxed) {
        let reader = match conn.as_mut() {
            Some(reader) => reader,
            None => match open(addr, tls) {
                Ok(stream) => conn.insert(ResponseReader::new(stream)),
                Err(_) => {
                    tally.errors += 1;
                    // Back off so that a refused connection does not spin a core.
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let sent = Instant::now();
        if reader.stream.write_all(batch).is_err() {
            tally.errors += 1;
            conn = None;
            continue;
        }
        let mut keep = true;
        let mut answered = 0;
        for _ in 0..depth {
            match reader.read_response() {
                Ok(response) => {
                    answered += 1;
                    tally.requests += 1;
                    tally.bytes += response.bytes;
                    if response.status >= 400 {
                        tally.errors += 1;
                    }
                    if response.close {
                        keep = false;
                        break;
                    }
                }
                Err(_) => {
                    tally.errors += 1;
                    keep = false;
                    break;
                }
            }
        }
        // Like wrk: one latency per batch, from its write to its last response.
        if answered == depth {
            let micros = sent.elapsed().as_micros();
            tally
                .latencies_us
                .push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
        if !keep || close_each {
            conn = None;
        }
    }
    tally
}

/// Sends `request` `count` times over one keep-alive connection, one at a time, and reads
/// every response. Fails on the first error, a status ≥ 400 or a closed connection.
pub fn sequential(addr: SocketAddr, request: &[u8], count: u64) -> io::Result<()> {
    sequential_then_idle(addr, request, count).map(drop)
}

/// [`sequential`], then hands the connection back, open and idle.
pub fn sequential_then_idle(addr: SocketAddr, request: &[u8], count: u64) -> io::Result<TcpStream> {
    let mut reader = ResponseReader::new(Conn::Plain(connect(addr)?));
    for sent in 0..count {
        reader.stream.write_all(request)?;
        let response = reader.read_response()?;
        if response.status >= 400 || (response.close && sent + 1 < count) {
            return Err(invalid("the server refused or closed the connection"));
        }
    }
    match reader.stream {
        Conn::Plain(stream) => Ok(stream),
        Conn::Tls(_) => Err(invalid("a plain connection was asked for")),
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// One response as the generator saw it.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    /// Head and body bytes.
    bytes: u64,
    /// The server said `Connection: close`, or the body ran to the end of the connection.
    close: bool,
}

/// Reads responses off a connection: heads parsed, bodies counted and dropped, bytes of the
/// next pipelined response kept.
struct ResponseReader {
    stream: Conn,
    /// Zeroed once: refilling must not clear it again on every read.
    buf: Box<[u8]>,
    /// The unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
}

/// Read buffer per connection; a response head must fit in it.
const READ_BUFFER: usize = 64 * 1024;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl ResponseReader {
    fn new(stream: Conn) -> ResponseReader {
        ResponseReader {
            stream,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.pos == 0 {
                return Err(invalid("response head larger than the read buffer"));
            }
            self.buf.copy_within(self.pos..self.end, 0);
            (self.pos, self.end) = (0, self.end - self.pos);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads up to and including the next CRLF, returning the line without it.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.unread().windows(2).position(|w| w == b"\r\n") {
                let line = self.unread()[..i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Skips `n` body bytes, reading as needed.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let available = self.unread().len() as u64;
            let take = available.min(n);
            self.pos += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = self.unread().windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = std::str::from_utf8(&self.unread()[..head_end])
            .map_err(|_| invalid("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let http10 = status_line.starts_with("HTTP/1.0");
        let (mut length, mut chunked, mut close, mut keep_alive) = (None, false, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| invalid("bad content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close |= value.eq_ignore_ascii_case("close");
                keep_alive |= value.eq_ignore_ascii_case("keep-alive");
            }
        }
        self.pos += head_end;
        let mut bytes = head_end as u64;
        // RFC 9112 §6.3: no body for 1xx, 204 and 304; chunked wins over Content-Length;
        // without either, the body runs to the end of the connection.
        if status < 200 || status == 204 || status == 304 {
        } else if chunked {
            loop {
                let line = self.read_line()?;
                bytes += line.len() as u64 + 2;
                let size_text =
                    std::str::from_utf8(&line).map_err(|_| invalid("bad chunk size"))?;
                let size =
                    u64::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| invalid("bad chunk size"))?;
                if size == 0 {
                    // Trailer fields, then the empty line.
                    while !self.read_line()?.is_empty() {}
                    bytes += 2;
                    break;
                }
                self.skip(size + 2)?;
                bytes += size + 2;
            }
        } else if let Some(length) = length {
            self.skip(length)?;
            bytes += length;
        } else {
            loop {
                bytes += self.unread().len() as u64;
                self.pos = self.end;
                if self.fill()? == 0 {
                    break;
                }
            }
            close = true;
        }
        Ok(Response {
            status,
            bytes,
            close: close || (http10 && !keep_alive),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenario::Scenario;
    use std::net::TcpListener;

    /// A server thread that answers each request head on a connection with `response`,
    /// until the client goes away. Bounded by the read timeout.
    fn canned_server(response: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut stream) = stream else { return };
                thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut buf = [0u8; 65536];
                    let mut pending = Vec::new();
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..i + 4);
                            if stream.write_all(response).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&[7], 99.0), Duration::from_micros(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn pipelined_responses_are_counted_one_by_one() {
        let response: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        let addr = canned_server(response);
        let scenario = Scenario::by_name("hello-pipe-16").unwrap();
        let scenario = Scenario {
            connections: 2,
            ..scenario
        };
        let figures = run(addr, &scenario, Duration::from_millis(200), None);
        assert_eq!(figures.errors, 0);
        assert!(figures.requests >= 16, "{figures:?}");
        assert_eq!(figures.requests % 16, 0, "{figures:?}");
        assert_eq!(figures.bytes, figures.requests * response.len() as u64);
        assert!(figures.latency.is_some());
    }

    #[test]
    fn chunked_and_error_statuses_are_read() {
        let response: &[u8] =
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let addr = canned_server(response);
        let scenario = Scenario {
            connections: 1,
            ..Scenario::by_name("hello-ka-1").unwrap()
        };
        let figures = run(addr, &scenario, Duration::from_millis(100), None);
        assert!(figures.requests > 0);
        // Every response is a 503: each counts as a request and as an error.
        assert_eq!(figures.errors, figures.requests);
        assert_eq!(figures.bytes, figures.requests * response.len() as u64);
    }

    #[test]
    fn close_delimited_body_reads_to_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nbody until close")
                .unwrap();
        });
        let mut reader = ResponseReader::new(Conn::Plain(connect(addr).unwrap()));
        let response = reader.read_response().unwrap();
        server.join().unwrap();
        assert_eq!(
            response,
            Response {
                status: 200,
                bytes: 19 + 16,
                close: true
            }
        );
    }
}
