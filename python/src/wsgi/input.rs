//! `wsgi.input`: the request body as a Python file-like object. Every read that may wait
//! for the client runs detached from the interpreter, so other Python threads (and, with
//! `threads` > 1, the event loop's own calls) are never held up by a slow upload.

use std::io::{self, Read};
use std::sync::{Mutex, MutexGuard};

use ferrocorn_worker::RequestBody;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// How much a line read asks of the body at a time.
const LINE_CHUNK: usize = 8 * 1024;

/// The input stream over one request's body. It owns the body (moved out of the
/// `Request`), so it stays readable as long as the application keeps it.
#[pyclass(frozen, module = "ferrocorn", name = "InputStream")]
#[derive(Debug)]
pub(crate) struct InputStream {
    // Locked only while detached: a thread that waits for it never holds the interpreter,
    // so a second thread reading the same input cannot deadlock with the first.
    state: Mutex<Buffered>,
}

/// The body and the bytes read ahead of the application (by `readline`).
#[derive(Debug)]
struct Buffered {
    body: RequestBody,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Buffered {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    /// Reads more of the body behind what is buffered; `false` at its end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + LINE_CHUNK, 0);
        let n = read_retrying(&mut self.body, &mut self.buf[start..]);
        self.buf.truncate(start + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            self.eof = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// Up to `size` bytes (all that is left when `None`): fewer only at the end of the body.
    fn read(&mut self, size: Option<usize>) -> io::Result<Vec<u8>> {
        let size = size.unwrap_or(usize::MAX);
        let take = self.available().len().min(size);
        let mut out = self.consume(take);
        if out.len() < size && !self.eof {
            // `read_to_end` grows `out` without zeroing the room it reads into again on
            // every call (it tracks what is initialised), and stops at `size` or the end.
            let want = u64::try_from(size - out.len()).unwrap_or(u64::MAX);
            let before = out.len();
            (&mut self.body).take(want).read_to_end(&mut out)?;
            if ((out.len() - before) as u64) < want {
                self.eof = true;
            }
        }
        Ok(out)
    }

    /// One line, with its `\n`, of at most `limit` bytes (the rest when the body ends first).
    fn readline(&mut self, limit: Option<usize>) -> io::Result<Vec<u8>> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut scanned = 0;
        loop {
            let avail = self.available();
            let window = avail.len().min(limit);
            if let Some(i) = memchr(b'\n', &avail[scanned..window]) {
                return Ok(self.consume(scanned + i + 1));
            }
            if window == limit || !self.fill()? {
                let n = self.available().len().min(limit);
                return Ok(self.consume(n));
            }
            scanned = window;
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn read_retrying(body: &mut RequestBody, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match body.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A negative or absent size means "no limit", as for Python's file objects.
fn limit(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

impl InputStream {
    pub(crate) fn new(body: RequestBody) -> InputStream {
        InputStream {
            state: Mutex::new(Buffered {
                body,
                buf: Vec::new(),
                pos: 0,
                eof: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffered> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the body detached from the interpreter and makes bytes of its result.
    fn detached<'py>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(&mut Buffered) -> io::Result<Vec<u8>> + Send,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py
            .detach(|| f(&mut self.lock()))
            .map_err(|e| PyOSError::new_err(format!("cannot read the request body: {e}")))?;
        Ok(PyBytes::new(py, &bytes))
    }
}

#[pymethods]
impl InputStream {
    /// Reads `size` bytes (fewer only at the end of the body), or all that is left.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let size = limit(size);
        self.detached(py, |b| b.read(size))
    }

    /// Reads one line (through `\n`), at most `size` bytes of it.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let size = limit(size);
        self.detached(py, |b| b.readline(size))
    }

    /// Reads the remaining lines, stopping after the line that brings the total to `hint`.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|&h| h > 0);
        let lines = py
            .detach(|| -> io::Result<Vec<Vec<u8>>> {
                let mut b = self.lock();
                let mut lines = Vec::new();
                let mut total = 0;
                loop {
                    let line = b.readline(None)?;
                    if line.is_empty() {
                        break;
                    }
                    total += line.len();
                    lines.push(line);
                    if hint.is_some_and(|h| total >= h) {
                        break;
                    }
                }
                Ok(lines)
            })
            .map_err(|e| PyOSError::new_err(format!("cannot read the request body: {e}")))?;
        PyList::new(py, lines.iter().map(|l| PyBytes::new(py, l)))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    fn readable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffered(data: &[u8]) -> Buffered {
        let mut req = ferrocorn_worker::Request::for_test("POST", "/", &[], data);
        Buffered {
            body: std::mem::take(req.body()),
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    #[test]
    fn lines_limits_and_reads_mix() {
        let mut b = buffered(b"one\ntwo\nthree");
        assert_eq!(b.readline(None).unwrap(), b"one\n");
        assert_eq!(b.readline(Some(2)).unwrap(), b"tw");
        assert_eq!(b.read(Some(3)).unwrap(), b"o\nt");
        assert_eq!(b.readline(None).unwrap(), b"hree");
        assert_eq!(b.readline(None).unwrap(), b"");
        assert_eq!(b.read(None).unwrap(), b"");
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_read_whole() {
        let mut data = vec![b'x'; LINE_CHUNK * 3 + 5];
        data.push(b'\n');
        data.extend_from_slice(b"tail");
        let mut b = buffered(&data);
        assert_eq!(b.readline(None).unwrap().len(), LINE_CHUNK * 3 + 6);
        assert_eq!(b.read(None).unwrap(), b"tail");
    }

    #[test]
    fn read_of_a_size_returns_that_many_until_the_end() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut b = buffered(&data);
        assert_eq!(b.read(Some(100_000)).unwrap(), &data[..100_000]);
        assert_eq!(b.read(Some(150_000)).unwrap(), &data[100_000..]);
        assert!(b.read(Some(1)).unwrap().is_empty());
    }
}
