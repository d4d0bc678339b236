//! Python applications for ferrocorn: embeds CPython through `pyo3` and serves a WSGI
//! application (PEP 3333) or an ASGI 3.0 application as a worker [`App`].
//!
//! - `spec.rs`: gunicorn's `MODULE:CALLABLE` syntax, checked without Python.
//! - `venv.rs`: which virtual environment (and so which `sys.executable`) to use.
//! - `interp.rs`: the only module with `unsafe` and raw C API calls: starting the
//!   interpreter, attaching threads, the fork hooks.
//! - `loader.rs`: importing the application, and Python errors as messages.
//! - `wsgi/`: the WSGI host, called synchronously by the worker.
//! - `asgi/`: the ASGI host, one event loop thread per worker, a deferred application
//!   (`ferrocorn_worker::DeferredApp`) for the worker.
//! - `reload.rs`: `--reload`'s file watcher.
//!
//! Without `preload` the process calling [`load`] (the arbiter) never starts Python:
//! each worker starts it and imports the application in [`App::init_worker`]. With
//! `preload` the interpreter starts and the application is imported in [`load`], and
//! the fork hooks keep the interpreter consistent across each `fork`.
//!
//! Nothing here relies on the GIL to protect Rust state: shared state sits behind Rust
//! mutexes that are never held while calling into Python or waiting to attach, so the
//! design holds on free-threaded CPython builds too.

mod asgi;
mod interp;
mod loader;
mod reload;
mod spec;
mod venv;
mod wsgi;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use ferrocorn_worker::{App, DeferredApp, Request, Response};
use pyo3::prelude::*;
use pyo3::types::PyList;

pub use spec::AppSpec;

/// How the interpreter is set up and the application found.
#[derive(Debug, Clone, Default)]
pub struct PythonOptions {
    /// Directories put on `sys.path` before the working directory, the last one first
    /// (`--pythonpath`, in gunicorn's order).
    pub pythonpath: Vec<PathBuf>,
    /// The virtual environment to use when none is activated (`--virtualenv`).
    pub virtualenv: Option<PathBuf>,
    /// Import the application in the arbiter before forking (`--preload`).
    pub preload: bool,
    /// The `SCRIPT_NAME` the application is mounted at (`--root-path`), without a trailing
    /// `/`; empty: the process's `SCRIPT_NAME` variable, if any.
    pub root_path: String,
    /// Application threads per worker (`wsgi.multithread` when > 1).
    pub threads: usize,
    /// Worker processes (`wsgi.multiprocess` when > 1).
    pub workers: usize,
    /// Restart the worker when a source file changes (`--reload`).
    pub reload: bool,
    /// More files whose change restarts the worker (`--reload-extra-file`).
    pub reload_extra_files: Vec<PathBuf>,
    /// WSGI, ASGI, or whichever the application is (`-k asgi`, `-k sync`, no `-k`).
    pub interface: Interface,
    /// The ASGI event loop (`--asgi-loop`).
    pub asgi_loop: AsgiLoop,
    /// The ASGI lifespan protocol (`--asgi-lifespan`).
    pub asgi_lifespan: AsgiLifespan,
    /// How long an ASGI application may go on after its client went away before it is
    /// cancelled (`--asgi-disconnect-grace-period`).
    pub asgi_disconnect_grace: Duration,
    /// How long a stopping worker waits for the ASGI lifespan shutdown (`graceful_timeout`).
    pub graceful_timeout: Duration,
    /// Added to every failure to load or start the application, where it is reported (at
    /// load, or in each worker): the caller's hint, such as a built-in's name close to
    /// the one given.
    pub failure_hint: Option<String>,
}

impl PythonOptions {
    /// `error` with the failure hint after it.
    fn hinted(&self, error: String) -> String {
        match &self.failure_hint {
            Some(hint) => format!("{error}{hint}"),
            None => error,
        }
    }
}

/// The interface a Python application is served with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Interface {
    /// ASGI for an `async def app(scope, receive, send)` or an object whose `__call__` is
    /// a coroutine function, WSGI otherwise.
    #[default]
    Auto,
    /// PEP 3333.
    Wsgi,
    /// ASGI 3.0.
    Asgi,
}

/// The asyncio event loop of the ASGI host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AsgiLoop {
    /// uvloop when it is installed, else asyncio's.
    #[default]
    Auto,
    /// asyncio's own loop.
    Asyncio,
    /// uvloop; a worker without it fails to start.
    Uvloop,
}

/// Whether the ASGI lifespan protocol runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AsgiLifespan {
    /// Run it unless the application raises on the `lifespan` scope before any message.
    #[default]
    Auto,
    /// Run it; a failure stops the worker's start.
    On,
    /// Do not run it.
    Off,
}

/// Loads the Python application `spec` (`module`, `module:callable`, `module:obj.attr`,
/// `module:factory(literal args)`), served as `options.interface` says.
///
/// The spec's syntax is always checked here. Without `options.preload` nothing else
/// happens in this process: each worker starts Python and imports the application in
/// [`App::init_worker`], whose error then names the module or attribute and the Python
/// exception. With `preload`, Python starts and the application is imported now, so an
/// import error is returned from here.
pub fn load(spec: &str, options: &PythonOptions) -> Result<Arc<dyn App>, String> {
    load_unhinted(spec, options).map_err(|e| options.hinted(e))
}

fn load_unhinted(spec: &str, options: &PythonOptions) -> Result<Arc<dyn App>, String> {
    let spec = AppSpec::parse(spec)?;
    let app = PythonApp {
        spec,
        options: options.clone(),
        host: OnceLock::new(),
    };
    if options.preload {
        if options.reload {
            // The workers run the code imported here; restarting them re-imports nothing.
            tracing::warn!(
                "--reload has no effect with --preload: workers restart on a change but run \
                 the code the arbiter imported"
            );
        }
        let host = app.import()?;
        let _ = app.host.set(host);
    }
    Ok(Arc::new(app))
}

/// A Python application as a worker [`App`]: WSGI (called by the worker) or ASGI (a
/// deferred application with its own event loop thread).
#[derive(Debug)]
pub struct PythonApp {
    spec: AppSpec,
    options: PythonOptions,
    /// Set once the application is imported (in the arbiter with `preload`, else in the
    /// worker); a forked worker inherits it.
    host: OnceLock<Hosted>,
}

/// The host of an imported application.
#[derive(Debug, Clone)]
enum Hosted {
    Wsgi(Arc<wsgi::Host>),
    Asgi(Arc<asgi::Host>),
}

impl PythonApp {
    /// What a worker does before it serves: imports the application (unless preloaded),
    /// starts the WSGI host's threads, and the reloader under `reload`.
    fn start_worker(&self) -> Result<(), String> {
        let since = std::time::SystemTime::now();
        let host = match self.host.get() {
            Some(host) => host.clone(),
            None => {
                let host = self.import()?;
                self.host.get_or_init(|| host).clone()
            }
        };
        if let Hosted::Wsgi(host) = host {
            host.start_worker()?;
        }
        if self.options.reload {
            reload::start(self.options.reload_extra_files.clone(), since)?;
        }
        Ok(())
    }

    /// Starts Python in this process if needed, imports the application and chooses its
    /// interface.
    fn import(&self) -> Result<Hosted, String> {
        start_python(&self.options)?;
        interp::attach(|py| {
            let app = loader::import_app(py, &self.spec)?;
            let asgi = match self.options.interface {
                Interface::Wsgi => false,
                Interface::Asgi => true,
                Interface::Auto => asgi::is_asgi(py, &app).map_err(|e| {
                    format!(
                        "cannot inspect '{}': {}",
                        self.spec,
                        loader::describe(py, &e)
                    )
                })?,
            };
            if asgi && self.options.asgi_loop == AsgiLoop::Uvloop {
                // Judged here, at the import, so that `--check-config` (which imports)
                // finds it too, not only the event loop thread of a booting worker.
                py.import("uvloop").map_err(|e| {
                    format!(
                        "asgi_loop is uvloop, but uvloop cannot be imported ({}): install it \
                         in the virtualenv, or set asgi_loop to auto (uvloop when installed) \
                         or asyncio",
                        loader::describe(py, &e)
                    )
                })?;
            }
            if asgi {
                tracing::info!(
                    "serving '{}' as an ASGI 3.0 application ({})",
                    self.spec,
                    match self.options.interface {
                        Interface::Asgi => "worker_class asgi",
                        _ => "a coroutine function: detected",
                    }
                );
                let o = &self.options;
                let setup = asgi::Setup {
                    root_path: script_name(&o.root_path),
                    event_loop: match o.asgi_loop {
                        AsgiLoop::Auto => "auto",
                        AsgiLoop::Asyncio => "asyncio",
                        AsgiLoop::Uvloop => "uvloop",
                    },
                    lifespan: match o.asgi_lifespan {
                        AsgiLifespan::Auto => "auto",
                        AsgiLifespan::On => "on",
                        AsgiLifespan::Off => "off",
                    },
                    disconnect_grace: o.asgi_disconnect_grace,
                    stop_timeout: o.graceful_timeout,
                };
                return Ok(Hosted::Asgi(Arc::new(asgi::Host::new(app.unbind(), setup))));
            }
            if self.options.interface == Interface::Auto {
                tracing::info!("serving '{}' as a WSGI application", self.spec);
            }
            let setup = wsgi::Setup {
                script_name: script_name(&self.options.root_path),
                multithread: self.options.threads > 1,
                multiprocess: self.options.workers > 1,
            };
            let host =
                wsgi::Host::new(py, app, &setup, self.options.threads.max(1)).map_err(|e| {
                    format!("cannot prepare the WSGI host: {}", loader::describe(py, &e))
                })?;
            Ok(Hosted::Wsgi(Arc::new(host)))
        })
    }
}

/// `SCRIPT_NAME`: `--root-path`, else the process's `SCRIPT_NAME` (as gunicorn reads it).
fn script_name(root_path: &str) -> String {
    let name = if root_path.is_empty() {
        std::env::var("SCRIPT_NAME").unwrap_or_default()
    } else {
        root_path.to_owned()
    };
    name.trim_end_matches('/').to_owned()
}

/// Starts the interpreter (once per process) with the virtual environment the options
/// and the environment name, and puts the `pythonpath` entries (the last one given first),
/// then the working directory, first on `sys.path`, as gunicorn orders them.
fn start_python(options: &PythonOptions) -> Result<(), String> {
    let venv = venv::find(
        options.virtualenv.as_deref(),
        std::env::var_os("VIRTUAL_ENV").as_deref(),
        std::env::var_os("PATH").as_deref(),
    );
    let program = match &venv {
        Some(dir) => venv::program(dir)?,
        None => PathBuf::from(venv::BUILD_PYTHON),
    };
    let argv: Vec<OsString> = std::env::args_os().collect();
    if interp::start(&program, &argv)? {
        match &venv {
            Some(dir) => tracing::debug!("Python started in virtualenv {}", dir.display()),
            None => tracing::debug!("Python started as {}", program.display()),
        }
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    // gunicorn's order: the working directory goes to the front, then each `pythonpath`
    // entry in turn, so the last one given comes first.
    let mut paths: Vec<PathBuf> = options
        .pythonpath
        .iter()
        .rev()
        .map(|d| absolute(d))
        .collect();
    paths.push(cwd);
    interp::attach(|py| set_sys_path(py, &paths)).map_err(|e| format!("cannot set sys.path: {e}"))
}

fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Puts `paths` first on `sys.path`, in order, each once.
fn set_sys_path(py: Python<'_>, paths: &[PathBuf]) -> PyResult<()> {
    let sys_path = py.import("sys")?.getattr("path")?;
    let sys_path = sys_path.cast::<PyList>()?;
    for (i, dir) in paths.iter().enumerate() {
        let dir = dir.to_string_lossy();
        while let Ok(at) = sys_path.index(&*dir) {
            sys_path.del_item(at)?;
        }
        sys_path.insert(i, &*dir)?;
    }
    Ok(())
}

impl App for PythonApp {
    fn call(&self, request: &mut Request, response: &mut Response) {
        match self.host.get() {
            Some(Hosted::Wsgi(host)) => host.call(request, response),
            _ => {
                tracing::error!("the WSGI application {} is not loaded", self.spec);
                response.plain(500, "internal server error\n");
            }
        }
    }

    fn init_worker(&self) -> Result<(), String> {
        self.start_worker().map_err(|e| self.options.hinted(e))
    }

    fn deferred(&self) -> Option<&dyn DeferredApp> {
        match self.host.get() {
            Some(Hosted::Asgi(host)) => Some(&**host),
            _ => None,
        }
    }

    fn exit_worker(&self) {
        if !interp::is_started() {
            return;
        }
        if let Some(Hosted::Asgi(host)) = self.host.get() {
            // The lifespan shutdown, not attached meanwhile.
            host.stop();
        }
        interp::attach(|py| {
            let run = py
                .import("atexit")
                .and_then(|atexit| atexit.call_method0("_run_exitfuncs"));
            if let Err(e) = run {
                tracing::error!("atexit handlers failed\n{}", loader::traceback(py, &e));
            }
            if let Ok(sys) = py.import("sys") {
                for stream in ["stdout", "stderr"] {
                    if let Ok(s) = sys.getattr(stream) {
                        let _ = s.call_method0("flush");
                    }
                }
            }
        });
    }

    fn before_fork(&self) {
        interp::before_fork();
    }

    fn after_fork_parent(&self) {
        interp::after_fork_parent();
    }

    fn after_fork_child(&self) {
        interp::after_fork_child();
    }
}

#[cfg(test)]
mod tests;
