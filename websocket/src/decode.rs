//! [`Decoder`]: client frames to messages and control frames, from any split of the input,
//! with every check RFC 6455 asks of a server made as soon as the bytes that decide it arrive.

use crate::{close_code, is_valid_close_code, Opcode, ProtocolError, Utf8Validator};

/// The longest frame header: 2 bytes, an 8-byte extended length, a 4-byte masking key.
const MAX_HEAD: usize = 14;
/// The most a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// A message buffer larger than this is not kept for the next message.
const KEEP_CAPACITY: usize = 256 * 1024;
/// The most reserved ahead of a frame's payload on the strength of its declared length.
const RESERVE_AHEAD: usize = 64 * 1024;

/// What one call to [`Decoder::decode`] completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A whole text message, fragments joined, checked to be UTF-8.
    Text(&'a str),
    /// A whole binary message, fragments joined.
    Binary(&'a [u8]),
    /// A ping: the server answers it with a pong carrying the same bytes (RFC 6455 §5.5.2).
    Ping(&'a [u8]),
    /// A pong (solicited or not: both are allowed, §5.5.3).
    Pong(&'a [u8]),
    /// A close frame; `None` when it carried no status code (report 1005).
    Close(Option<CloseFrame<'a>>),
}

/// The status code and reason of a close frame, both checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// A code [`is_valid_close_code`] accepts.
    pub code: u16,
    /// The reason, UTF-8.
    pub reason: &'a str,
}

/// The header of the frame whose payload is being received.
#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    /// Payload bytes received so far (the mask's phase).
    done: u64,
    /// Payload bytes still due.
    left: u64,
}

/// What the last call handed out, cleared at the start of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handed {
    Nothing,
    Message,
    Control,
}

/// Decodes the frames a client sends (RFC 6455 §5). One per connection; it keeps the header
/// bytes of a frame cut short, the message being assembled and its UTF-8 state between calls.
///
/// After an error the connection must be failed (a close frame with the error's code, then
/// the TCP connection closed): further calls return the same error.
#[derive(Debug)]
pub struct Decoder {
    max_message: u64,
    head: [u8; MAX_HEAD],
    head_len: usize,
    frame: Option<Frame>,
    /// The data message in progress: its opcode (text or binary) and bytes so far.
    message_kind: Option<Opcode>,
    message: Vec<u8>,
    utf8: Utf8Validator,
    control: Vec<u8>,
    handed: Handed,
    failed: Option<ProtocolError>,
}

impl Decoder {
    /// A decoder refusing messages (fragments joined) longer than `max_message` bytes with
    /// close code 1009.
    pub fn new(max_message: u64) -> Decoder {
        Decoder {
            max_message,
            head: [0; MAX_HEAD],
            head_len: 0,
            frame: None,
            message_kind: None,
            message: Vec::new(),
            utf8: Utf8Validator::new(),
            control: Vec::with_capacity(MAX_CONTROL_PAYLOAD),
            handed: Handed::Nothing,
            failed: None,
        }
    }

    /// Whether a message or frame is partly received (an end of input now would cut it).
    pub fn is_mid_frame(&self) -> bool {
        self.head_len > 0 || self.frame.is_some() || self.message_kind.is_some()
    }

    /// Consumes bytes from the start of `input` and returns how many, with the item they
    /// completed, if any. At most one item per call: call again with the rest of the input
    /// (after the item is dropped) until it consumes nothing and completes nothing. Any split
    /// of the same bytes gives the same items and the same error.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Item<'_>>), ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.release_handed();
        match self.decode_inner(input) {
            Ok((used, None)) => Ok((used, None)),
            Ok((used, Some(opcode))) => Ok((used, Some(self.item(opcode)?))),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Frees what the previous call handed out.
    fn release_handed(&mut self) {
        match std::mem::replace(&mut self.handed, Handed::Nothing) {
            Handed::Nothing => {}
            Handed::Control => self.control.clear(),
            Handed::Message => {
                if self.message.capacity() > KEEP_CAPACITY {
                    self.message = Vec::new();
                } else {
                    self.message.clear();
                }
                self.message_kind = None;
                self.utf8.reset();
            }
        }
    }

    /// Decodes until an item is complete (its opcode) or the input runs out.
    fn decode_inner(&mut self, input: &[u8]) -> Result<(usize, Option<Opcode>), ProtocolError> {
        let mut pos = 0;
        loop {
            let frame = match self.frame {
                Some(f) => f,
                None => match self.read_head(&input[pos..])? {
                    (used, Some(frame)) => {
                        pos += used;
                        self.frame = Some(frame);
                        frame
                    }
                    (used, None) => return Ok((pos + used, None)),
                },
            };
            let take = usize::try_from(frame.left)
                .unwrap_or(usize::MAX)
                .min(input.len() - pos);
            self.take_payload(&input[pos..pos + take], frame)?;
            pos += take;
            if let Some(f) = &mut self.frame {
                f.done += take as u64;
                f.left -= take as u64;
                if f.left > 0 {
                    return Ok((pos, None));
                }
            }
            self.frame = None;
            if let Some(done) = self.end_frame(frame)? {
                return Ok((pos, Some(done)));
            }
        }
    }

    /// Reads (more of) a frame header; returns the bytes of `input` used and the frame once
    /// the header is complete and acceptable.
    fn read_head(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), ProtocolError> {
        if self.head_len == 0 {
            // The usual case: the whole header is in this input.
            if let Some((len, frame)) = self.parse_head(input)? {
                return Ok((len, Some(frame)));
            }
            let n = input.len().min(MAX_HEAD);
            self.head[..n].copy_from_slice(&input[..n]);
            self.head_len = n;
            return Ok((n, None));
        }
        let had = self.head_len;
        let n = input.len().min(MAX_HEAD - had);
        self.head[had..had + n].copy_from_slice(&input[..n]);
        let head = self.head;
        match self.parse_head(&head[..had + n])? {
            Some((len, frame)) => {
                self.head_len = 0;
                Ok((len - had, Some(frame)))
            }
            None => {
                self.head_len = had + n;
                Ok((n, None))
            }
        }
    }

    /// Parses a frame header from the start of `bytes` (RFC 6455 §5.2) and judges it against
    /// what came before; `None` while it is incomplete. Each check is made as soon as the
    /// bytes it needs are there, so a prefix fails exactly as the whole would.
    fn parse_head(&self, bytes: &[u8]) -> Result<Option<(usize, Frame)>, ProtocolError> {
        let Some(&b0) = bytes.first() else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            // §5.2: RSV1-3 must be 0 unless an extension defines them; none is negotiated.
            return Err(ProtocolError::protocol(
                "reserved bits set without an extension",
            ));
        }
        let Some(opcode) = Opcode::from_bits(b0) else {
            return Err(ProtocolError::protocol("reserved opcode"));
        };
        match (opcode, self.message_kind) {
            (Opcode::Continuation, None) => {
                return Err(ProtocolError::protocol(
                    "continuation frame without a message",
                ))
            }
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(ProtocolError::protocol(
                    "new message inside a fragmented one",
                ))
            }
            // §5.5: control frames must not be fragmented.
            (op, _) if op.is_control() && !fin => {
                return Err(ProtocolError::protocol("fragmented control frame"))
            }
            _ => {}
        }
        let Some(&b1) = bytes.get(1) else {
            return Ok(None);
        };
        if b1 & 0x80 == 0 {
            // §5.1: a server must close the connection on an unmasked client frame.
            return Err(ProtocolError::protocol("unmasked client frame"));
        }
        let (ext, short) = match b1 & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if opcode.is_control() && short.is_none_or(|n| n > MAX_CONTROL_PAYLOAD as u64) {
            return Err(ProtocolError::protocol(
                "control frame longer than 125 bytes",
            ));
        }
        let len = match short {
            Some(n) => n,
            None => {
                let Some(field) = bytes.get(2..2 + ext) else {
                    return Ok(None);
                };
                let n = field.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
                if n >> 63 != 0 {
                    // §5.2: the most significant bit of a 64-bit length must be 0.
                    return Err(ProtocolError::protocol("payload length over 2^63"));
                }
                n
            }
        };
        if opcode == Opcode::Close && len == 1 {
            // §5.5.1: a close body starts with a two-byte code.
            return Err(ProtocolError::protocol("close frame with a one-byte body"));
        }
        if !opcode.is_control() {
            let so_far = self.message.len() as u64;
            if so_far.saturating_add(len) > self.max_message {
                return Err(ProtocolError {
                    code: close_code::TOO_BIG,
                    reason: "message larger than websocket_max_message_size",
                });
            }
        }
        let mask_at = 2 + ext;
        let Some(mask) = bytes.get(mask_at..mask_at + 4) else {
            return Ok(None);
        };
        let frame = Frame {
            fin,
            opcode,
            mask: [mask[0], mask[1], mask[2], mask[3]],
            done: 0,
            left: len,
        };
        Ok(Some((mask_at + 4, frame)))
    }

    /// Unmasks a piece of the current frame's payload into the message or control buffer;
    /// a text message's bytes are checked as they come.
    fn take_payload(&mut self, piece: &[u8], frame: Frame) -> Result<(), ProtocolError> {
        let phase = (frame.done % 4) as usize;
        if frame.opcode.is_control() {
            append_unmasked(&mut self.control, piece, frame.mask, phase);
            return Ok(());
        }
        if self.message_kind.is_none() {
            self.message_kind = Some(frame.opcode);
        }
        if frame.done == 0 {
            let ahead = usize::try_from(frame.left).unwrap_or(usize::MAX);
            self.message.reserve(ahead.min(RESERVE_AHEAD));
        }
        append_unmasked(&mut self.message, piece, frame.mask, phase);
        if self.message_kind == Some(Opcode::Text) && !self.utf8.feed(&self.message) {
            return Err(ProtocolError {
                code: close_code::INVALID_DATA,
                reason: "text message is not UTF-8",
            });
        }
        Ok(())
    }

    /// A frame's payload is complete: returns the opcode of the item it completes, if any.
    fn end_frame(&mut self, frame: Frame) -> Result<Option<Opcode>, ProtocolError> {
        if frame.opcode.is_control() {
            self.handed = Handed::Control;
            return Ok(Some(frame.opcode));
        }
        if self.message_kind.is_none() {
            // An empty first frame: the payload step never ran.
            self.message_kind = Some(frame.opcode);
        }
        if !frame.fin {
            return Ok(None);
        }
        let kind = self.message_kind.unwrap_or(Opcode::Binary);
        if kind == Opcode::Text && !self.utf8.is_complete(&self.message) {
            return Err(ProtocolError {
                code: close_code::INVALID_DATA,
                reason: "text message ends inside a character",
            });
        }
        self.handed = Handed::Message;
        Ok(Some(kind))
    }

    /// The item for a completed opcode, from the buffers.
    fn item(&mut self, opcode: Opcode) -> Result<Item<'_>, ProtocolError> {
        let invalid = ProtocolError {
            code: close_code::INVALID_DATA,
            reason: "text is not UTF-8",
        };
        let item = match opcode {
            Opcode::Text => Item::Text(std::str::from_utf8(&self.message).map_err(|_| invalid)?),
            Opcode::Binary | Opcode::Continuation => Item::Binary(&self.message),
            Opcode::Ping => Item::Ping(&self.control),
            Opcode::Pong => Item::Pong(&self.control),
            Opcode::Close => match parse_close(&self.control) {
                Ok(close) => Item::Close(close),
                Err(e) => {
                    self.failed = Some(e);
                    return Err(e);
                }
            },
        };
        Ok(item)
    }
}

/// A close frame's body (RFC 6455 §5.5.1, §7.4): empty, or a valid code and a UTF-8 reason.
fn parse_close(body: &[u8]) -> Result<Option<CloseFrame<'_>>, ProtocolError> {
    let Some((code, reason)) = body.split_first_chunk::<2>() else {
        return Ok(None);
    };
    let code = u16::from_be_bytes(*code);
    if !is_valid_close_code(code) {
        return Err(ProtocolError::protocol("invalid close code"));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError {
        code: close_code::INVALID_DATA,
        reason: "close reason is not UTF-8",
    })?;
    Ok(Some(CloseFrame { code, reason }))
}

/// Appends `piece` to `out`, unmasked with `mask` from byte `phase` of the key (RFC 6455
/// §5.3): eight bytes at a time, which the compiler vectorizes.
pub(crate) fn append_unmasked(out: &mut Vec<u8>, piece: &[u8], mask: [u8; 4], phase: usize) {
    let start = out.len();
    out.extend_from_slice(piece);
    apply_mask(&mut out[start..], mask, phase);
}

/// XORs `bytes` with `mask`, starting at byte `phase` of the key.
pub(crate) fn apply_mask(bytes: &mut [u8], mask: [u8; 4], phase: usize) {
    let key: [u8; 4] = std::array::from_fn(|i| mask[(phase + i) % 4]);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(eight) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests;
