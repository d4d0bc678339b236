//! The request limits ([`Limits`]) and every leniency the RFCs leave open ([`Policy`]).
//!
//! Both are plain values passed in by the caller. Field names follow gunicorn's settings
//! (`limit_request_line` → [`Limits::request_line`], `permit_obsolete_folding` →
//! [`Policy::permit_obsolete_folding`], …) so that a server's settings map onto them one to one.
//! If a field is renamed here, update the worker's mapping from `ferrocorn_config::Settings`.

/// Size limits on one request. `Default` gives the documented `DEFAULT_*` values.
///
/// The meaning of zero follows gunicorn, so that its settings map one to one: see each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length in bytes of the request line, without its CRLF (gunicorn's
    /// `limit_request_line`). Over it: 414. Zero means unlimited.
    pub request_line: usize,
    /// Maximum number of header field lines (gunicorn's `limit_request_fields`), also applied
    /// to the trailer section. Over it: 431. Zero means [`Limits::MAX_FIELDS`].
    pub fields: usize,
    /// Maximum size in bytes of one header field line *including* its CRLF and any obs-fold
    /// continuation lines (gunicorn's `limit_request_field_size`, counted as gunicorn does).
    /// Over it: 431. Zero means [`Limits::DEFAULT_FIELD_SIZE`]: a field is never unlimited.
    pub field_size: usize,
    /// Maximum body size in bytes (gunicorn's `limit_request_body`), decided from
    /// `Content-Length` or each chunk size before the data is read. Over it: 413. Zero means
    /// unlimited.
    pub body: u64,
    /// Maximum total bytes of chunk extensions (everything between a chunk size and its CRLF)
    /// in one chunked body. Over it: 400. Zero means unlimited.
    pub chunk_extensions: usize,
}

impl Limits {
    /// Default [`Limits::request_line`]: 8190 bytes.
    pub const DEFAULT_REQUEST_LINE: usize = 8190;
    /// Default [`Limits::fields`]: 100 field lines.
    pub const DEFAULT_FIELDS: usize = 100;
    /// Default [`Limits::field_size`]: 8190 bytes.
    pub const DEFAULT_FIELD_SIZE: usize = 8190;
    /// Default [`Limits::body`]: 0, unlimited.
    pub const DEFAULT_BODY: u64 = 0;
    /// Default [`Limits::chunk_extensions`]: 4096 bytes per body.
    pub const DEFAULT_CHUNK_EXTENSIONS: usize = 4096;
    /// The number of fields allowed when [`Limits::fields`] is zero (gunicorn's `MAX_HEADERS`).
    pub const MAX_FIELDS: usize = 32768;

    /// The effective request-line limit: `None` when unlimited.
    pub(crate) fn request_line_limit(&self) -> Option<usize> {
        (self.request_line != 0).then_some(self.request_line)
    }

    /// The effective field-count limit.
    pub(crate) fn fields_limit(&self) -> usize {
        if self.fields == 0 {
            Self::MAX_FIELDS
        } else {
            self.fields
        }
    }

    /// The effective field-size limit.
    pub(crate) fn field_size_limit(&self) -> usize {
        if self.field_size == 0 {
            Self::DEFAULT_FIELD_SIZE
        } else {
            self.field_size
        }
    }

    /// The effective body limit: `None` when unlimited.
    pub(crate) fn body_limit(&self) -> Option<u64> {
        (self.body != 0).then_some(self.body)
    }

    /// The effective chunk-extension limit: `None` when unlimited.
    pub(crate) fn chunk_extensions_limit(&self) -> Option<usize> {
        (self.chunk_extensions != 0).then_some(self.chunk_extensions)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: Self::DEFAULT_REQUEST_LINE,
            fields: Self::DEFAULT_FIELDS,
            field_size: Self::DEFAULT_FIELD_SIZE,
            body: Self::DEFAULT_BODY,
            chunk_extensions: Self::DEFAULT_CHUNK_EXTENSIONS,
        }
    }
}

/// What to do with header field names that contain `_` (gunicorn's `header_map`).
///
/// Once mapped to CGI-style names (`HTTP_X_FOO`), `X_Foo` and `X-Foo` collide, which lets a
/// client smuggle a header past a proxy that only filters the `-` spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// Drop such fields silently: they are not in the head and play no part in framing
    /// (gunicorn's default `drop`).
    #[default]
    Drop,
    /// Reject the request with 400 (gunicorn's `refuse`).
    Refuse,
    /// Keep them (gunicorn's `dangerous`).
    Keep,
}

/// Which PROXY protocol headers [`crate::parse_proxy_header`] accepts (gunicorn's
/// `proxy_protocol`, which accepts both versions when on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No PROXY header is expected; [`crate::parse_proxy_header`] always answers `Absent`.
    #[default]
    Off,
    /// The text header `PROXY TCP4 …\r\n`.
    V1,
    /// The binary header starting with `\r\n\r\n\0\r\nQUIT\n`.
    V2,
    /// Either version (gunicorn's `proxy_protocol = true`).
    Any,
}

/// Every choice the RFCs leave open, strict by default.
///
/// `Policy::default()` is strict RFC 9110/9112; [`Policy::gunicorn_compatible`] accepts the
/// inputs gunicorn accepts by default (see there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Reject an HTTP/1.1 request without `Host` with 400 (RFC 9112 §3.2: "A server MUST
    /// respond with a 400 … to any HTTP/1.1 request message that lacks a Host header field").
    /// Default `true`; gunicorn does not check.
    pub require_host: bool,
    /// Accept obs-fold continuation lines and join them to the field value with one space
    /// (RFC 9112 §5.2 allows either this or 400). Default `false`: 400. gunicorn's
    /// `permit_obsolete_folding`.
    pub permit_obsolete_folding: bool,
    /// Accept any token as method: lower case, `#`, shorter than 3 or longer than 20 bytes.
    /// Default `false`: methods are 3 to 20 token bytes without lower case or `#`, as gunicorn
    /// checks. gunicorn's `permit_unconventional_http_method`.
    pub permit_unconventional_http_method: bool,
    /// Upper-case the method before reporting it. gunicorn's `casefold_http_method`.
    pub casefold_http_method: bool,
    /// Accept (and strip) spaces and tabs between a field name and its colon. Default
    /// `false`: 400, as RFC 9112 §5.1 requires. gunicorn's `strip_header_spaces`.
    pub strip_header_spaces: bool,
    /// What to do with field names containing `_`. gunicorn's `header_map`.
    pub header_map: UnderscoreHeaders,
    /// Accept a `#fragment` in the request target (it is not part of any request-target form,
    /// RFC 9112 §3.2). Default `false`: 400.
    pub allow_fragment: bool,
    /// Accept `user:pass@` in an absolute-form target (RFC 9110 §4.2.4: senders MUST NOT
    /// generate it; recipients SHOULD treat it as an error). Default `false`: 400.
    pub allow_userinfo: bool,
    /// Accept raw bytes outside ASCII (>= 0x80) in the request target, passing them on as
    /// they came. Default `false`: 400, as RFC 9112 §3.2 and RFC 3986 §2 require such bytes
    /// to be percent-encoded (a raw one means a client and the servers behind us may disagree
    /// on the path). Some servers (gunicorn among them) accept them.
    pub allow_non_ascii_target: bool,
    /// Accept the content codings gunicorn accepts before a final `chunked` (`gzip`, `x-gzip`,
    /// `deflate`, `compress`, `x-compress`) and ignore `identity`, passing the coded body
    /// through undecoded. Default `false`: any coding other than `chunked` is answered 501
    /// (RFC 9112 §6.1: "A server that receives a request message with a transfer coding it does
    /// not understand SHOULD respond with 501").
    pub permit_unimplemented_transfer_codings: bool,
    /// The peer is trusted to set the scheme headers (`X-Forwarded-Proto: https`,
    /// `X-Forwarded-Protocol: ssl`, `X-Forwarded-Ssl: on`, gunicorn's default
    /// `secure_scheme_headers`): the head then reports [`crate::Head::forwarded_secure`], and
    /// headers that disagree are answered 400. The caller sets this per connection from
    /// gunicorn's `forwarded_allow_ips`. Default `false`: the headers are ordinary fields.
    pub trust_scheme_headers: bool,
    /// Which PROXY protocol header a connection may start with (gunicorn's `proxy_protocol`).
    /// Default off. The head parser does not read it: pass it to
    /// [`crate::parse_proxy_header`] before the first head of a connection.
    pub proxy_protocol: ProxyProtocol,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_host: true,
            permit_obsolete_folding: false,
            permit_unconventional_http_method: false,
            casefold_http_method: false,
            strip_header_spaces: false,
            header_map: UnderscoreHeaders::Drop,
            allow_fragment: false,
            allow_userinfo: false,
            allow_non_ascii_target: false,
            permit_unimplemented_transfer_codings: false,
            trust_scheme_headers: false,
            proxy_protocol: ProxyProtocol::Off,
        }
    }
}

impl Policy {
    /// The leniencies gunicorn has by default that RFC 9112 does not require: no `Host`
    /// check, fragments, userinfo and raw bytes outside ASCII in targets, `gzip`/`identity`
    /// before `chunked`.
    /// The gunicorn *settings* (`permit_obsolete_folding`, …) keep their defaults.
    pub fn gunicorn_compatible() -> Self {
        Policy {
            require_host: false,
            allow_fragment: true,
            allow_userinfo: true,
            allow_non_ascii_target: true,
            permit_unimplemented_transfer_codings: true,
            ..Policy::default()
        }
    }
}
