//! Serializes response heads into a connection's write buffer: the status line, `Server`,
//! `Date`, the application's headers (validated), the framing and `Connection`.

use crate::app::{reason_phrase, Body, Response, Version};

/// How the body of a response is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body bytes at all: HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1).
    NoBody,
    /// `Content-Length: n`, and n body bytes unless the request was HEAD.
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

/// Chooses framing and persistence for `res` answering a request with `method` and
/// `version` whose client allows keep-alive when `keep_alive`.
pub(crate) fn plan(res: &Response, is_head: bool, version: Version, keep_alive: bool) -> Plan {
    let status = res.status;
    let app_close = res
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    let mut keep_alive = keep_alive && !app_close;
    // RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content; HEAD has none either.
    let no_content = (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_content {
        Framing::NoBody
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
        send_body: !is_head && !no_content,
        keep_alive,
    }
}

/// Headers the worker writes itself; the application's values for them are not sent.
fn is_hop_or_ours(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether every header the application set may be sent as is (RFC 9110 §5.5: no CR, LF
/// or NUL in a value; names are tokens).
/// The status must be a final one (200..=999): an interim 1xx as the only answer would leave
/// the client waiting, and protocol upgrades are not supported.
pub(crate) fn headers_valid(res: &Response) -> bool {
    (200..=999).contains(&res.status)
        && res
            .headers
            .iter()
            .all(|(n, v)| is_token(n) && !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0))
}

/// Appends a decimal number.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends the head of `res` per `plan` to `out`.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    res: &Response,
    plan: &Plan,
    version: Version,
    date: &[u8],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(res.status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(res.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ferrocorn\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    for (name, value) in &res.headers {
        if is_hop_or_ours(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match plan.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::NoBody | Framing::UntilClose => {}
    }
    if !plan.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete error response with a short plain-text body and
/// `Connection: close`.
pub(crate) fn write_error(out: &mut Vec<u8>, status: u16, message: &str, date: &[u8]) {
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
    write_head(out, &res, &plan, Version::Http11, date);
    out.extend_from_slice(message.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn hello_head_is_exact() {
        let mut res = Response::new();
        res.header("Content-Type", "text/plain");
        res.body = Body::Static(b"Hello, World!\n");
        let p = plan(&res, false, Version::Http11, true);
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
            plan(&res, false, Version::Http11, true).framing,
            Framing::Chunked
        );
        let p10 = plan(&res, false, Version::Http10, true);
        assert_eq!(p10.framing, Framing::UntilClose);
        assert!(!p10.keep_alive);
        res.status = 304;
        assert_eq!(
            plan(&res, false, Version::Http11, true).framing,
            Framing::NoBody
        );
        res.status = 200;
        res.body = Body::Static(b"abc");
        let head = plan(&res, true, Version::Http11, true);
        assert_eq!(head.framing, Framing::Length(3));
        assert!(!head.send_body);
        res.header("Connection", "close");
        assert!(!plan(&res, false, Version::Http11, true).keep_alive);
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
    fn app_framing_headers_are_dropped() {
        let mut res = Response::new();
        res.header("Content-Length", "999");
        res.header("Transfer-Encoding", "chunked");
        res.body = Body::Static(b"ab");
        let p = plan(&res, false, Version::Http11, true);
        let mut out = Vec::new();
        write_head(&mut out, &res, &p, Version::Http11, DATE);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(!s.contains("999"));
        assert!(!s.contains("chunked"));
    }
}
