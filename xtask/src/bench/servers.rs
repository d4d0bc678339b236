//! The servers under test: how each is installed or found, configured under `.bench/`,
//! started on 127.0.0.1 with the same number of workers, and stopped by pid.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::fixtures::{nginx_conf, TLS_CERT, TLS_KEY};
use super::procfs::{process_tree, ProcStat};
use super::scenario::AppKind;

/// Workers per server, the same for all.
pub const WORKERS: usize = 2;
/// gunicorn's `gthread` worker threads.
pub const GTHREAD_THREADS: usize = 4;
/// The gunicorn release the task installs into `.bench/venv`.
pub const GUNICORN_PIN: &str = "gunicorn==27.0.1";
/// The granian release installed beside it (issue 11 asks for granian 2.8).
pub const GRANIAN_PIN: &str = "granian==2.8.9";
/// uvicorn with what `uvicorn[standard]` brings for speed (issue 16: uvloop and httptools).
pub const UVICORN_PINS: [&str; 3] = ["uvicorn==0.55.0", "uvloop==0.23.0", "httptools==0.9.0"];

/// How granian runs the WSGI app, for the report. If its command line changes, change this.
pub const GRANIAN_THREADING: &str = "granian runs with its default threading, as a user who \
    only names the interface and the workers gets it: per worker one Rust runtime thread \
    (`--runtime-threads 1`, `--runtime-mode mt` for WSGI) and the WSGI calls on a pool of \
    blocking threads that grows on demand up to `--blocking-threads`, by default \
    backpressure / 2 = (backlog 1024 / 2 workers) / 2 = 256, each idle one kept 30 s; \
    the threads take turns on the GIL. It is granian's own choice and the configuration \
    its users run; how other `--blocking-threads` values fare is in \"What limits it\".";

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server the bench knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    Ferrocorn,
    Nginx,
    GunicornGthread,
    GunicornSync,
    /// granian (Rust, hyper and tokio) with its WSGI or ASGI interface; it runs only the
    /// Python apps.
    Granian,
    /// uvicorn with uvloop and httptools; it runs only the ASGI apps.
    Uvicorn,
    /// gunicorn 27's `asgi` worker; it runs only the ASGI apps.
    GunicornAsgi,
}

impl ServerKind {
    /// All servers, in the order they run and print.
    pub const ALL: [ServerKind; 7] = [
        ServerKind::Ferrocorn,
        ServerKind::Nginx,
        ServerKind::GunicornGthread,
        ServerKind::GunicornSync,
        ServerKind::Granian,
        ServerKind::Uvicorn,
        ServerKind::GunicornAsgi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ferrocorn => "ferrocorn",
            ServerKind::Nginx => "nginx",
            ServerKind::GunicornGthread => "gunicorn-gthread",
            ServerKind::GunicornSync => "gunicorn-sync",
            ServerKind::Granian => "granian",
            ServerKind::Uvicorn => "uvicorn",
            ServerKind::GunicornAsgi => "gunicorn-asgi",
        }
    }

    pub fn by_name(name: &str) -> Option<ServerKind> {
        ServerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this server has an equivalent of `app`. nginx has no echo without a module
    /// and runs no Python; granian runs only the WSGI apps.
    pub fn serves(self, app: AppKind) -> bool {
        match self {
            ServerKind::Nginx => matches!(
                app,
                AppKind::Hello | AppKind::Static | AppKind::TlsHello | AppKind::TlsStatic
            ),
            ServerKind::Granian => app.is_wsgi(),
            ServerKind::Uvicorn | ServerKind::GunicornAsgi => app.is_asgi(),
            // Their TLS is Python's ssl module; the TLS scenarios compare with nginx.
            ServerKind::GunicornGthread | ServerKind::GunicornSync => {
                !app.is_asgi() && !app.is_tls()
            }
            ServerKind::Ferrocorn => true,
        }
    }

    /// Whether one process tree serves all the apps that are not WSGI apps (by path), or
    /// one is started per app. A WSGI app always gets a process tree of its own, so that
    /// every server runs the same Python module and its workers' memory is its own.
    fn one_instance_for_builtin_apps(self) -> bool {
        self != ServerKind::Ferrocorn
    }
}

/// The paths of the bench's working directory, `.bench/` at the project root.
#[derive(Debug, Clone)]
pub struct BenchDir {
    /// The project root: the working directory of every command the bench runs.
    pub root: PathBuf,
}

impl BenchDir {
    /// `.bench` relative to the project root, as written in commands.
    pub fn rel(&self, sub: &str) -> PathBuf {
        Path::new(".bench").join(sub)
    }

    pub fn abs(&self, sub: &str) -> PathBuf {
        self.root.join(self.rel(sub))
    }
}

/// A server ready to be started: its program and version.
#[derive(Debug, Clone)]
pub struct Installed {
    pub kind: ServerKind,
    /// The program, relative to the project root where it lives inside it.
    pub program: PathBuf,
    pub version: String,
}

/// Runs `program args` in `cwd` and returns its stdout and stderr, or why it failed.
fn capture(program: &Path, args: &[&str], cwd: &Path) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "`{} {}` failed with {}: {}",
            program.display(),
            args.join(" "),
            output.status,
            text.trim()
        );
    }
    Ok(text.trim().to_string())
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The commands that build or install the servers, for the report.
pub fn setup_commands() -> Vec<String> {
    vec![
        "cargo build --release -p ferrocorn".to_string(),
        format!(
            "python3 -m venv .bench/venv && .bench/venv/bin/pip install {GUNICORN_PIN} {GRANIAN_PIN}"
        ),
        "apt-get install -y nginx wrk   # where missing, as root".to_string(),
    ]
}

/// Builds ferrocorn in release mode.
pub fn install_ferrocorn(dir: &BenchDir, cargo: Command) -> Result<Installed> {
    let mut build = cargo;
    build.args(["build", "--release", "-p", "ferrocorn"]);
    eprintln!("xtask: running {build:?}");
    let status = build.status().context("could not start cargo")?;
    if !status.success() {
        bail!("`cargo build --release -p ferrocorn` failed with {status}");
    }
    let program = PathBuf::from("target/release/ferrocorn");
    let mut version = capture(&dir.root.join(&program), &["--version"], &dir.root)?;
    if let Ok(commit) = capture(
        Path::new("git"),
        &["rev-parse", "--short", "HEAD"],
        &dir.root,
    ) {
        let dirty = capture(
            Path::new("git"),
            &["status", "--porcelain", "--untracked-files=no"],
            &dir.root,
        )
        .is_ok_and(|changes| !changes.is_empty());
        let changes = if dirty {
            ", with uncommitted changes"
        } else {
            ""
        };
        version = format!("{version} (commit {commit}{changes})");
    }
    Ok(Installed {
        kind: ServerKind::Ferrocorn,
        program,
        version,
    })
}

/// Creates `.bench/venv` with `python3 -m venv` unless it exists, and installs `pin`
/// (`name==version`) into it unless `program --version` already names that version.
fn pip_install(dir: &BenchDir, program: &Path, pin: &str) -> Result<()> {
    let venv = dir.rel("venv");
    let version = pin.split_once("==").map_or(pin, |(_, version)| version);
    let current = capture(&dir.root.join(program), &["--version"], &dir.root).ok();
    if current.as_deref().is_some_and(|v| v.contains(version)) {
        return Ok(());
    }
    eprintln!("xtask: installing {pin} into {}", venv.display());
    if !dir.root.join(venv.join("bin/pip")).is_file() {
        capture(
            Path::new("python3"),
            &["-m", "venv", &venv.to_string_lossy()],
            &dir.root,
        )
        .context("could not create the virtual environment (python3 -m venv)")?;
    }
    capture(
        &dir.root.join(venv.join("bin/pip")),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--timeout",
            "20",
            "--retries",
            "1",
            pin,
        ],
        &dir.root,
    )
    .with_context(|| format!("could not pip install {pin}"))?;
    Ok(())
}

/// `program --version` followed by the venv's Python version.
fn venv_version(dir: &BenchDir, program: &Path) -> Result<String> {
    let python = capture(
        &dir.root.join(dir.rel("venv").join("bin/python")),
        &["--version"],
        &dir.root,
    )?;
    let version = capture(&dir.root.join(program), &["--version"], &dir.root)?;
    Ok(format!("{version} on {python}"))
}

/// Installs the pinned gunicorn into `.bench/venv` unless it is there already.
pub fn install_gunicorn(dir: &BenchDir) -> Result<(Installed, Installed)> {
    let gunicorn = dir.rel("venv").join("bin/gunicorn");
    pip_install(dir, &gunicorn, GUNICORN_PIN)?;
    let version = venv_version(dir, &gunicorn)?;
    let installed = |kind| Installed {
        kind,
        program: gunicorn.clone(),
        version: version.clone(),
    };
    Ok((
        installed(ServerKind::GunicornGthread),
        installed(ServerKind::GunicornSync),
    ))
}

/// Installs the pinned granian into `.bench/venv` unless it is there already.
pub fn install_granian(dir: &BenchDir) -> Result<Installed> {
    let granian = dir.rel("venv").join("bin/granian");
    pip_install(dir, &granian, GRANIAN_PIN)?;
    Ok(Installed {
        kind: ServerKind::Granian,
        version: venv_version(dir, &granian)?,
        program: granian,
    })
}

/// Installs the pinned uvicorn, uvloop and httptools into `.bench/venv` unless there.
pub fn install_uvicorn(dir: &BenchDir) -> Result<Installed> {
    let uvicorn = dir.rel("venv").join("bin/uvicorn");
    for pin in UVICORN_PINS {
        if !venv_has(dir, pin) {
            // A program that does not exist: `pip_install` installs the pin.
            pip_install(dir, Path::new("/nonexistent"), pin)?;
        }
    }
    Ok(Installed {
        kind: ServerKind::Uvicorn,
        version: venv_version(dir, &uvicorn)?,
        program: uvicorn,
    })
}

/// Whether `.bench/venv` has the package at the version `pin` names.
fn venv_has(dir: &BenchDir, pin: &str) -> bool {
    capture(
        &dir.root.join(dir.rel("venv").join("bin/pip")),
        &["freeze", "--disable-pip-version-check"],
        &dir.root,
    )
    .is_ok_and(|frozen| frozen.lines().any(|l| l.eq_ignore_ascii_case(pin)))
}

/// Finds nginx on PATH.
pub fn find_nginx(dir: &BenchDir) -> Result<Installed> {
    let Some(program) = which("nginx") else {
        bail!("nginx is not installed (apt-get install -y nginx)");
    };
    let version = capture(&program, &["-v"], &dir.root)?;
    Ok(Installed {
        kind: ServerKind::Nginx,
        program,
        version,
    })
}

/// A free port on 127.0.0.1 (bound, then released for the server to bind).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("could not bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The apps one started process tree of `kind` serves.
pub fn instance_apps(kind: ServerKind, wanted: &[AppKind]) -> Vec<Vec<AppKind>> {
    let (wsgi, builtin): (Vec<AppKind>, Vec<AppKind>) = wanted
        .iter()
        .copied()
        .filter(|a| kind.serves(*a))
        .partition(|a| a.is_wsgi());
    // TLS apps listen on a port of their own.
    let (tls, builtin): (Vec<AppKind>, Vec<AppKind>) =
        builtin.into_iter().partition(|a| a.is_tls());
    let mut instances = Vec::new();
    for group in [builtin, tls] {
        if kind.one_instance_for_builtin_apps() && !group.is_empty() {
            instances.push(group);
        } else {
            instances.extend(group.into_iter().map(|a| vec![a]));
        }
    }
    instances.extend(wsgi.into_iter().map(|a| vec![a]));
    instances
}

/// The arguments after `--bind ADDR` with which ferrocorn serves `app`. A WSGI app is
/// imported from `.bench/wsgi` (`--chdir`, which puts it first on `sys.path` as gunicorn
/// does) and called on the event loop's thread (`--threads 1`).
pub fn ferrocorn_app_args(app: AppKind, dir: &BenchDir) -> Vec<String> {
    match app {
        AppKind::Hello => vec!["hello".into()],
        AppKind::Echo => vec!["echo".into()],
        AppKind::Static => vec![format!("static:{}", dir.rel("static").display())],
        AppKind::TlsHello | AppKind::TlsStatic => {
            let mut args = vec![
                "--certfile".into(),
                dir.rel("tls").join(TLS_CERT).display().to_string(),
                "--keyfile".into(),
                dir.rel("tls").join(TLS_KEY).display().to_string(),
            ];
            let plain = if app == AppKind::TlsHello {
                AppKind::Hello
            } else {
                AppKind::Static
            };
            args.extend(ferrocorn_app_args(plain, dir));
            args
        }
        AppKind::WsgiHello | AppKind::WsgiEcho | AppKind::AsgiHello => vec![
            "--threads".into(),
            "1".into(),
            "--chdir".into(),
            dir.rel("wsgi").display().to_string(),
            app.wsgi_target().unwrap_or_default().into(),
        ],
    }
}

/// The command line that starts `installed` on `port` serving `apps`, run in the project root.
pub fn command_line(
    installed: &Installed,
    apps: &[AppKind],
    port: u16,
    dir: &BenchDir,
) -> Vec<String> {
    let program = installed.program.display().to_string();
    let bind = format!("127.0.0.1:{port}");
    let workers = WORKERS.to_string();
    match installed.kind {
        ServerKind::Ferrocorn => {
            let app = apps.first().copied().unwrap_or(AppKind::Hello);
            let mut args = vec![program, "--workers".into(), workers, "--bind".into(), bind];
            args.extend(ferrocorn_app_args(app, dir));
            args
        }
        ServerKind::GunicornSync | ServerKind::GunicornGthread | ServerKind::GunicornAsgi => {
            let mut args = vec![program, "--workers".into(), workers];
            if installed.kind == ServerKind::GunicornSync {
                args.extend(["--worker-class".into(), "sync".into()]);
            } else if installed.kind == ServerKind::GunicornAsgi {
                args.extend(["--worker-class".into(), "asgi".into()]);
            } else {
                args.extend([
                    "--worker-class".into(),
                    "gthread".into(),
                    "--threads".into(),
                    GTHREAD_THREADS.to_string(),
                ]);
            }
            args.extend([
                "--bind".into(),
                bind,
                // gunicorn 27 otherwise puts a control socket in ~/.gunicorn, shared by
                // both instances and outside .bench.
                "--no-control-socket".into(),
                "--chdir".into(),
                dir.rel("wsgi").display().to_string(),
                wsgi_target(apps).into(),
            ]);
            args
        }
        // Its default threading, see `GRANIAN_THREADING`.
        ServerKind::Granian => vec![
            program,
            "--interface".into(),
            if apps.iter().any(|a| a.is_asgi()) {
                "asgi".into()
            } else {
                "wsgi".into()
            },
            "--workers".into(),
            workers,
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--working-dir".into(),
            dir.rel("wsgi").display().to_string(),
            wsgi_target(apps).into(),
        ],
        // uvloop and httptools named, so that a missing one fails instead of falling back;
        // no access log, as the others run.
        ServerKind::Uvicorn => vec![
            program,
            "--workers".into(),
            workers,
            "--loop".into(),
            "uvloop".into(),
            "--http".into(),
            "httptools".into(),
            "--no-access-log".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--app-dir".into(),
            dir.rel("wsgi").display().to_string(),
            wsgi_target(apps).into(),
        ],
        ServerKind::Nginx => vec![
            program,
            "-p".into(),
            format!("{}/", dir.rel(nginx_prefix(apps)).display()),
            "-c".into(),
            "nginx.conf".into(),
            "-e".into(),
            "stderr".into(),
        ],
    }
}

/// nginx's prefix directory for `apps` (one per instance: each has its pid file).
fn nginx_prefix(apps: &[AppKind]) -> &'static str {
    if apps.iter().any(|a| a.is_tls()) {
        "nginx-tls"
    } else {
        "nginx"
    }
}

/// The WSGI application a Python server runs for `apps`: the WSGI app's own module, or
/// `bench_app:app`, which answers the built-in apps' requests by path.
fn wsgi_target(apps: &[AppKind]) -> &'static str {
    apps.iter()
        .find_map(|a| a.wsgi_target())
        .unwrap_or("bench_app:app")
}

/// A started server: its process tree is stopped (TERM, then KILL by pid) when dropped.
#[derive(Debug)]
pub struct Instance {
    pub kind: ServerKind,
    pub apps: Vec<AppKind>,
    pub addr: SocketAddr,
    pub command: Vec<String>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    /// Starts `installed` serving `apps` and waits until it answers and has forked its
    /// workers. Fails with the tail of its log when it exits or does not answer in time.
    pub fn start(installed: &Installed, apps: &[AppKind], dir: &BenchDir) -> Result<Instance> {
        let port = free_port()?;
        if installed.kind == ServerKind::Nginx {
            let root = nix::unistd::geteuid().is_root();
            let conf = dir.abs(nginx_prefix(apps)).join("nginx.conf");
            let tls = apps.iter().any(|a| a.is_tls()).then(|| dir.abs("tls"));
            fs::write(
                &conf,
                nginx_conf(port, &dir.abs("static"), root, tls.as_deref()),
            )
            .with_context(|| format!("could not write {}", conf.display()))?;
        }
        let command = command_line(installed, apps, port, dir);
        let names: Vec<&str> = apps.iter().map(|a| a.name()).collect();
        let log_name = format!("{}-{}", installed.kind.name(), names.join("+"));
        Instance::launch(
            installed.kind,
            apps,
            command,
            port,
            &log_name,
            dir,
            WORKERS,
            START_TIMEOUT,
        )
    }

    /// Runs `command` (its program relative to the project root when it holds a `/`) as a
    /// server of `kind` on `port` and waits up to `timeout` until it answers with `workers`
    /// workers. Its output goes to `.bench/logs/<log_name>.log`.
    #[allow(clippy::too_many_arguments)]
    pub fn launch(
        kind: ServerKind,
        apps: &[AppKind],
        command: Vec<String>,
        port: u16,
        log_name: &str,
        dir: &BenchDir,
        workers: usize,
        timeout: Duration,
    ) -> Result<Instance> {
        let log = dir.abs("logs").join(format!("{log_name}.log"));
        let log_file = fs::File::create(&log)
            .with_context(|| format!("could not create {}", log.display()))?;
        let program = Path::new(&command[0]);
        let program = if program.is_relative() && command[0].contains('/') {
            dir.root.join(program)
        } else {
            program.to_path_buf()
        };
        let child = Command::new(program)
            .args(&command[1..])
            .current_dir(&dir.root)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("could not start {}", command.join(" ")))?;
        let mut instance = Instance {
            kind,
            apps: apps.to_vec(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            command,
            log,
            child: Some(child),
        };
        instance.wait_ready(workers, timeout)?;
        Ok(instance)
    }

    /// The pid of the process the bench started (arbiter, master).
    pub fn root_pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The server's processes now, root first.
    pub fn processes(&self) -> Vec<ProcStat> {
        process_tree(self.root_pid())
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn wait_ready(&mut self, workers: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "{} exited with {status} at start:\n{}",
                    self.command.join(" "),
                    self.log_tail()
                );
            }
            // Answered, and every worker forked (the root plus `workers` processes).
            if probe(self.addr) && self.processes().len() > workers {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer with {workers} workers within {timeout:?}:\n{}",
                    self.command.join(" "),
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a server on `addr` answers one GET with an HTTP response.
fn probe(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1."))
    };
    attempt().unwrap_or(false)
}

impl Drop for Instance {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let tree = process_tree(child.id());
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        // Workers the root did not take down with it: kill them by pid, if still our tree's.
        for process in tree.iter().skip(1) {
            let alive = process_tree(process.pid)
                .first()
                .is_some_and(|p| p.ppid == process.ppid || p.ppid == 1);
            if alive {
                let _ = kill(Pid::from_raw(process.pid as i32), Signal::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> BenchDir {
        BenchDir {
            root: PathBuf::from("/project"),
        }
    }

    #[test]
    fn nginx_has_no_echo_and_one_instance() {
        let all = AppKind::ALL;
        assert_eq!(
            instance_apps(ServerKind::Nginx, &all),
            vec![
                vec![AppKind::Hello, AppKind::Static],
                vec![AppKind::TlsHello, AppKind::TlsStatic]
            ]
        );
        assert_eq!(instance_apps(ServerKind::Ferrocorn, &all).len(), 8);
        assert!(instance_apps(ServerKind::Nginx, &[AppKind::Echo]).is_empty());
    }

    #[test]
    fn every_wsgi_app_gets_a_process_tree_of_its_own() {
        use AppKind::*;
        assert_eq!(
            instance_apps(ServerKind::GunicornGthread, &AppKind::ALL),
            vec![vec![Hello, Static, Echo], vec![WsgiHello], vec![WsgiEcho]]
        );
        assert_eq!(
            instance_apps(ServerKind::Granian, &AppKind::ALL),
            vec![vec![WsgiHello], vec![WsgiEcho], vec![AsgiHello]]
        );
        assert!(instance_apps(ServerKind::Nginx, &[WsgiHello]).is_empty());
        // The ASGI app only where ASGI runs.
        assert_eq!(
            instance_apps(ServerKind::Uvicorn, &AppKind::ALL),
            vec![vec![AsgiHello]]
        );
        assert_eq!(
            instance_apps(ServerKind::GunicornAsgi, &AppKind::ALL),
            vec![vec![AsgiHello]]
        );
    }

    #[test]
    fn commands_use_the_same_worker_count() {
        let installed = |kind, program: &str| Installed {
            kind,
            program: PathBuf::from(program),
            version: String::new(),
        };
        let ferro = command_line(
            &installed(ServerKind::Ferrocorn, "target/release/ferrocorn"),
            &[AppKind::Static],
            8000,
            &dir(),
        );
        assert_eq!(
            ferro.join(" "),
            "target/release/ferrocorn --workers 2 --bind 127.0.0.1:8000 static:.bench/static"
        );
        let gthread = command_line(
            &installed(ServerKind::GunicornGthread, ".bench/venv/bin/gunicorn"),
            &[AppKind::Hello],
            8001,
            &dir(),
        );
        assert_eq!(
            gthread.join(" "),
            ".bench/venv/bin/gunicorn --workers 2 --worker-class gthread --threads 4 \
             --bind 127.0.0.1:8001 --no-control-socket --chdir .bench/wsgi bench_app:app"
        );
    }

    #[test]
    fn every_server_runs_the_same_wsgi_module() {
        let installed = |kind, program: &str| Installed {
            kind,
            program: PathBuf::from(program),
            version: String::new(),
        };
        let line = |kind, program, app| {
            command_line(&installed(kind, program), &[app], 8000, &dir()).join(" ")
        };
        assert_eq!(
            line(
                ServerKind::Ferrocorn,
                "target/release/ferrocorn",
                AppKind::WsgiHello
            ),
            "target/release/ferrocorn --workers 2 --bind 127.0.0.1:8000 --threads 1 \
             --chdir .bench/wsgi wsgi_hello:app"
        );
        assert!(line(
            ServerKind::GunicornSync,
            ".bench/venv/bin/gunicorn",
            AppKind::WsgiEcho
        )
        .ends_with("--chdir .bench/wsgi wsgi_echo:app"));
        assert_eq!(
            line(
                ServerKind::Granian,
                ".bench/venv/bin/granian",
                AppKind::WsgiHello
            ),
            ".bench/venv/bin/granian --interface wsgi --workers 2 --host 127.0.0.1 --port 8000 \
             --working-dir .bench/wsgi wsgi_hello:app"
        );
    }
}
