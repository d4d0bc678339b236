//! Black-box: what systemd sees of a HUP under `Type=notify` (`deploy/systemd/`):
//! `RELOADING=1` with `MONOTONIC_USEC`, then `READY=1` once the new generation serves, or
//! at once when the new configuration is refused.

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use ferrocorn_tests::{wait_until, Server, TempDir};
use nix::sys::signal::Signal;
use nix::time::{clock_gettime, ClockId};

const WAIT: Duration = Duration::from_secs(20);

fn next(receiver: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = receiver.recv(&mut buf).expect("a notification arrives");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `RELOADING=1` with a `MONOTONIC_USEC` on systemd's clock (CLOCK_MONOTONIC), taken
/// after `before_usec`.
fn assert_reloading(message: &str, before_usec: u64) {
    let usec: u64 = message
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 with MONOTONIC_USEC: {message:?}"));
    assert!(
        usec >= before_usec && usec <= now_usec(),
        "{usec} vs {before_usec}"
    );
}

fn now_usec() -> u64 {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
    now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1000
}

#[test]
fn hup_says_reloading_then_ready_once_the_new_generation_serves() {
    reloading_then_ready("generation");
}

#[test]
fn a_rolling_hup_says_ready_once_every_worker_is_replaced() {
    reloading_then_ready("rolling");
}

fn reloading_then_ready(strategy: &str) {
    let dir = TempDir::new("notify-reload");
    let socket_path = dir.join("notify.sock");
    let config = dir.join("ferrocorn.toml");
    std::fs::write(&config, "workers = 2\n").unwrap();
    let receiver = UnixDatagram::bind(&socket_path).unwrap();
    receiver.set_read_timeout(Some(WAIT)).unwrap();
    let server = Server::builder()
        .env("NOTIFY_SOCKET", &socket_path.display().to_string())
        .args(["--config", &config.display().to_string()])
        .args(["--reload-strategy", strategy, "hello"])
        .start();
    assert_eq!(next(&receiver), "READY=1");
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    let first: BTreeSet<i32> = server.worker_pids().into_iter().collect();

    let before = now_usec();
    server.signal(Signal::SIGHUP);
    assert_reloading(&next(&receiver), before);
    assert_eq!(next(&receiver), "READY=1");
    // READY=1 came once the last old worker was told to go: two new workers serve.
    let now: BTreeSet<i32> = server.worker_pids().into_iter().collect();
    assert!(now.difference(&first).count() >= 2, "{first:?} -> {now:?}");
    assert!(
        wait_until(WAIT, || server
            .worker_pids()
            .iter()
            .all(|pid| !first.contains(pid))),
        "the old generation retires"
    );
    assert_eq!(server.get("/").unwrap().status, 200);

    // A configuration the reload refuses: READY=1 follows at once, the old one serves.
    std::fs::write(&config, "workers = \"many\"\n").unwrap();
    let before = now_usec();
    server.signal(Signal::SIGHUP);
    assert_reloading(&next(&receiver), before);
    assert_eq!(next(&receiver), "READY=1");
    assert!(
        server.wait_for_log("keeping the running configuration", WAIT),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/").unwrap().status, 200);
}
