//! The access log: gunicorn's `access_log_format` language compiled once, one line per
//! request formatted on the loop into a buffer, and a writer thread that owns the file so a
//! slow disk or pipe never blocks the event loop.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::app::{Request, Response};
use crate::throttle::{Throttle, REPORT_INTERVAL};

/// One piece of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Literal(String),
    /// `h`: remote address.
    RemoteAddr,
    /// `l`: always `-`.
    Dash,
    /// `u`: user name from `Authorization: Basic`.
    User,
    /// `t`: `[10/Oct/2000:13:55:36 +0000]`.
    Time,
    /// `r`: the request line.
    RequestLine,
    /// `s`: status.
    Status,
    /// `m`: method.
    Method,
    /// `U`: path without query.
    Path,
    /// `q`: query string.
    Query,
    /// `H`: protocol.
    Protocol,
    /// `b`: body length, `-` when zero or unknown.
    BytesDash,
    /// `B`: body length, `0` when zero or unknown.
    Bytes,
    /// `f`: Referer.
    Referer,
    /// `a`: User-Agent.
    UserAgent,
    /// `T`: duration in whole seconds.
    Seconds,
    /// `M`: duration in milliseconds.
    Millis,
    /// `D`: duration in microseconds.
    Micros,
    /// `L`: duration in decimal seconds.
    DecimalSeconds,
    /// `p`: process id.
    Pid,
    /// `{name}i`: a request header.
    RequestHeader(String),
    /// `{name}o`: a response header.
    ResponseHeader(String),
    /// `{name}e`: an environment variable (read once, when the format is compiled).
    Env(String),
    /// An atom gunicorn does not define: written as `-`.
    Unknown,
}

/// A compiled `access_log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFormat {
    atoms: Vec<Atom>,
    needs_duration: bool,
}

impl LogFormat {
    /// Compiles gunicorn's `%(name)s` language; `%%` is a literal `%`. Anything that is not
    /// an atom is kept literally, so compiling never fails.
    pub fn compile(format: &str) -> LogFormat {
        let mut atoms = Vec::new();
        let mut lit = String::new();
        let mut rest = format;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("%%") {
                lit.push('%');
                rest = r;
                continue;
            }
            let parsed = rest.strip_prefix("%(").and_then(|r| {
                let close = r.find(')')?;
                let name = &r[..close];
                if name.contains('(') {
                    return None;
                }
                let after = &r[close + 1..];
                let conv = after.chars().next().filter(|c| matches!(c, 's' | 'd'))?;
                Some((name, &after[conv.len_utf8()..]))
            });
            match parsed {
                Some((name, r)) => {
                    if !lit.is_empty() {
                        atoms.push(Atom::Literal(std::mem::take(&mut lit)));
                    }
                    atoms.push(atom(name));
                    rest = r;
                }
                None => {
                    lit.push('%');
                    rest = &rest[1..];
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            atoms.push(Atom::Literal(lit));
        }
        let needs_duration = atoms.iter().any(|a| {
            matches!(
                a,
                Atom::Seconds | Atom::Millis | Atom::Micros | Atom::DecimalSeconds
            )
        });
        LogFormat {
            atoms,
            needs_duration,
        }
    }

    /// Appends one line (with a trailing newline) for a finished request.
    pub fn format(&self, e: &LogEntry<'_>, out: &mut String) {
        use std::fmt::Write as _;
        let elapsed = if self.needs_duration {
            e.started.elapsed()
        } else {
            std::time::Duration::ZERO
        };
        for a in &self.atoms {
            match a {
                Atom::Literal(s) => out.push_str(s),
                Atom::RemoteAddr => {
                    let _ = write!(out, "{}", e.req.peer());
                }
                Atom::Dash | Atom::Unknown => out.push('-'),
                Atom::User => match basic_user(e.req) {
                    Some(u) => out.push_str(&u),
                    None => out.push('-'),
                },
                Atom::Time => crate::date::log_date(e.now_secs, out),
                Atom::RequestLine => {
                    let _ = write!(
                        out,
                        "{} {} {}",
                        e.req.method(),
                        e.req.target(),
                        e.req.version().as_str()
                    );
                }
                Atom::Status => {
                    let _ = write!(out, "{}", e.res.status);
                }
                Atom::Method => out.push_str(e.req.method()),
                Atom::Path => out.push_str(e.req.path()),
                Atom::Query => out.push_str(e.req.query()),
                Atom::Protocol => out.push_str(e.req.version().as_str()),
                Atom::BytesDash => match e.body_bytes {
                    Some(n) if n > 0 => {
                        let _ = write!(out, "{n}");
                    }
                    _ => out.push('-'),
                },
                Atom::Bytes => {
                    let _ = write!(out, "{}", e.body_bytes.unwrap_or(0));
                }
                Atom::Referer => push_header(out, e.req.header("referer")),
                Atom::UserAgent => push_header(out, e.req.header("user-agent")),
                Atom::Seconds => {
                    let _ = write!(out, "{}", elapsed.as_secs());
                }
                Atom::Millis => {
                    let _ = write!(out, "{}", elapsed.as_millis());
                }
                Atom::Micros => {
                    let _ = write!(out, "{}", elapsed.as_micros());
                }
                Atom::DecimalSeconds => {
                    let _ = write!(out, "{:.6}", elapsed.as_secs_f64());
                }
                Atom::Pid => {
                    // gunicorn's glogging: `'p': "<%s>" % os.getpid()`.
                    let _ = write!(out, "<{}>", std::process::id());
                }
                Atom::RequestHeader(name) => push_header(out, e.req.header(name)),
                Atom::ResponseHeader(name) => {
                    push_header(out, e.res.header_value(name).map(str::as_bytes))
                }
                Atom::Env(value) => out.push_str(value),
            }
        }
        out.push('\n');
    }
}

fn atom(name: &str) -> Atom {
    if let Some(inner) = name.strip_prefix('{') {
        if let Some((key, kind)) = inner.rsplit_once('}') {
            let key = key.to_ascii_lowercase();
            return match kind {
                "i" => Atom::RequestHeader(key),
                "o" => Atom::ResponseHeader(key),
                "e" => Atom::Env(
                    std::env::var(key.to_ascii_uppercase()).unwrap_or_else(|_| "-".into()),
                ),
                _ => Atom::Unknown,
            };
        }
    }
    match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "s" => Atom::Status,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "b" => Atom::BytesDash,
        "B" => Atom::Bytes,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        _ => Atom::Unknown,
    }
}

/// Writes a header value; bytes outside printable ASCII and `"`/`\` are escaped as `\xNN`
/// so a client cannot forge log lines.
fn push_header(out: &mut String, value: Option<&[u8]>) {
    match value {
        None => out.push('-'),
        Some(v) => push_escaped(out, v),
    }
}

fn push_escaped(out: &mut String, v: &[u8]) {
    use std::fmt::Write as _;
    for &b in v {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// The user name of an `Authorization: Basic` header, as gunicorn's `%(u)s`.
fn basic_user(req: &Request) -> Option<String> {
    let v = req.header("authorization")?;
    let v = std::str::from_utf8(v).ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let user = decoded.split(|&b| b == b':').next()?;
    let mut s = String::new();
    push_escaped(&mut s, user);
    Some(s)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// What the access log needs about one finished request.
#[derive(Debug)]
pub(crate) struct LogEntry<'a> {
    pub req: &'a Request,
    pub res: &'a Response,
    /// Body bytes sent (`None`: unknown, streamed).
    pub body_bytes: Option<u64>,
    pub started: Instant,
    pub now_secs: u64,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Vec<u8>,
    reopen: bool,
    stop: bool,
    dropped: u64,
}

/// The access log of one worker: lines are formatted into `buf` on the loop and handed to
/// the writer thread once per loop turn.
#[derive(Debug)]
pub(crate) struct AccessLog {
    pub format: LogFormat,
    buf: String,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Lines waiting for the writer beyond this are dropped (and counted) rather than letting
/// memory grow without bound behind a stuck disk.
const MAX_PENDING: usize = 8 * 1024 * 1024;

enum Sink {
    Stdout,
    /// The path, the open file, and the mode a file created on reopening gets.
    File(String, File, u32),
}

impl Sink {
    fn open(target: &str, mode: u32) -> io::Result<Sink> {
        if target == "-" {
            return Ok(Sink::Stdout);
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(mode)
            .open(target)?;
        Ok(Sink::File(target.to_string(), f, mode))
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File(_, f, _) => f.write_all(bytes),
        }
    }
}

impl AccessLog {
    /// Opens `target` (`-`: standard output; a file is created with `mode`) and starts the
    /// writer thread. Fails when the file cannot be opened for appending.
    pub fn open(target: &str, format: &str, mode: u32) -> io::Result<AccessLog> {
        AccessLog::start(Sink::open(target, mode)?, format)
    }

    /// Writes to `file`, already open for appending at `path` (the arbiter opened it, so
    /// that a worker running as another user need not); reopened by path on SIGUSR1, a new
    /// file created with `mode`. Fails when the writer thread cannot start.
    pub fn with_file(path: &str, file: File, format: &str, mode: u32) -> io::Result<AccessLog> {
        AccessLog::start(Sink::File(path.to_string(), file, mode), format)
    }

    fn start(mut sink: Sink, format: &str) -> io::Result<AccessLog> {
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let (lock, cvar) = &*theirs;
                let mut mine = Vec::new();
                let mut failures = Throttle::new(REPORT_INTERVAL);
                loop {
                    let (reopen, stop) = {
                        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while s.pending.is_empty() && !s.reopen && !s.stop {
                            s = cvar.wait(s).unwrap_or_else(|p| p.into_inner());
                        }
                        std::mem::swap(&mut s.pending, &mut mine);
                        if s.dropped > 0 {
                            tracing::warn!(lines = s.dropped, "access log behind: lines dropped");
                            s.dropped = 0;
                        }
                        (std::mem::take(&mut s.reopen), s.stop)
                    };
                    if !mine.is_empty() {
                        // A closed pipe or a full disk fails every batch: said once, then at
                        // most once per REPORT_INTERVAL with a count.
                        let now = Instant::now();
                        match sink.write_all(&mine) {
                            Err(e) => match failures.failure(now) {
                                Some(1) => tracing::error!("access log write failed: {e}"),
                                Some(n) => tracing::error!(
                                    "access log write failed: {e} ({n} failed writes since the \
                                     last report)"
                                ),
                                None => {}
                            },
                            Ok(()) => {
                                if let Some(n) = failures.success(now) {
                                    tracing::warn!(
                                        "access log written again ({n} failed writes since \
                                         the last report)"
                                    );
                                }
                            }
                        }
                        mine.clear();
                    }
                    if reopen {
                        if let Sink::File(path, _, mode) = &sink {
                            match Sink::open(&path.clone(), *mode) {
                                Ok(s) => sink = s,
                                Err(e) => tracing::error!("access log {path:?} reopen failed: {e}"),
                            }
                        }
                    }
                    if stop {
                        return;
                    }
                }
            })?;
        Ok(AccessLog {
            format: LogFormat::compile(format),
            buf: String::new(),
            shared,
            thread: Some(thread),
        })
    }

    /// Formats one line into the loop-side buffer.
    pub fn log(&mut self, entry: &LogEntry<'_>) {
        self.format.format(entry, &mut self.buf);
    }

    /// Hands the buffered lines to the writer thread. Never waits for the disk.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let (lock, cvar) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        if s.pending.len() + self.buf.len() <= MAX_PENDING {
            s.pending.extend_from_slice(self.buf.as_bytes());
        } else {
            s.dropped += self.buf.bytes().filter(|&b| b == b'\n').count() as u64;
        }
        drop(s);
        cvar.notify_one();
        self.buf.clear();
        if self.buf.capacity() > 256 * 1024 {
            self.buf.shrink_to(16 * 1024);
        }
    }

    /// Asks the writer thread to reopen the file (SIGUSR1, after log rotation).
    pub fn reopen(&mut self) {
        let (lock, cvar) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).reopen = true;
        cvar.notify_one();
    }
}

impl Drop for AccessLog {
    /// Flushes what is buffered and waits for the writer thread to write it.
    fn drop(&mut self) {
        self.flush();
        let (lock, cvar) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cvar.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Body;

    fn line(format: &str, req: &Request, res: &Response, bytes: Option<u64>) -> String {
        let mut out = String::new();
        LogFormat::compile(format).format(
            &LogEntry {
                req,
                res,
                body_bytes: bytes,
                started: Instant::now(),
                now_secs: 971_182_536,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn default_format_matches_gunicorn() {
        let req = Request::for_test(
            "GET",
            "/a?b=1",
            &[("Referer", "http://r/"), ("User-Agent", "curl/8")],
            b"",
        );
        let mut res = Response::new();
        res.body = Body::Static(b"Hello");
        let l = line(
            ferrocorn_config::DEFAULT_ACCESS_LOG_FORMAT,
            &req,
            &res,
            Some(5),
        );
        assert_eq!(
            l,
            "127.0.0.1 - - [10/Oct/2000:12:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 5 \"http://r/\" \"curl/8\"\n"
        );
    }

    #[test]
    fn all_atoms_render() {
        let req = Request::for_test(
            "POST",
            "/p?q=2",
            &[("X-Req", "in"), ("Authorization", "Basic dXNlcjpwYXNz")],
            b"",
        );
        let mut res = Response::new();
        res.status = 404;
        res.header("X-Out", "out");
        let l = line("%(m)s|%(U)s|%(q)s|%(H)s|%(b)s|%(B)s|%(u)s|%({x-req}i)s|%({X-Out}o)s|%({nope}i)s|%(zz)s|100%%|%(p)s", &req, &res, Some(0));
        assert_eq!(
            l,
            format!(
                "POST|/p|q=2|HTTP/1.1|-|0|user|in|out|-|-|100%|<{}>\n",
                std::process::id()
            )
        );
        let d = line("%(T)s %(M)s %(D)s %(L)s", &req, &res, None);
        let parts: Vec<&str> = d.trim_end().split(' ').collect();
        assert_eq!(parts.len(), 4);
        assert!(parts[..3].iter().all(|p| p.parse::<u64>().is_ok()), "{d}");
        assert!(parts[3].parse::<f64>().is_ok(), "{d}");
    }

    #[test]
    fn header_values_cannot_forge_lines() {
        let req = Request::for_test("GET", "/", &[("User-Agent", "a\"b\\c\u{7f}")], b"");
        let res = Response::new();
        assert_eq!(line("%(a)s", &req, &res, None), "a\\x22b\\x5cc\\x7f\n");
    }

    #[test]
    fn stray_percent_is_literal() {
        let req = Request::for_test("GET", "/", &[], b"");
        let res = Response::new();
        assert_eq!(line("50% %(x %(s)d", &req, &res, None), "50% %(x 200\n");
    }

    #[test]
    fn writer_thread_writes_and_reopens() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-alog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let rotated = dir.join("access.log.1");
        let req = Request::for_test("GET", "/x", &[], b"");
        let res = Response::new();
        let entry = |now| LogEntry {
            req: &req,
            res: &res,
            body_bytes: None,
            started: Instant::now(),
            now_secs: now,
        };
        {
            let mut log = AccessLog::open(path.to_str().unwrap(), "%(r)s", 0o644).unwrap();
            log.log(&entry(0));
            log.flush();
            // Wait (bounded) for the writer before rotating.
            for _ in 0..200 {
                if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::fs::rename(&path, &rotated).unwrap();
            log.reopen();
            for _ in 0..200 {
                if path.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            log.log(&entry(0));
        }
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "GET /x HTTP/1.1\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "GET /x HTTP/1.1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
