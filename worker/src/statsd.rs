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

use std::fmt::Write as _;
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrocorn_config::{Settings, StatsdAddress};

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
    /// The settings it was made from (`statsd_host`, `statsd_prefix`, `dogstatsd_tags`):
    /// the arbiter makes a new client when a reload changes them.
    settings: (StatsdAddress, String, String),
    prefix: String,
    /// `|#tags`, or empty.
    tags: String,
    /// Complete lines, each ending in `\n`.
    buf: String,
    /// Lines dropped (socket full, buffer full) since the last report.
    dropped: u64,
    failures: Throttle,
}

impl std::fmt::Debug for Statsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statsd")
            .field("settings", &self.settings)
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
        Some(Socket::open(address).map(|socket| Statsd {
            socket,
            settings: (
                address.clone(),
                settings.statsd_prefix.clone(),
                settings.dogstatsd_tags.clone(),
            ),
            prefix: normalize_prefix(&settings.statsd_prefix),
            tags: if settings.dogstatsd_tags.is_empty() {
                String::new()
            } else {
                format!("|#{}", settings.dogstatsd_tags)
            },
            buf: String::new(),
            dropped: 0,
            failures: Throttle::new(REPORT_INTERVAL),
        }))
    }

    /// Whether `settings` ask for this very client (same address, prefix and tags).
    pub fn matches(&self, settings: &Settings) -> bool {
        settings.statsd_host.as_ref() == Some(&self.settings.0)
            && settings.statsd_prefix == self.settings.1
            && settings.dogstatsd_tags == self.settings.2
    }

    /// One answered request, as gunicorn's `Statsd.access`: the duration timer, then the
    /// request and status counters.
    pub(crate) fn request(&mut self, status: u16, elapsed: Duration) {
        // gunicorn: `request_time.seconds * 1000 + float(request_time.microseconds) / 10 ** 3`.
        let ms = (elapsed.as_secs() * 1000) as f64 + f64::from(elapsed.subsec_micros()) / 1e3;
        self.start_line("gunicorn.request.duration:");
        push_python_float(&mut self.buf, ms);
        self.end_line("|ms");
        self.counter("gunicorn.requests", 1);
        self.start_line("gunicorn.request.status.");
        let _ = write!(self.buf, "{status}:1");
        self.end_line("|c|@1.0");
    }

    /// A gauge line, `NAME:VALUE|g`.
    pub fn gauge(&mut self, name: &str, value: u64) {
        self.start_line(name);
        let _ = write!(self.buf, ":{value}");
        self.end_line("|g");
    }

    /// A counter line with gunicorn's sample rate, `NAME:VALUE|c|@1.0`.
    pub fn counter(&mut self, name: &str, value: u64) {
        self.start_line(name);
        let _ = write!(self.buf, ":{value}");
        self.end_line("|c|@1.0");
    }

    fn start_line(&mut self, name: &str) {
        self.buf.push_str(&self.prefix);
        self.buf.push_str(name);
    }

    fn end_line(&mut self, kind: &str) {
        self.buf.push_str(kind);
        self.buf.push_str(&self.tags);
        self.buf.push('\n');
    }

    /// Sends what is buffered, as few datagrams as fit, with the error-log counts since the
    /// last flush. Never waits: a full socket drops the rest of this turn's lines.
    pub fn flush(&mut self, now: Instant) {
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
        let buf = std::mem::take(&mut self.buf);
        let mut rest = buf.as_str();
        let mut error = None;
        while !rest.is_empty() {
            let (datagram, after) = next_datagram(rest, max);
            match self.socket.send(datagram.as_bytes()) {
                Ok(_) => rest = after,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        error = Some(e);
                    }
                    self.dropped += rest.matches('\n').count() as u64;
                    break;
                }
            }
        }
        self.buf = buf;
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(16 * 1024);
        }
        self.report(now, error);
    }

    /// Says, throttled, that sending fails (or that it works again).
    fn report(&mut self, now: Instant, error: Option<io::Error>) {
        match error {
            Some(e) => {
                if let Some(n) = self.failures.failure(now) {
                    let dropped = std::mem::take(&mut self.dropped);
                    tracing::warn!(
                        "statsd {}: send failed: {e} ({n} failed sends, {dropped} lines \
                         dropped since the last report)",
                        self.settings.0
                    );
                }
            }
            None => {
                if let Some(n) = self.failures.success(now) {
                    let dropped = std::mem::take(&mut self.dropped);
                    tracing::info!(
                        "statsd {}: sending again ({n} failed sends, {dropped} lines dropped \
                         since the last report)",
                        self.settings.0
                    );
                }
            }
        }
    }
}

/// The longest run of whole lines from the start of `lines` within `max` bytes (its last
/// newline left out), and what follows; a single line longer than `max` goes alone.
fn next_datagram(lines: &str, max: usize) -> (&str, &str) {
    let bytes = lines.as_bytes();
    let mut end = 0;
    while let Some(nl) = bytes[end..].iter().position(|&b| b == b'\n') {
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
        return (lines, "");
    }
    (&lines[..end - 1], &lines[end..])
}

/// `value` as Python's `str(float)` writes it for the values a duration in ms takes: the
/// shortest text that reads back the same, with `.0` when it is whole.
fn push_python_float(out: &mut String, value: f64) {
    let start = out.len();
    let _ = write!(out, "{value}");
    if !out[start..].contains('.') {
        out.push_str(".0");
    }
}

impl Drop for Statsd {
    /// Sends what is left when the process ends.
    fn drop(&mut self) {
        self.flush(Instant::now());
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
        for (ms, expected) in [
            (0.0, "0.0"),
            (2000.0, "2000.0"),
            (0.123, "0.123"),
            (1000.0 + 0.5, "1000.5"),
            (0.001, "0.001"),
        ] {
            let mut s = String::new();
            push_python_float(&mut s, ms);
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn datagrams_hold_whole_lines_up_to_the_limit() {
        let lines = "aaaa\nbbbb\ncccc\n";
        assert_eq!(next_datagram(lines, 100), ("aaaa\nbbbb\ncccc", ""));
        assert_eq!(next_datagram(lines, 9), ("aaaa\nbbbb", "cccc\n"));
        assert_eq!(next_datagram(lines, 8), ("aaaa", "bbbb\ncccc\n"));
        // A line longer than the limit goes alone.
        assert_eq!(next_datagram("abcdefgh\nb\n", 4), ("abcdefgh", "b\n"));
        let (mut rest, mut count) = (lines, 0);
        while !rest.is_empty() {
            let (d, after) = next_datagram(rest, 4);
            assert!(d.len() <= 4 && !d.contains('\n'), "{d:?}");
            rest = after;
            count += 1;
        }
        assert_eq!(count, 3);
    }
}
