//! Writing a connection's output: the buffered bytes (heads, small bodies, chunk framing),
//! then what remains of the body: owned bytes (`writev` with the head), a file
//! (`sendfile`), or a stream read piece by piece (on the pool when `threads` > 1).

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use super::{Conn, Stream, Transport};
use crate::app::Body;

/// The most a streamed response body is read at a time.
pub(crate) const STREAM_PIECE: usize = 64 * 1024;

/// How far [`Conn::flush`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything is written.
    Done,
    /// A streamed body read on the pool needs its next piece: the caller hands the reader
    /// to the pool (if it is not there already) and waits.
    NeedPiece,
}

/// The part of a response body that is not copied into the write buffer.
pub(crate) enum OutBody {
    Bytes {
        bytes: Vec<u8>,
        pos: usize,
    },
    File {
        file: File,
        offset: u64,
        left: u64,
    },
    Stream {
        /// `None` while a pool thread reads the next piece.
        reader: Option<Box<dyn Read + Send>>,
        /// `Some(n)`: `Content-Length` framing with n bytes still due.
        left: Option<u64>,
        chunked: bool,
        /// Read on the pool (`threads` > 1), so a slow reader never stalls the loop.
        offload: bool,
        /// A piece read on the pool, not yet framed (empty: the end of the body).
        ready: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for OutBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutBody::Bytes { bytes, pos } => write!(f, "Bytes({pos}/{})", bytes.len()),
            OutBody::File { offset, left, .. } => write!(f, "File({offset}+{left})"),
            OutBody::Stream {
                left,
                chunked,
                offload,
                ..
            } => write!(f, "Stream({left:?}, chunked {chunked}, offload {offload})"),
        }
    }
}

impl OutBody {
    /// Converts what the application answered into what is left to send after the head.
    pub fn from_body(body: Body, chunked: bool, offload: bool) -> Option<OutBody> {
        match body {
            Body::Empty | Body::Static(_) => None,
            Body::Bytes(bytes) => Some(OutBody::Bytes { bytes, pos: 0 }),
            Body::File { file, offset, len } => Some(OutBody::File {
                file,
                offset,
                left: len,
            }),
            Body::Stream { reader, len } => Some(OutBody::Stream {
                reader: Some(reader),
                left: len,
                chunked,
                offload,
                ready: None,
            }),
        }
    }
}

/// What [`Conn::frame_piece`] did.
enum Piece {
    /// A piece is framed in the write buffer.
    Framed,
    /// The body is complete (its last chunk, if chunked, is in the write buffer).
    End,
    /// The next piece is read on the pool.
    Needed,
}

impl Conn {
    /// Writes pending output until done or the socket would block (`WouldBlock`), or until
    /// a streamed body needs its next piece from the pool.
    pub fn flush(&mut self) -> io::Result<Flushed> {
        loop {
            if self.wpos < self.wbuf.len() {
                self.write_buffered()?;
                continue;
            }
            self.wbuf.clear();
            self.wpos = 0;
            let end = match &mut self.out {
                None => {
                    if self.wbuf.capacity() > 64 * 1024 {
                        self.wbuf = Vec::with_capacity(4096);
                    }
                    // Written means on the wire: TLS records the socket has not taken yet
                    // are not.
                    self.stream.send_queued()?;
                    return Ok(Flushed::Done);
                }
                Some(OutBody::Bytes { bytes, pos }) => write_bytes(&mut self.stream, bytes, pos)?,
                Some(OutBody::File { file, offset, left }) => match self.stream.plain_socket() {
                    Some(socket) => send_file(socket, file, offset, left)?,
                    // TLS encrypts in user space: read a piece, write it as buffered output.
                    None => read_file_piece(file, offset, left, &mut self.wbuf)?,
                },
                Some(OutBody::Stream { .. }) => match self.frame_piece()? {
                    Piece::Framed => false,
                    Piece::End => true,
                    Piece::Needed => return Ok(Flushed::NeedPiece),
                },
            };
            if end {
                self.out = None;
            }
        }
    }

    /// Writes (some of) the buffered bytes, and with them the start of an owned body in the
    /// same `writev`.
    fn write_buffered(&mut self) -> io::Result<()> {
        let n = match &self.out {
            Some(OutBody::Bytes { bytes, pos }) => self.stream.write_vectored(&[
                IoSlice::new(&self.wbuf[self.wpos..]),
                IoSlice::new(&bytes[*pos..]),
            ])?,
            _ => self.stream.write(&self.wbuf[self.wpos..])?,
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let head_left = self.wbuf.len() - self.wpos;
        if n >= head_left {
            self.wpos = self.wbuf.len();
            if let Some(OutBody::Bytes { pos, .. }) = &mut self.out {
                *pos += n - head_left;
            }
        } else {
            self.wpos += n;
        }
        Ok(())
    }

    /// Puts the next piece of a streamed body into the (empty) write buffer, framed as a
    /// chunk when `chunked`.
    fn frame_piece(&mut self) -> io::Result<Piece> {
        let Some(OutBody::Stream {
            reader,
            left,
            chunked,
            offload,
            ready,
        }) = &mut self.out
        else {
            return Ok(Piece::End);
        };
        let cap = match left {
            Some(0) => return Ok(Piece::End),
            Some(n) => usize::try_from(*n)
                .unwrap_or(STREAM_PIECE)
                .min(STREAM_PIECE),
            None => STREAM_PIECE,
        };
        let prefix = if *chunked { 10 } else { 0 };
        let n = if *offload {
            // The piece comes from the pool (see `Flushed::NeedPiece`).
            let Some(piece) = ready.take() else {
                return Ok(Piece::Needed);
            };
            let n = piece.len().min(cap);
            self.wbuf.resize(prefix, 0);
            self.wbuf.extend_from_slice(&piece[..n]);
            n
        } else {
            let Some(reader) = reader.as_mut() else {
                return Ok(Piece::Needed);
            };
            self.wbuf.resize(prefix + cap, 0);
            match crate::pool::read_contained(&mut **reader, &mut self.wbuf[prefix..]) {
                Ok(n) => {
                    self.wbuf.truncate(prefix + n);
                    n
                }
                Err(e) => {
                    self.wbuf.clear();
                    return Err(e);
                }
            }
        };
        if n == 0 {
            self.wbuf.clear();
            if left.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream shorter than its content-length",
                ));
            }
            if *chunked {
                self.wbuf.extend_from_slice(b"0\r\n\r\n");
            }
            return Ok(Piece::End);
        }
        if let Some(l) = left {
            *l -= n as u64;
        }
        if *chunked {
            // The chunk-size line, formatted on the stack: no allocation per chunk (16 hex
            // digits and CRLF fit any usize).
            let mut line = [0u8; 18];
            let mut rest = &mut line[..];
            let _ = write!(rest, "{n:x}\r\n");
            let len = 18 - rest.len();
            let start = prefix - len;
            self.wbuf[start..prefix].copy_from_slice(&line[..len]);
            self.wpos = start;
            self.wbuf.extend_from_slice(b"\r\n");
        }
        Ok(Piece::Framed)
    }
}

/// Writes (some of) an owned body after its head. Returns whether it was all written before.
fn write_bytes(stream: &mut Transport, bytes: &[u8], pos: &mut usize) -> io::Result<bool> {
    if *pos >= bytes.len() {
        return Ok(true);
    }
    let n = stream.write(&bytes[*pos..])?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    *pos += n;
    Ok(false)
}

/// The most of a file body read at a time to be encrypted (four TLS records).
const FILE_PIECE: usize = 64 * 1024;

/// Reads the next piece of a file body into the (empty) write buffer, for a transport that
/// cannot `sendfile` (TLS). Returns whether the body was all read before.
fn read_file_piece(
    file: &File,
    offset: &mut u64,
    left: &mut u64,
    wbuf: &mut Vec<u8>,
) -> io::Result<bool> {
    if *left == 0 {
        return Ok(true);
    }
    let want = usize::try_from(*left).unwrap_or(FILE_PIECE).min(FILE_PIECE);
    wbuf.resize(want, 0);
    let n = match file.read_at(wbuf, *offset) {
        Ok(n) => n,
        Err(e) => {
            wbuf.clear();
            return Err(e);
        }
    };
    wbuf.truncate(n);
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shorter than its content-length",
        ));
    }
    *offset += n as u64;
    *left -= n as u64;
    Ok(false)
}

/// Sends (some of) a file body with `sendfile`. Returns whether it was all sent before.
fn send_file(stream: &Stream, file: &File, offset: &mut u64, left: &mut u64) -> io::Result<bool> {
    if *left == 0 {
        return Ok(true);
    }
    let mut off = i64::try_from(*offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let count = usize::try_from((*left).min(1 << 30)).unwrap_or(1 << 30);
    let n = match nix::sys::sendfile::sendfile(stream.as_fd(), file.as_fd(), Some(&mut off), count)
    {
        Ok(n) => n,
        Err(nix::errno::Errno::EAGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => return Err(e.into()),
    };
    if n == 0 {
        // The file shrank under us: the promised length cannot be sent.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shorter than its content-length",
        ));
    }
    *offset += n as u64;
    *left -= n as u64;
    Ok(false)
}
