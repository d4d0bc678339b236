//! [`Server`]: one program's whole server, from its command line to its exit code — the
//! settings (`args`, `invocation`), the error log (`logging`), the application (its own,
//! or the one `APP` names through `apps`), the arbiter with HUP and USR1 wired in.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use ferrocorn_arbiter::{AppLoader, Arbiter, ArbiterError};
use ferrocorn_config::{Loaded, Settings};
use ferrocorn_worker::{App, TlsError};

use crate::args::{Action, Program};
use crate::invocation::{DisplayOnly, Invocation};
use crate::{apps, logging, EXIT_FAILURE, EXIT_USAGE};

/// Where the application comes from.
enum AppChoice {
    /// The program's own application: no `APP` is taken.
    Own(Arc<dyn App>),
    /// The `ferrocorn` binary's: the `app` setting through the registry (`apps`).
    Named,
}

/// A program serving HTTP with ferrocorn: what its command line is called and which
/// application it serves. [`Server::run`] does the rest.
///
/// ```no_run
/// use ferrocorn::{App, Request, Response};
///
/// struct Hello;
///
/// impl App for Hello {
///     fn call(&self, _request: &mut Request, response: &mut Response) {
///         response.plain(200, "hello\n");
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     ferrocorn::Server::new(Hello)
///         .name("hello-server")
///         .version(env!("CARGO_PKG_VERSION"))
///         .run()
/// }
/// ```
pub struct Server {
    program: Program,
    app: AppChoice,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("program", &self.program)
            .field("own_app", &matches!(self.app, AppChoice::Own(_)))
            .finish()
    }
}

impl Server {
    /// A program serving `app`. Its command line is the `ferrocorn` binary's without
    /// `APP`; it is named after the file it runs from (see [`Server::name`]).
    pub fn new(app: impl App) -> Server {
        Server::shared(Arc::new(app))
    }

    /// [`Server::new`] for an application already behind an `Arc`.
    pub fn shared(app: Arc<dyn App>) -> Server {
        let name = std::env::args_os()
            .next()
            .and_then(|argv0| {
                Path::new(&argv0)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "ferrocorn".to_string());
        Server {
            program: Program {
                name,
                version: format!("(ferrocorn {})", env!("CARGO_PKG_VERSION")),
                about: "An HTTP/1.1 server built on ferrocorn.".to_string(),
                takes_app: false,
            },
            app: AppChoice::Own(app),
        }
    }

    /// The `ferrocorn` binary: the application is the one the `app` setting names (`APP`,
    /// `FERROCORN_APP`, the config file): `hello`, `echo`, `static:DIR`, or, with the
    /// `python` feature, a Python WSGI application.
    pub fn ferrocorn() -> Server {
        Server {
            program: Program::ferrocorn(),
            app: AppChoice::Named,
        }
    }

    /// The name `--help` and `--version` show and every error line on stderr starts with
    /// (`NAME: error: ...`).
    pub fn name(mut self, name: &str) -> Server {
        self.program.name = name.to_string();
        self
    }

    /// What `--version` prints after the name (by default `(ferrocorn VERSION)`).
    pub fn version(mut self, version: &str) -> Server {
        self.program.version = version.to_string();
        self
    }

    /// The first line of `--help`.
    pub fn about(mut self, about: &str) -> Server {
        self.program.about = about.to_string();
        self
    }

    /// Runs the program to its end and gives its exit code; `main` returns it.
    ///
    /// Reads the command line, `FERROCORN_CMD_ARGS`, the `FERROCORN_<NAME>` variables and
    /// the config file (`-c`, else `./ferrocorn.toml`) into settings. `--help`,
    /// `--version` and `--print-config` print to stdout and give 0; `--check-config` loads
    /// the application, calls its [`App::init_worker`] and gives 0, or 2 after one line on
    /// stderr. Otherwise it installs the error log (`errorlog`, `loglevel`, `log_format`)
    /// and serves until TERM, INT or QUIT: HUP reads the same sources again and starts new
    /// workers with the new settings (the old ones keep serving if they do not validate),
    /// USR1 reopens the log files.
    ///
    /// Exit codes: 0 after a requested stop, [`EXIT_USAGE`] (2) for a usage or
    /// configuration error (each one line on stderr, nothing bound), [`EXIT_FAILURE`] (1)
    /// for a runtime failure (a socket that cannot be bound, a worker that fails to boot).
    ///
    /// Call it from `main` before starting any thread: the arbiter forks, and refuses to
    /// run in a process with more than one thread. Threads an application needs are
    /// started in each worker ([`App::init_worker`]).
    pub fn run(self) -> ExitCode {
        let Server { program, app } = self;
        let name = program.name.as_str();
        let invocation = match Invocation::from_process(&program) {
            Ok(invocation) => invocation,
            Err(DisplayOnly(text)) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
        };
        let loaded = match invocation.load() {
            Ok(loaded) => loaded,
            Err(errors) => {
                for error in errors {
                    eprintln!("{name}: error: {error}");
                }
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let loader = app.loader();
        match invocation.action {
            Action::Run => {}
            Action::PrintConfig => {
                print!("{}", invocation.print_config(&loaded));
                return ExitCode::SUCCESS;
            }
            Action::CheckConfig => {
                return match check_app(&loaded, &loader) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(message) => {
                        eprintln!("{name}: error: {message}");
                        ExitCode::from(EXIT_USAGE)
                    }
                };
            }
        }
        // What can be judged without loading the app is judged before anything is bound.
        if let Err(message) = app.check(&loaded.settings) {
            eprintln!("{name}: error: app: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
        serve(name, &loaded, invocation, loader)
    }
}

impl AppChoice {
    /// What the arbiter calls after `chdir`, and again on HUP with the new settings. Both
    /// apply `raw_env` (`-e KEY=VALUE`) to the process environment first.
    fn loader(&self) -> AppLoader {
        match self {
            AppChoice::Named => Arc::new(apps::load),
            AppChoice::Own(app) => {
                let app = Arc::clone(app);
                Arc::new(move |settings: &Settings| {
                    apps::apply_raw_env(settings);
                    Ok(Arc::clone(&app))
                })
            }
        }
    }

    /// Judges the application without loading it (see `apps::check`).
    fn check(&self, settings: &Settings) -> Result<(), String> {
        match self {
            AppChoice::Named => apps::check(settings),
            AppChoice::Own(_) => Ok(()),
        }
    }
}

/// For `--check-config`: reads the TLS files and loads the application as the server
/// would, from the directory it would serve from (`chdir`), as gunicorn's `--check-config`
/// loads the app. Changes this process's working directory; the process exits right after.
fn check_app(loaded: &Loaded, loader: &AppLoader) -> Result<(), String> {
    let settings = &loaded.settings;
    if let Some(dir) = &settings.chdir {
        std::env::set_current_dir(dir)
            .map_err(|err| format!("app: cannot chdir to {}: {err}", dir.display()))?;
    }
    ferrocorn_worker::TlsConfig::from_settings(settings).map_err(|e| tls_error(&e, loaded))?;
    let app = loader(settings).map_err(|e| format!("app: {e}"))?;
    app.init_worker().map_err(|e| format!("app: {e}"))
}

/// A TLS file or setting the arbiter refused, with where its value came from, as a
/// configuration error says it: `TLS: env FERROCORN_CERTFILE: certfile /x.pem: cannot
/// read it: ...`.
fn tls_error(error: &TlsError, loaded: &Loaded) -> String {
    match error
        .setting()
        .and_then(|setting| loaded.source_of(setting))
    {
        Some(source) => format!("TLS: {source}: {error}"),
        None => format!("TLS: {error}"),
    }
}

/// Installs the error log and runs the arbiter until it stops.
fn serve(name: &str, loaded: &Loaded, invocation: Invocation, loader: AppLoader) -> ExitCode {
    let settings = loaded.settings.clone();
    let log = match logging::init(&settings) {
        Ok(log) => log,
        Err(error) => {
            eprintln!(
                "{name}: error: cannot open the error log {:?}: {error}",
                settings.errorlog
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let reopen = {
        let log = log.clone();
        Arc::new(move || log.reopen())
    };
    // HUP reads the same command line, environment and config file again (the config file
    // is resolved against the directory the program started in, whatever `chdir` says).
    let reload = {
        let log = log.clone();
        Box::new(move || {
            let settings = invocation.reload()?;
            log.apply(&settings);
            Ok(settings)
        })
    };
    let logs_to_stderr = settings.errorlog == "-";
    let result = Arbiter::with_loader(settings, loader)
        .on_reload(reload)
        .on_reopen_logs(reopen)
        .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let line = match &error {
                ArbiterError::Tls(tls) => tls_error(tls, loaded),
                other => other.to_string(),
            };
            if !logs_to_stderr {
                // The one line on stderr is what a person at a terminal sees; the log
                // file gets it too.
                tracing::error!("{line}");
            }
            eprintln!("{name}: error: {line}");
            if error.is_config() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}
