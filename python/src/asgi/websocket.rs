//! One WebSocket as the application sees it: the `receive` and `send` callables of an ASGI
//! 3.0 `websocket` scope, over the worker's deferred WebSocket conversation (the worker
//! frames, answers pings, checks UTF-8 and the message limit; this side only moves whole
//! messages). `receive` gives `websocket.connect`, then `websocket.receive` messages, then
//! `websocket.disconnect`; `send` takes `websocket.accept` (the `101`), `websocket.send`
//! (with backpressure: it waits while a window of bytes is unwritten), `websocket.close`
//! (before accept: `403`), and the Denial Response extension's
//! `websocket.http.response.start`/`.body`.
//!
//! A `send` after the client's close or disconnect raises [`ClientDisconnected`] (an
//! `OSError`, ASGI spec 2.4); a message the state does not allow (a `send` before accept or
//! after the application's own close) raises `RuntimeError`, as uvicorn does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ferrocorn_worker::ws::close_code;
use ferrocorn_worker::{Body, ExchangeId, Reply, Request, Response, WsMessage};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::cycle::{
    cancel_task, is_cancelled_error, is_pending, message_type, resolve, set_headers,
    set_receive_waiter, status, unexpected_type, Ready,
};
use super::dispatch::Shared;

pyo3::create_exception!(
    ferrocorn,
    ClientDisconnected,
    pyo3::exceptions::PyOSError,
    "The WebSocket client closed or went away: nothing can be sent on it any more."
);

/// Message bytes the application may send before `send` waits for the worker to have
/// written them (as an `http` response body's window).
const SEND_WINDOW: usize = 256 * 1024;

/// Where the handshake and the connection stand.
#[derive(Debug)]
enum Phase {
    /// No answer to the handshake yet (`websocket.connect` taken or not).
    Handshake,
    /// A denial response started: its body accumulates until `more_body` is false.
    Denial { response: Response, body: Vec<u8> },
    /// The `101` is sent: messages flow.
    Open,
    /// The application sent `websocket.close`: the client's answer is awaited.
    Closing,
    /// Nothing more can be sent: a final response, or the connection is over.
    Done,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The handshake request, kept for `websocket.accept`.
    request: Option<Request>,
    connect_taken: bool,
    /// Messages received and not yet taken by `receive`, with the worker's pause mark.
    inbox: VecDeque<(WsMessage, bool)>,
    /// The client's close code and reason, or 1006: the connection is over.
    ended: Option<(u16, String)>,
    receive_waiter: Option<Py<PyAny>>,
    send_waiter: Option<Py<PyAny>>,
    /// Message bytes sent since the worker last said it wrote everything.
    outstanding: usize,
    task: Option<Py<PyAny>>,
    /// The application's coroutine has ended (its replies are final).
    finished: bool,
}

/// The state of one WebSocket, reached from its `receive` and `send` and from the worker's
/// events.
#[pyclass(frozen, module = "ferrocorn", name = "WebSocketCycle")]
pub(crate) struct WsCycle {
    id: ExchangeId,
    shared: Arc<Shared>,
    /// For the log.
    target: String,
    state: Mutex<State>,
}

impl WsCycle {
    pub(crate) fn new(id: ExchangeId, shared: Arc<Shared>, request: Request) -> WsCycle {
        WsCycle {
            id,
            shared,
            target: request.target().to_owned(),
            state: Mutex::new(State {
                phase: Phase::Handshake,
                request: Some(request),
                connect_taken: false,
                inbox: VecDeque::new(),
                ended: None,
                receive_waiter: None,
                send_waiter: None,
                outstanding: 0,
                task: None,
                finished: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_task(&self, task: Py<PyAny>) {
        self.lock().task = Some(task);
    }

    /// A message from the client.
    pub(crate) fn message(&self, py: Python<'_>, message: WsMessage, paused: bool) {
        let waiter = self.lock().receive_waiter.take();
        match waiter {
            Some(waiter) if is_pending(py, &waiter) => {
                let value = self.take_message(py, message, paused);
                resolve(py, &waiter, value);
            }
            _ => self.lock().inbox.push_back((message, paused)),
        }
    }

    /// The connection is over: the client's close (`code`, `reason`), a failure, a graceful
    /// stop (1001), or 1006 when it went without a close frame. A waiting `receive` gets
    /// `websocket.disconnect` once the messages before it are taken, a waiting `send`
    /// returns, and the application has the grace period to finish.
    pub(crate) fn closed(slf: &Bound<'_, Self>, code: u16, reason: String) {
        let py = slf.py();
        let me = slf.get();
        let (receive, send) = {
            let mut st = me.lock();
            if st.ended.is_some() {
                return;
            }
            st.ended = Some((code, reason.clone()));
            if matches!(st.phase, Phase::Open | Phase::Closing) {
                st.phase = Phase::Done;
            }
            // A waiting `receive` means every message was taken.
            (st.receive_waiter.take(), st.send_waiter.take())
        };
        if let Some(waiter) = receive {
            resolve(py, &waiter, disconnect_message(py, code, &reason));
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

    fn take_message(&self, py: Python<'_>, message: WsMessage, paused: bool) -> Py<PyAny> {
        if paused {
            self.shared.reply(py, Reply::Resume { id: self.id });
        }
        receive_message(py, message)
    }

    fn reply(&self, py: Python<'_>, reply: Reply) {
        self.shared.reply(py, reply);
    }

    /// Answers the handshake with a plain response (403, 500, a denial) instead of the 101.
    fn refuse(&self, py: Python<'_>, response: Response) {
        self.shared.respond_whole(py, self.id, response);
    }

    /// The application's coroutine ended (`failure`: its traceback): before the handshake
    /// was answered, 500; while the connection is open, a close frame, 1000 after a
    /// return and 1011 after an exception.
    fn end(&self, py: Python<'_>, failure: Option<String>) {
        let phase = {
            let mut st = self.lock();
            st.finished = true;
            std::mem::replace(&mut st.phase, Phase::Done)
        };
        match (&phase, &failure) {
            (_, Some(trace)) => tracing::error!("Exception in ASGI application\n{trace}"),
            (Phase::Handshake | Phase::Denial { .. }, None) => tracing::error!(
                target = self.target.as_str(),
                "ASGI callable returned without answering the WebSocket handshake"
            ),
            _ => {}
        }
        match phase {
            Phase::Handshake | Phase::Denial { .. } => {
                if self.lock().ended.is_none() {
                    let mut response = Response::new();
                    response.plain(500, "internal server error\n");
                    self.refuse(py, response);
                } else {
                    self.reply(py, Reply::Abort { id: self.id });
                }
            }
            Phase::Open => {
                let code = if failure.is_some() {
                    close_code::INTERNAL_ERROR
                } else {
                    close_code::NORMAL
                };
                self.reply(
                    py,
                    Reply::Close {
                        id: self.id,
                        code,
                        reason: String::new(),
                    },
                );
            }
            Phase::Closing | Phase::Done => {}
        }
        self.shared.forget(self.id);
    }
}

#[pymethods]
impl WsCycle {
    /// `await receive()`.
    fn receive<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (message, ended) = {
            let mut st = self.lock();
            if !std::mem::replace(&mut st.connect_taken, true) {
                return Ready::awaitable(py, Some(connect_message(py)));
            }
            (st.inbox.pop_front(), st.ended.clone())
        };
        if let Some((message, paused)) = message {
            let value = self.take_message(py, message, paused);
            return Ready::awaitable(py, Some(value));
        }
        if let Some((code, reason)) = ended {
            return Ready::awaitable(py, Some(disconnect_message(py, code, &reason)));
        }
        // Nothing yet: the next message, or the end, resolves it.
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
            "websocket.send" => self.send_message(message)?,
            "websocket.accept" => {
                self.accept(message)?;
                false
            }
            "websocket.close" => {
                self.close(message)?;
                false
            }
            "websocket.http.response.start" => {
                self.denial_start(message)?;
                false
            }
            "websocket.http.response.body" => {
                self.denial_body(message)?;
                false
            }
            other => return Err(unexpected_type(other, "a websocket")),
        };
        if wait {
            let future = self.shared.create_future(py)?;
            let mut st = self.lock();
            if st.ended.is_none() {
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
        let quiet = self.lock().ended.is_some() && is_cancelled_error(exc);
        if quiet {
            // Cancelled after the grace period that followed the disconnect.
            return self.end(py, None);
        }
        let err = PyErr::from_value(exc.clone());
        self.end(py, Some(crate::loader::traceback(py, &err)));
    }

    /// The disconnect grace period is over: cancel the application if it still runs.
    fn expire(&self, py: Python<'_>) -> PyResult<()> {
        let task = {
            let st = self.lock();
            if st.finished {
                return Ok(());
            }
            st.task.as_ref().map(|t| t.clone_ref(py))
        };
        cancel_task(py, task, &self.target, "the WebSocket ended")
    }
}

impl WsCycle {
    /// The error for a message the connection's state does not allow.
    fn refused(st: &State, kind: &str) -> PyErr {
        if let Some((code, _)) = &st.ended {
            return ClientDisconnected::new_err(format!(
                "cannot send {kind:?}: the WebSocket client disconnected (code {code})"
            ));
        }
        let expected = match st.phase {
            Phase::Handshake => {
                "'websocket.accept', 'websocket.close' or 'websocket.http.response.start'"
            }
            Phase::Denial { .. } => "'websocket.http.response.body'",
            Phase::Open => "'websocket.send' or 'websocket.close'",
            Phase::Closing | Phase::Done => {
                return PyRuntimeError::new_err(format!(
                    "unexpected ASGI message {kind:?}, after sending 'websocket.close' or a \
                     response"
                ))
            }
        };
        PyRuntimeError::new_err(format!(
            "expected ASGI message {expected}, but got {kind:?}"
        ))
    }

    /// `websocket.send`: returns whether `send` waits for the worker to write.
    fn send_message(&self, message: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = message.py();
        let text = message
            .get_item(intern!(py, "text"))?
            .filter(|t| !t.is_none());
        let payload = match text {
            Some(text) => WsMessage::Text(
                text.cast::<PyString>()
                    .map_err(|_| PyTypeError::new_err("'text' must be a str"))?
                    .to_str()?
                    .to_owned(),
            ),
            None => match message
                .get_item(intern!(py, "bytes"))?
                .filter(|b| !b.is_none())
            {
                Some(bytes) => WsMessage::Binary(
                    bytes
                        .cast::<PyBytes>()
                        .map(|b| b.as_bytes().to_vec())
                        .or_else(|_| bytes.extract::<Vec<u8>>())
                        .map_err(|_| PyTypeError::new_err("'bytes' must be bytes"))?,
                ),
                None => {
                    return Err(PyValueError::new_err(
                        "websocket.send needs 'bytes' or 'text'",
                    ))
                }
            },
        };
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Open) || st.ended.is_some() {
            return Err(Self::refused(&st, "websocket.send"));
        }
        st.outstanding += payload.len();
        let wait = st.outstanding >= SEND_WINDOW;
        drop(st);
        self.reply(
            py,
            Reply::Send {
                id: self.id,
                message: payload,
                wait,
            },
        );
        Ok(wait)
    }

    /// `websocket.accept`: the `101`, with the subprotocol and header fields given.
    fn accept(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let protocol: Option<String> = match message.get_item(intern!(py, "subprotocol"))? {
            Some(p) if !p.is_none() => Some(p.extract()?),
            _ => None,
        };
        let mut response = Response::new();
        if let Some(headers) = message.get_item(intern!(py, "headers"))? {
            set_headers(&mut response, &headers)?;
        }
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Handshake) || st.ended.is_some() {
            return Err(Self::refused(&st, "websocket.accept"));
        }
        let Some(request) = st.request.take() else {
            return Err(Self::refused(&st, "websocket.accept"));
        };
        // Checked when the request came: this fills in the 101.
        let accepted = response.accept_websocket_deferred(&request, protocol.as_deref());
        st.phase = if accepted { Phase::Open } else { Phase::Done };
        drop(st);
        self.refuse(py, response);
        Ok(())
    }

    /// `websocket.close`: a close frame once accepted, else `403` (its `reason` has no
    /// place in an HTTP response and is dropped, as the spec allows).
    fn close(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let code = match message.get_item(intern!(py, "code"))? {
            Some(c) if !c.is_none() => c
                .extract::<u16>()
                .map_err(|_| PyValueError::new_err("the close 'code' must be an int"))?,
            _ => close_code::NORMAL,
        };
        let reason: String = match message.get_item(intern!(py, "reason"))? {
            Some(r) if !r.is_none() => r.extract()?,
            _ => String::new(),
        };
        let mut st = self.lock();
        if st.ended.is_some() {
            return Err(Self::refused(&st, "websocket.close"));
        }
        match std::mem::replace(&mut st.phase, Phase::Done) {
            Phase::Handshake => {
                drop(st);
                let mut response = Response::new();
                response.status = 403;
                response.body = Body::Empty;
                self.refuse(py, response);
            }
            Phase::Open => {
                st.phase = Phase::Closing;
                drop(st);
                self.reply(
                    py,
                    Reply::Close {
                        id: self.id,
                        code,
                        reason,
                    },
                );
            }
            other => {
                st.phase = other;
                return Err(Self::refused(&st, "websocket.close"));
            }
        }
        Ok(())
    }

    /// `websocket.http.response.start`: the denial response's head.
    fn denial_start(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let status = status(message, "websocket.http.response.start")?;
        let mut response = Response::new();
        response.status = status;
        if let Some(headers) = message.get_item(intern!(py, "headers"))? {
            set_headers(&mut response, &headers)?;
        }
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Handshake) || st.ended.is_some() {
            return Err(Self::refused(&st, "websocket.http.response.start"));
        }
        st.phase = Phase::Denial {
            response,
            body: Vec::new(),
        };
        Ok(())
    }

    /// `websocket.http.response.body`: collected until `more_body` is false, then the
    /// response goes out whole (denials are short).
    fn denial_body(&self, message: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = message.py();
        let data = match message.get_item(intern!(py, "body"))? {
            Some(body) => body
                .extract::<Vec<u8>>()
                .map_err(|_| PyTypeError::new_err("'body' must be bytes"))?,
            None => Vec::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(more) => more.is_truthy()?,
            None => false,
        };
        let mut st = self.lock();
        let Phase::Denial { body, .. } = &mut st.phase else {
            return Err(Self::refused(&st, "websocket.http.response.body"));
        };
        body.extend_from_slice(&data);
        if more {
            return Ok(());
        }
        let Phase::Denial { mut response, body } = std::mem::replace(&mut st.phase, Phase::Done)
        else {
            return Ok(());
        };
        drop(st);
        response.body = if body.is_empty() {
            Body::Empty
        } else {
            Body::Bytes(body)
        };
        self.refuse(py, response);
        Ok(())
    }
}

fn connect_message(py: Python<'_>) -> Py<PyAny> {
    let dict = PyDict::new(py);
    let _ = dict.set_item(intern!(py, "type"), intern!(py, "websocket.connect"));
    dict.into_any().unbind()
}

fn receive_message(py: Python<'_>, message: WsMessage) -> Py<PyAny> {
    let dict = PyDict::new(py);
    let _ = dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"));
    let _ = match message {
        WsMessage::Text(text) => dict.set_item(intern!(py, "text"), PyString::new(py, &text)),
        WsMessage::Binary(bytes) => dict.set_item(intern!(py, "bytes"), PyBytes::new(py, &bytes)),
    };
    dict.into_any().unbind()
}

fn disconnect_message(py: Python<'_>, code: u16, reason: &str) -> Py<PyAny> {
    let dict = PyDict::new(py);
    let _ = dict.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"));
    let _ = dict.set_item(intern!(py, "code"), code);
    let _ = dict.set_item(intern!(py, "reason"), reason);
    dict.into_any().unbind()
}
