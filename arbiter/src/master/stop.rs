//! Stopping: TERM (graceful), INT and QUIT (quick).

use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::{signal_name, Master, Stop, BUSY_TICK, QUICK_STOP_GRACE};
use crate::error::ArbiterError;
use crate::notify::sd_notify;

impl Master {
    // ---- stopping -------------------------------------------------------------------

    /// Stops every worker: TERM (graceful) or QUIT (quick), then SIGKILL whatever is left
    /// after `graceful_timeout`. A second INT/QUIT during a graceful stop makes it quick.
    pub(super) fn stop(mut self, how: Stop) -> Result<(), ArbiterError> {
        self.publish_stopping();
        sd_notify("STOPPING=1");
        tracing::debug!(
            "Workers replaced since start: {}",
            super::restart_summary(self.scoreboard.arbiter_state())
        );
        // Has the arbiter we were to replace exited meanwhile? Then its files are ours.
        self.take_over_from_parent();
        let shared = self.reexec_child.is_some() || self.upgrade_parent.is_some();
        if shared {
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
            self.publish_state();
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
        self.stop_metrics_process(shared);
        tracing::info!("Shutting down: Master");
        Ok(())
    }
}
