//! The thread pool for `threads` > 1: application calls run on worker threads while the
//! event loop keeps doing I/O and heartbeats; a `mio::Waker` brings finished exchanges back.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::http1::Exchange;

/// Work for the pool (or its result), tagged with the connection it belongs to.
#[derive(Debug)]
pub(crate) struct Job {
    pub slot: usize,
    pub serial: u64,
    pub work: Work,
}

/// What a pool thread does.
pub(crate) enum Work {
    /// Call the application; comes back with the response filled in.
    Call(Box<Exchange>),
    /// Read the next piece (at most `cap` bytes) of a streamed response body.
    Fill {
        reader: Box<dyn Read + Send>,
        cap: usize,
    },
    /// A piece read (empty at the end of the body), and the reader for the next one.
    Filled {
        reader: Box<dyn Read + Send>,
        piece: io::Result<Vec<u8>>,
    },
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Call(ex) => write!(f, "Call({})", ex.req.target()),
            Work::Fill { cap, .. } => write!(f, "Fill({cap})"),
            Work::Filled { piece, .. } => write!(f, "Filled({:?})", piece.as_ref().map(Vec::len)),
        }
    }
}

/// Reads one piece of at most `cap` bytes (empty at the end). A panic in the reader is
/// contained here (the pool thread lives on) and comes back as an error.
fn read_piece(reader: &mut dyn Read, cap: usize) -> io::Result<Vec<u8>> {
    let mut piece = vec![0; cap];
    let n = read_contained(reader, &mut piece)?;
    piece.truncate(n);
    Ok(piece)
}

/// `reader.read(buf)` for an application's streamed response body, retried on `EINTR`. A
/// panic in the reader is caught and logged with its message, and becomes an error: the
/// caller fails only that connection.
pub(crate) fn read_contained(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    }));
    read.unwrap_or_else(|payload| {
        let message = panic_message(&*payload);
        // A payload whose destructor panics would unwind out of here.
        std::mem::forget(payload);
        tracing::error!(
            "the application's response body panicked: {message}; closing the connection"
        );
        Err(io::Error::other(format!(
            "the response body panicked: {message}"
        )))
    })
}

/// The text of a panic payload (`panic!` with a literal or a formatted message), for
/// logging a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    stop: bool,
}

/// Since when each pool thread has been busy without progress: nanoseconds after `epoch`
/// plus one, 0 while the thread is free (or waits for its client).
#[derive(Debug)]
struct Busy {
    epoch: Instant,
    since: Box<[AtomicU64]>,
}

impl Busy {
    fn new(threads: usize) -> Busy {
        Busy {
            epoch: Instant::now(),
            since: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn start(&self, thread: usize) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.since[thread].store(nanos + 1, Ordering::Relaxed);
    }

    fn end(&self, thread: usize) {
        self.since[thread].store(0, Ordering::Relaxed);
    }

    fn busy(&self) -> usize {
        self.since
            .iter()
            .filter(|since| since.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// How long every thread has been busy: since the youngest start; zero while one is
    /// free.
    fn stalled_for(&self, now: Instant) -> Duration {
        let mut youngest = 0;
        for since in self.since.iter() {
            match since.load(Ordering::Relaxed) {
                0 => return Duration::ZERO,
                nanos => youngest = youngest.max(nanos - 1),
            }
        }
        now.saturating_duration_since(self.epoch + Duration::from_nanos(youngest))
    }
}

thread_local! {
    /// In a pool thread: the pool's books and this thread's index in them.
    static THIS_THREAD: RefCell<Option<(Arc<Busy>, usize)>> = const { RefCell::new(None) };
}

/// Runs `wait`, a wait for the client (the next piece of a request body), with the calling
/// pool thread counted as free meanwhile; its busy time starts again when the wait ends
/// (the call made progress). Outside the pool, just runs `wait`.
pub(crate) fn waiting_for_client<T>(wait: impl FnOnce() -> T) -> T {
    let mark = |free: bool| {
        THIS_THREAD.with(|this| {
            if let Some((busy, thread)) = this.borrow().as_ref() {
                if free {
                    busy.end(*thread);
                } else {
                    busy.start(*thread);
                }
            }
        })
    };
    mark(true);
    let result = wait();
    mark(false);
    result
}

/// A fixed set of threads calling the application.
pub(crate) struct Pool {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    done: Arc<Mutex<Vec<Job>>>,
    /// Connections (slot, serial) whose streamed body may be read again.
    resumed: Arc<Mutex<Vec<(usize, u64)>>>,
    waker: Arc<mio::Waker>,
    threads: Vec<JoinHandle<()>>,
    busy: Arc<Busy>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} threads)", self.threads.len())
    }
}

/// What every pool thread shares.
struct Shared<'a> {
    queue: &'a (Mutex<Queue>, Condvar),
    done: &'a Mutex<Vec<Job>>,
    waker: &'a mio::Waker,
    busy: &'a Busy,
}

impl Shared<'_> {
    /// Pool thread `thread`: takes jobs until the pool stops.
    fn serve_jobs(&self, thread: usize, app: &dyn App) {
        loop {
            let mut job = {
                let (lock, cvar) = self.queue;
                let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if q.stop {
                        return;
                    }
                    if let Some(job) = q.jobs.pop_front() {
                        break job;
                    }
                    q = cvar.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            self.busy.start(thread);
            job.work = match job.work {
                Work::Call(mut ex) => {
                    call_app(app, &mut ex);
                    Work::Call(ex)
                }
                Work::Fill { mut reader, cap } => {
                    let piece = read_piece(&mut *reader, cap);
                    Work::Filled { reader, piece }
                }
                filled @ Work::Filled { .. } => filled,
            };
            self.busy.end(thread);
            self.done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(job);
            let _ = self.waker.wake();
        }
    }
}

/// Calls the application, turning a panic into a 500.
pub(crate) fn call_app(app: &dyn App, ex: &mut Exchange) {
    ex.res.reset();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        app.call(&mut ex.req, &mut ex.res)
    }));
    if let Err(payload) = outcome {
        let message = panic_message(&*payload);
        std::mem::forget(payload);
        tracing::error!(target = ex.req.target(), "application panicked: {message}");
        ex.res.reset();
        ex.res.plain(500, "internal server error\n");
    }
}

impl Pool {
    /// Starts `threads` threads. Fails when a thread cannot be spawned.
    pub fn start(
        threads: usize,
        app: Arc<dyn App>,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Pool> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let done: Arc<Mutex<Vec<Job>>> = Arc::default();
        let busy = Arc::new(Busy::new(threads));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let done = Arc::clone(&done);
            let app = Arc::clone(&app);
            let waker = Arc::clone(&waker);
            let busy = Arc::clone(&busy);
            handles.push(std::thread::Builder::new().name(format!("app-{i}")).spawn(
                move || {
                    THIS_THREAD.with(|this| *this.borrow_mut() = Some((Arc::clone(&busy), i)));
                    let shared = Shared {
                        queue: &queue,
                        done: &done,
                        waker: &waker,
                        busy: &busy,
                    };
                    shared.serve_jobs(i, &*app);
                },
            )?);
        }
        Ok(Pool {
            queue,
            done,
            resumed: Arc::default(),
            waker,
            threads: handles,
            busy,
        })
    }

    /// How many threads are in the application now (not waiting for their client).
    pub fn busy_threads(&self) -> usize {
        self.busy.busy()
    }

    /// How long every thread has been busy without progress (see
    /// `WorkerStatus::app_stalled_for`); zero while one is free.
    pub fn stalled_for(&self, now: Instant) -> Duration {
        self.busy.stalled_for(now)
    }

    /// Queues a call.
    pub fn submit(&self, job: Job) {
        let (lock, cvar) = &*self.queue;
        lock.lock()
            .unwrap_or_else(|p| p.into_inner())
            .jobs
            .push_back(job);
        cvar.notify_one();
    }

    /// Takes the finished calls (after the waker fired).
    pub fn take_done(&self, into: &mut Vec<Job>) {
        let mut d = self.done.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut d);
    }

    /// A callback for a body pipe: tells the loop (from the application's thread) that the
    /// connection in `slot` may read again.
    pub fn resumer(&self, slot: usize, serial: u64) -> Box<dyn Fn() + Send + Sync> {
        let resumed = Arc::clone(&self.resumed);
        let waker = Arc::clone(&self.waker);
        Box::new(move || {
            resumed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((slot, serial));
            let _ = waker.wake();
        })
    }

    /// Takes the connections to resume (after the waker fired).
    pub fn take_resumed(&self, into: &mut Vec<(usize, u64)>) {
        into.append(&mut self.resumed.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Tells the threads to stop after their current call; does not wait for them (a
    /// thread stuck in the application must not hold up the process exit).
    pub fn stop(&self) {
        let (lock, cvar) = &*self.queue;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cvar.notify_all();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: Duration = Duration::from_secs(10);

    #[test]
    fn a_pool_stalls_only_while_every_thread_is_busy() {
        let busy = Busy::new(2);
        assert_eq!(busy.stalled_for(Instant::now() + LATER), Duration::ZERO);
        busy.start(0);
        assert_eq!(busy.stalled_for(Instant::now() + LATER), Duration::ZERO);
        busy.start(1);
        let stalled = busy.stalled_for(Instant::now() + LATER);
        assert!(stalled >= LATER && stalled < LATER * 2, "{stalled:?}");
        busy.end(0);
        assert_eq!(busy.stalled_for(Instant::now() + LATER), Duration::ZERO);
    }

    #[test]
    fn a_thread_waiting_for_its_client_is_not_stuck() {
        let busy = Arc::new(Busy::new(1));
        THIS_THREAD.with(|this| *this.borrow_mut() = Some((Arc::clone(&busy), 0)));
        busy.start(0);
        let during = waiting_for_client(|| busy.stalled_for(Instant::now() + LATER));
        assert_eq!(during, Duration::ZERO, "free while waiting for the client");
        assert!(
            busy.stalled_for(Instant::now() + LATER) >= LATER,
            "busy again once the wait is over"
        );
        THIS_THREAD.with(|this| *this.borrow_mut() = None);
    }
}
