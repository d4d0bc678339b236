//! The ASGI 3.0 host: one asyncio event loop thread per worker process (uvloop when
//! `asgi_loop` allows and it is installed), fed through the worker's deferred-application
//! channel (`ferrocorn_worker::DeferredApp`).
//!
//! The worker's loop thread never attaches to Python: it hands each turn's events to the
//! [`dispatch::Mailbox`] (a mutex and, when the event loop sleeps, one eventfd write), and
//! takes replies from the worker's queue when its waker fires. The event loop thread takes
//! the events in one callback per wake-up, starts one task per request and sends each
//! turn's replies back in one batch.
//!
//! Inside: `dispatch.rs` (the mailbox, the dispatcher runner.py calls, the replies),
//! `cycle.rs` (one `http` exchange's `receive` and `send`), `websocket.rs` (one
//! WebSocket's), `scope.rs` (the `http` and `websocket` scopes),
//! `runner.py` (the thread's body: the loop, the lifespan protocol, the heartbeat).

mod cycle;
mod dispatch;
mod scope;
mod websocket;

use std::ffi::CString;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use ferrocorn_worker::{DeferredApp, Event, Inbox, Replies};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::interp;
use crate::loader::{describe, traceback};
use dispatch::{Dispatcher, Mailbox, Shared};
use scope::ScopeBuilder;

/// How the ASGI host runs, from the settings.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub root_path: String,
    /// `auto`, `asyncio` or `uvloop`.
    pub event_loop: &'static str,
    /// `auto`, `on` or `off`.
    pub lifespan: &'static str,
    /// After a disconnect, how long the application may go on before it is cancelled.
    pub disconnect_grace: Duration,
    /// How long the lifespan shutdown may take when the worker stops.
    pub stop_timeout: Duration,
}

/// An ASGI application and, once its worker serves, its event loop thread.
pub(crate) struct Host {
    app: Py<PyAny>,
    setup: Setup,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsgiHost({:?})", self.setup)
    }
}

/// The event loop thread of this worker.
struct Running {
    mailbox: Arc<Mailbox>,
    shared: Arc<Shared>,
    /// Says when the thread is done.
    done: mpsc::Receiver<()>,
}

/// The source of runner.py, the event loop thread's Python side.
fn runner(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let code = CString::new(include_str!("runner.py"))
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    PyModule::from_code(
        py,
        &code,
        c"<ferrocorn asgi runner>",
        c"ferrocorn_asgi_runner",
    )
}

/// Whether `app` is an ASGI 3.0 application: an `async def app(scope, receive, send)`, or
/// an object whose `__call__` is a coroutine function.
pub(crate) fn is_asgi(py: Python<'_>, app: &Bound<'_, PyAny>) -> PyResult<bool> {
    runner(py)?.getattr("is_asgi")?.call1((app,))?.is_truthy()
}

impl Host {
    pub(crate) fn new(app: Py<PyAny>, setup: Setup) -> Host {
        Host {
            app,
            setup,
            running: Mutex::new(None),
        }
    }

    /// Stops the event loop thread (the lifespan shutdown runs first) and waits for it, at
    /// most `stop_timeout`. Called in the worker after its loop ended, not attached.
    pub(crate) fn stop(&self) {
        let Some(running) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        running.mailbox.stop();
        if running.done.recv_timeout(self.setup.stop_timeout).is_err() {
            tracing::warn!(
                "the ASGI event loop did not stop within {}s",
                self.setup.stop_timeout.as_secs_f64()
            );
        }
        tracing::debug!(
            batches = running
                .shared
                .batches
                .load(std::sync::atomic::Ordering::Relaxed),
            replies = running
                .shared
                .replied
                .load(std::sync::atomic::Ordering::Relaxed),
            "ASGI replies handed back to the worker"
        );
    }
}

impl DeferredApp for Host {
    fn open(&self, replies: Replies) -> Result<Box<dyn Inbox>, String> {
        let wake = interp::eventfd().map_err(|e| format!("cannot create an eventfd: {e}"))?;
        let mailbox = Arc::new(Mailbox::new(wake));
        let shared = Arc::new(Shared::new(replies, self.setup.disconnect_grace));
        let (ready_tx, ready_rx) = mpsc::channel::<Option<String>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let setup = self.setup.clone();
        let prepared = interp::attach(|py| -> PyResult<_> {
            let runner = runner(py)?;
            let state = PyDict::new(py).unbind();
            let scope = ScopeBuilder::new(py, &setup.root_path, state.clone_ref(py))?;
            let dispatcher = Dispatcher::new(
                Arc::clone(&mailbox),
                Arc::clone(&shared),
                self.app.clone_ref(py),
                runner.getattr("serve")?.unbind(),
                scope,
            );
            let args = (
                Bound::new(py, dispatcher)?.into_any().unbind(),
                self.app.clone_ref(py),
                mailbox.fd(),
                setup.event_loop,
                setup.lifespan,
                state,
                Bound::new(py, Started::new(ready_tx))?.into_any().unbind(),
                Bound::new(py, Log)?.into_any().unbind(),
            );
            Ok((runner.getattr("run")?.unbind(), args))
        });
        let (run, args) = prepared.map_err(|e| {
            interp::attach(|py| format!("cannot prepare the ASGI host: {}", describe(py, &e)))
        })?;
        std::thread::Builder::new()
            .name("asgi-loop".into())
            .spawn(move || {
                interp::attach(|py| {
                    if let Err(e) = run.bind(py).call1(args) {
                        tracing::error!("the ASGI event loop failed\n{}", traceback(py, &e));
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start the ASGI event loop thread: {e}"))?;
        // Not attached while waiting: the thread needs the interpreter.
        match ready_rx.recv() {
            Ok(None) => {}
            Ok(Some(message)) => return Err(message),
            Err(_) => return Err("the ASGI event loop thread ended before it served".into()),
        }
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running {
            mailbox: Arc::clone(&mailbox),
            shared,
            done: done_rx,
        });
        Ok(Box::new(AsgiInbox { mailbox }))
    }
}

/// The worker's end of the channel.
struct AsgiInbox {
    mailbox: Arc<Mailbox>,
}

impl Inbox for AsgiInbox {
    fn deliver(&mut self, events: &mut Vec<Event>) {
        self.mailbox.deliver(events);
    }

    fn stalled_for(&self, now: std::time::Instant) -> Duration {
        self.mailbox.stalled_for(now)
    }
}

/// `ready(error)`: runner.py reports once that the loop serves (`None`) or why it cannot.
#[pyclass(frozen, module = "ferrocorn", name = "AsgiStarted")]
struct Started {
    tx: Mutex<Option<mpsc::Sender<Option<String>>>>,
}

impl Started {
    fn new(tx: mpsc::Sender<Option<String>>) -> Started {
        Started {
            tx: Mutex::new(Some(tx)),
        }
    }
}

#[pymethods]
impl Started {
    #[pyo3(signature = (error = None))]
    fn __call__(&self, error: Option<String>) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(error);
        }
    }
}

/// `log(level, message, exc=None)` for runner.py: 1 info, 2 error (with the traceback of
/// `exc`), else debug.
#[pyclass(frozen, module = "ferrocorn", name = "AsgiLog")]
struct Log;

#[pymethods]
impl Log {
    #[pyo3(signature = (level, message, exc = None))]
    fn __call__(&self, level: u8, message: &str, exc: Option<&Bound<'_, PyAny>>) {
        let trace = exc
            .filter(|e| !e.is_none())
            .map(|e| format!("\n{}", traceback(e.py(), &PyErr::from_value(e.clone()))))
            .unwrap_or_default();
        match level {
            1 => tracing::info!("{message}{trace}"),
            2 => tracing::error!("{message}{trace}"),
            _ => tracing::debug!("{message}{trace}"),
        }
    }
}

#[cfg(test)]
mod tests;
