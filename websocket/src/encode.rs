//! Encoding frames (RFC 6455 §5.2): a server's frames are unmasked and sent whole (FIN set);
//! [`client_frame`] writes a masked one, for clients and tests.

use crate::decode::apply_mask;
use crate::decode::MAX_CONTROL_PAYLOAD;
use crate::Opcode;

/// The header of an unmasked frame with FIN set carrying `len` bytes: the bytes and their
/// count (2, 4 or 10).
pub fn header(opcode: Opcode, len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = 0x80 | opcode.bits();
    let used = match len {
        0..=125 => {
            head[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            head[1] = 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (head, used)
}

/// Appends a whole server frame (FIN set, unmasked) carrying `payload`.
pub fn frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    let (head, used) = header(opcode, payload.len());
    out.reserve(used + payload.len());
    out.extend_from_slice(&head[..used]);
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason`, the reason cut (at a character
/// boundary) to fit the 125 bytes of a control frame.
pub fn close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut body = [0u8; MAX_CONTROL_PAYLOAD];
    body[..2].copy_from_slice(&code.to_be_bytes());
    body[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    frame(out, Opcode::Close, &body[..2 + end]);
}

/// Appends a frame as a client sends it: masked with `mask`, FIN as given, RSV bits from
/// `rsv` (bits 4–6 of the first byte; 0 for a well-formed frame).
pub fn client_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode_bits: u8,
    payload: &[u8],
    mask: [u8; 4],
) {
    let (mut head, used) = header(Opcode::Binary, payload.len());
    head[0] = (u8::from(fin) << 7) | ((rsv & 0x7) << 4) | (opcode_bits & 0x0F);
    head[1] |= 0x80;
    out.extend_from_slice(&head[..used]);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_the_shortest_form() {
        assert_eq!(
            header(Opcode::Text, 0),
            ([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2)
        );
        assert_eq!(header(Opcode::Text, 125).0[..2], [0x81, 125]);
        assert_eq!(header(Opcode::Binary, 126).0[..4], [0x82, 126, 0, 126]);
        assert_eq!(
            header(Opcode::Binary, 65535).0[..4],
            [0x82, 126, 0xFF, 0xFF]
        );
        let (h, n) = header(Opcode::Binary, 65536);
        assert_eq!((n, &h[..]), (10, &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0][..]));
    }

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        let mut out = Vec::new();
        close(&mut out, 1001, &"é".repeat(100));
        assert_eq!(out[1] as usize, out.len() - 2);
        assert!(out.len() - 2 <= 125);
        assert_eq!(&out[2..4], &1001u16.to_be_bytes());
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
