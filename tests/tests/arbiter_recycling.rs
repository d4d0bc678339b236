//! Black-box tests of recycling and rolling restarts: a worker whose memory grows past
//! `--max-worker-memory` (`tests/python/leaky_app.py`) or that has run for
//! `--max-worker-lifetime` is replaced under load without a failed request, and
//! `--reload-strategy rolling` replaces workers one at a time on HUP, never running more than
//! `workers + 1` (the arbiter's children, counted through `/proc` while the test runs). A
//! rolling reload whose new workers fail to boot is rolled back: `arbiter_faults`.
//! Every load runs a few seconds at most; every process is stopped by pid.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrocorn_tests::python::python_server;
use ferrocorn_tests::{wait_until, ChildReport, ChildWatch, Load, LoadReport, Server, Signal};

const WAIT: Duration = Duration::from_secs(30);
/// The pause of the kept-alive clients between two requests: shorter than the second a
/// stopping worker gives its idle connections, as a busy client's would be.
const KEEP_ALIVE_PAUSE: Duration = Duration::from_millis(20);

/// Both kinds of client at once: new connections (`Connection: close`) and kept-alive ones
/// that sit idle between requests.
struct Clients {
    fresh: Load,
    kept: Load,
}

impl Clients {
    fn start(server: &Server, path: &str) -> Clients {
        let clients = Clients {
            fresh: Load::start(server.addr, path, 2),
            kept: Load::keep_alive(server.addr, path, 2, KEEP_ALIVE_PAUSE),
        };
        assert!(
            clients.fresh.wait_for_more(10, WAIT) && clients.kept.wait_for_more(10, WAIT),
            "the clients get answers:\n{}",
            server.stderr()
        );
        clients
    }

    /// Stops both; asserts that each was answered and that no request failed.
    fn stop_without_failures(self, server: &Server) -> u64 {
        let reports: [LoadReport; 2] = [self.fresh.stop(), self.kept.stop()];
        for report in &reports {
            assert!(report.ok > 0, "{report:?}\n{}", server.stderr());
            report.assert_no_failures(server);
        }
        reports.iter().map(|r| r.ok).sum()
    }
}

/// The pids of the `Worker (pid:N) ... recycling it` lines whose text contains `reason`.
fn recycled_pids(log: &str, reason: &str) -> BTreeSet<i32> {
    log.lines()
        .filter(|line| line.contains(reason) && line.ends_with("recycling it"))
        .filter_map(|line| {
            let rest = line.split("Worker (pid:").nth(1)?;
            rest.split(')').next()?.parse().ok()
        })
        .collect()
}

/// `leaky_app` (256 KiB kept per request) with a 32 MiB limit (a fresh worker's PSS is a
/// few MiB), sampled every 0.2 s.
fn leaky_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--workers",
        "2",
        "--max-worker-memory",
        "32",
        "--memory-check-interval",
        "0.2",
    ];
    args.extend_from_slice(extra);
    args.push("leaky_app");
    let server = python_server().args(args).start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    server
}

/// Under load until `count` workers were recycled for `reason` (a log line each, naming
/// the worker); returns what the arbiter's children looked like meanwhile.
fn recycle_under_load(server: &Server, reason: &str, count: usize) -> ChildReport {
    let first: BTreeSet<i32> = server.worker_pids().into_iter().collect();
    let watch = ChildWatch::start(server.pid);
    let clients = Clients::start(server, "/");
    let recycled = server.wait_for_log_count(reason, count, WAIT);
    let answered = clients.stop_without_failures(server);
    let report = watch.stop();
    assert!(recycled, "{count} workers recycled:\n{}", server.stderr());
    let log = server.stderr();
    let pids = recycled_pids(&log, reason);
    assert!(
        !first.is_disjoint(&pids) && pids.is_subset(&report.seen.union(&first).copied().collect()),
        "the log names the workers it recycled ({pids:?}; first {first:?}):\n{log}"
    );
    // Recycled workers are replaced: none of the first ones serves at the end.
    let renewed = wait_until(WAIT, || {
        let now: BTreeSet<i32> = server.worker_pids().into_iter().collect();
        now.len() == 2 && now.is_disjoint(&pids)
    });
    assert!(renewed, "{:?}\n{log}", server.worker_pids());
    eprintln!("{answered} requests answered; children: {report:?}");
    report
}

#[test]
fn a_leaking_worker_is_recycled_under_load_without_a_failed_request() {
    let server = leaky_server(&[]);
    recycle_under_load(&server, "above max_worker_memory (32 MiB)", 3);
    let log = server.stderr();
    assert!(log.contains("MiB (pss), above max_worker_memory"), "{log}");
}

#[test]
fn rolling_recycling_of_leaking_workers_keeps_at_most_one_worker_extra() {
    let server = leaky_server(&["--reload-strategy", "rolling", "--memory-metric", "uss"]);
    let report = recycle_under_load(&server, "above max_worker_memory (32 MiB)", 3);
    assert!(server.stderr().contains("MiB (uss), above"));
    assert!(
        report.most_alive <= 3,
        "at most workers + 1 alive: {report:?}\n{}",
        server.stderr()
    );
}

#[test]
fn workers_past_their_lifetime_are_recycled_under_load_without_a_failed_request() {
    let server = Server::start([
        "--workers",
        "2",
        "--max-worker-lifetime",
        "1",
        "--max-worker-lifetime-jitter",
        "0.5",
        "hello",
    ]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    recycle_under_load(&server, "past max_worker_lifetime", 4);
}

/// HUP under load with `strategy`: every worker is renewed, no request fails; what the
/// arbiter's children looked like meanwhile.
fn hup_under_load(strategy: &str, workers: usize) -> ChildReport {
    let count = workers.to_string();
    let server = Server::start(["--workers", &count, "--reload-strategy", strategy, "hello"]);
    assert!(
        server.wait_for_workers(workers, WAIT),
        "{}",
        server.stderr()
    );
    let before: BTreeSet<i32> = server.worker_pids().into_iter().collect();
    let watch = ChildWatch::start(server.pid);
    let clients = Clients::start(&server, "/");
    server.signal(Signal::SIGHUP);
    let renewed = wait_until(WAIT, || {
        let now: BTreeSet<i32> = server.worker_pids().into_iter().collect();
        now.len() == workers && now.is_disjoint(&before)
    });
    assert!(
        clients.fresh.wait_for_more(10, WAIT),
        "the load goes on after the reload"
    );
    let answered = clients.stop_without_failures(&server);
    let report = watch.stop();
    eprintln!("{strategy}: {answered} requests answered; children: {report:?}");
    assert!(
        renewed,
        "{workers} new workers replaced {before:?}: {:?}\n{}",
        server.worker_pids(),
        server.stderr()
    );
    report
}

#[test]
fn rolling_hup_under_load_fails_no_request_and_keeps_at_most_one_worker_extra() {
    let report = hup_under_load("rolling", 3);
    assert!(report.most_alive <= 4, "at most workers + 1: {report:?}");
    assert!(
        report.seen.len() >= 6,
        "every worker was renewed: {report:?}"
    );
}

#[test]
fn generation_hup_under_load_fails_no_request() {
    let report = hup_under_load("generation", 3);
    // A whole new generation serves before the old one retires: the watch sees both.
    assert!(
        report.most_alive >= 6,
        "two generations overlap: {report:?}"
    );
}
