//! What a worker counts for `/metrics`: responses by method and status, the duration
//! histogram, requests in flight, connections, busy threads and the requests refused by
//! `limit_concurrency`. The counters sit in memory the arbiter shares with the worker (its
//! scoreboard slot), so they are read without asking the worker (a hung worker is still
//! shown) and outlive it.
//!
//! The worker's event loop thread is the only writer of its [`WorkerCounters`]: an update is
//! a relaxed load and a store, never a locked read-modify-write, so counting costs a few
//! instructions per request (`docs/BENCHMARKS.md`). Readers in other processes see each
//! value whole (aligned atomics) and every counter never going down.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::app::Request;

/// The `method` label values: the methods of RFC 9110 and PATCH, then `other` for any
/// other token, so that a client cannot make the label set grow.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];
/// The index of `other` in [`METHODS`].
pub(crate) const OTHER: u8 = 9;

/// The statuses counted, one counter each: 100 to 999, every status a response may have.
pub const STATUSES: std::ops::RangeInclusive<u16> = 100..=999;
const STATUS_COUNT: usize = 900;

/// The upper bounds of the duration histogram's buckets in seconds: OpenTelemetry's
/// defaults for `http.server.request.duration`; the last bucket (`+Inf`) is implicit.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// [`DURATION_BOUNDS`] in nanoseconds (if one changes, change the other).
const BOUNDS_NS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];
/// Buckets kept: one per bound and `+Inf`; each counts only its own range (the exposition's
/// cumulative counts are summed when read).
pub const BUCKETS: usize = 15;

/// One worker's counters and gauges. Zeroed memory is a valid, empty value (the arbiter
/// maps it zeroed); `repr(C)` so that its layout is the same in every process of the build.
#[repr(C)]
#[derive(Debug)]
pub struct WorkerCounters {
    /// Responses by method (outer) and status (inner, from 100).
    responses: [[AtomicU64; STATUS_COUNT]; METHODS.len()],
    /// Duration histogram of the responses the application (or `limit_concurrency`) gave:
    /// each bucket its own range, `+Inf` last.
    duration_buckets: [AtomicU64; BUCKETS],
    duration_sum_ns: AtomicU64,
    /// Requests answered 503 by `limit_concurrency`.
    refused: AtomicU64,
    connections_total: AtomicU64,
    // Gauges: what is true now; not carried over when the worker is gone.
    in_flight: AtomicU64,
    connections_active: AtomicU64,
    busy_threads: AtomicU64,
    threads: AtomicU64,
}

/// Adds one to a counter only this thread writes: a load and a store, no lock prefix.
#[inline(always)]
fn bump(cell: &AtomicU64, by: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// The index in [`METHODS`] of `req`'s method (`GET` first, it is most requests).
#[inline]
pub(crate) fn method_of(req: &Request) -> u8 {
    if req.is_get() {
        0
    } else {
        method_index(req.method_bytes())
    }
}

/// The index of `method` in [`METHODS`].
#[cold]
pub(crate) fn method_index(method: &[u8]) -> u8 {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|name| name.as_bytes() == method)
        .map_or(OTHER, |i| i as u8)
}

impl Default for WorkerCounters {
    fn default() -> WorkerCounters {
        WorkerCounters::new()
    }
}

impl WorkerCounters {
    /// Empty counters (about 72 KiB).
    pub const fn new() -> WorkerCounters {
        WorkerCounters {
            responses: [const { [const { AtomicU64::new(0) }; STATUS_COUNT] }; METHODS.len()],
            duration_buckets: [const { AtomicU64::new(0) }; BUCKETS],
            duration_sum_ns: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            busy_threads: AtomicU64::new(0),
            threads: AtomicU64::new(0),
        }
    }

    // ---- the worker's side (one writer: the event loop thread) ----------------------

    /// Counts a response of `status` to a request of method `method` (a [`METHODS`]
    /// index).
    #[inline]
    pub(crate) fn response(&self, method: u8, status: u16) {
        let status = usize::from(status.wrapping_sub(*STATUSES.start()));
        if status < STATUS_COUNT {
            let cells = self.responses.as_flattened();
            if let Some(cell) = cells.get(usize::from(method) * STATUS_COUNT + status) {
                bump(cell, 1);
            }
        }
    }

    /// Counts a response the application gave (or `limit_concurrency`'s 503): its method,
    /// status and duration, and one request fewer in flight if it was `started`.
    #[inline]
    pub(crate) fn answered(&self, started: bool, method: u8, status: u16, ns: u64) {
        if started {
            self.request_ended();
        }
        self.response(method, status);
        self.observe_ns(ns);
    }

    /// Adds one request's duration, in nanoseconds, to the histogram.
    #[inline]
    pub(crate) fn observe_ns(&self, ns: u64) {
        let bucket = BOUNDS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BUCKETS - 1);
        bump(&self.duration_buckets[bucket], 1);
        bump(&self.duration_sum_ns, ns);
    }

    /// Requests whose head has arrived and whose response is not queued yet.
    #[inline]
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn request_started(&self) {
        bump(&self.in_flight, 1);
    }

    /// Only for a request counted by `request_started`.
    #[inline]
    pub(crate) fn request_ended(&self) {
        let n = self.in_flight.load(Ordering::Relaxed);
        self.in_flight.store(n.wrapping_sub(1), Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        bump(&self.refused, 1);
    }

    pub(crate) fn connection_opened(&self, open: usize) {
        bump(&self.connections_total, 1);
        self.set_connections(open);
    }

    pub(crate) fn set_connections(&self, open: usize) {
        self.connections_active
            .store(open as u64, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn set_busy_threads(&self, busy: usize) {
        self.busy_threads.store(busy as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_threads(&self, threads: usize) {
        self.threads.store(threads as u64, Ordering::Relaxed);
    }

    // ---- the readers' side -----------------------------------------------------------

    /// Adds this worker's counters (not its gauges) to `totals`. For the arbiter, once the
    /// worker is gone (nothing writes either value meanwhile).
    pub fn add_counters_to(&self, totals: &WorkerCounters) {
        for (row, total_row) in self.responses.iter().zip(&totals.responses) {
            for (cell, total) in row.iter().zip(total_row) {
                let n = cell.load(Ordering::Relaxed);
                if n != 0 {
                    bump(total, n);
                }
            }
        }
        for (cell, total) in self.duration_buckets.iter().zip(&totals.duration_buckets) {
            bump(total, cell.load(Ordering::Relaxed));
        }
        let pairs = [
            (&self.duration_sum_ns, &totals.duration_sum_ns),
            (&self.refused, &totals.refused),
            (&self.connections_total, &totals.connections_total),
        ];
        for (cell, total) in pairs {
            bump(total, cell.load(Ordering::Relaxed));
        }
    }

    /// Zeroes everything, for the next worker in the same place.
    pub fn clear(&self) {
        for cell in self.responses.iter().flatten() {
            if cell.load(Ordering::Relaxed) != 0 {
                cell.store(0, Ordering::Relaxed);
            }
        }
        for cell in self.duration_buckets.iter().chain([
            &self.duration_sum_ns,
            &self.refused,
            &self.connections_total,
            &self.in_flight,
            &self.connections_active,
            &self.busy_threads,
            &self.threads,
        ]) {
            cell.store(0, Ordering::Relaxed);
        }
    }

    /// Reads everything into `into`, adding to what it holds.
    pub fn read_into(&self, into: &mut Snapshot) {
        if into.responses.len() != METHODS.len() * STATUS_COUNT {
            into.responses = vec![0; METHODS.len() * STATUS_COUNT];
        }
        for (cell, sum) in self.responses.iter().flatten().zip(&mut into.responses) {
            *sum += cell.load(Ordering::Relaxed);
        }
        for (cell, sum) in self.duration_buckets.iter().zip(&mut into.duration_buckets) {
            *sum += cell.load(Ordering::Relaxed);
        }
        into.duration_sum_ns += self.duration_sum_ns.load(Ordering::Relaxed);
        into.refused += self.refused.load(Ordering::Relaxed);
        into.connections_total += self.connections_total.load(Ordering::Relaxed);
        into.in_flight += self.in_flight.load(Ordering::Relaxed);
        into.connections_active += self.connections_active.load(Ordering::Relaxed);
        into.busy_threads += self.busy_threads.load(Ordering::Relaxed);
        into.threads += self.threads.load(Ordering::Relaxed);
    }
}

/// A copy of one or more [`WorkerCounters`] (summed), taken by a reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Responses by method and status: see [`Snapshot::responses`].
    responses: Vec<u64>,
    /// Per bucket (not cumulative), `+Inf` last.
    pub duration_buckets: [u64; BUCKETS],
    pub duration_sum_ns: u64,
    pub refused: u64,
    pub connections_total: u64,
    pub in_flight: u64,
    pub connections_active: u64,
    pub busy_threads: u64,
    pub threads: u64,
}

impl Snapshot {
    /// The counts that are not zero: (method, status, responses).
    pub fn responses(&self) -> impl Iterator<Item = (&'static str, u16, u64)> + '_ {
        self.responses
            .iter()
            .enumerate()
            .filter(|(_, &n)| n != 0)
            .map(|(i, &n)| {
                let status = *STATUSES.start() + (i % STATUS_COUNT) as u16;
                (METHODS[i / STATUS_COUNT], status, n)
            })
    }

    /// Every response counted.
    pub fn requests(&self) -> u64 {
        self.responses.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_and_durations_are_counted_and_folded() {
        let c = WorkerCounters::new();
        c.response(method_index(b"GET"), 200);
        c.response(method_index(b"GET"), 200);
        c.response(method_index(b"BREW"), 404);
        c.response(method_index(b"PATCH"), 999);
        c.response(method_index(b"PATCH"), 1000);
        c.response(method_index(b"PATCH"), 99);
        c.response(10, 200);
        c.observe_ns(1_000_000);
        c.observe_ns(5_000_000);
        c.observe_ns(5_001_000);
        c.observe_ns(11_000_000_000);
        let mut snap = Snapshot::default();
        c.read_into(&mut snap);
        let counted: Vec<_> = snap.responses().collect();
        assert_eq!(
            counted,
            [("GET", 200, 2), ("PATCH", 999, 1), ("other", 404, 1)]
        );
        assert_eq!(snap.requests(), 4);
        assert_eq!(snap.duration_buckets[0], 2, "5 ms is in the 0.005 bucket");
        assert_eq!(snap.duration_buckets[1], 1);
        assert_eq!(snap.duration_buckets[BUCKETS - 1], 1);
        assert_eq!(snap.duration_sum_ns, 11_011_001_000);

        let totals = WorkerCounters::new();
        c.add_counters_to(&totals);
        c.add_counters_to(&totals);
        c.clear();
        let mut after = Snapshot::default();
        c.read_into(&mut after);
        assert_eq!(after.requests(), 0);
        let mut folded = Snapshot::default();
        totals.read_into(&mut folded);
        assert_eq!(folded.requests(), 8);
        assert_eq!(folded.duration_buckets[0], 4);
    }

    #[test]
    fn bounds_agree() {
        for (s, ns) in DURATION_BOUNDS.iter().zip(BOUNDS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }

    #[test]
    fn in_flight_follows_requests() {
        let c = WorkerCounters::new();
        c.request_started();
        c.request_started();
        c.request_ended();
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn methods_are_told_apart() {
        for (i, name) in METHODS.iter().enumerate().take(METHODS.len() - 1) {
            assert_eq!(method_index(name.as_bytes()), i as u8, "{name}");
            let req = Request::for_test(name, "/", &[], b"");
            assert_eq!(method_of(&req), i as u8, "{name}");
        }
        for other in [&b"get"[..], b"GETS", b"PROPFIND", b"", b"BREW", b"other"] {
            assert_eq!(method_index(other), OTHER);
        }
        assert_eq!(method_of(&Request::for_test("GETS", "/", &[], b"")), OTHER);
    }
}
