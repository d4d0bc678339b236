//! [`RequestBody`]: a request body in memory, in a spilled file, or streamed through a
//! [`BodyPipe`] the event loop fills while the application reads.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::sync::{Arc, Condvar, Mutex};

/// The body of a request, decoded (chunked coding removed), readable with [`Read`].
///
/// How it arrives: the event loop never blocks on the socket. A body up to
/// [`RequestBody::MEMORY_LIMIT`] is received in full before the application is called. A
/// larger one is *streamed* when `threads` > 1: the application is called on the pool at once
/// and its reads block until the loop has received more (the loop stops reading the socket
/// while the application is [`RequestBody::STREAM_BUFFER`] bytes behind). With `threads` = 1
/// the application runs on the loop thread and cannot wait for the socket, so a larger body
/// is received in full first, spilling to an unlinked temporary file. Either way
/// `limit_request_body` caps the size (413), and a body that breaks off (malformed chunk,
/// timeout, closed connection) makes `read` fail.
#[derive(Debug)]
pub struct RequestBody {
    inner: BodyStore,
    len: Option<u64>,
}

#[derive(Debug)]
enum BodyStore {
    Memory(Cursor<Vec<u8>>),
    File(File),
    Pipe(Arc<BodyPipe>),
}

impl RequestBody {
    /// Bodies larger than this are streamed (`threads` > 1) or kept in a temporary file.
    pub const MEMORY_LIMIT: usize = 64 * 1024;
    /// How far a streamed body may run ahead of the application's reads.
    pub const STREAM_BUFFER: usize = 256 * 1024;

    pub(crate) fn empty() -> RequestBody {
        RequestBody::from_bytes(Vec::new())
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> RequestBody {
        RequestBody {
            len: Some(bytes.len() as u64),
            inner: BodyStore::Memory(Cursor::new(bytes)),
        }
    }

    pub(crate) fn from_file(mut file: File, len: u64) -> io::Result<RequestBody> {
        file.seek(SeekFrom::Start(0))?;
        Ok(RequestBody {
            inner: BodyStore::File(file),
            len: Some(len),
        })
    }

    pub(crate) fn from_pipe(pipe: Arc<BodyPipe>, len: Option<u64>) -> RequestBody {
        RequestBody {
            inner: BodyStore::Pipe(pipe),
            len,
        }
    }

    /// The body's length in bytes when known: always for a body received in full, from
    /// `Content-Length` for a streamed one, `None` for a streamed chunked body.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// Makes this an empty body, keeping the memory buffer (unless it grew large) in place.
    pub(crate) fn clear(&mut self) {
        match &mut self.inner {
            BodyStore::Memory(c) if c.get_ref().capacity() <= 16 * 1024 => {
                c.get_mut().clear();
                c.set_position(0);
                self.len = Some(0);
            }
            _ => *self = RequestBody::empty(),
        }
    }

    /// Takes back the memory buffer for reuse (unless it grew large), leaving an empty body.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let old = std::mem::take(self);
        match old.inner {
            BodyStore::Memory(c) if c.get_ref().capacity() <= 16 * 1024 => {
                let mut v = c.into_inner();
                v.clear();
                v
            }
            _ => Vec::new(),
        }
    }
}

impl Default for RequestBody {
    /// An empty body: `std::mem::take(request.body())` moves the body out of a request
    /// (an application that reads it after `call` returns, from another object).
    fn default() -> RequestBody {
        RequestBody::empty()
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyStore::Memory(c) => c.read(buf),
            BodyStore::File(f) => f.read(buf),
            BodyStore::Pipe(p) => p.read(buf),
        }
    }
}

/// A streamed body between the event loop (writer) and an application thread (reader).
pub(crate) struct BodyPipe {
    state: Mutex<PipeState>,
    cond: Condvar,
    /// Called (from the reader's thread) when a paused connection may read again.
    resume: Box<dyn Fn() + Send + Sync>,
}

#[derive(Debug, Default)]
struct PipeState {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes in `chunks`, minus what was read of the front chunk.
    buffered: usize,
    /// Read position in the front chunk.
    front_pos: usize,
    finished: bool,
    failed: Option<String>,
    /// The loop stopped reading the socket until the reader catches up.
    paused: bool,
}

impl fmt::Debug for BodyPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyPipe")
            .field("state", &self.state)
            .finish()
    }
}

impl BodyPipe {
    pub(crate) fn new(resume: Box<dyn Fn() + Send + Sync>) -> BodyPipe {
        BodyPipe {
            state: Mutex::new(PipeState::default()),
            cond: Condvar::new(),
            resume,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends decoded body bytes. Returns whether the loop should pause reading (the reader
    /// is [`RequestBody::STREAM_BUFFER`] behind); the pipe then calls `resume` later.
    pub(crate) fn push(&self, bytes: Vec<u8>) -> bool {
        let mut s = self.lock();
        if !bytes.is_empty() {
            s.buffered += bytes.len();
            s.chunks.push_back(bytes);
            self.cond.notify_all();
        }
        if s.buffered > RequestBody::STREAM_BUFFER {
            s.paused = true;
        }
        s.paused
    }

    /// Marks the end of the body.
    pub(crate) fn finish(&self) {
        self.lock().finished = true;
        self.cond.notify_all();
    }

    /// Breaks the body off: pending and later reads fail with `message`.
    pub(crate) fn fail(&self, message: &str) {
        let mut s = self.lock();
        if !s.finished && s.failed.is_none() {
            s.failed = Some(message.to_string());
        }
        self.cond.notify_all();
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.lock();
        loop {
            if let Some(front) = s.chunks.front() {
                let start = s.front_pos;
                let n = (front.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&front[start..start + n]);
                let front_len = front.len();
                s.front_pos += n;
                s.buffered -= n;
                if s.front_pos == front_len {
                    s.chunks.pop_front();
                    s.front_pos = 0;
                }
                if s.paused && s.buffered <= RequestBody::STREAM_BUFFER / 4 {
                    s.paused = false;
                    drop(s);
                    (self.resume)();
                }
                return Ok(n);
            }
            if let Some(message) = &s.failed {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    message.clone(),
                ));
            }
            if s.finished {
                return Ok(0);
            }
            // Waiting for the client is not the application being stuck.
            s = crate::pool::waiting_for_client(|| self.cond.wait(s))
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_streams_pauses_and_resumes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let resumed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&resumed);
        let pipe = Arc::new(BodyPipe::new(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        let mut body = RequestBody::from_pipe(Arc::clone(&pipe), None);
        let big = vec![7u8; RequestBody::STREAM_BUFFER + 1];
        assert!(pipe.push(big.clone()), "over the buffer: pause");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            body.read_to_end(&mut all).map(|_| all)
        });
        pipe.push(b"tail".to_vec());
        pipe.finish();
        let all = reader.join().unwrap().unwrap();
        assert_eq!(all.len(), big.len() + 4);
        assert!(all.ends_with(b"tail"));
        assert_eq!(
            resumed.load(Ordering::SeqCst),
            1,
            "resumed once the reader caught up"
        );
    }

    #[test]
    fn failed_pipe_fails_the_read() {
        let pipe = Arc::new(BodyPipe::new(Box::new(|| {})));
        let mut body = RequestBody::from_pipe(Arc::clone(&pipe), Some(10));
        pipe.push(b"abc".to_vec());
        pipe.fail("client went away");
        let mut buf = [0u8; 8];
        assert_eq!(body.read(&mut buf).unwrap(), 3);
        let err = body.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("client went away"));
    }
}
