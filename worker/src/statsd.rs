//! statsd, as gunicorn sends it (`gunicorn/instrument/statsd.py`), so that dashboards built
//! for gunicorn keep working: per request `gunicorn.request.duration` (a timer in ms),
//! `gunicorn.requests` and `gunicorn.request.status.<code>` (counters); from the arbiter the
//! `gunicorn.workers` gauge; from every process `gunicorn.log.error` and
//! `gunicorn.log.warning` (counters of the error log's lines at those levels).
//!
//! Lines are appended to a buffer as they happen and sent once per loop turn, several
//! lines a datagram (newline-separated, as statsd and DogStatsD read them), on a
//! non-blocking socket: a full socket drops the turn's lines, and a failed send (nobody
//! listening) is logged throttled. Neither ever fails or delays a request.

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Moment;

use ferrocorn_config::{Settings, StatsdAddress};

use crate::response::push_u64;
use crate::throttle::{Throttle, REPORT_INTERVAL};

/// The largest UDP datagram sent: what fits a 1500-byte Ethernet frame after the IP and UDP
/// headers with room for options (the payload statsd's own documentation suggests).
const UDP_PAYLOAD: usize = 1432;
/// The largest Unix datagram sent (DogStatsD's default buffer for its Unix socket).
const UNIX_PAYLOAD: usize = 8192;
/// A buffer grown past this by a busy turn is shrunk back after it is sent.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Error-log lines at ERROR and WARN since this process last sent them (see
/// [`note_log_line`]). Process-wide because the log subscriber is.
static LOG_ERRORS: AtomicU64 = AtomicU64::new(0);
static LOG_WARNINGS: AtomicU64 = AtomicU64::new(0);

/// Counts one error-log line at `level` for `gunicorn.log.error` / `gunicorn.log.warning`.
/// Called by the log subscriber for every line it writes; costs one atomic add.
pub fn note_log_line(level: &tracing::Level) {
    if *level == tracing::Level::ERROR {
        LOG_ERRORS.fetch_add(1, Ordering::Relaxed);
    } else if *level == tracing::Level::WARN {
        LOG_WARNINGS.fetch_add(1, Ordering::Relaxed);
    }
}

/// gunicorn's prefix rule, `re.sub(r"^(.+[^.]+)\.*$", r"\1.", prefix)`: trailing dots become
/// one; a prefix of fewer than two characters before them is left as it is.
pub fn normalize_prefix(prefix: &str) -> String {
    let stem = prefix.trim_end_matches('.');
    if stem.chars().count() >= 2 {
        format!("{stem}.")
    } else {
        prefix.to_string()
    }
}

enum Socket {
    /// Connected: a send learns of an ICMP "port unreachable" from an earlier one.
    Udp(UdpSocket),
    /// Unbound and unconnected: each send names the path, so a statsd started after us,
    /// or restarted, is found again.
    Unix(UnixDatagram, PathBuf),
}

impl Socket {
    fn open(address: &StatsdAddress) -> io::Result<Socket> {
        match address {
            StatsdAddress::Udp { host, port } => {
                let target = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "the name has no address")
                    })?;
                let local: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(target)?;
                socket.set_nonblocking(true)?;
                Ok(Socket::Udp(socket))
            }
            StatsdAddress::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.set_nonblocking(true)?;
                Ok(Socket::Unix(socket, path.clone()))
            }
        }
    }

    fn send(&self, datagram: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Udp(socket) => socket.send(datagram),
            Socket::Unix(socket, path) => socket.send_to(datagram, path),
        }
    }

    fn max_payload(&self) -> usize {
        match self {
            Socket::Udp(_) => UDP_PAYLOAD,
            Socket::Unix(..) => UNIX_PAYLOAD,
        }
    }
}

/// One process's statsd client: the socket, the lines of this turn, and how failures are
/// reported.
pub struct Statsd {
    socket: Socket,
    /// The address, for the log.
    address: StatsdAddress,
    prefix: String,
    /// `|#tags`, or empty.
    tags: String,
    /// A request's lines, between the values they hold: see [`Statsd::request`].
    request_parts: [Vec<u8>; 3],
    /// Complete lines, each ending in `\n`; ASCII (the prefix and tags are checked so).
    buf: Vec<u8>,
    /// Lines dropped (socket full, nobody listening) since the last report.
    dropped: u64,
    failures: Throttle,
}

impl std::fmt::Debug for Statsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statsd")
            .field("address", &self.address)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl Statsd {
    /// The client `settings` ask for: `None` when `statsd_host` is not set, an error when
    /// its name does not resolve or no socket can be made. Error-log lines counted before
    /// this call are not sent (in a worker they were counted by the arbiter it was forked
    /// from, which sends its own).
    pub fn from_settings(settings: &Settings) -> Option<io::Result<Statsd>> {
        let address = settings.statsd_host.as_ref()?;
        LOG_ERRORS.store(0, Ordering::Relaxed);
        LOG_WARNINGS.store(0, Ordering::Relaxed);
        let prefix = normalize_prefix(&settings.statsd_prefix);
        let tags = if settings.dogstatsd_tags.is_empty() {
            String::new()
        } else {
            format!("|#{}", settings.dogstatsd_tags)
        };
        let request_parts = [
            format!("{prefix}gunicorn.request.duration:"),
            format!("|ms{tags}\n{prefix}gunicorn.requests:1|c|@1.0{tags}\n{prefix}gunicorn.request.status."),
            format!(":1|c|@1.0{tags}\n"),
        ]
        .map(String::into_bytes);
        Some(Socket::open(address).map(|socket| Statsd {
            socket,
            address: address.clone(),
            prefix,
            tags,
            request_parts,
            buf: Vec::new(),
            dropped: 0,
            failures: Throttle::new(REPORT_INTERVAL),
        }))
    }

    /// One answered request, as gunicorn's `Statsd.access`: the duration timer, then the
    /// request and status counters. The constant parts are prepared once, so a request
    /// costs three copies and two numbers.
    pub(crate) fn request(&mut self, status: u16, elapsed: Duration) {
        self.buf.extend_from_slice(&self.request_parts[0]);
        push_millis(&mut self.buf, elapsed);
        self.buf.extend_from_slice(&self.request_parts[1]);
        push_u64(&mut self.buf, u64::from(status));
        self.buf.extend_from_slice(&self.request_parts[2]);
    }

    /// A gauge line, `NAME:VALUE|g`.
    pub fn gauge(&mut self, name: &str, value: u64) {
        self.line(name, value, "|g");
    }

    /// A counter line with gunicorn's sample rate, `NAME:VALUE|c|@1.0`.
    pub fn counter(&mut self, name: &str, value: u64) {
        self.line(name, value, "|c|@1.0");
    }

    fn line(&mut self, name: &str, value: u64, kind: &str) {
        self.buf.extend_from_slice(self.prefix.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b':');
        push_u64(&mut self.buf, value);
        self.buf.extend_from_slice(kind.as_bytes());
        self.buf.extend_from_slice(self.tags.as_bytes());
        self.buf.push(b'\n');
    }

    /// Sends what is buffered, as few datagrams as fit, with the error-log counts since the
    /// last flush. Never waits: a full socket drops the rest of the lines.
    pub fn flush(&mut self) {
        self.flush_at(Moment::now());
    }

    /// [`Statsd::flush`] at `now` (the loop's time): the end of each turn of the loop.
    pub(crate) fn flush_at(&mut self, now: Moment) {
        for (name, count) in [
            ("gunicorn.log.error", &LOG_ERRORS),
            ("gunicorn.log.warning", &LOG_WARNINGS),
        ] {
            let n = count.swap(0, Ordering::Relaxed);
            if n > 0 {
                self.counter(name, n);
            }
        }
        if self.buf.is_empty() {
            return;
        }
        let max = self.socket.max_payload();
        let mut rest = &self.buf[..];
        let mut error = None;
        while !rest.is_empty() {
            let (datagram, after) = next_datagram(rest, max);
            match self.socket.send(datagram) {
                Ok(_) => rest = after,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        error = Some(e);
                    }
                    self.dropped += rest.iter().filter(|&&b| b == b'\n').count() as u64;
                    break;
                }
            }
        }
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(16 * 1024);
        }
        self.report(now, error);
    }

    /// Says, throttled, that sending fails (or that it works again).
    fn report(&mut self, now: Moment, error: Option<io::Error>) {
        match error {
            Some(e) => {
                if let Some(n) = self.failures.failure(now) {
                    let dropped = std::mem::take(&mut self.dropped);
                    tracing::warn!(
                        "statsd {}: send failed: {e} ({n} failed sends, {dropped} lines \
                         dropped since the last report)",
                        self.address
                    );
                }
            }
            None => {
                if let Some(n) = self.failures.success(now) {
                    let dropped = std::mem::take(&mut self.dropped);
                    tracing::info!(
                        "statsd {}: sending again ({n} failed sends, {dropped} lines dropped \
                         since the last report)",
                        self.address
                    );
                }
            }
        }
    }
}

/// The longest run of whole lines from the start of `lines` within `max` bytes (its last
/// newline left out), and what follows; a single line longer than `max` goes alone.
/// `lines` ends with a newline.
fn next_datagram(lines: &[u8], max: usize) -> (&[u8], &[u8]) {
    // Most turns' lines fit one datagram: no scan.
    if lines.len() <= max + 1 {
        return (&lines[..lines.len() - 1], &[]);
    }
    let mut end = 0;
    while let Some(nl) = lines[end..].iter().position(|&b| b == b'\n') {
        let line_end = end + nl;
        if line_end > max && end > 0 {
            break;
        }
        end = line_end + 1;
        if line_end >= max {
            break;
        }
    }
    if end == 0 {
        // No newline at all (never buffered so): send what there is.
        return (lines, &[]);
    }
    (&lines[..end - 1], &lines[end..])
}

/// A duration in milliseconds as gunicorn writes it: Python's `str()` of
/// `seconds * 1000 + microseconds / 1000`, i.e. the milliseconds, a dot and the
/// microseconds without trailing zeros (`12.5`, `0.123`, `2000.0`). Python's float can show
/// more digits in the rare case where the sum rounds off the decimal (`1000.1230000000001`):
/// this is then the decimal it stands for.
fn push_millis(out: &mut Vec<u8>, elapsed: Duration) {
    let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
    push_u64(out, micros / 1000);
    out.push(b'.');
    let mut frac = micros % 1000;
    if frac == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = 3;
    while frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    let start = out.len();
    push_u64(out, frac);
    // Leading zeros: 0.05 ms is `0.05`, not `0.5`.
    let written = out.len() - start;
    for _ in written..digits {
        out.insert(start, b'0');
    }
}

impl Drop for Statsd {
    /// Sends what is left when the process ends.
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_follows_gunicorn_rule() {
        // Expected values are Python's `re.sub(r"^(.+[^.]+)\.*$", "\\g<1>.", p)`.
        for (given, expected) in [
            ("", ""),
            ("a", "a"),
            ("a.", "a."),
            ("a..", "a.."),
            (".", "."),
            ("ab", "ab."),
            ("ab.", "ab."),
            ("ab...", "ab."),
            ("web.eu", "web.eu."),
            (".x", ".x."),
        ] {
            assert_eq!(normalize_prefix(given), expected, "{given:?}");
        }
    }

    #[test]
    fn durations_are_written_as_python_floats() {
        // Expected: Python's str(seconds * 1000 + float(microseconds) / 10 ** 3).
        for (micros, expected) in [
            (0, "0.0"),
            (2_000_000, "2000.0"),
            (123, "0.123"),
            (1_000_500, "1000.5"),
            (1, "0.001"),
            (50, "0.05"),
            (120, "0.12"),
            (12_345_678, "12345.678"),
            (3_600_000_007, "3600000.007"),
        ] {
            let mut s = Vec::new();
            push_millis(&mut s, Duration::from_micros(micros));
            assert_eq!(String::from_utf8(s).unwrap(), expected, "{micros} µs");
        }
    }

    #[test]
    fn a_request_writes_gunicorns_three_lines() {
        let settings = Settings {
            statsd_host: Some(StatsdAddress::Udp {
                host: "127.0.0.1".to_string(),
                port: 9,
            }),
            statsd_prefix: "web".to_string(),
            dogstatsd_tags: "env:a".to_string(),
            ..Settings::default()
        };
        let mut statsd = Statsd::from_settings(&settings).unwrap().unwrap();
        statsd.request(404, Duration::from_micros(1_500));
        statsd.gauge("gunicorn.workers", 3);
        assert_eq!(
            String::from_utf8(statsd.buf.clone()).unwrap(),
            "web.gunicorn.request.duration:1.5|ms|#env:a\n\
             web.gunicorn.requests:1|c|@1.0|#env:a\n\
             web.gunicorn.request.status.404:1|c|@1.0|#env:a\n\
             web.gunicorn.workers:3|g|#env:a\n"
        );
        statsd.buf.clear();
    }

    #[test]
    fn datagrams_hold_whole_lines_up_to_the_limit() {
        let lines: &[u8] = b"aaaa\nbbbb\ncccc\n";
        let empty: &[u8] = b"";
        assert_eq!(next_datagram(lines, 100), (&b"aaaa\nbbbb\ncccc"[..], empty));
        assert_eq!(next_datagram(lines, 14), (&b"aaaa\nbbbb\ncccc"[..], empty));
        assert_eq!(
            next_datagram(lines, 13),
            (&b"aaaa\nbbbb"[..], &b"cccc\n"[..])
        );
        assert_eq!(
            next_datagram(lines, 9),
            (&b"aaaa\nbbbb"[..], &b"cccc\n"[..])
        );
        assert_eq!(
            next_datagram(lines, 8),
            (&b"aaaa"[..], &b"bbbb\ncccc\n"[..])
        );
        // A line longer than the limit goes alone.
        assert_eq!(
            next_datagram(b"abcdefgh\nb\n", 4),
            (&b"abcdefgh"[..], &b"b\n"[..])
        );
        let (mut rest, mut count) = (lines, 0);
        while !rest.is_empty() {
            let (d, after) = next_datagram(rest, 4);
            assert!(d.len() <= 4 && !d.contains(&b'\n'), "{d:?}");
            rest = after;
            count += 1;
        }
        assert_eq!(count, 3);
    }
}
