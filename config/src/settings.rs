//! The one list of ferrocorn's settings, and the value types some of them use.
//!
//! Each entry declares a setting once: doc, name, type, default, section, command-line
//! form and kind (parser + validator). `Settings`, `--help`, the environment variables,
//! the config-file keys and `docs/settings.md` all derive from this list: when it changes,
//! run `cargo xtask docs`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::kinds::{
    choice, count, int, seconds, seconds_from, Binds, CipherList, Ciphers, EnvList, Flag, IpList,
    OptBind, OptPath, OptText, ProxyMode, Umask, UrlPrefix, NON_EMPTY_TEXT, PATHS,
    PATHS_WITH_COMMAS, TEXT,
};
use crate::kinds::{OptStatsd, StatsdAddress, DOGSTATSD_TAGS, STATSD_PREFIX};
use crate::net::IpAllowList;
use crate::registry::{declare_settings, flag, flag_with_alias, positional};

/// One address to listen on, as given to `--bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// `HOST:PORT` or `[IPv6]:PORT`; `host` is a name or an IP literal without brackets.
    Tcp { host: String, port: u16 },
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-bound listening socket inherited as file descriptor `N`.
    Fd(i32),
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddress::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            BindAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
            BindAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddress::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

/// `loglevel`: the least severe level that is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// `log_format`: how the error log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `header_map`: what to do with header names that contain `_` (gunicorn's setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMap {
    /// Drop them silently (gunicorn's default).
    Drop,
    /// Reject the request with 400.
    Refuse,
    /// Keep them (ambiguous with `-` once mapped to CGI-style names).
    Dangerous,
}

/// `proxy_protocol`: which PROXY protocol header a connection may start with (gunicorn's
/// modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// None is expected (the default).
    Off,
    /// The text header (`PROXY TCP4 …`).
    V1,
    /// The binary header.
    V2,
    /// Either version.
    Auto,
}

/// `worker_class`: gunicorn's names for the worker ferrocorn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerClass {
    /// ferrocorn's event-loop worker.
    Mio,
    /// gunicorn's `sync`: the same worker.
    Sync,
    /// gunicorn's `gthread`: the same worker (set `threads` for a thread pool).
    Gthread,
    /// gunicorn 27's `asgi`: the same event loop, the Python application served as ASGI 3.0
    /// on one asyncio event loop thread per worker.
    Asgi,
}

const WORKER_CLASSES: &[(&str, WorkerClass)] = &[
    ("mio", WorkerClass::Mio),
    ("sync", WorkerClass::Sync),
    ("gthread", WorkerClass::Gthread),
    ("asgi", WorkerClass::Asgi),
];

impl WorkerClass {
    /// The name it is given by (`-k NAME`), as the accepted names list it.
    pub fn name(self) -> &'static str {
        WORKER_CLASSES
            .iter()
            .find(|(_, class)| *class == self)
            .map_or("mio", |(name, _)| name)
    }
}

/// `memory_metric`: how the arbiter measures a worker's memory for `max_worker_memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMetric {
    /// Resident set size: counts shared pages (a preloaded application) in every worker.
    Rss,
    /// Proportional set size: shared pages divided among the processes sharing them.
    Pss,
    /// Unique set size: only the pages no other process shares.
    Uss,
}

const MEMORY_METRICS: &[(&str, MemoryMetric)] = &[
    ("pss", MemoryMetric::Pss),
    ("rss", MemoryMetric::Rss),
    ("uss", MemoryMetric::Uss),
];

/// `reload_strategy`: how HUP (and recycling) replaces workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadStrategy {
    /// gunicorn's: a whole new generation, then the old one retires.
    Generation,
    /// One worker at a time, each new one serving before an old one stops (puma's phased
    /// restart, uWSGI's chain reload).
    Rolling,
}

const RELOAD_STRATEGIES: &[(&str, ReloadStrategy)] = &[
    ("generation", ReloadStrategy::Generation),
    ("rolling", ReloadStrategy::Rolling),
];

/// `cert_reqs`: whether clients must present a certificate (gunicorn's numbers, Python's
/// `ssl.CERT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertReqs {
    /// 0: no client certificate is asked for.
    None,
    /// 1: one is asked for and verified against `ca_certs` when given.
    Optional,
    /// 2: one is required and verified against `ca_certs`.
    Required,
}

const CERT_REQS: &[(&str, CertReqs)] = &[
    ("0", CertReqs::None),
    ("1", CertReqs::Optional),
    ("2", CertReqs::Required),
    ("none", CertReqs::None),
    ("optional", CertReqs::Optional),
    ("required", CertReqs::Required),
    ("cert_none", CertReqs::None),
    ("cert_optional", CertReqs::Optional),
    ("cert_required", CertReqs::Required),
];

/// `tls_min_version`: the oldest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

const TLS_VERSIONS: &[(&str, TlsVersion)] = &[
    ("1.2", TlsVersion::Tls12),
    ("1.3", TlsVersion::Tls13),
    ("tlsv1.2", TlsVersion::Tls12),
    ("tlsv1.3", TlsVersion::Tls13),
];

/// `asgi_loop`: the asyncio event loop implementation of the ASGI worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsgiLoop {
    /// uvloop when it is installed, else asyncio's default loop.
    Auto,
    Asyncio,
    Uvloop,
}

const ASGI_LOOPS: &[(&str, AsgiLoop)] = &[
    ("auto", AsgiLoop::Auto),
    ("asyncio", AsgiLoop::Asyncio),
    ("uvloop", AsgiLoop::Uvloop),
];

/// `asgi_lifespan`: whether the ASGI lifespan protocol runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsgiLifespan {
    /// Run it; an application that does not support it (raises on the `lifespan` scope)
    /// is served without it.
    Auto,
    /// Run it; an application that does not support it fails to start.
    On,
    /// Never run it.
    Off,
}

const ASGI_LIFESPANS: &[(&str, AsgiLifespan)] = &[
    ("auto", AsgiLifespan::Auto),
    ("on", AsgiLifespan::On),
    ("off", AsgiLifespan::Off),
];

/// gunicorn's default access log format.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

const LOG_LEVELS: &[(&str, LogLevel)] = &[
    ("debug", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("warning", LogLevel::Warning),
    ("warn", LogLevel::Warning),
    ("error", LogLevel::Error),
    ("critical", LogLevel::Critical),
];

const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];

const HEADER_MAPS: &[(&str, HeaderMap)] = &[
    ("drop", HeaderMap::Drop),
    ("refuse", HeaderMap::Refuse),
    ("dangerous", HeaderMap::Dangerous),
];

/// The request limits with what 0 means resolved, as each setting's doc says: the worker
/// reads these rather than the raw values. If a limit's meaning of 0 changes, update its doc
/// (and `docs/settings.md` through `cargo xtask docs`) with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// `limit_request_line`; `None`: no limit (0).
    pub line: Option<usize>,
    /// `limit_request_fields` (never 0).
    pub fields: usize,
    /// `limit_request_field_size`, 0 being [`DEFAULT_FIELD_SIZE`].
    pub field_size: usize,
    /// `limit_request_body`; `None`: no limit (0).
    pub body: Option<u64>,
}

/// What `limit_request_field_size` = 0 means: a field is never unlimited.
pub const DEFAULT_FIELD_SIZE: usize = 8190;

impl Settings {
    /// The request limits, resolved (see [`RequestLimits`]).
    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            line: (self.limit_request_line != 0).then_some(self.limit_request_line),
            fields: self.limit_request_fields,
            field_size: match self.limit_request_field_size {
                0 => DEFAULT_FIELD_SIZE,
                n => n,
            },
            body: (self.limit_request_body != 0).then_some(self.limit_request_body),
        }
    }
}

fn localhost_ips() -> IpAllowList {
    IpAllowList::localhost()
}

/// The largest integer a TOML file can hold.
const TOML_INT_MAX: u64 = i64::MAX as u64;
/// The longest duration accepted: one year.
const MAX_SECONDS: u64 = 365 * 24 * 3600;

declare_settings! {
    /// The application to serve: a Python WSGI application, or a built-in one.
    /// Python takes gunicorn's form: `pkg.module:app`, `module` (its `application`), or a
    /// factory `module:create_app()` with literal arguments; `python:SPEC` reaches a module
    /// that shares a built-in's name (`python:hello`). The built-ins: `static:DIR` (the
    /// files under DIR), `hello` and `echo`.
    app: String = "static:.".to_string();
        Server, positional("APP"), NON_EMPTY_TEXT;

    /// The TOML config file whose keys are setting names.
    /// Without it, `ferrocorn.toml` in the working directory is read when it exists; given
    /// empty (`-c ''`), no file is read at all. Given on the command line or in the
    /// environment only (a file may hold it only empty or naming itself, as `--print-config`
    /// writes it); after loading it holds the absolute path of the file that was read, if any.
    config: Option<PathBuf> = None;
        Server, flag(Some('c'), "config", "PATH"), OptPath;

    /// An address to listen on; repeat the flag to listen on several.
    /// `HOST:PORT`, `[IPV6]:PORT`, `HOST` (port 8000), `unix:PATH` or `fd://N` (an inherited
    /// socket). Port 0 asks the kernel for a free port. The default is `0.0.0.0:$PORT` when
    /// the `PORT` variable is set.
    bind: Vec<BindAddress> = vec![BindAddress::Tcp { host: "127.0.0.1".to_string(), port: 8000 }];
        Server, flag(Some('b'), "bind", "ADDRESS"), Binds;

    /// The maximum number of pending connections on each listening socket.
    /// The kernel may cap it (`net.core.somaxconn` on Linux).
    backlog: u32 = 2048;
        Server, flag(None, "backlog", "INT"), int::<u32>(1, 65535);

    /// Set `SO_REUSEPORT` on the listening sockets.
    reuse_port: bool = false;
        Server, flag(None, "reuse-port", ""), Flag;

    /// The number of worker processes.
    /// The default is the `WEB_CONCURRENCY` variable when it is set, else 1.
    workers: usize = 1;
        Workers, flag(Some('w'), "workers", "INT"), count(1, 1024);

    /// The worker type, accepted for gunicorn compatibility: ferrocorn has one worker, an
    /// event loop with `threads` application threads, which stands for gunicorn's `sync`
    /// (`threads` = 1) and `gthread` alike; `asgi` serves a Python ASGI application (chosen
    /// without the flag when the application is an `async def app(scope, receive, send)`).
    /// Other gunicorn classes are refused.
    worker_class: WorkerClass = WorkerClass::Mio;
        Workers, flag(Some('k'), "worker-class", "CLASS"), choice(WORKER_CLASSES);

    /// The number of threads per worker that run application calls; 1 runs them inline.
    threads: usize = 1;
        Workers, flag(None, "threads", "INT"), count(1, 1024);

    /// The maximum number of open connections per worker.
    /// At the maximum, a new client takes the place of the connections idle longest (ones
    /// that have sent nothing yet, kept-alive ones between requests), as nginx does; it
    /// waits only while every connection is busy with a request.
    worker_connections: usize = 1000;
        Workers, flag(None, "worker-connections", "INT"), count(1, 1_000_000);

    /// Restart a worker after it has answered this many requests; 0 never restarts.
    max_requests: u64 = 0;
        Workers, flag(None, "max-requests", "INT"), int::<u64>(0, TOML_INT_MAX);

    /// A random number from 0 to this is added to `max_requests` per worker, so that
    /// workers do not all restart at once.
    max_requests_jitter: u64 = 0;
        Workers, flag(None, "max-requests-jitter", "INT"), int::<u64>(0, TOML_INT_MAX);

    /// Recycle a worker whose memory (`memory_metric`) is above this many MiB in two samples
    /// in a row: its replacement starts first and serves, then it drains within
    /// `graceful_timeout`. 0 never recycles for memory.
    max_worker_memory: u64 = 0;
        Workers, flag(None, "max-worker-memory", "MIB"), int::<u64>(0, 1 << 30);

    /// Seconds between two samples of each worker's memory (at least 0.1).
    memory_check_interval: Duration = Duration::from_secs(5);
        Workers, flag(None, "memory-check-interval", "SECONDS"), seconds_from(100, MAX_SECONDS);

    /// How a worker's memory is measured: `pss` (from `/proc/PID/smaps_rollup`: shared
    /// pages divided among their sharers), `rss` (counts a preloaded application's shared
    /// pages in every worker) or `uss` (private pages only).
    memory_metric: MemoryMetric = MemoryMetric::Pss;
        Workers, flag(None, "memory-metric", "METRIC"), choice(MEMORY_METRICS);

    /// Recycle a worker after it has run this many seconds (as for `max_worker_memory`);
    /// 0 never does.
    max_worker_lifetime: Duration = Duration::ZERO;
        Workers, flag(None, "max-worker-lifetime", "SECONDS"), seconds(MAX_SECONDS);

    /// A random number of seconds from 0 to this is added to `max_worker_lifetime` per
    /// worker, so that workers do not all restart at once.
    max_worker_lifetime_jitter: Duration = Duration::ZERO;
        Workers, flag(None, "max-worker-lifetime-jitter", "SECONDS"), seconds(MAX_SECONDS);

    /// How HUP and recycling replace workers: `generation` (gunicorn's: a whole new
    /// generation, then the old one retires) or `rolling` (one at a time, each new worker
    /// serving before an old one stops, so memory never holds two generations).
    reload_strategy: ReloadStrategy = ReloadStrategy::Generation;
        Workers, flag(None, "reload-strategy", "STRATEGY"), choice(RELOAD_STRATEGIES);

    /// The most requests one worker has in progress at once; past it, a new request is
    /// answered 503 with `Retry-After` and its connection closed, instead of queueing
    /// without bound (as uvicorn's `--limit-concurrency`). 0: no limit.
    limit_concurrency: usize = 0;
        Workers, flag(None, "limit-concurrency", "INT"), count(0, 1_000_000);

    /// Microseconds a worker that has just served requests keeps polling for the next ones
    /// before it sleeps, yielding the CPU between polls (ferrocorn's own setting, after
    /// Linux's `net.core.busy_poll`). The poll adapts to the traffic: it grows while requests
    /// come back within this time and shrinks to nothing when they come further apart, so an
    /// idle or lightly loaded worker does not spin. It saves the sleep and wake-up per
    /// request (lower latency, less CPU under load); 0 never polls.
    busy_poll: u64 = 50;
        Workers, flag(None, "busy-poll", "MICROSECONDS"), int::<u64>(0, 10_000);

    /// Workers silent for longer than this many seconds are killed and replaced; 0 disables
    /// the check.
    timeout: Duration = Duration::from_secs(30);
        Timeouts, flag(Some('t'), "timeout", "SECONDS"), seconds(MAX_SECONDS);

    /// On a graceful stop, workers still busy after this many seconds are killed.
    graceful_timeout: Duration = Duration::from_secs(30);
        Timeouts, flag(None, "graceful-timeout", "SECONDS"), seconds(MAX_SECONDS);

    /// Seconds a kept-alive connection may stay idle between requests; 0 disables keep-alive.
    keepalive: Duration = Duration::from_secs(2);
        Timeouts, flag(None, "keep-alive", "SECONDS"), seconds(MAX_SECONDS);

    /// Seconds allowed to receive a whole request head once its first byte arrived (a guard
    /// against slow clients), separate from `keepalive`; 0 disables it.
    header_timeout: Duration = Duration::from_secs(10);
        Timeouts, flag(None, "header-timeout", "SECONDS"), seconds(MAX_SECONDS);

    /// The slowest a request body may arrive, in bytes per second on average since its head
    /// ended, after a grace of `header_timeout` seconds (as Apache's `mod_reqtimeout`
    /// `MinRate`); a slower body is answered 408 and its connection closed. 0 turns the rate
    /// off: a body then only needs some bytes every `header_timeout` seconds, however slow.
    body_min_rate: u64 = 500;
        Timeouts, flag(None, "body-min-rate", "BYTES"), int::<u64>(0, TOML_INT_MAX);

    /// The maximum size in bytes of the request line; 0 lifts this limit (as gunicorn), but
    /// the head as a whole stays bounded (a huge line is then answered 431).
    limit_request_line: usize = 8190;
        Limits, flag(None, "limit-request-line", "INT"), count(0, 1 << 20);

    /// The maximum number of header fields in a request.
    limit_request_fields: usize = 100;
        Limits, flag(None, "limit-request-fields", "INT"), count(1, 32768);

    /// The maximum size in bytes of one header field line, its CRLF included (as gunicorn
    /// counts it); 0 means the default 8190, as a field is never unlimited.
    limit_request_field_size: usize = DEFAULT_FIELD_SIZE;
        Limits, flag_with_alias(None, "limit-request-field-size", "limit-request-field_size", "INT"), count(0, 1 << 20);

    /// The maximum size in bytes of a request body; 0 means no limit.
    limit_request_body: u64 = 0;
        Limits, flag(None, "limit-request-body", "INT"), int::<u64>(0, TOML_INT_MAX);

    /// Change to this directory after binding the sockets, before starting the workers.
    chdir: Option<PathBuf> = None;
        Process, flag(None, "chdir", "DIR"), OptPath;

    /// Write the arbiter's process id to this file.
    pidfile: Option<PathBuf> = None;
        Process, flag(Some('p'), "pid", "FILE"), OptPath;

    /// Run the workers as this user (a name or a numeric id) after binding.
    user: Option<String> = None;
        Process, flag(Some('u'), "user", "USER"), OptText;

    /// Run the workers as this group (a name or a numeric id) after binding.
    group: Option<String> = None;
        Process, flag(Some('g'), "group", "GROUP"), OptText;

    /// The file mode creation mask of the Unix socket files, as in gunicorn (0: a socket
    /// anyone may connect to): `0o22`, `022` or a decimal integer. The log files and the
    /// pidfile ferrocorn creates are 0o644 less this mask (0o600 with `077`), never writable
    /// by others. The process's own umask is left as it was inherited.
    umask: u32 = 0;
        Process, flag(Some('m'), "umask", "INT"), Umask;

    /// The process name shown by `ps`.
    proc_name: Option<String> = None;
        Process, flag(Some('n'), "name", "STRING"), OptText;

    /// Client addresses trusted to set `X-Forwarded-*` headers (`*` trusts every client).
    forwarded_allow_ips: IpAllowList = localhost_ips();
        Proxy, flag(None, "forwarded-allow-ips", "IPS"), IpList;

    /// Accept a PROXY protocol header at the start of each connection from `proxy_allow_ips`:
    /// `v1` (text), `v2` (binary), `auto` (either; what the flag alone and the older `true`
    /// mean) or `off`, as gunicorn's `--proxy-protocol [MODE]`. On a TLS listener the header
    /// comes in the clear before the handshake, where proxies send it.
    proxy_protocol: ProxyProtocol = ProxyProtocol::Off;
        Proxy, flag(None, "proxy-protocol", "MODE"), ProxyMode;

    /// Client addresses allowed to send a PROXY protocol header (`*` allows every client);
    /// a header from any other client is answered 403.
    proxy_allow_ips: IpAllowList = localhost_ips();
        Proxy, flag(None, "proxy-allow-from", "IPS"), IpList;

    /// The access log file; `-` is standard output; empty (the default) logs no access.
    accesslog: Option<String> = None;
        Logging, flag(None, "access-logfile", "FILE"), OptText;

    /// The access log line, in gunicorn's `%(atom)s` language; `json` writes one JSON object
    /// a line instead (its fields are listed in `docs/operations.md`).
    access_log_format: String = DEFAULT_ACCESS_LOG_FORMAT.to_string();
        Logging, flag(None, "access-logformat", "STRING"), TEXT;

    /// The error log file; `-` is standard error.
    errorlog: String = "-".to_string();
        Logging, flag_with_alias(None, "error-logfile", "log-file", "FILE"), NON_EMPTY_TEXT;

    /// The least severe level that is written to the error log.
    loglevel: LogLevel = LogLevel::Info;
        Logging, flag(None, "log-level", "LEVEL"), choice(LOG_LEVELS);

    /// How the error log is written: `text` for people, `json` (one object per line) for
    /// machines.
    log_format: LogFormat = LogFormat::Text;
        Logging, flag(None, "log-format", "FORMAT"), choice(LOG_FORMATS);

    /// Accept obsolete line folding in header values (RFC 9112 §5.2), joining the lines with
    /// a space; by default it is refused with 400.
    permit_obsolete_folding: bool = false;
        Http, flag(None, "permit-obsolete-folding", ""), Flag;

    /// Accept request methods that are not upper-case tokens of 3 to 20 characters.
    permit_unconventional_http_method: bool = false;
        Http, flag(None, "permit-unconventional-http-method", ""), Flag;

    /// Upper-case request methods before handing them to the application.
    casefold_http_method: bool = false;
        Http, flag(None, "casefold-http-method", ""), Flag;

    /// Strip spaces between a header name and its colon instead of refusing the request
    /// (RFC 9112 §5.1 forbids them).
    strip_header_spaces: bool = false;
        Http, flag(None, "strip-header-spaces", ""), Flag;

    /// What to do with header names containing `_`: `drop` them, `refuse` the request, or
    /// keep them (`dangerous`).
    header_map: HeaderMap = HeaderMap::Drop;
        Http, flag(None, "header-map", "MODE"), choice(HEADER_MAPS);

    /// Directories to put on Python's `sys.path`, comma-separated. As in gunicorn, each is
    /// inserted at the front in turn, so they come before the working directory (itself
    /// before everything else) and the last one given comes first.
    pythonpath: Vec<PathBuf> = Vec::new();
        Python, flag(None, "pythonpath", "DIRS"), PATHS_WITH_COMMAS;

    /// The Python virtual environment whose packages the application uses, when none is
    /// activated. Without it, an activated one (`VIRTUAL_ENV`, or a virtual environment's
    /// `bin/` first on `PATH`) is used.
    virtualenv: Option<PathBuf> = None;
        Python, flag(None, "virtualenv", "DIR"), OptPath;

    /// Import the Python application in the arbiter before starting the workers, so that
    /// they share its memory and start faster. A HUP then does not load new code.
    preload_app: bool = false;
        Python, flag(None, "preload", ""), Flag;

    /// An environment variable to set for the application, as `KEY=VALUE`; repeat the flag
    /// for several.
    raw_env: Vec<String> = Vec::new();
        Python, flag(Some('e'), "env", "KEY=VALUE"), EnvList;

    /// Restart the workers when a source file of the Python application changes (for
    /// development). With `preload_app` the restarted workers keep the preloaded code.
    reload: bool = false;
        Python, flag(None, "reload", ""), Flag;

    /// A file whose change also restarts the workers under `reload` (a template, a config
    /// file); repeat the flag for several.
    reload_extra_files: Vec<PathBuf> = Vec::new();
        Python, flag(None, "reload-extra-file", "FILE"), PATHS;

    /// The asyncio event loop of the ASGI worker: `auto` (uvloop when installed), `asyncio`
    /// or `uvloop`.
    asgi_loop: AsgiLoop = AsgiLoop::Auto;
        Python, flag(None, "asgi-loop", "LOOP"), choice(ASGI_LOOPS);

    /// The ASGI lifespan protocol: `auto` (run it unless the application does not support
    /// it), `on` (an application without it fails to start) or `off`.
    asgi_lifespan: AsgiLifespan = AsgiLifespan::Auto;
        Python, flag(None, "asgi-lifespan", "MODE"), choice(ASGI_LIFESPANS);

    /// Seconds an ASGI application is given, after its client went away, to finish the
    /// request before it is cancelled.
    asgi_disconnect_grace_period: Duration = Duration::from_secs(3);
        Python, flag(None, "asgi-disconnect-grace-period", "SECONDS"), seconds(MAX_SECONDS);

    /// The largest WebSocket message in bytes, fragments joined; a larger one closes the
    /// connection with code 1009.
    websocket_max_message_size: u64 = 16 * 1024 * 1024;
        Python, flag(None, "websocket-max-message-size", "BYTES"), int::<u64>(1, TOML_INT_MAX);

    /// The URL prefix the application is mounted at: the WSGI `SCRIPT_NAME`, removed from
    /// the start of `PATH_INFO`. Empty takes the `SCRIPT_NAME` environment variable, as
    /// gunicorn does.
    root_path: String = String::new();
        Python, flag(None, "root-path", "PATH"), UrlPrefix;

    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this address, apart from
    /// the application's listeners: `HOST:PORT` or `unix:PATH`. Empty: off.
    metrics_bind: Option<BindAddress> = None;
        Metrics, flag(None, "metrics-bind", "ADDRESS"), OptBind;

    /// Send gunicorn's statsd metrics to this address: `HOST:PORT` (UDP; port 8125 when
    /// omitted) or `unix:PATH` (a datagram socket; gunicorn's `unix://PATH` too). Empty:
    /// off. A host name is resolved once when each process starts.
    statsd_host: Option<StatsdAddress> = None;
        Metrics, flag(None, "statsd-host", "ADDRESS"), OptStatsd;

    /// A prefix for the statsd metric names (a `.` is added when missing, as gunicorn
    /// does).
    statsd_prefix: String = String::new();
        Metrics, flag(None, "statsd-prefix", "STRING"), STATSD_PREFIX;

    /// DogStatsD tags added to every statsd metric, as comma-separated `key:value` pairs.
    dogstatsd_tags: String = String::new();
        Metrics, flag(None, "dogstatsd-tags", "TAGS"), DOGSTATSD_TAGS;

    /// The PEM certificate chain served over TLS; with it, every listener speaks TLS.
    certfile: Option<PathBuf> = None;
        Tls, flag(None, "certfile", "FILE"), OptPath;

    /// The PEM private key of `certfile` (PKCS#8, PKCS#1 or SEC1, unencrypted); empty: the
    /// key is read from `certfile`.
    keyfile: Option<PathBuf> = None;
        Tls, flag(None, "keyfile", "FILE"), OptPath;

    /// PEM certificates of the authorities that client certificates are verified against.
    ca_certs: Option<PathBuf> = None;
        Tls, flag(None, "ca-certs", "FILE"), OptPath;

    /// Client certificates: 0 not asked for, 1 optional, 2 required (gunicorn's numbers).
    cert_reqs: CertReqs = CertReqs::None;
        Tls, flag(None, "cert-reqs", "INT"), choice(CERT_REQS);

    /// The cipher suites offered, in order of preference, comma- or colon-separated:
    /// rustls' names (`TLS13_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`),
    /// IANA's or OpenSSL's names of the same suites; an unknown name is refused. Empty:
    /// rustls' defaults.
    ciphers: Option<CipherList> = None;
        Tls, flag(None, "ciphers", "SUITES"), Ciphers;

    /// Accepted for gunicorn compatibility and ignored with a warning, as gunicorn
    /// deprecated it; see `tls_min_version`.
    ssl_version: Option<String> = None;
        Tls, flag(None, "ssl-version", "VERSION"), OptText;

    /// The oldest TLS version accepted: `1.2` or `1.3`.
    tls_min_version: TlsVersion = TlsVersion::Tls12;
        Tls, flag(None, "tls-min-version", "VERSION"), choice(TLS_VERSIONS);
}
