//! [`Link`]: sending on a WebSocket from any thread. What it sends is queued under a mutex
//! and the event loop is woken (the worker's `mio::Waker`) to frame and write it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What a [`Link`] asks of the loop.
#[derive(Debug)]
pub(crate) enum Command {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    Resume,
}

#[derive(Debug, Default)]
struct Queue {
    commands: VecDeque<Command>,
    /// Bytes of queued messages plus the connection's unwritten output, as last seen.
    backlog: usize,
    /// The connection is gone (or closed on our side): sending fails.
    ended: bool,
    /// The loop has been told and has not taken the queue since.
    notified: bool,
}

/// The loop's end of the links of every connection of a worker: which connections have
/// commands waiting, and the waker that tells the loop.
#[derive(Debug)]
pub(crate) struct LinkHub {
    ready: Mutex<Vec<(usize, u64)>>,
    waker: Arc<mio::Waker>,
}

impl LinkHub {
    pub fn new(waker: Arc<mio::Waker>) -> LinkHub {
        LinkHub {
            ready: Mutex::default(),
            waker,
        }
    }

    /// Takes the connections (slot, serial) whose links have commands (after the waker).
    pub fn take_ready(&self, into: &mut Vec<(usize, u64)>) {
        into.append(&mut self.ready.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// One connection's link state, shared by its [`Link`]s and its session.
#[derive(Debug)]
pub(crate) struct LinkShared {
    slot: usize,
    serial: u64,
    queue: Mutex<Queue>,
    hub: Arc<LinkHub>,
}

impl LinkShared {
    pub fn new(slot: usize, serial: u64, hub: Arc<LinkHub>) -> LinkShared {
        LinkShared {
            slot,
            serial,
            queue: Mutex::default(),
            hub,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, command: Command, bytes: usize) -> Result<(), Closed> {
        let mut q = self.lock();
        if q.ended {
            return Err(Closed);
        }
        q.commands.push_back(command);
        q.backlog += bytes;
        if !std::mem::replace(&mut q.notified, true) {
            drop(q);
            self.hub
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((self.slot, self.serial));
            let _ = self.hub.waker.wake();
        }
        Ok(())
    }

    /// Takes the queued commands (on the loop).
    pub fn take(&self, into: &mut VecDeque<Command>) {
        let mut q = self.lock();
        q.notified = false;
        into.append(&mut q.commands);
    }

    /// Records the connection's unwritten output (on the loop).
    pub fn set_backlog(&self, bytes: usize) {
        self.lock().backlog = bytes;
    }

    /// The connection is gone: later sends fail.
    pub fn end(&self) {
        let mut q = self.lock();
        q.ended = true;
        q.commands.clear();
    }
}

/// The connection is closed: nothing can be sent on it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the WebSocket connection is closed")
    }
}

impl std::error::Error for Closed {}

/// Sends on one WebSocket connection from any thread ([`super::Outbox::link`]); cheap to
/// clone. Messages go out in the order they are sent, after what the handler sent before the
/// loop took them. A send after the connection ended, or after a close, returns [`Closed`]
/// (a message queued before the close frame is still sent).
#[derive(Debug, Clone)]
pub struct Link {
    pub(crate) shared: Arc<LinkShared>,
}

impl Link {
    /// Queues a text message.
    pub fn send_text(&self, text: impl Into<String>) -> Result<(), Closed> {
        let text = text.into();
        let n = text.len();
        self.shared.push(Command::Text(text), n)
    }

    /// Queues a binary message.
    pub fn send_binary(&self, bytes: impl Into<Vec<u8>>) -> Result<(), Closed> {
        let bytes = bytes.into();
        let n = bytes.len();
        self.shared.push(Command::Binary(bytes), n)
    }

    /// Starts the closing handshake, as [`super::Outbox::close`].
    pub fn close(&self, code: u16, reason: impl Into<String>) -> Result<(), Closed> {
        self.shared.push(Command::Close(code, reason.into()), 0)
    }

    /// Reads the client's messages again after [`super::Outbox::pause_reading`].
    pub fn resume_reading(&self) -> Result<(), Closed> {
        self.shared.push(Command::Resume, 0)
    }

    /// Bytes sent through links and not yet written, plus the connection's unwritten output
    /// when the loop last looked: a sender over its budget should wait for
    /// [`super::Handler::on_writable`].
    pub fn backlog(&self) -> usize {
        self.shared.lock().backlog
    }

    /// Whether the connection is over (sends fail).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().ended
    }
}
