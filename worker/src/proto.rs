//! The adapter between the event loop and the HTTP parser: parse one request head into a
//! reusable [`Request`], and decode a body incrementally.
//!
//! TEMPORARY SHIM over `httparse` until `ferrocorn-http-parser` lands on main; only this
//! file changes when the loop switches to it.

use crate::app::{Request, Version};
use ferrocorn_config::Settings;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// What the loop needs to know about a parsed head besides the request itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// Bytes of the buffer the head took, including the final CRLF.
    pub len: usize,
    pub framing: Framing,
    /// Whether the client allows the connection to stay open (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

/// A request the worker refuses, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: u16,
    pub message: String,
}

impl HttpError {
    fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }
}

/// The outcome of feeding the bytes received so far.
#[derive(Debug)]
pub(crate) enum HeadOutcome {
    /// More bytes are needed.
    Partial,
    /// A complete head, copied into the request.
    Complete(Head),
    /// A malformed request.
    Error(HttpError),
}

/// Limits and leniencies taken from the settings.
#[derive(Debug, Clone)]
pub(crate) struct ParserConfig {
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    /// Zero: unlimited.
    pub limit_request_body: u64,
}

impl ParserConfig {
    pub fn from_settings(s: &Settings) -> ParserConfig {
        ParserConfig {
            limit_request_line: if s.limit_request_line == 0 {
                usize::MAX / 4
            } else {
                s.limit_request_line
            },
            limit_request_fields: s.limit_request_fields.clamp(1, 32_768),
            limit_request_field_size: if s.limit_request_field_size == 0 {
                usize::MAX / 4
            } else {
                s.limit_request_field_size
            },
            limit_request_body: s.limit_request_body,
        }
    }

    /// The most bytes a head may take; more without a complete head is 431.
    pub fn max_head(&self) -> usize {
        self.limit_request_line.saturating_add(2).saturating_add(
            (self.limit_request_field_size.saturating_add(2))
                .saturating_mul(self.limit_request_fields)
                .saturating_add(2),
        )
    }
}

/// Parses the head at the start of `buf` into `req`.
pub(crate) fn parse_head(buf: &[u8], cfg: &ParserConfig, req: &mut Request) -> HeadOutcome {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
    let mut skip = 0;
    while buf[skip..].starts_with(b"\r\n") && skip < 4 {
        skip += 2;
    }
    let data = &buf[skip..];
    let line_end = data.iter().position(|&b| b == b'\n');
    match line_end {
        None if data.len() > cfg.limit_request_line + 1 => {
            return HeadOutcome::Error(HttpError::new(
                414,
                format!(
                    "request line longer than limit_request_line ({})",
                    cfg.limit_request_line
                ),
            ))
        }
        Some(n) if n.saturating_sub(1) > cfg.limit_request_line => {
            return HeadOutcome::Error(HttpError::new(
                414,
                format!(
                    "request line of {} bytes is longer than limit_request_line ({})",
                    n - 1,
                    cfg.limit_request_line
                ),
            ))
        }
        _ => {}
    }
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut heap;
    let headers: &mut [httparse::Header] = if cfg.limit_request_fields < storage.len() {
        &mut storage[..cfg.limit_request_fields + 1]
    } else {
        heap = vec![httparse::EMPTY_HEADER; cfg.limit_request_fields + 1];
        &mut heap
    };
    let mut parsed = httparse::Request::new(headers);
    let len = match parsed.parse(data) {
        Ok(httparse::Status::Partial) => {
            if data.len() > cfg.max_head() {
                return HeadOutcome::Error(HttpError::new(431, "request head too large"));
            }
            return HeadOutcome::Partial;
        }
        Ok(httparse::Status::Complete(n)) => n,
        Err(httparse::Error::TooManyHeaders) => {
            return HeadOutcome::Error(HttpError::new(
                431,
                format!(
                    "more header fields than limit_request_fields ({})",
                    cfg.limit_request_fields
                ),
            ))
        }
        Err(httparse::Error::Version) => {
            return HeadOutcome::Error(HttpError::new(505, "unsupported http version"))
        }
        Err(e) => {
            return HeadOutcome::Error(HttpError::new(400, format!("malformed request: {e}")))
        }
    };
    if parsed.headers.len() > cfg.limit_request_fields {
        return HeadOutcome::Error(HttpError::new(431, "too many header fields"));
    }
    let version = if parsed.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    let base = data.as_ptr() as usize;
    let off = |s: &[u8]| -> std::ops::Range<usize> {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    req.head.clear();
    req.head.extend_from_slice(&data[..len]);
    req.headers.clear();
    req.version = version;
    req.method = off(parsed.method.unwrap_or("").as_bytes());
    req.target = off(parsed.path.unwrap_or("").as_bytes());
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut te_seen = false;
    let mut conn_close = false;
    let mut conn_keep = false;
    let mut expect_continue = false;
    let mut host_count = 0;
    for h in parsed.headers.iter() {
        if h.name.len() + h.value.len() + 2 > cfg.limit_request_field_size {
            return HeadOutcome::Error(HttpError::new(
                431,
                format!(
                    "header field {:?} longer than limit_request_field_size ({})",
                    h.name, cfg.limit_request_field_size
                ),
            ));
        }
        let name = h.name;
        let value = h.value;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(value).unwrap_or("").trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return HeadOutcome::Error(HttpError::new(400, "invalid content-length"));
            }
            let Ok(n) = v.parse::<u64>() else {
                return HeadOutcome::Error(HttpError::new(400, "content-length out of range"));
            };
            // RFC 9112 §6.3 (5): differing Content-Length values are unrecoverable.
            if content_length.is_some_and(|c| c != n) {
                return HeadOutcome::Error(HttpError::new(400, "conflicting content-length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            let v = std::str::from_utf8(value).unwrap_or("");
            for coding in v.split(',').map(str::trim) {
                if chunked {
                    // RFC 9112 §6.3 (4): chunked must be the final coding.
                    return HeadOutcome::Error(HttpError::new(
                        400,
                        "chunked is not the final coding",
                    ));
                }
                if coding.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return HeadOutcome::Error(HttpError::new(
                        501,
                        format!("unsupported transfer coding {coding:?}"),
                    ));
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let v = std::str::from_utf8(value).unwrap_or("");
            for t in v.split(',').map(str::trim) {
                conn_close |= t.eq_ignore_ascii_case("close");
                conn_keep |= t.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = version == Version::Http11;
            } else {
                return HeadOutcome::Error(HttpError::new(417, "unsupported expectation"));
            }
        } else if name.eq_ignore_ascii_case("host") {
            host_count += 1;
        }
        req.headers.push((off(name.as_bytes()), off(value)));
    }
    // RFC 9112 §3.2: a request without Host (HTTP/1.1) or with several is a 400.
    if host_count > 1 || (host_count == 0 && version == Version::Http11) {
        return HeadOutcome::Error(HttpError::new(400, "missing or repeated host header"));
    }
    if te_seen && version == Version::Http10 {
        return HeadOutcome::Error(HttpError::new(
            400,
            "transfer-encoding in an http/1.0 request",
        ));
    }
    // RFC 9112 §6.1: TE and CL together is a smuggling attempt; we refuse it.
    if te_seen && content_length.is_some() {
        return HeadOutcome::Error(HttpError::new(
            400,
            "both transfer-encoding and content-length",
        ));
    }
    if te_seen && !chunked {
        return HeadOutcome::Error(HttpError::new(400, "transfer-encoding without chunked"));
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    if let Framing::Length(n) = framing {
        if cfg.limit_request_body != 0 && n > cfg.limit_request_body {
            return HeadOutcome::Error(HttpError::new(
                413,
                format!(
                    "content-length {n} exceeds limit_request_body ({})",
                    cfg.limit_request_body
                ),
            ));
        }
    }
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep && !conn_close,
    };
    HeadOutcome::Complete(Head {
        len: skip + len,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// Decodes a request body incrementally.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    state: DecodeState,
    limit: u64,
    total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    Done,
}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Whether the body is complete.
    pub done: bool,
}

impl BodyDecoder {
    pub fn new(framing: Framing, limit: u64) -> BodyDecoder {
        let state = match framing {
            Framing::None => DecodeState::Done,
            Framing::Length(n) => DecodeState::Length(n),
            Framing::Chunked => DecodeState::ChunkSize,
        };
        BodyDecoder {
            state,
            limit: if limit == 0 { u64::MAX } else { limit },
            total: 0,
        }
    }

    /// Decodes from `input`, passing body bytes to `sink`.
    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Decoded, HttpError> {
        let mut pos = 0;
        loop {
            match self.state {
                DecodeState::Done => {
                    return Ok(Decoded {
                        consumed: pos,
                        done: true,
                    })
                }
                DecodeState::Length(0) => self.state = DecodeState::Done,
                DecodeState::Length(n) | DecodeState::ChunkData(n) => {
                    let take = (input.len() - pos).min(usize::try_from(n).unwrap_or(usize::MAX));
                    if take == 0 {
                        break;
                    }
                    self.total += take as u64;
                    if self.total > self.limit {
                        return Err(HttpError::new(
                            413,
                            format!("body exceeds limit_request_body ({})", self.limit),
                        ));
                    }
                    sink(&input[pos..pos + take]);
                    pos += take;
                    let left = n - take as u64;
                    self.state = match self.state {
                        DecodeState::Length(_) => DecodeState::Length(left),
                        _ if left == 0 => DecodeState::ChunkDataEnd,
                        _ => DecodeState::ChunkData(left),
                    };
                }
                DecodeState::ChunkDataEnd => {
                    if input.len() - pos < 2 {
                        break;
                    }
                    if &input[pos..pos + 2] != b"\r\n" {
                        return Err(HttpError::new(400, "chunk data not followed by crlf"));
                    }
                    pos += 2;
                    self.state = DecodeState::ChunkSize;
                }
                DecodeState::ChunkSize => {
                    let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                        if input.len() - pos > 4096 {
                            return Err(HttpError::new(400, "chunk size line too long"));
                        }
                        break;
                    };
                    let line = &input[pos..pos + nl];
                    let Some(line) = line.strip_suffix(b"\r") else {
                        return Err(HttpError::new(400, "chunk size line without crlf"));
                    };
                    let size_part = line.split(|&b| b == b';').next().unwrap_or(b"");
                    if size_part.is_empty()
                        || size_part.len() > 15
                        || !size_part.iter().all(u8::is_ascii_hexdigit)
                    {
                        return Err(HttpError::new(400, "invalid chunk size"));
                    }
                    let size = size_part.iter().fold(0u64, |acc, &b| {
                        acc * 16 + (b as char).to_digit(16).unwrap_or(0) as u64
                    });
                    pos += nl + 1;
                    self.state = if size == 0 {
                        DecodeState::Trailers
                    } else {
                        DecodeState::ChunkData(size)
                    };
                }
                DecodeState::Trailers => {
                    let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                        if input.len() - pos > 8192 {
                            return Err(HttpError::new(431, "trailer section too large"));
                        }
                        break;
                    };
                    let line = &input[pos..pos + nl];
                    pos += nl + 1;
                    if line == b"\r" {
                        self.state = DecodeState::Done;
                    } else if !line.ends_with(b"\r") {
                        return Err(HttpError::new(400, "trailer line without crlf"));
                    }
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ParserConfig {
        ParserConfig::from_settings(&Settings::default())
    }

    #[test]
    fn complete_head_fills_request() {
        let mut req = Request::for_test("X", "/", &[], b"");
        let buf = b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\nrest";
        let HeadOutcome::Complete(head) = parse_head(buf, &cfg(), &mut req) else {
            panic!("not complete")
        };
        assert_eq!(head.len, buf.len() - 4);
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/a?b");
        assert_eq!(req.header("x-y"), Some(&b"z"[..]));
        assert!(head.keep_alive);
    }

    #[test]
    fn chunked_body_decodes_across_splits() {
        let body = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut d = BodyDecoder::new(Framing::Chunked, 0);
            let mut out = Vec::new();
            let mut buf = body[..split].to_vec();
            let r1 = d.decode(&buf, &mut |b| out.extend_from_slice(b)).unwrap();
            buf.drain(..r1.consumed);
            buf.extend_from_slice(&body[split..]);
            let r2 = d.decode(&buf, &mut |b| out.extend_from_slice(b)).unwrap();
            assert!(r2.done, "split {split}");
            assert_eq!(&buf[r2.consumed..], b"NEXT");
            assert_eq!(out, b"Wikipedia");
        }
    }

    #[test]
    fn body_over_limit_is_413() {
        let mut d = BodyDecoder::new(Framing::Chunked, 3);
        let err = d.decode(b"4\r\nWiki\r\n", &mut |_| {}).unwrap_err();
        assert_eq!(err.status, 413);
    }
}
