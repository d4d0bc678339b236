//! The error log: tracing to standard error or to `--error-logfile`, as text in gunicorn's
//! shape (`[time] [pid] [LEVEL] message`) or as JSON lines, reopenable on SIGUSR1.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ferrocorn_config::{LogFormat, LogLevel, Settings};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

/// Where log lines go. A file is opened for appending and can be reopened (log rotation).
#[derive(Debug)]
pub struct LogTarget {
    path: Mutex<Option<PathBuf>>,
    file: Mutex<Option<File>>,
    /// The mode of a log file this creates (`Settings::created_file_mode`).
    mode: AtomicU32,
}

impl LogTarget {
    /// `-` is standard error; anything else a file opened for appending, created with
    /// `mode` (the process's umask may narrow it). Fails when the file cannot be opened.
    pub fn open(errorlog: &str, mode: u32) -> io::Result<LogTarget> {
        let (path, file) = if errorlog == "-" {
            (None, None)
        } else {
            let path = absolute(errorlog);
            let file = open_append(&path, mode)?;
            (Some(path), Some(file))
        };
        Ok(LogTarget {
            path: Mutex::new(path),
            file: Mutex::new(file),
            mode: AtomicU32::new(mode),
        })
    }

    /// Reopens the file (after logrotate moved it). Standard error needs nothing.
    pub fn reopen(&self) {
        let path = self.path.lock().ok().and_then(|path| path.clone());
        let Some(path) = path else {
            return;
        };
        match open_append(&path, self.mode.load(Ordering::Relaxed)) {
            Ok(file) => {
                if let Ok(mut slot) = self.file.lock() {
                    *slot = Some(file);
                }
            }
            Err(error) => tracing::error!("cannot reopen {}: {error}", path.display()),
        }
    }

    /// Writes to `errorlog` from now on (a reload changed it), creating files with `mode`
    /// from now on. On failure the old target stays and the error is logged there.
    pub fn retarget(&self, errorlog: &str, mode: u32) {
        self.mode.store(mode, Ordering::Relaxed);
        let wanted = (errorlog != "-").then(|| absolute(errorlog));
        let current = self.path.lock().ok().and_then(|path| path.clone());
        if wanted == current {
            return;
        }
        let file = match &wanted {
            Some(path) => match open_append(path, mode) {
                Ok(file) => Some(file),
                Err(error) => {
                    tracing::error!("cannot open the error log {}: {error}", path.display());
                    return;
                }
            },
            None => None,
        };
        if let (Ok(mut path), Ok(mut slot)) = (self.path.lock(), self.file.lock()) {
            *path = wanted;
            *slot = file;
        }
    }
}

/// `path` made absolute from the current directory now (the directory the binary started
/// in, also on a reload), so that reopening it after `chdir` finds the same file.
fn absolute(path: &str) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path))
}

fn open_append(path: &PathBuf, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
}

/// One log line being written; written out whole so lines from one process never mix.
#[derive(Debug)]
pub struct LineWriter<'a> {
    target: &'a LogTarget,
    line: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let written = match self.target.file.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(file) => file.write_all(&self.line),
                None => io::stderr().write_all(&self.line),
            },
            Err(_) => io::stderr().write_all(&self.line),
        };
        let _ = written;
    }
}

/// Shares one [`LogTarget`] between the subscriber and the reopen hook.
#[derive(Debug, Clone)]
pub struct SharedTarget(pub Arc<LogTarget>);

impl<'a> MakeWriter<'a> for SharedTarget {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            target: &self.0,
            line: Vec::with_capacity(256),
        }
    }
}

/// gunicorn's error log line: `[2024-01-01T00:00:00.000000Z] [PID] [INFO] message`.
/// The pid is read per line: workers are forked from the arbiter.
struct GunicornFormat;

impl<S, N> FormatEvent<S, N> for GunicornFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "[")?;
        SystemTime.format_time(&mut writer)?;
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        write!(writer, "] [{}] [{level}] ", std::process::id())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// JSON lines with the process id first (`{"pid":N,...}`): the arbiter and its workers
/// share the error log, and the text format's `[pid]` must not be lost in JSON.
struct JsonWithPid<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonWithPid<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"pid\":{},{rest}", std::process::id()),
            None => writer.write_str(&line),
        }
    }
}

/// Counts the lines written at ERROR and WARN for statsd's `gunicorn.log.error` and
/// `gunicorn.log.warning` (gunicorn's `Statsd` logger counts its own lines the same way).
struct CountLines;

impl<S: Subscriber> Layer<S> for CountLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        ferrocorn_worker::statsd::note_log_line(event.metadata().level());
    }
}

/// The installed logging: where lines go and the level, both changeable on a reload.
#[derive(Debug, Clone)]
pub struct Logging {
    target: Arc<LogTarget>,
    level: reload::Handle<LevelFilter, Registry>,
}

impl Logging {
    /// Reopens the error log file (SIGUSR1).
    pub fn reopen(&self) {
        self.target.reopen();
    }

    /// Applies a reloaded configuration's `errorlog` and `loglevel` (SIGHUP). The format
    /// (`log_format`) stays what it was at start.
    pub fn apply(&self, settings: &Settings) {
        self.target
            .retarget(&settings.errorlog, settings.created_file_mode());
        let _ = self.level.reload(level_filter(settings.loglevel));
    }
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
    }
}

/// Installs the global subscriber for `settings` (`errorlog`, `loglevel`, `log_format`).
/// Fails when the error log file cannot be opened.
pub fn init(settings: &Settings) -> io::Result<Logging> {
    let target = Arc::new(LogTarget::open(
        &settings.errorlog,
        settings.created_file_mode(),
    )?);
    let (filter, level) = reload::Layer::new(level_filter(settings.loglevel));
    // No colour escapes: the error log is a file as often as a terminal, and the gunicorn
    // shape has no colours of its own.
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(SharedTarget(target.clone()));
    let registry = tracing_subscriber::registry().with(filter).with(CountLines);
    let result = match settings.log_format {
        LogFormat::Text => registry.with(layer.event_format(GunicornFormat)).try_init(),
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::format()
                .json()
                .with_current_span(false)
                .with_span_list(false);
            registry
                .with(layer.json().event_format(JsonWithPid(json)))
                .try_init()
        }
    };
    // A subscriber installed already (tests calling twice) keeps logging; not an error.
    let _ = result;
    Ok(Logging { target, level })
}
