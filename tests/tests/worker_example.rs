//! Black-box: the custom application in `cli/examples/custom_app.rs`, served by the full
//! server (arbiter and forked workers) through `ferrocorn_arbiter::serve`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferrocorn_tests::{
    cargo_build, connect, descendants, is_running, listening_lines, request, send_signal,
    wait_until, Signal,
};

/// Kills the example's arbiter and workers by pid when the test ends.
struct Guard {
    child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let all = descendants(pid);
        send_signal(pid, Signal::SIGINT);
        let _ = wait_until(Duration::from_secs(5), || {
            let _ = self.child.try_wait();
            !is_running(pid) && all.iter().all(|&p| !is_running(p))
        });
        for &p in &all {
            if is_running(p) {
                send_signal(p, Signal::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn custom_app_example_is_served_by_the_full_server() {
    let example = cargo_build(
        &["-p", "ferrocorn", "--example", "custom_app"],
        "examples/custom_app",
    );
    let mut child = Command::new(&example)
        .args(["127.0.0.1:0", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let stderr = child.stderr.take().unwrap();
    let guard = Guard { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a Listening at: line");
        if let Some((address, _)) = listening_lines(&line).into_iter().next() {
            break address
                .trim_start_matches("http://")
                .parse()
                .expect("an address");
        }
    };
    let r = request(
        addr,
        b"POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\nConnection: close\r\n\r\n1 2 39\n",
    )
    .unwrap();
    assert_eq!((r.status, r.text()), (200, "42\n".to_string()));
    let r = request(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let worker: i32 = r.text().trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        descendants(guard.child.id() as i32).contains(&worker),
        "answered by a forked worker of the example's arbiter"
    );
    let r = request(
        addr,
        b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.text().ends_with("line 5\n"));

    // A streamed body whose reader blocks does not block the worker (one worker, so the
    // same loop must answer /release while the stream waits on a pool thread).
    let mut held = connect(addr).unwrap();
    held.write_all(b"GET /held HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(held);
    let mut seen = String::new();
    while !seen.contains("first") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the first piece arrives"
        );
        seen.push_str(&line);
    }
    let r = request(
        addr,
        b"GET /release HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("served while the stream waits");
    assert_eq!(r.text(), "released\n");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("second"), "{rest}");
}
