//! Black-box regression tests for defects found by using the real binary as a new user
//! would (curl, Python clients, raw sockets); each test names the bug it pins down.

use ferrocorn_tests::Server;

/// Bug: a request with `Content-Length: 0` and nothing after it (what Python's
/// `http.client` sends for `POST` with an empty body) was never answered: the worker waited
/// for body bytes that would never come.
#[test]
fn bug_empty_content_length_body_is_answered() {
    for threads in ["1", "4"] {
        let server = Server::start(["--threads", threads, "echo"]);
        for method in ["POST", "PUT", "GET"] {
            let raw = format!("{method} /empty HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
            let r = server
                .request(raw.as_bytes())
                .unwrap_or_else(|e| panic!("{method} with threads={threads}: {e}"));
            assert_eq!(r.status, 200, "{method} with threads={threads}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["method"], method);
            assert_eq!(v["body"], "");
        }
    }
}

/// Bug: `--help` and docs/settings.md said `--limit-request-field-size 0` means "no limit
/// (as gunicorn)", while the parser treats 0 as its default of 8190 bytes per field line.
/// The documentation now says what the server does; this pins both together.
#[test]
fn bug_field_size_zero_is_documented_as_what_it_does() {
    let out = std::process::Command::new(ferrocorn_tests::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    // clap wraps the help text; compare with the lines joined.
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("0 means the default 8190, as a field is never unlimited"),
        "{help}"
    );
    let server = Server::start(["--limit-request-field-size", "0", "echo"]);
    let field = |value_len: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Long: {}\r\n\r\n",
            "v".repeat(value_len)
        )
    };
    // "X-Long: " is 8 bytes; with the CRLF, 8180 bytes of value make a line of 8190.
    assert_eq!(server.request(field(8180).as_bytes()).unwrap().status, 200);
    assert_eq!(server.request(field(8181).as_bytes()).unwrap().status, 431);
}

/// Bug: the static app answered 404 to an absolute-form target (`GET http://host/file`),
/// which RFC 9112 §3.2.2 requires a server to accept, because it took the whole URI for
/// the path.
#[test]
fn bug_static_app_serves_an_absolute_form_target() {
    let dir = ferrocorn_tests::TempDir::new("qa-absolute-form");
    std::fs::write(dir.join("a.txt"), b"absolute\n").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let server = Server::start([format!("static:{}", dir.path().display())]);
    let r = server
        .request(b"GET http://t/a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "absolute\n"));
    let r = server
        .request(b"GET http://t/sub?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/sub/?x=1"));
    let r = server
        .request(b"GET http://t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 200, "the root listing");
    assert!(r.text().contains("a.txt"), "{}", r.text());
}

/// Bug: after a quick stop (QUIT/INT) the arbiter logged `Worker exiting (pid:N) after 0
/// request(s)` for a worker that had served requests: the worker's last heartbeat, which
/// carries the count, was only sent on the next 250 ms tick.
#[test]
fn bug_quick_stop_reports_the_requests_served() {
    for signal in [
        ferrocorn_tests::Signal::SIGQUIT,
        ferrocorn_tests::Signal::SIGTERM,
    ] {
        let mut server = Server::start(["hello"]);
        for _ in 0..3 {
            assert_eq!(server.get("/").unwrap().status, 200);
        }
        server.signal(signal);
        assert!(
            server
                .wait_exit(std::time::Duration::from_secs(20))
                .is_some(),
            "{signal} stops the server"
        );
        let log = server.stderr();
        assert!(log.contains("after 3 request(s)"), "{signal}:\n{log}");
    }
}

/// Bug: `--log-format json` lines carried no process id, while the text format has
/// `[pid]`: with several workers writing one error log, a line could not be traced back
/// to its process.
#[test]
fn bug_json_log_lines_name_their_process() {
    let mut server = Server::start(["--log-format", "json", "--workers", "2", "hello"]);
    assert!(server.wait_for_workers(2, ferrocorn_tests::START_TIMEOUT));
    let workers = server.worker_pids();
    server.signal(ferrocorn_tests::Signal::SIGTERM);
    assert!(server
        .wait_exit(std::time::Duration::from_secs(20))
        .is_some());
    let log = server.stderr();
    let mut pids = std::collections::BTreeSet::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let pid = v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("no pid: {line}"));
        pids.insert(pid as i32);
    }
    assert!(pids.contains(&server.pid), "arbiter lines: {log}");
    assert!(
        workers.iter().any(|w| pids.contains(w)),
        "worker lines (graceful stop) name the worker: {log}"
    );
}

/// Bug: with `--chdir DIR` and a relative `--pid FILE`, the pidfile was written in the
/// starting directory but, after the arbiter had moved to DIR, never removed on exit: the
/// stale file then named a dead (or reused) pid.
#[test]
fn bug_relative_pidfile_is_removed_after_chdir() {
    let dir = ferrocorn_tests::TempDir::new("qa-relative-pidfile");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut server = Server::builder()
        .cwd(dir.path())
        .args([
            "--chdir",
            &sub.display().to_string(),
            "--pid",
            "rel.pid",
            "hello",
        ])
        .start();
    let pidfile = dir.join("rel.pid");
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(written.trim(), server.pid.to_string());
    server.signal(ferrocorn_tests::Signal::SIGTERM);
    assert!(server
        .wait_exit(std::time::Duration::from_secs(20))
        .is_some());
    assert!(!pidfile.exists(), "{}", server.stderr());
    assert!(!sub.join("rel.pid").exists());
}

/// Bug: `--user 4242` (a numeric id, as `--help` promises) failed with "no such user"
/// when the id has no entry in the password database; gunicorn takes such ids as they
/// are, and so do containers running under arbitrary uids. Root only.
#[test]
fn bug_numeric_user_without_a_passwd_entry_is_accepted() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("\n!!!!!!!! SKIPPED: dropping privileges needs root !!!!!!!!\n");
        return;
    }
    let unused = (4242..60000)
        .find(|&id| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(id)).is_ok_and(|u| u.is_none())
        })
        .expect("a uid without a passwd entry");
    let dir = ferrocorn_tests::TempDir::new("qa-numeric-user");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let id = unused.to_string();
    let server = Server::builder()
        .cwd(dir.path())
        .args(["--user", &id, "--group", &id, "hello"])
        .start();
    assert!(
        server.wait_for_workers(1, ferrocorn_tests::START_TIMEOUT),
        "{}",
        server.stderr()
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.worker_pids()[0])).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:")[0], id, "{status}");
    assert_eq!(field("Gid:")[0], id, "{status}");
    assert_eq!(
        field("Groups:"),
        [id.as_str()],
        "no supplementary groups of root are kept"
    );
    assert_eq!(server.get("/").unwrap().status, 200);
}

/// Bug: a worker that began a graceful stop (`max_requests`, TERM, a reload's retirement)
/// closed its idle keep-alive connections at once, so a request a client had just sent on
/// one of them was lost (wrk saw read errors on every HUP under keep-alive load). Such a
/// connection now gets a short grace: a request arriving in it is answered, with
/// `Connection: close`.
#[test]
fn bug_stopping_worker_answers_a_request_sent_on_an_idle_keep_alive_connection() {
    use std::io::{BufReader, Write};
    let server = Server::start(["--workers", "1", "--max-requests", "2", "hello"]);
    let keep_alive = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut idle = ferrocorn_tests::connect(server.addr).unwrap();
    idle.write_all(keep_alive).unwrap();
    let mut idle_reader = BufReader::new(idle.try_clone().unwrap());
    let first = ferrocorn_tests::read_response(&mut idle_reader, false).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None, "kept alive");
    // The second request reaches max_requests: the worker begins its graceful stop.
    let last = server.request(keep_alive).unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    idle.write_all(keep_alive).unwrap();
    let answered = ferrocorn_tests::read_response(&mut idle_reader, false)
        .unwrap_or_else(|e| panic!("the request on the idle connection was lost: {e}"));
    assert_eq!(answered.status, 200);
    assert_eq!(answered.header("connection"), Some("close"));
}

/// Bug: log lines with fields (`refusing request: … status=400`, `max_requests reached …
/// requests=N`) carried ANSI colour escapes into the error log, even into a file.
#[test]
fn bug_error_log_has_no_terminal_escapes() {
    let server = Server::start(["--log-level", "debug", "--max-requests", "1", "hello"]);
    let bad = server.request(b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00\r\n\r\n");
    assert_eq!(bad.unwrap().status, 400);
    assert_eq!(server.get("/").unwrap().status, 200);
    assert!(
        server.wait_for_log("max_requests reached", ferrocorn_tests::START_TIMEOUT),
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(log.contains("refusing request"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in the log: {log:?}");
}
