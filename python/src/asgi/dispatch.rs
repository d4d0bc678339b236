//! The event loop thread's side of the channel: [`Dispatcher::take`] runs when the worker
//! has delivered events (its eventfd is readable) and turns them into tasks and messages;
//! replies collect in [`Shared`] and go back in one batch per turn of the asyncio loop
//! (a `call_soon` scheduled by the first reply of the turn).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrocorn_worker::ws::close_code;
use ferrocorn_worker::{Event, ExchangeId, Replies, Reply, Request, Response};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::cycle::Cycle;
use super::scope::ScopeBuilder;
use super::websocket::WsCycle;
use crate::loader::{describe, traceback};

/// How often the event loop beats (runner.py's `BEAT_SECONDS`): a beat older than this
/// means the loop is blocked.
const BEAT: Duration = Duration::from_secs(1);

/// What the worker's loop thread and the event loop thread share: the events delivered and
/// not yet taken, the wake-up, the heartbeat.
#[derive(Debug)]
pub(crate) struct Mailbox {
    events: Mutex<Vec<Event>>,
    /// An eventfd the event loop watches.
    wake: File,
    /// The event loop will look at `events` only after a wake-up.
    armed: AtomicBool,
    /// The worker stops: the event loop runs the lifespan shutdown and ends.
    stop: AtomicBool,
    epoch: Instant,
    /// When the event loop last beat: nanoseconds after `epoch`.
    beat: AtomicU64,
}

impl Mailbox {
    pub(crate) fn new(wake: File) -> Mailbox {
        Mailbox {
            events: Mutex::new(Vec::new()),
            wake,
            armed: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
            beat: AtomicU64::new(0),
        }
    }

    /// Hands events over (the worker's loop thread); writes the eventfd only when the event
    /// loop has taken everything before.
    pub(crate) fn deliver(&self, events: &mut Vec<Event>) {
        {
            let mut queue = self.events.lock().unwrap_or_else(|p| p.into_inner());
            if queue.is_empty() {
                std::mem::swap(&mut *queue, events);
            } else {
                queue.append(events);
            }
        }
        if self.armed.swap(false, Ordering::SeqCst) {
            self.ring();
        }
    }

    fn ring(&self) {
        let _ = (&self.wake).write(&1u64.to_ne_bytes());
    }

    /// Asks the event loop to stop.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.ring();
    }

    pub(crate) fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.wake.as_raw_fd()
    }

    fn beat(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.beat.store(nanos, Ordering::Relaxed);
    }

    /// How long the event loop has been blocked: since its last beat, less the beat
    /// interval.
    pub(crate) fn stalled_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_nanos(self.beat.load(Ordering::Relaxed));
        now.saturating_duration_since(last).saturating_sub(BEAT)
    }
}

/// The event loop thread's state, shared by the dispatcher and every exchange.
pub(crate) struct Shared {
    replies: Replies,
    out: Mutex<Vec<Reply>>,
    flush_scheduled: AtomicBool,
    /// `loop.call_soon`, `loop.call_later`, `loop.create_future`, `loop.create_task` and
    /// the dispatcher's `flush`, bound once the loop runs.
    bound: OnceLock<Bound_>,
    cycles: Mutex<HashMap<u64, Exchange>>,
    grace: f64,
    /// Hand-offs back to the worker, and the replies in them.
    pub(crate) batches: AtomicU64,
    pub(crate) replied: AtomicU64,
}

/// An exchange the application holds: an `http` or a `websocket` scope's.
enum Exchange {
    Http(Py<Cycle>),
    WebSocket(Py<WsCycle>),
}

impl Exchange {
    fn clone_ref(&self, py: Python<'_>) -> Exchange {
        match self {
            Exchange::Http(c) => Exchange::Http(c.clone_ref(py)),
            Exchange::WebSocket(c) => Exchange::WebSocket(c.clone_ref(py)),
        }
    }
}

struct Bound_ {
    call_soon: Py<PyAny>,
    call_later: Py<PyAny>,
    create_future: Py<PyAny>,
    create_task: Py<PyAny>,
    flush: Py<PyAny>,
}

impl Shared {
    pub(crate) fn new(replies: Replies, grace: Duration) -> Shared {
        Shared {
            replies,
            out: Mutex::new(Vec::new()),
            flush_scheduled: AtomicBool::new(false),
            bound: OnceLock::new(),
            cycles: Mutex::new(HashMap::new()),
            grace: grace.as_secs_f64(),
            batches: AtomicU64::new(0),
            replied: AtomicU64::new(0),
        }
    }

    /// Answers exchange `id` with `response` whole: its body is all there is (an HTTP
    /// answer, or a WebSocket handshake refused with a plain response).
    pub(crate) fn respond_whole(&self, py: Python<'_>, id: ExchangeId, response: Response) {
        self.reply(
            py,
            Reply::Respond {
                id,
                response,
                more: false,
                length: None,
            },
        );
    }

    /// Queues a reply; the first of a turn schedules the flush.
    pub(crate) fn reply(&self, py: Python<'_>, reply: Reply) {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reply);
        if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
            if let Some(b) = self.bound.get() {
                if let Err(e) = b.call_soon.bind(py).call1((b.flush.bind(py),)) {
                    tracing::error!("cannot schedule the ASGI reply flush: {e}");
                    self.flush();
                }
            }
        }
    }

    /// Sends the replies queued so far to the worker.
    pub(crate) fn flush(&self) {
        self.flush_scheduled.store(false, Ordering::Release);
        let mut batch = std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return;
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.replied
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.replies.send(&mut batch);
    }

    pub(crate) fn create_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.bound.get() {
            Some(b) => b.create_future.bind(py).call0(),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the ASGI event loop is not running",
            )),
        }
    }

    /// Runs `callback` after the disconnect grace period.
    pub(crate) fn call_later(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) {
        if let Some(b) = self.bound.get() {
            let _ = b.call_later.bind(py).call1((self.grace, callback));
        }
    }

    /// The exchange's application runs: its events go to `exchange` until [`Self::forget`].
    fn keep(&self, id: ExchangeId, exchange: Exchange) {
        self.cycles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.seq(), exchange);
    }

    /// The exchange ended: its replies are final.
    pub(crate) fn forget(&self, id: ExchangeId) {
        self.cycles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id.seq());
    }

    fn cycle(&self, py: Python<'_>, id: ExchangeId) -> Option<Exchange> {
        self.cycles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id.seq())
            .map(|c| c.clone_ref(py))
    }
}

/// The object runner.py calls: `take(loop)` on a wake-up, `beat()` every second.
#[pyclass(frozen, module = "ferrocorn", name = "AsgiDispatcher")]
pub(crate) struct Dispatcher {
    mailbox: Arc<Mailbox>,
    shared: Arc<Shared>,
    app: Py<PyAny>,
    serve: Py<PyAny>,
    scope: ScopeBuilder,
}

impl Dispatcher {
    pub(crate) fn new(
        mailbox: Arc<Mailbox>,
        shared: Arc<Shared>,
        app: Py<PyAny>,
        serve: Py<PyAny>,
        scope: ScopeBuilder,
    ) -> Dispatcher {
        Dispatcher {
            mailbox,
            shared,
            app,
            serve,
            scope,
        }
    }

    /// Starts the application on a new request.
    fn start(&self, py: Python<'_>, id: ExchangeId, request: Request, more_body: bool) {
        if request.is_websocket() {
            return self.start_websocket(py, id, request);
        }
        let target = request.target().to_owned();
        let started = self.start_http(py, id, request, more_body);
        if let Err(e) = started {
            self.not_started(py, id, &target, &e);
        }
    }

    /// The application could not be called: 500.
    fn not_started(&self, py: Python<'_>, id: ExchangeId, target: &str, e: &PyErr) {
        tracing::error!(
            "cannot start the ASGI application for {target}: {}\n{}",
            describe(py, e),
            traceback(py, e)
        );
        let mut response = ferrocorn_worker::Response::new();
        response.plain(500, "internal server error\n");
        self.shared.reply(
            py,
            Reply::Respond {
                id,
                response,
                more: false,
                length: None,
            },
        );
    }

    /// A WebSocket handshake: refused at once (400, 426) unless it is valid, else the
    /// application gets a `websocket` scope.
    fn start_websocket(&self, py: Python<'_>, id: ExchangeId, request: Request) {
        let mut check = ferrocorn_worker::Response::new();
        if !check.accept_websocket_deferred(&request, None) {
            self.shared.reply(
                py,
                Reply::Respond {
                    id,
                    response: check,
                    more: false,
                    length: None,
                },
            );
            return;
        }
        let target = request.target().to_owned();
        let started = (|| -> PyResult<()> {
            let b = self.bound(py)?;
            let scope = self.scope.build_websocket(py, &request)?;
            let cycle = Bound::new(py, WsCycle::new(id, Arc::clone(&self.shared), request))?;
            let task = self.task(py, b, scope, cycle.as_any())?;
            cycle.get().set_task(task.unbind());
            self.shared.keep(id, Exchange::WebSocket(cycle.unbind()));
            Ok(())
        })();
        if let Err(e) = started {
            self.not_started(py, id, &target, &e);
        }
    }

    fn bound<'a>(&'a self, _py: Python<'_>) -> PyResult<&'a Bound_> {
        self.shared.bound.get().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("the ASGI event loop is not running")
        })
    }

    /// The task running the application for one exchange (`runner.serve`).
    fn task<'py>(
        &self,
        py: Python<'py>,
        b: &Bound_,
        scope: Bound<'py, PyDict>,
        cycle: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let receive = cycle.getattr(intern!(py, "receive"))?;
        let send = cycle.getattr(intern!(py, "send"))?;
        let coroutine =
            self.serve
                .bind(py)
                .call1((self.app.bind(py), scope, receive, send, cycle))?;
        b.create_task.bind(py).call1((coroutine,))
    }

    fn start_http(
        &self,
        py: Python<'_>,
        id: ExchangeId,
        mut request: Request,
        more_body: bool,
    ) -> PyResult<()> {
        {
            let b = self.bound(py)?;
            let scope = self.scope.build(py, &request)?;
            let mut body = Vec::new();
            request
                .body()
                .read_to_end(&mut body)
                .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
            let cycle = Bound::new(
                py,
                Cycle::new(
                    id,
                    Arc::clone(&self.shared),
                    request.target().to_owned(),
                    body,
                    more_body,
                ),
            )?;
            let task = self.task(py, b, scope, cycle.as_any())?;
            cycle.get().set_task(task.unbind());
            self.shared.keep(id, Exchange::Http(cycle.unbind()));
            Ok(())
        }
    }
}

#[pymethods]
impl Dispatcher {
    /// Takes the events delivered so far and acts on them. Returns whether the worker
    /// asked the event loop to stop.
    fn take(slf: &Bound<'_, Self>, event_loop: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = slf.py();
        let me = slf.get();
        if me.shared.bound.get().is_none() {
            let _ = me.shared.bound.set(Bound_ {
                call_soon: event_loop.getattr("call_soon")?.unbind(),
                call_later: event_loop.getattr("call_later")?.unbind(),
                create_future: event_loop.getattr("create_future")?.unbind(),
                create_task: event_loop.getattr("create_task")?.unbind(),
                flush: slf.getattr("flush")?.unbind(),
            });
        }
        // Clear the eventfd, then re-arm, then take: an event delivered meanwhile is
        // either taken now or rings again.
        let mut counter = [0u8; 8];
        let _ = (&me.mailbox.wake).read(&mut counter);
        me.mailbox.armed.store(true, Ordering::SeqCst);
        let events =
            std::mem::take(&mut *me.mailbox.events.lock().unwrap_or_else(|p| p.into_inner()));
        for event in events {
            match event {
                Event::Request {
                    id,
                    request,
                    more_body,
                } => me.start(py, id, request, more_body),
                Event::Body {
                    id,
                    data,
                    more,
                    paused,
                } => {
                    if let Some(Exchange::Http(cycle)) = me.shared.cycle(py, id) {
                        cycle.get().body(py, data, more, paused);
                    }
                }
                Event::Disconnect { id } => match me.shared.cycle(py, id) {
                    Some(Exchange::Http(cycle)) => Cycle::disconnect(cycle.bind(py)),
                    Some(Exchange::WebSocket(cycle)) => {
                        // Gone without a close frame (RFC 6455 §7.1.5: 1006).
                        WsCycle::closed(cycle.bind(py), close_code::ABNORMAL, String::new());
                    }
                    None => {}
                },
                Event::Writable { id } => match me.shared.cycle(py, id) {
                    Some(Exchange::Http(cycle)) => cycle.get().writable(py),
                    Some(Exchange::WebSocket(cycle)) => cycle.get().writable(py),
                    None => {}
                },
                Event::Message {
                    id,
                    message,
                    paused,
                } => {
                    if let Some(Exchange::WebSocket(cycle)) = me.shared.cycle(py, id) {
                        cycle.get().message(py, message, paused);
                    }
                }
                Event::Closed { id, code, reason } => {
                    if let Some(Exchange::WebSocket(cycle)) = me.shared.cycle(py, id) {
                        WsCycle::closed(cycle.bind(py), code, reason);
                    }
                }
            }
        }
        Ok(me.mailbox.stop.load(Ordering::SeqCst))
    }

    /// Sends this turn's replies to the worker.
    fn flush(&self) {
        self.shared.flush();
    }

    /// The event loop is alive.
    fn beat(&self) {
        self.mailbox.beat();
    }
}
