//! ferrocorn's settings: the validated `Settings` every other crate reads.
//!
//! The registry that fills `Settings` from the command line, the environment, a config file
//! and defaults is built by the settings-registry issue; until then `Settings::default()`
//! holds gunicorn's defaults. Field names are gunicorn's setting names where gunicorn has
//! the setting: the worker and the arbiter read these fields, so renaming one is a change to
//! both.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

/// `log_level`: the least severe level that is logged.
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

/// Every setting, validated. `Default` is the value used when no source sets one.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The positional `APP`: `static:DIR`, `hello` or `echo`.
    pub app: String,
    pub config: Option<PathBuf>,
    pub bind: Vec<BindAddress>,
    pub backlog: u32,
    pub workers: usize,
    pub threads: usize,
    pub worker_connections: usize,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    /// Workers silent for longer are killed; zero disables the check.
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    /// Idle time allowed between requests on a kept-alive connection.
    pub keepalive: Duration,
    /// Time allowed to receive a whole request head (slowloris guard), separate from keepalive.
    pub header_timeout: Duration,
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    /// Zero means unlimited.
    pub limit_request_body: u64,
    pub reuse_port: bool,
    pub chdir: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub umask: u32,
    pub forwarded_allow_ips: Vec<String>,
    pub proxy_protocol: bool,
    pub proxy_allow_ips: Vec<String>,
    /// `None`: no access log; `Some("-")`: standard output.
    pub accesslog: Option<String>,
    pub access_log_format: String,
    /// `"-"`: standard error.
    pub errorlog: String,
    pub loglevel: LogLevel,
    pub log_format: LogFormat,
    pub proc_name: Option<String>,
    pub permit_obsolete_folding: bool,
    pub permit_unconventional_http_method: bool,
    pub casefold_http_method: bool,
    pub strip_header_spaces: bool,
    pub header_map: HeaderMap,
}

/// gunicorn's default access log format.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str =
    r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            app: "static:.".to_string(),
            config: None,
            bind: vec![BindAddress::Tcp {
                host: "127.0.0.1".to_string(),
                port: 8000,
            }],
            backlog: 2048,
            workers: 1,
            threads: 1,
            worker_connections: 1000,
            max_requests: 0,
            max_requests_jitter: 0,
            timeout: Duration::from_secs(30),
            graceful_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            limit_request_line: 8190,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            limit_request_body: 0,
            reuse_port: false,
            chdir: None,
            pidfile: None,
            user: None,
            group: None,
            umask: 0,
            forwarded_allow_ips: vec!["127.0.0.1".to_string(), "::1".to_string()],
            proxy_protocol: false,
            proxy_allow_ips: vec!["127.0.0.1".to_string(), "::1".to_string()],
            accesslog: None,
            access_log_format: DEFAULT_ACCESS_LOG_FORMAT.to_string(),
            errorlog: "-".to_string(),
            loglevel: LogLevel::Info,
            log_format: LogFormat::Text,
            proc_name: None,
            permit_obsolete_folding: false,
            permit_unconventional_http_method: false,
            casefold_http_method: false,
            strip_header_spaces: false,
            header_map: HeaderMap::Drop,
        }
    }
}
