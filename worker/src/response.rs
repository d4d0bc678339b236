//! Serializes response heads into a connection's write buffer: the status line, `Server`,
//! `Date`, the application's headers (validated), the framing and `Connection`.
//!
//! This is on every request's path, so a head is a few copies of prepared pieces: a
//! constant status line with `Server` for the common statuses, the `Date` line cached per
//! second (`date.rs`), the application's fields (checked once, when they were set, by
//! `Response::header`) and a tail (framing, `Connection`, the empty line) built on the stack.
//! A head that repeats the last one (same status, framing, `Date` second and static fields)
//! is one copy from [`HeadCache`]. What each step saved is in `docs/BENCHMARKS.md`.

use std::borrow::Cow;

use crate::app::{is_hop_or_ours, is_latin1, Body, Response, Version};
use crate::date::DateCache;

/// How the body of a response is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body bytes at all: HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1).
    NoBody,
    /// `Content-Length: n`, and n body bytes unless the request was HEAD (or the status is
    /// 205, always `Content-Length: 0`).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1, unknown length).
    Chunked,
    /// Unknown length on HTTP/1.0: the body ends when the connection closes.
    UntilClose,
}

/// What the loop decided for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub framing: Framing,
    /// Whether body bytes follow the head.
    pub send_body: bool,
    pub keep_alive: bool,
}

/// What about a request's method decides how its response is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `HEAD`: the head of the response `GET` would get, no body.
    Head,
    /// `CONNECT`, which reaches only an application that handles it
    /// ([`crate::App::handles_connect`]).
    Connect,
    /// Any other method.
    Other,
}

/// Chooses framing and persistence for `res` answering a request with `method` and
/// `version` whose client allows keep-alive when `keep_alive`.
pub(crate) fn plan(res: &Response, method: Method, version: Version, keep_alive: bool) -> Plan {
    let status = res.status;
    if method == Method::Connect && (200..300).contains(&status) {
        // RFC 9110 §9.3.6, RFC 9112 §6.3 (2): a 2xx answer to CONNECT turns the connection
        // into a tunnel right after its head, and has no framing. The worker cannot tunnel:
        // it sends the head and closes, so nothing after it is ever read as HTTP.
        return Plan {
            framing: Framing::NoBody,
            send_body: false,
            keep_alive: false,
        };
    }
    let is_head = method == Method::Head;
    // Only when `header` saw a name the worker writes itself (`Connection` is one).
    let app_close = res.notes.special
        && res
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    let mut keep_alive = keep_alive && !app_close;
    // RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content; HEAD has none either.
    let no_content = (100..200).contains(&status) || status == 204 || status == 304;
    // RFC 9110 §15.3.6: a server MUST NOT generate content in a 205 either. Unlike a 204 its
    // framing is read as usual (RFC 9112 §6.3), so it says `Content-Length: 0`.
    let reset_content = status == 205;
    let framing = if no_content {
        Framing::NoBody
    } else if reset_content {
        Framing::Length(0)
    } else {
        match res.body.len() {
            Some(n) => Framing::Length(n),
            None if is_head => Framing::NoBody,
            None if version == Version::Http11 => Framing::Chunked,
            None => {
                keep_alive = false;
                Framing::UntilClose
            }
        }
    };
    Plan {
        framing,
        send_body: !is_head && !no_content && !reset_content,
        keep_alive,
    }
}

/// Whether every header the application set may be sent as is (RFC 9110 §5.5: no CR, LF
/// or NUL in a value; names are tokens).
/// The status must be a final one (200..=999): an interim 1xx as the only answer would leave
/// the client waiting, and protocol upgrades are not supported.
pub(crate) fn headers_valid(res: &Response) -> bool {
    (200..=999).contains(&res.status) && fields_valid(res)
}

/// Whether every header field (and the reason phrase) may be sent as is, whatever the status.
pub(crate) fn fields_valid(res: &Response) -> bool {
    !res.notes.invalid && (!res.latin1 || latin1_fits(res))
}

/// With latin-1 values, whether every value and the reason phrase fit in ISO-8859-1.
#[cold]
fn latin1_fits(res: &Response) -> bool {
    res.headers.iter().all(|(_, v)| is_latin1(v)) && res.reason.as_deref().is_none_or(is_latin1)
}

/// Appends a decimal number.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let len = put_u64(&mut tmp, 0, n);
    out.extend_from_slice(&tmp[..len]);
}

/// Writes `n` in decimal at `buf[at..]`, returns the end. `buf` must have room for the
/// digits (20 for any u64).
fn put_u64(buf: &mut [u8], at: usize, mut n: u64) -> usize {
    // Bodies and statuses are mostly short numbers: compare before taking the logarithm.
    let digits = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => n.ilog10() as usize + 1,
    };
    let end = at + digits;
    let mut i = end;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    end
}

/// `HTTP/1.1 <status> <reason>\r\nServer: ferrocorn\r\n` for the statuses most answers
/// carry, as constants; must agree with [`reason_phrase`] (a test checks it).
fn status_prefix(status: u16) -> Option<&'static [u8]> {
    macro_rules! lines {
        ($($code:literal $reason:literal),* $(,)?) => {
            match status {
                $($code => Some(
                    concat!("HTTP/1.1 ", $code, " ", $reason, "\r\nServer: ferrocorn\r\n")
                        .as_bytes(),
                ),)*
                _ => None,
            }
        };
    }
    lines!(
        200 "OK", 201 "Created", 204 "No Content", 206 "Partial Content",
        301 "Moved Permanently", 302 "Found", 303 "See Other", 304 "Not Modified",
        307 "Temporary Redirect", 308 "Permanent Redirect",
        400 "Bad Request", 401 "Unauthorized", 403 "Forbidden", 404 "Not Found",
        405 "Method Not Allowed", 408 "Request Timeout", 411 "Length Required",
        413 "Content Too Large", 414 "URI Too Long", 416 "Range Not Satisfiable",
        431 "Request Header Fields Too Large",
        500 "Internal Server Error", 501 "Not Implemented", 503 "Service Unavailable",
        505 "HTTP Version Not Supported",
    )
}

/// The longest tail `write_head` builds: `Content-Length: ` with 20 digits, CRLF,
/// `Connection: keep-alive` with CRLF, and the empty line.
const TAIL_MAX: usize = 16 + 20 + 2 + 24 + 2;

/// Appends the head of `res` per `plan` to `out`. `date_line` is the whole
/// `Date: ...\r\n` line ([`crate::date::DateCache::line`]).
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    res: &Response,
    plan: &Plan,
    version: Version,
    date_line: &[u8],
) {
    // The tail, on the stack. Copied into `out` whole (a fixed size: a few moves instead of
    // a `memcpy` call), then cut to its length.
    let mut tail = [0u8; TAIL_MAX];
    let mut end = 0;
    fn put(tail: &mut [u8; TAIL_MAX], end: &mut usize, bytes: &[u8]) {
        tail[*end..*end + bytes.len()].copy_from_slice(bytes);
        *end += bytes.len();
    }
    match plan.framing {
        Framing::Length(n) => {
            put(&mut tail, &mut end, b"Content-Length: ");
            end = put_u64(&mut tail, end, n);
            put(&mut tail, &mut end, b"\r\n");
        }
        Framing::Chunked => put(&mut tail, &mut end, b"Transfer-Encoding: chunked\r\n"),
        Framing::NoBody | Framing::UntilClose => {}
    }
    if !plan.keep_alive {
        put(&mut tail, &mut end, b"Connection: close\r\n");
    } else if version == Version::Http10 {
        put(&mut tail, &mut end, b"Connection: keep-alive\r\n");
    }
    put(&mut tail, &mut end, b"\r\n");

    let fields: usize = res.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let prefix = match res.reason {
        Some(_) => None,
        None => status_prefix(res.status),
    };
    // One reservation for the whole head: the copies below never reallocate. The status
    // line without a constant is at most 9 + 5 digits + 1 + reason + 21.
    out.reserve(prefix.map_or(64, <[u8]>::len) + date_line.len() + fields + TAIL_MAX);
    match prefix {
        Some(line) => out.extend_from_slice(line),
        None => {
            out.extend_from_slice(b"HTTP/1.1 ");
            push_u64(out, u64::from(res.status));
            out.push(b' ');
            push_text(out, res.reason(), res.latin1);
            out.extend_from_slice(b"\r\nServer: ferrocorn\r\n");
        }
    }
    out.extend_from_slice(date_line);
    let check = res.notes.special;
    for (name, value) in &res.headers {
        if check && is_hop_or_ours(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        push_text(out, value, res.latin1);
        out.extend_from_slice(b"\r\n");
    }
    let len = out.len();
    out.extend_from_slice(&tail);
    out.truncate(len + end);
}

/// Appends `text` as its UTF-8 bytes, or with `latin1` as ISO-8859-1, one byte a character
/// (`Response::header` and `set_latin1` checked that every character fits).
fn push_text(out: &mut Vec<u8>, text: &str, latin1: bool) {
    if latin1 && !text.is_ascii() {
        out.extend(
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// The last head written for a response whose fields are all `&'static str`s, and what it
/// was written for. An application that answers with constant fields (`hello`, most APIs'
/// `Content-Type`) gets its head in one copy; fields are compared by address and length,
/// which for immutable static strings means by content.
#[derive(Debug, Default)]
pub(crate) struct HeadCache {
    /// What `bytes` was written for; `None`: nothing cached.
    key: Option<HeadKey>,
    /// Address and length of each field's name and value, in order.
    fields: Vec<[usize; 4]>,
    bytes: Vec<u8>,
}

/// Everything besides the fields that a head depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadKey {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    version: Version,
    /// The second of the `Date` line.
    date: u64,
}

impl HeadCache {
    /// Appends the head of `res` per `plan` to `out`, as [`write_head`] does. Returns
    /// whether it was the cached one.
    pub fn write(
        &mut self,
        out: &mut Vec<u8>,
        res: &Response,
        plan: &Plan,
        version: Version,
        date: &DateCache,
    ) -> bool {
        let key = HeadKey {
            status: res.status,
            framing: plan.framing,
            keep_alive: plan.keep_alive,
            version,
            date: date.secs(),
        };
        if res.reason.is_some() || res.latin1 {
            // Rare (a WSGI application's own phrase or latin-1 values): not worth a key.
            self.key = None;
            write_head(out, res, plan, version, date.line());
            return false;
        }
        if self.key == Some(key) && self.same_fields(res) {
            out.extend_from_slice(&self.bytes);
            return true;
        }
        let start = out.len();
        write_head(out, res, plan, version, date.line());
        self.key = None;
        self.fields.clear();
        for (name, value) in &res.headers {
            let (Cow::Borrowed(name), Cow::Borrowed(value)) = (name, value) else {
                return false; // an owned field may differ next time with the same address
            };
            self.fields.push(address(name, value));
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(&out[start..]);
        self.key = Some(key);
        false
    }

    fn same_fields(&self, res: &Response) -> bool {
        res.headers.len() == self.fields.len()
            && res
                .headers
                .iter()
                .zip(&self.fields)
                .all(|(field, cached)| match field {
                    (Cow::Borrowed(name), Cow::Borrowed(value)) => address(name, value) == *cached,
                    _ => false,
                })
    }
}

fn address(name: &'static str, value: &'static str) -> [usize; 4] {
    [
        name.as_ptr() as usize,
        name.len(),
        value.as_ptr() as usize,
        value.len(),
    ]
}

/// Appends a complete error response with a short plain-text body and
/// `Connection: close`.
pub(crate) fn write_error(out: &mut Vec<u8>, status: u16, message: &str, date_line: &[u8]) {
    let mut res = Response::new();
    res.status = status;
    res.header("Content-Type", "text/plain; charset=utf-8");
    let body_len = message.len() as u64 + 1;
    res.body = Body::Empty;
    let plan = Plan {
        framing: Framing::Length(body_len),
        send_body: true,
        keep_alive: false,
    };
    write_head(out, &res, &plan, Version::Http11, date_line);
    out.extend_from_slice(message.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::reason_phrase;

    const DATE: &[u8] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    #[test]
    fn hello_head_is_exact() {
        let mut res = Response::new();
        res.header("Content-Type", "text/plain");
        res.body = Body::Static(b"Hello, World!\n");
        let p = plan(&res, Method::Other, Version::Http11, true);
        let mut out = Vec::new();
        write_head(&mut out, &res, &p, Version::Http11, DATE);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 14\r\n\r\n"
        );
    }

    #[test]
    fn framing_rules() {
        let mut res = Response::new();
        res.body = Body::Stream {
            reader: Box::new(std::io::empty()),
            len: None,
        };
        assert_eq!(
            plan(&res, Method::Other, Version::Http11, true).framing,
            Framing::Chunked
        );
        let p10 = plan(&res, Method::Other, Version::Http10, true);
        assert_eq!(p10.framing, Framing::UntilClose);
        assert!(!p10.keep_alive);
        res.status = 304;
        assert_eq!(
            plan(&res, Method::Other, Version::Http11, true).framing,
            Framing::NoBody
        );
        res.status = 200;
        res.body = Body::Static(b"abc");
        let head = plan(&res, Method::Head, Version::Http11, true);
        assert_eq!(head.framing, Framing::Length(3));
        assert!(!head.send_body);
        res.header("Connection", "close");
        assert!(!plan(&res, Method::Other, Version::Http11, true).keep_alive);
    }

    /// Regression: a 205 went out with the application's body and its length; RFC 9110
    /// §15.3.6 forbids content in a 205.
    #[test]
    fn reset_content_carries_no_content() {
        let mut res = Response::new();
        res.status = 205;
        res.body = Body::Static(b"ignored");
        for (method, version) in [
            (Method::Other, Version::Http11),
            (Method::Head, Version::Http11),
            (Method::Other, Version::Http10),
        ] {
            let p = plan(&res, method, version, true);
            assert_eq!(p.framing, Framing::Length(0));
            assert!(!p.send_body);
            assert!(p.keep_alive);
        }
        res.body = Body::Stream {
            reader: Box::new(std::io::empty()),
            len: None,
        };
        let p = plan(&res, Method::Other, Version::Http10, true);
        assert_eq!((p.framing, p.send_body), (Framing::Length(0), false));
        assert!(p.keep_alive, "no body to end with the connection");
    }

    /// A 2xx answer to CONNECT (from an application that handles it) starts a tunnel: no
    /// framing, no body, and the worker, which cannot tunnel, closes after the head. Other
    /// answers to CONNECT are framed as usual.
    #[test]
    fn a_2xx_answer_to_connect_has_no_framing_and_closes() {
        let mut res = Response::new();
        res.body = Body::Static(b"tunnel");
        let p = plan(&res, Method::Connect, Version::Http11, true);
        assert_eq!(
            p,
            Plan {
                framing: Framing::NoBody,
                send_body: false,
                keep_alive: false
            }
        );
        let mut out = Vec::new();
        write_head(&mut out, &res, &p, Version::Http11, DATE);
        let head = String::from_utf8(out).unwrap();
        assert!(!head.contains("Content-Length") && !head.contains("Transfer-Encoding"));
        res.status = 407;
        let p = plan(&res, Method::Connect, Version::Http11, true);
        assert_eq!((p.framing, p.send_body), (Framing::Length(6), true));
    }

    #[test]
    fn header_injection_is_refused() {
        let mut res = Response::new();
        res.header("X-A", "ok");
        assert!(headers_valid(&res));
        res.header("X-B", "bad\r\nSet-Cookie: x");
        assert!(!headers_valid(&res));
        let mut res = Response::new();
        res.header("Bad Name", "v");
        assert!(!headers_valid(&res));
        let mut res = Response::new();
        res.status = 101;
        assert!(!headers_valid(&res));
    }

    #[test]
    fn a_reason_of_the_applications_own_is_sent_and_checked() {
        let mut res = Response::new();
        res.status = 200;
        res.set_reason("Fine Indeed");
        assert!(headers_valid(&res));
        let plan = plan(&res, Method::Other, Version::Http11, true);
        let mut cache = HeadCache::default();
        let date = DateCache::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            assert!(!cache.write(&mut out, &res, &plan, Version::Http11, &date));
            assert!(out.starts_with(b"HTTP/1.1 200 Fine Indeed\r\n"), "{out:?}");
        }
        res.reset();
        let mut out = Vec::new();
        cache.write(&mut out, &res, &plan, Version::Http11, &date);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        res.set_reason("x\r\nSet-Cookie: y");
        assert!(!headers_valid(&res));
    }

    #[test]
    fn latin1_values_go_out_one_byte_a_character() {
        let mut res = Response::new();
        res.status = 299;
        res.set_reason("Caf\u{e9}");
        res.header("X-Name", "caf\u{e9}");
        res.set_latin1();
        assert!(headers_valid(&res));
        let plan = plan(&res, Method::Other, Version::Http11, true);
        let mut out = Vec::new();
        HeadCache::default().write(&mut out, &res, &plan, Version::Http11, &DateCache::new());
        assert!(out.starts_with(b"HTTP/1.1 299 Caf\xe9\r\n"), "{out:?}");
        assert!(out.windows(12).any(|w| w == b"X-Name: caf\xe9"), "{out:?}");
        // A character beyond latin-1 cannot be sent so: 500, set before or after.
        res.header("X-Euro", "\u{20ac}");
        assert!(!headers_valid(&res));
        let mut res = Response::new();
        res.header("X-Euro", "\u{20ac}");
        assert!(headers_valid(&res), "as UTF-8 it is a valid value");
        res.set_latin1();
        assert!(!headers_valid(&res));
    }

    /// The head as written before the constant pieces: the reference `write_head` must match.
    fn reference_head(res: &Response, plan: &Plan, version: Version) -> String {
        let mut s = format!(
            "HTTP/1.1 {} {}\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            res.status,
            res.reason()
        );
        for (n, v) in res.headers() {
            let ours = [
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
                "keep-alive",
            ];
            if !ours.iter().any(|o| n.eq_ignore_ascii_case(o)) {
                s += &format!("{n}: {v}\r\n");
            }
        }
        match plan.framing {
            Framing::Length(n) => s += &format!("Content-Length: {n}\r\n"),
            Framing::Chunked => s += "Transfer-Encoding: chunked\r\n",
            _ => {}
        }
        if !plan.keep_alive {
            s += "Connection: close\r\n";
        } else if version == Version::Http10 {
            s += "Connection: keep-alive\r\n";
        }
        s + "\r\n"
    }

    #[test]
    fn every_status_framing_and_field_mix_matches_the_reference() {
        let fields: &[&[(&str, &str)]] = &[
            &[],
            &[("Content-Type", "text/plain")],
            &[
                ("X-A", ""),
                ("DATE", "x"),
                ("Set-Cookie", "a=b"),
                ("Keep-Alive", "5"),
            ],
            &[
                ("Connection", "close"),
                ("Server", "other"),
                ("CONTENT-LENGTH", "1"),
            ],
            &[
                ("Transfer-Encoding", "gzip"),
                ("Content-Lengthy", "7"),
                ("Dates", "d"),
            ],
        ];
        let framings = [
            Framing::NoBody,
            Framing::Length(0),
            Framing::Length(9),
            Framing::Length(10),
            Framing::Length(1_048_576),
            Framing::Length(u64::MAX),
            Framing::Chunked,
            Framing::UntilClose,
        ];
        for status in 100..=999u16 {
            for (i, set) in fields.iter().enumerate() {
                let mut res = Response::new();
                res.status = status;
                for (n, v) in *set {
                    res.header(*n, *v);
                }
                let framing = framings[(status as usize + i) % framings.len()];
                for (keep_alive, version) in [
                    (true, Version::Http11),
                    (false, Version::Http11),
                    (true, Version::Http10),
                ] {
                    let p = Plan {
                        framing,
                        send_body: true,
                        keep_alive,
                    };
                    let mut out = b"previous".to_vec();
                    write_head(&mut out, &res, &p, version, DATE);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        format!("previous{}", reference_head(&res, &p, version)),
                        "status {status}, fields {set:?}, {p:?}"
                    );
                }
            }
        }
    }

    /// One response of the cache test; each differs from the one before in one respect.
    struct Step {
        status: u16,
        fields: &'static [(&'static str, &'static str)],
        owned_field: bool,
        len: u64,
        version: Version,
        keep_alive: bool,
        next_second: bool,
    }

    #[test]
    fn cached_heads_equal_written_heads() {
        const PLAIN: &[(&str, &str)] = &[("Content-Type", "text/plain")];
        const HTML: &[(&str, &str)] = &[("Content-Type", "text/html")];
        const TWO: &[(&str, &str)] = &[("Content-Type", "text/html"), ("X", "y")];
        let first = Step {
            status: 200,
            fields: PLAIN,
            owned_field: false,
            len: 14,
            version: Version::Http11,
            keep_alive: true,
            next_second: false,
        };
        let steps = [
            Step { ..first },
            Step { ..first },
            Step { len: 15, ..first },
            Step {
                keep_alive: false,
                ..first
            },
            Step {
                version: Version::Http10,
                ..first
            },
            Step {
                status: 404,
                ..first
            },
            Step {
                fields: HTML,
                ..first
            },
            Step {
                fields: TWO,
                ..first
            },
            Step {
                fields: HTML,
                owned_field: true,
                ..first
            },
            Step {
                fields: HTML,
                owned_field: true,
                ..first
            },
            Step {
                next_second: true,
                ..first
            },
            Step { ..first },
            Step {
                fields: &[],
                ..first
            },
            Step {
                fields: &[],
                ..first
            },
        ];
        let mut cache = HeadCache::default();
        let mut date = DateCache::new();
        let mut hits = Vec::new();
        for step in steps {
            if step.next_second {
                date.set_for_test(date.secs() + 1);
            }
            let mut res = Response::new();
            res.status = step.status;
            for (n, v) in step.fields {
                res.header(*n, *v);
            }
            if step.owned_field {
                res.header("Content-Type", String::from("text/plain"));
            }
            let p = Plan {
                framing: Framing::Length(step.len),
                send_body: true,
                keep_alive: step.keep_alive,
            };
            let (mut cached, mut written) = (b"x".to_vec(), b"x".to_vec());
            hits.push(cache.write(&mut cached, &res, &p, step.version, &date));
            write_head(&mut written, &res, &p, step.version, date.line());
            assert_eq!(
                String::from_utf8(cached).unwrap(),
                String::from_utf8(written).unwrap()
            );
        }
        // Reused exactly when nothing changed and every field is static.
        let reused: Vec<usize> = (0..hits.len()).filter(|&i| hits[i]).collect();
        assert_eq!(reused, [1, 11, 13]);
        // A String moved into a field may reuse an address with other bytes: never cached.
        let mut res = Response::new();
        res.header("A", String::from("1"));
        let p = Plan {
            framing: Framing::NoBody,
            send_body: false,
            keep_alive: true,
        };
        cache.write(&mut Vec::new(), &res, &p, Version::Http11, &date);
        assert!(cache.key.is_none());
    }

    #[test]
    fn status_constants_agree_with_reason_phrase() {
        for status in 0..=1000u16 {
            if let Some(line) = status_prefix(status) {
                let want = format!(
                    "HTTP/1.1 {status} {}\r\nServer: ferrocorn\r\n",
                    reason_phrase(status)
                );
                assert_eq!(line, want.as_bytes());
            }
        }
    }

    #[test]
    fn push_u64_formats_every_width() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn app_framing_headers_are_dropped() {
        let mut res = Response::new();
        res.header("Content-Length", "999");
        res.header("Transfer-Encoding", "chunked");
        res.body = Body::Static(b"ab");
        let p = plan(&res, Method::Other, Version::Http11, true);
        let mut out = Vec::new();
        write_head(&mut out, &res, &p, Version::Http11, DATE);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(!s.contains("999"));
        assert!(!s.contains("chunked"));
    }
}
