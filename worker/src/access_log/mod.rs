//! The access log: one line per request formatted on the loop into a buffer, in gunicorn's
//! `access_log_format` language (`format.rs`) or as JSON (`json.rs`), and a writer thread
//! that owns the file so a slow disk or pipe never blocks the event loop.

mod format;
mod json;

use crate::clock::Moment;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::app::{Request, Response};
use crate::throttle::{Throttle, REPORT_INTERVAL};
use format::LogFormat;

/// How each line is written: `access_log_format` in gunicorn's language, or `json`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LineFormat {
    Gunicorn(LogFormat),
    /// One JSON object a line (`--access-logformat json`).
    Json,
}

impl LineFormat {
    fn compile(format: &str) -> LineFormat {
        if format.trim().eq_ignore_ascii_case("json") {
            LineFormat::Json
        } else {
            LineFormat::Gunicorn(LogFormat::compile(format))
        }
    }

    fn format(&self, entry: &LogEntry<'_>, out: &mut String) {
        match self {
            LineFormat::Gunicorn(format) => format.format(entry, out),
            LineFormat::Json => json::format(entry, out),
        }
    }
}

/// What the access log needs about one finished request.
#[derive(Debug)]
pub(crate) struct LogEntry<'a> {
    pub req: &'a Request,
    pub res: &'a Response,
    /// Body bytes sent (`None`: unknown, streamed).
    pub body_bytes: Option<u64>,
    pub started: Moment,
    pub now_secs: u64,
}

#[cfg(test)]
impl<'a> LogEntry<'a> {
    /// An entry for the formatters' tests: started now, logged at a fixed time
    /// (2000-10-10 12:55:36 UTC).
    pub(crate) fn for_test(req: &'a Request, res: &'a Response, body_bytes: Option<u64>) -> Self {
        LogEntry {
            req,
            res,
            body_bytes,
            started: Moment::now(),
            now_secs: 971_182_536,
        }
    }
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
    format: LineFormat,
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
                        let now = Moment::now();
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
            format: LineFormat::compile(format),
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
            started: Moment::now(),
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
