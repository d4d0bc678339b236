//! Python applications for ferrocorn: embeds CPython through `pyo3` and serves a WSGI
//! application (PEP 3333) as a worker [`App`].
//!
//! Skeleton: the implementation lands with issue 11.

use std::path::PathBuf;
use std::sync::Arc;

use ferrocorn_worker::App;

/// How the interpreter is set up and the application found.
#[derive(Debug, Clone, Default)]
pub struct PythonOptions {
    /// Directories put on `sys.path` after the working directory (`--pythonpath`).
    pub pythonpath: Vec<PathBuf>,
    /// The virtual environment to use when none is activated (`--virtualenv`).
    pub virtualenv: Option<PathBuf>,
    /// Import the application in the arbiter before forking (`--preload`).
    pub preload: bool,
    /// The `SCRIPT_NAME` the application is mounted at (`--root-path`), without a trailing `/`.
    pub root_path: String,
    /// Application threads per worker (`wsgi.multithread` when > 1).
    pub threads: usize,
    /// Worker processes (`wsgi.multiprocess` when > 1).
    pub workers: usize,
    /// Restart the worker when a source file changes (`--reload`).
    pub reload: bool,
    /// More files whose change restarts the worker (`--reload-extra-file`).
    pub reload_extra_files: Vec<PathBuf>,
}

/// Loads the WSGI application `spec` (`module`, `module:callable`, `module:factory(args)`).
pub fn load_wsgi(spec: &str, options: &PythonOptions) -> Result<Arc<dyn App>, String> {
    let _ = options;
    Err(format!(
        "cannot load {spec:?}: Python applications are not implemented yet"
    ))
}
