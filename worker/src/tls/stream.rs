//! One TLS connection over a non-blocking socket: rustls' `ServerConnection` (which does no
//! I/O itself) driven by the worker's edge-triggered loop. Reads return plaintext and say,
//! as a plain socket read does, whether more may be waiting; writes encrypt into rustls'
//! buffer and send what the socket takes; what it did not take stays queued
//! ([`TlsStream::has_queued`]) until the next writable edge.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::ServerConnection;

use super::TlsConfig;
use crate::http1::Stream;

/// A TLS connection and its socket.
pub(crate) struct TlsStream {
    sock: Stream,
    conn: ServerConnection,
    /// No byte has arrived yet: the first decides whether the client speaks TLS at all.
    first: bool,
    /// The client spoke plain HTTP: from then on bytes pass unencrypted, for the 400.
    plain: bool,
    /// A TLS error ended the session: no `close_notify` follows the alert.
    failed: bool,
    /// Bytes before the session: a PROXY protocol header, which a proxy sends in the clear
    /// before the ClientHello (HAProxy's `send-proxy`, nginx's `proxy_protocol`). Until
    /// [`TlsStream::end_prelude`], reads and writes pass unencrypted.
    prelude: bool,
    /// What was read with the prelude beyond it: the session's first bytes, read before
    /// the socket's.
    early: Vec<u8>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("handshaking", &self.conn.is_handshaking())
            .field("plain", &self.plain)
            .field("prelude", &self.prelude)
            .finish_non_exhaustive()
    }
}

/// The error [`TlsStream::read_some`] returns when the first bytes are not a TLS record: the
/// connection answers `400` in plain HTTP (see [`is_plain_http`]).
#[derive(Debug)]
struct PlainHttp;

impl std::fmt::Display for PlainHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a plain HTTP request was sent to a TLS port")
    }
}

impl std::error::Error for PlainHttp {}

/// Whether `e` says that the client sent plain HTTP to a TLS port.
pub(crate) fn is_plain_http(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<PlainHttp>())
}

/// Whether a connection's first byte can begin what a TLS client sends first: a handshake
/// record (22), or an SSL 2 header (high bit set), which rustls then refuses with an alert.
/// Anything else is taken for plain HTTP, as nginx does.
fn starts_tls(byte: u8) -> bool {
    byte == 0x16 || byte & 0x80 != 0
}

/// The socket as rustls reads it (after the bytes the prelude read beyond itself), noting
/// whether the read filled the room offered (if not, the socket is drained until the next
/// edge) and what the first byte was.
struct Probe<'a> {
    sock: &'a mut Stream,
    early: &'a mut Vec<u8>,
    filled: bool,
    check_first: bool,
    plain: bool,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.early.is_empty() {
            let n = self.sock.read(buf)?;
            self.filled = n == buf.len();
            n
        } else {
            let n = self.early.len().min(buf.len());
            buf[..n].copy_from_slice(&self.early[..n]);
            self.early.drain(..n);
            // The socket has not been read: more may wait there.
            self.filled = true;
            n
        };
        if self.check_first && n > 0 && !starts_tls(buf[0]) {
            self.plain = true;
        }
        Ok(n)
    }
}

impl TlsStream {
    /// A server session over a newly accepted socket. With `prelude`, the connection may
    /// start with a PROXY protocol header in the clear: bytes pass unencrypted until
    /// [`TlsStream::end_prelude`].
    pub(crate) fn new(
        sock: Stream,
        config: &TlsConfig,
        prelude: bool,
    ) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            sock,
            conn: ServerConnection::new(Arc::clone(&config.server))?,
            first: true,
            plain: false,
            failed: false,
            prelude,
            early: Vec::new(),
        })
    }

    /// The prelude (the PROXY header) is over: `early`, the bytes read after it, begin the
    /// TLS session and are read before the socket's. Returns whether there were any (then
    /// read again: no edge will announce them).
    pub(crate) fn end_prelude(&mut self, early: &[u8]) -> bool {
        if !self.prelude {
            return false;
        }
        self.prelude = false;
        self.early.extend_from_slice(early);
        !self.early.is_empty()
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &Stream {
        &self.sock
    }

    /// The socket, for (de)registration with the poller.
    pub(crate) fn socket_mut(&mut self) -> &mut Stream {
        &mut self.sock
    }

    /// Reads plaintext into `buf`, reading and decrypting from the socket as needed and
    /// sending what the handshake answers. Returns the bytes read (0: the client closed) and
    /// whether more may be waiting; `WouldBlock` when no plaintext can be had until the next
    /// edge; `InvalidData` when the TLS session failed (the alert is sent); the
    /// [`is_plain_http`] error when the client does not speak TLS.
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        if self.plain || self.prelude {
            let n = self.sock.read(buf)?;
            return Ok((n, n == buf.len()));
        }
        // Unknown until the socket is read in this call: assume more may come.
        let mut socket_more = true;
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return Ok((0, false)), // close_notify
                Ok(n) => return Ok((n, socket_more || n == buf.len())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without a close_notify: the end of the input all the
                // same (HTTP's own framing says whether a request was cut short).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((0, false)),
                Err(e) => return Err(e),
            }
            if !socket_more {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            socket_more = self.receive()?;
        }
    }

    /// Reads the socket once into rustls and processes the records. Returns whether the read
    /// filled the room offered (false at end of file too).
    fn receive(&mut self) -> io::Result<bool> {
        let mut probe = Probe {
            sock: &mut self.sock,
            early: &mut self.early,
            filled: false,
            check_first: self.first,
            plain: false,
        };
        let read = self.conn.read_tls(&mut probe);
        let (filled, plain) = (probe.filled, probe.plain);
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // A record too large for rustls' buffer: a protocol error.
                self.failed = true;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if plain {
            self.plain = true;
            return Err(io::Error::other(PlainHttp));
        }
        if n == 0 {
            return Ok(false);
        }
        self.first = false;
        if let Err(e) = self.conn.process_new_packets() {
            // The alert rustls queued tells the client why.
            self.failed = true;
            let _ = self.send_queued();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        match self.send_queued() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(filled),
        }
    }

    /// Encrypts (some of) `bufs` as one run of records and sends what the socket takes.
    /// `WouldBlock` while earlier records are still queued.
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // A refused prelude (a malformed or forbidden PROXY header) is answered in the clear,
        // as plain HTTP is: no session exists to encrypt it.
        if self.plain || self.prelude {
            return self.sock.write_vectored(bufs);
        }
        self.send_queued()?;
        let n = self.conn.writer().write_vectored(bufs)?;
        match self.send_queued() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Sends the records rustls holds until none is left (`Ok`) or the socket is full
    /// (`WouldBlock`).
    pub(crate) fn send_queued(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Whether encrypted records wait to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.plain && !self.prelude && self.conn.wants_write()
    }

    /// Ends our side: a `close_notify` (so that the client can tell the end from a cut),
    /// then the socket's shutdown.
    pub(crate) fn shutdown_write(&mut self) {
        if !self.plain && !self.prelude && !self.failed {
            self.conn.send_close_notify();
            let _ = self.send_queued();
        }
        self.sock.shutdown_write();
    }
}

impl Drop for TlsStream {
    /// A connection closed while its session is sound says so with a `close_notify`,
    /// best effort (one non-blocking write), as nginx does.
    fn drop(&mut self) {
        if !self.plain && !self.failed && !self.conn.is_handshaking() {
            self.conn.send_close_notify();
            let _ = self.conn.write_tls(&mut self.sock);
        }
    }
}
