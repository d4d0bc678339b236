//! The one registry from an `APP` argument to an application, used at start, by
//! `--check-config` and on every HUP.
//!
//! - `hello`, `echo` and `static:DIR`: the built-in applications.
//! - `python:SPEC`: always a Python application, for a module that shares a built-in's
//!   name (`python:hello`, `python:static:app`).
//! - anything else is a Python WSGI application in gunicorn's form: `pkg.mod:app`, `mod`
//!   (the callable `application`), `mod:create_app()` (a factory with literal arguments).

use std::sync::Arc;

use ferrocorn_config::Settings;
use ferrocorn_worker::App;

/// What an `APP` argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Builtin,
    Python(&'a str),
}

fn kind(spec: &str) -> Kind<'_> {
    if let Some(rest) = spec.strip_prefix("python:") {
        return Kind::Python(rest);
    }
    if matches!(spec, "hello" | "echo") || spec.starts_with("static:") {
        return Kind::Builtin;
    }
    Kind::Python(spec)
}

/// Builds the application the settings name. Python applications are set up as the
/// settings say (`pythonpath`, `virtualenv`, `preload_app`, ...).
pub fn load(settings: &Settings) -> Result<Arc<dyn App>, String> {
    apply_raw_env(settings);
    match kind(&settings.app) {
        Kind::Builtin => ferrocorn_worker::load_app(&settings.app),
        Kind::Python(spec) => load_python(spec, settings),
    }
}

#[cfg(feature = "python")]
fn load_python(spec: &str, settings: &Settings) -> Result<Arc<dyn App>, String> {
    ferrocorn_python::load_wsgi(spec, &python_options(settings))
}

#[cfg(not(feature = "python"))]
fn load_python(spec: &str, _settings: &Settings) -> Result<Arc<dyn App>, String> {
    Err(format!(
        "unknown application {spec:?}: expected hello, echo or static:DIR (this ferrocorn \
         was built without Python; build it with the default `python` feature to serve \
         WSGI applications)"
    ))
}

#[cfg(feature = "python")]
fn python_options(settings: &Settings) -> ferrocorn_python::PythonOptions {
    if settings.reload && settings.preload_app {
        tracing::warn!(
            "reload with preload_app: workers restart on changes but keep the code the arbiter preloaded"
        );
    }
    ferrocorn_python::PythonOptions {
        pythonpath: settings.pythonpath.clone(),
        virtualenv: settings.virtualenv.clone(),
        preload: settings.preload_app,
        root_path: settings.root_path.clone(),
        threads: settings.threads,
        workers: settings.workers,
        reload: settings.reload,
        reload_extra_files: settings.reload_extra_files.clone(),
    }
}

/// Sets the `raw_env` variables (`-e KEY=VALUE`) in this process's environment, as
/// gunicorn does, so that the application and every worker see them. Called at start and
/// on HUP, in the single-threaded arbiter, before the application is loaded.
pub fn apply_raw_env(settings: &Settings) {
    for pair in &settings.raw_env {
        if let Some((key, value)) = pair.split_once('=') {
            std::env::set_var(key.trim(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_python_specs_are_told_apart() {
        assert_eq!(kind("hello"), Kind::Builtin);
        assert_eq!(kind("echo"), Kind::Builtin);
        assert_eq!(kind("static:."), Kind::Builtin);
        assert_eq!(kind("myapp:app"), Kind::Python("myapp:app"));
        assert_eq!(kind("pkg.mod"), Kind::Python("pkg.mod"));
        assert_eq!(kind("hello:app"), Kind::Python("hello:app"));
        assert_eq!(kind("python:hello"), Kind::Python("hello"));
        assert_eq!(kind("python:static:app"), Kind::Python("static:app"));
    }
}
