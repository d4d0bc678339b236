//! Black-box: the worker's life cycle through the real binary: a graceful stop lets an
//! in-flight request finish, USR1 reopens the access log, and a worker whose arbiter died
//! exits on its own.

use std::io::{BufReader, Write};
use std::time::Duration;

use ferrocorn_tests::{connect, is_running, read_response, wait_until, Server, Signal, TempDir};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn sigterm_lets_the_in_flight_request_finish() {
    let mut server = Server::start(["--graceful-timeout", "20", "echo"]);
    let mut stream = connect(server.addr).unwrap();
    // One full exchange first, so the connection is surely accepted by the worker.
    stream
        .write_all(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    stream
        .write_all(b"GET /delay/1500/slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Give the worker a moment to start the call; if TERM wins the race the request is
    // already in the socket and is still served (a stop drains what was sent).
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTERM);
    let r = read_response(&mut reader, false).expect("the in-flight request is answered");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("/delay/1500/slow"));
    // With threads = 1 the signal is read after the call returns, so the answer may still
    // offer keep-alive; either way the stopping worker then closes the connection.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
    assert!(rest.is_empty(), "nothing after the answer");
    assert!(
        server.wait_exit(WAIT).is_some(),
        "the server stops after the request"
    );
}

#[test]
fn usr1_reopens_the_access_log() {
    let tmp = TempDir::new("worker-usr1");
    let log = tmp.join("access.log");
    let rotated = tmp.join("access.log.1");
    let server = Server::start([
        "--access-logfile",
        log.to_str().unwrap(),
        "--access-logformat",
        "%(U)s",
        "hello",
    ]);
    assert_eq!(server.get("/before").unwrap().status, 200);
    assert!(wait_until(WAIT, || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("/before"))));
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    // The reopen is asynchronous: keep requesting until a line lands in the new file.
    let reopened = wait_until(WAIT, || {
        let _ = server.get("/after");
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/after"))
    });
    assert!(reopened, "a new access.log is written after USR1");
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("/before"));
}

#[test]
fn worker_exits_when_its_arbiter_is_killed() {
    let server = Server::start(["hello"]);
    assert!(server.wait_for_workers(1, WAIT));
    let workers = server.worker_pids();
    server.signal(Signal::SIGKILL);
    assert!(
        wait_until(WAIT, || workers.iter().all(|&pid| !is_running(pid))),
        "orphaned workers exit"
    );
}
