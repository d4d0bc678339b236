//! The one error type of the crate, and the one place that maps each error to its status.

use std::fmt;

/// What was wrong with a request. Each kind answers one status code, given by
/// [`ErrorKind::status`]; that match is the only place statuses are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before the request (head or body) was complete. 400; a server that has
    /// received nothing at all owes no response.
    Truncated,
    /// The request line is longer than [`crate::Limits::request_line`]. 414.
    RequestLineTooLong,
    /// More header (or trailer) field lines than [`crate::Limits::fields`]. 431.
    TooManyFields,
    /// One field line is larger than [`crate::Limits::field_size`]. 431.
    FieldTooLarge,
    /// `Content-Length` or the chunk sizes exceed [`crate::Limits::body`]. 413.
    BodyTooLarge,
    /// The request line is not `method SP target SP version` (RFC 9112 §3), or too many empty
    /// lines precede it. 400.
    InvalidRequestLine,
    /// The method is not a token, or not a conventional one under the policy. 400.
    InvalidMethod,
    /// The request target has a forbidden byte or does not fit the method (RFC 9112 §3.2). 400.
    InvalidTarget,
    /// The version is not `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3). 400.
    InvalidVersion,
    /// A well-formed request with an HTTP major version other than 1. 505 (RFC 9110 §15.6.6).
    UnsupportedVersion,
    /// A bare CR or a bare LF where CRLF is required (RFC 9112 §2.2). 400.
    InvalidLineEnding,
    /// A field name is empty, not a token, followed by whitespace, a line has no colon, or a
    /// field name has `_` under [`crate::UnderscoreHeaders::Refuse`]. 400.
    InvalidHeaderName,
    /// A field value holds a control byte (RFC 9110 §5.5). 400.
    InvalidHeaderValue,
    /// A line starts with whitespace (obs-fold, or whitespace before the first field) and the
    /// policy does not permit folding (RFC 9112 §5.2, §2.2). 400.
    ObsoleteFolding,
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2). 400.
    MissingHost,
    /// `Host` is repeated or is not `uri-host [":" port]` (RFC 9112 §3.2). 400.
    InvalidHost,
    /// A field that must appear once appears twice (`Content-Type`). 400.
    DuplicateField,
    /// `Content-Length` is not one `1*DIGIT` that fits in 64 bits, or appears twice
    /// (RFC 9112 §6.3 item 5). 400.
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3 item 3). 400.
    ConflictingFraming,
    /// `Transfer-Encoding` on HTTP/1.0, `chunked` twice or not last, or a malformed list
    /// (RFC 9112 §6.1, §6.3). 400.
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked` that the policy does not accept. 501
    /// (RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// A chunk size that is empty, not hexadecimal, too large, or followed by junk
    /// (RFC 9112 §7.1). 400.
    InvalidChunkSize,
    /// A malformed chunk extension (RFC 9112 §7.1.1). 400.
    InvalidChunkExtension,
    /// The chunk extensions of one body exceed [`crate::Limits::chunk_extensions`]. 400.
    ChunkExtensionsTooLarge,
    /// Chunk data not followed by CRLF (RFC 9112 §7.1). 400.
    InvalidChunkData,
    /// A trailer field that must not be sent in a trailer (RFC 9110 §6.5.1). 400.
    ForbiddenTrailer,
    /// An `Expect` other than `100-continue`. 417 (RFC 9110 §10.1.1).
    UnsupportedExpectation,
    /// Trusted scheme headers that disagree about the scheme (gunicorn's
    /// `InvalidSchemeHeaders`). 400.
    InvalidSchemeHeaders,
    /// A malformed PROXY protocol header. 400.
    InvalidProxyHeader,
}

impl ErrorKind {
    /// The HTTP status that answers this error. Every kind maps here and nowhere else.
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            RequestLineTooLong => 414,
            TooManyFields | FieldTooLarge => 431,
            BodyTooLarge => 413,
            UnsupportedVersion => 505,
            UnsupportedTransferCoding => 501,
            UnsupportedExpectation => 417,
            Truncated
            | InvalidRequestLine
            | InvalidMethod
            | InvalidTarget
            | InvalidVersion
            | InvalidLineEnding
            | InvalidHeaderName
            | InvalidHeaderValue
            | ObsoleteFolding
            | MissingHost
            | InvalidHost
            | DuplicateField
            | InvalidContentLength
            | ConflictingFraming
            | InvalidTransferEncoding
            | InvalidChunkSize
            | InvalidChunkExtension
            | ChunkExtensionsTooLarge
            | InvalidChunkData
            | ForbiddenTrailer
            | InvalidSchemeHeaders
            | InvalidProxyHeader => 400,
        }
    }

    fn description(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Truncated => "input ended before the request was complete",
            RequestLineTooLong => "request line too long",
            TooManyFields => "too many header fields",
            FieldTooLarge => "header field too large",
            BodyTooLarge => "request body too large",
            InvalidRequestLine => "invalid request line",
            InvalidMethod => "invalid method",
            InvalidTarget => "invalid request target",
            InvalidVersion => "invalid http version",
            UnsupportedVersion => "unsupported http version",
            InvalidLineEnding => "invalid line ending",
            InvalidHeaderName => "invalid header name",
            InvalidHeaderValue => "invalid header value",
            ObsoleteFolding => "obsolete line folding",
            MissingHost => "missing host header",
            InvalidHost => "invalid host header",
            DuplicateField => "duplicate header field",
            InvalidContentLength => "invalid content-length",
            ConflictingFraming => "both content-length and transfer-encoding",
            InvalidTransferEncoding => "invalid transfer-encoding",
            UnsupportedTransferCoding => "unsupported transfer coding",
            InvalidChunkSize => "invalid chunk size",
            InvalidChunkExtension => "invalid chunk extension",
            ChunkExtensionsTooLarge => "chunk extensions too large",
            InvalidChunkData => "invalid chunk data",
            ForbiddenTrailer => "forbidden trailer field",
            UnsupportedExpectation => "unsupported expectation",
            InvalidSchemeHeaders => "contradictory scheme headers",
            InvalidProxyHeader => "invalid proxy protocol header",
        }
    }
}

/// The reason phrase of a status this crate produces (RFC 9110 §15).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Bad Request",
    }
}

/// How many bytes of the offending value an error keeps for its message.
const SNIPPET: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    None,
    /// A size that broke a limit.
    Limit {
        got: u64,
        limit: u64,
    },
    /// The start of the offending value.
    Text {
        len: u8,
        bytes: [u8; SNIPPET],
    },
}

/// A request the parser refuses: small, `Copy`, allocation-free.
///
/// Answer it with [`Error::status`] and [`Error::reason`] and `Connection: close`: after an
/// error nothing further on the connection can be trusted to be framed correctly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: Detail,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            detail: Detail::None,
        }
    }

    /// An error that names (the start of) the offending value.
    pub(crate) fn with_value(kind: ErrorKind, value: &[u8]) -> Self {
        let mut bytes = [0u8; SNIPPET];
        let len = value.len().min(SNIPPET);
        bytes[..len].copy_from_slice(&value[..len]);
        Error {
            kind,
            detail: Detail::Text {
                len: len as u8,
                bytes,
            },
        }
    }

    /// An error for a size `got` over `limit`.
    pub(crate) fn with_limit(kind: ErrorKind, got: u64, limit: u64) -> Self {
        Error {
            kind,
            detail: Detail::Limit { got, limit },
        }
    }

    /// The error a caller reports when the peer closed the connection (or the input ended)
    /// before a request was complete. Its status is 400.
    pub fn truncated() -> Self {
        Error::new(ErrorKind::Truncated)
    }

    /// What was wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status code that answers this error (see [`ErrorKind`] for the mapping).
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The reason phrase of [`Error::status`].
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status())
    }

    /// The input ended before the request was complete.
    pub fn is_truncated(&self) -> bool {
        self.kind == ErrorKind::Truncated
    }

    /// A configured limit was exceeded (413, 414 or 431).
    pub fn is_limit(&self) -> bool {
        matches!(self.status(), 413 | 414 | 431)
    }

    /// The request is well-formed but uses something not implemented (501 or 505).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.status(), 501 | 505)
    }

    /// The PROXY protocol header was malformed.
    pub fn is_proxy(&self) -> bool {
        self.kind == ErrorKind::InvalidProxyHeader
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())?;
        match self.detail {
            Detail::None => Ok(()),
            Detail::Limit { got, limit } => {
                let unit = match self.kind {
                    ErrorKind::TooManyFields => "fields",
                    _ => "bytes",
                };
                write!(f, ": {got} {unit}, over the limit of {limit}")
            }
            Detail::Text { len, bytes } => {
                f.write_str(": \"")?;
                for &b in &bytes[..len as usize] {
                    write!(f, "{}", std::ascii::escape_default(b))?;
                }
                f.write_str("\"")
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {}: {})", self.kind, self.status(), self)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons() {
        assert_eq!(Error::truncated().status(), 400);
        assert!(Error::truncated().is_truncated());
        let e = Error::with_limit(ErrorKind::RequestLineTooLong, 9000, 8190);
        assert_eq!((e.status(), e.reason()), (414, "URI Too Long"));
        assert!(e.is_limit());
        assert_eq!(
            e.to_string(),
            "request line too long: 9000 bytes, over the limit of 8190"
        );
        let e = Error::with_limit(ErrorKind::TooManyFields, 101, 100);
        assert_eq!(
            e.to_string(),
            "too many header fields: 101 fields, over the limit of 100"
        );
        let e = Error::with_value(ErrorKind::InvalidMethod, b"bla:rgh\x00");
        assert_eq!(e.to_string(), "invalid method: \"bla:rgh\\x00\"");
        assert_eq!(Error::new(ErrorKind::UnsupportedVersion).status(), 505);
        assert!(Error::new(ErrorKind::UnsupportedTransferCoding).is_unsupported());
    }
}
