//! A WebSocket (RFC 6455) codec for servers that does no I/O and never blocks: the opening
//! handshake checked and answered ([`handshake`]), client frames decoded from any split of the
//! input into messages and control frames ([`Decoder`]), server frames encoded ([`encode`]).
//!
//! The caller owns the socket and the buffers: it feeds the bytes received so far to
//! [`Decoder::decode`], which consumes what it can and hands back at most one [`Item`] per
//! call, and writes what [`encode`] appends to its output buffer when the socket allows.
//! No extension is negotiated (permessage-deflate is not implemented), so any RSV bit set is
//! a protocol error.
//!
#![doc = include_str!("../README.md")]

mod decode;
pub mod encode;
pub mod handshake;
mod utf8;

pub use decode::{CloseFrame, Decoder, Item};
pub use utf8::Utf8Validator;

/// A frame's opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// `0x0`: the next fragment of a message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl Opcode {
    /// The opcode for the low four bits of a frame's first byte; `None` for the reserved
    /// ones (`0x3`–`0x7`, `0xB`–`0xF`).
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits & 0x0F {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The four bits on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong (RFC 6455 §5.5): at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Close status codes this crate uses (RFC 6455 §7.4.1).
pub mod close_code {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// 1001: the server is going down (a graceful stop).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1005: no status code was present (never sent; reported for an empty close frame).
    pub const NO_STATUS: u16 = 1005;
    /// 1006: the connection closed without a close frame (never sent; reported).
    pub const ABNORMAL: u16 = 1006;
    /// 1007: a text message (or close reason) was not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// 1009: a message was larger than the limit.
    pub const TOO_BIG: u16 = 1009;
    /// 1011: the server met an unexpected condition (the application failed).
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2 and the
/// IANA registry): 1000–1003, 1007–1014 and the application range 3000–4999. 1004 is
/// reserved, 1005, 1006 and 1015 must never be sent, and the rest of 0–2999 is unassigned.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A violation of the protocol by the peer: the connection must be failed, with a close
/// frame carrying [`ProtocolError::code`] (RFC 6455 §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// The close code to send: 1002 (framing), 1007 (not UTF-8) or 1009 (too big).
    pub code: u16,
    /// What was wrong, for the log and the close frame's reason.
    pub reason: &'static str,
}

impl ProtocolError {
    pub(crate) const fn protocol(reason: &'static str) -> ProtocolError {
        ProtocolError {
            code: close_code::PROTOCOL_ERROR,
            reason,
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (close code {})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_round_trip_and_reserved_ones_are_none() {
        for bits in 0..16u8 {
            match Opcode::from_bits(bits) {
                Some(op) => assert_eq!(op.bits(), bits),
                None => assert!(matches!(bits, 3..=7 | 0xB..=0xF), "{bits}"),
            }
        }
    }

    #[test]
    fn close_codes_as_autobahn_judges_them() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_close_code(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }
}
