//! The one registry from an `APP` argument to an application, used at start, by
//! `--check-config` and on every HUP.
//!
//! - `hello`, `echo` and `static:DIR`: the built-in applications.
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
/// from the current directory), a Python application by the form of its spec. Called
/// before anything is bound, so that a configuration that cannot serve fails at once
/// (exit code 2) instead of after the sockets are open; a Python module that is missing
/// or fails to import is only found when it is imported.
pub fn check(settings: &Settings) -> Result<(), String> {
    match kind(&settings.app) {
        Kind::Builtin => match settings.app.strip_prefix("static:") {
            Some(dir) => {
                let base = settings.chdir.as_deref().unwrap_or(Path::new("."));
                let path = base.join(dir);
                match std::fs::metadata(&path) {
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
    check_wsgi_spec(spec)
}

#[cfg(not(feature = "python"))]
fn check_python(spec: &str) -> Result<(), String> {
    load_python(spec, &Settings::default()).map(|_| ())
}

/// gunicorn's `MODULE[:OBJECT]`: a dotted module name, then a name or a call of a name
/// (`create_app()`, `create_app("prod")`: gunicorn accepts literal arguments).
#[cfg_attr(not(feature = "python"), allow(dead_code))]
fn check_wsgi_spec(spec: &str) -> Result<(), String> {
    let malformed = |why: &str| {
        Err(format!(
            "{spec:?} is not an application: {why} (expected hello, echo, static:DIR or a \
             Python MODULE[:OBJECT])"
        ))
    };
    let (module, object) = match spec.split_once(':') {
        Some((module, object)) => (module, Some(object)),
        None => (spec, None),
    };
    if !module.split('.').all(is_identifier) {
        return malformed("the module is not a dotted Python name");
    }
    if let Some(object) = object {
        let name = match object.split_once('(') {
            Some((name, args)) if args.ends_with(')') => name,
            Some(_) => return malformed("the call has no closing parenthesis"),
            None => object,
        };
        if !is_identifier(name) {
            return malformed("the object is not a Python name or a call of one");
        }
    }
    Ok(())
}

/// A Python identifier: a letter or `_`, then letters, digits or `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
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

    #[test]
    fn python_specs_are_judged_by_their_form() {
        for good in [
            "app",
            "pkg.mod",
            "pkg.mod:app",
            "mod:create_app()",
            "m:f(\"a\", 1)",
        ] {
            assert_eq!(check_wsgi_spec(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ":app",
            "mod:",
            "a b",
            "pkg..mod",
            "mod:app:x",
            "mod:f(",
            "1mod",
        ] {
            let error = check_wsgi_spec(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("{bad:?} is not an application")),
                "{error}"
            );
        }
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
