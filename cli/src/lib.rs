//! ferrocorn as a library: the whole server — command line, `FERROCORN_*` variables,
//! config file, gunicorn-style logging, HUP reloads, USR1, exit codes — for the `ferrocorn`
//! binary ([`Server::ferrocorn`]) and for a program serving its own [`App`] ([`run`]).
//!
#![doc = include_str!("../README.md")]

mod apps;
mod args;
mod invocation;
mod logging;
mod server;

use std::process::ExitCode;

pub use ferrocorn_worker::{
    reason_phrase, ws, App, Body, HeaderText, Peer, Request, RequestBody, Response, Version,
};
pub use server::Server;

/// The exit code for a runtime failure: a socket that cannot be bound, an application
/// that cannot be loaded, a worker that fails before any has served.
pub const EXIT_FAILURE: u8 = 1;

/// The exit code for a usage or configuration error (an unknown flag, an invalid value, a
/// setting the program does not take): one line each on stderr, nothing bound.
pub const EXIT_USAGE: u8 = 2;

/// Serves `app` with the whole server, configured like the `ferrocorn` binary, until
/// stopped; `main` returns the exit code. The program takes every flag, variable and
/// config-file key the `ferrocorn` binary takes, but no `APP` (it serves `app`):
/// [`Server::new`]`(app).`[`run`](Server::run)`()`, which tells what happens in detail.
///
/// Call it from `main` before starting any thread (the arbiter forks).
pub fn run(app: impl App) -> ExitCode {
    Server::new(app).run()
}
