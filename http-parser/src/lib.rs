//! Strict, incremental HTTP/1.1 request parser with limit enforcement. No I/O, no logging.
//!
//! The entry points: [`HeadParser::parse`] (or [`HeadParser::parse_resuming`]) for a request
//! head, [`Head::body_decoder`] for its body, [`parse_proxy_header`] for a PROXY protocol
//! header; [`Limits`] and [`Policy`] say what is accepted, [`Error::status`] what to answer.
//!
#![doc = include_str!("../README.md")]

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
