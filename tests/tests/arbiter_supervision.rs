//! Black-box tests of supervision: workers start, a killed worker is replaced, TTIN/TTOU
//! resize, a silent worker times out, `max_requests` recycles, TERM drains. Processes are
//! counted by pid through `/proc`; every wait is bounded.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use ferrocorn_tests::{send_signal, wait_until, Load, Server, Signal, TempDir};

const WAIT: Duration = Duration::from_secs(30);

/// Pids from the arbiter's `Booting worker with pid: N` lines, in spawn order.
fn booted_pids(server: &Server) -> Vec<i32> {
    server
        .stderr()
        .lines()
        .filter_map(|line| line.split("Booting worker with pid: ").nth(1))
        .filter_map(|pid| pid.trim().parse().ok())
        .collect()
}

#[test]
fn workers_start_and_a_killed_worker_is_replaced() {
    let server = Server::start(["--workers", "3", "hello"]);
    assert!(
        server.wait_for_workers(3, WAIT),
        "3 workers: {:?}\n{}",
        server.worker_pids(),
        server.stderr()
    );
    assert_eq!(server.get("/").expect("a worker answers").status, 200);

    let victim = server.worker_pids()[0];
    send_signal(victim, Signal::SIGKILL);
    let replaced = wait_until(WAIT, || {
        let pids = server.worker_pids();
        pids.len() == 3 && !pids.contains(&victim)
    });
    assert!(replaced, "{:?}\n{}", server.worker_pids(), server.stderr());
    assert!(
        server.wait_for_log(&format!("Worker (pid:{victim}) was sent SIGKILL"), WAIT),
        "the log says a SIGKILL it did not send ended the worker:\n{}",
        server.stderr()
    );
    assert_eq!(server.get("/").expect("still serving").status, 200);
}

#[test]
fn ttin_and_ttou_change_the_worker_count_oldest_first_never_below_one() {
    let server = Server::start(["--workers", "2", "hello"]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());

    server.signal(Signal::SIGTTIN);
    assert!(
        server.wait_for_workers(3, WAIT),
        "TTIN adds one:\n{}",
        server.stderr()
    );
    // The log line may trail the process rename that `worker_pids` sees.
    assert!(
        wait_until(WAIT, || booted_pids(&server).len() == 3),
        "{}",
        server.stderr()
    );
    let order = booted_pids(&server);

    server.signal(Signal::SIGTTOU);
    let oldest_gone = wait_until(WAIT, || {
        let pids = server.worker_pids();
        pids.len() == 2 && !pids.contains(&order[0])
    });
    assert!(
        oldest_gone,
        "TTOU retires the oldest: {:?} of {order:?}",
        server.worker_pids()
    );

    server.signal(Signal::SIGTTOU);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    assert_eq!(server.worker_pids(), vec![order[2]], "the newest stays");

    server.signal(Signal::SIGTTOU);
    assert!(
        server.wait_for_log("TTOU ignored", WAIT),
        "the arbiter refuses to go below one worker:\n{}",
        server.stderr()
    );
    assert_eq!(server.worker_pids().len(), 1);
    assert_eq!(server.get("/").expect("still serving").status, 200);
}

#[test]
fn a_request_slower_than_timeout_gets_its_worker_killed_and_replaced() {
    // SIGABRT may dump core: let it land in a directory that is removed afterwards.
    let dir = TempDir::new("timeout");
    let server = Server::builder()
        .cwd(dir.path())
        .args(["--workers", "2", "--timeout", "1", "echo"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    let before: BTreeSet<i32> = server.worker_pids().into_iter().collect();

    let addr = server.addr;
    let slow = std::thread::spawn(move || ferrocorn_tests::get(addr, "/delay/20000"));
    assert!(
        server.wait_for_log("WORKER TIMEOUT (pid:", WAIT),
        "the silent worker is reported:\n{}",
        server.stderr()
    );
    // The other worker keeps serving meanwhile.
    assert_eq!(
        server.get("/").expect("the other worker answers").status,
        200
    );

    let replaced = wait_until(WAIT, || {
        let now: BTreeSet<i32> = server.worker_pids().into_iter().collect();
        now.len() == 2 && now.difference(&before).count() == 1
    });
    assert!(
        replaced,
        "{:?} vs {before:?}\n{}",
        server.worker_pids(),
        server.stderr()
    );
    assert!(
        server.wait_for_log("after its timeout", WAIT),
        "the log says why the worker ended:\n{}",
        server.stderr()
    );
    let slow = slow.join().unwrap();
    assert!(
        slow.map(|r| r.status >= 500).unwrap_or(true),
        "the timed-out request did not get a normal answer"
    );
    assert_eq!(server.get("/").expect("still serving").status, 200);
}

#[test]
fn max_requests_recycles_workers_without_a_failed_request() {
    let server = Server::start(["--workers", "2", "--max-requests", "10", "hello"]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    let load = Load::start(server.addr, "/", 3);
    let recycled = server.wait_for_log_count("Worker exiting (pid:", 3, WAIT);
    let report = load.stop();
    assert!(
        recycled,
        "workers recycle after 10 requests:\n{}",
        server.stderr()
    );
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        report.failures
    );
    assert!(report.ok >= 20, "{report:?}");
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    assert!(
        wait_until(WAIT, || booted_pids(&server).len() >= 4),
        "replacements were booted:\n{}",
        server.stderr()
    );
}

#[test]
fn term_lets_an_in_flight_slow_request_finish() {
    let mut server = Server::start(["--workers", "1", "--graceful-timeout", "20", "echo"]);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let worker = server.worker_pids()[0];
    // No connection has been made yet: these are the listener's descriptors.
    let idle = ferrocorn_tests::socket_names(worker);

    let mut stream = ferrocorn_tests::connect(server.addr).unwrap();
    let client = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /delay/3000 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let slow = std::thread::spawn(move || {
        ferrocorn_tests::read_response(&mut std::io::BufReader::new(stream), false)
    });
    assert!(
        wait_until(WAIT, || ferrocorn_tests::has_new_socket(worker, &idle)),
        "the worker accepted the slow request: {client} -> {}\n{}",
        server.addr,
        server.stderr()
    );
    server.signal(Signal::SIGTERM);
    let response = slow
        .join()
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    let status = server
        .wait_exit(WAIT)
        .expect("the arbiter exits after TERM");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(
        server.wait_for_log("Shutting down: Master", WAIT),
        "{}",
        server.stderr()
    );
}

/// Bug: every worker killed from outside (the OOM killer, `kill -9`) counted as a crash,
/// and repeated crashes backed off for up to 10 s with the pool below its size (gunicorn
/// replaces them at once). A worker that served is now replaced at once, however it ended;
/// only workers that fail before they ever served back off (`arbiter_faults`).
#[test]
fn bug_workers_killed_after_serving_are_replaced_at_once_without_backoff() {
    let server = Server::start(["--workers", "4", "hello"]);
    assert!(server.wait_for_workers(4, WAIT), "{}", server.stderr());
    for _ in 0..5 {
        let victim = server.worker_pids()[0];
        send_signal(victim, Signal::SIGKILL);
        let replaced = wait_until(WAIT, || {
            let pids = server.worker_pids();
            pids.len() == 4 && !pids.contains(&victim)
        });
        assert!(replaced, "{}", server.stderr());
    }
    assert_eq!(
        server.get("/").expect("serving after the kills").status,
        200
    );
    assert!(
        server.wait_for_log_count("was sent SIGKILL by someone else", 5, WAIT),
        "{}",
        server.stderr()
    );
    assert!(
        !server.stderr().contains("waiting"),
        "no backoff for workers that served:\n{}",
        server.stderr()
    );
}

/// Starts a `/delay/MS` request and waits until `worker` has accepted it.
fn request_in_flight(
    server: &Server,
    worker: i32,
    delay_ms: u64,
) -> std::thread::JoinHandle<std::io::Result<ferrocorn_tests::Response>> {
    let idle = ferrocorn_tests::socket_names(worker);
    let mut stream = ferrocorn_tests::connect(server.addr).unwrap();
    let request =
        format!("GET /delay/{delay_ms} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let handle = std::thread::spawn(move || {
        ferrocorn_tests::read_response(&mut std::io::BufReader::new(stream), false)
    });
    assert!(
        wait_until(WAIT, || ferrocorn_tests::has_new_socket(worker, &idle)),
        "the worker accepted the slow request:\n{}",
        server.stderr()
    );
    handle
}

#[test]
fn term_kills_workers_still_busy_after_graceful_timeout() {
    let mut server = Server::start(["--workers", "1", "--graceful-timeout", "1", "echo"]);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let worker = server.worker_pids()[0];
    let slow = request_in_flight(&server, worker, 60_000);
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(WAIT).expect("the arbiter exits");
    assert!(status.success(), "{status:?}");
    assert!(
        server.wait_for_log("still running after", WAIT),
        "the log says the busy worker was killed:\n{}",
        server.stderr()
    );
    assert!(!ferrocorn_tests::is_running(worker));
    assert!(
        slow.join().unwrap().is_err(),
        "the cut request got no answer"
    );
}

#[test]
fn int_is_a_quick_stop_that_does_not_wait_for_requests() {
    let mut server = Server::start(["--workers", "1", "--graceful-timeout", "60", "echo"]);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let worker = server.worker_pids()[0];
    let slow = request_in_flight(&server, worker, 60_000);
    server.signal(Signal::SIGINT);
    // Far less than the 60 s the request and graceful_timeout would take.
    let status = server.wait_exit(WAIT).expect("the arbiter exits quickly");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert!(!ferrocorn_tests::is_running(worker));
    assert!(
        slow.join().unwrap().is_err(),
        "the cut request got no answer"
    );
}

/// Bug: with `threads` > 1 the event loop kept the heartbeat going while every application
/// thread was stuck, so a worker whose threads all hung on requests never timed out and
/// every other request on it waited forever.
#[test]
fn bug_a_worker_whose_threads_are_all_stuck_times_out() {
    // SIGABRT may dump core: let it land in a directory that is removed afterwards.
    let dir = TempDir::new("threads-stuck");
    let server = Server::builder()
        .cwd(dir.path())
        .args(["--workers", "1", "--threads", "2", "--timeout", "1", "echo"])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let worker = server.worker_pids()[0];
    let stuck: Vec<_> = (0..2)
        .map(|_| request_in_flight(&server, worker, 600_000))
        .collect();
    assert!(
        server.wait_for_log(
            &format!("WORKER TIMEOUT (pid:{worker}): every application thread"),
            WAIT
        ),
        "{}",
        server.stderr()
    );
    let replaced = wait_until(WAIT, || {
        let pids = server.worker_pids();
        pids.len() == 1 && pids[0] != worker
    });
    assert!(replaced, "{}", server.stderr());
    assert_eq!(server.get("/").expect("the new worker serves").status, 200);
    for request in stuck {
        let answer = request.join().unwrap();
        assert!(answer.map(|r| r.status >= 500).unwrap_or(true));
    }
}

/// One thread busy past `timeout` while another is free is no timeout: the worker still
/// serves, and the slow request gets its answer.
#[test]
fn one_slow_thread_among_free_ones_is_not_a_timeout() {
    let server = Server::start(["--workers", "1", "--threads", "2", "--timeout", "1", "echo"]);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let worker = server.worker_pids()[0];
    let slow = request_in_flight(&server, worker, 3_000);
    assert_eq!(server.get("/").expect("the free thread serves").status, 200);
    let slow = slow.join().unwrap().expect("the slow request is answered");
    assert_eq!(slow.status, 200);
    assert!(
        !server.stderr().contains("WORKER TIMEOUT"),
        "{}",
        server.stderr()
    );
    assert_eq!(server.worker_pids(), vec![worker]);
}
