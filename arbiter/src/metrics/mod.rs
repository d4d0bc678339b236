//! What the metrics endpoint (`metrics_bind`) shows: the scoreboard (the workers' counters,
//! those of the workers gone, what the arbiter publishes about itself), the listeners'
//! accept queues and `/proc`, in the Prometheus text exposition format 0.0.4. It runs in
//! the metrics process (`master/metrics.rs` starts it), which reads the shared mapping and
//! never asks the arbiter or a worker anything: a hung worker, or an arbiter busy with a
//! reload, cannot hold a scrape up, and a scrape cannot hold them up.

mod procfs;
mod queue;

use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use ferrocorn_worker::{Probes, Snapshot, WorkerState, BUCKETS, DURATION_BOUNDS};
use nix::unistd::{getppid, Pid};

use crate::listeners::Listener;
use crate::master::RestartReason;
use crate::scoreboard::{monotonic_ns, ArbiterState, Scoreboard, WorkerReading};

pub(crate) use procfs::ProcessStats;

/// How long the arbiter's loop may go without a turn before `/healthz` says it is not alive.
/// Its loop turns at least once a second; loading a preloaded application on HUP may take
/// a few seconds more.
pub(crate) const HEALTH_STALE_NS: u64 = 10_000_000_000;

/// The metrics process's view: the scoreboard and the listeners it inherited at fork.
pub(crate) struct Exposition<'a> {
    pub scoreboard: &'a Scoreboard,
    pub listeners: &'a [Listener],
    /// The listeners speak TLS: their label is `https://…`, as `Listening at:` shows them.
    pub tls: bool,
    pub arbiter: Pid,
}

impl Exposition<'_> {
    fn state(&self) -> &ArbiterState {
        self.scoreboard.arbiter_state()
    }
}

impl Probes for Exposition<'_> {
    fn metrics(&self, out: &mut Vec<u8>) {
        let (totals, workers) = self.scoreboard.read_metrics();
        let queues = self
            .listeners
            .iter()
            .filter_map(|l| {
                let queue = if l.is_unix() {
                    queue::unix_queue(l.as_fd())
                } else {
                    queue::tcp_queue(l.as_fd())
                };
                queue.ok().map(|q| (l.url(self.tls), q.waiting, q.max))
            })
            .collect();
        let reading = Reading {
            totals,
            workers: workers
                .into_iter()
                .map(|w| {
                    let rss = procfs::resident_bytes(w.view.pid).unwrap_or(0);
                    (w, rss)
                })
                .collect(),
            state: StateReading::of(self.state()),
            queues,
            process: procfs::process_stats(self.arbiter.as_raw()),
        };
        out.extend_from_slice(render(&reading).as_bytes());
    }

    fn healthy(&self) -> bool {
        let beat = self.state().heartbeat_ns.load(Ordering::Relaxed);
        beat != 0 && monotonic_ns().saturating_sub(beat) < HEALTH_STALE_NS
    }

    fn ready(&self) -> bool {
        self.healthy()
            && self.state().stopping.load(Ordering::Acquire) == 0
            && self
                .scoreboard
                .read_metrics()
                .1
                .iter()
                .any(|w| w.view.state == WorkerState::Serving)
    }

    fn keep_going(&self) -> bool {
        getppid() == self.arbiter
    }
}

/// A copy of [`ArbiterState`].
#[derive(Debug, Clone, Default)]
pub(crate) struct StateReading {
    pub workers_desired: u64,
    pub reloads: u64,
    pub restarts: Vec<(&'static str, u64)>,
}

impl StateReading {
    fn of(state: &ArbiterState) -> StateReading {
        StateReading {
            workers_desired: state.workers_desired.load(Ordering::Relaxed),
            reloads: state.reloads.load(Ordering::Relaxed),
            restarts: RestartReason::ALL
                .iter()
                .zip(&state.restarts)
                .map(|(reason, n)| (reason.as_str(), n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// Everything one scrape shows.
pub(crate) struct Reading {
    pub totals: Snapshot,
    /// Each live worker and its resident memory in bytes.
    pub workers: Vec<(WorkerReading, u64)>,
    pub state: StateReading,
    /// Each listener: its name, connections waiting, the most that may wait.
    pub queues: Vec<(String, u64, u64)>,
    pub process: Option<ProcessStats>,
}

/// The exposition of `reading` (text format 0.0.4: `# HELP`, `# TYPE`, then the samples of
/// each metric together).
pub(crate) fn render(reading: &Reading) -> String {
    let mut out = String::with_capacity(8 * 1024);
    render_http(&mut out, &reading.totals);
    render_server(&mut out, reading);
    render_workers(&mut out, reading);
    if let Some(p) = &reading.process {
        render_process(&mut out, p);
    }
    out
}

/// The HTTP metrics of every worker, those gone included.
fn render_http(out: &mut String, totals: &Snapshot) {
    family(
        out,
        "http_requests_total",
        "counter",
        "HTTP requests answered, by status code and method.",
    );
    for (method, code, n) in totals.responses() {
        let _ = writeln!(
            out,
            "http_requests_total{{code=\"{code}\",method=\"{method}\"}} {n}"
        );
    }
    family(
        out,
        "http_request_duration_seconds",
        "histogram",
        "Time from a request's complete head to its response being queued, for responses \
         the application gave.",
    );
    debug_assert_eq!(totals.duration_buckets.len(), BUCKETS);
    let mut cumulative = 0;
    for (bucket, n) in totals.duration_buckets.iter().enumerate() {
        cumulative += n;
        let le = match DURATION_BOUNDS.get(bucket) {
            Some(bound) => bound.to_string(),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_sum {}",
        totals.duration_sum_ns as f64 / 1e9
    );
    let _ = writeln!(out, "http_request_duration_seconds_count {cumulative}");
}

/// The metrics of the server as a whole: one sample each, then the restarts, the listen
/// queues and the build.
fn render_server(out: &mut String, reading: &Reading) {
    let totals = &reading.totals;
    let single: [(&str, &str, &str, u64); 7] = [
        (
            "http_requests_in_flight",
            "gauge",
            "Requests whose head has arrived and whose response is not queued yet.",
            totals.in_flight,
        ),
        (
            "ferrocorn_connections_active",
            "gauge",
            "Client connections open in the workers.",
            totals.connections_active,
        ),
        (
            "ferrocorn_connections_total",
            "counter",
            "Client connections accepted.",
            totals.connections_total,
        ),
        (
            "ferrocorn_workers",
            "gauge",
            "Worker processes alive.",
            reading.workers.len() as u64,
        ),
        (
            "ferrocorn_workers_desired",
            "gauge",
            "Worker processes the arbiter keeps (workers, TTIN/TTOU, WINCH).",
            reading.state.workers_desired,
        ),
        (
            "ferrocorn_reloads_total",
            "counter",
            "Reloads (HUP) that started a new generation of workers.",
            reading.state.reloads,
        ),
        (
            "ferrocorn_limit_concurrency_refused_total",
            "counter",
            "Requests answered 503 because limit_concurrency requests were in progress.",
            totals.refused,
        ),
    ];
    for (name, kind, help, value) in single {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "ferrocorn_worker_restarts_total",
        "counter",
        "Workers replaced, by why.",
    );
    for (reason, n) in &reading.state.restarts {
        let _ = writeln!(
            out,
            "ferrocorn_worker_restarts_total{{reason=\"{reason}\"}} {n}"
        );
    }
    for (name, help, pick_max) in [
        (
            "ferrocorn_listen_queue",
            "Connections waiting to be accepted, by listener.",
            false,
        ),
        (
            "ferrocorn_listen_queue_max",
            "The most connections that may wait to be accepted (the backlog), by listener.",
            true,
        ),
    ] {
        family(out, name, "gauge", help);
        for (listener, waiting, max) in &reading.queues {
            let value = if pick_max { max } else { waiting };
            let _ = writeln!(out, "{name}{{listener=\"{}\"}} {value}", escape(listener));
        }
    }
    family(
        out,
        "ferrocorn_build_info",
        "gauge",
        "The running ferrocorn's version (always 1).",
    );
    let _ = writeln!(
        out,
        "ferrocorn_build_info{{version=\"{}\"}} 1",
        escape(env!("CARGO_PKG_VERSION"))
    );
}

/// A per-worker value from a worker's reading and its resident memory.
type PerWorker = fn(&WorkerReading, u64) -> u64;

/// Application threads at work: with one thread, the call runs on the loop and the thread
/// is busy while a request is in flight.
fn busy_threads(w: &WorkerReading, _: u64) -> u64 {
    if w.counters.threads > 1 {
        w.counters.busy_threads
    } else {
        w.counters.in_flight.min(1)
    }
}

/// The metrics of each live worker, labelled by its scoreboard slot (`worker="0"`): as
/// many label values as workers alive at once, whatever the restarts.
fn render_workers(out: &mut String, reading: &Reading) {
    let per_worker: [(&str, &str, &str, PerWorker); 4] = [
        (
            "ferrocorn_worker_busy_threads",
            "gauge",
            "Application threads at work, by worker slot.",
            busy_threads,
        ),
        (
            "ferrocorn_worker_threads",
            "gauge",
            "Application threads, by worker slot.",
            |w, _| w.counters.threads,
        ),
        (
            "ferrocorn_worker_requests_total",
            "counter",
            "Requests answered by the worker now in the slot (from 0 when a new worker takes it).",
            |w, _| w.counters.requests(),
        ),
        (
            "ferrocorn_worker_resident_memory_bytes",
            "gauge",
            "Resident memory of the worker, by worker slot.",
            |_, rss| rss,
        ),
    ];
    for (name, kind, help, value) in per_worker {
        family(out, name, kind, help);
        for (w, rss) in &reading.workers {
            let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.index, value(w, *rss));
        }
    }
}

/// The standard `process_*` metrics of the arbiter.
fn render_process(out: &mut String, p: &ProcessStats) {
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    };
    metric(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time of the arbiter, in seconds.",
        p.cpu_seconds.to_string(),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the arbiter.",
        p.resident_bytes.to_string(),
    );
    metric(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory of the arbiter.",
        p.virtual_bytes.to_string(),
    );
    metric(
        "process_open_fds",
        "gauge",
        "Open file descriptors of the arbiter.",
        p.open_fds.to_string(),
    );
    if let Some(max) = p.max_fds {
        metric(
            "process_max_fds",
            "gauge",
            "The arbiter's limit of open file descriptors.",
            max.to_string(),
        );
    }
    metric(
        "process_start_time_seconds",
        "gauge",
        "When the arbiter started, in seconds since the Unix epoch.",
        p.start_time.to_string(),
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_reading_is_complete_and_labels_are_escaped() {
        let reading = Reading {
            totals: Snapshot::default(),
            workers: Vec::new(),
            state: StateReading {
                workers_desired: 2,
                reloads: 1,
                restarts: vec![("crash", 3)],
            },
            queues: vec![("unix:/tmp/a\"b\\c".to_string(), 1, 128)],
            process: None,
        };
        let text = render(&reading);
        for line in [
            "http_request_duration_seconds_bucket{le=\"0.005\"} 0",
            "http_request_duration_seconds_bucket{le=\"+Inf\"} 0",
            "http_request_duration_seconds_count 0",
            "ferrocorn_workers 0",
            "ferrocorn_workers_desired 2",
            "ferrocorn_reloads_total 1",
            "ferrocorn_worker_restarts_total{reason=\"crash\"} 3",
            "ferrocorn_listen_queue{listener=\"unix:/tmp/a\\\"b\\\\c\"} 1",
            "ferrocorn_listen_queue_max{listener=\"unix:/tmp/a\\\"b\\\\c\"} 128",
            "# TYPE http_requests_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.ends_with('\n'));
    }
}
