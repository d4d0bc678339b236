//! The one registry from an `APP` argument to an application, used at start, by
//! `--check-config` and on every HUP; [`check`] judges an `APP` without loading it.
//!
//! - `hello`, `echo` and `static:DIR`: the built-in applications (`ferrocorn_apps`).
//! - `python:SPEC`: always a Python application, for a module that shares a built-in's
//!   name (`python:hello`, `python:static:app`).
//! - anything else is a Python WSGI application in gunicorn's form: `pkg.mod:app`, `mod`
//!   (the callable `application`), `mod:create_app()` (a factory with literal arguments).

use std::path::Path;
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

/// Judges, without loading anything, whether the settings name an application that can
/// be loaded: the built-ins by name, `static:DIR` by its directory (relative to `chdir`,
/// from the current directory), a Python application by the form of its spec
/// (`ferrocorn_python::AppSpec`). Called before anything is bound, so that a configuration
/// that cannot serve fails at once (exit code 2) instead of after the sockets are open; a
/// Python module that is missing or fails to import is only found when it is imported.
pub fn check(settings: &Settings) -> Result<(), String> {
    match kind(&settings.app) {
        Kind::Builtin => match settings.app.strip_prefix("static:") {
            Some(dir) => {
                let base = settings.chdir.as_deref().unwrap_or(Path::new("."));
                match std::fs::metadata(base.join(dir)) {
                    Ok(meta) if meta.is_dir() => Ok(()),
                    Ok(_) => Err(format!("static directory {dir:?} is not a directory")),
                    Err(e) => Err(format!("static directory {dir:?} does not exist ({e})")),
                }
            }
            None => Ok(()),
        },
        Kind::Python(spec) => check_python(spec),
    }
}

#[cfg(feature = "python")]
fn check_python(spec: &str) -> Result<(), String> {
    ferrocorn_python::AppSpec::parse(spec)
        .map(|_| ())
        .map_err(|e| format!("{e}{}", builtin_hint(spec).unwrap_or_default()))
}

#[cfg(not(feature = "python"))]
fn check_python(spec: &str) -> Result<(), String> {
    load_python(spec, &Settings::default()).map(|_| ())
}

/// Builds the application the settings name. Python applications are set up as the
/// settings say (`pythonpath`, `virtualenv`, `preload_app`, ...).
pub fn load(settings: &Settings) -> Result<Arc<dyn App>, String> {
    apply_raw_env(settings);
    match kind(&settings.app) {
        Kind::Builtin => load_builtin(&settings.app),
        Kind::Python(spec) => load_python(spec, settings),
    }
}

/// Builds a built-in application (`hello`, `echo`, `static:DIR`). Fails with a message
/// naming the argument when it is unknown or, for `static:DIR`, when DIR is not a usable
/// directory.
fn load_builtin(spec: &str) -> Result<Arc<dyn App>, String> {
    match spec {
        "hello" => Ok(Arc::new(ferrocorn_apps::Hello)),
        "echo" => Ok(Arc::new(ferrocorn_apps::Echo)),
        _ => match spec.strip_prefix("static:") {
            Some(dir) => Ok(Arc::new(ferrocorn_apps::StaticFiles::new(Path::new(dir))?)),
            None => Err(format!(
                "unknown application {spec:?}: expected hello, echo or static:DIR"
            )),
        },
    }
}

#[cfg(feature = "python")]
fn load_python(spec: &str, settings: &Settings) -> Result<Arc<dyn App>, String> {
    ferrocorn_python::load(spec, &python_options(spec, settings))
}

/// For a bare name close to a built-in's (`helo`, `statc:x`), the hint added to a failure
/// to load it as Python.
#[cfg(feature = "python")]
fn builtin_hint(spec: &str) -> Option<String> {
    let word = spec.split(':').next().unwrap_or(spec);
    let name = ferrocorn_config::closest(word, ["hello", "echo", "static"])?;
    let builtin = if name == "static" { "static:DIR" } else { name };
    Some(format!(
        " (the built-in applications are hello, echo and static:DIR: did you mean {builtin}?)"
    ))
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
use ferrocorn_config::{AsgiLifespan, AsgiLoop, WorkerClass};

#[cfg(feature = "python")]
fn python_options(spec: &str, settings: &Settings) -> ferrocorn_python::PythonOptions {
    ferrocorn_python::PythonOptions {
        pythonpath: settings.pythonpath.clone(),
        virtualenv: settings.virtualenv.clone(),
        preload: settings.preload_app,
        root_path: settings.root_path.clone(),
        threads: settings.threads,
        workers: settings.workers,
        reload: settings.reload,
        reload_extra_files: settings.reload_extra_files.clone(),
        interface: match settings.worker_class {
            WorkerClass::Asgi => ferrocorn_python::Interface::Asgi,
            // gunicorn's WSGI workers, asked for by name.
            WorkerClass::Sync | WorkerClass::Gthread => ferrocorn_python::Interface::Wsgi,
            // No `-k`: whichever the application is.
            WorkerClass::Mio => ferrocorn_python::Interface::Auto,
        },
        asgi_loop: match settings.asgi_loop {
            AsgiLoop::Auto => ferrocorn_python::AsgiLoop::Auto,
            AsgiLoop::Asyncio => ferrocorn_python::AsgiLoop::Asyncio,
            AsgiLoop::Uvloop => ferrocorn_python::AsgiLoop::Uvloop,
        },
        asgi_lifespan: match settings.asgi_lifespan {
            AsgiLifespan::Auto => ferrocorn_python::AsgiLifespan::Auto,
            AsgiLifespan::On => ferrocorn_python::AsgiLifespan::On,
            AsgiLifespan::Off => ferrocorn_python::AsgiLifespan::Off,
        },
        asgi_disconnect_grace: settings.asgi_disconnect_grace_period,
        graceful_timeout: settings.graceful_timeout,
        // A typo of a built-in's name (`helo`) fails to import, at load or in each worker:
        // the failure says which built-in was meant.
        failure_hint: builtin_hint(spec),
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

    #[test]
    fn load_builtin_knows_the_builtins() {
        assert!(load_builtin("hello").is_ok());
        assert!(load_builtin("echo").is_ok());
        assert!(load_builtin("static:.").is_ok());
        let err = load_builtin("static:/nonexistent/ferrocorn-dir")
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/ferrocorn-dir"), "{err}");
        let err = load_builtin("nope").err().unwrap();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    #[cfg(feature = "python")]
    fn near_misses_of_builtin_names_get_a_hint() {
        assert!(builtin_hint("helo")
            .unwrap()
            .contains("did you mean hello?"));
        assert!(builtin_hint("statc:x").unwrap().contains("static:DIR"));
        assert_eq!(builtin_hint("myapp:app"), None);
    }

    /// A malformed Python spec is refused without loading anything.
    #[cfg(feature = "python")]
    #[test]
    fn a_malformed_spec_is_refused_by_check() {
        let settings = |app: &str| Settings {
            app: app.to_string(),
            ..Settings::default()
        };
        assert_eq!(check(&settings("pkg.mod:app")), Ok(()));
        let error = check(&settings("pkg..mod:app")).unwrap_err();
        assert!(error.contains("is not a module name"), "{error}");
    }

    /// Bug: a `static:DIR` whose directory does not exist was found only when the arbiter
    /// loaded the app, after binding (exit code 1, `Listening at` already printed).
    #[test]
    fn bug_a_missing_static_directory_is_found_without_loading() {
        let settings = |app: &str, chdir: Option<&str>| Settings {
            app: app.to_string(),
            chdir: chdir.map(Into::into),
            ..Settings::default()
        };
        let error = check(&settings("static:/nonexistent/ferrocorn", None)).unwrap_err();
        assert!(
            error.contains("\"/nonexistent/ferrocorn\" does not exist"),
            "{error}"
        );
        assert_eq!(check(&settings("static:.", None)), Ok(()));
        // Relative to `chdir`.
        assert!(check(&settings("static:src", Some("/nonexistent/ferrocorn"))).is_err());
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(check(&settings("static:src", Some(here))), Ok(()));
        assert_eq!(check(&settings("hello", None)), Ok(()));
    }
}
