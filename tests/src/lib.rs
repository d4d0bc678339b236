//! Helpers shared by the black-box tests: build and start the real `ferrocorn` binary on an
//! ephemeral port, talk to it over TCP with timeouts, send it signals, count its workers by
//! pid, and kill every process it started when the test ends (even when the test fails).
//!
//! Every wait is bounded; nothing asserts on timing. [`python`] adds the Python fixtures
//! and the test virtualenv; `watch` counts an arbiter's children while a test runs
//! ([`ChildWatch`]) and keeps clients on persistent connections ([`Load::keep_alive`]).

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub mod corpus;
mod http;
mod load;
mod process;
pub mod python;
mod watch;
pub mod websocket;

pub mod tls;
pub use http::*;
pub use load::*;
pub use process::*;
pub use watch::{ChildReport, ChildWatch};

/// The process name (`/proc/PID/comm`) of a worker. If this changes, update
/// `ferrocorn_arbiter::WORKER_PROCESS_NAME` (the two must agree).
pub const WORKER_PROCESS_NAME: &str = "ferrocorn-wrk";

/// How long [`Server::start`] waits for the `Listening at:` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect, read and write timeout of the request helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` lets the processes stop after SIGINT before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `ferrocorn` binary, built once per test process with the same cargo that runs the
/// tests (`cargo build -p ferrocorn --bin ferrocorn`), found next to the test executable.
/// Panics with cargo's output when the build fails.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| cargo_build(&["-p", "ferrocorn", "--bin", "ferrocorn"], "ferrocorn"))
}

/// `tests/examples/faulty_app.rs`, an application that misbehaves on demand served through
/// `ferrocorn_arbiter::serve`; built once per test process. Start it with
/// [`ServerBuilder::program`].
pub fn faulty_app() -> &'static Path {
    static APP: OnceLock<PathBuf> = OnceLock::new();
    APP.get_or_init(|| {
        cargo_build(
            &["-p", "ferrocorn-tests", "--example", "faulty_app"],
            "examples/faulty_app",
        )
    })
}

/// Runs `cargo build --quiet <args>` in the workspace with the cargo that runs the tests,
/// and returns `output` (relative to the profile directory, e.g. `examples/parse`). Panics
/// with cargo's output when the build fails or `output` was not built.
pub fn cargo_build(args: &[&str], output: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet"])
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build");
    assert!(
        built.status.success(),
        "cargo build {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&built.stderr)
    );
    let path = profile_dir().join(output);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The cargo profile directory this program was built into (`target/debug`): the parent
/// of `deps/` for a test binary (`target/debug/deps/<test>`), the program's own directory
/// for a binary of this crate (`target/debug/make-venv`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("the program has a directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    dir.to_path_buf()
}

/// The shared corpus directory: `<workspace root>/../shared/corpus`, else
/// `$FERROCORN_SHARED/corpus`. `None` (after a loud message on stderr) when neither exists;
/// the caller then returns early. Under `CI=true` a missing corpus panics instead (see
/// [`find_corpus`]).
pub fn corpus_dir() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    find_corpus(
        &workspace_root().join("../shared/corpus"),
        std::env::var_os("FERROCORN_SHARED"),
        ci,
    )
}

/// Decodes a Python bytes-literal escape string (`codecs.escape_decode`): `\\`, `\'`, `\"`,
/// `\a \b \f \n \r \t \v`, `\xNN`, octal `\NNN`; other backslashes stay as they are.
pub fn python_unescape(raw: &str) -> Vec<u8> {
    let b: Vec<u8> = raw.chars().map(|c| c as u32 as u8).collect();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\n' => {}
            b'x' => {
                let hex = std::str::from_utf8(&b[i..(i + 2).min(b.len())]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).expect("valid \\x escape in corpus"));
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// [`corpus_dir`] with its inputs given: the folder beside the workspace, the value of
/// `$FERROCORN_SHARED` and whether this is CI. CI always has the corpus: a test there must
/// fail rather than pass by skipping, with a message only `--nocapture` would show.
pub fn find_corpus(beside: &Path, shared: Option<std::ffi::OsString>, ci: bool) -> Option<PathBuf> {
    if beside.is_dir() {
        return Some(beside.to_path_buf());
    }
    if let Some(shared) = shared {
        let dir = PathBuf::from(shared).join("corpus");
        if dir.is_dir() {
            return Some(dir);
        }
    }
    let missing = format!(
        "the shared corpus is missing (looked in {} and $FERROCORN_SHARED/corpus)",
        beside.display()
    );
    assert!(!ci, "{missing}; CI=true: the corpus tests may not skip");
    eprintln!("\n!!!!!!!! SKIPPED: {missing} !!!!!!!!\n");
    None
}

/// How long [`run_in_child_process`] waits for its child before killing it.
const CHILD_TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Set in the child [`run_in_child_process`] starts: the test it is to run itself.
const CHILD_TEST_VAR: &str = "FERROCORN_TEST_IN_CHILD";

/// Runs the body of the test `test` (a function of the calling module) in a child process of
/// its own: `in_child_process!(name_of_this_test, body)`. See [`run_in_child_process`].
#[macro_export]
macro_rules! in_child_process {
    ($test:ident, $body:expr) => {
        $crate::run_in_child_process(concat!(module_path!(), "::", stringify!($test)), $body)
    };
}

/// For unit tests that change state the whole process shares (the umask, signal
/// dispositions and masks, the working directory, the environment): the other tests of the
/// same binary run on other threads of this process and would see it change under them.
/// Runs `body` in a new process of the test binary that runs only the test at `path`
/// (`module_path!()::name`, as [`in_child_process!`] writes it) and calls `body` there, and
/// fails, with the child's output, unless that child ran the test and passed it within a
/// minute.
///
/// The child is a fresh process (the binary executed again), not a bare `fork` of this one:
/// a forked copy would keep every lock the other threads held at that moment (the
/// environment's, the panic hook's, the backtrace printer's) held forever.
pub fn run_in_child_process(path: &str, body: impl FnOnce()) {
    // The harness names tests without the crate: `pidfile::tests::name`.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var_os(CHILD_TEST_VAR).is_some_and(|v| v == name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_TEST_VAR, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test binary again");
    let stdout = Arc::new(Captured::default());
    let stderr = Arc::new(Captured::default());
    stdout.spawn_reader(child.stdout.take().expect("piped stdout"));
    stderr.spawn_reader(child.stderr.take().expect("piped stderr"));
    let status = wait_child(&mut child, CHILD_TEST_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = || {
        let done = |log: &str| log.contains("test result").then_some(());
        let _ = stdout.wait_for(Duration::from_secs(5), done);
        format!("{}{}", stdout.snapshot(), stderr.snapshot())
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "{name} failed in its child process ({status:?}):\n{}",
        output()
    );
    let log = output();
    assert!(
        log.contains("test result: ok. 1 passed"),
        "{name} did not run in its child process:\n{log}"
    );
}

/// Whether this process is a child [`run_in_child_process`] started (what a test runs after
/// its `in_child_process!` runs there too).
pub fn is_test_child() -> bool {
    std::env::var_os(CHILD_TEST_VAR).is_some()
}

/// The umask of this process, read from `/proc/self/status` (setting it is the only other
/// way to learn it).
pub fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Text captured from one of the server's output streams, line by line.
#[derive(Debug, Default)]
struct Captured {
    text: Mutex<String>,
    changed: Condvar,
    closed: AtomicBool,
}

impl Captured {
    fn spawn_reader(self: &Arc<Self>, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let this = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut text = this.text.lock().unwrap_or_else(|e| e.into_inner());
                        text.push_str(&String::from_utf8_lossy(&line));
                        this.changed.notify_all();
                    }
                }
            }
            this.closed.store(true, Ordering::SeqCst);
            this.changed.notify_all();
        })
    }

    fn snapshot(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `found` returns `Some` on the text so far, or the timeout passes.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(value) = found(&text) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline || self.closed.load(Ordering::SeqCst) {
                return found(&text);
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            text = self
                .changed
                .wait_timeout(text, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Every `Listening at: http://ADDR (PID)` in `log`, in order.
pub fn listening_lines(log: &str) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split("Listening at: ").nth(1) else {
            continue;
        };
        let Some((address, tail)) = rest.split_once(" (") else {
            continue;
        };
        let pid: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(pid) = pid.parse() {
            found.push((address.to_string(), pid));
        }
    }
    found
}

/// How to start a server: arguments, environment, working directory.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    program: Option<PathBuf>,
    args: Vec<String>,
    /// Variables to set (`Some`) or remove (`None`), applied in order.
    env: Vec<(String, Option<String>)>,
    cwd: Option<PathBuf>,
    bind: bool,
    fd3: Option<Arc<std::net::TcpListener>>,
    systemd: bool,
    wait_for_listening: bool,
    open_files: Option<u64>,
    own_group: bool,
}

impl ServerBuilder {
    /// Starts `program` instead of `ferrocorn` (it must take `--bind ADDR` and log
    /// `Listening at:` as ferrocorn does, e.g. [`faulty_app`]).
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_path_buf());
        self
    }

    /// Adds command-line arguments (after `--bind 127.0.0.1:0`).
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_string()));
        self
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), Some(value.to_string())));
        self
    }

    /// Removes an environment variable the test process has from the server's environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_string(), None));
        self
    }

    /// Runs the server in `dir`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Leaves out `--bind 127.0.0.1:0` (the test passes its own binds or a config file does).
    pub fn no_default_bind(mut self) -> Self {
        self.bind = false;
        self
    }

    /// Hands `listener` to the server as descriptor 3 (for `--bind fd://3` or systemd
    /// activation).
    pub fn fd3(mut self, listener: std::net::TcpListener) -> Self {
        self.fd3 = Some(Arc::new(listener));
        self
    }

    /// Starts the server the way systemd socket activation does: descriptor 3 (see
    /// [`ServerBuilder::fd3`]) with `LISTEN_FDS=1` and `LISTEN_PID` set to the server's pid
    /// (through `sh -c '... exec'`, which keeps the pid).
    pub fn systemd_activation(mut self) -> Self {
        self.systemd = true;
        self
    }

    /// Starts the server with at most `limit` open files (`RLIMIT_NOFILE`, inherited by its
    /// workers), to make `accept` fail with `EMFILE`.
    pub fn open_files_limit(mut self, limit: u64) -> Self {
        self.open_files = Some(limit);
        self
    }

    /// Starts the server in a process group of its own (its pid is the group's id), as a
    /// shell's job is, so that a test can signal the whole group as a terminal's Ctrl-C does
    /// (`kill -INT -PID`) without reaching the test process.
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Returns from [`ServerBuilder::start`] without waiting for `Listening at:` on stderr
    /// (when the log goes to a file); `Server::addr` is then `127.0.0.1:0` until the test
    /// sets it.
    pub fn dont_wait_for_listening(mut self) -> Self {
        self.wait_for_listening = false;
        self
    }

    fn command(&self) -> Command {
        let program = self.program.as_deref().unwrap_or_else(|| binary());
        let mut command = if self.systemd {
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""])
                .arg(program);
            sh
        } else {
            Command::new(program)
        };
        if self.bind {
            command.args(["--bind", "127.0.0.1:0"]);
        }
        command.args(&self.args);
        command.env_remove("FERROCORN_FD");
        command.env_remove("LISTEN_FDS");
        command.env_remove("LISTEN_PID");
        command.env_remove("NOTIFY_SOCKET");
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if self.own_group {
            command.process_group(0);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let open_files = self.open_files;
        let fd3 = self.fd3.as_ref().map(|listener| {
            use std::os::fd::AsRawFd;
            listener.as_raw_fd()
        });
        // SAFETY: prctl, setrlimit, dup2 and fcntl are async-signal-safe and touch only the
        // child's own attributes and descriptor table. If the test process dies, the arbiter
        // gets SIGTERM and stops its workers.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
                if let Some(limit) = open_files {
                    use nix::sys::resource::{setrlimit, Resource};
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(io::Error::from)?;
                }
                if let Some(fd) = fd3 {
                    let rc = if fd == 3 {
                        nix::libc::fcntl(3, nix::libc::F_SETFD, 0)
                    } else {
                        nix::libc::dup2(fd, 3)
                    };
                    if rc == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        command
    }

    /// Starts the server and waits (bounded by [`START_TIMEOUT`]) for its first
    /// `Listening at:` line. Panics with the server's output when it exits or stays silent.
    pub fn start(self) -> Server {
        become_subreaper();
        let mut child = self.command().spawn().expect("spawn ferrocorn");
        let stderr = Arc::new(Captured::default());
        let stdout = Arc::new(Captured::default());
        stderr.spawn_reader(child.stderr.take().expect("piped stderr"));
        stdout.spawn_reader(child.stdout.take().expect("piped stdout"));
        let mut server = Server {
            pid: child.id() as i32,
            addr: "127.0.0.1:0".parse().expect("literal address"),
            addresses: Vec::new(),
            child,
            stderr,
            stdout,
        };
        if !self.wait_for_listening {
            return server;
        }
        let first = server
            .stderr
            .wait_for(START_TIMEOUT, |log| listening_lines(log).into_iter().next());
        let Some((address, pid)) = first else {
            let status = server.wait_exit(Duration::from_secs(2));
            panic!(
                "ferrocorn did not report `Listening at:` (exit: {status:?}); its stderr:\n{}",
                server.stderr()
            );
        };
        assert_eq!(
            pid, server.pid,
            "the Listening line names the arbiter's pid"
        );
        // Give the arbiter a moment to print the other Listening lines (same burst).
        std::thread::sleep(Duration::from_millis(20));
        server.addresses = listening_lines(&server.stderr())
            .into_iter()
            .filter(|(_, p)| *p == pid)
            .map(|(a, _)| a)
            .collect();
        if let Some(tcp) = address
            .strip_prefix("http://")
            .or_else(|| address.strip_prefix("https://"))
        {
            if let Ok(addr) = tcp.parse() {
                server.addr = addr;
            }
        }
        server
    }

    /// Runs the binary to completion (bounded by `timeout`, killed after it) and returns
    /// its exit status and stderr. For starts that must fail.
    pub fn run_to_exit(self, timeout: Duration) -> (Option<ExitStatus>, String) {
        let mut child = self.command().spawn().expect("spawn ferrocorn");
        let stderr = Arc::new(Captured::default());
        let stdout = Arc::new(Captured::default());
        let reader = stderr.spawn_reader(child.stderr.take().expect("piped stderr"));
        stdout.spawn_reader(child.stdout.take().expect("piped stdout"));
        let status = wait_child(&mut child, timeout);
        if status.is_none() {
            kill_tree(child.id() as i32, &mut child);
        }
        // The reader ends when the last holder of the pipe (workers too) is gone.
        let _ = stderr.wait_for(Duration::from_secs(5), |_| None::<()>);
        if stderr.closed.load(Ordering::SeqCst) {
            let _ = reader.join();
        }
        (status, stderr.snapshot())
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// A running `ferrocorn` arbiter. Dropping it stops the arbiter, its workers and any
/// arbiter it re-executed, by pid: SIGINT, then SIGKILL after a grace period.
#[derive(Debug)]
pub struct Server {
    /// The arbiter started by the test.
    pub pid: i32,
    /// The first TCP address it listens on.
    pub addr: SocketAddr,
    /// Every address of its `Listening at:` lines (`http://...`, `unix:...`).
    pub addresses: Vec<String>,
    child: Child,
    stderr: Arc<Captured>,
    stdout: Arc<Captured>,
}

impl Server {
    /// Under a load of three clients, runs `change` (a new config file, say), sends HUP and
    /// asserts that `workers` new workers, none of those before, take over and that no
    /// request failed.
    pub fn assert_hup_renews_workers_under_load(
        &self,
        workers: usize,
        timeout: Duration,
        change: impl FnOnce(),
    ) {
        let load = Load::start(self.addr, "/", 3);
        self.assert_hup_renews_workers_under(load, workers, timeout, change);
    }

    /// As [`Server::assert_hup_renews_workers_under_load`], under a given load (TLS
    /// clients, say).
    pub fn assert_hup_renews_workers_under(
        &self,
        load: Load,
        workers: usize,
        timeout: Duration,
        change: impl FnOnce(),
    ) {
        let before: BTreeSet<i32> = self.worker_pids().into_iter().collect();
        assert!(load.wait_for_more(20, timeout), "the load gets answers");
        change();
        self.signal(Signal::SIGHUP);
        let renewed = wait_until(timeout, || {
            let now: BTreeSet<i32> = self.worker_pids().into_iter().collect();
            now.len() == workers && now.is_disjoint(&before)
        });
        assert!(
            load.wait_for_more(20, timeout),
            "the load goes on after the reload"
        );
        let report = load.stop();
        assert!(
            renewed,
            "{workers} new workers replaced {before:?}: {:?}\n{}",
            self.worker_pids(),
            self.stderr()
        );
        report.assert_no_failures(self);
    }

    /// A builder for `ferrocorn --bind 127.0.0.1:0 ARGS...`.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            bind: true,
            fd3: None,
            systemd: false,
            wait_for_listening: true,
            open_files: None,
            own_group: false,
        }
    }

    /// Starts `ferrocorn --bind 127.0.0.1:0 ARGS...` (see [`ServerBuilder::start`]).
    pub fn start<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Server {
        Server::builder().args(args).start()
    }

    /// Everything the server (and its workers) wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.snapshot()
    }

    /// Everything written to stdout so far (the access log when it is `-`).
    pub fn stdout(&self) -> String {
        self.stdout.snapshot()
    }

    /// Waits until stderr contains `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr
            .wait_for(timeout, |log| log.contains(needle).then_some(()))
            .is_some()
    }

    /// Waits until `needle` occurs at least `count` times in stderr; false after `timeout`.
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        self.stderr
            .wait_for(timeout, |log| {
                (log.matches(needle).count() >= count).then_some(())
            })
            .is_some()
    }

    /// Sends `signal` to the arbiter.
    pub fn signal(&self, signal: Signal) {
        send_signal(self.pid, signal);
    }

    /// The arbiter's live workers: its children named [`WORKER_PROCESS_NAME`].
    pub fn worker_pids(&self) -> Vec<i32> {
        worker_pids_of(self.pid)
    }

    /// Waits until the arbiter has exactly `count` workers; false after `timeout`.
    pub fn wait_for_workers(&self, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.worker_pids().len() == count)
    }

    /// Waits for the arbiter to exit; its status, or `None` after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Sends `raw` on a new connection and reads one response.
    ///
    /// `addr` is the first TCP address; see [`unix_request`] for Unix sockets.
    pub fn request(&self, raw: &[u8]) -> io::Result<Response> {
        request(self.addr, raw)
    }

    /// `GET path` with `Connection: close` on a new connection.
    pub fn get(&self, path: &str) -> io::Result<Response> {
        get(self.addr, path)
    }

    /// The metrics endpoint's address (`--metrics-bind 127.0.0.1:0`), from the arbiter's
    /// `Serving metrics at: http://ADDR (PID)` line; `None` without one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.stderr()
            .lines()
            .filter(|line| line.contains(&format!("({})", self.pid)))
            .find_map(|line| {
                let rest = line.split("Serving metrics at: http://").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
    }

    /// Every arbiter pid this test has seen: the one it started and any that logged a
    /// `Listening at:` line since (re-executed on USR2).
    pub fn arbiter_pids(&self) -> Vec<i32> {
        let mut pids: BTreeSet<i32> = listening_lines(&self.stderr())
            .into_iter()
            .map(|(_, pid)| pid)
            .collect();
        pids.insert(self.pid);
        pids.into_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let arbiters = self.arbiter_pids();
        // Collect every process before signalling: children re-parent once a parent exits.
        let mut all: BTreeSet<i32> = BTreeSet::new();
        for &pid in &arbiters {
            all.insert(pid);
            all.extend(descendants(pid));
        }
        for &pid in &arbiters {
            if is_running(pid) {
                send_signal(pid, Signal::SIGINT);
            }
        }
        let _ = wait_until(STOP_GRACE, || {
            let _ = self.child.try_wait();
            all.iter().all(|&pid| !is_running(pid))
        });
        for &pid in &all {
            all_descendants_killed(pid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = wait_until(STOP_GRACE, || {
            all.iter().for_each(|&pid| reap(pid));
            all.iter().all(|&pid| !is_running(pid))
        });
        all.iter().for_each(|&pid| reap(pid));
    }
}

/// A fresh temporary directory for one test, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/ferrocorn-test-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ferrocorn-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `path()/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_are_parsed_in_text_and_json() {
        let log = "[t] [12] [INFO] Listening at: http://127.0.0.1:4321 (12)\n\
                   {\"fields\":{\"message\":\"Listening at: unix:/tmp/x.sock (34)\"}}\n";
        assert_eq!(
            listening_lines(log),
            vec![
                ("http://127.0.0.1:4321".to_string(), 12),
                ("unix:/tmp/x.sock".to_string(), 34)
            ]
        );
    }

    /// Regression: under CI a missing `../shared/corpus` skipped the corpus tests with a
    /// message only `--nocapture` shows, so CI passed without them. There it now fails.
    #[test]
    fn a_missing_corpus_fails_under_ci_and_skips_elsewhere() {
        let missing = std::env::temp_dir().join("ferrocorn-no-corpus-here");
        assert_eq!(find_corpus(&missing, None, false), None);
        let under_ci = std::panic::catch_unwind(|| find_corpus(&missing, None, true));
        assert!(under_ci.is_err(), "CI=true passed without the corpus");
        let shared = std::env::temp_dir().join(format!("ferrocorn-shared-{}", std::process::id()));
        std::fs::create_dir_all(shared.join("corpus")).unwrap();
        let found = find_corpus(&missing, Some(shared.clone().into_os_string()), true);
        assert_eq!(found, Some(shared.join("corpus")));
        std::fs::remove_dir_all(&shared).unwrap();
    }

    #[test]
    fn a_child_process_keeps_its_changes() {
        let before = current_umask().expect("Umask in /proc/self/status");
        in_child_process!(a_child_process_keeps_its_changes, || {
            let changed = if before == 0o077 { 0o027 } else { 0o077 };
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(changed));
            assert_eq!(current_umask(), Some(changed));
        });
        if !is_test_child() {
            assert_eq!(current_umask(), Some(before), "the child's umask leaked");
        }
    }

    #[test]
    fn a_child_process_reports_its_failure() {
        // The body panics only in the child: the parent sees its exit status and output.
        let in_child = is_test_child();
        let outcome = std::panic::catch_unwind(|| {
            in_child_process!(a_child_process_reports_its_failure, || {
                panic!("told to fail")
            })
        });
        if in_child {
            assert!(outcome.is_err(), "the body ran in the child");
            std::panic::resume_unwind(outcome.unwrap_err());
        }
        let message = outcome.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("told to fail"), "{message}");
    }

    #[test]
    fn a_misnamed_test_is_not_taken_for_a_pass() {
        let outcome = std::panic::catch_unwind(|| {
            run_in_child_process("crate::tests::no_such_test", || {});
        });
        let message = outcome.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("did not run"), "{message}");
    }

    #[test]
    fn responses_are_framed_by_length_chunks_or_close() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        let response = read_response(&mut &raw[..], false).unwrap();
        assert_eq!(
            (response.status, response.text()),
            (200, "hello".to_string())
        );

        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let response = read_response(&mut &raw[..], false).unwrap();
        assert_eq!(response.text(), "abcde");

        let raw = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nuntil close";
        let response = read_response(&mut &raw[..], false).unwrap();
        assert_eq!(
            (response.status, response.text()),
            (404, "until close".to_string())
        );
        assert_eq!(response.header("SERVER"), Some("x"));

        assert!(read_response(&mut &b"garbage\r\n\r\n"[..], false).is_err());
    }

    #[test]
    fn process_tree_helpers_see_our_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        assert!(children(std::process::id() as i32).contains(&pid));
        assert!(peak_rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(is_running(pid));
        assert_eq!(process_name(pid).as_deref(), Some("sleep"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_running(pid));
    }
}
