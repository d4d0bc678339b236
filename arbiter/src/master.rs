//! The arbiter's supervision loop: spawning and reaping workers, timeouts, generations
//! (HUP), resizing (TTIN/TTOU), upgrades (USR2) and stopping (TERM/INT/QUIT/WINCH).

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocorn_config::Settings;
use ferrocorn_worker::{App, WorkerExit, WorkerState};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

use crate::error::ArbiterError;
use crate::listeners::{self, Listener, ListenerOrigin, FERROCORN_FD_ENV};
use crate::notify::sd_notify;
use crate::pidfile::Pidfile;
use crate::scoreboard::{monotonic_ns, Scoreboard, DEFAULT_CAPACITY};
use crate::signals::{self, BlockedSignals, SignalPipe};
use crate::{AppLoader, AppSource, Arbiter, LogReopener, SettingsReloader, WORKER_PROCESS_NAME};

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
    /// Abnormal worker ends in a row; each one doubles the pause before the next spawn.
    crash_streak: u32,
    last_crash: Option<Instant>,
    next_spawn_at: Option<Instant>,
    /// Some worker has reported `Serving` (READY=1 went out). Before that, a worker that
    /// fails to boot stops the arbiter.
    ready_notified: bool,
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
        let pid = getpid();
        let start_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let signals = SignalPipe::install()?;
        let upgrading = std::env::var_os(FERROCORN_FD_ENV).is_some();
        let upgrade_parent = upgrading.then(getppid);

        let pidfile = match &settings.pidfile {
            Some(path) => {
                let path = if upgrading {
                    with_suffix(path, ".2")
                } else {
                    path.clone()
                };
                Some(Pidfile::create(&path, pid.as_raw())?)
            }
            None => None,
        };

        tracing::info!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION"));
        let (listeners, origin) = listeners::open(&settings)?;
        for listener in &listeners {
            tracing::info!("Listening at: {listener} ({pid})");
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
        let owned_paths: Vec<_> = listeners.iter().filter_map(|l| l.unix_path()).collect();
        crate::process::setup(&settings, &owned_paths)?;

        let (app, loader) = match app {
            AppSource::Ready(app) => (app, None),
            AppSource::Loader(loader) => {
                (loader(&settings).map_err(ArbiterError::App)?, Some(loader))
            }
        };

        let capacity = DEFAULT_CAPACITY.max(settings.workers.saturating_mul(4));
        if settings.workers > capacity {
            return Err(ArbiterError::TooManyWorkers {
                requested: settings.workers,
                limit: capacity,
            });
        }
        let scoreboard = Scoreboard::new(capacity)?;
        tracing::info!("Using worker: mio ({} thread(s) each)", settings.threads);

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
            next_spawn_at: None,
            ready_notified: false,
        })
    }

    /// The loop: wait for a signal or a tick, act on signals, reap, check timeouts, retire
    /// old generations, keep the worker count, notify readiness, take over after upgrade.
    pub(crate) fn supervise(mut self) -> Result<(), ArbiterError> {
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
            self.retire_old_generations();
            self.manage_workers();
            self.notify_ready();
            self.take_over_from_parent();
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
        tick
    }

    // ---- spawning -------------------------------------------------------------------

    /// Keeps `target` workers of the current generation: spawns the missing ones (unless
    /// backing off after crashes) and retires the oldest extra ones.
    fn manage_workers(&mut self) {
        let mut current: Vec<(u64, Pid)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == self.generation && w.retire_sent.is_none())
            .map(|(pid, w)| (w.seq, *pid))
            .collect();
        current.sort();
        if current.len() > self.target {
            let extra = current.len() - self.target;
            for &(_, pid) in current.iter().take(extra) {
                self.retire(pid);
            }
            return;
        }
        if let Some(at) = self.next_spawn_at {
            if Instant::now() < at {
                return;
            }
            self.next_spawn_at = None;
        }
        if let Some(last) = self.last_crash {
            if last.elapsed() > BACKOFF_RESET {
                self.crash_streak = 0;
                self.last_crash = None;
            }
        }
        for _ in current.len()..self.target {
            self.spawn_worker();
            if self.boot_failure.is_some() || self.next_spawn_at.is_some() {
                break;
            }
            if self.crash_streak > 0 {
                // Backing off: one at a time.
                self.next_spawn_at = Some(Instant::now() + self.backoff());
                break;
            }
        }
    }

    fn backoff(&self) -> Duration {
        let exponent = self.crash_streak.saturating_sub(1).min(10);
        (Duration::from_millis(100) * (1u32 << exponent)).min(MAX_BACKOFF)
    }

    fn spawn_worker(&mut self) {
        let Some(slot) = self.scoreboard.claim(self.generation) else {
            tracing::error!(
                "cannot start a worker: all {} scoreboard slots are in use",
                self.scoreboard.capacity()
            );
            self.next_spawn_at = Some(Instant::now() + MAX_BACKOFF);
            return;
        };
        self.spawn_seq += 1;
        let blocked = BlockedSignals::block_all();
        self.app.before_fork();
        // SAFETY: the arbiter is single-threaded (its contract), so the child may run
        // arbitrary code; the child never returns into the arbiter's loop.
        let forked = unsafe { fork() };
        if matches!(forked, Ok(ForkResult::Child)) {
            self.app.after_fork_child();
        } else {
            self.app.after_fork_parent();
            drop(blocked);
        }
        match forked {
            Err(error) => {
                self.scoreboard.release(slot);
                tracing::error!("cannot start a worker: fork failed: {error}");
                self.crashed();
            }
            Ok(ForkResult::Child) => self.run_worker(slot),
            Ok(ForkResult::Parent { child }) => {
                self.scoreboard.set_pid(slot, child.as_raw());
                self.workers.insert(
                    child,
                    Worker {
                        slot,
                        generation: self.generation,
                        seq: self.spawn_seq,
                        retire_sent: None,
                        abort_sent: None,
                        kill_sent: false,
                    },
                );
                tracing::info!("Booting worker with pid: {child}");
            }
        }
    }

    /// The worker process: clean signal state, then the worker's event loop, then exit.
    fn run_worker(&self, slot: usize) -> ! {
        self.signals.close_in_child();
        signals::reset_in_child();
        // The worker must not outlive the arbiter (a SIGKILLed arbiter cannot stop it).
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        if getppid() != self.pid {
            std::process::exit(0);
        }
        if let Ok(name) = CString::new(WORKER_PROCESS_NAME) {
            let _ = nix::sys::prctl::set_name(&name);
        }
        let board_slot = self.scoreboard.slot(slot);
        let listeners: Result<Vec<_>, _> =
            self.listeners.iter().map(Listener::for_worker).collect();
        let listeners = match listeners {
            Ok(listeners) => listeners,
            Err(error) => {
                let message = format!("cannot duplicate a listener: {error}");
                board_slot.set_message(&message);
                tracing::error!("{message}");
                std::process::exit(WorkerExit::Failed(message).code());
            }
        };
        let supervisor = self.scoreboard.supervisor(slot, self.reopen_logs.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            ferrocorn_worker::run(&self.settings, listeners, self.app.clone(), &supervisor)
        }));
        let code = match outcome {
            Ok(exit) => {
                if let WorkerExit::Failed(message) = &exit {
                    // The arbiter logs it when it reaps this process.
                    board_slot.set_message(message);
                }
                exit.code()
            }
            Err(_) => {
                board_slot.set_message("the worker panicked");
                PANIC_EXIT_CODE
            }
        };
        std::process::exit(code)
    }

    // ---- reaping --------------------------------------------------------------------

    fn reap_children(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_ended(pid, Ended::Exit(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    self.child_ended(pid, Ended::Signal(signal))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::error!("waitpid failed: {error}");
                    break;
                }
            }
        }
    }

    /// Logs why a child ended and updates the books: a worker's slot is freed, a crash
    /// backs off, a failure before ready stops the arbiter.
    fn child_ended(&mut self, pid: Pid, how: Ended) {
        if self.reexec_child == Some(pid) {
            self.reexec_child = None;
            match how {
                Ended::Exit(0) => tracing::info!("upgraded arbiter (pid:{pid}) exited"),
                Ended::Exit(code) => tracing::error!(
                    "upgraded arbiter (pid:{pid}) exited with code {code}; this arbiter keeps serving"
                ),
                Ended::Signal(signal) => tracing::error!(
                    "upgraded arbiter (pid:{pid}) was killed by {}; this arbiter keeps serving",
                    signal_name(signal)
                ),
            }
            return;
        }
        let Some(worker) = self.workers.remove(&pid) else {
            return;
        };
        let slot = self.scoreboard.slot(worker.slot);
        let view = slot.view();
        let message = slot.message();
        self.scoreboard.release(worker.slot);
        let detail = message
            .as_ref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let served = view.requests;
        match how {
            Ended::Exit(0) => {
                tracing::info!("Worker exiting (pid:{pid}) after {served} request(s)");
            }
            Ended::Exit(code)
                if view.state == WorkerState::Booting && worker.retire_sent.is_none() =>
            {
                let reason = match &message {
                    Some(message) => message.clone(),
                    None => format!("exit code {code}"),
                };
                tracing::error!("Worker (pid:{pid}) failed to boot: {reason}");
                if !self.ready_notified {
                    // Nothing has served yet: starting more would loop. Stop.
                    if self.boot_failure.is_none() {
                        self.boot_failure = Some(ArbiterError::WorkerBoot {
                            pid: pid.as_raw(),
                            reason,
                        });
                    }
                } else if worker.generation == self.generation && self.previous.is_some() {
                    self.roll_back(&reason);
                } else if worker.generation != self.generation {
                    // A generation already rolled back or replaced: nothing more to do.
                } else {
                    // Served before with this configuration: a passing failure (a log
                    // directory gone?); retry with backoff rather than stop serving.
                    self.crashed();
                }
            }
            Ended::Exit(code) => {
                tracing::error!("Worker (pid:{pid}) exited with code {code}{detail}");
                // A retired generation failing on its way out does not slow the current one.
                if worker.generation == self.generation {
                    self.crashed();
                }
            }
            Ended::Signal(signal) if worker.abort_sent.is_some() => {
                tracing::error!(
                    "Worker (pid:{pid}) was killed by {} after its timeout ({}s)",
                    signal_name(signal),
                    self.settings.timeout.as_secs_f64()
                );
            }
            Ended::Signal(Signal::SIGKILL) if worker.kill_sent => {
                tracing::warn!(
                    "Worker (pid:{pid}) was killed: it did not stop within graceful_timeout"
                );
            }
            Ended::Signal(Signal::SIGKILL) => {
                tracing::error!(
                    "Worker (pid:{pid}) was sent SIGKILL by someone else! Perhaps out of memory?"
                );
                self.crashed();
            }
            Ended::Signal(signal @ (Signal::SIGTERM | Signal::SIGQUIT | Signal::SIGINT))
                if worker.retire_sent.is_some() =>
            {
                tracing::info!("Worker (pid:{pid}) stopped by {}", signal_name(signal));
            }
            Ended::Signal(signal) => {
                tracing::error!("Worker (pid:{pid}) was killed by {}", signal_name(signal));
                self.crashed();
            }
        }
    }

    /// The workers of a reloaded configuration fail to boot: go back to the configuration
    /// whose workers still run, and retire the new generation.
    fn roll_back(&mut self, reason: &str) {
        let Some(previous) = self.previous.take() else {
            return;
        };
        tracing::error!(
            "reload failed: workers of generation {} fail to boot ({reason}); back to generation {}",
            self.generation,
            previous.generation
        );
        self.settings = previous.settings;
        self.app = previous.app;
        self.target = previous.target;
        self.generation = previous.generation;
        self.generation_started = Instant::now();
        let failed: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != self.generation)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in failed {
            self.retire(pid);
        }
    }

    fn crashed(&mut self) {
        self.crash_streak = self.crash_streak.saturating_add(1);
        self.last_crash = Some(Instant::now());
        if self.crash_streak > 1 {
            let delay = self.backoff();
            tracing::warn!(
                "{} worker crashes in a row: waiting {:?} before the next start",
                self.crash_streak,
                delay
            );
            self.next_spawn_at = Some(Instant::now() + delay);
        }
    }

    // ---- timeouts and retirement ----------------------------------------------------

    /// A worker silent for `timeout` gets SIGABRT, then SIGKILL [`ABORT_GRACE`] later; a
    /// retiring worker still there after `graceful_timeout` gets SIGKILL.
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
            let silent_ns =
                now_ns.saturating_sub(self.scoreboard.slot(worker.slot).view().heartbeat_ns);
            if silent_ns > timeout.as_nanos() as u64 {
                tracing::error!("WORKER TIMEOUT (pid:{pid})");
                let _ = kill(pid, Signal::SIGABRT);
                worker.abort_sent = Some(Instant::now());
            }
        }
    }

    /// Retires the workers of older generations once every worker of the current one is
    /// serving (or after `timeout`, so a broken new generation cannot keep both alive).
    fn retire_old_generations(&mut self) {
        let old: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != self.generation && w.retire_sent.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        if old.is_empty() {
            // The old generation is retired: nothing to roll back to any more.
            self.previous = None;
            return;
        }
        let serving = self
            .workers
            .values()
            .filter(|w| w.generation == self.generation && w.retire_sent.is_none())
            .filter(|w| self.scoreboard.slot(w.slot).view().state == WorkerState::Serving)
            .count();
        let waited_enough = !self.settings.timeout.is_zero()
            && self.generation_started.elapsed() > self.settings.timeout;
        if serving >= self.target || (waited_enough && serving > 0) {
            for pid in old {
                self.retire(pid);
            }
        }
    }

    /// Asks a worker to stop gracefully (SIGTERM).
    fn retire(&mut self, pid: Pid) {
        if let Some(worker) = self.workers.get_mut(&pid) {
            if worker.retire_sent.is_none() {
                let _ = kill(pid, Signal::SIGTERM);
                worker.retire_sent = Some(Instant::now());
            }
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

    fn reopen_logs(&mut self) {
        if let Some(reopen) = &self.reopen_logs {
            reopen();
        }
        for &pid in self.workers.keys() {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }

    /// HUP: re-read the settings, load the app again, start a new generation; the old one
    /// is retired once the new one serves. On any error the running configuration stays.
    fn reload(&mut self) {
        let settings = match self.reload.as_mut() {
            Some(reload) => {
                let here = std::env::current_dir().ok();
                let _ = std::env::set_current_dir(&self.start_dir);
                let result = reload();
                if let Some(here) = here {
                    let _ = std::env::set_current_dir(here);
                }
                match result {
                    Ok(settings) => settings,
                    Err(message) => {
                        tracing::error!(
                            "reload failed, keeping the running configuration: {message}"
                        );
                        return;
                    }
                }
            }
            None => self.settings.clone(),
        };
        let previous_target = self.target;
        let mut app = self.app.clone();
        if let Some(loader) = &self.loader {
            match loader(&settings) {
                Ok(loaded) => app = loaded,
                Err(message) => {
                    tracing::error!(
                        "reload failed, keeping the running configuration: cannot load the application: {message}"
                    );
                    return;
                }
            }
        }
        if settings.bind != self.settings.bind && self.origin != ListenerOrigin::Bound {
            tracing::warn!(
                "reload: the listeners were inherited ({:?}); a changed bind list takes effect on restart",
                self.origin
            );
        } else if settings.bind != self.settings.bind {
            match self.rebind(&settings) {
                Ok(listeners) => self.listeners = listeners,
                Err(error) => {
                    tracing::error!("reload failed, keeping the running configuration: {error}");
                    return;
                }
            }
        }
        if settings.pidfile != self.settings.pidfile && self.upgrade_parent.is_none() {
            self.pidfile = None;
            if let Some(path) = &settings.pidfile {
                // Relative paths name files from where ferrocorn started, not from `chdir`.
                match Pidfile::create(&self.start_dir.join(path), self.pid.as_raw()) {
                    Ok(pidfile) => self.pidfile = Some(pidfile),
                    Err(error) => tracing::error!("{error}"),
                }
            }
        }
        if settings.workers > self.scoreboard.capacity() {
            tracing::error!(
                "reload: {} workers requested, the scoreboard holds {}; keeping {}",
                settings.workers,
                self.scoreboard.capacity(),
                self.target
            );
        } else {
            self.target = settings.workers;
        }
        let replaced = std::mem::replace(&mut self.settings, settings);
        let previous_app = std::mem::replace(&mut self.app, app);
        self.previous = Some(Previous {
            generation: self.generation,
            settings: replaced,
            app: previous_app,
            target: previous_target,
        });
        self.newest_generation += 1;
        self.generation = self.newest_generation;
        self.generation_started = Instant::now();
        self.crash_streak = 0;
        self.next_spawn_at = None;
        tracing::info!(
            "Reloaded: starting generation {} with {} worker(s)",
            self.generation,
            self.target
        );
    }

    /// The listeners for a new `bind` list: kept where the address is unchanged, bound
    /// afresh otherwise. Nothing changes when one cannot be bound.
    fn rebind(&mut self, settings: &Settings) -> Result<Vec<Listener>, ArbiterError> {
        let mut old: Vec<Option<Listener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut fresh = Vec::new();
        for address in &settings.bind {
            let reused = old
                .iter_mut()
                .find(|l| {
                    l.as_ref()
                        .is_some_and(|l| l.configured.as_ref() == Some(address))
                })
                .and_then(Option::take);
            match reused {
                Some(listener) => fresh.push(listener),
                None => match listeners::bind(address, settings) {
                    Ok(listener) => {
                        tracing::info!("Listening at: {listener} ({})", self.pid);
                        fresh.push(listener)
                    }
                    Err(error) => {
                        // Put everything back as it was.
                        self.listeners =
                            fresh.into_iter().chain(old.into_iter().flatten()).collect();
                        return Err(error);
                    }
                },
            }
        }
        for listener in old.into_iter().flatten() {
            tracing::info!("Closing listener {listener}");
        }
        Ok(fresh)
    }

    /// USR2: fork and execute the ferrocorn binary again with the listeners inherited
    /// through `FERROCORN_FD`. The new arbiter writes `<pidfile>.2` and takes the pidfile
    /// over once this one exits (TERM to this one completes the upgrade).
    fn reexec(&mut self) {
        if let Some(child) = self.reexec_child {
            tracing::warn!("USR2 ignored: upgraded arbiter (pid:{child}) is already running");
            return;
        }
        if let Some(parent) = self.upgrade_parent {
            tracing::warn!("USR2 ignored: the previous arbiter (pid:{parent}) is still running");
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => strip_deleted(exe),
            Err(error) => {
                tracing::error!("cannot upgrade: cannot find the running binary: {error}");
                return;
            }
        };
        let fds: Vec<i32> = self.listeners.iter().map(Listener::raw_fd).collect();
        let fd_list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let Some(program) = cstring(exe.as_os_str().as_bytes()) else {
            tracing::error!("cannot upgrade: the binary path contains a NUL byte");
            return;
        };
        let argv: Option<Vec<CString>> = std::env::args_os()
            .map(|arg| cstring(arg.as_bytes()))
            .collect();
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(key, _)| key != FERROCORN_FD_ENV)
            .collect();
        env.push((FERROCORN_FD_ENV.into(), fd_list.into()));
        let envp: Option<Vec<CString>> = env
            .iter()
            .map(|(key, value)| {
                let mut pair = key.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                cstring(&pair)
            })
            .collect();
        let (Some(argv), Some(envp)) = (argv, envp) else {
            tracing::error!(
                "cannot upgrade: an argument or environment variable contains a NUL byte"
            );
            return;
        };
        let start_dir = cstring(self.start_dir.as_os_str().as_bytes());
        let blocked = BlockedSignals::block_all();
        // SAFETY: single-threaded arbiter; the child only calls exec-related functions and
        // exits, never returning into the loop.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            drop(blocked);
        }
        match forked {
            Err(error) => tracing::error!("cannot upgrade: fork failed: {error}"),
            Ok(ForkResult::Child) => {
                self.signals.close_in_child();
                signals::reset_in_child();
                if let Some(dir) = &start_dir {
                    let _ = nix::unistd::chdir(dir.as_c_str());
                }
                if listeners::prepare_inheritance(&self.listeners).is_ok() {
                    let _ = nix::unistd::execve(&program, &argv, &envp);
                }
                // SAFETY: _exit ends the child without running the arbiter's destructors
                // (pidfile, socket files) that belong to the parent.
                unsafe { nix::libc::_exit(127) }
            }
            Ok(ForkResult::Parent { child }) => {
                tracing::info!(
                    "Upgrading: started {} as arbiter (pid:{child})",
                    exe.display()
                );
                self.reexec_child = Some(child);
            }
        }
    }

    /// After an upgrade: once the old arbiter has exited, the pidfile becomes ours.
    fn take_over_from_parent(&mut self) {
        let Some(parent) = self.upgrade_parent else {
            return;
        };
        if getppid() == parent {
            return;
        }
        self.upgrade_parent = None;
        tracing::info!("The previous arbiter (pid:{parent}) has exited: this one takes over");
        if let (Some(pidfile), Some(path)) = (self.pidfile.as_mut(), self.settings.pidfile.as_ref())
        {
            if let Err(error) = pidfile.rename_to(&self.start_dir.join(path)) {
                tracing::error!("cannot write pidfile {}: {error}", path.display());
            }
        }
        sd_notify(&format!("MAINPID={}", self.pid));
    }

    fn notify_ready(&mut self) {
        if self.ready_notified {
            return;
        }
        let serving = self
            .workers
            .values()
            .any(|w| self.scoreboard.slot(w.slot).view().state == WorkerState::Serving);
        if serving || self.target == 0 {
            self.ready_notified = true;
            if self.upgrade_parent.is_some() {
                sd_notify(&format!("READY=1\nMAINPID={}", self.pid));
            } else {
                sd_notify("READY=1");
            }
        }
    }

    // ---- stopping -------------------------------------------------------------------

    /// Stops every worker: TERM (graceful) or QUIT (quick), then SIGKILL whatever is left
    /// after `graceful_timeout`. A second INT/QUIT during a graceful stop makes it quick.
    fn stop(mut self, how: Stop) -> Result<(), ArbiterError> {
        sd_notify("STOPPING=1");
        // Has the arbiter we were to replace exited meanwhile? Then its files are ours.
        self.take_over_from_parent();
        if self.reexec_child.is_some() || self.upgrade_parent.is_some() {
            // Another arbiter (the upgraded one, or the one we were to replace and which
            // still runs) listens on the same socket files: leave them.
            for listener in &mut self.listeners {
                listener.keep_socket_file();
            }
        }
        let signal = match how {
            Stop::Graceful => Signal::SIGTERM,
            Stop::Quick => Signal::SIGQUIT,
        };
        for &pid in self.workers.keys() {
            let _ = kill(pid, signal);
        }
        // The workers hold their own copies; closing ours changes nothing for them.
        self.listeners.clear();
        let grace = match how {
            Stop::Graceful => self.settings.graceful_timeout,
            // A worker busy inside the app cannot act on QUIT before the call returns.
            Stop::Quick => self.settings.graceful_timeout.min(QUICK_STOP_GRACE),
        };
        let started = Instant::now();
        let mut deadline = started + grace;
        let mut quick = how == Stop::Quick;
        while !self.workers.is_empty() && Instant::now() < deadline {
            for signal in self.signals.wait(BUSY_TICK) {
                if matches!(signal, Signal::SIGINT | Signal::SIGQUIT) && !quick {
                    tracing::info!("Handling signal: {}: stopping quickly", signal_name(signal));
                    quick = true;
                    deadline = deadline.min(Instant::now() + QUICK_STOP_GRACE);
                    for &pid in self.workers.keys() {
                        let _ = kill(pid, Signal::SIGQUIT);
                    }
                }
            }
            self.reap_children();
        }
        if !self.workers.is_empty() {
            tracing::warn!(
                "{} worker(s) still running after {:?}: killing them",
                self.workers.len(),
                started.elapsed()
            );
            let pids: Vec<Pid> = self.workers.keys().copied().collect();
            for pid in pids {
                let _ = kill(pid, Signal::SIGKILL);
                if let Some(worker) = self.workers.get_mut(&pid) {
                    worker.kill_sent = true;
                }
                let _ = waitpid(pid, None);
                if let Some(worker) = self.workers.remove(&pid) {
                    self.scoreboard.release(worker.slot);
                }
            }
        }
        self.reap_children();
        tracing::info!("Shutting down: Master");
        Ok(())
    }
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

/// `/proc/self/exe` of a binary replaced on disk reads `PATH (deleted)`; the new binary is
/// at `PATH`.
fn strip_deleted(exe: PathBuf) -> PathBuf {
    let bytes = exe.as_os_str().as_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(stripped) => PathBuf::from(std::ffi::OsStr::from_bytes(stripped)),
        None => exe,
    }
}

fn cstring(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// gunicorn logs signals by their lower-case short name (`hup`, `ttin`).
fn signal_name(signal: Signal) -> String {
    signal
        .as_str()
        .trim_start_matches("SIG")
        .to_ascii_lowercase()
}
