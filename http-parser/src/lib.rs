//! Strict, incremental HTTP/1.1 request parser with limit enforcement. No I/O, no logging.
//!
//! A push parser: give [`HeadParser::parse`] the bytes received so far and it answers
//! [`Status::Partial`] (need more), [`Status::Complete`] with a [`Head`] borrowing the buffer
//! and the number of bytes the head spans, or an [`Error`] that maps to exactly one status
//! code ([`Error::status`]). The body is then decoded incrementally by a [`BodyDecoder`], from
//! any split of the input. A connection behind a proxy may start with a PROXY protocol header:
//! [`parse_proxy_header`] reads it first.
//!
//! Built on [`httparse`](https://docs.rs/httparse): httparse tokenizes the field lines of a
//! head; this crate scans the request line, validates what httparse returns (CRLF line ends,
//! method and target rules, limits, the fields that decide framing and persistence) and
//! classifies every error, re-reading unusual or invalid heads line by line so that each gets
//! its exact status.
//!
//! Limits ([`Limits`]: request line 414, header count and size 431, body 413, chunk extensions)
//! are enforced on partial input too. Framing is strict RFC 9110/9112 by default; every leniency
//! the RFCs leave open is one field of [`Policy`].
//!
//! ```
//! use ferrocorn_http_parser::{Framing, HeadParser, Limits, Policy, Status};
//!
//! let mut parser = HeadParser::new(Limits::default(), Policy::default());
//! let input = b"POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello";
//!
//! // A prefix is only "need more".
//! assert!(matches!(parser.parse(&input[..20]), Ok(Status::Partial)));
//!
//! let Ok(Status::Complete(head, consumed)) = parser.parse(input) else { panic!() };
//! assert_eq!(head.method(), "POST");
//! assert_eq!(head.target(), b"/upload?x=1");
//! assert_eq!(head.header("host"), Some(&b"example.com"[..]));
//! assert!(head.keep_alive());
//! assert_eq!(head.framing(), Framing::Length(5));
//!
//! let mut body = head.body_decoder();
//! let step = body.decode(&input[consumed..]).unwrap();
//! assert_eq!((step.data, step.complete), (&b"hello"[..], true));
//!
//! // Errors carry their status.
//! let err = parser.parse(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n").unwrap_err();
//! assert_eq!((err.status(), err.reason()), (400, "Bad Request"));
//! ```

mod body;
mod error;
mod fields;
mod head;
mod limits;
mod proxy;
mod syntax;

pub use body::{BodyDecoder, Decoded, Framing, Trailer, FORBIDDEN_TRAILERS};
pub use error::{Error, ErrorKind};
pub use head::{
    Head, HeadParser, Header, Headers, Progress, Status, Version, MAX_LEADING_EMPTY_LINES,
    SECURE_SCHEME_HEADERS,
};
pub use limits::{Limits, Policy, ProxyProtocol, UnderscoreHeaders};
pub use proxy::{parse_proxy_header, ProxyHeader, ProxyStatus};
pub use syntax::{is_token, TargetForm};
