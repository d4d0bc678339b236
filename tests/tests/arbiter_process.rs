//! Black-box tests of the arbiter's process duties: listeners of every kind (Unix socket,
//! `fd://N`, systemd activation), the pidfile, readiness notification, log formats and
//! reopening, WINCH.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use ferrocorn_tests::{listening_lines, unix_request, wait_until, Server, Signal, TempDir};

const WAIT: Duration = Duration::from_secs(30);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

#[test]
fn serves_on_a_unix_socket_and_replaces_a_stale_socket_file() {
    let dir = TempDir::new("unix");
    let path = dir.join("ferrocorn.sock");
    // A socket file nobody listens on, as a crashed server leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let bind = format!("unix:{}", path.display());
    let server = Server::builder()
        .no_default_bind()
        .args(["--bind", &bind, "hello"])
        .start();
    assert_eq!(server.addresses, vec![bind.clone()]);
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let response = unix_request(&path, GET).expect("served over the unix socket");
    assert_eq!(response.status, 200);

    // A second server on the same live socket must refuse to start.
    let (status, stderr) = Server::builder()
        .no_default_bind()
        .args(["--bind", &bind, "hello"])
        .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(stderr.contains("another process is listening"), "{stderr}");
    assert!(
        unix_request(&path, GET).is_ok(),
        "the first server still serves"
    );
    drop(server);
    assert!(
        wait_until(WAIT, || !path.exists()),
        "the socket file is removed when the server stops"
    );
}

#[test]
fn serves_an_inherited_descriptor_given_as_fd_url() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .no_default_bind()
        .fd3(listener)
        .args(["--bind", "fd://3", "hello"])
        .start();
    assert_eq!(server.addr, addr);
    assert_eq!(server.get("/").expect("served on fd 3").status, 200);
}

#[test]
fn takes_over_systemd_activated_sockets() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .fd3(listener)
        .systemd_activation()
        .args(["hello"])
        .start();
    assert_eq!(
        server.addr, addr,
        "the systemd socket, not --bind 127.0.0.1:0"
    );
    assert_eq!(
        server
            .get("/")
            .expect("served on the systemd socket")
            .status,
        200
    );
    assert!(
        server.wait_for_log("Using systemd socket activation", WAIT),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_pidfile_naming_a_live_process_stops_the_start() {
    let dir = TempDir::new("pidfile-live");
    let pidfile = dir.join("app.pid");
    let pidfile_arg = pidfile.display().to_string();
    let first = Server::start(["--pid", &pidfile_arg, "hello"]);
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&pidfile)
            .is_ok_and(|text| text.trim() == first.pid.to_string())),
        "the pidfile names the first arbiter"
    );
    let (status, stderr) = Server::builder()
        .args(["--pid", &pidfile_arg, "hello"])
        .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "names process {}, which is still running",
            first.pid
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        first.pid.to_string(),
        "the refused start leaves the pidfile alone"
    );
    drop(first);
    assert!(!pidfile.exists(), "removed when its arbiter stops");
}

#[test]
fn notifies_systemd_when_ready_and_when_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.join("notify.sock");
    let receiver = UnixDatagram::bind(&socket_path).unwrap();
    receiver.set_read_timeout(Some(WAIT)).unwrap();
    let mut server = Server::builder()
        .env("NOTIFY_SOCKET", &socket_path.display().to_string())
        .args(["hello"])
        .start();
    let mut buf = [0u8; 256];
    let n = receiver.recv(&mut buf).expect("READY=1 arrives");
    assert_eq!(&buf[..n], b"READY=1");
    server.signal(Signal::SIGTERM);
    let n = receiver.recv(&mut buf).expect("STOPPING=1 arrives");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(server.wait_exit(WAIT).is_some_and(|s| s.success()));
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let server = Server::start(["--log-format", "json", "hello"]);
    assert!(server.wait_for_workers(1, WAIT));
    let log = server.stderr();
    let mut messages = Vec::new();
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(message) = value.pointer("/fields/message").and_then(|m| m.as_str()) {
            messages.push(message.to_string());
        }
    }
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Listening at: http://127.0.0.1:")),
        "{messages:?}"
    );
}

#[test]
fn error_logfile_is_reopened_on_usr1() {
    let dir = TempDir::new("errorlog");
    let log = dir.join("error.log");
    let rotated = dir.join("error.log.1");
    let mut server = Server::builder()
        .args(["--error-logfile", &log.display().to_string(), "hello"])
        .dont_wait_for_listening()
        .start();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        wait_until(WAIT, || !listening_lines(&read(&log)).is_empty()),
        "the log file gets the Listening line: {:?}",
        read(&log)
    );
    let (address, pid) = listening_lines(&read(&log)).remove(0);
    assert_eq!(pid, server.pid);
    server.addr = address.trim_start_matches("http://").parse().unwrap();
    assert!(
        !server.stderr().contains("Listening at"),
        "nothing goes to stderr"
    );

    assert!(server.wait_for_workers(1, WAIT));
    let first_worker = server.worker_pids()[0];
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    assert!(
        wait_until(WAIT, || read(&rotated).contains("Handling signal: usr1")),
        "the signal is logged before the reopen"
    );
    server.signal(Signal::SIGTTIN);
    assert!(
        wait_until(WAIT, || read(&log).contains("Handling signal: ttin")),
        "lines after USR1 go to a new file at the configured path: {:?}",
        read(&log)
    );
    assert!(!read(&rotated).contains("ttin"));

    // The worker reopened its copy too: what it logs when it stops goes to the new file.
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(WAIT).is_some());
    let marker = format!("] [{first_worker}] [");
    assert!(
        wait_until(WAIT, || read(&log).contains(&marker)),
        "a worker line in the new file: {:?}",
        read(&log)
    );
}

#[test]
fn winch_stops_the_workers_and_the_arbiter_stays() {
    let server = Server::start(["--workers", "2", "hello"]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    server.signal(Signal::SIGWINCH);
    assert!(server.wait_for_workers(0, WAIT), "{}", server.stderr());
    assert!(
        ferrocorn_tests::is_running(server.pid),
        "the arbiter stays up"
    );
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_workers(2, WAIT),
        "HUP brings the configured workers back:\n{}",
        server.stderr()
    );
    assert_eq!(server.get("/").expect("serving again").status, 200);
}

#[test]
fn chdir_happens_before_the_app_is_loaded() {
    let dir = TempDir::new("chdir");
    std::fs::write(dir.join("marker.txt"), "served from chdir\n").unwrap();
    let server = Server::start(["--chdir", &dir.path().display().to_string(), "static:."]);
    let response = server.get("/marker.txt").expect("served");
    assert_eq!(response.status, 200, "{}", server.stderr());
    assert_eq!(response.text(), "served from chdir\n");
}

#[test]
fn umask_sets_the_mode_of_the_unix_socket_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("umask");
    let path = dir.join("app.sock");
    let server = Server::builder()
        .no_default_bind()
        .args([
            "--bind",
            &format!("unix:{}", path.display()),
            "--umask",
            "0o077",
            "hello",
        ])
        .start();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{:o}", mode);
    drop(server);
}

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let first = Server::start(["--reuse-port", "hello"]);
    let port = first.addr.port();
    let bind = format!("127.0.0.1:{port}");
    let second = Server::builder()
        .no_default_bind()
        .args(["--bind", &bind, "--reuse-port", "hello"])
        .start();
    assert_eq!(second.addr, first.addr);
    assert_eq!(second.get("/").expect("served").status, 200);
}

#[test]
fn listens_on_ipv6_when_the_host_has_it() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("\n!!!!!!!! SKIPPED: no IPv6 loopback on this host !!!!!!!!\n");
        return;
    }
    let server = Server::builder()
        .no_default_bind()
        .args(["--bind", "[::1]:0", "hello"])
        .start();
    assert!(server.addr.is_ipv6(), "{:?}", server.addresses);
    assert!(server.addresses[0].starts_with("http://[::1]:"));
    assert_eq!(server.get("/").expect("served over IPv6").status, 200);
}

/// Bug: `--user`/`--group` dropped the arbiter's privileges too (unlike gunicorn): with
/// its files in a root-owned directory, USR2 could not write `<pidfile>.2`, TERM left the
/// pidfile behind, and workers could not open the access log, which stopped the start. The
/// arbiter keeps its identity, opens the logs and hands them to the workers, which alone
/// run as the user.
#[test]
fn bug_only_the_workers_run_as_user_and_group() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("\n!!!!!!!! SKIPPED: dropping privileges needs root !!!!!!!!\n");
        return;
    }
    // Root's directory, which nobody may traverse but not write.
    let dir = TempDir::new("user");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (pidfile, access) = (dir.join("app.pid"), dir.join("access.log"));
    let mut server = Server::builder()
        .cwd(dir.path())
        .args([
            "--user",
            "65534",
            "--group",
            "65534",
            "--pid",
            &pidfile.display().to_string(),
            "--access-logfile",
            &access.display().to_string(),
            "hello",
        ])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let ids = |pid: i32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_string()
        };
        (field("Uid:"), field("Gid:"))
    };
    let nobody = ("65534".to_string(), "65534".to_string());
    assert_eq!(
        ids(server.pid),
        ("0".to_string(), "0".to_string()),
        "the arbiter"
    );
    assert_eq!(ids(server.worker_pids()[0]), nobody, "its workers");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(server.get("/").expect("served").status, 200);
    assert!(
        wait_until(WAIT, || read(&access).contains("GET /")),
        "logged"
    );

    // A rotation: the worker (nobody) reopens a file created in root's directory.
    std::fs::rename(&access, dir.join("access.log.1")).unwrap();
    server.signal(Signal::SIGUSR1);
    let reopened = wait_until(WAIT, || {
        let _ = server.get("/after-rotation");
        read(&access).contains("GET /after-rotation")
    });
    assert!(reopened, "{}", server.stderr());

    // USR2 writes `<pidfile>.2`; TERM to the new arbiter aborts the upgrade.
    let second = dir.join("app.pid.2");
    server.signal(Signal::SIGUSR2);
    let upgraded = wait_until(WAIT, || read(&second).trim().parse::<i32>().is_ok());
    assert!(upgraded, "{}", server.stderr());
    let new_arbiter: i32 = read(&second).trim().parse().unwrap();
    ferrocorn_tests::send_signal(new_arbiter, Signal::SIGTERM);
    assert!(wait_until(WAIT, || !second.exists()), "{}", server.stderr());

    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(WAIT).is_some_and(|s| s.success()));
    assert!(!pidfile.exists(), "the pidfile is removed on exit");
}

#[test]
fn proc_name_names_the_arbiter_process() {
    let server = Server::start(["--name", "my-shop-frontend", "hello"]);
    let named = wait_until(WAIT, || {
        ferrocorn_tests::process_name(server.pid).as_deref() == Some("my-shop-fronten")
    });
    assert!(
        named,
        "cut to the kernel's 15 bytes: {:?}",
        ferrocorn_tests::process_name(server.pid)
    );
    assert!(
        server.wait_for_workers(1, WAIT),
        "workers keep their own name"
    );
}

/// Bug: the default `umask` 0 was applied to the whole process, so the access log, and the
/// error log once reopened on USR1, were created world-writable (0666). Log files and the
/// pidfile are now 0644 less `--umask`; the process's umask is left alone.
#[test]
fn bug_logs_and_pidfile_are_not_writable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    for (umask, allowed) in [(None, 0o644), (Some("0o077"), 0o600)] {
        let dir = TempDir::new("file-modes");
        let (errors, access, pid) = (
            dir.join("error.log"),
            dir.join("access.log"),
            dir.join("app.pid"),
        );
        let mut args: Vec<String> = [
            "--error-logfile",
            &errors.display().to_string(),
            "--access-logfile",
            &access.display().to_string(),
            "--pid",
            &pid.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        if let Some(mask) = umask {
            args.extend(["--umask".to_string(), mask.to_string()]);
        }
        args.push("hello".to_string());
        let server = Server::builder()
            .args(&args)
            .dont_wait_for_listening()
            .start();
        assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
        assert!(
            wait_until(WAIT, || access.exists()),
            "the worker opens the access log"
        );

        // Rotate both logs: the files created on USR1 must not be writable by others either.
        std::fs::rename(&errors, dir.join("error.log.1")).unwrap();
        std::fs::rename(&access, dir.join("access.log.1")).unwrap();
        server.signal(Signal::SIGUSR1);
        assert!(
            wait_until(WAIT, || errors.exists() && access.exists()),
            "both logs are created again on USR1"
        );
        for path in [&errors, &access, &pid] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & !allowed,
                0,
                "{} is {mode:o} (umask {umask:?})",
                path.display()
            );
            assert_eq!(mode & 0o600, 0o600, "{} is {mode:o}", path.display());
        }
    }
}
