//! The arbiter's supervision loop: the state it keeps, start-up, the loop itself, timeouts,
//! resizing (TTIN/TTOU) and readiness. By concern, the rest lives beside it: `spawn`
//! (forking and reaping workers), `generations` (HUP and rollback), `recycle` (memory and
//! lifetime recycling, the rolling strategy's limit; `memory` reads `/proc`), `upgrade`
//! (USR2), `stop` (TERM/INT/QUIT) and `statsd` (the arbiter's statsd lines).

mod generations;
mod memory;
mod metrics;
mod recycle;
mod spawn;
mod statsd;
mod stop;
mod upgrade;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocorn_config::Settings;
use ferrocorn_worker::{App, WorkerState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpid, getppid, Pid};

use crate::error::ArbiterError;
use crate::listeners::{self, Listener, ListenerOrigin, FERROCORN_FD_ENV};
use crate::notify::sd_notify;
use crate::pidfile::Pidfile;
use crate::scoreboard::{monotonic_ns, ArbiterState, Scoreboard, DEFAULT_CAPACITY, MAX_CAPACITY};
use crate::signals::SignalPipe;
use crate::worker_setup::WorkerSetup;
use crate::{AppLoader, AppSource, Arbiter, LogReopener, SettingsReloader};

/// Time between SIGABRT to a timed-out worker and SIGKILL if it is still there.
const ABORT_GRACE: Duration = Duration::from_secs(2);
/// The loop's sleep when nothing is pending; signals (CHLD included) wake it at once.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// The loop's sleep while something has a deadline (stopping, retiring, backing off).
const BUSY_TICK: Duration = Duration::from_millis(100);
/// The longest pause between two spawns after repeated crashes.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Crash-free time after which the backoff starts again from zero.
const BACKOFF_RESET: Duration = Duration::from_secs(30);
/// How long a quick stop (INT, QUIT) waits for workers before SIGKILL.
const QUICK_STOP_GRACE: Duration = Duration::from_secs(2);
/// Exit code of a worker process whose `run` panicked.
const PANIC_EXIT_CODE: i32 = 101;

/// One live worker, as the arbiter tracks it (the scoreboard slot holds what it reports).
#[derive(Debug)]
struct Worker {
    slot: usize,
    generation: u64,
    /// Spawn order, to retire the oldest first.
    seq: u64,
    /// When the arbiter asked it to stop gracefully.
    retire_sent: Option<Instant>,
    /// When the arbiter sent SIGABRT after a timeout.
    abort_sent: Option<Instant>,
    /// The arbiter sent SIGKILL itself (a SIGKILL it did not send is reported as such).
    kill_sent: bool,
    /// Why the arbiter asked it to end (retired or aborted), for the restart counts.
    retire_reason: Option<RestartReason>,
    /// Its lifetime, memory samples (`recycling.memory`: bytes, as `memory_metric`) and
    /// whether it is due for recycling.
    recycling: recycle::Recycling,
}

impl Worker {
    /// Whether it is one of the `target` workers: of the current `generation`, neither
    /// being retired nor due for recycling (gunicorn's `manage_workers` count).
    fn counts_in(&self, generation: u64) -> bool {
        self.generation == generation && self.retire_sent.is_none() && self.recycling.due.is_none()
    }
}

/// Why a worker was replaced: the `reason` label of `ferrocorn_worker_restarts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RestartReason {
    /// It ended unasked: a crash, a signal from someone else, a failure to boot.
    Crash,
    /// It was silent (or all its application threads stuck) for `timeout`.
    Timeout,
    /// It ended itself after `max_requests`.
    MaxRequests,
    /// Its memory stayed above `max_worker_memory`.
    MaxMemory,
    /// It ran for `max_worker_lifetime`.
    MaxLifetime,
    /// A HUP (or `--reload`) replaced its generation.
    Reload,
    /// TTOU or WINCH lowered the number of workers.
    ScaleDown,
}

impl RestartReason {
    /// Every reason, in the order the metrics list them.
    pub(crate) const ALL: [RestartReason; 7] = [
        RestartReason::Crash,
        RestartReason::Timeout,
        RestartReason::MaxRequests,
        RestartReason::MaxMemory,
        RestartReason::MaxLifetime,
        RestartReason::Reload,
        RestartReason::ScaleDown,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Timeout => "timeout",
            RestartReason::MaxRequests => "max_requests",
            RestartReason::MaxMemory => "max_memory",
            RestartReason::MaxLifetime => "max_lifetime",
            RestartReason::Reload => "reload",
            RestartReason::ScaleDown => "scale_down",
        }
    }
}

/// `reload 2, crash 1`: the reasons workers ended for so far (as published for the metrics
/// process), for the log.
fn restart_summary(state: &ArbiterState) -> String {
    let parts: Vec<String> = RestartReason::ALL
        .iter()
        .filter(|&&reason| state.restarts(reason) > 0)
        .map(|&reason| format!("{} {}", reason.as_str(), state.restarts(reason)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Exit(i32),
    Signal(Signal),
}

/// What a reload replaced, kept until the old generation is retired.
struct Previous {
    generation: u64,
    settings: Settings,
    app: Arc<dyn App>,
    setup: WorkerSetup,
    target: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// TERM: finish in-flight requests within `graceful_timeout`.
    Graceful,
    /// INT, QUIT: stop now.
    Quick,
}

/// The running arbiter: what it was configured with, what it owns (listeners, scoreboard,
/// pidfile) and the books it keeps on its children.
pub(crate) struct Master {
    pid: Pid,
    settings: Settings,
    app: Arc<dyn App>,
    loader: Option<AppLoader>,
    reload: Option<SettingsReloader>,
    reopen_logs: Option<LogReopener>,
    listeners: Vec<Listener>,
    origin: ListenerOrigin,
    /// What the workers of the current generation are handed besides the listeners.
    setup: WorkerSetup,
    signals: SignalPipe,
    scoreboard: Scoreboard,
    workers: BTreeMap<Pid, Worker>,
    /// Bumped by every HUP; workers of other generations are retired.
    generation: u64,
    /// The highest generation ever started: numbers are not reused after a rollback.
    newest_generation: u64,
    generation_started: Instant,
    /// How many workers of the current generation should run (`workers`, TTIN/TTOU, WINCH).
    target: usize,
    spawn_seq: u64,
    pidfile: Option<Pidfile>,
    /// The arbiter that re-executed us, until it exits (then we take over its pidfile).
    upgrade_parent: Option<Pid>,
    /// The arbiter we re-executed on USR2, while it runs.
    reexec_child: Option<Pid>,
    start_dir: PathBuf,
    boot_failure: Option<ArbiterError>,
    /// The configuration before the last HUP, while its workers still run: a new
    /// generation whose workers fail to boot is rolled back to it.
    previous: Option<Previous>,
    /// Workers in a row that failed before serving; each one doubles the pause before the
    /// next spawn.
    crash_streak: u32,
    last_crash: Option<Instant>,
    /// `spawn_seq` at the last such failure: a worker spawned after it that serves ends
    /// the streak.
    last_crash_seq: u64,
    next_spawn_at: Option<Instant>,
    /// A worker serves (or none is wanted): `Listening at:` was logged and READY=1 went
    /// out (see `notify_ready`).
    ready_notified: bool,
    /// Some worker has served: the loop saw one `Serving`, or reaped one that had been.
    /// Before that, a worker that fails to boot stops the arbiter.
    served: bool,
    /// The metrics endpoint (`metrics_bind`) and its process.
    metrics: Option<metrics::MetricsProcess>,
    /// READY=1 went out after the last RELOADING=1 (see `notify_reloaded`).
    reload_notified: bool,
    /// The statsd client and the `gunicorn.workers` value it last sent.
    statsd: statsd::StatsdReport,
}

impl Master {
    /// Everything before the first fork: signals, pidfile, listeners, process setup, app.
    pub(crate) fn start(arbiter: Arbiter) -> Result<Master, ArbiterError> {
        let Arbiter {
            settings,
            app,
            reload,
            reopen_logs,
        } = arbiter;
        // Before anything else: this process forks (see `Arbiter::run`).
        if let Some(threads) = thread_count().filter(|&threads| threads > 1) {
            return Err(ArbiterError::NotSingleThreaded { threads });
        }
        let pid = getpid();
        let start_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let signals = SignalPipe::install()?;
        let upgrading = std::env::var_os(FERROCORN_FD_ENV).is_some();
        let upgrade_parent = upgrading.then(getppid);

        let pidfile = match &settings.pidfile {
            // During an upgrade the old arbiter still has the pidfile: ours is `<pidfile>.2`.
            Some(path) if upgrading => Some(with_suffix(path, ".2")),
            other => other.clone(),
        }
        .map(|path| Pidfile::create(&path, pid.as_raw(), settings.created_file_mode()))
        .transpose()?;

        tracing::info!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION"));
        // `Listening at:` waits for a worker that serves (`notify_ready`): a start that
        // fails on its configuration after binding must not look like a server.
        let (listeners, origin) = listeners::open(&settings)?;
        let metrics = listeners::open_metrics(&settings, &listeners)?;
        if let Some(listener) = &metrics {
            tracing::info!("Serving metrics at: {listener} ({pid})");
        }
        match origin {
            ListenerOrigin::Bound => {}
            ListenerOrigin::Systemd => tracing::info!("Using systemd socket activation"),
            ListenerOrigin::Upgrade => {
                tracing::info!("Inherited the listeners of arbiter (pid:{})", getppid())
            }
        }

        if let Some(name) = settings
            .proc_name
            .as_deref()
            .filter(|name| !name.is_empty())
        {
            set_process_name(name);
        }
        crate::process::chdir(&settings)?;
        // The arbiter keeps its identity; the workers take `user`/`group` after `fork`.
        let setup = WorkerSetup::prepare(&settings)?;
        setup.hand_over_logs(&settings, &start_dir);
        for path in listeners.iter().filter_map(|l| l.unix_path()) {
            setup.hand_over(path);
        }

        let (app, loader) = match app {
            AppSource::Ready(app) => (app, None),
            AppSource::Loader(loader) => {
                (loader(&settings).map_err(ArbiterError::App)?, Some(loader))
            }
        };

        let scoreboard = scoreboard_for(settings.workers)?;
        // gunicorn's line, with the class as given (`sync`, `gthread` and `mio` are one
        // worker; `asgi` runs the application on an event loop thread).
        let class = settings.worker_class.name();
        tracing::info!(
            "Using worker: {class} ({} thread(s) each)",
            settings.threads
        );

        Ok(Master {
            pid,
            target: settings.workers,
            settings,
            app,
            loader,
            reload,
            reopen_logs,
            listeners,
            origin,
            setup,
            signals,
            scoreboard,
            workers: BTreeMap::new(),
            generation: 1,
            newest_generation: 1,
            generation_started: Instant::now(),
            spawn_seq: 0,
            pidfile,
            upgrade_parent,
            reexec_child: None,
            start_dir,
            boot_failure: None,
            previous: None,
            crash_streak: 0,
            last_crash: None,
            last_crash_seq: 0,
            next_spawn_at: None,
            ready_notified: false,
            served: false,
            metrics: metrics.map(metrics::MetricsProcess::new),
            reload_notified: true,
            statsd: statsd::StatsdReport::default(),
        })
    }

    /// The loop: wait for a signal or a tick, act on signals, reap, check timeouts, retire
    /// old generations, keep the worker count, notify readiness, take over after upgrade.
    pub(crate) fn supervise(mut self) -> Result<(), ArbiterError> {
        // Before the workers: the metrics process is no worker's child.
        self.publish_state();
        self.manage_workers();
        loop {
            let received = self.signals.wait(self.tick());
            for signal in received {
                if signal != Signal::SIGCHLD {
                    tracing::info!("Handling signal: {}", signal_name(signal));
                }
                match signal {
                    Signal::SIGCHLD => {}
                    Signal::SIGTERM => return self.stop(Stop::Graceful),
                    Signal::SIGINT | Signal::SIGQUIT => return self.stop(Stop::Quick),
                    Signal::SIGHUP => self.reload(),
                    Signal::SIGTTIN => self.resize(1),
                    Signal::SIGTTOU => self.resize(-1),
                    Signal::SIGUSR1 => self.reopen_logs(),
                    Signal::SIGUSR2 => self.reexec(),
                    Signal::SIGWINCH => {
                        tracing::info!(
                            "Stopping all workers; the arbiter stays up (HUP or TTIN to restart)"
                        );
                        self.target = 0;
                    }
                    _ => {}
                }
            }
            self.reap_children();
            if let Some(error) = self.boot_failure.take() {
                tracing::error!("A worker failed to boot: stopping");
                self.stop(Stop::Quick)?;
                return Err(error);
            }
            self.check_timeouts();
            self.recycle_workers();
            self.retire_old_generations();
            self.manage_workers();
            self.notify_ready();
            self.notify_reloaded();
            self.report_statsd();
            self.take_over_from_parent();
            self.publish_state();
        }
    }

    fn tick(&self) -> Duration {
        let busy = self.next_spawn_at.is_some()
            || self.upgrade_parent.is_some()
            || self.workers.values().any(|w| {
                w.retire_sent.is_some() || w.abort_sent.is_some() || w.generation != self.generation
            })
            || !self.ready_notified;
        let mut tick = if busy { BUSY_TICK } else { IDLE_TICK };
        if !self.settings.timeout.is_zero() {
            tick = tick
                .min(self.settings.timeout / 4)
                .max(Duration::from_millis(10));
        }
        if let Some(at) = self.next_recycling_check() {
            // A check already due (a rolling replacement waits its turn) is looked at again
            // on the busy tick, not at once.
            let wait = at.saturating_duration_since(Instant::now());
            tick = tick.min(if wait.is_zero() {
                BUSY_TICK
            } else {
                wait.max(Duration::from_millis(10))
            });
        }
        tick
    }

    // ---- timeouts and retirement ----------------------------------------------------

    /// A worker silent for `timeout`, or whose application threads have all been stuck
    /// for `timeout`, gets SIGABRT, then SIGKILL [`ABORT_GRACE`] later; a retiring worker
    /// still there after `graceful_timeout` gets SIGKILL.
    fn check_timeouts(&mut self) {
        let timeout = self.settings.timeout;
        let graceful = self.settings.graceful_timeout;
        let now_ns = monotonic_ns();
        for (&pid, worker) in self.workers.iter_mut() {
            if worker.kill_sent {
                continue;
            }
            if let Some(at) = worker.abort_sent {
                if at.elapsed() >= ABORT_GRACE {
                    let _ = kill(pid, Signal::SIGKILL);
                    worker.kill_sent = true;
                }
                continue;
            }
            if let Some(at) = worker.retire_sent {
                if at.elapsed() >= graceful {
                    tracing::warn!(
                        "Worker (pid:{pid}) did not stop within {graceful:?}: killing it"
                    );
                    let _ = kill(pid, Signal::SIGKILL);
                    worker.kill_sent = true;
                    continue;
                }
            }
            if timeout.is_zero() {
                continue;
            }
            let limit = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let view = self.scoreboard.slot(worker.slot).view();
            let stalled =
                view.stalled_since_ns != 0 && now_ns.saturating_sub(view.stalled_since_ns) > limit;
            if now_ns.saturating_sub(view.heartbeat_ns) > limit {
                tracing::error!("WORKER TIMEOUT (pid:{pid})");
            } else if stalled {
                // Its loop still beats, but no thread is left to answer a request.
                tracing::error!(
                    "WORKER TIMEOUT (pid:{pid}): every application thread has been busy for more than {}s",
                    timeout.as_secs_f64()
                );
            } else {
                continue;
            }
            let _ = kill(pid, Signal::SIGABRT);
            worker.abort_sent = Some(Instant::now());
            worker.retire_reason = Some(RestartReason::Timeout);
        }
    }

    // ---- signals --------------------------------------------------------------------

    fn resize(&mut self, by: isize) {
        if by > 0 {
            if self.target >= self.scoreboard.capacity() {
                tracing::warn!(
                    "TTIN ignored: the scoreboard holds {} workers",
                    self.scoreboard.capacity()
                );
                return;
            }
            self.target += 1;
        } else if self.target > 1 {
            self.target -= 1;
        } else {
            tracing::info!("TTOU ignored: never fewer than one worker");
            return;
        }
        tracing::info!("Number of workers: {}", self.target);
    }

    /// USR1: the arbiter's logs first (creating the files a rotation moved away, handed to
    /// the workers' user), then the workers', which reopen theirs by path.
    fn reopen_logs(&mut self) {
        if let Some(reopen) = &self.reopen_logs {
            reopen();
        }
        self.setup.reopen_logs(&self.settings, &self.start_dir);
        for &pid in self.workers.keys() {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }

    /// Once a worker serves: logs `Listening at:` for every socket (gunicorn logs it after
    /// binding; here it also says the server is up) and sends READY=1.
    fn notify_ready(&mut self) {
        if self.ready_notified {
            return;
        }
        let serving = self
            .workers
            .values()
            .any(|w| self.scoreboard.slot(w.slot).view().state == WorkerState::Serving);
        self.served |= serving;
        if self.served || self.target == 0 {
            self.ready_notified = true;
            let tls = self.settings.certfile.is_some();
            for listener in &self.listeners {
                tracing::info!("Listening at: {} ({})", listener.url(tls), self.pid);
            }
            if self.upgrade_parent.is_some() {
                sd_notify(&format!("READY=1\nMAINPID={}", self.pid));
            } else {
                sd_notify("READY=1");
            }
        }
    }

    /// After a HUP's RELOADING=1: READY=1 once the reload is over, whichever way: the old
    /// generation retired, the new one rolled back, or the new configuration refused.
    fn notify_reloaded(&mut self) {
        if self.reload_notified || !self.ready_notified || self.previous.is_some() {
            return;
        }
        self.reload_notified = true;
        sd_notify("READY=1");
    }
}

/// A scoreboard with room for `workers` and the generations that overlap on a reload.
fn scoreboard_for(workers: usize) -> Result<Scoreboard, ArbiterError> {
    let capacity = DEFAULT_CAPACITY
        .max(workers.saturating_mul(4))
        .min(MAX_CAPACITY);
    if workers > capacity {
        return Err(ArbiterError::TooManyWorkers {
            requested: workers,
            limit: capacity,
        });
    }
    Scoreboard::new(capacity)
}

/// How many threads this process runs (`/proc/self/task`), when `/proc` tells.
fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// Names this process `name` in `/proc/PID/comm` (what `ps -o comm` and `top` show),
/// cut to the kernel's 15 bytes on a character boundary.
fn set_process_name(name: &str) {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if let Ok(name) = CString::new(&name[..end]) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

fn with_suffix(path: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// gunicorn logs signals by their lower-case short name (`hup`, `ttin`).
fn signal_name(signal: Signal) -> String {
    signal
        .as_str()
        .trim_start_matches("SIG")
        .to_ascii_lowercase()
}
