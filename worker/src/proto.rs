//! The adapter between the event loop and `ferrocorn-http-parser`: maps `Settings` onto the
//! parser's `Limits`/`Policy`, parses one request head into a reusable [`Request`], decodes
//! bodies and reads PROXY protocol headers. The only file that knows the parser's API.

use std::net::IpAddr;

use ferrocorn_config::{HeaderMap, IpAllowList, ProxyProtocol, Settings};
use ferrocorn_http_parser as hp;

use crate::app::{Request, Version};

pub(crate) use hp::Framing;

/// What the loop needs to know about a parsed head besides the request itself.
#[derive(Debug)]
pub(crate) struct Head {
    /// Bytes of the buffer the head took, including the final CRLF.
    pub len: usize,
    pub framing: Framing,
    /// Whether the client allows the connection to stay open (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// The decoder for the body, with the parser's limits; `None` when no body follows
    /// (no framing, or `Content-Length: 0`).
    pub decoder: Option<BodyDecoder>,
}

/// A request the worker refuses, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: u16,
    pub message: String,
}

impl From<hp::Error> for HttpError {
    fn from(e: hp::Error) -> HttpError {
        HttpError {
            status: e.status(),
            message: e.to_string(),
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

/// The outcome of looking for a PROXY protocol header.
#[derive(Debug)]
pub(crate) enum ProxyOutcome {
    Partial,
    /// No header (or none expected): the request starts at the first byte.
    Absent,
    /// A header of `len` bytes; the client is `source` when the proxy named one.
    Complete {
        len: usize,
        source: Option<std::net::SocketAddr>,
    },
    Error(HttpError),
}

/// Whether a connection may still start with a PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyHeader {
    /// `proxy_protocol` is off, or the header has been read: a request comes first.
    Done,
    /// The peer is in `proxy_allow_ips`: a header may come first, and names the client.
    Allowed,
    /// The peer is not in `proxy_allow_ips`: a header is answered 403, as gunicorn answers
    /// it, so that a proxy missing from the list shows up as a refusal rather than as a
    /// malformed request.
    Forbidden,
}

/// The parser with the worker's limits and policy, shared by all connections of the loop
/// (a head is copied into its [`Request`] before the next parse).
#[derive(Debug)]
pub(crate) struct Parser {
    parser: hp::HeadParser,
    policy: hp::Policy,
    max_head: usize,
    proxy_mode: hp::ProxyProtocol,
    forwarded_allow: IpAllowList,
    proxy_allow: IpAllowList,
}

/// Whether a peer is in `list`. Unix-socket peers (`None`) always are, as in gunicorn.
fn allowed(list: &IpAllowList, ip: Option<IpAddr>) -> bool {
    ip.is_none_or(|ip| list.allows(ip))
}

impl Parser {
    /// Maps the gunicorn-named settings onto the parser's `Limits` and `Policy` (strict RFC
    /// 9110/9112 otherwise). If a setting is added to either side, update this mapping.
    pub fn from_settings(s: &Settings) -> Parser {
        let resolved = s.request_limits();
        // The parser's own conventions: 0 means no limit for the line and the body.
        let limits = hp::Limits {
            request_line: resolved.line.unwrap_or(0),
            fields: resolved.fields,
            field_size: resolved.field_size,
            body: resolved.body.unwrap_or(0),
            chunk_extensions: hp::Limits::DEFAULT_CHUNK_EXTENSIONS,
        };
        let policy = hp::Policy {
            permit_obsolete_folding: s.permit_obsolete_folding,
            permit_unconventional_http_method: s.permit_unconventional_http_method,
            casefold_http_method: s.casefold_http_method,
            strip_header_spaces: s.strip_header_spaces,
            header_map: match s.header_map {
                HeaderMap::Drop => hp::UnderscoreHeaders::Drop,
                HeaderMap::Refuse => hp::UnderscoreHeaders::Refuse,
                HeaderMap::Dangerous => hp::UnderscoreHeaders::Keep,
            },
            // Off: RFC 9112 wants bytes outside ASCII percent-encoded, and `Request::target`
            // is a `&str`. If a setting ever turns it on, `parse_head` must encode them.
            allow_non_ascii_target: false,
            ..hp::Policy::default()
        };
        // The parser enforces its limits on partial input; this only bounds the read buffer
        // in case a head could still be partial beyond them (an unlimited line counts as
        // 64 KiB here).
        let max_head = resolved
            .line
            .unwrap_or(64 * 1024)
            .saturating_add(2 + 2 * hp::MAX_LEADING_EMPTY_LINES)
            .saturating_add(resolved.fields.saturating_mul(resolved.field_size))
            .saturating_add(2)
            .min(64 << 20);
        Parser {
            parser: hp::HeadParser::new(limits, policy),
            policy,
            max_head,
            proxy_mode: match s.proxy_protocol {
                ProxyProtocol::Off => hp::ProxyProtocol::Off,
                ProxyProtocol::V1 => hp::ProxyProtocol::V1,
                ProxyProtocol::V2 => hp::ProxyProtocol::V2,
                ProxyProtocol::Auto => hp::ProxyProtocol::Any,
            },
            forwarded_allow: s.forwarded_allow_ips.clone(),
            proxy_allow: s.proxy_allow_ips.clone(),
        }
    }

    /// The most bytes a head may take.
    pub fn max_head(&self) -> usize {
        self.max_head
    }

    /// Whether a peer at `ip` may set the scheme headers (`forwarded_allow_ips`).
    pub fn trusts_scheme_headers_from(&self, ip: Option<IpAddr>) -> bool {
        allowed(&self.forwarded_allow, ip)
    }

    /// What a PROXY header at the start of a connection from `ip` means.
    pub fn proxy_header_for(&self, ip: Option<IpAddr>) -> ProxyHeader {
        if self.proxy_mode == hp::ProxyProtocol::Off {
            ProxyHeader::Done
        } else if allowed(&self.proxy_allow, ip) {
            ProxyHeader::Allowed
        } else {
            ProxyHeader::Forbidden
        }
    }

    /// Reads a PROXY protocol header at the start of a connection.
    pub fn parse_proxy(&self, buf: &[u8]) -> ProxyOutcome {
        match hp::parse_proxy_header(buf, self.proxy_mode) {
            Ok(hp::ProxyStatus::Partial) => ProxyOutcome::Partial,
            Ok(hp::ProxyStatus::Absent) => ProxyOutcome::Absent,
            Ok(hp::ProxyStatus::Complete(h, len)) => ProxyOutcome::Complete {
                len,
                source: h.source,
            },
            Err(e) => ProxyOutcome::Error(e.into()),
        }
    }

    /// Parses the head at the start of `buf` into `req`. `trusted` says whether the peer may
    /// set the scheme headers (`forwarded_allow_ips`). `progress` is the connection's own
    /// (see [`hp::HeadParser::parse_resuming`]): after `Partial`, call again with the same
    /// bytes and more appended, so a head arriving in small pieces is not re-parsed from its
    /// start on every read.
    ///
    /// Always inlined: the connection's read path is the call that matters, and a second
    /// caller (the metrics endpoint) would otherwise make the compiler call it out of line
    /// there too.
    #[inline(always)]
    pub fn parse_head(
        &mut self,
        buf: &[u8],
        trusted: bool,
        progress: &mut hp::Progress,
        req: &mut Request,
    ) -> HeadOutcome {
        if self.policy.trust_scheme_headers != trusted {
            self.policy.trust_scheme_headers = trusted;
            self.parser.set_policy(self.policy);
        }
        let (head, len) = match self.parser.parse_resuming(buf, progress) {
            Ok(hp::Status::Partial) => {
                if buf.len() > self.max_head {
                    *progress = hp::Progress::default();
                    return HeadOutcome::Error(HttpError {
                        status: 431,
                        message: format!(
                            "request head over {} bytes without its end",
                            self.max_head
                        ),
                    });
                }
                return HeadOutcome::Partial;
            }
            Ok(hp::Status::Complete(head, len)) => (head, len),
            Err(e) => return HeadOutcome::Error(e.into()),
        };
        req.head.clear();
        req.headers.clear();
        // One copy of the whole head, cheaper than one per part; the parts become ranges into
        // it. A part the parser rewrote (a casefolded method, a folded value) lives outside
        // `buf` and is appended.
        let head_bytes = &buf[..len.min(buf.len())];
        req.head.extend_from_slice(head_bytes);
        let place = |copy: &mut Vec<u8>, part: &[u8]| {
            let offset = (part.as_ptr() as usize).wrapping_sub(head_bytes.as_ptr() as usize);
            if offset <= head_bytes.len() && part.len() <= head_bytes.len() - offset {
                offset..offset + part.len()
            } else {
                push(copy, part)
            }
        };
        req.method = place(&mut req.head, head.method().as_bytes());
        // Visible ASCII only (`allow_non_ascii_target` stays off), so `Request::target` is
        // always a whole `&str`.
        req.target = place(&mut req.head, head.target());
        for h in head.headers() {
            let n = place(&mut req.head, h.name.as_bytes());
            let v = place(&mut req.head, h.value);
            req.headers.push((n, v));
        }
        req.version = match head.version() {
            hp::Version::Http10 => Version::Http10,
            hp::Version::Http11 => Version::Http11,
        };
        // A scheme header from a trusted peer decides; else the connection does.
        req.secure = head.forwarded_secure().unwrap_or(req.tls);
        HeadOutcome::Complete(Head {
            len,
            framing: head.framing(),
            keep_alive: head.keep_alive(),
            expect_continue: head.expects_continue(),
            // Built only when a body follows: most requests have none.
            decoder: match head.framing() {
                Framing::None | Framing::Length(0) => None,
                _ => Some(BodyDecoder {
                    inner: head.body_decoder(),
                }),
            },
        })
    }
}

fn push(buf: &mut Vec<u8>, bytes: &[u8]) -> std::ops::Range<usize> {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    start..buf.len()
}

/// Decodes a request body incrementally.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    inner: hp::BodyDecoder,
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
    /// Decodes as much of `input` as possible, passing body bytes to `sink`.
    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Decoded, HttpError> {
        let mut pos = 0;
        loop {
            let step = self.inner.decode(&input[pos..])?;
            if !step.data.is_empty() {
                sink(step.data);
            }
            pos += step.consumed;
            if step.complete {
                return Ok(Decoded {
                    consumed: pos,
                    done: true,
                });
            }
            if step.consumed == 0 || pos == input.len() {
                return Ok(Decoded {
                    consumed: pos,
                    done: false,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::from_settings(&Settings::default())
    }

    #[test]
    fn complete_head_fills_request() {
        let mut req = Request::for_test("X", "/", &[], b"");
        let buf = b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\nrest";
        let HeadOutcome::Complete(head) =
            parser().parse_head(buf, false, &mut hp::Progress::default(), &mut req)
        else {
            panic!("not complete")
        };
        assert_eq!(head.len, buf.len() - 4);
        assert!(head.decoder.is_none(), "no body: no decoder");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/a?b");
        assert_eq!(req.header("x-y"), Some(&b"z"[..]));
        assert!(head.keep_alive);
    }

    #[test]
    fn settings_map_onto_the_parser() {
        let mut s = Settings {
            limit_request_line: 10,
            ..Settings::default()
        };
        let mut req = Request::for_test("X", "/", &[], b"");
        let out = Parser::from_settings(&s).parse_head(
            b"GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
            false,
            &mut hp::Progress::default(),
            &mut req,
        );
        assert!(
            matches!(out, HeadOutcome::Error(HttpError { status: 414, .. })),
            "{out:?}"
        );
        s.limit_request_line = 8190;
        let folded = b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n";
        let out = Parser::from_settings(&s).parse_head(
            folded,
            false,
            &mut hp::Progress::default(),
            &mut req,
        );
        assert!(
            matches!(out, HeadOutcome::Error(HttpError { status: 400, .. })),
            "{out:?}"
        );
        s.permit_obsolete_folding = true;
        let out = Parser::from_settings(&s).parse_head(
            folded,
            false,
            &mut hp::Progress::default(),
            &mut req,
        );
        assert!(matches!(out, HeadOutcome::Complete(_)), "{out:?}");
        assert_eq!(req.header("x"), Some(&b"a b"[..]));
    }

    #[test]
    fn parts_the_parser_rewrote_are_copied_beside_the_head() {
        // The head is copied once and the parts are ranges into it; a casefolded method and
        // a folded value live outside the received bytes and must still come out right.
        let s = Settings {
            casefold_http_method: true,
            permit_unconventional_http_method: true,
            permit_obsolete_folding: true,
            ..Settings::default()
        };
        let mut req = Request::for_test("X", "/", &[("Old", "1")], b"");
        let buf = b"get /%C3%A9?x HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\nY:  c \r\n\r\n";
        let out = Parser::from_settings(&s).parse_head(
            buf,
            false,
            &mut hp::Progress::default(),
            &mut req,
        );
        assert!(matches!(out, HeadOutcome::Complete(_)), "{out:?}");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/%C3%A9?x");
        let headers: Vec<_> = req.headers().collect();
        assert_eq!(
            headers,
            [("Host", &b"a"[..]), ("X", &b"a b"[..]), ("Y", &b"c"[..])]
        );
        let plain = b"GET /e HTTP/1.1\r\nHost: a\r\n\r\n";
        let out = parser().parse_head(plain, false, &mut hp::Progress::default(), &mut req);
        assert!(matches!(out, HeadOutcome::Complete(_)), "{out:?}");
        assert_eq!((req.method(), req.target()), ("GET", "/e"));
        assert_eq!(req.headers().count(), 1);
    }

    /// Regression: raw bytes outside ASCII in the target (`GET /\xff`) were accepted (and
    /// percent-encoded here); RFC 9112 wants them encoded by the client: 400.
    #[test]
    fn raw_bytes_outside_ascii_in_the_target_are_400() {
        let mut req = Request::for_test("X", "/", &[], b"");
        for buf in [
            &b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let out = parser().parse_head(buf, false, &mut hp::Progress::default(), &mut req);
            assert!(
                matches!(out, HeadOutcome::Error(HttpError { status: 400, .. })),
                "{out:?}"
            );
        }
    }

    #[test]
    fn scheme_headers_count_only_from_trusted_peers() {
        let mut p = parser();
        let mut req = Request::for_test("X", "/", &[], b"");
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n";
        assert!(matches!(
            p.parse_head(buf, false, &mut hp::Progress::default(), &mut req),
            HeadOutcome::Complete(_)
        ));
        assert_eq!(req.scheme(), "http");
        assert!(matches!(
            p.parse_head(buf, true, &mut hp::Progress::default(), &mut req),
            HeadOutcome::Complete(_)
        ));
        assert_eq!(req.scheme(), "https");
    }

    #[test]
    fn unix_peers_are_trusted_and_others_matched_against_the_lists() {
        let mut s = Settings {
            proxy_protocol: ProxyProtocol::Auto,
            ..Settings::default()
        };
        s.proxy_allow_ips = IpAllowList::parse(vec!["10.1.0.0/16".into()]).unwrap();
        let p = Parser::from_settings(&s);
        let ip = |t: &str| Some(t.parse().unwrap());
        assert!(p.trusts_scheme_headers_from(None));
        assert!(p.trusts_scheme_headers_from(ip("::ffff:127.0.0.1")));
        assert!(!p.trusts_scheme_headers_from(ip("10.1.0.1")));
        assert_eq!(p.proxy_header_for(None), ProxyHeader::Allowed);
        assert_eq!(p.proxy_header_for(ip("10.1.2.3")), ProxyHeader::Allowed);
        assert_eq!(p.proxy_header_for(ip("10.2.0.1")), ProxyHeader::Forbidden);
    }

    #[test]
    fn a_head_arriving_byte_by_byte_resumes_with_the_connections_progress() {
        let head = b"GET /a HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n\r\nNEXT";
        let mut p = parser();
        let mut progress = hp::Progress::default();
        let mut req = Request::for_test("X", "/", &[], b"");
        let end = head.len() - 4;
        for n in 1..end {
            let out = p.parse_head(&head[..n], false, &mut progress, &mut req);
            assert!(matches!(out, HeadOutcome::Partial), "{n}: {out:?}");
        }
        let HeadOutcome::Complete(done) = p.parse_head(head, false, &mut progress, &mut req) else {
            panic!()
        };
        assert_eq!(done.len, end);
        assert_eq!(req.header("x-long"), Some(&b"0123456789abcdef"[..]));
        // Cleared on completion: the next request on the connection starts afresh.
        let next = b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
        let out = p.parse_head(next, false, &mut progress, &mut req);
        assert!(matches!(out, HeadOutcome::Complete(_)), "{out:?}");
    }

    #[test]
    fn chunked_body_decodes_across_splits() {
        let body = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut req = Request::for_test("X", "/", &[], b"");
            let HeadOutcome::Complete(head) = parser().parse_head(
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                &mut hp::Progress::default(),
                &mut req,
            ) else {
                panic!()
            };
            let mut d = head.decoder.expect("a chunked body has a decoder");
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
}
