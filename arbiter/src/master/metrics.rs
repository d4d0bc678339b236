//! The metrics endpoint's process (`metrics_bind`): forked before the first worker, started
//! again if it dies, never counted as a worker; and what the arbiter publishes for it in the
//! scoreboard's header on every turn of its loop (its heartbeat, the workers it keeps, the
//! reloads and restarts, and from TERM/INT/QUIT on, that it stops).
//!
//! Why a process of its own rather than the arbiter's loop: it answers while every worker
//! is busy, hung or crashing, and nothing it does (a slow client, reading `/proc`) can delay
//! the arbiter's timeouts, reaping or signals, which only write a few atomics for it.

use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{getppid, ForkResult, Pid};

use super::{Ended, Master, PANIC_EXIT_CODE};
use crate::child;
use crate::listeners::Listener;
use crate::metrics::Exposition;
use crate::scoreboard::monotonic_ns;
use crate::signals;
use crate::METRICS_PROCESS_NAME;

/// The shortest time between two starts of the metrics process.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// The metrics endpoint's listener and the process serving it.
#[derive(Debug)]
pub(crate) struct MetricsProcess {
    pub(super) listener: Listener,
    pid: Option<Pid>,
    /// Not started again before this time after it ended.
    next_start: Option<Instant>,
    /// The generation whose listeners it shows (it inherited them at fork).
    generation: u64,
}

impl MetricsProcess {
    pub(super) fn new(listener: Listener) -> MetricsProcess {
        MetricsProcess {
            listener,
            pid: None,
            next_start: None,
            generation: 0,
        }
    }
}

impl Master {
    /// Publishes the arbiter's state for the metrics process and keeps that process running
    /// (started again after it ended, and after a reload, whose listeners it must show).
    pub(super) fn publish_state(&mut self) {
        let state = self.scoreboard.arbiter_state();
        state
            .workers_desired
            .store(self.target as u64, Ordering::Relaxed);
        state
            .reloads
            .store(self.newest_generation - 1, Ordering::Relaxed);
        state.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
        let Some(metrics) = &mut self.metrics else {
            return;
        };
        if metrics.pid.is_some() && metrics.generation != self.newest_generation {
            if let Some(pid) = metrics.pid.take() {
                // Reaped as an unknown child.
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        if metrics.pid.is_none() && metrics.next_start.is_none_or(|at| Instant::now() >= at) {
            self.start_metrics_process();
        }
    }

    /// From the moment a stop begins, `/readyz` answers 503.
    pub(super) fn publish_stopping(&self) {
        self.scoreboard
            .arbiter_state()
            .stopping
            .store(1, Ordering::Release);
    }

    /// The end of a stop: the metrics process goes with the arbiter. `keep_socket_file`
    /// when another arbiter listens on the same socket file.
    pub(super) fn stop_metrics_process(&mut self, keep_socket_file: bool) {
        let Some(metrics) = &mut self.metrics else {
            return;
        };
        if keep_socket_file {
            metrics.listener.keep_socket_file();
        }
        if let Some(pid) = metrics.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }

    /// Whether `pid` was the metrics process; it is started again (see `publish_state`).
    pub(super) fn metrics_process_ended(&mut self, pid: Pid, how: Ended) -> bool {
        let Some(metrics) = &mut self.metrics else {
            return false;
        };
        if metrics.pid != Some(pid) {
            return false;
        }
        metrics.pid = None;
        metrics.next_start = Some(Instant::now() + RESTART_DELAY);
        match how {
            Ended::Exit(code) => {
                tracing::error!("The metrics process (pid:{pid}) exited with code {code}")
            }
            Ended::Signal(signal) => tracing::error!(
                "The metrics process (pid:{pid}) was killed by {}",
                super::signal_name(signal)
            ),
        }
        true
    }

    fn start_metrics_process(&mut self) {
        // SAFETY: the child leaves through `child::guard`'s _exit, never returning into the
        // loop.
        let forked = unsafe { self.fork_guarded() };
        let generation = self.newest_generation;
        match forked {
            Err(error) => {
                tracing::error!("cannot start the metrics process: fork failed: {error}");
                if let Some(metrics) = &mut self.metrics {
                    metrics.next_start = Some(Instant::now() + RESTART_DELAY);
                }
            }
            Ok(ForkResult::Child) => {
                child::guard(|| self.run_metrics_process(), |_| {}, PANIC_EXIT_CODE)
            }
            Ok(ForkResult::Parent { child }) => {
                if let Some(metrics) = &mut self.metrics {
                    metrics.pid = Some(child);
                    metrics.generation = generation;
                    metrics.next_start = None;
                }
                tracing::debug!("Started the metrics process (pid:{child})");
            }
        }
    }

    /// The metrics process, from the instant after `fork`: a clean signal state in which
    /// the stop signals are ignored (it keeps answering `/readyz` with 503 through a stop,
    /// even when TERM goes to the whole process group, and dies with the arbiter), then the
    /// endpoint's loop.
    fn run_metrics_process(&self) -> i32 {
        self.app.after_fork_child();
        // SAFETY: this is the forked child, which leaves through `child::guard`'s _exit: the
        // `Master` holding the pipe is never dropped here.
        unsafe { self.signals.close_in_child() };
        signals::reset_in_child();
        for signal in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
            Signal::SIGPIPE,
        ] {
            // SAFETY: SIG_IGN runs no code in a handler.
            let _ =
                unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn) };
        }
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        if getppid() != self.pid {
            return 0;
        }
        if let Ok(name) = CString::new(METRICS_PROCESS_NAME) {
            let _ = nix::sys::prctl::set_name(&name);
        }
        let Some(metrics) = &self.metrics else {
            return 0;
        };
        let listener = match metrics.listener.for_worker() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!("metrics process: cannot duplicate its listener: {error}");
                return 3;
            }
        };
        let exposition = Exposition {
            scoreboard: &self.scoreboard,
            listeners: &self.listeners,
            tls: self.settings.certfile.is_some(),
            arbiter: self.pid,
        };
        let exit = ferrocorn_worker::serve_probes(listener, &exposition);
        if let ferrocorn_worker::WorkerExit::Failed(message) = &exit {
            tracing::error!("{message}");
        }
        exit.code()
    }
}
