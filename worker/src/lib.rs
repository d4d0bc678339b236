//! One ferrocorn worker process: the `mio` event loop over inherited listeners and the `App`
//! interface. The built-in applications (`hello`, `echo`, `static:DIR`) are in
//! `ferrocorn-apps`.
//!
//! The worker knows nothing of fork, clap or figment. The arbiter forks, then calls [`run`]
//! in the child with the listeners, the settings, the application and a [`Supervisor`]: the
//! arbiter's side of the contract (heartbeat and log reopening).
//!
//! The signatures below are the contract between the worker and the arbiter.
//!
//! A custom application implements [`App`]; `cli/examples/custom_app.rs` serves one with the
//! full server and its command line through `ferrocorn::run`.

use std::sync::Arc;

mod access_log;
mod app;
mod clock;
mod date;
mod http1;
mod limits;
mod metrics;
mod pool;
mod probes;
mod proto;
mod response;
mod server;
pub mod statsd;
mod throttle;
mod tls;
pub mod ws;

pub use app::{
    reason_phrase, App, Body, DeferredApp, Event, ExchangeId, HeaderText, Inbox, Peer, Replies,
    Reply, Request, RequestBody, Response, Version, WsMessage,
};

pub use date::http_date;
pub use ferrocorn_config::Settings;
pub use metrics::{Snapshot, WorkerCounters, BUCKETS, DURATION_BOUNDS, METHODS, STATUSES};
pub use pool::panic_message;
pub use probes::{serve_probes, Probes, METRICS_CONTENT_TYPE};
pub use tls::{TlsConfig, TlsError};

/// A listening socket inherited from the arbiter, already bound and listening.
#[derive(Debug)]
pub enum Listener {
    /// A TCP socket (IPv4 or IPv6).
    Tcp(std::net::TcpListener),
    /// A Unix-domain stream socket.
    Unix(std::os::unix::net::UnixListener),
}

/// What a worker is doing, as shown to the arbiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Set up, not yet accepting.
    Booting,
    /// Accepting and serving.
    Serving,
    /// No longer accepting; finishing what is in flight.
    Stopping,
}

/// A snapshot the worker reports at least once a second (its heartbeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStatus {
    /// What the worker is doing.
    pub state: WorkerState,
    /// Requests answered since the worker started.
    pub requests: u64,
    /// Connections open now.
    pub connections: u32,
    /// With `threads` > 1: how long every application thread has been busy without
    /// progress (since the youngest of their current calls began, or last received request
    /// body bytes); zero while a thread is free, and always with `threads` = 1, where a
    /// call runs on the event loop and stops the heartbeat itself. A worker whose threads
    /// are all stuck cannot serve, although its loop keeps beating.
    pub app_stalled_for: std::time::Duration,
}

/// The arbiter's side of the contract, called from the worker's event loop thread.
pub trait Supervisor {
    /// Records a heartbeat. Called at least once a second while the worker runs, and on
    /// every change of state; must not block.
    fn heartbeat(&self, status: WorkerStatus);
    /// Reopens the log files the arbiter set up for this process (SIGUSR1). The worker
    /// reopens its own access log itself.
    fn reopen_logs(&self);
    /// Where the worker counts what `/metrics` shows, in memory the arbiter reads without
    /// asking the worker. `None`: the worker counts in memory of its own, seen by nobody.
    fn counters(&self) -> Option<&WorkerCounters> {
        None
    }
}

/// Why a worker's [`run`] returned; the process then exits with [`WorkerExit::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// A graceful or quick stop that was asked for by a signal.
    Stopped,
    /// `max_requests` reached: the arbiter should start a replacement.
    MaxRequests,
    /// The parent process went away.
    ParentGone,
    /// The worker could not start or serve (message for the log).
    Failed(String),
}

impl WorkerExit {
    /// The process exit code for this outcome.
    pub fn code(&self) -> i32 {
        match self {
            WorkerExit::Stopped | WorkerExit::MaxRequests | WorkerExit::ParentGone => 0,
            WorkerExit::Failed(_) => 3,
        }
    }
}

/// Runs one worker until it is told to stop, reaches `max_requests` or loses its parent.
///
/// `access_log` is the file of `settings.accesslog` (a path) when the arbiter opened it,
/// so that a worker running as another user need not open it; with `None` the worker
/// opens `settings.accesslog` itself (`-` is standard output). On SIGUSR1 the file is
/// reopened by its path.
///
/// With `tls` (built by [`TlsConfig::from_settings`] before the fork, so that the workers
/// of one configuration share its session ticket keys) every listener speaks TLS.
///
/// Installs the worker's own signal handling (TERM graceful, INT/QUIT quick, USR1 reopen);
/// the caller must have reset the arbiter's handlers and unblocked signals in the child.
pub fn run(
    settings: &Settings,
    listeners: Vec<Listener>,
    tls: Option<TlsConfig>,
    access_log: Option<std::fs::File>,
    app: Arc<dyn App>,
    supervisor: &dyn Supervisor,
) -> WorkerExit {
    server::serve(settings, listeners, tls, access_log, app, supervisor)
}
