//! Black-box: statsd, as gunicorn sends it. A datagram socket in the test receives the
//! exact lines of a known number of requests (prefix and DogStatsD tags applied), the
//! arbiter's `gunicorn.workers` gauge and `gunicorn.log.error`; a statsd that nobody
//! listens to fails no request and is reported throttled.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use ferrocorn_tests::{Server, TempDir};
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(20);
const TAGS: &str = "|#env:test,team:web";

/// Reads datagrams from `recv` until `enough` holds for the lines so far (each datagram
/// split at newlines); panics with the lines after [`WAIT`].
fn collect(
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    lines: &mut Vec<String>,
    enough: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    while !enough(lines) {
        assert!(Instant::now() < deadline, "statsd lines so far: {lines:#?}");
        match recv(&mut buf) {
            Ok(n) => {
                let text = std::str::from_utf8(&buf[..n]).expect("statsd lines are ASCII");
                assert!(n <= 1432, "a UDP datagram of {n} bytes");
                lines.extend(text.split('\n').map(str::to_string));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// The lines of answered requests: `gunicorn.requests` counts them.
fn requests(lines: &[String]) -> usize {
    count(lines, &format!("app.gunicorn.requests:1|c|@1.0{TAGS}"))
}

#[test]
fn requests_send_gunicorns_lines_with_prefix_and_tags() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = receiver.local_addr().unwrap().port();
    let server = Server::start([
        "echo",
        "--workers",
        "1",
        "--statsd-host",
        &format!("127.0.0.1:{port}"),
        // gunicorn's rule: the trailing dots become one.
        "--statsd-prefix",
        "app..",
        "--dogstatsd-tags",
        "env:test,team:web",
    ]);
    let mut lines = Vec::new();
    // The arbiter says how many workers run once it has started them.
    let gauge = format!("app.gunicorn.workers:1|g{TAGS}");
    collect(|b| receiver.recv(b), &mut lines, |l| l.contains(&gauge));

    let statuses = [200, 200, 404, 200, 503, 404, 200];
    for status in statuses {
        let path = if status == 200 {
            "/".to_string()
        } else {
            format!("/status/{status}")
        };
        assert_eq!(server.get(&path).unwrap().status, status);
    }
    collect(
        |b| receiver.recv(b),
        &mut lines,
        |l| requests(l) >= statuses.len(),
    );
    // A moment for anything extra (there must be nothing).
    let mut extra = Vec::new();
    while let Ok(n) = receiver.recv(&mut [0u8; 65536][..]) {
        extra.push(n);
    }
    assert!(
        extra.is_empty(),
        "datagrams beyond the requests': {extra:?}"
    );

    let mut by_status = BTreeMap::new();
    let mut durations = 0;
    for line in lines.iter().filter(|l| !l.contains("gunicorn.workers")) {
        let body = line
            .strip_suffix(TAGS)
            .unwrap_or_else(|| panic!("{line:?} without the tags"));
        if let Some(ms) = body
            .strip_prefix("app.gunicorn.request.duration:")
            .and_then(|rest| rest.strip_suffix("|ms"))
        {
            // Python's float: digits, a dot, digits (`0.123`, `2000.0`).
            let (whole, frac) = ms.split_once('.').expect("a decimal point");
            assert!(
                whole.chars().all(|c| c.is_ascii_digit())
                    && !frac.is_empty()
                    && frac.chars().all(|c| c.is_ascii_digit()),
                "{line:?}"
            );
            assert!(ms.parse::<f64>().unwrap() < 10_000.0, "{line:?}");
            durations += 1;
        } else if let Some(code) = body
            .strip_prefix("app.gunicorn.request.status.")
            .and_then(|rest| rest.strip_suffix(":1|c|@1.0"))
        {
            *by_status.entry(code.parse::<u16>().unwrap()).or_insert(0) += 1;
        } else {
            assert_eq!(body, "app.gunicorn.requests:1|c|@1.0", "an unexpected line");
        }
    }
    assert_eq!(durations, statuses.len(), "{lines:#?}");
    assert_eq!(requests(&lines), statuses.len());
    assert_eq!(
        by_status,
        BTreeMap::from([(200, 4), (404, 2), (503, 1)]),
        "{lines:#?}"
    );
    assert_eq!(count(&lines, &gauge), 1, "{lines:#?}");

    // A worker killed from outside: the arbiter's error line is counted.
    let worker = server.worker_pids()[0];
    ferrocorn_tests::send_signal(worker, Signal::SIGKILL);
    let errors = format!("app.gunicorn.log.error:1|c|@1.0{TAGS}");
    collect(|b| receiver.recv(b), &mut lines, |l| l.contains(&errors));
    assert!(server.wait_for_log("was sent SIGKILL", WAIT));
}

#[test]
fn a_unix_datagram_socket_receives_the_lines() {
    let dir = TempDir::new("statsd-unix");
    let path = dir.join("statsd.sock");
    let receiver = UnixDatagram::bind(&path).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let server = Server::start([
        "hello",
        "--workers",
        "1",
        // gunicorn's spelling of the form.
        "--statsd-host",
        &format!("unix://{}", path.display()),
    ]);
    let mut lines = Vec::new();
    for _ in 0..3 {
        assert_eq!(server.get("/").unwrap().status, 200);
    }
    collect(
        |b| receiver.recv(b),
        &mut lines,
        |l| count(l, "gunicorn.request.status.200:1|c|@1.0") == 3,
    );
    assert_eq!(count(&lines, "gunicorn.requests:1|c|@1.0"), 3, "{lines:#?}");
    assert_eq!(count(&lines, "gunicorn.workers:1|g"), 1, "{lines:#?}");
}

#[test]
fn nobody_listening_fails_no_request_and_is_reported_throttled() {
    let dir = TempDir::new("statsd-absent");
    let server = Server::start([
        "hello",
        "--workers",
        "1",
        "--statsd-host",
        &format!("unix:{}", dir.join("nobody.sock").display()),
    ]);
    for i in 0..200 {
        let response = server
            .get("/")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(response.status, 200, "request {i}");
    }
    assert!(
        server.wait_for_log("send failed", WAIT),
        "{}",
        server.stderr()
    );
    // Each process (the arbiter, the worker) says it once, then at most every 10 s: 200
    // failed sends are a handful of lines, not 200.
    let reports = server.stderr().matches("send failed").count();
    assert!(reports <= 6, "{reports} reports:\n{}", server.stderr());
}
