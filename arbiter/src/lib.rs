//! The ferrocorn master process (the *arbiter*): binds the listeners, forks the workers,
//! supervises them through a shared-memory scoreboard and reacts to gunicorn's signals
//! (HUP reload, TERM/INT/QUIT stop, TTIN/TTOU resize, USR1 reopen logs, USR2 upgrade,
//! WINCH stop workers). It never parses HTTP: that is the worker's job.
//!
//! The binary builds the [`Settings`], then runs [`Arbiter::run`]; a program with its own
//! [`App`] calls [`serve`]. `docs/operations.md` describes the behaviour an operator sees
//! (each signal, upgrades, supervision, sockets).

mod child;
mod error;
mod listeners;
mod master;
mod metrics;
mod notify;
mod pidfile;
mod process;
mod scoreboard;
mod signals;
mod worker_setup;

use std::sync::Arc;

pub use error::ArbiterError;
pub use ferrocorn_config::Settings;
pub use ferrocorn_worker::App;
pub use listeners::{FERROCORN_FD_ENV, FERROCORN_METRICS_FD_ENV};
pub use scoreboard::DEFAULT_CAPACITY as SCOREBOARD_CAPACITY;

/// The process name (`/proc/PID/comm`) every worker takes, so tools and tests can tell
/// workers from the arbiter and from a re-executed arbiter.
pub const WORKER_PROCESS_NAME: &str = "ferrocorn-wrk";

/// The process name of the metrics endpoint's process (`metrics_bind`), which is not a
/// worker.
pub const METRICS_PROCESS_NAME: &str = "ferrocorn-mtr";

/// Builds an application from the settings (their `app`: `hello`, `echo`, `static:DIR`,
/// a Python `module:callable`, ...). Called after `chdir`, and again on HUP with the new
/// settings.
pub type AppLoader = Arc<dyn Fn(&Settings) -> Result<Arc<dyn App>, String>>;

/// Re-reads the configuration on SIGHUP: the same sources the binary read at start.
pub type SettingsReloader = Box<dyn FnMut() -> Result<Settings, String>>;

/// Reopens the log files of the process it runs in (SIGUSR1), in the arbiter and, through
/// the scoreboard's `Supervisor`, in every worker.
pub type LogReopener = Arc<dyn Fn() + Send + Sync>;

enum AppSource {
    Ready(Arc<dyn App>),
    Loader(AppLoader),
}

/// A configured arbiter, ready to [`run`](Arbiter::run).
pub struct Arbiter {
    settings: Settings,
    app: AppSource,
    reload: Option<SettingsReloader>,
    reopen_logs: Option<LogReopener>,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("settings", &self.settings)
            .field("reload", &self.reload.is_some())
            .field("reopen_logs", &self.reopen_logs.is_some())
            .finish_non_exhaustive()
    }
}

impl Arbiter {
    /// An arbiter serving `app` (a program's own application). HUP keeps the same app.
    pub fn with_app(settings: Settings, app: Arc<dyn App>) -> Arbiter {
        Arbiter {
            settings,
            app: AppSource::Ready(app),
            reload: None,
            reopen_logs: None,
        }
    }

    /// An arbiter that builds its application from the `app` setting with `loader`, after
    /// binding and `chdir` (so `static:DIR` is relative to `chdir`), and again on HUP.
    pub fn with_loader(settings: Settings, loader: AppLoader) -> Arbiter {
        Arbiter {
            settings,
            app: AppSource::Loader(loader),
            reload: None,
            reopen_logs: None,
        }
    }

    /// What SIGHUP re-reads. Without it, HUP restarts the workers with the same settings.
    /// It runs in the directory the arbiter started in (before `chdir`).
    pub fn on_reload(mut self, reload: SettingsReloader) -> Arbiter {
        self.reload = Some(reload);
        self
    }

    /// What SIGUSR1 runs, in the arbiter and in every worker.
    pub fn on_reopen_logs(mut self, reopen: LogReopener) -> Arbiter {
        self.reopen_logs = Some(reopen);
        self
    }

    /// Binds, forks and supervises until TERM, INT or QUIT. Returns `Ok` after a requested
    /// stop; fails when a listener cannot be bound, the pidfile names a live process, the
    /// process setup (`chdir`, `user`, `group`) fails, the app cannot be loaded, or a
    /// worker exits with an error before any worker has served (later failures are
    /// replaced with backoff, or roll a reload back).
    ///
    /// Must be called from a single-threaded process, because it forks: a thread running
    /// elsewhere may hold a lock (the allocator's, a logger's) that every worker would
    /// inherit locked forever. It checks this first and fails with
    /// [`ArbiterError::NotSingleThreaded`] before touching anything; a program embedding
    /// ferrocorn starts its threads in the workers ([`App::init_worker`]) instead.
    pub fn run(self) -> Result<(), ArbiterError> {
        master::Master::start(self)?.supervise()
    }
}

/// Serves `app` with `settings` until stopped: [`Arbiter::with_app`] then
/// [`Arbiter::run`]. For programs that bring their own [`App`].
///
/// Call it from a single-threaded process (before starting any thread): it forks, and
/// fails with [`ArbiterError::NotSingleThreaded`] otherwise (see [`Arbiter::run`]).
pub fn serve(settings: Settings, app: Arc<dyn App>) -> Result<(), ArbiterError> {
    Arbiter::with_app(settings, app).run()
}
