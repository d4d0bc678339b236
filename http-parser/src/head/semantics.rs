//! What a head's fields mean: framing (Content-Length, Transfer-Encoding), persistence
//! (Connection), Host, Expect and the scheme headers. [`analyze_fields`] judges them for the
//! reference path; the fast path shares the pieces it can (`ConnectionTokens`,
//! `parse_content_length`, `scheme_headers_say`).

use super::parsed::Version;
use crate::body::Framing;
use crate::error::{Error, ErrorKind};
use crate::fields::{FieldSpan, ValueLoc};
use crate::limits::Policy;
use crate::syntax::{check_host, trim_ows};

/// What the fields say about the request.
pub(super) struct FieldMeta {
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    pub(super) expects_continue: bool,
    pub(super) unsupported_expectation: bool,
    pub(super) host: Option<ValueLoc>,
    pub(super) forwarded_secure: Option<bool>,
}

/// gunicorn's default `secure_scheme_headers`: the header and the value that means https.
pub const SECURE_SCHEME_HEADERS: [(&str, &str); 3] = [
    ("x-forwarded-protocol", "ssl"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-ssl", "on"),
];

/// What the scheme headers ([`SECURE_SCHEME_HEADERS`]) among `fields` (name, value) say:
/// `Some(true)` for https, `Some(false)` for otherwise, `None` when none is present. Fails when
/// they disagree.
pub(super) fn scheme_headers_say<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<bool>, Error> {
    let (mut secure_seen, mut insecure_seen) = (false, false);
    for (name, value) in fields {
        for (header, secure_value) in SECURE_SCHEME_HEADERS {
            if name.eq_ignore_ascii_case(header.as_bytes()) {
                if value.eq_ignore_ascii_case(secure_value.as_bytes()) {
                    secure_seen = true;
                } else {
                    insecure_seen = true;
                }
            }
        }
    }
    if secure_seen && insecure_seen {
        return Err(Error::new(ErrorKind::InvalidSchemeHeaders));
    }
    Ok((secure_seen || insecure_seen).then_some(secure_seen))
}

/// Transfer codings that [`Policy::permit_unimplemented_transfer_codings`] passes through.
const PASS_THROUGH_CODINGS: [&[u8]; 5] =
    [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

/// Judges the fields that decide framing, persistence, Host and Expect, and the scheme
/// headers, for the reference path; the first error in field order (then the checks on the
/// whole head) is the verdict.
pub(super) fn analyze_fields<'a>(
    buf: &'a [u8],
    scratch: &'a [u8],
    fields: &[FieldSpan],
    version: Version,
    policy: &Policy,
) -> Result<FieldMeta, Error> {
    let mut content_length: Option<u64> = None;
    let mut transfer_codings = TransferCodings::default();
    let mut host: Option<ValueLoc> = None;
    let mut content_type_seen = false;
    let mut connection = ConnectionTokens::default();
    let mut expects_continue = false;
    let mut unsupported_expectation = false;

    for field in fields {
        let name = field.name(buf);
        let value = field.value(buf, scratch);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                // RFC 9112 §3.2: more than one Host field line is answered 400.
                if host.is_some() {
                    return Err(Error::with_value(ErrorKind::InvalidHost, value));
                }
                check_host(value)?;
                host = Some(field.value);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                // RFC 9110 §10.1.1; a 100-continue on HTTP/1.0 MUST be ignored.
                if value.eq_ignore_ascii_case(b"100-continue") {
                    expects_continue = version == Version::Http11;
                } else {
                    unsupported_expectation = true;
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => connection.scan(value),
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                if content_type_seen {
                    return Err(Error::with_value(ErrorKind::DuplicateField, name));
                }
                content_type_seen = true;
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // RFC 9112 §6.3 item 5: a repeated or list-valued Content-Length is an
                // unrecoverable framing error, even with equal values.
                if content_length.is_some() {
                    return Err(Error::with_value(ErrorKind::InvalidContentLength, value));
                }
                content_length = Some(parse_content_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_codings.note(value, policy.permit_unimplemented_transfer_codings);
            }
            _ => {}
        }
    }

    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    if host.is_none() && version == Version::Http11 && policy.require_host {
        return Err(Error::new(ErrorKind::MissingHost));
    }

    let framing = transfer_codings.framing(
        content_length,
        version,
        policy.permit_unimplemented_transfer_codings,
    )?;

    let forwarded_secure = if policy.trust_scheme_headers {
        scheme_headers_say(
            fields
                .iter()
                .map(|field| (field.name(buf), field.value(buf, scratch))),
        )?
    } else {
        None
    };

    let keep_alive = connection.keep_alive(version == Version::Http11);

    Ok(FieldMeta {
        framing,
        keep_alive,
        expects_continue,
        unsupported_expectation,
        host,
        forwarded_secure,
    })
}

/// What the `Transfer-Encoding` lines say, over all of them: the field is a list, and several
/// lines concatenate (RFC 9110 §5.3).
#[derive(Default)]
struct TransferCodings<'a> {
    /// A `Transfer-Encoding` line was seen.
    present: bool,
    /// The codings counted (not the empty ones, nor `identity` under the compatibility policy).
    codings: usize,
    chunked_count: usize,
    last_is_chunked: bool,
    /// The first coding we neither implement nor pass through.
    unsupported: Option<&'a [u8]>,
}

impl<'a> TransferCodings<'a> {
    /// Notes one `Transfer-Encoding` value; `compat` is
    /// [`Policy::permit_unimplemented_transfer_codings`].
    fn note(&mut self, value: &'a [u8], compat: bool) {
        self.present = true;
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            // RFC 9110 §5.6.1: empty list elements are ignored. Under the compatibility
            // policy `identity` (which changes nothing) is too.
            if coding.is_empty() || (compat && coding.eq_ignore_ascii_case(b"identity")) {
                continue;
            }
            self.codings += 1;
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if self.last_is_chunked {
                self.chunked_count += 1;
            } else if self.unsupported.is_none()
                && !(compat
                    && PASS_THROUGH_CODINGS
                        .iter()
                        .any(|c| coding.eq_ignore_ascii_case(c)))
            {
                self.unsupported = Some(coding);
            }
        }
    }

    /// The body's framing from these codings and the Content-Length, if any.
    fn framing(
        &self,
        content_length: Option<u64>,
        version: Version,
        compat: bool,
    ) -> Result<Framing, Error> {
        // Under the compatibility policy a Transfer-Encoding of only `identity` is no coding.
        let transfer_encoding = if compat {
            self.codings > 0
        } else {
            self.present
        };
        if !transfer_encoding {
            return Ok(match content_length {
                Some(n) => Framing::Length(n),
                // RFC 9112 §6.3 item 7: no Content-Length or Transfer-Encoding, no body.
                None => Framing::None,
            });
        }
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        if version == Version::Http10 {
            return Err(Error::new(ErrorKind::InvalidTransferEncoding));
        }
        // RFC 9112 §6.3 item 3: both headers is a smuggling attempt; reject.
        if content_length.is_some() {
            return Err(Error::new(ErrorKind::ConflictingFraming));
        }
        // RFC 9112 §6.3 item 4, §7: chunked must be the last coding, applied once.
        if self.chunked_count != 1 || !self.last_is_chunked {
            return Err(Error::new(ErrorKind::InvalidTransferEncoding));
        }
        if let Some(coding) = self.unsupported {
            return Err(Error::with_value(
                ErrorKind::UnsupportedTransferCoding,
                coding,
            ));
        }
        Ok(Framing::Chunked)
    }
}

/// The `Connection` options that decide persistence, over all `Connection` lines.
#[derive(Default)]
pub(super) struct ConnectionTokens {
    pub(super) close: bool,
    pub(super) keep_alive: bool,
}

impl ConnectionTokens {
    /// Notes the `close` and `keep-alive` options of one `Connection` value (a list).
    #[inline]
    pub(super) fn scan(&mut self, value: &[u8]) {
        // The usual values are one option.
        if value.eq_ignore_ascii_case(b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if value.eq_ignore_ascii_case(b"close") {
            self.close = true;
            return;
        }
        for token in value.split(|&b| b == b',').map(trim_ows) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    pub(super) fn keep_alive(&self, http_11: bool) -> bool {
        !self.close && (http_11 || self.keep_alive)
    }
}

/// Parses `Content-Length = 1*DIGIT` (RFC 9110 §8.6), refusing overflow.
pub(super) fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    let bad = || Error::with_value(ErrorKind::InvalidContentLength, value);
    if value.is_empty() {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(n)
}
