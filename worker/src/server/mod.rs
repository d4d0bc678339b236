//! The worker's event loop: one `mio::Poll` over the listeners, the connections, the signal
//! fd and the pool's waker; timeouts, graceful and quick stops, `max_requests`, heartbeats
//! and the parent-death check.
//!
//! Readiness is edge-triggered. A connection is registered once for reading and writing and
//! never re-registered; what its events mean for reading is `http1::ReadSide`'s business.
//! The protocol itself is `http1/`: the loop hands it ready connections through `drive`.

pub(crate) mod listener;
mod slots;
mod spin;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Moment;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::access_log::AccessLog;
use crate::app::{App, Peer};
use crate::app::{Replies, Reply};
use crate::date::DateCache;
use crate::http1::{self, drive, Channel, Conn, Ctx, Phase, Transport};
use crate::limits::Config;
use crate::metrics::WorkerCounters;
use crate::pool::{Job, Pool, Work};
use crate::proto::{Parser, ProxyHeader};
use crate::response::HeadCache;
use crate::statsd::Statsd;
use crate::throttle::{Throttle, REPORT_INTERVAL};
use crate::tls::{TlsConfig, TlsStream};
use crate::{Listener, Settings, Supervisor, WorkerExit, WorkerState, WorkerStatus};
use listener::MioListener;
use slots::Slots;
use spin::Spin;

const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const TICKER: Token = Token(usize::MAX - 3);
const LISTENER_BASE: usize = usize::MAX - 4096;

/// How often timeouts are checked and the heartbeat is sent: the period of the worker's
/// `timerfd`. A timer in the poll set rather than a poll timeout computed on every loop turn
/// (`next_tick - now`): the loop waits without a timeout and the tick is an event like any
/// other.
const TICK: Duration = Duration::from_millis(250);
/// How long a stopping worker keeps an idle keep-alive connection: a request the client
/// has just sent on it is still answered (with `Connection: close`) instead of being lost
/// to a close that crosses it on the wire. Never longer than `graceful_timeout`.
const STOP_IDLE_GRACE: Duration = Duration::from_secs(1);
/// Connections accepted per readiness event of a listener (see `Worker::accept`).
const ACCEPT_BATCH: usize = 1;

/// Runs the loop; see [`crate::run`].
pub(crate) fn serve(
    settings: &Settings,
    listeners: Vec<Listener>,
    tls: Option<TlsConfig>,
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
    // Counted where the arbiter reads them, or else in memory of our own.
    let own_counters;
    let metrics = match supervisor.counters() {
        Some(counters) => counters,
        None => {
            own_counters = Box::new(WorkerCounters::new());
            &*own_counters
        }
    };
    metrics.set_threads(settings.threads);
    let worker = Worker::new(
        settings,
        listeners,
        tls,
        access_log,
        Arc::clone(&app),
        &mask,
        metrics,
    );
    let exit = match worker {
        Ok(mut w) => {
            let exit = w.run(supervisor);
            // The last heartbeat carries the final request count, which the arbiter logs
            // when the worker exits; ticks alone would miss those since the last one.
            supervisor.heartbeat(w.status());
            if let Some(channel) = &w.ctx.deferred {
                // How well hand-offs to the application's thread were batched.
                tracing::debug!(
                    requests = w.ctx.requests,
                    hand_offs = channel.deliveries,
                    events = channel.delivered,
                    "deferred application channel"
                );
            }
            exit
        }
        Err(e) => WorkerExit::Failed(e),
    };
    app.exit_worker();
    ignore_stop_signals();
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    exit
}

/// The worker is done: a stop signal pending or still to come has nothing left to stop. A
/// terminal's Ctrl-C reaches the workers as well as the arbiter (which then sends its own),
/// and once the mask is restored such a signal would kill the worker on its way out, which
/// the arbiter reports as an error ("killed by int"). Ignoring discards the pending ones.
fn ignore_stop_signals() {
    use nix::sys::signal::{signal, SigHandler};
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: installing SIG_IGN runs no code in signal context.
        unsafe {
            let _ = signal(s, SigHandler::SigIgn);
        }
    }
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

struct Worker<'s> {
    poll: Poll,
    listeners: Vec<MioListener>,
    /// With it, every accepted connection is a TLS session.
    tls: Option<TlsConfig>,
    listening: bool,
    signals: SignalFd,
    /// Readable every `TICK`.
    ticker: TimerFd,
    slots: Slots<'s>,
    ctx: Ctx<'s>,
    parent: nix::unistd::Pid,
    stop_deadline: Option<Moment>,
    /// While stopping: idle keep-alive connections are closed from this time on.
    idle_close_at: Option<Moment>,
    exit_reason: WorkerExit,
    /// After an accept error (EMFILE, ENOMEM), listening resumes at this time.
    accept_paused_until: Option<Moment>,
    /// Accept errors repeat every `TICK` while they last: reported once, then at most once
    /// per `REPORT_INTERVAL`.
    accept_failures: Throttle,
    /// How often `reclaim_idle` had to make room, reported like `accept_failures`.
    capacity_reports: Throttle,
}

impl<'s> Worker<'s> {
    fn new(
        settings: &Settings,
        listeners: Vec<Listener>,
        tls: Option<TlsConfig>,
        access_log: Option<std::fs::File>,
        app: Arc<dyn App>,
        mask: &SigSet,
        metrics: &'s WorkerCounters,
    ) -> Result<Worker<'s>, String> {
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
        // One waker per poll (mio's rule), always made: the pool's finished calls or a
        // deferred application's replies (never both: a deferred application is never called
        // on the pool), and WebSocket links, share it.
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), WAKER)
                .map_err(|e| format!("cannot create the event loop's waker: {e}"))?,
        );
        let links = Arc::new(crate::ws::LinkHub::new(Arc::clone(&waker)));
        let deferred_app = app.deferred();
        let (pool, deferred) = match deferred_app {
            Some(deferred) => {
                let replies = Replies::new(Arc::new(move || {
                    let _ = waker.wake();
                }));
                let inbox = deferred.open(replies.clone())?;
                (None, Some(Channel::new(inbox, replies)))
            }
            None if settings.threads > 1 => (
                Some(
                    Pool::start(settings.threads, Arc::clone(&app), waker)
                        .map_err(|e| format!("cannot start {} threads: {e}", settings.threads))?,
                ),
                None,
            ),
            None => (None, None),
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
        // A worker without statsd still serves: the failure is said once, here.
        let statsd = Statsd::from_settings(settings).and_then(|made| {
            made.map_err(|e| {
                let address = settings.statsd_host.as_ref().map(ToString::to_string);
                tracing::error!(
                    "statsd_host {}: {e}: no statsd from this worker",
                    address.unwrap_or_default()
                )
            })
            .ok()
        });
        Ok(Worker {
            poll,
            listeners: mio_listeners,
            tls,
            listening: false,
            signals,
            ticker,
            slots: Slots::new(metrics),
            ctx: Ctx {
                cfg: Config::from_settings(settings),
                parser: Parser::from_settings(settings),
                app,
                pool,
                deferred,
                date: DateCache::new(),
                heads: HeadCache::default(),
                log,
                statsd,
                now: Moment::now(),
                requests: 0,
                stopping: false,
                max_requests_reached: false,
                links,
                metrics,
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
            app_stalled_for: match (&self.ctx.pool, &self.ctx.deferred) {
                (Some(pool), _) => pool.stalled_for(std::time::Instant::now()),
                (_, Some(channel)) => channel.stalled_for(std::time::Instant::now()),
                _ => Duration::ZERO,
            },
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
        let mut replies = Vec::new();
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
                        if let Some(channel) = &self.ctx.deferred {
                            channel.take_replies(&mut replies);
                        }
                        served += replies.len();
                        for reply in replies.drain(..) {
                            self.deferred_reply(reply);
                        }
                        self.ctx.links.take_ready(&mut resumed);
                        for (slot, serial) in resumed.drain(..) {
                            self.with_conn(slot, serial, crate::ws::link_ready);
                        }
                    }
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE),
                    Token(slot) => {
                        if let Some(c) = self.slots.conns.get_mut(slot).and_then(Option::as_mut) {
                            served += 1;
                            // A FIN that came with data gets no later edge of its own: the
                            // read side remembers it (`ReadSide::Ending`).
                            c.read.on_event(event.is_readable(), event.is_read_closed());
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
                if let Some(pool) = &self.ctx.pool {
                    self.ctx.metrics.set_busy_threads(pool.busy_threads());
                }
                supervisor.heartbeat(self.status());
                if nix::unistd::getppid() != self.parent {
                    tracing::warn!("parent changed: worker exiting");
                    return WorkerExit::ParentGone;
                }
            }
            if let Some(log) = &mut self.ctx.log {
                log.flush();
            }
            if let Some(statsd) = &mut self.ctx.statsd {
                statsd.flush_at(self.ctx.now);
            }
            // This turn's requests, body pieces and disconnects, in one hand-off.
            if let Some(channel) = &mut self.ctx.deferred {
                channel.deliver(&mut self.slots.gone);
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
            if matches!(c.phase, Phase::WebSocket(_)) {
                // RFC 6455 §7.4.1: 1001, going away; the client's close ends it.
                if !crate::ws::go_away(c, &mut self.ctx) {
                    self.slots.remove(slot);
                }
                continue;
            }
            if c.is_idle() {
                c.read.rearm();
                // A connection that has sent nothing yet stays: its request may be on the
                // way (see `ReadSide::Fresh`).
                if !drive(c, &mut self.ctx) || (closing && c.is_idle_between_requests()) {
                    self.slots.remove(slot);
                }
            }
        }
    }

    /// Accepts one connection, then re-arms the listener if more may be waiting. Taking one
    /// at a time (as nginx does without `multi_accept`) lets the workers sharing a listener
    /// split a burst of connections between them; draining the backlog in one go let the
    /// first worker to wake take nearly all of them (see `docs/BENCHMARKS.md`).
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
                    let parser = &self.ctx.parser;
                    let (proxy, trusted) = (
                        parser.proxy_header_for(ip),
                        parser.trusts_scheme_headers_from(ip),
                    );
                    if let Some(n) = self.accept_failures.success(self.ctx.now) {
                        tracing::info!(
                            "accepting again ({n} failed accepts since the last report)"
                        );
                    }
                    let stream = match &self.tls {
                        None => Transport::Plain(stream),
                        // A PROXY header comes in the clear, before the ClientHello.
                        Some(tls) => {
                            match TlsStream::new(stream, tls, proxy != ProxyHeader::Done) {
                                Ok(session) => Transport::Tls(Box::new(session)),
                                Err(e) => {
                                    tracing::error!("cannot start a TLS session: {e}");
                                    continue;
                                }
                            }
                        }
                    };
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
        let mut idle: Vec<(Moment, usize)> = self
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

    /// Hands what the pool finished back to its connection, if it is still there.
    fn finish_job(&mut self, job: Job) {
        let Some(c) = self.slots.conns.get_mut(job.slot).and_then(Option::as_mut) else {
            return;
        };
        if c.serial != job.serial {
            return; // the connection went away while the pool worked for it
        }
        let keep = match job.work {
            Work::Call(ex) => http1::call_returned(c, &mut self.ctx, ex),
            Work::Filled { reader, piece } => http1::piece_read(c, &mut self.ctx, reader, piece),
            Work::Fill { .. } => true,
        };
        if !keep {
            self.slots.remove(job.slot);
        }
    }

    /// Runs `f` on the connection in `slot` if it is still the one numbered `serial`, and
    /// closes it if `f` says so.
    fn with_conn(&mut self, slot: usize, serial: u64, f: fn(&mut Conn, &mut Ctx) -> bool) {
        let Some(c) = self.slots.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if c.serial == serial && !f(c, &mut self.ctx) {
            self.slots.remove(slot);
        }
    }

    /// Hands a deferred application's reply to its connection, if it is still there.
    fn deferred_reply(&mut self, reply: Reply) {
        let slot = reply.id().slot;
        let Some(c) = self.slots.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !http1::deferred_reply(c, &mut self.ctx, reply) {
            self.slots.remove(slot);
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
            c.read.rearm();
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
            if !http1::check_deadline(c, &mut self.ctx) {
                self.slots.remove(slot);
            }
        }
    }
}
