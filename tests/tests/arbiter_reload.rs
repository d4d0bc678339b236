//! Black-box tests of zero-downtime operations under continuous load: HUP starts a new
//! generation of workers and retires the old one; USR2 then TERM to the old arbiter
//! upgrades the binary. No request may fail.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrocorn_tests::{
    is_running, listening_lines, wait_until, worker_pids_of, Load, Server, Signal, TempDir,
};

const WAIT: Duration = Duration::from_secs(30);

/// Starts `ferrocorn --config DIR/ferrocorn.toml hello` with `text` in the file and waits for
/// `workers` workers.
fn start_with_config(dir: &TempDir, text: &str, workers: usize) -> (std::path::PathBuf, Server) {
    let config = dir.join("ferrocorn.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(["--config", &config.display().to_string(), "hello"]);
    assert!(
        server.wait_for_workers(workers, WAIT),
        "{}",
        server.stderr()
    );
    (config, server)
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn hup_replaces_every_worker_without_a_failed_request() {
    let server = Server::start(["--workers", "2", "hello"]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    server.assert_hup_renews_workers_under_load(2, WAIT, || {});
}

#[test]
fn hup_with_a_changed_config_file_changes_the_worker_count_without_a_failed_request() {
    let dir = TempDir::new("hup-config");
    let (config, server) = start_with_config(&dir, "workers = 2\n", 2);
    let load = Load::start(server.addr, "/", 3);
    assert!(load.wait_for_more(20, WAIT), "the load gets answers");

    std::fs::write(&config, "workers = 3\n").unwrap();
    server.signal(Signal::SIGHUP);
    let grown = server.wait_for_workers(3, WAIT)
        && server.wait_for_log("Reloaded: starting generation 2 with 3 worker(s)", WAIT);
    assert!(
        load.wait_for_more(20, WAIT),
        "the load goes on after the reload"
    );

    // A config file that no longer validates keeps the running configuration.
    std::fs::write(&config, "workers = \"many\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    let refused = server.wait_for_log("reload failed, keeping the running configuration", WAIT);
    assert!(
        load.wait_for_more(20, WAIT),
        "the load goes on after the failed reload"
    );
    let report = load.stop();
    assert!(
        grown,
        "3 workers after HUP: {:?}\n{}",
        server.worker_pids(),
        server.stderr()
    );
    assert!(refused, "{}", server.stderr());
    assert_eq!(server.worker_pids().len(), 3);
    report.assert_no_failures(&server);
}

#[test]
fn usr2_then_term_to_the_old_arbiter_upgrades_without_a_failed_request() {
    let dir = TempDir::new("usr2");
    let pidfile = dir.join("ferrocorn.pid");
    let pidfile_arg = pidfile.display().to_string();
    let mut server = Server::start(["--workers", "2", "--pid", &pidfile_arg, "hello"]);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    assert_eq!(
        read_pid(&pidfile),
        Some(server.pid),
        "the pidfile names the arbiter"
    );
    let load = Load::start(server.addr, "/", 3);
    assert!(load.wait_for_more(20, WAIT), "the load gets answers");

    server.signal(Signal::SIGUSR2);
    let new_arbiter = wait_until(WAIT, || {
        listening_lines(&server.stderr())
            .iter()
            .any(|(_, pid)| *pid != server.pid)
    });
    assert!(
        new_arbiter,
        "a new arbiter reports its listeners:\n{}",
        server.stderr()
    );
    let (address, new_pid) = listening_lines(&server.stderr())
        .into_iter()
        .find(|(_, pid)| *pid != server.pid)
        .unwrap();
    assert_eq!(
        address,
        format!("http://{}", server.addr),
        "same socket, inherited"
    );
    assert!(
        wait_until(WAIT, || worker_pids_of(new_pid).len() == 2),
        "the new arbiter runs its workers:\n{}",
        server.stderr()
    );
    let upgrade_pidfile = dir.join("ferrocorn.pid.2");
    assert_eq!(
        read_pid(&upgrade_pidfile),
        Some(new_pid),
        "the new arbiter writes <pidfile>.2"
    );

    server.signal(Signal::SIGTERM);
    let old_status = server
        .wait_exit(WAIT)
        .expect("the old arbiter exits on TERM");
    assert!(old_status.success(), "{old_status:?}");
    assert!(
        wait_until(WAIT, || read_pid(&pidfile) == Some(new_pid)),
        "the new arbiter takes over the pidfile: {:?}\n{}",
        read_pid(&pidfile),
        server.stderr()
    );
    assert!(
        !upgrade_pidfile.exists(),
        "<pidfile>.2 is gone after the takeover"
    );
    assert!(
        load.wait_for_more(20, WAIT),
        "the new arbiter serves the load"
    );
    let report = load.stop();
    report.assert_no_failures(&server);
    assert!(is_running(new_pid));
    assert_eq!(
        server.get("/").expect("served by the new arbiter").status,
        200
    );
}

/// The arbiter opens the access log for the new generation: one it cannot open refuses
/// the reload, and the running generation goes on serving. (A reload whose workers fail
/// to boot is rolled back: `arbiter_faults`.)
#[test]
fn a_reload_with_an_access_log_that_cannot_be_opened_is_refused() {
    let dir = TempDir::new("hup-access-log");
    let (config, server) = start_with_config(&dir, "workers = 2\n", 2);
    let before: BTreeSet<i32> = server.worker_pids().into_iter().collect();
    let load = Load::start(server.addr, "/", 2);
    assert!(load.wait_for_more(20, WAIT), "the load gets answers");

    let missing = dir.join("no-such-dir/access.log");
    std::fs::write(
        &config,
        format!(
            "workers = 2\naccesslog = {:?}\n",
            missing.display().to_string()
        ),
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    let refused = server.wait_for_log(
        "reload failed, keeping the running configuration: cannot open access log",
        WAIT,
    );
    assert!(
        load.wait_for_more(20, WAIT),
        "the old workers go on serving"
    );
    let report = load.stop();
    assert!(refused, "{}", server.stderr());
    assert_eq!(
        server.worker_pids().into_iter().collect::<BTreeSet<i32>>(),
        before,
        "the old generation still serves:\n{}",
        server.stderr()
    );
    report.assert_no_failures(&server);
}

#[test]
fn usr2_keeps_a_unix_socket_file_for_the_new_arbiter_which_removes_it_on_exit() {
    let dir = TempDir::new("usr2-unix");
    let path = dir.join("app.sock");
    let bind = format!("unix:{}", path.display());
    let request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let mut server = Server::builder()
        .no_default_bind()
        .args(["--bind", &bind, "hello"])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    server.signal(Signal::SIGUSR2);
    assert!(
        wait_until(WAIT, || listening_lines(&server.stderr())
            .iter()
            .any(|(_, pid)| *pid != server.pid)),
        "{}",
        server.stderr()
    );
    let new_pid = server
        .arbiter_pids()
        .into_iter()
        .find(|&pid| pid != server.pid)
        .unwrap();
    assert!(wait_until(WAIT, || worker_pids_of(new_pid).len() == 1));
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(WAIT).is_some());
    assert!(
        path.exists(),
        "the old arbiter leaves the socket file to the new one"
    );
    let response = ferrocorn_tests::unix_request(&path, request).expect("the new arbiter serves");
    assert_eq!(response.status, 200);
    ferrocorn_tests::send_signal(new_pid, Signal::SIGTERM);
    assert!(
        wait_until(WAIT, || !is_running(new_pid)),
        "the new arbiter stops on TERM"
    );
    assert!(!path.exists(), "and removes the socket file it took over");
}

/// Regression: a worker signalled between `fork` and the reset of its signal handlers ran
/// the arbiter's handler, which wrote into the arbiter's self-pipe: a TERM meant for a
/// brand-new worker stopped the arbiter. Quick HUPs retire workers right after their fork.
#[test]
fn hups_in_quick_succession_leave_the_arbiter_serving() {
    let server = Server::start(["--workers", "3", "hello"]);
    assert!(server.wait_for_workers(3, WAIT), "{}", server.stderr());
    for _ in 0..10 {
        server.signal(Signal::SIGHUP);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Signals may coalesce or be handled in another order: wait until the log is quiet
    // (a settling wait, not a timing assertion), then for the configured count.
    let mut last = String::new();
    let quiet = wait_until(WAIT, || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = server.stderr();
        std::mem::replace(&mut last, now) == last
    });
    assert!(quiet, "{}", server.stderr());
    assert!(server.wait_for_workers(3, WAIT), "{}", server.stderr());
    assert!(is_running(server.pid), "{}", server.stderr());
    assert!(
        !server.stderr().contains("Handling signal: term"),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/").expect("still serving").status, 200);
}

#[test]
fn hup_applies_a_new_log_level() {
    let dir = TempDir::new("hup-loglevel");
    let (config, server) = start_with_config(&dir, "workers = 1\n", 1);
    let first = server.worker_pids();
    std::fs::write(&config, "workers = 1\nloglevel = \"warning\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log("Handling signal: hup", WAIT),
        "{}",
        server.stderr()
    );
    let replaced = wait_until(WAIT, || {
        let now = server.worker_pids();
        now.len() == 1 && now != first
    });
    assert!(replaced, "{}", server.stderr());
    server.signal(Signal::SIGTTIN);
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    assert!(
        !server.stderr().contains("Handling signal: ttin"),
        "info lines are no longer written:\n{}",
        server.stderr()
    );
}

#[test]
fn an_upgraded_arbiter_tells_systemd_its_pid() {
    let dir = TempDir::new("usr2-notify");
    let socket_path = dir.join("notify.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    receiver.set_read_timeout(Some(WAIT)).unwrap();
    let mut server = Server::builder()
        .env("NOTIFY_SOCKET", &socket_path.display().to_string())
        .args(["hello"])
        .start();
    let next = || {
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    server.signal(Signal::SIGUSR2);
    let ready = next();
    let new_pid: i32 = ready
        .strip_prefix("READY=1\nMAINPID=")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the new arbiter names itself: {ready:?}"));
    assert_ne!(new_pid, server.pid);
    server.signal(Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1", "from the old arbiter");
    assert!(server.wait_exit(WAIT).is_some());
    assert_eq!(
        next(),
        format!("MAINPID={new_pid}"),
        "the new arbiter takes over as main process"
    );
}

#[test]
fn hup_with_a_new_bind_list_opens_and_closes_listeners() {
    let dir = TempDir::new("hup-bind");
    let config = dir.join("ferrocorn.toml");
    std::fs::write(&config, "bind = [\"127.0.0.1:0\"]\n").unwrap();
    let server = Server::builder()
        .no_default_bind()
        .args(["--config", &config.display().to_string(), "hello"])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    // A port that was free a moment ago.
    let extra = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(&config, format!("bind = [\"127.0.0.1:0\", \"{extra}\"]\n")).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log(
            &format!("Listening at: http://{extra} ({})", server.pid),
            WAIT
        ),
        "{}",
        server.stderr()
    );
    let served = wait_until(WAIT, || {
        ferrocorn_tests::get(extra, "/").is_ok_and(|r| r.status == 200)
    });
    assert!(served, "the new address is served:\n{}", server.stderr());
    assert_eq!(server.get("/").expect("the kept address").status, 200);

    std::fs::write(&config, "bind = [\"127.0.0.1:0\"]\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        wait_until(WAIT, || std::net::TcpStream::connect(extra).is_err()),
        "the dropped address is closed once its workers are gone:\n{}",
        server.stderr()
    );
    assert_eq!(server.get("/").expect("the kept address").status, 200);
}

#[test]
fn term_to_the_new_arbiter_aborts_an_upgrade_and_the_old_one_keeps_serving() {
    let dir = TempDir::new("usr2-abort");
    let path = dir.join("app.sock");
    let pidfile = dir.join("app.pid");
    let request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let server = Server::builder()
        .no_default_bind()
        .args([
            "--bind",
            &format!("unix:{}", path.display()),
            "--pid",
            &pidfile.display().to_string(),
            "hello",
        ])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    server.signal(Signal::SIGUSR2);
    let upgrade_pidfile = dir.join("app.pid.2");
    assert!(
        wait_until(WAIT, || read_pid(&upgrade_pidfile).is_some()),
        "{}",
        server.stderr()
    );
    let new_pid = read_pid(&upgrade_pidfile).unwrap();
    assert!(wait_until(WAIT, || worker_pids_of(new_pid).len() == 1));
    ferrocorn_tests::send_signal(new_pid, Signal::SIGTERM);
    assert!(
        server.wait_for_log(&format!("upgraded arbiter (pid:{new_pid}) exited"), WAIT),
        "the old arbiter notices:\n{}",
        server.stderr()
    );
    assert!(
        !upgrade_pidfile.exists(),
        "the new arbiter removed its <pidfile>.2"
    );
    assert_eq!(
        read_pid(&pidfile),
        Some(server.pid),
        "the pidfile still names the old one"
    );
    assert!(path.exists(), "the socket file stays for the old arbiter");
    let response = ferrocorn_tests::unix_request(&path, request).expect("the old one serves");
    assert_eq!(response.status, 200);
}

/// Bug: HUP ignored the `chdir` of the configuration it read: a changed directory was not
/// entered (`static:.` kept serving the old one) and one that cannot be entered went
/// unnoticed. Now the new directory is entered before the app is loaded, and a directory
/// that cannot be entered refuses the reload.
#[test]
fn bug_hup_enters_the_new_chdir_and_refuses_one_that_cannot_be_entered() {
    let dir = TempDir::new("hup-chdir");
    for (name, text) in [("a", "from a\n"), ("b", "from b\n")] {
        std::fs::create_dir(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("page.txt"), text).unwrap();
    }
    let config = dir.join("ferrocorn.toml");
    let chdir = |name: &str| format!("chdir = {:?}\n", dir.join(name).display().to_string());
    std::fs::write(&config, chdir("a")).unwrap();
    let server = Server::start(["--config", &config.display().to_string(), "static:."]);
    assert_eq!(server.get("/page.txt").unwrap().text(), "from a\n");

    std::fs::write(&config, chdir("missing")).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log(
            "reload failed, keeping the running configuration: cannot chdir to",
            WAIT
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/page.txt").unwrap().text(), "from a\n");

    std::fs::write(&config, chdir("b")).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log("Reloaded: starting generation 2", WAIT),
        "{}",
        server.stderr()
    );
    let moved = wait_until(WAIT, || {
        server
            .get("/page.txt")
            .is_ok_and(|response| response.text() == "from b\n")
    });
    assert!(
        moved,
        "the new generation serves the new directory:\n{}",
        server.stderr()
    );
}
