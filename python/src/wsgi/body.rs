//! From the application's return value to the worker's response body (PEP 3333, "The
//! Response"): a list or tuple is joined into one buffer; a `wsgi.file_wrapper` around a
//! regular file becomes a `sendfile` body; any other iterable is read up to its first
//! non-empty piece here and then streamed by [`PyStream`], one piece per read, as the
//! client takes them. A declared `Content-Length` is enforced: extra bytes are cut, and a
//! body that ends short is framed with the declared length so the worker closes the
//! connection after it. `close()` is called exactly once whatever happens.

use std::io::{self, Cursor, Read, Seek};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use ferrocorn_worker::{Body, Response};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple, PyType};

use super::file_wrapper::FileWrapper;
use super::start_response::StartResponse;
use crate::interp;
use crate::loader::{describe, traceback, type_name};

/// The head as it goes into the worker's `Response`.
struct Ready {
    status: u16,
    /// A reason phrase that is not the standard one.
    reason: Option<String>,
    headers: Vec<(ferrocorn_worker::HeaderText, ferrocorn_worker::HeaderText)>,
    content_length: Option<u64>,
    written: Vec<u8>,
}

impl Ready {
    /// Takes the head `start_response` set, with the bytes given to `write()`. Fails when
    /// it was never called.
    fn take(sr: &StartResponse) -> PyResult<Ready> {
        let mut head = sr.lock();
        let Some(status) = head.status else {
            return Err(PyRuntimeError::new_err(
                "the application returned without calling start_response()",
            ));
        };
        head.committed = true;
        Ok(Ready {
            status,
            reason: head.reason.take(),
            headers: std::mem::take(&mut head.headers),
            content_length: head.content_length,
            written: std::mem::take(&mut head.written),
        })
    }

    /// Fills `res`: the last step of a response, after which nothing fails.
    fn apply(self, res: &mut Response, body: Body) {
        res.status = self.status;
        // PEP 3333: header strings are latin-1; a value such as `café` goes out as the byte
        // 0xE9, not as its UTF-8 (start_response refused characters beyond latin-1).
        if self.reason.as_deref().is_some_and(|r| !r.is_ascii())
            || self.headers.iter().any(|(_, v)| !v.is_ascii())
        {
            res.set_latin1();
        }
        if let Some(reason) = self.reason {
            res.set_reason(reason);
        }
        for (name, value) in self.headers {
            res.header(name, value);
        }
        res.body = body;
    }
}

/// Where `close()` of a streamed body runs when the worker drops it.
///
/// With `threads` > 1 the event loop thread must never wait for the interpreter, so a
/// stream dropped there (its client went away, or a HEAD answer is not read) is handed to
/// a janitor thread that attaches and closes it.
#[derive(Debug)]
pub(crate) struct Closer {
    threads: usize,
    loop_thread: OnceLock<ThreadId>,
    janitor: OnceLock<mpsc::Sender<StreamState>>,
}

impl Closer {
    pub(crate) fn new(threads: usize) -> Closer {
        Closer {
            threads,
            loop_thread: OnceLock::new(),
            janitor: OnceLock::new(),
        }
    }

    /// Called on the event loop thread before it serves: records it and, with `threads`
    /// > 1, starts the janitor.
    pub(crate) fn start_worker(&self) -> Result<(), String> {
        let _ = self.loop_thread.set(std::thread::current().id());
        if self.threads > 1 && self.janitor.get().is_none() {
            let (tx, rx) = mpsc::channel::<StreamState>();
            std::thread::Builder::new()
                .name("py-janitor".into())
                .spawn(move || {
                    for stream in rx {
                        interp::attach(|py| stream.close(py));
                    }
                })
                .map_err(|e| format!("cannot start the janitor thread: {e}"))?;
            let _ = self.janitor.set(tx);
        }
        Ok(())
    }

    fn dispose(&self, stream: StreamState) {
        let on_loop = self.loop_thread.get() == Some(&std::thread::current().id());
        let stream = match self.janitor.get() {
            Some(tx) if self.threads > 1 && on_loop => match tx.send(stream) {
                Ok(()) => return,
                Err(mpsc::SendError(stream)) => stream,
            },
            _ => stream,
        };
        interp::attach(|py| stream.close(py));
    }
}

/// The iterator types that never wait: iterating a `list_iterator` or `tuple_iterator`
/// only reads a sequence already built (Django's `HttpResponse` returns one). After its
/// first piece such a body is read to its end at once and sent as one buffer with a
/// `Content-Length`, instead of being streamed chunked.
#[derive(Debug)]
pub(crate) struct EagerIterators {
    types: [Py<PyType>; 2],
}

impl EagerIterators {
    pub(crate) fn new(py: Python<'_>) -> PyResult<EagerIterators> {
        let list_iter = PyList::empty(py).try_iter()?.get_type().unbind();
        let tuple_iter = PyTuple::empty(py).try_iter()?.get_type().unbind();
        Ok(EagerIterators {
            types: [list_iter, tuple_iter],
        })
    }

    fn contains(&self, iter: &Bound<'_, PyIterator>) -> bool {
        let ty = iter.get_type();
        self.types.iter().any(|t| t.is(&ty))
    }
}

/// Turns `result` into the response. On `Err` nothing was put into `res` and `close()`
/// has been called.
pub(crate) fn respond(
    py: Python<'_>,
    closer: &Arc<Closer>,
    eager: &EagerIterators,
    result: Bound<'_, PyAny>,
    sr: &Bound<'_, StartResponse>,
    res: &mut Response,
    target: &str,
) -> PyResult<()> {
    if let Ok(list) = result.cast_exact::<PyList>() {
        let ready = Ready::take(sr.get())?;
        let body = joined(ready.written.is_empty(), list.len(), list.iter(), || {
            list.iter()
        });
        return finish_joined(ready, body, res);
    }
    if let Ok(tuple) = result.cast_exact::<PyTuple>() {
        let ready = Ready::take(sr.get())?;
        let body = joined(ready.written.is_empty(), tuple.len(), tuple.iter(), || {
            tuple.iter()
        });
        return finish_joined(ready, body, res);
    }
    if let Ok(wrapper) = result.cast_exact::<FileWrapper>() {
        if sendfile(py, &result, wrapper.get(), sr.get(), res, target)? {
            return Ok(());
        }
    }
    let iter = match result.try_iter() {
        Ok(iter) => iter,
        Err(e) => {
            close(py, &result, target);
            return Err(PyTypeError::new_err(format!(
                "the application returned {}, which is not iterable: {}",
                type_name(&result),
                describe(py, &e)
            )));
        }
    };
    let first = match first_piece(&iter, sr.get()) {
        Ok(first) => first,
        Err(e) => {
            close(py, &result, target);
            return Err(e);
        }
    };
    let mut ready = match Ready::take(sr.get()) {
        Ok(ready) => ready,
        Err(e) => {
            close(py, &result, target);
            return Err(e);
        }
    };
    let written = std::mem::take(&mut ready.written);
    match first {
        None => {
            // Exhausted: what write() got is the whole body.
            close(py, &result, target);
            let content_length = ready.content_length;
            ready.apply(res, complete(written, content_length));
        }
        Some(first)
            if ready
                .content_length
                .is_some_and(|n| first.len() as u64 >= n) =>
        {
            // The declared length is reached: no need to iterate further (PEP 3333 lets a
            // server stop early, provided it calls close()).
            close(py, &result, target);
            let content_length = ready.content_length;
            ready.apply(res, complete(first, content_length));
        }
        Some(mut first) if eager.contains(&iter) => {
            let rest = iter
                .clone()
                .try_fold(Vec::new(), |mut rest, piece| -> PyResult<Vec<u8>> {
                    rest.extend_from_slice(bytes_of(&piece?)?.as_bytes());
                    Ok(rest)
                });
            close(py, &result, target);
            // The head is committed: a failure now can only break the response off.
            match rest {
                Ok(rest) => first.extend_from_slice(&rest),
                Err(e) => {
                    tracing::error!(
                        "Error handling request {target} (response already started)\n{}",
                        traceback(py, &e)
                    );
                    let len = ready.content_length;
                    ready.apply(
                        res,
                        Body::Stream {
                            reader: Box::new(Cursor::new(first).chain(FailingReader)),
                            len,
                        },
                    );
                    return Ok(());
                }
            }
            let content_length = ready.content_length;
            ready.apply(res, complete(first, content_length));
        }
        Some(first) => {
            let len = ready.content_length;
            let state = StreamState {
                iter: iter.unbind(),
                result: result.unbind(),
                start_response: sr.clone().unbind(),
                remaining: len.map(|n| n - first.len() as u64),
                target: target.to_owned(),
            };
            let reader = PyStream {
                state: Some(state),
                pending: first,
                pos: 0,
                closer: Arc::clone(closer),
            };
            ready.apply(
                res,
                Body::Stream {
                    reader: Box::new(reader),
                    len,
                },
            );
        }
    }
    Ok(())
}

/// Iterates up to the first non-empty piece (with what `write()` got before it): the head
/// is committed with it. `None` when the iterable ends first.
fn first_piece(iter: &Bound<'_, PyIterator>, sr: &StartResponse) -> PyResult<Option<Vec<u8>>> {
    let mut iter = iter.clone();
    loop {
        let Some(piece) = iter.next() else {
            return Ok(None);
        };
        let piece = piece?;
        let bytes = bytes_of(&piece)?.as_bytes();
        let mut head = sr.lock();
        if bytes.is_empty() && head.written.is_empty() {
            continue;
        }
        if head.status.is_none() {
            return Err(PyRuntimeError::new_err(
                "the application produced body bytes before calling start_response()",
            ));
        }
        head.committed = true;
        let mut first = std::mem::take(&mut head.written);
        first.extend_from_slice(bytes);
        return Ok(Some(first));
    }
}

/// The `sendfile` path of `wsgi.file_wrapper`: taken when the wrapped object has a
/// `fileno()` of a regular file and `write()` was not used. The body is a duplicate of
/// the descriptor from the file's position (`tell()`) to its end, or the declared length;
/// the file itself is closed at once. `false` when the wrapper must be iterated instead.
fn sendfile(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    wrapper: &FileWrapper,
    sr: &StartResponse,
    res: &mut Response,
    target: &str,
) -> PyResult<bool> {
    {
        let head = sr.lock();
        if head.status.is_none() || !head.written.is_empty() {
            return Ok(false);
        }
    }
    let file = wrapper.filelike.bind(py);
    let Ok(fd) = file
        .call_method0(intern!(py, "fileno"))
        .and_then(|fd| fd.extract::<i32>())
    else {
        return Ok(false);
    };
    let Ok(mut dup) = interp::dup_fd(fd) else {
        return Ok(false);
    };
    let Ok(meta) = dup.metadata() else {
        return Ok(false);
    };
    if !meta.is_file() {
        return Ok(false);
    }
    let offset = match file
        .call_method0(intern!(py, "tell"))
        .and_then(|t| t.extract::<u64>())
    {
        Ok(offset) => offset,
        Err(_) => match dup.stream_position() {
            Ok(offset) => offset,
            Err(_) => return Ok(false),
        },
    };
    let available = meta.len().saturating_sub(offset);
    let ready = Ready::take(sr)?;
    close(py, result, target);
    let body = match ready.content_length {
        Some(n) if n > available => {
            // Shorter than declared: sent with the declared length, then the worker closes.
            dup.seek(io::SeekFrom::Start(offset))?;
            Body::Stream {
                reader: Box::new(dup.take(available)),
                len: Some(n),
            }
        }
        Some(0) => Body::Empty,
        Some(n) => Body::File {
            file: dup,
            offset,
            len: n,
        },
        None if available == 0 => Body::Empty,
        None => Body::File {
            file: dup,
            offset,
            len: available,
        },
    };
    ready.apply(res, body);
    Ok(true)
}

/// The bytes of a list or tuple body: one copy of a single item, else one buffer.
fn joined<'py, I: Iterator<Item = Bound<'py, PyAny>>>(
    nothing_written: bool,
    len: usize,
    mut items: I,
    again: impl FnOnce() -> I,
) -> PyResult<Vec<u8>> {
    if len == 1 && nothing_written {
        let item = items.next().expect("one item");
        return Ok(bytes_of(&item)?.as_bytes().to_vec());
    }
    let mut total = 0;
    for item in items {
        total += bytes_of(&item)?.as_bytes().len();
    }
    let mut out = Vec::with_capacity(total);
    for item in again() {
        out.extend_from_slice(bytes_of(&item)?.as_bytes());
    }
    Ok(out)
}

fn finish_joined(ready: Ready, body: PyResult<Vec<u8>>, res: &mut Response) -> PyResult<()> {
    let mut body = body?;
    let mut all = ready.written;
    let ready = Ready {
        written: Vec::new(),
        ..ready
    };
    if !all.is_empty() {
        all.append(&mut body);
        body = all;
    }
    let content_length = ready.content_length;
    ready.apply(res, complete(body, content_length));
    Ok(())
}

/// A body known in full, framed by the declared length when there is one.
fn complete(mut body: Vec<u8>, content_length: Option<u64>) -> Body {
    match content_length {
        Some(n) if (body.len() as u64) > n => {
            body.truncate(n as usize);
            Body::Bytes(body)
        }
        // Fewer bytes than declared: the worker sends them with the declared length and
        // closes the connection (so does a HEAD answer, whose body is not sent at all).
        Some(n) if (body.len() as u64) < n => Body::Stream {
            reader: Box::new(Cursor::new(body)),
            len: Some(n),
        },
        _ if body.is_empty() => Body::Empty,
        _ => Body::Bytes(body),
    }
}

fn bytes_of<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "the response body must be an iterable of bytes, but it produced {}",
            type_name(item)
        ))
    })
}

/// Calls the iterable's `close()`, logging (not raising) what it raises: the response is
/// decided by then.
fn close(py: Python<'_>, result: &Bound<'_, PyAny>, target: &str) {
    let outcome = result
        .getattr_opt(intern!(py, "close"))
        .and_then(|close| close.map_or(Ok(()), |c| c.call0().map(drop)));
    if let Err(e) = outcome {
        tracing::error!(
            "Error closing the response of {target}\n{}",
            traceback(py, &e)
        );
    }
}

/// What a streamed body needs of Python: the iterator, the object to `close()`, and the
/// `start_response` whose `write()` may still get bytes while the iterator runs.
#[derive(Debug)]
pub(crate) struct StreamState {
    iter: Py<PyIterator>,
    result: Py<PyAny>,
    start_response: Py<StartResponse>,
    /// Bytes the declared `Content-Length` still allows.
    remaining: Option<u64>,
    target: String,
}

impl StreamState {
    /// Copies the next non-empty piece into `buf` (the rest into `pending`); 0 at the end.
    fn next_piece(
        &mut self,
        py: Python<'_>,
        buf: &mut [u8],
        pending: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let mut iter = self.iter.bind(py).clone();
        loop {
            if self.remaining == Some(0) {
                return Ok(0);
            }
            let written = std::mem::take(&mut self.start_response.get().lock().written);
            if !written.is_empty() {
                return Ok(self.deliver(&written, buf, pending));
            }
            let piece = match iter.next() {
                None => {
                    // write() may have been called by the iterator's last step.
                    let written = std::mem::take(&mut self.start_response.get().lock().written);
                    return Ok(self.deliver(&written, buf, pending));
                }
                Some(Ok(piece)) => piece,
                Some(Err(e)) => return Err(self.fail(py, &e)),
            };
            match bytes_of(&piece) {
                Ok(bytes) if bytes.as_bytes().is_empty() => continue,
                Ok(bytes) => return Ok(self.deliver(bytes.as_bytes(), buf, pending)),
                Err(e) => return Err(self.fail(py, &e)),
            }
        }
    }

    /// Cuts `piece` to the declared length, copies what fits into `buf` and keeps the rest.
    fn deliver(&mut self, piece: &[u8], buf: &mut [u8], pending: &mut Vec<u8>) -> usize {
        let allowed = match &mut self.remaining {
            Some(left) => {
                let n = (piece.len() as u64).min(*left);
                *left -= n;
                n as usize
            }
            None => piece.len(),
        };
        let piece = &piece[..allowed];
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        pending.clear();
        pending.extend_from_slice(&piece[n..]);
        n
    }

    /// Logs an exception raised after the head was committed; the read fails, so the
    /// client sees the connection close on a truncated body.
    fn fail(&self, py: Python<'_>, err: &PyErr) -> io::Error {
        tracing::error!(
            "Error handling request {} (response already started)\n{}",
            self.target,
            traceback(py, err)
        );
        io::Error::other(format!("the application failed: {}", describe(py, err)))
    }

    /// Calls `close()` and lets go of the Python objects, attached.
    fn close(self, py: Python<'_>) {
        close(py, self.result.bind(py), &self.target);
        drop(self);
    }
}

/// A streamed response body: each read that finds nothing pending attaches to the
/// interpreter for the iterator's next piece, so the iteration follows the client's pace.
#[derive(Debug)]
pub(crate) struct PyStream {
    /// `None` once the iterable is finished and closed.
    state: Option<StreamState>,
    /// Bytes of the last piece that did not fit the reader's buffer.
    pending: Vec<u8>,
    pos: usize,
    closer: Arc<Closer>,
}

impl PyStream {
    fn finish(&mut self) {
        if let Some(state) = self.state.take() {
            interp::attach(|py| state.close(py));
        }
    }
}

impl Read for PyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos < self.pending.len() {
            let n = (self.pending.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        let Some(state) = self.state.as_mut() else {
            return Ok(0);
        };
        self.pos = 0;
        let pending = &mut self.pending;
        match interp::attach(|py| state.next_piece(py, buf, pending)) {
            Ok(0) => {
                self.finish();
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => {
                self.finish();
                Err(e)
            }
        }
    }
}

impl Drop for PyStream {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            self.closer.dispose(state);
        }
    }
}

/// A reader that fails: the end of a body whose application failed after its head.
#[derive(Debug)]
struct FailingReader;

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other(
            "the application failed after the response started",
        ))
    }
}
