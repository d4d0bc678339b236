//! Black-box tests of the binary's configuration front end: `--print-config`,
//! `--check-config`, `--help`, `--version`, and each class of configuration error
//! (one line per error on stderr, exit code 2). No test here starts a server: every
//! invocation exits on its own, and is killed by pid if it has not within the deadline.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrocorn_tests::{binary, TempDir};

/// The longest an invocation may take before it is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Kills the child by pid if the test ends before it has been reaped.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` with only the variables in `env`, and waits (bounded).
fn run(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(binary())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut guard = ChildGuard(Some(child));
    let child = guard.0.as_mut().unwrap();
    // Outputs are small (a few KiB), well under a pipe's buffer: reading after exit is safe.
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "ferrocorn {args:?} did not exit within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    guard.0 = None;
    Output {
        code: status.code().expect("exited, not killed by a signal"),
        stdout,
        stderr,
    }
}

#[test]
fn print_config_shows_each_value_and_its_source() {
    let dir = TempDir::new("config");
    let file = write(
        &dir,
        "ferrocorn.toml",
        "threads = 3\nloglevel = \"debug\"\n",
    );
    let out = run(
        &dir,
        &[
            "--print-config",
            "-b",
            "127.0.0.1:0",
            "--log-level",
            "error",
        ],
        &[
            ("FERROCORN_BACKLOG", "64"),
            ("FERROCORN_CMD_ARGS", "--timeout 9 --name 'my app'"),
            ("WEB_CONCURRENCY", "3"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        "bind = [\"127.0.0.1:0\"]  # cli".to_string(),
        "loglevel = \"error\"  # cli".to_string(),
        "timeout = 9  # env FERROCORN_CMD_ARGS".to_string(),
        "proc_name = \"my app\"  # env FERROCORN_CMD_ARGS".to_string(),
        "backlog = 64  # env FERROCORN_BACKLOG".to_string(),
        format!("threads = 3  # file {}", file.display()),
        "workers = 3  # env WEB_CONCURRENCY".to_string(),
        "keepalive = 2  # default".to_string(),
        "app = \"static:.\"  # default".to_string(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
    // One line per setting, each `name = value  # source`.
    assert!(lines.len() > 30);
    assert!(lines
        .iter()
        .all(|l| l.contains(" = ") && l.contains("  # ")));
}

#[test]
fn check_config_exits_0_when_valid_and_2_with_every_error() {
    let dir = TempDir::new("config");
    let out = run(&dir, &["--check-config", "-w", "4", "hello"], &[]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));

    let file = write(&dir, "ferrocorn.toml", "workers = 2\nwokers = 3\n");
    let out = run(
        &dir,
        &["--check-config", "--timeout", "soon"],
        &[("FERROCORN_THREDS", "2"), ("FERROCORN_BACKLOG", "0")],
    );
    assert_eq!(out.code, 2);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "ferrocorn: error: file {} line 2: unknown setting wokers; did you mean workers?",
                file.display()
            )
            .as_str(),
            "ferrocorn: error: env: unknown variable FERROCORN_THREDS; did you mean \
             FERROCORN_THREADS?",
            "ferrocorn: error: env FERROCORN_BACKLOG: invalid value \"0\" for backlog: below \
             the minimum 1; expected an integer from 1 to 65535",
            "ferrocorn: error: cli --timeout: invalid value \"soon\" for timeout: not a number \
             of seconds; expected a number of seconds from 0 to 31536000",
        ]
    );
}

#[test]
fn check_config_loads_the_app_from_the_chdir_directory() {
    let dir = TempDir::new("config");
    std::fs::create_dir(dir.join("site")).unwrap();
    let out = run(&dir, &["--check-config", "static:site"], &[]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let out = run(
        &dir,
        &["--check-config", "--chdir", "site", "static:."],
        &[],
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));

    let out = run(
        &dir,
        &["--check-config", "--chdir", "site", "static:site"],
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("ferrocorn: error: app: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("site"), "{}", out.stderr);
    // Not a built-in: a Python module, which does not exist; the message says both.
    let out = run(&dir, &["--check-config", "helo"], &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("'helo'"), "{}", out.stderr);
    assert!(out.stderr.contains("ModuleNotFoundError"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean hello?"), "{}", out.stderr);
}

#[test]
fn an_unknown_flag_exits_2_with_a_suggestion() {
    let dir = TempDir::new("config");
    let out = run(&dir, &["--worker-conections", "10"], &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "ferrocorn: error: cli: unknown flag --worker-conections; did you mean \
         --worker-connections?\n"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_bad_value_exits_2_and_starts_nothing() {
    let dir = TempDir::new("config");
    // Without an action flag the binary would serve: a bad value must stop it first.
    let out = run(&dir, &["--bind", "127.0.0.1:http"], &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "ferrocorn: error: cli --bind: invalid value [\"127.0.0.1:http\"] for bind: port \
         \"http\" is not a number; expected one or more of HOST:PORT, [IPV6]:PORT, HOST \
         (port 8000), unix:PATH, fd://N\n"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn an_explicit_config_file_must_exist() {
    let dir = TempDir::new("config");
    let out = run(&dir, &["--check-config", "-c", "missing.toml"], &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(&format!(
            "ferrocorn: error: file {}: cannot read:",
            dir.join("missing.toml").display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn help_and_version_exit_0() {
    let dir = TempDir::new("config");
    let out = run(&dir, &["--version"], &[]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.trim(),
        format!("ferrocorn {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&dir, &["--help"], &[]);
    assert_eq!(out.code, 0);
    for flag in [
        "--bind <ADDRESS>",
        "--workers <INT>",
        "--keep-alive <SECONDS>",
        "--pid <FILE>",
        "--proxy-allow-from <IPS>",
        "--print-config",
        "--check-config",
        "FERROCORN_LIMIT_REQUEST_BODY",
    ] {
        assert!(out.stdout.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn the_merged_settings_reach_the_server() {
    // The file gives the bind, the app and 2 workers; FERROCORN_WORKERS overrides the
    // worker count, and the command line overrides the variable.
    let dir = TempDir::new("config");
    write(
        &dir,
        "ferrocorn.toml",
        "bind = \"127.0.0.1:0\"\napp = \"hello\"\nworkers = 2\n",
    );
    let server = ferrocorn_tests::Server::builder()
        .no_default_bind()
        .cwd(dir.path())
        .env("FERROCORN_WORKERS", "3")
        .start();
    assert!(
        server.wait_for_workers(3, DEADLINE),
        "3 workers (from FERROCORN_WORKERS): {:?}\n{}",
        server.worker_pids(),
        server.stderr()
    );
    let response = server.get("/").expect("GET / answers");
    assert_eq!(response.text(), "Hello, World!\n");
    drop(server);

    let server = ferrocorn_tests::Server::builder()
        .no_default_bind()
        .cwd(dir.path())
        .env("FERROCORN_WORKERS", "3")
        .args(["-w", "1"])
        .start();
    assert!(
        server.wait_for_workers(1, DEADLINE),
        "1 worker (from the command line): {:?}",
        server.worker_pids()
    );
}
