//! Generations: HUP loads the configuration again and starts a new generation of workers;
//! the old one retires once the new one serves (all at once, or one worker at a time with
//! the rolling strategy), or the new one is rolled back.

use std::path::PathBuf;
use std::time::Instant;

use ferrocorn_config::{BindAddress, ReloadStrategy, Settings};
use ferrocorn_worker::WorkerState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{Master, Previous, RestartReason};
use crate::error::ArbiterError;
use crate::listeners::{self, Listener, ListenerOrigin};
use crate::notify::sd_notify;
use crate::pidfile::Pidfile;
use crate::scoreboard::monotonic_ns;
use crate::worker_setup::WorkerSetup;

impl Master {
    /// HUP: re-read the settings, enter their `chdir`, load the app again, start a new
    /// generation; the old one is retired once the new one serves. On any error the
    /// running configuration stays, in the directory it ran in.
    pub(super) fn reload(&mut self) {
        // systemd: reloading until READY=1, sent once this reload is over (`notify_reloaded`).
        sd_notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            monotonic_ns() / 1000
        ));
        self.reload_notified = false;
        let Some(settings) = self.reread_settings() else {
            return;
        };
        let left = std::env::current_dir().ok();
        let outcome = self
            .enter_work_dir(&settings)
            .and_then(|()| self.start_generation(settings));
        if let Err(message) = outcome {
            tracing::error!("reload failed, keeping the running configuration: {message}");
            if let Some(dir) = left {
                if let Err(error) = std::env::set_current_dir(&dir) {
                    tracing::error!("cannot go back to {}: {error}", dir.display());
                }
            }
        }
    }

    /// The settings a HUP asks for: read again (from the directory the arbiter started in)
    /// or, without a reloader, the running ones. `None` after logging why they cannot be.
    fn reread_settings(&mut self) -> Option<Settings> {
        let Some(reload) = self.reload.as_mut() else {
            return Some(self.settings.clone());
        };
        let here = std::env::current_dir().ok();
        let _ = std::env::set_current_dir(&self.start_dir);
        let result = reload();
        if let Some(here) = here {
            let _ = std::env::set_current_dir(here);
        }
        result
            .inspect_err(|message| {
                tracing::error!("reload failed, keeping the running configuration: {message}")
            })
            .ok()
    }

    /// The directory `settings` run in: their `chdir` (relative to where the arbiter
    /// started, as at start), else where it started.
    fn work_dir(&self, settings: &Settings) -> PathBuf {
        match &settings.chdir {
            Some(dir) => self.start_dir.join(dir),
            None => self.start_dir.clone(),
        }
    }

    /// Changes to the directory `settings` run in, before their application is loaded
    /// (`static:.` is relative to it). A directory that cannot be entered refuses the
    /// reload.
    fn enter_work_dir(&self, settings: &Settings) -> Result<(), String> {
        let dir = self.work_dir(settings);
        std::env::set_current_dir(&dir)
            .map_err(|error| format!("cannot chdir to {}: {error}", dir.display()))
    }

    /// Loads the application of `settings`, rebinds, and makes them the running
    /// configuration of a new generation. Changes nothing when it fails.
    fn start_generation(&mut self, settings: Settings) -> Result<(), String> {
        let previous_target = self.target;
        let setup = WorkerSetup::prepare(&settings).map_err(|error| error.to_string())?;
        let mut app = self.app.clone();
        if let Some(loader) = &self.loader {
            app = loader(&settings)
                .map_err(|message| format!("cannot load the application: {message}"))?;
        }
        if settings.bind != self.settings.bind && self.origin != ListenerOrigin::Bound {
            tracing::warn!(
                "reload: the listeners were inherited ({:?}); a changed bind list takes effect on restart",
                self.origin
            );
        } else if settings.bind != self.settings.bind {
            self.listeners = self.rebind(&settings).map_err(|error| error.to_string())?;
        }
        if settings.pidfile != self.settings.pidfile && self.upgrade_parent.is_none() {
            self.pidfile = None;
            if let Some(path) = &settings.pidfile {
                // Relative paths name files from where ferrocorn started, not from `chdir`.
                let mode = settings.created_file_mode();
                match Pidfile::create(&self.start_dir.join(path), self.pid.as_raw(), mode) {
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
        setup.hand_over_logs(&settings, &self.start_dir);
        for path in self.listeners.iter().filter_map(|l| l.unix_path()) {
            setup.hand_over(path);
        }
        let replaced = std::mem::replace(&mut self.settings, settings);
        let previous_app = std::mem::replace(&mut self.app, app);
        let previous_setup = std::mem::replace(&mut self.setup, setup);
        self.previous = Some(Previous {
            generation: self.generation,
            settings: replaced,
            app: previous_app,
            setup: previous_setup,
            target: previous_target,
        });
        self.newest_generation += 1;
        self.generation = self.newest_generation;
        self.generation_started = Instant::now();
        self.crash_streak = 0;
        self.next_spawn_at = None;
        let pace = match self.settings.reload_strategy {
            ReloadStrategy::Rolling => ", one at a time (rolling)",
            ReloadStrategy::Generation => "",
        };
        tracing::info!(
            "Reloaded: starting generation {} with {} worker(s){pace}",
            self.generation,
            self.target
        );
        Ok(())
    }

    /// The listeners for a new `bind` list: kept where the address is unchanged, bound
    /// afresh otherwise. Nothing changes when one cannot be bound: every new address is
    /// bound (and every new `fd://N` checked) before any old listener is let go.
    pub(super) fn rebind(&mut self, settings: &Settings) -> Result<Vec<Listener>, ArbiterError> {
        // Which old listener each address keeps (`Some(index)`), or `None`: a new one.
        let mut taken = vec![false; self.listeners.len()];
        let plan: Vec<Option<usize>> = settings
            .bind
            .iter()
            .map(|address| {
                let kept = self
                    .listeners
                    .iter()
                    .enumerate()
                    .position(|(i, l)| !taken[i] && l.configured.as_ref() == Some(address));
                if let Some(i) = kept {
                    taken[i] = true;
                }
                kept
            })
            .collect();
        let new: Vec<BindAddress> = settings
            .bind
            .iter()
            .zip(&plan)
            .filter(|(_, kept)| kept.is_none())
            .map(|(address, _)| address.clone())
            .collect();
        let mut vetted = listeners::vet_descriptors(&new, &self.listeners)?;
        let mut bound = Vec::with_capacity(new.len());
        for address in &new {
            // On failure, dropping `bound` closes what this reload opened; the old
            // listeners were not touched.
            bound.push(listeners::bind(address, settings, &mut vetted)?);
        }
        let mut old: Vec<Option<Listener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut bound = bound.into_iter();
        let mut fresh = Vec::with_capacity(plan.len());
        for kept in plan {
            let listener = match kept {
                Some(i) => old[i].take(),
                None => bound.next().inspect(|listener| {
                    let url = listener.url(settings.certfile.is_some());
                    tracing::info!("Listening at: {url} ({})", self.pid);
                }),
            };
            fresh.extend(listener);
        }
        for listener in old.into_iter().flatten() {
            tracing::info!("Closing listener {listener}");
        }
        Ok(fresh)
    }

    /// The workers of a reloaded configuration fail to boot: go back to the configuration
    /// whose workers still run, and retire the new generation.
    pub(super) fn roll_back(&mut self, reason: &str) {
        let Some(previous) = self.previous.take() else {
            return;
        };
        tracing::error!(
            "reload failed: workers of generation {} fail to boot ({reason}); back to generation {}",
            self.generation,
            previous.generation
        );
        let dir = self.work_dir(&previous.settings);
        if let Err(error) = std::env::set_current_dir(&dir) {
            tracing::error!("cannot go back to {}: {error}", dir.display());
        }
        self.settings = previous.settings;
        self.app = previous.app;
        self.setup = previous.setup;
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
            self.retire(pid, RestartReason::Reload);
        }
    }

    /// Retires the workers of older generations: with the `generation` strategy all of them
    /// once every worker of the current one is serving (or after `timeout`, so a broken new
    /// generation cannot keep both alive); with `rolling`, the oldest one each time a new
    /// one serves (the new ones are started one at a time: `spawn_room`).
    pub(super) fn retire_old_generations(&mut self) {
        let mut old: Vec<(u64, Pid)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != self.generation && w.retire_sent.is_none())
            .map(|(pid, w)| (w.seq, *pid))
            .collect();
        if old.is_empty() {
            // The old generation is retired: nothing to roll back to any more.
            self.previous = None;
            return;
        }
        old.sort();
        let serving = self
            .workers
            .values()
            .filter(|w| w.counts_in(self.generation))
            .filter(|w| self.scoreboard.slot(w.slot).view().state == WorkerState::Serving)
            .count();
        let retiring = match self.settings.reload_strategy {
            ReloadStrategy::Rolling => (serving + old.len()).saturating_sub(self.target),
            ReloadStrategy::Generation => {
                let waited_enough = !self.settings.timeout.is_zero()
                    && self.generation_started.elapsed() > self.settings.timeout;
                if serving >= self.target || (waited_enough && serving > 0) {
                    old.len()
                } else {
                    0
                }
            }
        };
        for (_, pid) in old.into_iter().take(retiring) {
            self.retire(pid, RestartReason::Reload);
        }
    }

    /// Asks a worker to stop gracefully (SIGTERM), noting why.
    pub(super) fn retire(&mut self, pid: Pid, reason: RestartReason) {
        if let Some(worker) = self.workers.get_mut(&pid) {
            if worker.retire_sent.is_none() {
                let _ = kill(pid, Signal::SIGTERM);
                worker.retire_sent = Some(Instant::now());
                worker.retire_reason = Some(reason);
            }
        }
    }
}
