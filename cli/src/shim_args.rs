//! TEMPORARY: a hand-parsed subset of the command line until the settings registry's loader
//! (`cli/src/args.rs`, config issue) lands on main. Delete this file then.

use std::path::PathBuf;
use std::time::Duration;

use ferrocorn_config::{BindAddress, LogFormat, LogLevel, Settings};

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<Settings>),
    Version,
}

/// Parses `std::env::args()`. Errors are usage errors (exit code 2).
pub fn load() -> Result<Command, String> {
    let mut settings = Settings::default();
    let mut binds = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--version" | "-v" => return Ok(Command::Version),
            "-b" | "--bind" => binds.push(parse_bind(&value(&flag)?)?),
            "-w" | "--workers" => settings.workers = number(&flag, &value(&flag)?)?,
            "--threads" => settings.threads = number(&flag, &value(&flag)?)?,
            "-t" | "--timeout" => settings.timeout = seconds(&flag, &value(&flag)?)?,
            "--graceful-timeout" => settings.graceful_timeout = seconds(&flag, &value(&flag)?)?,
            "--keep-alive" => settings.keepalive = seconds(&flag, &value(&flag)?)?,
            "--max-requests" => settings.max_requests = number(&flag, &value(&flag)?)?,
            "--max-requests-jitter" => {
                settings.max_requests_jitter = number(&flag, &value(&flag)?)?
            }
            "--backlog" => settings.backlog = number(&flag, &value(&flag)?)?,
            "-p" | "--pid" => settings.pidfile = Some(PathBuf::from(value(&flag)?)),
            "--chdir" => settings.chdir = Some(PathBuf::from(value(&flag)?)),
            "-u" | "--user" => settings.user = Some(value(&flag)?),
            "-g" | "--group" => settings.group = Some(value(&flag)?),
            "--reuse-port" => settings.reuse_port = true,
            "--error-logfile" | "--log-file" => settings.errorlog = value(&flag)?,
            "--access-logfile" => settings.accesslog = Some(value(&flag)?),
            "--log-level" => {
                settings.loglevel = match value(&flag)?.as_str() {
                    "debug" => LogLevel::Debug,
                    "info" => LogLevel::Info,
                    "warning" => LogLevel::Warning,
                    "error" => LogLevel::Error,
                    "critical" => LogLevel::Critical,
                    other => return Err(format!("invalid --log-level {other:?}")),
                }
            }
            "--log-format" => {
                settings.log_format = match value(&flag)?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(format!("invalid --log-format {other:?}: text or json")),
                }
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other:?}")),
            app => settings.app = app.to_string(),
        }
    }
    if !binds.is_empty() {
        settings.bind = binds;
    }
    if settings.workers == 0 {
        return Err("--workers must be at least 1".to_string());
    }
    Ok(Command::Serve(Box::new(settings)))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("invalid {flag} {value:?}: not a number"))
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = number(flag, value)?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid {flag} {value:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bind(value: &str) -> Result<BindAddress, String> {
    if let Some(path) = value.strip_prefix("unix:") {
        return Ok(BindAddress::Unix(PathBuf::from(path)));
    }
    if let Some(fd) = value.strip_prefix("fd://") {
        return Ok(BindAddress::Fd(number("--bind", fd)?));
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((host, port)) => (host, number("--bind", port)?),
        None => (value, 8000),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(BindAddress::Tcp {
        host: host.to_string(),
        port,
    })
}
