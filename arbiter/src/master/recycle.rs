//! Recycling: a worker whose memory stays above `max_worker_memory`, or that has run for
//! `max_worker_lifetime`, is replaced without failing a request. It is marked *due*; the
//! supervision loop starts its replacement (a due worker no longer counts towards
//! `workers`), and retires it (a graceful stop, drained within `graceful_timeout`) once the
//! replacement serves. With `reload_strategy = rolling`, one worker at a time, and never
//! more than `workers + 1` alive (see [`Master::spawn_room`]).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use ferrocorn_config::{ReloadStrategy, Settings};
use ferrocorn_worker::WorkerState;
use nix::unistd::Pid;

use super::{memory, Master, RestartReason, BUSY_TICK};

/// The most time one loop turn spends reading workers' memory; the workers not sampled by
/// then are sampled on the next turn, so that sampling many large workers (each read walks
/// the worker's page tables) never holds back reaping, timeouts or signals.
const SAMPLE_BUDGET: Duration = Duration::from_millis(20);
/// Samples in a row above `max_worker_memory` that make a worker due: one sample may catch
/// a passing peak (a large request body, a burst of garbage before collection).
const SAMPLES_OVER_LIMIT: u32 = 2;

/// What the arbiter keeps per worker for recycling.
#[derive(Debug)]
pub(super) struct Recycling {
    started: Instant,
    /// When it is due for `max_worker_lifetime` (jitter included), if that is set.
    lifetime_ends: Option<Instant>,
    /// When its memory is next sampled.
    next_sample: Instant,
    /// Its memory at the last sample, in bytes, measured as `memory_metric`; `None` before
    /// the first sample (taken once it serves) or when samples are off.
    pub(super) memory: Option<u64>,
    /// Samples in a row above `max_worker_memory`.
    over_limit: u32,
    /// A sample failed and was logged: later failures for this worker are not.
    failure_logged: bool,
    /// Marked for recycling, and why: its replacement is started, then it is retired.
    pub(super) due: Option<RestartReason>,
}

impl Recycling {
    /// The books of a worker started now under `settings`.
    pub(super) fn new(settings: &Settings) -> Recycling {
        let started = Instant::now();
        let lifetime = settings.max_worker_lifetime;
        Recycling {
            started,
            lifetime_ends: (!lifetime.is_zero())
                .then(|| started + lifetime + random_up_to(settings.max_worker_lifetime_jitter)),
            next_sample: started + settings.memory_check_interval,
            memory: None,
            over_limit: 0,
            failure_logged: false,
            due: None,
        }
    }
}

/// Whether the arbiter samples its workers' memory: only for `max_worker_memory` (the
/// metrics process reads each worker's RSS itself, when scraped).
fn samples_memory(settings: &Settings) -> bool {
    settings.max_worker_memory > 0
}

/// A random duration from 0 to `max`, different for each call.
fn random_up_to(max: Duration) -> Duration {
    let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if max_nanos == 0 {
        return Duration::ZERO;
    }
    // Each `RandomState` has fresh keys (random per thread, then counted up): no crate
    // needed for a jitter.
    let random = RandomState::new().hash_one(Instant::now());
    Duration::from_nanos(random % max_nanos.saturating_add(1))
}

const MIB: u64 = 1 << 20;

impl Master {
    /// One loop turn's recycling: samples the workers' memory, marks those due, retires the
    /// due ones whose replacements serve.
    pub(super) fn recycle_workers(&mut self) {
        self.sample_memory();
        self.mark_due();
        self.retire_recycled();
    }

    /// Samples the memory of every serving worker whose `memory_check_interval` has passed,
    /// within [`SAMPLE_BUDGET`].
    fn sample_memory(&mut self) {
        if !samples_memory(&self.settings) {
            return;
        }
        let started = Instant::now();
        let interval = self.settings.memory_check_interval;
        let metric = self.settings.memory_metric;
        let limit = self.settings.max_worker_memory.saturating_mul(MIB);
        for (&pid, worker) in self.workers.iter_mut() {
            let books = &mut worker.recycling;
            if started < books.next_sample
                || worker.retire_sent.is_some()
                || worker.abort_sent.is_some()
                || self.scoreboard.slot(worker.slot).view().state != WorkerState::Serving
            {
                continue;
            }
            if started.elapsed() >= SAMPLE_BUDGET {
                break;
            }
            books.next_sample = started + interval;
            match memory::sample(pid, metric) {
                Ok(bytes) => {
                    books.memory = Some(bytes);
                    if limit > 0 && bytes > limit {
                        books.over_limit = books.over_limit.saturating_add(1);
                    } else {
                        books.over_limit = 0;
                    }
                }
                // Gone since the last reap: nothing to say.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    if !books.failure_logged {
                        books.failure_logged = true;
                        tracing::warn!(
                            "cannot measure the memory of worker (pid:{pid}) as {}: {error}",
                            memory::metric_name(metric)
                        );
                    }
                }
            }
        }
    }

    /// Marks the workers of the current generation that are due: over the memory limit in
    /// [`SAMPLES_OVER_LIMIT`] samples in a row, or past their lifetime. With the rolling
    /// strategy, only one, and only while no replacement is under way.
    fn mark_due(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(u64, Pid, RestartReason)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.counts_in(self.generation) && w.abort_sent.is_none())
            .filter_map(|(&pid, w)| {
                let reason = if w.recycling.over_limit >= SAMPLES_OVER_LIMIT {
                    RestartReason::MaxMemory
                } else if w.recycling.lifetime_ends.is_some_and(|end| now >= end) {
                    RestartReason::MaxLifetime
                } else {
                    return None;
                };
                Some((w.seq, pid, reason))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        due.sort();
        if self.settings.reload_strategy == ReloadStrategy::Rolling {
            if self.replacing() {
                return;
            }
            due.truncate(1);
        }
        let metric = memory::metric_name(self.settings.memory_metric);
        let limit = self.settings.max_worker_memory;
        for (_, pid, reason) in due {
            let Some(worker) = self.workers.get_mut(&pid) else {
                continue;
            };
            let books = &mut worker.recycling;
            books.due = Some(reason);
            if reason == RestartReason::MaxMemory {
                let mib = books.memory.unwrap_or(0) as f64 / MIB as f64;
                tracing::info!(
                    "Worker (pid:{pid}) uses {mib:.1} MiB ({metric}), above max_worker_memory \
                     ({limit} MiB) in {} samples in a row: recycling it",
                    books.over_limit
                );
            } else {
                tracing::info!(
                    "Worker (pid:{pid}) has run for {:.1}s, past max_worker_lifetime: \
                     recycling it",
                    books.started.elapsed().as_secs_f64()
                );
            }
        }
    }

    /// Retires due workers, oldest first, as their replacements serve: as many as the
    /// serving workers that are not due, with the due ones still running, exceed `target`.
    fn retire_recycled(&mut self) {
        let mut serving = 0;
        let mut due: Vec<(u64, Pid, RestartReason)> = Vec::new();
        for (&pid, worker) in &self.workers {
            if worker.generation != self.generation || worker.retire_sent.is_some() {
                continue;
            }
            match worker.recycling.due {
                Some(reason) => due.push((worker.seq, pid, reason)),
                None if self.scoreboard.slot(worker.slot).view().state == WorkerState::Serving => {
                    serving += 1
                }
                None => {}
            }
        }
        due.sort();
        let excess = (serving + due.len()).saturating_sub(self.target);
        for (_, pid, reason) in due.into_iter().take(excess) {
            self.retire(pid, reason);
        }
    }

    /// A replacement is under way (rolling strategy): a worker of another generation still
    /// runs, one is draining or due, or more than `target` run (a new one booting).
    pub(super) fn replacing(&self) -> bool {
        self.workers.len() > self.target
            || self.workers.values().any(|w| {
                w.generation != self.generation
                    || w.retire_sent.is_some()
                    || w.abort_sent.is_some()
                    || w.recycling.due.is_some()
            })
    }

    /// How many workers may be started now: with the rolling strategy, as many as keep at
    /// most `target + 1` alive (draining ones included), so that a replacement never
    /// overlaps a whole generation; otherwise no limit.
    pub(super) fn spawn_room(&self) -> usize {
        match self.settings.reload_strategy {
            ReloadStrategy::Rolling => (self.target + 1).saturating_sub(self.workers.len()),
            ReloadStrategy::Generation => usize::MAX,
        }
    }

    /// When the loop must look again for recycling: the next memory sample or lifetime end,
    /// or soon while a due worker waits for its replacement.
    pub(super) fn next_recycling_check(&self) -> Option<Instant> {
        let sampling = samples_memory(&self.settings);
        let now = Instant::now();
        self.workers
            .values()
            .filter(|w| w.retire_sent.is_none())
            .filter_map(|w| {
                let books = &w.recycling;
                if books.due.is_some() {
                    return Some(now + BUSY_TICK);
                }
                let sample = sampling.then_some(books.next_sample);
                match (sample, books.lifetime_ends) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jitter_stays_within_its_bound_and_varies() {
        assert_eq!(random_up_to(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_millis(500);
        let draws: Vec<Duration> = (0..64).map(|_| random_up_to(max)).collect();
        assert!(draws.iter().all(|&d| d <= max), "{draws:?}");
        let first = draws[0];
        assert!(draws.iter().any(|&d| d != first), "{draws:?}");
        assert!(random_up_to(Duration::MAX) <= Duration::MAX);
    }

    #[test]
    fn a_lifetime_ends_within_its_jitter() {
        let settings = Settings {
            max_worker_lifetime: Duration::from_secs(10),
            max_worker_lifetime_jitter: Duration::from_secs(2),
            ..Settings::default()
        };
        let books = Recycling::new(&settings);
        let lifetime = books.lifetime_ends.expect("a lifetime") - books.started;
        assert!(
            (Duration::from_secs(10)..=Duration::from_secs(12)).contains(&lifetime),
            "{lifetime:?}"
        );
        assert!(Recycling::new(&Settings::default()).lifetime_ends.is_none());
        assert!(!samples_memory(&Settings::default()));
    }
}
