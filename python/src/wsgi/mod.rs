//! The WSGI host (PEP 3333): one [`Host`] per process holds the application and what every
//! request reuses; [`Host::call`] answers one request through it.
//!
//! Inside: `environ.rs` (the environ dict), `input.rs` (`wsgi.input`), `errors.rs`
//! (`wsgi.errors`), `start_response.rs` (`start_response` and `write`), `body.rs` (the
//! return value to a response body, streaming, `close()`), `file_wrapper.rs`.

mod body;
mod environ;
mod errors;
mod file_wrapper;
mod input;
mod start_response;

use std::sync::Arc;

use ferrocorn_worker::{Request, Response};
use pyo3::prelude::*;

use crate::interp;
use crate::loader::traceback;
use body::{Closer, EagerIterators};
use environ::EnvironBuilder;
pub(crate) use environ::Setup;
use start_response::StartResponse;

/// A loaded WSGI application and its per-process state.
#[derive(Debug)]
pub(crate) struct Host {
    app: Py<PyAny>,
    environ: EnvironBuilder,
    closer: Arc<Closer>,
    eager: EagerIterators,
}

impl Host {
    /// Prepares to serve `app` (attached: builds the environ template).
    pub(crate) fn new(
        py: Python<'_>,
        app: Bound<'_, PyAny>,
        setup: &Setup,
        threads: usize,
    ) -> PyResult<Host> {
        Ok(Host {
            app: app.unbind(),
            environ: EnvironBuilder::new(py, setup)?,
            closer: Arc::new(Closer::new(threads)),
            eager: EagerIterators::new(py)?,
        })
    }

    /// Runs on the worker's event loop thread before it serves.
    pub(crate) fn start_worker(&self) -> Result<(), String> {
        self.closer.start_worker()
    }

    /// Answers one request: builds the environ, calls the application, and turns what it
    /// returns into `res`. A Python exception before the head is committed is logged with
    /// its traceback and answered 500.
    pub(crate) fn call(&self, req: &mut Request, res: &mut Response) {
        let outcome = interp::attach(|py| {
            let answered = self.call_attached(py, req, res);
            answered.map_err(|e| {
                tracing::error!(
                    "Error handling request {}\n{}",
                    req.target(),
                    traceback(py, &e)
                );
            })
        });
        if outcome.is_err() {
            res.plain(500, "internal server error\n");
        }
    }

    fn call_attached(&self, py: Python<'_>, req: &mut Request, res: &mut Response) -> PyResult<()> {
        let environ = self.environ.build(py, req)?;
        let start_response = Bound::new(py, StartResponse::default())?;
        let result = self.app.bind(py).call1((environ, &start_response))?;
        body::respond(
            py,
            &self.closer,
            &self.eager,
            result,
            &start_response,
            res,
            req.target(),
        )
    }
}
