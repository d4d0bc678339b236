//! Spawning workers (fork, then the worker's process) and reaping them (why each one ended,
//! crash backoff, a failure before anything served).

use std::ffi::CString;
use std::time::{Duration, Instant};

use ferrocorn_worker::{WorkerExit, WorkerState};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getppid, ForkResult, Pid};

use super::recycle::Recycling;
use super::{
    signal_name, Ended, Master, RestartReason, Worker, BACKOFF_RESET, MAX_BACKOFF, PANIC_EXIT_CODE,
};
use crate::child;
use crate::error::ArbiterError;
use crate::listeners::Listener;
use crate::scoreboard::SlotView;
use crate::signals::{self, BlockedSignals};
use crate::WORKER_PROCESS_NAME;

impl Master {
    /// Keeps `target` workers of the current generation: spawns the missing ones (unless
    /// backing off after crashes, or the rolling strategy's limit is reached) and retires
    /// the oldest extra ones. A worker due for recycling does not count: its replacement
    /// is one of the missing.
    /// Forks with every signal blocked and the application's fork hooks around the call;
    /// in the parent (and when fork fails) the signals are unblocked again, while the child
    /// keeps them blocked until it resets its signal state (`signals::reset_in_child`).
    ///
    /// # Safety
    ///
    /// The caller makes the child leave through `child::guard` (which ends it in _exit):
    /// it must never return or unwind into the arbiter's loop.
    pub(super) unsafe fn fork_guarded(&mut self) -> nix::Result<ForkResult> {
        let blocked = BlockedSignals::block_all();
        self.app.before_fork();
        // SAFETY: the arbiter started single-threaded (`Master::start` checks it), so the
        // child may run arbitrary code; an application loaded here (`--preload`) that
        // started threads keeps its own state consistent through the fork hooks around
        // this call. The caller keeps the child out of the arbiter's loop (see above).
        let forked = unsafe { fork() };
        if matches!(forked, Ok(ForkResult::Child)) {
            std::mem::forget(blocked);
        } else {
            self.app.after_fork_parent();
            drop(blocked);
        }
        forked
    }

    pub(super) fn manage_workers(&mut self) {
        let mut current: Vec<(u64, Pid)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.counts_in(self.generation))
            .map(|(pid, w)| (w.seq, *pid))
            .collect();
        current.sort();
        if current.len() > self.target {
            let extra = current.len() - self.target;
            for &(_, pid) in current.iter().take(extra) {
                self.retire(pid, RestartReason::ScaleDown);
            }
            return;
        }
        if let Some(at) = self.next_spawn_at {
            if Instant::now() < at {
                return;
            }
            self.next_spawn_at = None;
        }
        // The streak ends after a quiet while, or as soon as a worker started since the last
        // failure serves: then the missing workers are all started at once.
        let recovered = self.crash_streak > 0
            && self.workers.values().any(|w| {
                w.seq > self.last_crash_seq
                    && self.scoreboard.slot(w.slot).view().state != WorkerState::Booting
            });
        if recovered
            || self
                .last_crash
                .is_some_and(|last| last.elapsed() > BACKOFF_RESET)
        {
            self.crash_streak = 0;
            self.last_crash = None;
        }
        let missing = self.target - current.len();
        for _ in 0..missing.min(self.spawn_room()) {
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

    pub(super) fn backoff(&self) -> Duration {
        let exponent = self.crash_streak.saturating_sub(1).min(10);
        (Duration::from_millis(100) * (1u32 << exponent)).min(MAX_BACKOFF)
    }

    pub(super) fn spawn_worker(&mut self) {
        let Some(slot) = self.scoreboard.claim(self.generation) else {
            tracing::error!(
                "cannot start a worker: all {} scoreboard slots are in use",
                self.scoreboard.capacity()
            );
            self.next_spawn_at = Some(Instant::now() + MAX_BACKOFF);
            return;
        };
        self.spawn_seq += 1;
        // SAFETY: the child runs under `child::guard`, which ends it in _exit: it never
        // returns or unwinds into the arbiter's loop.
        let forked = unsafe { self.fork_guarded() };
        match forked {
            Err(error) => {
                self.scoreboard.release(slot);
                tracing::error!("cannot start a worker: fork failed: {error}");
                self.failed_before_serving();
            }
            Ok(ForkResult::Child) => {
                let board_slot = self.scoreboard.slot(slot);
                child::guard(
                    || self.run_worker(slot),
                    |panic| board_slot.set_message(&format!("the worker panicked: {panic}")),
                    PANIC_EXIT_CODE,
                )
            }
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
                        retire_reason: None,
                        kill_sent: false,
                        recycling: Recycling::new(&self.settings),
                    },
                );
                tracing::info!("Booting worker with pid: {child}");
            }
        }
    }

    /// The worker process, from the instant after `fork` (signals still blocked): the
    /// application's fork hook, a clean signal state, then the worker's event loop. Returns
    /// the process's exit code; runs under `child::guard`.
    pub(super) fn run_worker(&self, slot: usize) -> i32 {
        self.app.after_fork_child();
        // SAFETY: this is the forked child, and it leaves through `child::guard`'s _exit:
        // the `Master` holding the pipe is never dropped here.
        unsafe { self.signals.close_in_child() };
        signals::reset_in_child();
        let board_slot = self.scoreboard.slot(slot);
        // `user` and `group` now, before the application runs any code of its own.
        let access_log = match self.setup.enter() {
            Ok(access_log) => access_log,
            Err(message) => {
                board_slot.set_message(&message);
                tracing::error!("{message}");
                return WorkerExit::Failed(message).code();
            }
        };
        // The worker must not outlive the arbiter (a SIGKILLed arbiter cannot stop it).
        // After the change of user, which clears it.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        if getppid() != self.pid {
            return 0;
        }
        if let Ok(name) = CString::new(WORKER_PROCESS_NAME) {
            let _ = nix::sys::prctl::set_name(&name);
        }
        let listeners: Result<Vec<_>, _> =
            self.listeners.iter().map(Listener::for_worker).collect();
        let listeners = match listeners {
            Ok(listeners) => listeners,
            Err(error) => {
                let message = format!("cannot duplicate a listener: {error}");
                board_slot.set_message(&message);
                tracing::error!("{message}");
                return WorkerExit::Failed(message).code();
            }
        };
        let supervisor = self.scoreboard.supervisor(slot, self.reopen_logs.clone());
        let exit = ferrocorn_worker::run(
            &self.settings,
            listeners,
            self.setup.tls(),
            access_log,
            self.app.clone(),
            &supervisor,
        );
        if let WorkerExit::Failed(message) = &exit {
            // The arbiter logs it when it reaps this process.
            board_slot.set_message(message);
        }
        exit.code()
    }

    // ---- reaping --------------------------------------------------------------------

    pub(super) fn reap_children(&mut self) {
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

    /// Logs why a child ended and updates the books: a worker's slot is freed; a worker
    /// that ended unasked after it had served is simply replaced (at once, by
    /// `manage_workers`); one that failed before it ever served stops the arbiter if
    /// nothing has served yet, rolls a reload back, or else backs off.
    pub(super) fn child_ended(&mut self, pid: Pid, how: Ended) {
        if self.reexec_child == Some(pid) {
            self.reexec_child = None;
            log_upgrade_end(pid, how);
            return;
        }
        if self.metrics_process_ended(pid, how) {
            return;
        }
        let Some(worker) = self.workers.remove(&pid) else {
            return;
        };
        let slot = self.scoreboard.slot(worker.slot);
        let view = slot.view();
        let message = slot.message();
        self.scoreboard.release(worker.slot);
        // It may have served and died between two turns of the loop, unseen by
        // `notify_ready`: the state it left says so.
        let ever_served = view.state != WorkerState::Booting;
        self.served |= ever_served;
        let unasked = self.log_worker_end(pid, &worker, &view, message.as_deref(), how);
        self.scoreboard
            .arbiter_state()
            .count_restart(match (worker.retire_reason, how) {
                (Some(reason), _) => reason,
                // A worker ends itself with 0 after `max_requests` (or when its parent is gone).
                (None, Ended::Exit(0)) => RestartReason::MaxRequests,
                (None, _) => RestartReason::Crash,
            });
        if !unasked || ever_served {
            return;
        }
        match how {
            Ended::Exit(code) => {
                let reason = message.unwrap_or_else(|| format!("exit code {code}"));
                self.boot_failed(pid, &worker, reason);
            }
            // Killed while booting (the OOM killer during an import?): as a boot failure,
            // but it says nothing against the configuration.
            Ended::Signal(_) if worker.generation == self.generation => {
                self.failed_before_serving()
            }
            Ended::Signal(_) => {}
        }
    }

    /// Logs how a worker ended (a failure to boot is left to `boot_failed`); true when
    /// nobody asked it to end (a crash, a signal from someone else, a failure to boot).
    fn log_worker_end(
        &self,
        pid: Pid,
        worker: &Worker,
        view: &SlotView,
        message: Option<&str>,
        how: Ended,
    ) -> bool {
        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
        match how {
            Ended::Exit(0) => {
                let requests = view.requests;
                tracing::info!("Worker exiting (pid:{pid}) after {requests} request(s)");
                false
            }
            Ended::Exit(_)
                if view.state == WorkerState::Booting && worker.retire_sent.is_none() =>
            {
                true
            }
            Ended::Exit(code) => {
                tracing::error!("Worker (pid:{pid}) exited with code {code}{detail}");
                worker.retire_sent.is_none()
            }
            Ended::Signal(signal) if worker.abort_sent.is_some() => {
                tracing::error!(
                    "Worker (pid:{pid}) was killed by {} after its timeout ({}s)",
                    signal_name(signal),
                    self.settings.timeout.as_secs_f64()
                );
                false
            }
            Ended::Signal(Signal::SIGKILL) if worker.kill_sent => {
                tracing::warn!(
                    "Worker (pid:{pid}) was killed: it did not stop within graceful_timeout"
                );
                false
            }
            Ended::Signal(Signal::SIGKILL) => {
                tracing::error!(
                    "Worker (pid:{pid}) was sent SIGKILL by someone else! Perhaps out of memory?"
                );
                true
            }
            Ended::Signal(signal @ (Signal::SIGTERM | Signal::SIGQUIT | Signal::SIGINT))
                if worker.retire_sent.is_some() =>
            {
                tracing::info!("Worker (pid:{pid}) stopped by {}", signal_name(signal));
                false
            }
            Ended::Signal(signal) => {
                tracing::error!("Worker (pid:{pid}) was killed by {}", signal_name(signal));
                true
            }
        }
    }

    /// A worker exited with an error before it ever served.
    fn boot_failed(&mut self, pid: Pid, worker: &Worker, reason: String) {
        tracing::error!("Worker (pid:{pid}) failed to boot: {reason}");
        if !self.served {
            // Nothing has served yet: starting more would loop. Stop.
            if self.boot_failure.is_none() {
                self.boot_failure = Some(ArbiterError::WorkerBoot {
                    pid: pid.as_raw(),
                    reason,
                });
            }
        } else if worker.generation == self.generation && self.previous.is_some() {
            self.roll_back(&reason);
        } else if worker.generation == self.generation {
            // Served before with this configuration: a passing failure (a log directory
            // gone?); retry with backoff rather than stop serving.
            self.failed_before_serving();
        }
        // Else a generation already rolled back or replaced: nothing more to do.
    }

    /// Counts a worker of the current generation that ended before it ever served: each one
    /// in a row doubles the pause before the next start. Workers that served are replaced
    /// at once, whatever ended them: only a broken start can loop.
    pub(super) fn failed_before_serving(&mut self) {
        self.crash_streak = self.crash_streak.saturating_add(1);
        self.last_crash = Some(Instant::now());
        self.last_crash_seq = self.spawn_seq;
        if self.crash_streak > 1 {
            let delay = self.backoff();
            tracing::warn!(
                "{} workers in a row failed before serving: waiting {:?} before the next start",
                self.crash_streak,
                delay
            );
            self.next_spawn_at = Some(Instant::now() + delay);
        }
    }
}

/// Logs how the arbiter started by USR2 ended.
fn log_upgrade_end(pid: Pid, how: Ended) {
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
}
