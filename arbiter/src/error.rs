//! The arbiter's error type: every way starting or running the master process can fail.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the arbiter could not start or had to stop. Each variant names the value at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum ArbiterError {
    /// A `bind` address could not be bound (in use, not permitted, not resolvable).
    Bind { address: String, source: io::Error },
    /// A Unix socket path is held by a live listener, or is not a socket.
    UnixSocketInUse { path: PathBuf, reason: String },
    /// An inherited descriptor (`fd://N`, `LISTEN_FDS`, `FERROCORN_FD`) is not a listening
    /// stream socket.
    InheritedFd { fd: i32, reason: String },
    /// A `bind` entry names a socket this server already listens on (`fd://N` twice, or
    /// the descriptor of another listener): one descriptor cannot have two owners.
    SameSocket { address: String, listener: String },
    /// The pidfile names a process that is still running.
    PidfileLive { path: PathBuf, pid: i32 },
    /// The pidfile could not be written.
    Pidfile { path: PathBuf, source: io::Error },
    /// `chdir`, `umask`, `user` or `group` could not be applied.
    ProcessSetup { what: String, source: io::Error },
    /// The application could not be loaded (unknown name, missing static directory...).
    App(String),
    /// The TLS certificate, key or client authorities cannot be used (the file and why).
    Tls(ferrocorn_worker::TlsError),
    /// A system call the arbiter needs (fork, pipe, mmap, sigaction) failed.
    System {
        call: &'static str,
        source: io::Error,
    },
    /// A worker exited with an error before it was ready: starting more would loop.
    WorkerBoot { pid: i32, reason: String },
    /// More workers were asked for than the scoreboard holds.
    TooManyWorkers { requested: usize, limit: usize },
    /// The process already runs other threads: forking it would copy locks those threads
    /// may hold into every worker.
    NotSingleThreaded { threads: usize },
}

impl ArbiterError {
    /// True when the error comes from the configuration rather than the running system.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            ArbiterError::TooManyWorkers { .. }
                | ArbiterError::SameSocket { .. }
                | ArbiterError::Tls(_)
        )
    }
}

impl fmt::Display for ArbiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArbiterError::Bind { address, source } => {
                write!(f, "cannot bind {address}: {}", io_message(source))
            }
            ArbiterError::UnixSocketInUse { path, reason } => {
                write!(f, "cannot bind unix:{}: {reason}", path.display())
            }
            ArbiterError::InheritedFd { fd, reason } => {
                write!(f, "inherited file descriptor {fd} is unusable: {reason}")
            }
            ArbiterError::SameSocket { address, listener } if address == listener => {
                write!(f, "bind {address} is given twice")
            }
            ArbiterError::SameSocket { address, listener } => write!(
                f,
                "bind {address} names the socket of listener {listener}, which is already bound"
            ),
            ArbiterError::PidfileLive { path, pid } => write!(
                f,
                "pidfile {} names process {pid}, which is still running",
                path.display()
            ),
            ArbiterError::Pidfile { path, source } => {
                write!(f, "cannot write pidfile {}: {source}", path.display())
            }
            ArbiterError::ProcessSetup { what, source } => write!(f, "cannot {what}: {source}"),
            ArbiterError::App(message) => write!(f, "cannot load the application: {message}"),
            ArbiterError::Tls(error) => write!(f, "TLS: {error}"),
            ArbiterError::System { call, source } => write!(f, "{call} failed: {source}"),
            ArbiterError::WorkerBoot { pid, reason } => {
                write!(f, "worker (pid:{pid}) failed to boot: {reason}")
            }
            ArbiterError::TooManyWorkers { requested, limit } => write!(
                f,
                "{requested} workers requested, the scoreboard holds at most {limit}"
            ),
            ArbiterError::NotSingleThreaded { threads } => write!(
                f,
                "the process runs {threads} threads: the arbiter forks workers and must be \
                 started from a single-threaded process (start threads in the workers, from \
                 App::init_worker)"
            ),
        }
    }
}

impl std::error::Error for ArbiterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ArbiterError::Bind { source, .. }
            | ArbiterError::Pidfile { source, .. }
            | ArbiterError::ProcessSetup { source, .. }
            | ArbiterError::System { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `io::Error`'s Display adds "(os error 98)"; keep the message readable on one line.
fn io_message(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available".to_string(),
        _ => error.to_string(),
    }
}

/// Shorthand for a failed system call.
pub(crate) fn system(call: &'static str, source: impl Into<io::Error>) -> ArbiterError {
    ArbiterError::System {
        call,
        source: source.into(),
    }
}
