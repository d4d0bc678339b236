//! The worker's event loop: one `mio::Poll` over the listeners, the connections, the signal
//! fd and the pool's waker; timeouts, graceful and quick stops, `max_requests`, heartbeats
//! and the parent-death check.
//!
//! Readiness is edge-triggered. A connection is registered once for reading and writing and
//! never re-registered. After a read that did not fill the room offered, the socket is
//! known to be empty and the loop waits for the next edge instead of issuing a read that
//! would return `EAGAIN` (Linux raises a new readable edge for every arrival of data); this
//! saves one system call per keep-alive request. Measured with `strace -c` on one worker
//! under `wrk -c64` (hello, keep-alive): 23,003 `sendto`, 23,004 `recvfrom` and 526
//! `epoll_wait` in two seconds, i.e. one read and one write per request.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::access_log::{AccessLog, LogEntry};
use crate::app::{App, Body, BodyPipe, Peer, RequestBody};
use crate::conn::{Conn, Exchange, Flushed, OutBody, Phase, Spool, Stream, STREAM_PIECE};
use crate::date::DateCache;
use crate::pool::{call_app, Job, Pool, Work};
use crate::proto::{Framing, HeadOutcome, HttpError, Parser, ProxyHeader, ProxyOutcome};
use crate::response::{self, plan, write_error, HeadCache, Method};
use crate::throttle::{Throttle, REPORT_INTERVAL};
use crate::{Listener, Settings, Supervisor, WorkerExit, WorkerState, WorkerStatus};

const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const TICKER: Token = Token(usize::MAX - 3);
const LISTENER_BASE: usize = usize::MAX - 4096;

/// How often timeouts are checked and the heartbeat is sent: the period of the worker's
/// `timerfd`. A timer in the poll set instead of a poll timeout computed on every loop turn
/// (`next_tick - now`, ~55 instructions per turn under callgrind): the loop waits without a
/// timeout and the tick is an event like any other.
const TICK: Duration = Duration::from_millis(250);
/// How long a stopping worker keeps an idle keep-alive connection: a request the client
/// has just sent on it is still answered (with `Connection: close`) instead of being lost
/// to a close that crosses it on the wire. Never longer than `graceful_timeout`.
const STOP_IDLE_GRACE: Duration = Duration::from_secs(1);
/// How long a closing connection is drained before it is closed regardless.
const LINGER: Duration = Duration::from_secs(2);
/// Input discarded while lingering before the connection is closed regardless.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Output buffered before the loop stops answering pipelined requests and writes.
const WBUF_HIGH: usize = 64 * 1024;
/// Connections accepted per readiness event of a listener (see `Worker::accept`).
const ACCEPT_BATCH: usize = 1;
/// The shortest poll before sleeping that the loop starts; it doubles from here (see `Spin`).
const SPIN_MIN: Duration = Duration::from_micros(8);
/// Owned bodies up to this size are copied behind the head so that both go out in one write.
const COPY_BODY_MAX: usize = 16 * 1024;

/// Timeouts and limits taken from the settings once.
#[derive(Debug)]
struct Config {
    parser: Parser,
    /// `None`: keep-alive disabled (`keepalive` = 0).
    keepalive: Option<Duration>,
    header_timeout: Duration,
    /// `body_min_rate`, bytes per second; 0 for none.
    body_min_rate: u64,
    /// A client that accepts no output for this long is dropped.
    write_timeout: Duration,
    /// How long the next piece of an application's streamed response body may take on the
    /// pool (`timeout`; `None` when it is 0) before the connection is closed.
    piece_timeout: Option<Duration>,
    graceful_timeout: Duration,
    max_connections: usize,
    /// The most idle connections closed at once at `max_connections` (see `reclaim_idle`).
    reclaim_batch: usize,
    max_requests: u64,
    /// `busy_poll`: the longest poll before sleeping.
    busy_poll: Duration,
}

impl Config {
    fn from_settings(s: &Settings) -> Config {
        let max_requests = if s.max_requests == 0 {
            0
        } else {
            s.max_requests + jitter(s.max_requests_jitter)
        };
        Config {
            parser: Parser::from_settings(s),
            keepalive: (!s.keepalive.is_zero()).then_some(s.keepalive),
            body_min_rate: s.body_min_rate,
            header_timeout: if s.header_timeout.is_zero() {
                Duration::from_secs(3600)
            } else {
                s.header_timeout
            },
            write_timeout: if s.timeout.is_zero() {
                Duration::from_secs(30)
            } else {
                s.timeout.max(Duration::from_secs(5))
            },
            piece_timeout: (!s.timeout.is_zero()).then_some(s.timeout),
            graceful_timeout: s.graceful_timeout,
            max_connections: s.worker_connections.max(1),
            // A sixteenth of the connections, 1 to 32 (nginx closes up to 32 at a time):
            // room for a burst of new clients without a scan per connection.
            reclaim_batch: (s.worker_connections / 16).clamp(1, 32),
            max_requests,
            busy_poll: Duration::from_micros(s.busy_poll),
        }
    }
}

/// A random number in `0..=max`, different in each worker (gunicorn's
/// `max_requests_jitter`: `randint(0, jitter)`).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x % (max + 1)
}

enum MioListener {
    /// The listener and the address it is bound to, given to each request it accepts.
    Tcp(mio::net::TcpListener, Option<std::net::SocketAddr>),
    Unix(mio::net::UnixListener),
}

impl MioListener {
    fn from_std(l: Listener) -> io::Result<MioListener> {
        Ok(match l {
            Listener::Tcp(l) => {
                l.set_nonblocking(true)?;
                let local = l.local_addr().ok();
                MioListener::Tcp(mio::net::TcpListener::from_std(l), local)
            }
            Listener::Unix(l) => {
                l.set_nonblocking(true)?;
                MioListener::Unix(mio::net::UnixListener::from_std(l))
            }
        })
    }

    /// A new connection, its peer and the listener's own address (`None` for Unix sockets).
    fn accept(&self) -> io::Result<(Stream, Peer, Option<std::net::SocketAddr>)> {
        match self {
            MioListener::Tcp(l, local) => {
                let (s, addr) = l.accept()?;
                Ok((Stream::Tcp(s), Peer::Tcp(addr), *local))
            }
            MioListener::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), Peer::Unix, None))
            }
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            MioListener::Tcp(l, _) => l,
            MioListener::Unix(l) => l,
        }
    }
}

/// Everything the connection handlers share.
struct Ctx {
    cfg: Config,
    app: Arc<dyn App>,
    pool: Option<Pool>,
    date: DateCache,
    /// The last response head, reused while responses keep the same shape.
    heads: HeadCache,
    log: Option<AccessLog>,
    now: Instant,
    requests: u64,
    /// Set when the worker stops taking new requests (TERM, max_requests).
    stopping: bool,
    /// Set by a handler when `max_requests` is reached; the loop then begins the stop.
    max_requests_reached: bool,
}

/// The connections, in slots indexed by their token.
#[derive(Default)]
struct Slots {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    serial: u64,
}

impl Slots {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn insert(&mut self, conn: Conn) -> usize {
        self.open += 1;
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        }
    }

    /// Whether some connection could be closed to make room (see `Worker::reclaim_idle`).
    fn any_reclaimable(&self) -> bool {
        self.conns.iter().flatten().any(Conn::is_reclaimable)
    }

    fn remove(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            if let Phase::Streaming { pipe, .. } = &c.phase {
                // Never leave an application thread waiting for bytes that cannot come.
                pipe.fail("the connection closed");
            }
            drop(c);
            self.open -= 1;
            self.free.push(slot);
        }
    }
}

/// Runs the loop; see [`crate::run`].
pub(crate) fn serve(
    settings: &Settings,
    listeners: Vec<Listener>,
    access_log: Option<std::fs::File>,
    app: Arc<dyn App>,
    supervisor: &dyn Supervisor,
) -> WorkerExit {
    // Signals are taken through a signalfd: block them first so that threads spawned below
    // (pool, access log) inherit the mask and never run a default action.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGHUP,
        Signal::SIGWINCH,
        Signal::SIGUSR2,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        mask.add(s);
    }
    let mut old_mask = SigSet::empty();
    if let Err(e) =
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old_mask))
    {
        return WorkerExit::Failed(format!("cannot block signals: {e}"));
    }
    // SAFETY: installing SIG_IGN runs no code in signal context; writes to a closed
    // socket then fail with EPIPE instead of killing the worker.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
    }
    // After the mask, so that threads the application starts never take our signals.
    if let Err(message) = app.init_worker() {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
        return WorkerExit::Failed(message);
    }
    let exit = match Worker::new(settings, listeners, access_log, Arc::clone(&app), &mask) {
        Ok(mut w) => {
            let exit = w.run(supervisor);
            // The last heartbeat carries the final request count, which the arbiter logs
            // when the worker exits; ticks alone would miss those since the last one.
            supervisor.heartbeat(w.status());
            exit
        }
        Err(e) => WorkerExit::Failed(e),
    };
    app.exit_worker();
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    exit
}

/// One `epoll_wait` into `events`; an interrupted wait is an empty one.
fn wait(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> Result<(), WorkerExit> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() != io::ErrorKind::Interrupted => {
            Err(WorkerExit::Failed(format!("event loop failed: {e}")))
        }
        _ => Ok(()),
    }
}

/// How long the loop polls before it sleeps, adapted after every wait the way Linux's
/// `haltpoll` governor adapts a virtual CPU's poll before it halts: the poll is worth its CPU
/// only while the next event comes within `max`.
#[derive(Debug)]
struct Spin {
    /// `busy_poll`; zero turns polling off.
    max: Duration,
    /// The current poll: zero, or `SPIN_MIN` doubled up to `max`.
    window: Duration,
}

impl Spin {
    fn new(max: Duration) -> Spin {
        Spin {
            max,
            window: Duration::ZERO,
        }
    }

    /// Fills `events` and returns the time it came back.
    ///
    /// The clients a turn answered are about to send again. Sleeping in `epoll_wait` until
    /// they do costs a sleep, a wake-up by the client's write (on another CPU, an interrupt
    /// into an idle CPU) and a switch back: most of a saturated worker's time outside the TCP
    /// stack, and most of a round trip's latency on one connection. So after a turn that
    /// `served` connections this polls without waiting for up to `window`, giving the CPU to
    /// whatever else is runnable here (often the client, or another worker) between polls,
    /// and sleeps only if nothing came; then it adapts the window to how long the wait took.
    /// An idle machine returns from the yield at once.
    fn wait(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        served: bool,
    ) -> Result<Instant, WorkerExit> {
        if !served {
            wait(poll, events, None)?;
            return Ok(Instant::now());
        }
        let start = Instant::now();
        while !self.window.is_zero() {
            let _ = nix::sched::sched_yield();
            wait(poll, events, Some(Duration::ZERO))?;
            if !events.is_empty() {
                return Ok(Instant::now());
            }
            if start.elapsed() >= self.window {
                break;
            }
        }
        wait(poll, events, None)?;
        let now = Instant::now();
        self.adapt(now.saturating_duration_since(start));
        Ok(now)
    }

    /// After a wait that ended with an event `waited` after it began (polling and sleeping):
    /// a wait shorter than `max` would have ended while polling, so the poll grows; a longer
    /// one means the poll was spent for nothing, so it halves, down to nothing.
    fn adapt(&mut self, waited: Duration) {
        if waited < self.max {
            self.window = (self.window * 2).max(SPIN_MIN).min(self.max);
        } else if self.window > SPIN_MIN {
            self.window /= 2;
        } else {
            self.window = Duration::ZERO;
        }
    }
}

struct Worker {
    poll: Poll,
    listeners: Vec<MioListener>,
    listening: bool,
    signals: SignalFd,
    /// Readable every `TICK`.
    ticker: TimerFd,
    slots: Slots,
    ctx: Ctx,
    parent: nix::unistd::Pid,
    stop_deadline: Option<Instant>,
    /// While stopping: idle keep-alive connections are closed from this time on.
    idle_close_at: Option<Instant>,
    exit_reason: WorkerExit,
    /// After an accept error (EMFILE, ENOMEM), listening resumes at this time.
    accept_paused_until: Option<Instant>,
    /// Accept errors repeat every `TICK` while they last: reported once, then at most once
    /// per `REPORT_INTERVAL`.
    accept_failures: Throttle,
    /// How often `reclaim_idle` had to make room, reported like `accept_failures`.
    capacity_reports: Throttle,
}

impl Worker {
    fn new(
        settings: &Settings,
        listeners: Vec<Listener>,
        access_log: Option<std::fs::File>,
        app: Arc<dyn App>,
        mask: &SigSet,
    ) -> Result<Worker, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create the event loop: {e}"))?;
        let signals = SignalFd::with_flags(mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot create a signalfd: {e}"))?;
        poll.registry()
            .register(
                &mut SourceFd(&signals.as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )
            .map_err(|e| format!("cannot watch signals: {e}"))?;
        let ticker = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| format!("cannot create a timerfd: {e}"))?;
        ticker
            .set(
                Expiration::Interval(TimeSpec::from_duration(TICK)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(|e| format!("cannot arm the timerfd: {e}"))?;
        poll.registry()
            .register(
                &mut SourceFd(&ticker.as_fd().as_raw_fd()),
                TICKER,
                Interest::READABLE,
            )
            .map_err(|e| format!("cannot watch the timerfd: {e}"))?;
        let mut mio_listeners = Vec::with_capacity(listeners.len());
        for l in listeners {
            mio_listeners
                .push(MioListener::from_std(l).map_err(|e| format!("cannot use a listener: {e}"))?);
        }
        if mio_listeners.is_empty() {
            return Err("no listeners to serve".to_string());
        }
        let pool = if settings.threads > 1 {
            let waker = Arc::new(
                mio::Waker::new(poll.registry(), WAKER)
                    .map_err(|e| format!("cannot create the pool waker: {e}"))?,
            );
            Some(
                Pool::start(settings.threads, Arc::clone(&app), waker)
                    .map_err(|e| format!("cannot start {} threads: {e}", settings.threads))?,
            )
        } else {
            None
        };
        let mode = settings.created_file_mode();
        let format = &settings.access_log_format;
        let log = match (&settings.accesslog, access_log) {
            (None, _) => None,
            (Some(target), Some(file)) => Some(
                AccessLog::with_file(target, file, format, mode)
                    .map_err(|e| format!("cannot start the access log writer: {e}"))?,
            ),
            (Some(target), None) => Some(
                AccessLog::open(target, format, mode)
                    .map_err(|e| format!("cannot open access log {target:?}: {e}"))?,
            ),
        };
        Ok(Worker {
            poll,
            listeners: mio_listeners,
            listening: false,
            signals,
            ticker,
            slots: Slots::default(),
            ctx: Ctx {
                cfg: Config::from_settings(settings),
                app,
                pool,
                date: DateCache::new(),
                heads: HeadCache::default(),
                log,
                now: Instant::now(),
                requests: 0,
                stopping: false,
                max_requests_reached: false,
            },
            parent: nix::unistd::getppid(),
            stop_deadline: None,
            idle_close_at: None,
            exit_reason: WorkerExit::Stopped,
            accept_paused_until: None,
            accept_failures: Throttle::new(REPORT_INTERVAL),
            capacity_reports: Throttle::new(REPORT_INTERVAL),
        })
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            state: if self.ctx.stopping {
                WorkerState::Stopping
            } else if self.listening {
                WorkerState::Serving
            } else {
                WorkerState::Booting
            },
            requests: self.ctx.requests,
            connections: u32::try_from(self.slots.open).unwrap_or(u32::MAX),
            app_stalled_for: self
                .ctx
                .pool
                .as_ref()
                .map_or(Duration::ZERO, |pool| pool.stalled_for(Instant::now())),
        }
    }

    fn set_listening(&mut self, on: bool) {
        if on == self.listening {
            return;
        }
        let registry = self.poll.registry();
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let r = if on {
                registry.register(l.source(), Token(LISTENER_BASE + i), Interest::READABLE)
            } else {
                registry.deregister(l.source())
            };
            if let Err(e) = r {
                tracing::error!("listener {i}: cannot change registration: {e}");
            }
        }
        self.listening = on;
    }

    fn run(&mut self, supervisor: &dyn Supervisor) -> WorkerExit {
        self.set_listening(true);
        supervisor.heartbeat(self.status());
        let mut events = Events::with_capacity(512);
        let mut done = Vec::new();
        let mut resumed = Vec::new();
        let mut spin = Spin::new(self.ctx.cfg.busy_poll);
        let mut served = 0;
        loop {
            let mut tick = false;
            self.ctx.now = match spin.wait(&mut self.poll, &mut events, served > 0) {
                Ok(now) => now,
                Err(exit) => return exit,
            };
            self.ctx.date.refresh(self.ctx.now);
            served = 0;
            for event in events.iter() {
                match event.token() {
                    TICKER => {
                        // Consumes the expirations, so that the next one is a new edge.
                        let _ = self.ticker.wait();
                        tick = true;
                    }
                    SIGNALS => {
                        if let Some(exit) = self.handle_signals(supervisor) {
                            return exit;
                        }
                    }
                    WAKER => {
                        if let Some(pool) = &self.ctx.pool {
                            pool.take_done(&mut done);
                        }
                        for job in done.drain(..) {
                            self.finish_job(job);
                        }
                        if let Some(pool) = &self.ctx.pool {
                            pool.take_resumed(&mut resumed);
                        }
                        for (slot, serial) in resumed.drain(..) {
                            self.resume_stream(slot, serial);
                        }
                    }
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE),
                    Token(slot) => {
                        if let Some(c) = self.slots.conns.get_mut(slot).and_then(Option::as_mut) {
                            served += 1;
                            if event.is_readable() || event.is_read_closed() {
                                c.read_drained = false;
                            }
                            // The peer's FIN may have come with the data: then no later edge
                            // announces it, so read until end of file instead of trusting a
                            // short read.
                            c.peer_hup |= event.is_read_closed();
                            if !drive(c, &mut self.ctx) {
                                self.slots.remove(slot);
                            }
                        }
                    }
                }
            }
            if self.ctx.max_requests_reached && !self.ctx.stopping {
                tracing::info!(
                    requests = self.ctx.requests,
                    "max_requests reached: restarting"
                );
                self.begin_stop(WorkerExit::MaxRequests, supervisor);
            }
            if tick {
                self.sweep();
                supervisor.heartbeat(self.status());
                if nix::unistd::getppid() != self.parent {
                    tracing::warn!("parent changed: worker exiting");
                    return WorkerExit::ParentGone;
                }
            }
            if let Some(log) = &mut self.ctx.log {
                log.flush();
            }
            if self.ctx.stopping {
                if self.slots.open == 0 {
                    return self.exit_reason.clone();
                }
                if self.stop_deadline.is_some_and(|d| self.ctx.now >= d) {
                    tracing::warn!(
                        connections = self.slots.open,
                        "graceful_timeout reached: closing remaining connections"
                    );
                    return self.exit_reason.clone();
                }
            } else if !self.listening
                && self.accept_paused_until.is_none_or(|t| self.ctx.now >= t)
                && (self.slots.open < self.ctx.cfg.max_connections
                    || (tick && self.slots.any_reclaimable()))
            {
                self.accept_paused_until = None;
                self.set_listening(true);
            }
        }
    }

    /// Reads pending signals. Returns an exit for a quick stop.
    fn handle_signals(&mut self, supervisor: &dyn Supervisor) -> Option<WorkerExit> {
        loop {
            let info = match self.signals.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!("signalfd read failed: {e}");
                    return None;
                }
            };
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) if !self.ctx.stopping => {
                    tracing::info!("graceful stop (SIGTERM)");
                    self.begin_stop(WorkerExit::Stopped, supervisor);
                }
                Ok(Signal::SIGINT | Signal::SIGQUIT) => {
                    tracing::info!("quick stop");
                    return Some(WorkerExit::Stopped);
                }
                Ok(Signal::SIGUSR1) => {
                    if let Some(log) = &mut self.ctx.log {
                        log.reopen();
                    }
                    supervisor.reopen_logs();
                }
                _ => {} // HUP, WINCH, USR2, TTIN, TTOU are the arbiter's business.
            }
        }
    }

    /// Stops accepting; idle keep-alive connections are closed after `STOP_IDLE_GRACE`, the
    /// others finish their current request.
    fn begin_stop(&mut self, reason: WorkerExit, supervisor: &dyn Supervisor) {
        self.ctx.stopping = true;
        self.exit_reason = reason;
        self.stop_deadline = Some(self.ctx.now + self.ctx.cfg.graceful_timeout);
        self.idle_close_at =
            Some(self.ctx.now + STOP_IDLE_GRACE.min(self.ctx.cfg.graceful_timeout));
        self.set_listening(false);
        // Dropping our copies would not close the arbiter's sockets; keeping them
        // registered would accept connections we are not going to serve.
        self.close_idle();
        supervisor.heartbeat(self.status());
    }

    /// Closes the connections that have no request in progress once `idle_close_at` has
    /// come (until then `sweep` closes them). A request already in the socket buffer but not
    /// yet read is served first (it is in flight for the client).
    fn close_idle(&mut self) {
        let closing = self.idle_close_at.is_some_and(|t| self.ctx.now >= t);
        for slot in 0..self.slots.conns.len() {
            let Some(c) = self.slots.conns[slot].as_mut() else {
                continue;
            };
            if c.is_idle() {
                c.read_drained = false;
                // A connection that has sent nothing yet stays: its request may be on the
                // way (see `Conn::had_input`).
                if !drive(c, &mut self.ctx) || (closing && c.is_idle_between_requests()) {
                    self.slots.remove(slot);
                }
            }
        }
    }

    /// Accepts one connection, then re-arms the listener if more may be waiting. Taking one
    /// at a time (as nginx does without `multi_accept`) lets the workers sharing a listener
    /// split a burst of connections between them; draining the backlog in one go let the
    /// first worker to wake take nearly all of them (measured: 6056 vs 228 requests served
    /// by two workers in `cargo xtask bench --scenarios static-1m-8`).
    fn accept(&mut self, index: usize) {
        let mut accepted = 0;
        loop {
            if accepted == ACCEPT_BATCH {
                // Edge-triggered: re-registering reports the listener again on the next poll
                // if the backlog is not empty.
                let registry = self.poll.registry();
                if let Some(l) = self.listeners.get_mut(index) {
                    if let Err(e) = registry.reregister(
                        l.source(),
                        Token(LISTENER_BASE + index),
                        Interest::READABLE,
                    ) {
                        tracing::error!("listener {index}: cannot re-arm: {e}");
                    }
                }
                return;
            }
            if self.ctx.stopping || !self.listening {
                return;
            }
            if self.slots.open >= self.ctx.cfg.max_connections && self.reclaim_idle() == 0 {
                // worker_connections reached, every connection at work: stop accepting until
                // one closes or goes idle (see `run`).
                self.set_listening(false);
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer, local)) => {
                    let deadline = self.ctx.now + self.ctx.cfg.header_timeout;
                    let serial = self.slots.next_serial();
                    let ip = match &peer {
                        Peer::Tcp(a) => Some(a.ip()),
                        Peer::Unix => None,
                    };
                    let parser = &self.ctx.cfg.parser;
                    let (proxy, trusted) = (
                        parser.proxy_header_for(ip),
                        parser.forwarded_allow.allows(ip),
                    );
                    if let Some(n) = self.accept_failures.success(self.ctx.now) {
                        tracing::info!(
                            "accepting again ({n} failed accepts since the last report)"
                        );
                    }
                    let slot = self.slots.insert(Conn::new(
                        stream,
                        peer,
                        local,
                        serial,
                        self.ctx.now,
                        deadline,
                    ));
                    let Some(c) = self.slots.conns[slot].as_mut() else {
                        continue;
                    };
                    accepted += 1;
                    c.slot = slot;
                    c.proxy = proxy;
                    c.trusted = trusted;
                    if let Err(e) = self.poll.registry().register(
                        &mut c.stream,
                        Token(slot),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::error!("cannot register a connection: {e}");
                        self.slots.remove(slot);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of file descriptors or memory: the listener stays readable, and
                    // with edge-triggered readiness no new edge would come. Stop listening
                    // until the next tick instead of spinning.
                    match self.accept_failures.failure(self.ctx.now) {
                        Some(1) => tracing::warn!("accept failed: {e}; retrying shortly"),
                        Some(n) => tracing::warn!(
                            "accept failed: {e}; retrying shortly ({n} failed accepts since the \
                             last report)"
                        ),
                        None => {}
                    }
                    self.set_listening(false);
                    self.accept_paused_until = Some(self.ctx.now + TICK);
                    return;
                }
            }
        }
    }

    /// At `worker_connections`: closes the connections idle longest (new ones that sent
    /// nothing, kept-alive ones between requests, lingering closes), at most
    /// `reclaim_batch` of them, so that a new client is served at once instead of waiting
    /// until some idle connection's timeout; a burst of idle connections could otherwise hold
    /// every slot for `header_timeout` and be renewed forever (nginx reuses its idle
    /// connections the same way). Returns how many it closed.
    fn reclaim_idle(&mut self) -> usize {
        let mut idle: Vec<(Instant, usize)> = self
            .slots
            .conns
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| {
                c.as_ref()
                    .filter(|c| c.is_reclaimable())
                    .map(|c| (c.idle_since, slot))
            })
            .collect();
        let batch = self.ctx.cfg.reclaim_batch.min(idle.len());
        if batch == 0 {
            return 0;
        }
        if batch < idle.len() {
            idle.select_nth_unstable(batch - 1);
        }
        for &(_, slot) in &idle[..batch] {
            self.slots.remove(slot);
        }
        if let Some(n) = self.capacity_reports.failure(self.ctx.now) {
            tracing::warn!(
                "worker_connections ({}) reached: closing the connections idle longest \
                 ({n} times since the last report)",
                self.ctx.cfg.max_connections
            );
        }
        batch
    }

    fn finish_job(&mut self, job: Job) {
        let Some(c) = self.slots.conns.get_mut(job.slot).and_then(Option::as_mut) else {
            return;
        };
        if c.serial != job.serial {
            return; // the connection went away while the pool worked for it
        }
        let mut ex = match job.work {
            Work::Call(ex) => ex,
            Work::Filled { reader, piece } => {
                let keep = match (piece, &mut c.out) {
                    (
                        Ok(data),
                        Some(OutBody::Stream {
                            reader: slot,
                            ready,
                            ..
                        }),
                    ) => {
                        *slot = Some(reader);
                        *ready = Some(data);
                        drive(c, &mut self.ctx)
                    }
                    (Err(e), _) => {
                        tracing::debug!("streamed response body failed: {e}");
                        false
                    }
                    (Ok(_), _) => true,
                };
                if !keep {
                    self.slots.remove(job.slot);
                }
                return;
            }
            Work::Fill { .. } => return,
        };
        if !matches!(c.phase, Phase::Dispatched | Phase::Streaming { .. }) {
            return;
        }
        let mid_body = match &c.phase {
            Phase::Streaming { pipe, .. } => {
                // Answered before the whole body arrived: the rest is not read (the
                // connection closes after the answer, RFC 9112 §9.6 allows it).
                pipe.fail("the application answered before reading the whole body");
                true
            }
            _ => false,
        };
        c.phase = Phase::Head;
        if let Some(e) = c.pending_error.take() {
            respond_error(c, &self.ctx, e.status, &e.message);
        } else {
            if mid_body {
                ex.keep_alive = false;
                // The client is still sending the body: linger.
                c.client_closing = false;
            }
            queue_response(c, &mut self.ctx, &mut ex);
        }
        c.exchange = Some(ex);
        if !drive(c, &mut self.ctx) {
            self.slots.remove(job.slot);
        }
    }

    /// Reads again on a connection whose streamed body had paused until the application
    /// caught up.
    fn resume_stream(&mut self, slot: usize, serial: u64) {
        let Some(c) = self.slots.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if c.serial != serial {
            return;
        }
        if let Phase::Streaming { paused, .. } = &mut c.phase {
            *paused = false;
            c.read_drained = false;
            c.deadline = self.ctx.now + self.ctx.cfg.header_timeout;
            // The client was held back, not slow: its rate counts from here.
            c.start_body_clock(self.ctx.now);
            if !drive(c, &mut self.ctx) {
                self.slots.remove(slot);
            }
        }
    }

    /// Applies timeouts; when stopping, closes connections that went idle.
    fn sweep(&mut self) {
        let now = self.ctx.now;
        for slot in 0..self.slots.conns.len() {
            let Some(c) = self.slots.conns[slot].as_mut() else {
                continue;
            };
            if self.ctx.stopping
                && c.is_idle_between_requests()
                && self.idle_close_at.is_some_and(|t| now >= t)
            {
                self.slots.remove(slot);
                continue;
            }
            if c.awaiting_piece() {
                // The application owes the next piece of its streamed body: `timeout`.
                if self.ctx.cfg.piece_timeout.is_some() && now >= c.deadline {
                    tracing::error!(
                        "the application's response body gave no data for {}s: closing the connection",
                        self.ctx.cfg.piece_timeout.unwrap_or_default().as_secs_f64()
                    );
                    self.slots.remove(slot);
                }
                continue;
            }
            // The application is at work on a call: `timeout` in the arbiter bounds that
            // (a silent loop, or every pool thread stuck), not the client's deadlines.
            if now < c.deadline
                || matches!(
                    c.phase,
                    Phase::Dispatched | Phase::Streaming { paused: true, .. }
                )
            {
                continue;
            }
            if matches!(c.phase, Phase::Streaming { .. }) {
                // RFC 9110 §15.5.9: the body did not arrive in time.
                break_stream(c, 408, "request body timeout".into());
                continue;
            }
            let keep = match c.phase {
                Phase::Draining => false,
                _ if c.output_pending() => false,
                _ if c.is_idle() => false,
                _ => {
                    // RFC 9110 §15.5.9: 408 for a request not completed in time.
                    respond_error(c, &self.ctx, 408, "request timeout");
                    c.deadline = now + LINGER;
                    drive(c, &mut self.ctx)
                }
            };
            if !keep {
                self.slots.remove(slot);
            }
        }
    }
}

/// What processing buffered input achieved.
enum Step {
    Progress,
    Stall,
}

/// Makes all the progress possible on a connection: answer buffered requests, write, read.
/// Returns false when the connection must be closed.
fn drive(c: &mut Conn, ctx: &mut Ctx) -> bool {
    loop {
        if !c.close_after_write && c.out.is_none() && c.wbuf.len() < WBUF_HIGH {
            if let Step::Progress = process(c, ctx) {
                continue;
            }
        }
        if c.output_pending() {
            match c.flush() {
                Ok(Flushed::NeedPiece) => {
                    // Hand the reader to the pool; the piece comes back through the waker.
                    if let (Some(pool), Some(OutBody::Stream { reader, left, .. })) =
                        (&ctx.pool, &mut c.out)
                    {
                        if let Some(reader) = reader.take() {
                            let cap = left.map_or(STREAM_PIECE, |l| {
                                usize::try_from(l).unwrap_or(STREAM_PIECE).min(STREAM_PIECE)
                            });
                            if let Some(timeout) = ctx.cfg.piece_timeout {
                                c.deadline = ctx.now + timeout;
                            }
                            pool.submit(Job {
                                slot: c.slot,
                                serial: c.serial,
                                work: Work::Fill { reader, cap },
                            });
                        }
                    }
                    return true;
                }
                Ok(Flushed::Done) => {
                    if c.close_after_write {
                        // Lingering close only where input may still come: the client asked
                        // to close, nothing is buffered and the last read found the socket
                        // empty, so closing now cannot reset the answer (nginx's
                        // `lingering_close on` heuristic). Saves a shutdown, a wake-up and a
                        // read per `Connection: close` request.
                        if c.client_closing && c.rpos == c.rend && c.read_drained {
                            return false;
                        }
                        c.stream.shutdown_write();
                        c.phase = Phase::Draining;
                        c.idle_since = ctx.now;
                        c.close_after_write = false;
                        c.deadline = ctx.now + LINGER;
                    } else if c.is_idle() {
                        match ctx.cfg.keepalive {
                            Some(k) => {
                                c.deadline = ctx.now + k;
                                c.idle_since = ctx.now;
                            }
                            None => return false,
                        }
                        // The usual end of a keep-alive exchange: answered, nothing buffered,
                        // the socket read empty. What the next turn of the loop would
                        // conclude, without its checks.
                        if c.read_drained && !c.peer_hup && !c.read_closed {
                            return true;
                        }
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.deadline = ctx.now + ctx.cfg.write_timeout;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("write failed: {e}");
                    return false;
                }
            }
        }
        if matches!(
            c.phase,
            Phase::Dispatched | Phase::Streaming { paused: true, .. }
        ) {
            return true;
        }
        if c.read_closed {
            if matches!(c.phase, Phase::Streaming { .. }) {
                let message = "the connection closed before the body was complete";
                break_stream(c, 400, message.into());
                return true;
            }
            // The client will send nothing more and everything owed is written.
            return false;
        }
        if c.read_drained && !c.peer_hup {
            return true;
        }
        let was_empty = c.rpos == c.rend;
        let max = match c.phase {
            Phase::Head => ctx.cfg.parser.max_head() + 2,
            _ => 64 * 1024,
        };
        match c.read_some(max) {
            Ok((0, _)) => {
                c.read_closed = true;
                if matches!(c.phase, Phase::Draining) {
                    return false;
                }
                // Answer what is complete, then close; a partial request is dropped.
            }
            Ok((n, full)) => {
                c.read_drained = !full;
                match c.phase {
                    Phase::Draining => {
                        c.drained_bytes += n;
                        c.rpos = c.rend;
                        if c.drained_bytes > LINGER_MAX_BYTES {
                            return false;
                        }
                    }
                    Phase::Head if was_empty => c.deadline = ctx.now + ctx.cfg.header_timeout,
                    Phase::Body { .. } | Phase::Streaming { .. } => {
                        c.body_received += n as u64;
                        let cfg = &ctx.cfg;
                        c.deadline =
                            c.body_deadline(ctx.now, cfg.header_timeout, cfg.body_min_rate);
                    }
                    _ => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("read failed: {e}");
                return false;
            }
        }
    }
}

/// Answers `status` with `Connection: close` and discards all further input: nothing after
/// a malformed request is served.
fn respond_error(c: &mut Conn, ctx: &Ctx, status: u16, message: &str) {
    tracing::debug!(status, "refusing request: {message}");
    c.rpos = c.rend;
    c.phase = Phase::Head;
    // The client may still be sending (the rest of a bad request): always linger.
    c.client_closing = false;
    write_error(&mut c.wbuf, status, message, ctx.date.line());
    c.close_after_write = true;
}

/// Consumes buffered input: parses a head, receives a body, calls the application.
fn process(c: &mut Conn, ctx: &mut Ctx) -> Step {
    if c.rpos == c.rend {
        return Step::Stall;
    }
    match &mut c.phase {
        Phase::Dispatched | Phase::Draining => Step::Stall,
        Phase::Head => {
            let Some(ex) = c.exchange.as_mut() else {
                return Step::Stall;
            };
            if c.proxy != ProxyHeader::Done {
                return match ctx.cfg.parser.parse_proxy(&c.rbuf[c.rpos..c.rend]) {
                    ProxyOutcome::Partial => Step::Stall,
                    ProxyOutcome::Absent => {
                        c.proxy = ProxyHeader::Done;
                        Step::Progress
                    }
                    ProxyOutcome::Complete { .. } | ProxyOutcome::Error(_)
                        if c.proxy == ProxyHeader::Forbidden =>
                    {
                        c.proxy = ProxyHeader::Done;
                        respond_error(
                            c,
                            ctx,
                            403,
                            "PROXY protocol header from a peer not in proxy_allow_ips",
                        );
                        Step::Progress
                    }
                    ProxyOutcome::Complete { len, source } => {
                        c.proxy = ProxyHeader::Done;
                        c.rpos += len;
                        if let Some(addr) = source {
                            ex.req.peer = Peer::Tcp(addr);
                        }
                        Step::Progress
                    }
                    ProxyOutcome::Error(e) => {
                        respond_error(c, ctx, e.status, &e.message);
                        Step::Progress
                    }
                };
            }
            match ctx.cfg.parser.parse_head(
                &c.rbuf[c.rpos..c.rend],
                c.trusted,
                &mut c.head_progress,
                &mut ex.req,
            ) {
                HeadOutcome::Partial => Step::Stall,
                HeadOutcome::Error(e) => {
                    respond_error(c, ctx, e.status, &e.message);
                    Step::Progress
                }
                HeadOutcome::Complete(head) => {
                    if ex.req.is_connect() && !ctx.app.handles_connect() {
                        // RFC 9110 §9.3.6: CONNECT asks for a tunnel, which an application
                        // that does not handle it must never seem to grant (a 2xx). 501, as
                        // for any method the server does not implement (RFC 9110 §9.1), and
                        // nothing after it on the connection is read.
                        respond_error(c, ctx, 501, "CONNECT is not supported here");
                        return Step::Progress;
                    }
                    c.rpos += head.len;
                    ex.started = ctx.now;
                    ex.keep_alive = head.keep_alive && ctx.cfg.keepalive.is_some();
                    c.client_closing = !head.keep_alive;
                    // No body, or `Content-Length: 0`: complete now (no more input may ever
                    // come, and the body phase only runs when bytes arrive).
                    let Some(decoder) = head.decoder else {
                        ex.req.body.clear();
                        dispatch(c, ctx);
                        return Step::Progress;
                    };
                    let reuse = ex.req.body.take_buffer();
                    // RFC 9110 §10.1.1: send 100 only when no body bytes have arrived yet.
                    if head.expect_continue && c.rpos == c.rend {
                        c.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    // With a pool, a large body is streamed to the application (RequestBody).
                    let streamable = ctx.pool.is_some()
                        && match head.framing {
                            Framing::Chunked => true,
                            Framing::Length(n) => n > RequestBody::MEMORY_LIMIT as u64,
                            Framing::None => false,
                        };
                    c.phase = Phase::Body {
                        decoder,
                        spool: Spool::new(reuse),
                        streamable,
                        length: match head.framing {
                            Framing::Length(n) => Some(n),
                            _ => None,
                        },
                    };
                    c.deadline = ctx.now + ctx.cfg.header_timeout;
                    c.start_body_clock(ctx.now);
                    Step::Progress
                }
            }
        }
        Phase::Streaming {
            decoder,
            pipe,
            paused,
        } => {
            if *paused {
                return Step::Stall;
            }
            let mut data = Vec::new();
            let input = &c.rbuf[c.rpos..c.rend];
            match decoder.decode(input, &mut |bytes| data.extend_from_slice(bytes)) {
                Err(e) => {
                    c.rpos = c.rend;
                    break_stream(c, e.status, e.message);
                    Step::Progress
                }
                Ok(d) => {
                    c.rpos += d.consumed;
                    *paused = pipe.push(data);
                    if d.done {
                        pipe.finish();
                        c.phase = Phase::Dispatched;
                        return Step::Progress;
                    }
                    if d.consumed > 0 {
                        Step::Progress
                    } else {
                        Step::Stall
                    }
                }
            }
        }
        Phase::Body {
            decoder,
            spool,
            streamable,
            ..
        } => {
            let input = &c.rbuf[c.rpos..c.rend];
            let decoded = decoder.decode(input, &mut |bytes| spool.push(bytes));
            match decoded {
                Err(e) => {
                    respond_error(c, ctx, e.status, &e.message);
                    Step::Progress
                }
                Ok(d) => {
                    c.rpos += d.consumed;
                    if let Some(e) = spool.error.take() {
                        tracing::error!("cannot store a request body: {e}");
                        respond_error(c, ctx, 500, "cannot store the request body");
                        return Step::Progress;
                    }
                    if !d.done {
                        if d.consumed > 0 && *streamable && spool.file.is_none() {
                            start_streaming(c, ctx);
                        }
                        return if d.consumed > 0 {
                            Step::Progress
                        } else {
                            Step::Stall
                        };
                    }
                    let Phase::Body { spool, .. } = std::mem::replace(&mut c.phase, Phase::Head)
                    else {
                        return Step::Stall;
                    };
                    let body = match spool.file {
                        Some(f) => RequestBody::from_file(f, spool.len),
                        None => Ok(RequestBody::from_bytes(spool.mem)),
                    };
                    match (body, c.exchange.as_mut()) {
                        (Ok(body), Some(ex)) => {
                            ex.req.body = body;
                            dispatch(c, ctx);
                        }
                        (Err(e), _) => {
                            tracing::error!("cannot rewind a request body: {e}");
                            respond_error(c, ctx, 500, "cannot read the request body");
                        }
                        (_, None) => {}
                    }
                    Step::Progress
                }
            }
        }
    }
}

/// Ends a streamed body that broke off: the application's reads fail, and once it returns
/// the client gets `status` (with `Connection: close`) instead of the application's answer.
fn break_stream(c: &mut Conn, status: u16, message: String) {
    if let Phase::Streaming { pipe, .. } = &c.phase {
        pipe.fail(&message);
    }
    c.pending_error = Some(HttpError { status, message });
    c.phase = Phase::Dispatched;
}

/// Hands the exchange to the pool now, with a body fed through a pipe as it arrives.
fn start_streaming(c: &mut Conn, ctx: &mut Ctx) {
    let Some(pool) = &ctx.pool else {
        return;
    };
    let Phase::Body {
        decoder,
        spool,
        length,
        ..
    } = std::mem::replace(&mut c.phase, Phase::Head)
    else {
        return;
    };
    let Some(ex) = c.exchange.as_mut() else {
        return;
    };
    let pipe = Arc::new(BodyPipe::new(pool.resumer(c.slot, c.serial)));
    let paused = pipe.push(spool.mem);
    ex.req.body = RequestBody::from_pipe(Arc::clone(&pipe), length);
    dispatch(c, ctx);
    c.phase = Phase::Streaming {
        decoder,
        pipe,
        paused,
    };
}

/// Calls the application inline, or hands the exchange to the pool.
fn dispatch(c: &mut Conn, ctx: &mut Ctx) {
    let Some(mut ex) = c.exchange.take() else {
        return;
    };
    if let Some(pool) = &ctx.pool {
        c.phase = Phase::Dispatched;
        pool.submit(Job {
            slot: c.slot,
            serial: c.serial,
            work: Work::Call(ex),
        });
        return;
    }
    call_app(&*ctx.app, &mut ex);
    // The call may have taken a while: timeouts set from here on count from now.
    ctx.now = Instant::now();
    queue_response(c, ctx, &mut ex);
    c.exchange = Some(ex);
}

/// Writes the application's response into the connection's output.
fn queue_response(c: &mut Conn, ctx: &mut Ctx, ex: &mut Exchange) {
    if !response::headers_valid(&ex.res) {
        tracing::error!(
            target = ex.req.target(),
            "application answered an invalid status or header: sending 500"
        );
        ex.res.reset();
        ex.res.plain(500, "internal server error\n");
    }
    ctx.requests += 1;
    if ctx.cfg.max_requests > 0 && ctx.requests >= ctx.cfg.max_requests {
        ctx.max_requests_reached = true;
    }
    let method = if ex.req.is_head() {
        Method::Head
    } else if ex.req.is_connect() {
        Method::Connect
    } else {
        Method::Other
    };
    let version = ex.req.version();
    let keep_alive = ex.keep_alive && !ctx.stopping && !ctx.max_requests_reached && !c.read_closed;
    let p = plan(&ex.res, method, version, keep_alive);
    ctx.heads
        .write(&mut c.wbuf, &ex.res, &p, version, &ctx.date);
    let body = std::mem::replace(&mut ex.res.body, Body::Empty);
    let body_len = if p.send_body { body.len() } else { Some(0) };
    if p.send_body {
        match body {
            Body::Empty => {}
            Body::Static(b) => c.wbuf.extend_from_slice(b),
            Body::Bytes(b) if b.len() <= COPY_BODY_MAX => c.wbuf.extend_from_slice(&b),
            other => {
                // A head and its body in separate writes: without TCP_NODELAY, Nagle would
                // hold the body's last small segment until the head is acknowledged. A
                // response that is one write does not need it, so the option is set only
                // here, once per connection (as nginx does), saving a syscall per
                // connection for small answers.
                if !c.nodelay {
                    c.nodelay = true;
                    c.stream.set_nodelay();
                }
                c.out = OutBody::from_body(
                    other,
                    p.framing == response::Framing::Chunked,
                    ctx.pool.is_some(),
                )
            }
        }
    }
    if !p.keep_alive {
        c.close_after_write = true;
    }
    if let Some(log) = &mut ctx.log {
        log.log(&LogEntry {
            req: &ex.req,
            res: &ex.res,
            body_bytes: body_len,
            started: ex.started,
            now_secs: ctx.date.secs(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);

    #[test]
    fn spin_grows_while_events_come_within_busy_poll() {
        let mut spin = Spin::new(MAX);
        assert_eq!(spin.window, Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..5 {
            spin.adapt(Duration::from_micros(20));
            seen.push(spin.window.as_micros());
        }
        assert_eq!(seen, [8, 16, 32, 50, 50]);
    }

    #[test]
    fn spin_shrinks_to_nothing_when_events_come_later() {
        let mut spin = Spin::new(MAX);
        spin.window = MAX;
        let mut seen = Vec::new();
        for _ in 0..5 {
            spin.adapt(Duration::from_millis(3));
            seen.push(spin.window.as_micros());
        }
        assert_eq!(seen, [25, 12, 6, 0, 0]);
    }

    #[test]
    fn spin_settles_where_the_wait_crosses_busy_poll() {
        // Requests 70 µs apart with a 50 µs limit: polling never catches them, so after
        // a few waits the worker sleeps at once and stays so.
        let mut spin = Spin::new(MAX);
        for _ in 0..10 {
            let waited = Duration::from_micros(70).max(spin.window);
            spin.adapt(waited);
        }
        assert_eq!(spin.window, Duration::ZERO);
    }

    #[test]
    fn zero_busy_poll_never_polls_and_a_small_one_is_a_cap() {
        let mut off = Spin::new(Duration::ZERO);
        off.adapt(Duration::from_micros(1));
        assert_eq!(off.window, Duration::ZERO);

        let mut small = Spin::new(Duration::from_micros(3));
        small.adapt(Duration::from_micros(1));
        assert_eq!(small.window, Duration::from_micros(3));
    }
}
