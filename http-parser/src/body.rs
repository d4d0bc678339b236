//! Incremental request body decoding: [`Framing`] and [`BodyDecoder`] (Content-Length and
//! chunked with extensions and trailers, RFC 9112 §6, §7).

use crate::error::{Error, ErrorKind};
use crate::fields::{line_size, parse_fields, FieldSpan, Rules};
use crate::limits::{Limits, Policy};
use crate::syntax::is_tchar;

/// How a request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One trailer field of a chunked body (owned: trailers are rare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// The field name as sent.
    pub name: String,
    /// The value, trimmed of surrounding whitespace.
    pub value: Vec<u8>,
}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes of the input used; drop them from the buffer. Zero means more input is needed
    /// (or the body was already complete).
    pub consumed: usize,
    /// Body bytes decoded by this call: a slice of the input, possibly empty.
    pub data: &'a [u8],
    /// The body (and its trailers) is complete: bytes after `consumed` belong to the next
    /// request.
    pub complete: bool,
}

/// The states of the chunked decoder (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In `chunk-size`: `digits` hex digits read so far.
    Size {
        digits: usize,
    },
    /// BWS after the size, before `;`.
    SizeSpace,
    /// After `;` (and BWS), before an extension name.
    ExtName {
        started: bool,
    },
    /// BWS after an extension name.
    ExtNameSpace,
    /// After `=` (and BWS), before the value.
    ExtValueStart,
    /// In a token value.
    ExtToken,
    /// In a quoted-string value; `escaped` after a backslash.
    ExtQuoted {
        escaped: bool,
    },
    /// After a value, BWS before `;` or CRLF.
    ExtValueEnd,
    /// Saw the CR ending the chunk line.
    SizeLf,
    /// In chunk data.
    Data,
    /// After chunk data: expecting CR, then LF.
    DataCr,
    DataLf,
    /// In the trailer section (buffered until its empty line).
    Trailers,
}

#[derive(Debug, Clone)]
enum State {
    Length { remaining: u64 },
    Chunked(Chunk),
    Done,
}

/// The longest chunk size accepted, leading zeros included.
const MAX_CHUNK_SIZE_DIGITS: usize = 64;

/// Decodes one request body from any split of the input.
///
/// Feed it the bytes that follow the head; each call returns how many bytes it used, the body
/// data among them (a slice of the input, never copied) and whether the body is complete. Call
/// again with the unused bytes plus whatever arrives next, until `complete`. When the peer
/// closes early, [`BodyDecoder::finish`] gives the error to report.
///
/// ```
/// use ferrocorn_http_parser::{BodyDecoder, Framing, Limits, Policy};
///
/// let mut decoder = BodyDecoder::new(Framing::Chunked, &Limits::default(), &Policy::default());
/// let mut input: &[u8] = b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
/// let mut body = Vec::new();
/// loop {
///     let step = decoder.decode(input).unwrap();
///     body.extend_from_slice(step.data);
///     input = &input[step.consumed..];
///     if step.complete {
///         break;
///     }
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(decoder.trailers()[0].name, "X-Sum");
/// ```
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    limits: Limits,
    policy: Policy,
    /// Body bytes announced so far (Content-Length or the sum of chunk sizes).
    announced: u64,
    /// The current chunk's size while reading it, then its remaining bytes.
    chunk: u64,
    extension_bytes: usize,
    trailer_buf: Vec<u8>,
    trailers: Vec<Trailer>,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`, enforcing `limits` (chunk sizes against the
    /// body limit, chunk extensions, fields for the trailers) and `policy` (for trailer
    /// fields). A `Content-Length` over the body limit is refused earlier, by
    /// [`crate::HeadParser::parse`]; [`crate::Head::body_decoder`] builds this for a head.
    pub fn new(framing: Framing, limits: &Limits, policy: &Policy) -> Self {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::Chunked(Chunk::Size { digits: 0 }),
        };
        BodyDecoder {
            state,
            limits: *limits,
            policy: *policy,
            announced: 0,
            chunk: 0,
            extension_bytes: 0,
            trailer_buf: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// Whether the whole body (and trailer section) has been decoded.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The trailer fields, once the body is complete (empty before, and for non-chunked
    /// bodies).
    pub fn trailers(&self) -> &[Trailer] {
        &self.trailers
    }

    /// Takes the trailer fields out of the decoder.
    pub fn take_trailers(&mut self) -> Vec<Trailer> {
        std::mem::take(&mut self.trailers)
    }

    /// Call when the input ended (the peer closed): `Ok` if the body was complete, otherwise
    /// the truncation error (400).
    pub fn finish(&self) -> Result<(), Error> {
        if self.is_complete() {
            Ok(())
        } else {
            Err(Error::truncated())
        }
    }

    /// Decodes from `input`, the body bytes received and not yet consumed.
    ///
    /// Returns at most one run of body data per call; call again with
    /// `&input[consumed..]` while it consumes bytes. Fails on malformed chunked framing or a
    /// chunk that takes the body over [`Limits::body`] (413, decided before its data is read);
    /// after an error the connection must be closed.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, Error> {
        match self.state {
            State::Done => Ok(Decoded {
                consumed: 0,
                data: &[],
                complete: true,
            }),
            State::Length { remaining } => {
                let n = remaining.min(input.len() as u64) as usize;
                let remaining = remaining - n as u64;
                self.state = if remaining == 0 {
                    State::Done
                } else {
                    State::Length { remaining }
                };
                Ok(Decoded {
                    consumed: n,
                    data: &input[..n],
                    complete: remaining == 0,
                })
            }
            State::Chunked(_) => self.decode_chunked(input),
        }
    }

    fn decode_chunked<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, Error> {
        let mut pos = 0;
        while pos < input.len() {
            let State::Chunked(chunk) = self.state else {
                break;
            };
            if chunk == Chunk::Data {
                let n = self.chunk.min((input.len() - pos) as u64) as usize;
                self.chunk -= n as u64;
                if self.chunk == 0 {
                    self.state = State::Chunked(Chunk::DataCr);
                }
                return Ok(Decoded {
                    consumed: pos + n,
                    data: &input[pos..pos + n],
                    complete: false,
                });
            }
            if chunk == Chunk::Trailers {
                pos += self.feed_trailers(&input[pos..])?;
                break;
            }
            let b = input[pos];
            pos += 1;
            let next = self.step(chunk, b)?;
            self.state = State::Chunked(next);
        }
        Ok(Decoded {
            consumed: pos,
            data: &[],
            complete: self.is_complete(),
        })
    }

    /// One byte of chunk framing (everything but data and trailers).
    fn step(&mut self, chunk: Chunk, b: u8) -> Result<Chunk, Error> {
        let bad_size = || Error::with_value(ErrorKind::InvalidChunkSize, &[b]);
        let bad_ext = || Error::with_value(ErrorKind::InvalidChunkExtension, &[b]);
        // Extension bytes: everything between the size and the CR of the chunk line.
        let in_extension = match chunk {
            Chunk::Size { digits } => digits > 0 && matches!(b, b';' | b' ' | b'\t'),
            Chunk::SizeLf | Chunk::Data | Chunk::DataCr | Chunk::DataLf | Chunk::Trailers => false,
            _ => b != b'\r',
        };
        if in_extension {
            self.extension_bytes += 1;
            if let Some(limit) = self.limits.chunk_extensions_limit() {
                if self.extension_bytes > limit {
                    return Err(Error::with_limit(
                        ErrorKind::ChunkExtensionsTooLarge,
                        self.extension_bytes as u64,
                        limit as u64,
                    ));
                }
            }
        }
        let is_ws = matches!(b, b' ' | b'\t');
        Ok(match chunk {
            Chunk::Size { digits } => match b {
                // RFC 9112 §7.1: chunk-size = 1*HEXDIG; no sign, prefix, `_` or whitespace
                // before it, and it must not overflow.
                _ if b.is_ascii_hexdigit() => {
                    let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                    if digits >= MAX_CHUNK_SIZE_DIGITS || self.chunk > (u64::MAX >> 4) {
                        return Err(bad_size());
                    }
                    self.chunk = (self.chunk << 4) | digit;
                    Chunk::Size { digits: digits + 1 }
                }
                _ if digits == 0 => return Err(bad_size()),
                b';' => Chunk::ExtName { started: false },
                b' ' | b'\t' => Chunk::SizeSpace,
                b'\r' => Chunk::SizeLf,
                _ => return Err(bad_size()),
            },
            // BWS is only allowed before an extension: "0 \r\n" is invalid.
            Chunk::SizeSpace => match b {
                _ if is_ws => Chunk::SizeSpace,
                b';' => Chunk::ExtName { started: false },
                _ => return Err(bad_size()),
            },
            Chunk::ExtName { .. }
            | Chunk::ExtNameSpace
            | Chunk::ExtValueStart
            | Chunk::ExtToken
            | Chunk::ExtQuoted { .. }
            | Chunk::ExtValueEnd => extension_step(chunk, b)?,
            Chunk::SizeLf => {
                if b != b'\n' {
                    // A bare CR in the chunk line (RFC 9112 §2.2).
                    return Err(bad_ext());
                }
                if self.chunk == 0 {
                    Chunk::Trailers
                } else {
                    self.announced = self.announced.saturating_add(self.chunk);
                    if let Some(limit) = self.limits.body_limit() {
                        if self.announced > limit {
                            return Err(Error::with_limit(
                                ErrorKind::BodyTooLarge,
                                self.announced,
                                limit,
                            ));
                        }
                    }
                    Chunk::Data
                }
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size { digits: 0 },
            // RFC 9112 §7.1: chunk-data is followed by CRLF.
            Chunk::DataCr | Chunk::DataLf => {
                return Err(Error::with_value(ErrorKind::InvalidChunkData, &[b]))
            }
            Chunk::Data | Chunk::Trailers => chunk,
        })
    }

    /// Buffers the trailer section (RFC 9112 §7.1.2) until its empty line, then parses it.
    /// Returns the bytes of `input` consumed.
    fn feed_trailers(&mut self, input: &[u8]) -> Result<usize, Error> {
        let old = self.trailer_buf.len();
        self.trailer_buf.extend_from_slice(input);
        // Re-parse only when a line ended, or when the incomplete line outgrew the field
        // limit: otherwise trailers arriving a byte at a time would cost quadratic time. The
        // incomplete line must have been judged by a parse already (its first byte decides
        // what it is; a lone CR may still end the section).
        if memchr::memchr(b'\n', input).is_none() {
            let line_start = memchr::memrchr(b'\n', &self.trailer_buf).map_or(0, |i| i + 1);
            let judged = line_start < old && &self.trailer_buf[line_start..old] != b"\r";
            if judged
                && line_size(&self.trailer_buf[line_start..]) <= self.limits.field_size_limit()
            {
                return Ok(input.len());
            }
        }
        let mut fields: Vec<FieldSpan> = Vec::new();
        let mut scratch = Vec::new();
        let rules = Rules {
            limits: &self.limits,
            policy: &self.policy,
            forbid: Some(is_forbidden_trailer),
        };
        let parsed = parse_fields(
            &self.trailer_buf,
            0,
            rules,
            &mut fields,
            &mut scratch,
            &mut None,
        )?;
        match parsed {
            None => Ok(input.len()),
            Some(end) => {
                let buf = &self.trailer_buf;
                self.trailers = fields
                    .iter()
                    .map(|f| Trailer {
                        name: String::from_utf8_lossy(f.name(buf)).into_owned(),
                        value: f.value(buf, &scratch).to_vec(),
                    })
                    .collect();
                self.trailer_buf = Vec::new();
                self.state = State::Done;
                Ok(end - old)
            }
        }
    }
}

/// One byte of a chunk extension, in one of the `Chunk::Ext*` states (RFC 9112 §7.1.1:
/// `chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`). Other states are
/// returned unchanged; [`BodyDecoder::step`] never passes them.
fn extension_step(chunk: Chunk, b: u8) -> Result<Chunk, Error> {
    let bad_ext = || Error::with_value(ErrorKind::InvalidChunkExtension, &[b]);
    let is_ws = matches!(b, b' ' | b'\t');
    Ok(match chunk {
        // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
        Chunk::ExtName { started: false } => match b {
            _ if is_ws => Chunk::ExtName { started: false },
            _ if is_tchar(b) => Chunk::ExtName { started: true },
            _ => return Err(bad_ext()),
        },
        Chunk::ExtName { started: true } => match b {
            _ if is_tchar(b) => Chunk::ExtName { started: true },
            _ if is_ws => Chunk::ExtNameSpace,
            b'=' => Chunk::ExtValueStart,
            b';' => Chunk::ExtName { started: false },
            b'\r' => Chunk::SizeLf,
            _ => return Err(bad_ext()),
        },
        Chunk::ExtNameSpace => match b {
            _ if is_ws => Chunk::ExtNameSpace,
            b'=' => Chunk::ExtValueStart,
            b';' => Chunk::ExtName { started: false },
            b'\r' => Chunk::SizeLf,
            _ => return Err(bad_ext()),
        },
        Chunk::ExtValueStart => match b {
            _ if is_ws => Chunk::ExtValueStart,
            b'"' => Chunk::ExtQuoted { escaped: false },
            _ if is_tchar(b) => Chunk::ExtToken,
            _ => return Err(bad_ext()),
        },
        Chunk::ExtToken => match b {
            _ if is_tchar(b) => Chunk::ExtToken,
            _ if is_ws => Chunk::ExtValueEnd,
            b';' => Chunk::ExtName { started: false },
            b'\r' => Chunk::SizeLf,
            _ => return Err(bad_ext()),
        },
        // RFC 9110 §5.6.4: qdtext and quoted-pair; no controls but HTAB.
        Chunk::ExtQuoted { escaped: true } => match b {
            b'\t' | b' '..=0x7e | 0x80..=0xff => Chunk::ExtQuoted { escaped: false },
            _ => return Err(bad_ext()),
        },
        Chunk::ExtQuoted { escaped: false } => match b {
            b'"' => Chunk::ExtValueEnd,
            b'\\' => Chunk::ExtQuoted { escaped: true },
            b'\t' | b' '..=0x7e | 0x80..=0xff => Chunk::ExtQuoted { escaped: false },
            _ => return Err(bad_ext()),
        },
        Chunk::ExtValueEnd => match b {
            _ if is_ws => Chunk::ExtValueEnd,
            b';' => Chunk::ExtName { started: false },
            b'\r' => Chunk::SizeLf,
            _ => return Err(bad_ext()),
        },
        Chunk::Size { .. }
        | Chunk::SizeSpace
        | Chunk::SizeLf
        | Chunk::Data
        | Chunk::DataCr
        | Chunk::DataLf
        | Chunk::Trailers => chunk,
    })
}

/// Fields a sender must not put in a trailer section and that we refuse (RFC 9110 §6.5.1):
/// framing, routing, request modifiers, authentication and connection control.
pub const FORBIDDEN_TRAILERS: [&str; 16] = [
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "expect",
    "host",
    "keep-alive",
    "max-forwards",
    "proxy-authorization",
    "proxy-connection",
    "range",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_forbidden_trailer(name: &[u8]) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        framing: Framing,
        input: &[u8],
        limits: &Limits,
    ) -> Result<(Vec<u8>, usize, Vec<Trailer>), Error> {
        let mut d = BodyDecoder::new(framing, limits, &Policy::default());
        let mut pos = 0;
        let mut body = Vec::new();
        loop {
            let step = d.decode(&input[pos..])?;
            body.extend_from_slice(step.data);
            pos += step.consumed;
            if step.complete {
                return Ok((body, pos, d.take_trailers()));
            }
            if step.consumed == 0 {
                d.finish()?;
            }
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"5; a; b=c ;d=\"x\\\"y\"\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\n\r\nNEXT";
        let (body, used, trailers) =
            decode_all(Framing::Chunked, input, &Limits::default()).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[used..], b"NEXT");
        assert_eq!(
            trailers,
            vec![Trailer {
                name: "Vary".into(),
                value: b"*".to_vec()
            }]
        );
    }

    #[test]
    fn chunked_errors() {
        let kind = |input: &[u8]| {
            decode_all(Framing::Chunked, input, &Limits::default())
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(b"0 \r\n\r\n"), ErrorKind::InvalidChunkSize);
        assert_eq!(kind(b" 0\r\n\r\n"), ErrorKind::InvalidChunkSize);
        assert_eq!(kind(b"\r\nhello\r\n0\r\n\r\n"), ErrorKind::InvalidChunkSize);
        assert_eq!(kind(b"6_0\r\n"), ErrorKind::InvalidChunkSize);
        assert_eq!(kind(b"1ffffffffffffffff\r\n"), ErrorKind::InvalidChunkSize);
        assert_eq!(kind(b"5;ext=val\rue\r\n"), ErrorKind::InvalidChunkExtension);
        assert_eq!(
            kind(b"1;a=\"b\r\nZ\r\n0\r\n\r\n"),
            ErrorKind::InvalidChunkExtension
        );
        assert_eq!(kind(b"1\r\nZX0\r\n\r\n"), ErrorKind::InvalidChunkData);
        assert_eq!(kind(b"0\r\nHost: x\r\n\r\n"), ErrorKind::ForbiddenTrailer);
        assert_eq!(kind(b"0\r\n"), ErrorKind::Truncated);
    }

    #[test]
    fn limits() {
        let limits = Limits {
            body: 10,
            chunk_extensions: 4,
            ..Limits::default()
        };
        let kind = |input: &[u8]| {
            decode_all(Framing::Chunked, input, &limits)
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(b"6\r\nhello \r\n5\r\n"), ErrorKind::BodyTooLarge);
        assert_eq!(kind(b"1;abcd\r\n"), ErrorKind::ChunkExtensionsTooLarge);
        assert!(decode_all(Framing::Chunked, b"1;abc\r\nx\r\n0\r\n\r\n", &limits).is_ok());
    }

    #[test]
    fn trailer_verdict_does_not_depend_on_the_split() {
        // Regression: a continuation line that starts a new input chunk must still be judged
        // by its first byte, not skipped as "more of the same line".
        let input = b"0\r\nX: y\r\n Z";
        for cut in 0..input.len() {
            let mut d = BodyDecoder::new(Framing::Chunked, &Limits::default(), &Policy::default());
            let mut verdict = None;
            for part in [&input[..cut], &input[cut..]] {
                let mut rest = part;
                while !rest.is_empty() && verdict.is_none() {
                    match d.decode(rest) {
                        Ok(step) if step.consumed > 0 => rest = &rest[step.consumed..],
                        Ok(_) => break,
                        Err(err) => verdict = Some(err.kind()),
                    }
                }
            }
            assert_eq!(verdict, Some(ErrorKind::ObsoleteFolding), "cut {cut}");
        }
    }

    #[test]
    fn length() {
        let (body, used, _) =
            decode_all(Framing::Length(3), b"abcdef", &Limits::default()).unwrap();
        assert_eq!((body.as_slice(), used), (&b"abc"[..], 3));
        let err = decode_all(Framing::Length(3), b"ab", &Limits::default()).unwrap_err();
        assert!(err.is_truncated());
    }
}
