//! The `ferrocorn` binary: glue over the library crates. Parses the command line into
//! settings (`args`), then runs the server.

mod args;

use std::process::ExitCode;

fn main() -> ExitCode {
    let settings = match args::load_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // Until the arbiter lands, the binary shows the settings it would serve with.
    println!(
        "ferrocorn {}: would serve {} on {} with {} worker(s)",
        env!("CARGO_PKG_VERSION"),
        settings.app,
        settings
            .bind
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        settings.workers
    );
    ExitCode::SUCCESS
}
