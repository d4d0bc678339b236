//! Incremental UTF-8 validation of a text message arriving in pieces: an invalid prefix is
//! refused as soon as its bytes arrive (RFC 6455 §8.1 lets an endpoint fail fast; Autobahn's
//! section 6.4 checks it), a character split between pieces or frames is not.

/// Validates the bytes of one text message as they are appended to its buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Bytes of the message known to end on a character boundary and to be valid.
    complete: usize,
}

impl Utf8Validator {
    /// A validator for a new message.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Checks `message`, whose bytes up to the last call were checked already; returns
    /// false as soon as it holds a sequence that no continuation can make valid. A
    /// character cut at the end is not an error yet (see [`Utf8Validator::is_complete`]).
    pub fn feed(&mut self, message: &[u8]) -> bool {
        let Some(rest) = message.get(self.complete..) else {
            return false;
        };
        match std::str::from_utf8(rest) {
            Ok(_) => {
                self.complete = message.len();
                true
            }
            // `error_len` is `None` only when the input ends inside a character that more
            // bytes could complete: std judges the prefix exactly as fail-fast needs.
            Err(e) if e.error_len().is_none() => {
                self.complete += e.valid_up_to();
                true
            }
            Err(_) => false,
        }
    }

    /// Whether everything fed so far ends on a character boundary: required at the end of
    /// a message.
    pub fn is_complete(&self, message: &[u8]) -> bool {
        self.complete == message.len()
    }

    /// Starts over for the next message.
    pub fn reset(&mut self) {
        self.complete = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_in_pieces(bytes: &[u8], cut: usize) -> (bool, bool) {
        let mut v = Utf8Validator::new();
        let ok = v.feed(&bytes[..cut]) && v.feed(bytes);
        (ok, ok && v.is_complete(bytes))
    }

    #[test]
    fn a_character_split_anywhere_is_accepted() {
        let text = "κόσμε and €𝄞".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(feed_in_pieces(text, cut), (true, true), "cut at {cut}");
        }
    }

    #[test]
    fn an_invalid_prefix_fails_at_once() {
        // Autobahn 6.4.1: a valid start, then 0xF4 0x90 (above U+10FFFF) can never be valid.
        let mut v = Utf8Validator::new();
        let mut msg = "κόσμε".as_bytes().to_vec();
        assert!(v.feed(&msg));
        msg.extend_from_slice(&[0xF4, 0x90]);
        assert!(!v.feed(&msg));
        // A lone continuation byte, an overlong form, a surrogate.
        for bad in [&[0x80][..], &[0xC0, 0xAF], &[0xED, 0xA0, 0x80]] {
            assert!(!Utf8Validator::new().feed(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_cut_character_is_pending_not_complete() {
        let mut v = Utf8Validator::new();
        let euro = "€".as_bytes();
        assert!(v.feed(&euro[..2]));
        assert!(!v.is_complete(&euro[..2]));
        assert!(v.feed(euro));
        assert!(v.is_complete(euro));
        v.reset();
        assert!(v.is_complete(b""));
    }
}
