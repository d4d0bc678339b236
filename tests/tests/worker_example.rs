//! Black-box: the custom application in `cli/examples/custom_app.rs`, served by the whole
//! server through the `ferrocorn` library (`ferrocorn::Server`): forked workers, the
//! `ferrocorn` binary's command line and config file, HUP reloads.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use ferrocorn_tests::{
    binary, cargo_build, connect, descendants, request, send_signal, Server, Signal, TempDir,
};

const WAIT: Duration = Duration::from_secs(30);

/// `cli/examples/custom_app`, built once per test process.
fn example() -> &'static Path {
    static EXAMPLE: OnceLock<std::path::PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        cargo_build(
            &["-p", "ferrocorn", "--example", "custom_app"],
            "examples/custom_app",
        )
    })
}

/// `custom_app --bind 127.0.0.1:0 ARGS...`, once it listens.
fn start_example(args: &[&str]) -> Server {
    Server::builder().program(example()).args(args).start()
}

/// The exit code, stdout and stderr of `program ARGS...`, which must exit by itself (it is
/// killed by pid and the test fails after [`WAIT`]).
fn output(program: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let child = Command::new(program)
        .args(args)
        .env_remove("FERROCORN_CMD_ARGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the program");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(WAIT) else {
        send_signal(pid, Signal::SIGKILL);
        panic!("{} {args:?} did not exit", program.display());
    };
    let output = output.expect("wait for the program");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every long flag a `--help` text lists.
fn long_flags(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| {
            word.split(['=', '[', '<'])
                .next()
                .unwrap_or(word)
                .to_string()
        })
        .collect()
}

#[test]
fn custom_app_example_is_served_by_the_full_server() {
    let server = start_example(&["--workers", "1", "--threads", "4"]);
    let addr = server.addr;
    let r = request(
        addr,
        b"POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\nConnection: close\r\n\r\n1 2 39\n",
    )
    .unwrap();
    assert_eq!((r.status, r.text()), (200, "42\n".to_string()));
    let r = server.get("/").unwrap();
    let worker: i32 = r.text().trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        descendants(server.pid).contains(&worker),
        "answered by a forked worker of the example's arbiter"
    );
    let r = server.get("/stream").unwrap();
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
    let r = server
        .get("/release")
        .expect("served while the stream waits");
    assert_eq!(r.text(), "released\n");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("second"), "{rest}");
}

/// Issue 13: `custom_app --workers 4` failed (the example took only ADDR and WORKERS), and
/// a HUP could not re-read a configuration it never read.
#[test]
fn custom_app_takes_workers_and_reloads_its_config_file_on_hup() {
    let dir = TempDir::new("custom-app-hup");
    let config = dir.path().join("custom.toml");
    std::fs::write(&config, "limit_request_line = 8190\n").unwrap();
    let config_arg = config.display().to_string();
    let server = start_example(&["--workers", "4", "-c", &config_arg]);
    assert!(server.wait_for_workers(4, WAIT), "{}", server.stderr());
    let long_target = format!("/{}", "x".repeat(200));
    assert_eq!(server.get(&long_target).unwrap().status, 404);
    server.assert_hup_renews_workers_under_load(4, WAIT, || {
        std::fs::write(&config, "limit_request_line = 100\n").unwrap();
    });
    assert_eq!(
        server.get(&long_target).unwrap().status,
        414,
        "the reloaded limit_request_line applies\n{}",
        server.stderr()
    );
}

#[test]
fn custom_app_lists_every_flag_of_ferrocorn_and_refuses_an_app() {
    let (code, help, _) = output(example(), &["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("Usage: custom_app [OPTIONS]\n"), "{help}");
    assert!(!help.contains("[APP]"), "{help}");
    let (code, ferrocorn_help, _) = output(binary(), &["--help"]);
    assert_eq!(code, Some(0));
    let flags = long_flags(&help);
    assert!(flags.contains("--workers") && flags.contains("--check-config"));
    assert_eq!(flags, long_flags(&ferrocorn_help));

    let (code, version, _) = output(example(), &["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        version,
        format!("custom_app {}\n", env!("CARGO_PKG_VERSION"))
    );

    let (code, _, stderr) = output(example(), &["--workers", "4", "hello"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "custom_app: error: cli: unexpected argument \"hello\": custom_app serves its own \
         application and takes no APP\n"
    );
    let (code, _, stderr) = output(example(), &["--workers", "0", "--wokers", "2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("custom_app: error: cli: unknown flag --wokers; did you mean --workers?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid value \"0\" for workers"),
        "{stderr}"
    );
}
