//! Python test support: the fixture applications under `tests/python/`, a server preset that
//! serves them, and the test virtualenv with Flask and Django (`tests/python/requirements.txt`),
//! created on first use under the cargo target directory and reused while its stamp matches.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

use crate::{profile_dir, wait_until, workspace_root, Server, ServerBuilder, TempDir};

/// The virtualenv's directory name, beside `debug/` in the cargo target directory.
const VENV_DIR_NAME: &str = "ferrocorn-test-venv";
/// The file in the virtualenv naming the Python and the requirements it was made with;
/// written last, so that a half-made virtualenv is made again.
const STAMP: &str = "ferrocorn-tests.stamp";

/// `tests/python/`: the fixture applications and `requirements.txt`.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests").join("python")
}

/// A builder for `ferrocorn --bind 127.0.0.1:0 ARGS...` run in [`fixtures_dir`], so that
/// the fixtures (`edge_app`, `pep3333_app`, ...) import from the working directory, as
/// gunicorn's applications do. What would change which Python runs or what it imports
/// (`VIRTUAL_ENV`, `PYTHONPATH`, `PYTHONHOME`, the user's site-packages) is left out of
/// the server's environment, and Python writes no `__pycache__` (`PYTHONDONTWRITEBYTECODE`):
/// nothing lands in the source tree, and a rewritten module is never read from a stale cache.
pub fn python_server() -> ServerBuilder {
    Server::builder()
        .cwd(fixtures_dir())
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
}

/// Runs `script` (in `tests/python/`) with `python` against `server` (its address as the
/// arguments); returns its stdout. A script that fails fails the test, with its output and
/// the server's log.
pub fn run_script(python: &std::ffi::OsStr, script: &str, server: &Server) -> String {
    let output = Command::new(python)
        .arg(fixtures_dir().join(script))
        .args([server.addr.ip().to_string(), server.addr.port().to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}\nserver:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    stdout
}

/// A file the fixtures append lines to (`fixture_support.record`, through the
/// `FIXTURE_RECORD` variable): how an application reports what no response can show, such
/// as `close()` being called after its client went away. Removed on drop.
#[derive(Debug)]
pub struct Record {
    dir: TempDir,
}

impl Record {
    /// A new, empty record in its own temporary directory.
    pub fn new(name: &str) -> Record {
        Record {
            dir: TempDir::new(name),
        }
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("record")
    }

    /// Sets `FIXTURE_RECORD` for a server so that its fixtures write here.
    pub fn attach(&self, builder: ServerBuilder) -> ServerBuilder {
        builder.env("FIXTURE_RECORD", &self.path().display().to_string())
    }

    /// The complete lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.path()).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Waits until a recorded line contains `needle`; false after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: std::time::Duration) -> bool {
        wait_until(timeout, || {
            self.lines().iter().any(|line| line.contains(needle))
        })
    }
}

/// The interpreter the virtualenv is made from: `$PYO3_PYTHON`, else `python3` on `PATH`,
/// which is how pyo3 picks the Python that ferrocorn embeds.
pub fn base_python() -> OsString {
    std::env::var_os("PYO3_PYTHON").unwrap_or_else(|| "python3".into())
}

/// True when [`base_python`] imports `module` without a virtualenv (on a developer's
/// machine Flask may be installed system-wide; on CI it is not).
pub fn base_python_imports(module: &str) -> bool {
    Command::new(base_python())
        .args(["-c", &format!("import {module}")])
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The test virtualenv (Flask, Django).
#[derive(Debug)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The virtualenv's root (`VIRTUAL_ENV`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server runs in the virtualenv as `source bin/activate` leaves a shell:
    /// `VIRTUAL_ENV` set and its `bin/` first on `PATH`.
    pub fn activate(&self, builder: ServerBuilder) -> ServerBuilder {
        let mut path = OsString::from(self.dir.join("bin"));
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        builder
            .env("VIRTUAL_ENV", &self.dir.display().to_string())
            .env("PATH", &path.to_string_lossy())
    }
}

/// Where the virtualenv lives: `<target dir>/ferrocorn-test-venv`, shared by every test
/// binary and `make-venv` built into the same target directory.
pub fn venv_dir() -> PathBuf {
    let profile = profile_dir();
    profile.parent().unwrap_or(&profile).join(VENV_DIR_NAME)
}

/// The test virtualenv, made on first use (see [`ensure_venv`]). When it cannot be made,
/// `None` after a loud message on stderr, and the caller skips; with `CI=true` it panics
/// instead, so that CI never passes by skipping.
pub fn test_venv() -> Option<&'static Venv> {
    static VENV: OnceLock<Result<Venv, String>> = OnceLock::new();
    match VENV.get_or_init(ensure_venv) {
        Ok(venv) => Some(venv),
        Err(error) if running_in_ci() => {
            panic!("CI=true and the test virtualenv could not be made: {error}")
        }
        Err(error) => {
            // Straight to the process's stderr: the test harness captures `eprintln!`, and a
            // skip must be seen even when the test passes.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n!!!!!!!! SKIPPED: the test virtualenv could not be made: {error} !!!!!!!!\n"
            );
            None
        }
    }
}

fn running_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Makes the virtualenv at [`venv_dir`] (`python3 -m venv`, then `pip install -r
/// tests/python/requirements.txt`) unless its stamp says it was made from the same
/// requirements and the same Python. An exclusive `flock` on `<dir>.lock` is held
/// throughout, so test threads and test binaries running at once wait for one maker
/// instead of racing it. The error names the step that failed, with its output.
pub fn ensure_venv() -> Result<Venv, String> {
    let dir = venv_dir();
    let parent = dir.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    let lock_path = parent.join(format!("{VENV_DIR_NAME}.lock"));
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    // Held until this function returns; the kernel releases it if the process dies.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| format!("lock {}: {errno}", lock_path.display()))?;

    let requirements_path = fixtures_dir().join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .map_err(|e| format!("read {}: {e}", requirements_path.display()))?;
    let python = base_python();
    let version = run(Command::new(&python).args([
        "-c",
        "import sys; print(sys.version); print(sys.base_prefix)",
    ]))?;
    let stamp = format!("{}\n{requirements}", version.trim());
    if std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|found| found == stamp) {
        return Ok(Venv { dir });
    }

    eprintln!(
        "ferrocorn-tests: making the test virtualenv {} from {}",
        dir.display(),
        requirements_path.display()
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    run(Command::new(&python).args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(dir.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements_path)
        .env_remove("PYTHONPATH"))?;
    std::fs::write(dir.join(STAMP), stamp)
        .map_err(|e| format!("write {}: {e}", dir.join(STAMP).display()))?;
    Ok(Venv { dir })
}

/// Runs `command` to completion; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
