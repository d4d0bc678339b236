//! The `ferrocorn` binary: glue over the library crates. Parses the command line into
//! settings (`args`), sets up logging (`logging`), runs the arbiter and turns errors into
//! exit codes: 2 for usage and configuration errors, 1 for runtime failures, each one line
//! on stderr.

mod apps;
mod args;
mod logging;

use std::process::ExitCode;
use std::sync::Arc;

use ferrocorn_arbiter::Arbiter;

/// Runtime failure (cannot bind, cannot load the app, a worker failed to boot).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let (settings, invocation) = match args::load_invocation() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // What can be judged without loading the app is judged before anything is bound.
    if let Err(message) = apps::check(&settings) {
        eprintln!("ferrocorn: error: app: {message}");
        return ExitCode::from(args::EXIT_USAGE);
    }
    let log = match logging::init(&settings) {
        Ok(log) => log,
        Err(error) => {
            eprintln!(
                "ferrocorn: error: cannot open the error log {:?}: {error}",
                settings.errorlog
            );
            return ExitCode::from(args::EXIT_USAGE);
        }
    };
    let reopen = {
        let log = log.clone();
        Arc::new(move || log.reopen())
    };
    // HUP reads the same command line, environment and config file again (the config file
    // is resolved against the directory the binary started in, whatever `chdir` says).
    let reload = {
        let log = log.clone();
        Box::new(move || {
            let settings = invocation.reload()?;
            log.apply(&settings);
            Ok(settings)
        })
    };
    let logs_to_stderr = settings.errorlog == "-";
    let result = Arbiter::with_loader(settings, Arc::new(apps::load))
        .on_reload(reload)
        .on_reopen_logs(reopen)
        .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if !logs_to_stderr {
                // The one line on stderr is what a person at a terminal sees; the log
                // file gets it too.
                tracing::error!("{error}");
            }
            eprintln!("ferrocorn: error: {error}");
            if error.is_config() {
                ExitCode::from(args::EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}
