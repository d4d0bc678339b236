//! Black-box tests of what the server does when an application or a process misbehaves,
//! with `tests/examples/faulty_app.rs` (an application whose faults a test turns on and off
//! by creating files). Every process is stopped by pid; every wait is bounded.

use std::path::Path;
use std::time::Duration;

use ferrocorn_tests::{
    faulty_app, is_running, send_signal, wait_until, ChildReport, ChildWatch, Load, Server, Signal,
    TempDir,
};

const WAIT: Duration = Duration::from_secs(30);

/// `faulty_app --bind 127.0.0.1:0 ARGS...`.
fn start(args: &[String]) -> Server {
    Server::builder().program(faulty_app()).args(args).start()
}

fn fault(name: &str, trigger: &Path) -> [String; 2] {
    [
        "--fault".to_string(),
        format!("{name}={}", trigger.display()),
    ]
}

/// Bug: a worker that served and died before the arbiter's loop had seen it `Serving` (a
/// request answered and a SIGKILL within one tick) left the arbiter believing nothing had
/// served yet, so its replacement failing to boot stopped the whole server as if the
/// configuration were broken. This test hits that window most of the time on the old code,
/// not always: it kills the worker as soon as it has answered.
#[test]
fn bug_a_worker_that_served_then_died_is_not_taken_for_a_broken_start() {
    let dir = TempDir::new("served-then-died");
    let trigger = dir.join("init-fails");
    let server = start(&fault("init-fail", &trigger));
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    assert_eq!(server.get("/").expect("served").status, 200);
    std::fs::write(&trigger, "").unwrap();
    send_signal(server.worker_pids()[0], Signal::SIGKILL);
    assert!(
        server.wait_for_log_count("init_worker was told to fail", 2, WAIT),
        "the arbiter keeps trying to replace the worker instead of stopping:\n{}",
        server.stderr()
    );
    std::fs::remove_file(&trigger).unwrap();
    let back = wait_until(WAIT, || {
        server.worker_pids().len() == 1 && server.get("/").is_ok_and(|r| r.status == 200)
    });
    assert!(back, "a worker serves again:\n{}", server.stderr());
}

/// Bug: the child between `fork` and the worker's own `catch_unwind` ran unguarded: a panic
/// in the application's `after_fork_child` hook unwound into the arbiter's frames copied
/// into the child, whose destructors deleted the live arbiter's pidfile and unlinked its
/// Unix socket.
#[test]
fn bug_a_panic_in_a_new_worker_leaves_the_arbiters_files_alone() {
    let dir = TempDir::new("child-panic");
    let pidfile = dir.join("app.pid");
    let socket = dir.join("app.sock");
    let trigger = dir.join("panic");
    let mut args = vec![
        "--bind".to_string(),
        format!("unix:{}", socket.display()),
        "--pid".to_string(),
        pidfile.display().to_string(),
    ];
    args.extend(fault("after-fork-panic", &trigger));
    let server = start(&args);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    assert_eq!(server.get("/").expect("served").status, 200);

    std::fs::write(&trigger, "").unwrap();
    send_signal(server.worker_pids()[0], Signal::SIGKILL);
    assert!(
        server.wait_for_log("failed to boot", WAIT),
        "the new worker fails:\n{}",
        server.stderr()
    );
    let named = std::fs::read_to_string(&pidfile).unwrap_or_default();
    assert_eq!(
        named.trim(),
        server.pid.to_string(),
        "the pidfile is intact"
    );
    assert!(socket.exists(), "the socket file is intact");
    let reported = "failed to boot: the worker panicked: after_fork_child was told to panic";
    assert!(
        server.stderr().contains(reported),
        "the arbiter reports the panic of the new worker:\n{}",
        server.stderr()
    );

    std::fs::remove_file(&trigger).unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let back = wait_until(WAIT, || {
        ferrocorn_tests::unix_request(&socket, request).is_ok_and(|r| r.status == 200)
    });
    assert!(back, "a worker serves again:\n{}", server.stderr());
}

/// Bug: `serve()` forked whatever the process was running: a program that had started a
/// thread got workers that inherit that thread's locks in whatever state they were.
#[test]
fn bug_serve_refuses_to_fork_a_process_that_runs_threads() {
    let (status, stderr) = Server::builder()
        .program(faulty_app())
        .args(["--thread-before-serve"])
        .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("faulty_app: error: the process runs 2 threads"),
        "{stderr}"
    );
    assert!(!stderr.contains("Listening at"), "{stderr}");
}

/// Workers that fail before they ever served, after the server has served (a module that
/// no longer imports), are retried with a growing pause instead of in a tight fork loop,
/// and the pool comes back once they boot again.
#[test]
fn workers_failing_before_they_serve_back_off_and_come_back() {
    let dir = TempDir::new("boot-backoff");
    let trigger = dir.join("init-fails");
    let server = start(&fault("init-fail", &trigger));
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    assert_eq!(server.get("/").expect("served").status, 200);
    std::fs::write(&trigger, "").unwrap();
    send_signal(server.worker_pids()[0], Signal::SIGKILL);
    assert!(
        server.wait_for_log("3 workers in a row failed before serving: waiting", WAIT),
        "the arbiter backs off:\n{}",
        server.stderr()
    );
    std::fs::remove_file(&trigger).unwrap();
    let back = wait_until(WAIT, || server.get("/").is_ok_and(|r| r.status == 200));
    assert!(back, "a worker serves again:\n{}", server.stderr());
}

/// `GET path` on a new connection; everything the server sends until it closes the
/// connection, or the read error (a timeout: the server never closed it).
fn read_until_closed(server: &Server, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = ferrocorn_tests::connect(server.addr)?;
    stream.set_read_timeout(Some(WAIT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut received = Vec::new();
    stream.read_to_end(&mut received)?;
    Ok(String::from_utf8_lossy(&received).into_owned())
}

/// Bug: a panic in an application's streamed body reader killed the pool thread reading
/// it (`threads` > 1: the connection hung and the pool shrank for good, with nothing to
/// replace the worker) or the whole worker (`threads` = 1). Now only that connection
/// fails: the response is cut short, the connection closed, the panic logged.
#[test]
fn bug_a_panic_in_a_streamed_body_fails_only_its_connection() {
    for threads in ["1", "2"] {
        let server = start(&["--threads".to_string(), threads.to_string()]);
        assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
        let worker = server.worker_pids()[0];
        // More panics than the pool has threads.
        for _ in 0..3 {
            let received = read_until_closed(&server, "/panic-in-body")
                .expect("the connection is closed, not left hanging");
            assert!(received.starts_with("HTTP/1.1 200"), "{received}");
            assert!(received.contains("first piece"), "{received}");
            assert!(!received.ends_with("0\r\n\r\n"), "cut short: {received}");
        }
        assert!(
            server.wait_for_log(
                "the application's response body panicked: the body reader broke",
                WAIT
            ),
            "{}",
            server.stderr()
        );
        assert_eq!(
            server.get("/").expect("the worker serves on").status,
            200,
            "threads {threads}"
        );
        assert_eq!(
            server.worker_pids(),
            vec![worker],
            "the same worker, threads {threads}"
        );
    }
}

/// Bug: a connection waiting for the next piece of an application's streamed body (read
/// on the pool) had no deadline: a reader that never returned held it open forever. It is
/// closed after `timeout`, the response cut short.
#[test]
fn bug_a_stalled_streamed_body_is_cut_off_after_timeout() {
    let args = ["--threads", "2", "--timeout", "1"].map(String::from);
    let server = start(&args);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let received = read_until_closed(&server, "/stalled-body")
        .expect("the connection is closed, not left hanging");
    assert!(received.contains("first piece"), "{received}");
    assert!(!received.ends_with("0\r\n\r\n"), "cut short: {received}");
    assert!(
        server.wait_for_log("the application's response body gave no data for 1s", WAIT),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/").expect("the free thread serves").status, 200);
}

/// A worker that fails before anything has served (an application that cannot be
/// imported in the worker) stops the arbiter with the worker's own message, exit code 1,
/// without forking again and again, and without saying it listens.
#[test]
fn a_worker_failing_before_anything_served_stops_the_arbiter_without_a_fork_loop() {
    let dir = TempDir::new("boot-failure");
    let trigger = dir.join("init-fails");
    std::fs::write(&trigger, "").unwrap();
    let mut args = vec!["--workers".to_string(), "2".to_string()];
    args.extend(fault("init-fail", &trigger));
    let (status, stderr) = Server::builder()
        .program(faulty_app())
        .args(&args)
        .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("faulty_app: error: worker (pid:")
            && stderr.contains("failed to boot: init_worker was told to fail"),
        "the worker's own reason is given:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("Booting worker with pid:").count(),
        2,
        "no worker is started again after the boot failure:\n{stderr}"
    );
    assert!(!stderr.contains("Listening at"), "{stderr}");
}

/// A reload (HUP) whose new workers fail to boot goes back to the generation still
/// running, which serves on without a failed request.
#[test]
fn a_reload_whose_workers_fail_to_boot_rolls_back_and_keeps_serving() {
    reload_whose_workers_fail_to_boot("generation", 2);
}

/// The same rule holds for the rolling strategy: the first new worker fails to boot, the
/// roll stops there, every old worker keeps serving, and no more than `workers + 1` run.
#[test]
fn a_rolling_reload_whose_first_new_worker_fails_to_boot_keeps_the_old_workers() {
    let children = reload_whose_workers_fail_to_boot("rolling", 3);
    assert!(children.most_alive <= 4, "{children:?}");
}

/// Under load, HUP with `--reload-strategy strategy` to workers that fail to boot: the
/// reload is rolled back, the workers from before still serve, no request fails. What the
/// arbiter's children looked like meanwhile.
fn reload_whose_workers_fail_to_boot(strategy: &str, workers: usize) -> ChildReport {
    let dir = TempDir::new("hup-rollback");
    let trigger = dir.join("init-fails");
    let mut args = vec![
        "--workers".to_string(),
        workers.to_string(),
        "--reload-strategy".to_string(),
        strategy.to_string(),
    ];
    args.extend(fault("init-fail", &trigger));
    let server = start(&args);
    assert!(
        server.wait_for_workers(workers, WAIT),
        "{}",
        server.stderr()
    );
    let before: Vec<i32> = server.worker_pids();
    let watch = ChildWatch::start(server.pid);
    let load = Load::start(server.addr, "/", 2);
    assert!(load.wait_for_more(20, WAIT), "the load gets answers");

    std::fs::write(&trigger, "").unwrap();
    server.signal(Signal::SIGHUP);
    let rolled_back = server.wait_for_log(
        "fail to boot (init_worker was told to fail); back to generation 1",
        WAIT,
    );
    assert!(
        load.wait_for_more(20, WAIT),
        "the old workers go on serving"
    );
    let report = load.stop();
    assert!(rolled_back, "{}", server.stderr());
    assert!(
        is_running(server.pid),
        "the arbiter stays up:\n{}",
        server.stderr()
    );
    let unchanged = wait_until(WAIT, || server.worker_pids() == before);
    assert!(
        unchanged,
        "the old generation still serves:\n{}",
        server.stderr()
    );
    report.assert_no_failures(&server);
    watch.stop()
}
