//! One HTTP exchange as the application sees it: the `receive` and `send` callables of an
//! ASGI 3.0 `http` scope, over the worker's events and replies. `receive` gives the body
//! as it arrives (`http.request` with `more_body`), then `http.disconnect`; `send` takes
//! `http.response.start`, `http.response.body` (streamed with backpressure),
//! `http.response.trailers` and `http.response.pathsend`.
//!
//! Both answer with an already-completed awaitable ([`Ready`]) whenever they need not wait,
//! so that a request whose body is in memory and whose response fits one message never
//! creates a future.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ferrocorn_worker::{Body, ExchangeId, HeaderText, Reply, Response};
use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::dispatch::Shared;
use crate::loader::{traceback, type_name};

/// Response bytes the application may send before `send` waits for the worker to have
/// written them.
const SEND_WINDOW: usize = 256 * 1024;

/// An awaitable that is complete already: `await` gives its value without suspending.
#[pyclass(frozen, module = "ferrocorn", name = "Ready")]
pub(crate) struct Ready {
    value: Mutex<Option<Py<PyAny>>>,
}

impl Ready {
    pub(crate) fn awaitable(
        py: Python<'_>,
        value: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(
            py,
            Ready {
                value: Mutex::new(value),
            },
        )?
        .into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        let value = self
            .value
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| py.None());
        Err(PyStopIteration::new_err((value,)))
    }

    #[pyo3(signature = (_value = None))]
    fn send(&self, py: Python<'_>, _value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.__next__(py)
    }

    #[pyo3(signature = (kind, value = None, _traceback = None))]
    fn throw(
        &self,
        kind: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        match value.filter(|v| !v.is_none()) {
            Some(value) => Err(PyErr::from_value(value.clone())),
            None => Err(PyErr::from_value(kind.call0()?)),
        }
    }

    fn close(&self) {}
}

/// Body pieces received and not yet taken by `receive`.
#[derive(Debug)]
struct Piece {
    data: Vec<u8>,
    more: bool,
    /// The worker paused the socket after this piece: taking it resumes it.
    paused: bool,
}

/// Where the response stands.
#[derive(Debug)]
enum Out {
    /// Nothing sent yet.
    Idle,
    /// `http.response.start` came; the head waits for the first body message (so that a
    /// one-message body gets a `Content-Length`).
    Started {
        response: Response,
        length: Option<u64>,
        trailers: bool,
    },
    /// The head is out; body messages follow.
    Streaming { trailers: bool },
    /// The body is complete; trailer fields follow (`more_trailers`).
    Trailers(Vec<(HeaderText, HeaderText)>),
    /// The final reply is sent.
    Done,
}

#[derive(Debug)]
struct State {
    pieces: VecDeque<Piece>,
    /// The last body piece was taken.
    body_taken: bool,
    disconnected: bool,
    receive_waiter: Option<Py<PyAny>>,
    send_waiter: Option<Py<PyAny>>,
    out: Out,
    /// Response bytes sent since the worker last said it wrote everything.
    outstanding: usize,
    task: Option<Py<PyAny>>,
}

/// The state of one exchange, reached from its `receive` and `send` and from the worker's
/// events.
#[pyclass(frozen, module = "ferrocorn", name = "HttpCycle")]
pub(crate) struct Cycle {
    id: ExchangeId,
    shared: Arc<Shared>,
    /// For the log.
    target: String,
    state: Mutex<State>,
}

impl Cycle {
    pub(crate) fn new(
        id: ExchangeId,
        shared: Arc<Shared>,
        target: String,
        body: Vec<u8>,
        more_body: bool,
    ) -> Cycle {
        Cycle {
            id,
            shared,
            target,
            state: Mutex::new(State {
                pieces: VecDeque::from([Piece {
                    data: body,
                    more: more_body,
                    paused: false,
                }]),
                body_taken: false,
                disconnected: false,
                receive_waiter: None,
                send_waiter: None,
                out: Out::Idle,
                outstanding: 0,
                task: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_task(&self, task: Py<PyAny>) {
        self.lock().task = Some(task);
    }

    /// A body piece from the worker.
    pub(crate) fn body(&self, py: Python<'_>, data: Vec<u8>, more: bool, paused: bool) {
        let piece = Piece { data, more, paused };
        let waiter = self.lock().receive_waiter.take();
        match waiter {
            Some(waiter) if is_pending(py, &waiter) => {
                let message = self.take_piece(py, piece);
                resolve(py, &waiter, message);
            }
            _ => self.lock().pieces.push_back(piece),
        }
    }

    /// The client went away: a waiting `receive` gets `http.disconnect`, a waiting `send`
    /// returns, and the application has the grace period to finish.
    pub(crate) fn disconnect(slf: &Bound<'_, Self>) {
        let py = slf.py();
        let me = slf.get();
        let (receive, send) = {
            let mut st = me.lock();
            st.disconnected = true;
            (st.receive_waiter.take(), st.send_waiter.take())
        };
        if let Some(waiter) = receive {
            resolve(py, &waiter, disconnect_message(py));
        }
        if let Some(waiter) = send {
            resolve(py, &waiter, py.None());
        }
        if let Ok(expire) = slf.getattr(intern!(py, "expire")) {
            me.shared.call_later(py, &expire);
        }
    }

    /// The worker wrote everything sent so far.
    pub(crate) fn writable(&self, py: Python<'_>) {
        let waiter = {
            let mut st = self.lock();
            st.outstanding = 0;
            st.send_waiter.take()
        };
        if let Some(waiter) = waiter {
            resolve(py, &waiter, py.None());
        }
    }

    fn take_piece(&self, py: Python<'_>, piece: Piece) -> Py<PyAny> {
        if piece.paused {
            self.shared.reply(py, Reply::Resume { id: self.id });
        }
        if !piece.more {
            self.lock().body_taken = true;
        }
        request_message(py, &piece.data, piece.more)
    }

    fn reply(&self, py: Python<'_>, reply: Reply) {
        self.shared.reply(py, reply);
    }

    /// Sends `response` as the whole answer: its body is all there is.
    fn respond_whole(&self, py: Python<'_>, response: Response) {
        self.shared.respond_whole(py, self.id, response);
    }

    /// The final reply when the application ended without one: 500 while nothing is on the
    /// wire, else the connection is closed.
    fn end(&self, py: Python<'_>, failure: Option<String>) {
        let out = std::mem::replace(&mut self.lock().out, Out::Done);
        let head_sent = match out {
            Out::Done => {
                if let Some(trace) = failure {
                    tracing::error!("Exception in ASGI application\n{trace}");
                }
                self.shared.forget(self.id);
                return;
            }
            Out::Idle | Out::Started { .. } => false,
            Out::Streaming { .. } | Out::Trailers(_) => true,
        };
        match failure {
            Some(trace) => tracing::error!("Exception in ASGI application\n{trace}"),
            None if head_sent => tracing::error!(
                target = self.target.as_str(),
                "ASGI callable returned without completing the response"
            ),
            None => tracing::error!(
                target = self.target.as_str(),
                "ASGI callable returned without sending a response"
            ),
        }
        if head_sent {
            self.reply(py, Reply::Abort { id: self.id });
        } else {
            let mut response = Response::new();
            response.plain(500, "internal server error\n");
            self.respond_whole(py, response);
        }
        self.shared.forget(self.id);
    }
}

#[pymethods]
impl Cycle {
    /// `await receive()`.
    fn receive<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (piece, gone) = {
            let mut st = self.lock();
            let piece = st.pieces.pop_front();
            let gone = st.disconnected || matches!(st.out, Out::Done);
            (piece, gone)
        };
        if let Some(piece) = piece {
            let message = self.take_piece(py, piece);
            return Ready::awaitable(py, Some(message));
        }
        if gone {
            return Ready::awaitable(py, Some(disconnect_message(py)));
        }
        // Nothing yet: the next body piece, or the disconnect, resolves it.
        let future = self.shared.create_future(py)?;
        set_receive_waiter(py, &mut self.lock().receive_waiter, &future)?;
        Ok(future)
    }

    /// `await send(message)`.
    fn send<'py>(&self, message: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = message.py();
        let (message, kind) = message_type(message)?;
        let message = &message;
        let wait = match kind.as_str() {
            "http.response.start" => {
                self.start(message)?;
                false
            }
            "http.response.body" => self.body_message(message)?,
            "http.response.trailers" => {
                self.trailers(message)?;
                false
            }
            "http.response.pathsend" => {
                self.pathsend(message)?;
                false
            }
            other => return Err(unexpected_type(other, "an http")),
        };
        if wait {
            let future = self.shared.create_future(py)?;
            let mut st = self.lock();
            if !st.disconnected {
                st.send_waiter = Some(future.clone().unbind());
                return Ok(future);
            }
        }
        Ready::awaitable(py, None)
    }

    /// The application's coroutine returned.
    fn finished(&self, py: Python<'_>) {
        self.end(py, None);
    }

    /// The application's coroutine raised `exc`.
    fn failed(&self, exc: &Bound<'_, PyAny>) {
        let py = exc.py();
        let cancelled_after_disconnect = self.lock().disconnected && is_cancelled_error(exc);
        if cancelled_after_disconnect {
            return self.end(py, None);
        }
        let err = PyErr::from_value(exc.clone());
        self.end(py, Some(traceback(py, &err)));
    }

    /// The disconnect grace period is over: cancel the application if it still runs.
    fn expire(&self, py: Python<'_>) -> PyResult<()> {
        let task = {
            let st = self.lock();
            if matches!(st.out, Out::Done) {
                return Ok(());
            }
            st.task.as_ref().map(|t| t.clone_ref(py))
        };
        cancel_task(py, task, &self.target, "the client went away")
    }
}

impl Cycle {
    fn start(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let status = status(message, "http.response.start")?;
        let mut response = Response::new();
        response.status = status;
        let length = match message.get_item(intern!(py, "headers"))? {
            Some(headers) => set_headers(&mut response, &headers)?,
            None => None,
        };
        let trailers = message
            .get_item(intern!(py, "trailers"))?
            .map(|t| t.is_truthy())
            .transpose()?
            .unwrap_or(false);
        let mut st = self.lock();
        if !matches!(st.out, Out::Idle) {
            return Err(PyRuntimeError::new_err(
                "unexpected ASGI message 'http.response.start': the response has started",
            ));
        }
        st.out = Out::Started {
            response,
            length,
            trailers,
        };
        Ok(())
    }

    /// Returns whether `send` waits for the worker to write what is queued.
    fn body_message(&self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let data = match message.get_item(intern!(py, "body"))? {
            Some(body) => body
                .cast::<PyBytes>()
                .map(|b| b.as_bytes().to_vec())
                .or_else(|_| body.extract::<Vec<u8>>())
                .map_err(|_| PyTypeError::new_err("'body' must be bytes"))?,
            None => Vec::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(more) => more.is_truthy()?,
            None => false,
        };
        let id = self.id;
        let mut st = self.lock();
        let out = std::mem::replace(&mut st.out, Out::Done);
        let (reply, next) = match out {
            Out::Started {
                mut response,
                length,
                trailers,
            } => {
                if more || trailers {
                    response.body = Body::Bytes(data);
                    let reply = Reply::Respond {
                        id,
                        response,
                        more: true,
                        length,
                    };
                    (reply, after_body(more, trailers))
                } else {
                    response.body = if data.is_empty() {
                        Body::Empty
                    } else {
                        Body::Bytes(data)
                    };
                    let reply = Reply::Respond {
                        id,
                        response,
                        more: false,
                        length: None,
                    };
                    (reply, Out::Done)
                }
            }
            Out::Streaming { trailers } => {
                st.outstanding += data.len();
                let wait = more && st.outstanding >= SEND_WINDOW && !st.disconnected;
                let reply = Reply::Piece {
                    id,
                    data,
                    more: more || trailers,
                    wait,
                };
                (reply, after_body(more, trailers))
            }
            Out::Idle => {
                st.out = Out::Idle;
                return Err(PyRuntimeError::new_err(
                    "expected ASGI message 'http.response.start', but got 'http.response.body'",
                ));
            }
            other => {
                st.out = other;
                return Err(PyRuntimeError::new_err(
                    "unexpected ASGI message 'http.response.body' sent after the response \
                     was complete",
                ));
            }
        };
        let wait = matches!(reply, Reply::Piece { wait: true, .. });
        st.out = next;
        drop(st);
        self.reply(py, reply);
        Ok(wait)
    }

    fn trailers(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let mut fields = Vec::new();
        if let Some(headers) = message.get_item(intern!(py, "headers"))? {
            for pair in headers.try_iter()? {
                let (name, value): (Vec<u8>, Vec<u8>) = pair?.extract()?;
                let name: String = name.iter().map(|&b| char::from(b)).collect();
                let value: String = value.iter().map(|&b| char::from(b)).collect();
                fields.push((HeaderText::from(name), HeaderText::from(value)));
            }
        }
        let more = match message.get_item(intern!(py, "more_trailers"))? {
            Some(more) => more.is_truthy()?,
            None => false,
        };
        let mut st = self.lock();
        let Out::Trailers(held) = &mut st.out else {
            return Err(PyRuntimeError::new_err(
                "unexpected ASGI message 'http.response.trailers': trailers come after the \
                 last body message of a response started with 'trailers': True",
            ));
        };
        held.append(&mut fields);
        if !more {
            let fields = std::mem::take(held);
            st.out = Out::Done;
            drop(st);
            self.reply(
                py,
                Reply::Trailers {
                    id: self.id,
                    fields,
                },
            );
        }
        Ok(())
    }

    /// `http.response.pathsend`: the file goes out with `sendfile`.
    fn pathsend(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let path: std::path::PathBuf = message
            .get_item(intern!(py, "path"))?
            .ok_or_else(|| PyValueError::new_err("http.response.pathsend needs a 'path'"))?
            .extract()?;
        let file = std::fs::File::open(&path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot open {}: {e}", path.display()))
        })?;
        let len = file
            .metadata()
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?
            .len();
        let mut st = self.lock();
        let Out::Started { mut response, .. } = std::mem::replace(&mut st.out, Out::Done) else {
            return Err(PyRuntimeError::new_err(
                "unexpected ASGI message 'http.response.pathsend': it must follow \
                 'http.response.start' alone",
            ));
        };
        drop(st);
        response.body = Body::File {
            file,
            offset: 0,
            len,
        };
        self.respond_whole(py, response);
        Ok(())
    }
}

/// Sets the application's header fields (`[(name, value), ...]`, bytes) on `response`, as
/// latin-1 text; returns the declared `content-length`, if any.
pub(crate) fn set_headers(
    response: &mut Response,
    headers: &Bound<'_, PyAny>,
) -> PyResult<Option<u64>> {
    let mut length = None;
    let mut latin1 = false;
    for pair in headers.try_iter()? {
        let pair = pair?;
        let (name, value): (Vec<u8>, Vec<u8>) = pair.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "a header must be a pair of bytes, not {}",
                type_name(&pair)
            ))
        })?;
        let name = String::from_utf8(name)
            .map_err(|_| PyValueError::new_err("a header name must be ASCII"))?;
        latin1 |= !value.is_ascii();
        let value: String = value.iter().map(|&b| char::from(b)).collect();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<u64>().map_err(|_| {
                PyValueError::new_err(format!("content-length {value:?} is not a number"))
            })?);
        }
        response.header(name, value);
    }
    if latin1 {
        response.set_latin1();
    }
    Ok(length)
}

/// The status of an `http.response.start`-shaped message.
pub(crate) fn status(message: &Bound<'_, PyDict>, kind: &str) -> PyResult<u16> {
    let py = message.py();
    let status = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err(format!("{kind} needs a 'status'")))?
        .extract::<u16>()
        .map_err(|_| PyValueError::new_err("the 'status' must be an int in 100..=999"))?;
    if !(100..=999).contains(&status) {
        return Err(PyValueError::new_err(format!(
            "status {status} is not in 100..=999"
        )));
    }
    Ok(status)
}

/// The state after a body message: more body, trailers, or done.
fn after_body(more: bool, trailers: bool) -> Out {
    if more {
        Out::Streaming { trailers }
    } else if trailers {
        Out::Trailers(Vec::new())
    } else {
        Out::Done
    }
}

fn request_message(py: Python<'_>, body: &[u8], more: bool) -> Py<PyAny> {
    let dict = PyDict::new(py);
    let _ = dict.set_item(intern!(py, "type"), intern!(py, "http.request"));
    let _ = dict.set_item(intern!(py, "body"), PyBytes::new(py, body));
    let _ = dict.set_item(intern!(py, "more_body"), more);
    dict.into_any().unbind()
}

pub(crate) fn disconnect_message(py: Python<'_>) -> Py<PyAny> {
    let dict = PyDict::new(py);
    let _ = dict.set_item(intern!(py, "type"), intern!(py, "http.disconnect"));
    dict.into_any().unbind()
}

/// Whether a future still waits (a cancelled waiter must not be resolved).
pub(crate) fn is_pending(py: Python<'_>, future: &Py<PyAny>) -> bool {
    future
        .bind(py)
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .is_ok_and(|done| !done)
}

pub(crate) fn resolve(py: Python<'_>, future: &Py<PyAny>, value: Py<PyAny>) {
    if is_pending(py, future) {
        if let Err(e) = future
            .bind(py)
            .call_method1(intern!(py, "set_result"), (value,))
        {
            tracing::debug!("cannot resolve an ASGI waiter: {e}");
        }
    }
}

/// Keeps `future` as the one `receive()` waiting; an error while another one still waits.
pub(crate) fn set_receive_waiter(
    py: Python<'_>,
    slot: &mut Option<Py<PyAny>>,
    future: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if slot.as_ref().is_some_and(|w| is_pending(py, w)) {
        return Err(PyRuntimeError::new_err(
            "receive() called while another receive() is waiting",
        ));
    }
    *slot = Some(future.clone().unbind());
    Ok(())
}

/// The dict a `send(message)` got and its `type`; an error if it is not a dict with one.
pub(crate) fn message_type<'py>(
    message: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, String)> {
    let py = message.py();
    let message = message
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
    let kind = message
        .get_item(intern!(py, "type"))?
        .ok_or_else(|| PyValueError::new_err("an ASGI message needs a 'type'"))?;
    let kind = kind.cast::<PyString>()?.to_str()?.to_owned();
    Ok((message.clone(), kind))
}

/// The error for a message `type` the scope (`"an http"`, `"a websocket"`) does not take.
pub(crate) fn unexpected_type(kind: &str, scope: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "unexpected ASGI message type {kind:?} for {scope} scope"
    ))
}

/// Whether `exc` is an `asyncio.CancelledError`.
pub(crate) fn is_cancelled_error(exc: &Bound<'_, PyAny>) -> bool {
    exc.py()
        .import("asyncio")
        .and_then(|a| a.getattr("CancelledError"))
        .is_ok_and(|c| exc.is_instance(&c).unwrap_or(false))
}

/// Cancels the application's task, if it has one, after the disconnect grace period;
/// `why` says what ended (for the log).
pub(crate) fn cancel_task(
    py: Python<'_>,
    task: Option<Py<PyAny>>,
    target: &str,
    why: &str,
) -> PyResult<()> {
    if let Some(task) = task {
        tracing::debug!(
            target = target,
            "{why}: cancelling the ASGI application after the grace period"
        );
        task.bind(py).call_method0(intern!(py, "cancel"))?;
    }
    Ok(())
}
