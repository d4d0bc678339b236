//! Applications that answer later ([`DeferredApp`]): instead of a synchronous
//! [`App::call`](super::App::call), the worker hands each exchange to the application's own
//! thread as [`Event`]s and takes [`Reply`]s back, both ways in batches, so that an
//! application running an event loop (an asyncio loop serving ASGI) serves many exchanges
//! at once without blocking the worker's loop or being blocked by it.
//!
//! One exchange is a conversation of messages under one [`ExchangeId`]:
//!
//! - worker → application: [`Event::Request`] (the head, and the whole body when it came
//!   at once), then [`Event::Body`] pieces while `more_body`, [`Event::Writable`] after a
//!   [`Reply::Piece`] that asked to wait, and [`Event::Disconnect`] when the client went
//!   away or its body broke off (no other event follows it);
//! - application → worker: [`Reply::Respond`] (status, headers, the first body bytes),
//!   [`Reply::Piece`]s while the body goes on, then the end: a piece with `more: false` or
//!   [`Reply::Trailers`]; or [`Reply::Abort`] (close the connection) at any time;
//!   [`Reply::Resume`] after an [`Event::Body`] marked `paused`.
//!
//! A WebSocket handshake the application accepts with a response filled by
//! [`Response::accept_websocket_deferred`](super::Response::accept_websocket_deferred)
//! goes on as the same conversation after the `101`: [`Event::Message`] for each message
//! (`paused` when the worker stopped decoding after
//! [`RequestBody::STREAM_BUFFER`](super::RequestBody::STREAM_BUFFER) bytes the application
//! has not resumed), [`Event::Closed`] for the closing handshake (the client's close frame,
//! the server failing the connection, or a graceful stop: 1001), [`Event::Disconnect`] when
//! the connection ended without one (1006); [`Reply::Send`] (with `wait`, answered by
//! [`Event::Writable`] once it is all written), [`Reply::Close`], [`Reply::Resume`],
//! [`Reply::Abort`]. No reply is owed after `Closed` or `Disconnect`.
//!
//! Every exchange must end with a final reply (a complete response or `Abort`), also after
//! a `Disconnect`: the worker keeps the connection until then. Replies for an exchange that
//! is gone are dropped.
//!
//! Flow control, both ways, without shared counters: the worker stops reading a request
//! body after [`RequestBody::STREAM_BUFFER`](super::RequestBody::STREAM_BUFFER) bytes sent
//! and marks that piece `paused`; it reads on after `Resume`. The application may send
//! response pieces without waiting until it has queued a window of its choice, then marks
//! a piece `wait: true` and waits for `Writable`, which the worker sends once it has
//! written everything queued.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{HeaderText, Request, Response};

/// Names one exchange (a request and its response) for as long as it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeId {
    pub(crate) slot: usize,
    /// Unique in the worker process: a reply to an earlier exchange on the same connection
    /// never reaches a later one.
    pub(crate) seq: u64,
}

impl ExchangeId {
    /// A number unique among the exchanges of this worker process.
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// An identifier for tests of applications without a worker.
    pub fn for_test(seq: u64) -> ExchangeId {
        ExchangeId { slot: 0, seq }
    }
}

/// A whole WebSocket message, owned: what [`Event::Message`] and [`Reply::Send`] carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (checked to be UTF-8 on the way in).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl WsMessage {
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the worker tells a deferred application.
pub enum Event {
    /// A request head. `request.body()` holds the body bytes received so far: all of them
    /// when `more_body` is false.
    Request {
        id: ExchangeId,
        request: Request,
        more_body: bool,
    },
    /// More of the request body (decoded: no chunk framing). `more`: more follows.
    /// `paused`: the worker stopped reading the socket after this piece and reads on once
    /// the application sends [`Reply::Resume`].
    Body {
        id: ExchangeId,
        data: Vec<u8>,
        more: bool,
        paused: bool,
    },
    /// The client closed the connection, or the request body broke off (malformed,
    /// timed out): nothing more comes for `id`. The application still owes a final reply.
    Disconnect { id: ExchangeId },
    /// Everything the application queued has been written, after a [`Reply::Piece`] with
    /// `wait: true`, or a [`Reply::Send`] with `wait: true`.
    Writable { id: ExchangeId },
    /// A message on an accepted WebSocket. `paused`: the worker stopped decoding after
    /// this one and goes on after [`Reply::Resume`].
    Message {
        id: ExchangeId,
        message: WsMessage,
        paused: bool,
    },
    /// The WebSocket's closing handshake: the code and reason of the client's close frame
    /// (1005 when it had none), the code the server failed the connection with (1002, 1007,
    /// 1009), or 1001 when the worker stops gracefully. Nothing more comes for `id`.
    Closed {
        id: ExchangeId,
        code: u16,
        reason: String,
    },
}

impl Event {
    /// The exchange this event belongs to.
    pub fn id(&self) -> ExchangeId {
        match self {
            Event::Request { id, .. }
            | Event::Body { id, .. }
            | Event::Disconnect { id }
            | Event::Writable { id }
            | Event::Message { id, .. }
            | Event::Closed { id, .. } => *id,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Request {
                id,
                request,
                more_body,
            } => write!(
                f,
                "Request({}, {}, more {more_body})",
                id.seq,
                request.target()
            ),
            Event::Body {
                id,
                data,
                more,
                paused,
            } => write!(
                f,
                "Body({}, {} bytes, more {more}, paused {paused})",
                id.seq,
                data.len()
            ),
            Event::Disconnect { id } => write!(f, "Disconnect({})", id.seq),
            Event::Writable { id } => write!(f, "Writable({})", id.seq),
            Event::Message {
                id,
                message,
                paused,
            } => write!(
                f,
                "Message({}, {} bytes, paused {paused})",
                id.seq,
                message.len()
            ),
            Event::Closed { id, code, reason } => {
                write!(f, "Closed({}, {code}, {reason:?})", id.seq)
            }
        }
    }
}

/// What a deferred application answers.
pub enum Reply {
    /// The response head, and in `response.body` its body (`Body::Bytes`, `Body::File`) or
    /// the first bytes of it when `more`. With `more`, [`Reply::Piece`]s follow and
    /// `length` is the declared length if any (the connection closes if the pieces fall
    /// short; bytes past it are not sent); without a length the body is chunked on
    /// HTTP/1.1.
    Respond {
        id: ExchangeId,
        response: Response,
        more: bool,
        length: Option<u64>,
    },
    /// More response body. `more: false` ends the response. `wait`: the application waits
    /// for [`Event::Writable`] before sending more.
    Piece {
        id: ExchangeId,
        data: Vec<u8>,
        more: bool,
        wait: bool,
    },
    /// Ends a streamed response with trailer fields (sent when the body is chunked,
    /// dropped otherwise, RFC 9112 §7.1.2).
    Trailers {
        id: ExchangeId,
        fields: Vec<(HeaderText, HeaderText)>,
    },
    /// Close the connection now (the application failed after the head was sent).
    Abort { id: ExchangeId },
    /// The application took the body piece or WebSocket message marked `paused`: read on.
    Resume { id: ExchangeId },
    /// Sends a message on an accepted WebSocket (dropped once a close frame was sent).
    /// `wait`: the application waits for [`Event::Writable`] before sending more.
    Send {
        id: ExchangeId,
        message: WsMessage,
        wait: bool,
    },
    /// Starts a WebSocket's closing handshake with `code` and `reason` (as
    /// [`crate::ws::Outbox::close`]); [`Event::Closed`] follows with the client's answer.
    Close {
        id: ExchangeId,
        code: u16,
        reason: String,
    },
}

impl Reply {
    /// The exchange this reply belongs to.
    pub fn id(&self) -> ExchangeId {
        match self {
            Reply::Respond { id, .. }
            | Reply::Piece { id, .. }
            | Reply::Trailers { id, .. }
            | Reply::Abort { id }
            | Reply::Resume { id }
            | Reply::Send { id, .. }
            | Reply::Close { id, .. } => *id,
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Respond {
                id,
                response,
                more,
                length,
            } => write!(
                f,
                "Respond({}, {}, {:?}, more {more}, length {length:?})",
                id.seq, response.status, response.body
            ),
            Reply::Piece {
                id,
                data,
                more,
                wait,
            } => write!(
                f,
                "Piece({}, {} bytes, more {more}, wait {wait})",
                id.seq,
                data.len()
            ),
            Reply::Trailers { id, fields } => write!(f, "Trailers({}, {fields:?})", id.seq),
            Reply::Abort { id } => write!(f, "Abort({})", id.seq),
            Reply::Resume { id } => write!(f, "Resume({})", id.seq),
            Reply::Send { id, message, wait } => {
                write!(f, "Send({}, {} bytes, wait {wait})", id.seq, message.len())
            }
            Reply::Close { id, code, reason } => write!(f, "Close({}, {code}, {reason:?})", id.seq),
        }
    }
}

/// An application that answers through messages rather than [`App::call`](super::App::call)
/// (see the module documentation); [`App::deferred`](super::App::deferred) returns it.
pub trait DeferredApp: Send + Sync {
    /// Opens the channel, on the worker's loop thread after
    /// [`App::init_worker`](super::App::init_worker) and before the first connection is
    /// accepted. The application keeps `replies` to answer with and returns the worker's
    /// end of the channel. An error stops the worker before it serves.
    fn open(&self, replies: Replies) -> Result<Box<dyn Inbox>, String>;
}

/// The worker's end of a deferred application's channel.
pub trait Inbox: Send {
    /// Hands over the events of one turn of the worker's loop (at most one call per turn,
    /// only with events), taking them out of `events`. Must not block: the application's
    /// thread takes them when it can.
    fn deliver(&mut self, events: &mut Vec<Event>);

    /// How long the application's thread has been busy without coming back to its own
    /// loop (see `WorkerStatus::app_stalled_for`): the arbiter's `timeout` applies to it.
    fn stalled_for(&self, _now: Instant) -> Duration {
        Duration::ZERO
    }
}

/// The application's end for sending replies: a queue the worker's loop takes from when its
/// waker fires. Cheap to clone.
#[derive(Clone)]
pub struct Replies {
    queue: Arc<Mutex<Vec<Reply>>>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Replies")
    }
}

impl Replies {
    pub(crate) fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Replies {
        Replies {
            queue: Arc::default(),
            wake,
        }
    }

    /// A queue whose wake-ups call `wake` (tests of applications without a worker).
    pub fn for_test(wake: impl Fn() + Send + Sync + 'static) -> Replies {
        Replies::new(Arc::new(wake))
    }

    /// Sends a batch of replies, taking them out of `batch`, and wakes the worker's loop
    /// unless a wake-up is already pending (one wake-up per batch, none while the loop has
    /// not taken the previous one).
    pub fn send(&self, batch: &mut Vec<Reply>) {
        if batch.is_empty() {
            return;
        }
        let was_empty = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = queue.is_empty();
            if was_empty {
                std::mem::swap(&mut *queue, batch);
            } else {
                queue.append(batch);
            }
            was_empty
        };
        if was_empty {
            (self.wake)();
        }
    }

    /// Takes every reply queued so far (the worker's loop, after its waker fired; tests).
    pub fn take(&self, into: &mut Vec<Reply>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if into.is_empty() {
            std::mem::swap(&mut *queue, into);
        } else {
            into.append(&mut queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_wake_up_per_batch_until_the_loop_takes_them() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let replies = Replies::for_test(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let id = ExchangeId::for_test(1);
        replies.send(&mut vec![Reply::Resume { id }, Reply::Abort { id }]);
        replies.send(&mut vec![Reply::Resume { id }]);
        assert_eq!(
            wakes.load(Ordering::SeqCst),
            1,
            "the second batch found one pending"
        );
        let mut taken = Vec::new();
        replies.take(&mut taken);
        assert_eq!(taken.len(), 3);
        replies.send(&mut vec![Reply::Abort { id }]);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
