//! The `ferrocorn` binary: glue over the library crates. Parses the command line into
//! `Settings`, sets up logging, runs the arbiter and turns errors into exit codes: 2 for
//! usage and configuration errors, 1 for runtime failures, each one line on stderr.

mod logging;
mod shim_args;

use std::process::ExitCode;
use std::sync::Arc;

use ferrocorn_arbiter::Arbiter;

/// Usage or configuration error.
const EXIT_USAGE: u8 = 2;
/// Runtime failure (cannot bind, cannot load the app, a worker failed to boot).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let settings = match shim_args::load() {
        Ok(shim_args::Command::Serve(settings)) => *settings,
        Ok(shim_args::Command::Version) => {
            println!("ferrocorn {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("ferrocorn: error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let log = match logging::init(&settings) {
        Ok(log) => log,
        Err(error) => {
            eprintln!(
                "ferrocorn: error: cannot open the error log {:?}: {error}",
                settings.errorlog
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let reopen = {
        let log = log.clone();
        Arc::new(move || log.reopen())
    };
    let reload = Box::new(|| match shim_args::load() {
        Ok(shim_args::Command::Serve(settings)) => Ok(*settings),
        Ok(shim_args::Command::Version) => Err("--version given".to_string()),
        Err(message) => Err(message),
    });
    let logs_to_stderr = settings.errorlog == "-";
    let result = Arbiter::with_loader(settings, Arc::new(ferrocorn_worker::load_app))
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
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}
