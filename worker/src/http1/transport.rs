//! The byte layer under the protocol: a connection's socket as it is, or a TLS session over
//! it. Everything above (requests, responses, keep-alive, timeouts) reads and writes through
//! [`Transport`] and does not know which it is; only `sendfile` needs the plain socket.

use std::io::{self, IoSlice, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::Stream;
use crate::tls::TlsStream;

/// A connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(Stream),
    Tls(Box<TlsStream>),
}

impl Transport {
    /// Reads into `buf`. Returns the bytes read (0 at end of file) and whether more may be
    /// waiting: if not, the socket is drained until its next readable edge.
    #[inline]
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        match self {
            Transport::Plain(s) => {
                let n = s.read(buf)?;
                Ok((n, n == buf.len()))
            }
            Transport::Tls(t) => t.read_some(buf),
        }
    }

    /// Whether bytes already accepted by a write still wait to be sent (TLS records the
    /// socket did not take): the connection's output is not finished.
    #[inline]
    pub fn has_queued(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.has_queued(),
        }
    }

    /// Sends what [`Transport::has_queued`] reports; `WouldBlock` if the socket is full.
    #[inline]
    pub fn send_queued(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.send_queued(),
        }
    }

    /// The socket, when bytes go to it unchanged (`sendfile` may write to it directly).
    #[inline]
    pub fn plain_socket(&self) -> Option<&Stream> {
        match self {
            Transport::Plain(s) => Some(s),
            Transport::Tls(_) => None,
        }
    }

    /// The PROXY header (sent in the clear before a TLS session) is read: `early`, the bytes
    /// after it, begin the session. Returns whether there were any (they are read before
    /// the socket's, without a readable edge). Nothing to do for a plain socket.
    pub fn end_prelude(&mut self, early: &[u8]) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.end_prelude(early),
        }
    }

    /// Sets TCP_NODELAY (TCP only); a failure only costs latency, so it is ignored.
    pub fn set_nodelay(&self) {
        match self {
            Transport::Plain(s) => s.set_nodelay(),
            Transport::Tls(t) => t.socket().set_nodelay(),
        }
    }

    /// Ends our side of the connection (after a TLS `close_notify`).
    pub fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(s) => s.shutdown_write(),
            Transport::Tls(t) => t.shutdown_write(),
        }
    }

    fn socket_mut(&mut self) -> &mut Stream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.socket_mut(),
        }
    }
}

impl Write for Transport {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write_vectored(bufs),
            Transport::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_queued()
    }
}

impl Source for Transport {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.socket_mut().register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.socket_mut().reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.socket_mut().deregister(r)
    }
}
