//! [`Request`]: a parsed request head kept in one reusable buffer, and its body.

use std::net::SocketAddr;
use std::ops::Range;

use super::{Peer, RequestBody, Version};

/// A parsed request: the head's bytes kept in one reusable buffer, the parts as ranges into
/// it, and the body.
#[derive(Debug)]
pub struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
    pub(crate) peer: Peer,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) body: RequestBody,
    pub(crate) secure: bool,
    /// The connection is TLS: the scheme is `https` unless a trusted scheme header says
    /// otherwise.
    pub(crate) tls: bool,
}

impl Request {
    pub(crate) fn new(peer: Peer, local: Option<SocketAddr>, tls: bool) -> Request {
        Request {
            head: Vec::new(),
            method: 0..0,
            target: 0..0,
            version: Version::Http11,
            headers: Vec::new(),
            peer,
            local,
            body: RequestBody::empty(),
            secure: tls,
            tls,
        }
    }

    /// Builds a request by hand, for testing applications without a socket.
    pub fn for_test(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut req = Request::new(
            Peer::Tcp(SocketAddr::from(([127, 0, 0, 1], 1))),
            Some(SocketAddr::from(([127, 0, 0, 1], 8000))),
            false,
        );
        req.method = push_range(&mut req.head, method.as_bytes());
        req.target = push_range(&mut req.head, target.as_bytes());
        for (name, value) in headers {
            let n = push_range(&mut req.head, name.as_bytes());
            let v = push_range(&mut req.head, value.as_bytes());
            req.headers.push((n, v));
        }
        req.body = RequestBody::from_bytes(body.to_vec());
        req
    }

    /// A copy of the head for an application that answers later (the worker keeps its
    /// own for the access log), taking the body out of this one.
    pub(crate) fn hand_over(&mut self) -> Request {
        Request {
            head: self.head.clone(),
            method: self.method.clone(),
            target: self.target.clone(),
            version: self.version,
            headers: self.headers.clone(),
            peer: self.peer.clone(),
            local: self.local,
            body: std::mem::take(&mut self.body),
            secure: self.secure,
            tls: self.tls,
        }
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // The parser only accepts token characters in the method and visible ASCII in the
        // target, so these ranges are always valid UTF-8; fall back to "" defensively.
        std::str::from_utf8(&self.head[range.clone()]).unwrap_or("")
    }

    /// The method, exactly as received (`GET`).
    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// Whether the method is `GET`: one load and a comparison, as a parsed head starts with
    /// its method and a space (a method the parser rewrote lies elsewhere, and is not `GET`).
    #[inline]
    pub(crate) fn is_get(&self) -> bool {
        self.method == (0..3) && self.head.get(..4) == Some(&b"GET "[..])
    }

    /// The method as bytes (no UTF-8 check).
    pub(crate) fn method_bytes(&self) -> &[u8] {
        self.head.get(self.method.clone()).unwrap_or_default()
    }

    /// Whether the method is `HEAD` (compared as bytes: no UTF-8 check on the hot path).
    pub(crate) fn is_head(&self) -> bool {
        self.head.get(self.method.clone()) == Some(&b"HEAD"[..])
    }

    /// Whether the method is `CONNECT`.
    pub(crate) fn is_connect(&self) -> bool {
        self.head.get(self.method.clone()) == Some(&b"CONNECT"[..])
    }

    /// The request target, exactly as received (`/a/b?x=1`).
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path part of the target (before `?`), not percent-decoded. For an
    /// absolute-form target (`http://host/a?b`, which a server must accept, RFC 9112
    /// §3.2.2) the path after the authority (`/a`, or `/` when there is none).
    pub fn path(&self) -> &str {
        let t = self.target();
        let t = t.split_once('?').map_or(t, |(p, _)| p);
        match absolute_form_rest(t) {
            Some("") => "/",
            Some(rest) => rest,
            None => t,
        }
    }

    /// The query part of the target (after `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target().split_once('?').map_or("", |(_, q)| q)
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// `"https"` when the request came over TLS, or when a peer in `forwarded_allow_ips`
    /// said so with a scheme header (`X-Forwarded-Proto: https`, …; such a header saying
    /// `http` wins over TLS, as in gunicorn), else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    /// The client's address (from the PROXY protocol header when one was accepted).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The address of the TCP listener that accepted the connection, as bound (`0.0.0.0`
    /// for a wildcard bind, as gunicorn reports it); `None` on a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Sets where the request came from and the listener's address (tests of
    /// applications: a Unix-socket client is `(Peer::Unix, None)`).
    pub fn set_peer_for_test(&mut self, peer: Peer, local: Option<SocketAddr>) {
        self.peer = peer;
        self.local = local;
    }

    /// Sets whether the request arrived over a secure channel (tests of applications).
    pub fn set_secure_for_test(&mut self, secure: bool) {
        self.secure = secure;
    }

    /// The header fields in received order, names as received, values as bytes (they may
    /// hold obs-text, RFC 9110 §5.5).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (self.text(n), &self.head[v.clone()]))
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The request body, readable with [`std::io::Read`].
    pub fn body(&mut self) -> &mut RequestBody {
        &mut self.body
    }
}

/// For `scheme://authority/rest`, the `/rest` part (possibly empty).
fn absolute_form_rest(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    Some(rest.find('/').map_or("", |i| &rest[i..]))
}

fn push_range(buf: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    start..buf.len()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn request_accessors_split_target_and_find_headers() {
        let mut req = Request::for_test(
            "GET",
            "/a/b?x=1&y",
            &[("Host", "h"), ("X-A", "1"), ("x-a", "2")],
            b"hi",
        );
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), "x=1&y");
        let abs = Request::for_test("GET", "http://example.com/p/q?z=1", &[], b"");
        assert_eq!((abs.path(), abs.query()), ("/p/q", "z=1"));
        let bare = Request::for_test("GET", "http://example.com", &[], b"");
        assert_eq!(bare.path(), "/");
        assert_eq!(Request::for_test("OPTIONS", "*", &[], b"").path(), "*");
        assert_eq!(req.header("X-a"), Some(&b"1"[..]));
        assert_eq!(req.headers().count(), 3);
        let mut body = String::new();
        req.body().read_to_string(&mut body).unwrap();
        assert_eq!(body, "hi");
    }
}
