//! The opening handshake, server side (RFC 6455 §4.2): is a request a WebSocket upgrade, is it
//! a valid one, and the `Sec-WebSocket-Accept` value that answers it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID the accept value is derived with (RFC 6455 §1.3).
pub const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only protocol version this server speaks (RFC 6455 §4.1): sent back in
/// `Sec-WebSocket-Version` when a client asks for another one.
pub const VERSION: &str = "13";

/// Why an upgrade request is refused, and the status to answer it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// 400, or 426 (with `Sec-WebSocket-Version: 13`) for another protocol version
    /// (RFC 6455 §4.2.2).
    pub status: u16,
    /// What was wrong.
    pub reason: &'static str,
}

/// A valid opening handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The `Sec-WebSocket-Accept` value that answers it.
    pub accept: String,
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order of
    /// preference.
    pub protocols: Vec<String>,
}

/// Whether a comma-separated header value holds `token` (case-insensitive), as `Connection`
/// and `Upgrade` list theirs (RFC 9110 §7.6.1, §7.8).
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether a request asks for a WebSocket: one of its `Upgrade` fields names `websocket`.
/// Such a request is then judged by [`check`]; any other is an ordinary request.
pub fn is_upgrade<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> bool {
    headers
        .into_iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && has_token(v, "websocket"))
}

/// The subprotocols a request offers (`Sec-WebSocket-Protocol`, RFC 6455 §11.3.4), in the
/// client's order of preference; items that are not text are left out.
pub fn offered_protocols<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<String> {
    headers
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|(_, v)| list_items(v))
        .map(str::to_string)
        .collect()
}

/// The non-empty items of a comma-separated list that are text.
fn list_items(value: &[u8]) -> impl Iterator<Item = &str> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
        .filter_map(|item| std::str::from_utf8(item).ok())
}

/// Judges an opening handshake (RFC 6455 §4.2.1): `GET` over HTTP/1.1, `Upgrade: websocket`,
/// `Connection` naming `Upgrade`, a `Sec-WebSocket-Key` of 16 bytes in base64, and
/// `Sec-WebSocket-Version: 13`. `Host` is the HTTP parser's business.
pub fn check<'a>(
    method: &str,
    http11: bool,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Handshake, Rejection> {
    let reject = |reason| {
        Err(Rejection {
            status: 400,
            reason,
        })
    };
    if method != "GET" {
        return reject("a WebSocket handshake must be a GET");
    }
    if !http11 {
        return reject("a WebSocket handshake needs HTTP/1.1");
    }
    let (mut upgrade, mut connection, mut key, mut version) = (false, false, None, None);
    let mut protocols = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            if key.is_some() {
                return reject("more than one Sec-WebSocket-Key");
            }
            key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            if version.is_some() {
                return reject("more than one Sec-WebSocket-Version");
            }
            version = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            protocols.extend(list_items(value).map(str::to_string));
        }
    }
    if !upgrade {
        return reject("Upgrade does not name websocket");
    }
    if !connection {
        return reject("Connection does not name Upgrade");
    }
    if version.map(<[u8]>::trim_ascii) != Some(VERSION.as_bytes()) {
        return Err(Rejection {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version (13 is supported)",
        });
    }
    let Some(key) = key.map(<[u8]>::trim_ascii) else {
        return reject("no Sec-WebSocket-Key");
    };
    if !STANDARD.decode(key).is_ok_and(|k| k.len() == 16) {
        return reject("Sec-WebSocket-Key is not 16 bytes in base64");
    }
    Ok(Handshake {
        accept: accept_key(key),
        protocols,
    })
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)) (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    STANDARD.encode(sha.digest().bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        let mut h = vec![
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        for &(n, v) in extra {
            h.retain(|(name, _)| !name.eq_ignore_ascii_case(n));
            if !v.is_empty() {
                h.push((n, v));
            }
        }
        h.into_iter().map(|(n, v)| (n, v.as_bytes())).collect()
    }

    #[test]
    fn the_rfc_example_is_accepted() {
        // RFC 6455 §1.3's worked example.
        assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let h = check(
            "GET",
            true,
            headers(&[("Sec-WebSocket-Protocol", "chat, superchat")]),
        )
        .unwrap();
        assert_eq!(h.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(h.protocols, ["chat", "superchat"]);
        assert!(is_upgrade(headers(&[])));
        assert!(is_upgrade(headers(&[("Upgrade", "foo, WebSocket")])));
        assert!(!is_upgrade(headers(&[("Upgrade", "h2c")])));
    }

    #[test]
    fn bad_handshakes_get_400_or_426() {
        let status = |method, h11, h| check(method, h11, h).map_err(|r| r.status);
        assert_eq!(status("POST", true, headers(&[])), Err(400));
        assert_eq!(status("GET", false, headers(&[])), Err(400));
        assert_eq!(
            status("GET", true, headers(&[("Connection", "close")])),
            Err(400)
        );
        assert_eq!(
            status("GET", true, headers(&[("Sec-WebSocket-Key", "")])),
            Err(400)
        );
        assert_eq!(
            status("GET", true, headers(&[("Sec-WebSocket-Key", "c2hvcnQ=")])),
            Err(400)
        );
        for version in ["8", "", "13, 8"] {
            assert_eq!(
                status("GET", true, headers(&[("Sec-WebSocket-Version", version)])),
                Err(426),
                "{version:?}"
            );
        }
    }
}
