//! PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy's specification defines them
//! and gunicorn's `proxy_protocol` parses them: optional, at the very start of a connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, ErrorKind};
use crate::limits::ProxyProtocol;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;

/// A parsed PROXY header: who the proxy says the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// The client's address, when the header carries one (`TCP4`/`TCP6`, v2 `PROXY` over
    /// INET/INET6). `None` for v1 `UNKNOWN`, v2 `LOCAL` and address families without ports:
    /// use the connection's own addresses then.
    pub source: Option<SocketAddr>,
    /// The address the client connected to, with the same rules as `source`.
    pub destination: Option<SocketAddr>,
}

/// The outcome of [`parse_proxy_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyStatus {
    /// The bytes so far could still start a PROXY header: call again with more.
    Partial,
    /// The connection does not start with a PROXY header the mode accepts: parse the request
    /// from the first byte (gunicorn treats the header as optional).
    Absent,
    /// A header, and the number of bytes it spans; the request starts after them.
    Complete(ProxyHeader, usize),
}

/// Parses the PROXY header at the start of a new connection's first bytes.
///
/// Call it before the first request head when `mode` is not [`ProxyProtocol::Off`], and
/// only then; which peers may send the header is the caller's decision (gunicorn's
/// `proxy_allow_ips`). Fails with a 400 error ([`Error::is_proxy`]) when the header starts
/// with a valid signature but is malformed.
pub fn parse_proxy_header(buf: &[u8], mode: ProxyProtocol) -> Result<ProxyStatus, Error> {
    let v1 = matches!(mode, ProxyProtocol::V1 | ProxyProtocol::Any);
    let v2 = matches!(mode, ProxyProtocol::V2 | ProxyProtocol::Any);
    let is_prefix_of = |sig: &[u8]| buf.len() < sig.len() && sig.starts_with(buf);
    if v2 && buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if v1 && buf.starts_with(V1_PREFIX) {
        return parse_v1(buf);
    }
    if (v2 && is_prefix_of(V2_SIGNATURE)) || (v1 && is_prefix_of(V1_PREFIX)) {
        return Ok(ProxyStatus::Partial);
    }
    Ok(ProxyStatus::Absent)
}

fn invalid(what: &[u8]) -> Error {
    Error::with_value(ErrorKind::InvalidProxyHeader, what)
}

/// `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(buf: &[u8]) -> Result<ProxyStatus, Error> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        if buf.len() >= V1_MAX {
            return Err(invalid(window));
        }
        return Ok(ProxyStatus::Partial);
    };
    let line = &buf[..lf];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(invalid(line));
    };
    let consumed = lf + 1;
    let text = std::str::from_utf8(line).map_err(|_| invalid(line))?;
    let bits: Vec<&str> = text.split(' ').collect();
    // The specification: "UNKNOWN" means the receiver must ignore the rest of the line and
    // use the connection's addresses. (gunicorn refuses it; we follow the specification.)
    if bits.get(1) == Some(&"UNKNOWN") {
        let header = ProxyHeader {
            version: 1,
            source: None,
            destination: None,
        };
        return Ok(ProxyStatus::Complete(header, consumed));
    }
    let [_, proto, src, dst, sport, dport] = bits[..] else {
        return Err(invalid(line));
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            parse_v4(src).ok_or_else(|| invalid(line))?.into(),
            parse_v4(dst).ok_or_else(|| invalid(line))?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map_err(|_| invalid(line))?.into(),
            dst.parse::<Ipv6Addr>().map_err(|_| invalid(line))?.into(),
        ),
        _ => return Err(invalid(line)),
    };
    let sport = parse_port(sport).ok_or_else(|| invalid(line))?;
    let dport = parse_port(dport).ok_or_else(|| invalid(line))?;
    let header = ProxyHeader {
        version: 1,
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    };
    Ok(ProxyStatus::Complete(header, consumed))
}

fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// A decimal port, digits only, 0 to 65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The binary header: signature, version/command, family, length, addresses, TLVs.
fn parse_v2(buf: &[u8]) -> Result<ProxyStatus, Error> {
    let Some(fixed) = buf.get(..16) else {
        return Ok(ProxyStatus::Partial);
    };
    let ver_cmd = fixed[12];
    let family = fixed[13];
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(invalid(&fixed[12..13]));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(invalid(&fixed[12..13])),
    };
    let Some(body) = buf.get(16..16 + len) else {
        return Ok(ProxyStatus::Partial);
    };
    let consumed = 16 + len;
    let (source, destination) = match family >> 4 {
        // AF_INET: 4 + 4 + 2 + 2 bytes.
        1 => {
            let a = body.get(..12).ok_or_else(|| invalid(&fixed[13..14]))?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            (
                Some(SocketAddr::new(
                    src.into(),
                    u16::from_be_bytes([a[8], a[9]]),
                )),
                Some(SocketAddr::new(
                    dst.into(),
                    u16::from_be_bytes([a[10], a[11]]),
                )),
            )
        }
        // AF_INET6: 16 + 16 + 2 + 2 bytes.
        2 => {
            let a = body.get(..36).ok_or_else(|| invalid(&fixed[13..14]))?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            (
                Some(SocketAddr::new(
                    Ipv6Addr::from(src).into(),
                    u16::from_be_bytes([a[32], a[33]]),
                )),
                Some(SocketAddr::new(
                    Ipv6Addr::from(dst).into(),
                    u16::from_be_bytes([a[34], a[35]]),
                )),
            )
        }
        // AF_UNSPEC and AF_UNIX carry no socket address we can report.
        0 | 3 => (None, None),
        _ => return Err(invalid(&fixed[13..14])),
    };
    if !matches!(family & 0x0f, 0..=2) {
        return Err(invalid(&fixed[13..14]));
    }
    let header = if local {
        // LOCAL: the proxy's own connection (health checks); the addresses are ignored.
        ProxyHeader {
            version: 2,
            source: None,
            destination: None,
        }
    } else {
        ProxyHeader {
            version: 2,
            source,
            destination,
        }
    };
    Ok(ProxyStatus::Complete(header, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let input = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /";
        let ProxyStatus::Complete(h, n) = parse_proxy_header(input, ProxyProtocol::Any).unwrap()
        else {
            panic!("not complete")
        };
        assert_eq!(&input[n..], b"GET /");
        assert_eq!(h.source, Some("192.168.0.1:56324".parse().unwrap()));
        assert_eq!(h.destination, Some("192.168.0.11:443".parse().unwrap()));
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.16...\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
            b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 1.1.1.1 2.2.2.2 +1 2\r\n",
            b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n",
        ] {
            assert!(parse_proxy_header(bad, ProxyProtocol::Any)
                .unwrap_err()
                .is_proxy());
        }
        assert_eq!(
            parse_proxy_header(b"PRO", ProxyProtocol::V1),
            Ok(ProxyStatus::Partial)
        );
        assert_eq!(
            parse_proxy_header(b"GET", ProxyProtocol::V1),
            Ok(ProxyStatus::Absent)
        );
        assert_eq!(
            parse_proxy_header(input, ProxyProtocol::Off),
            Ok(ProxyStatus::Absent)
        );
        assert_eq!(
            parse_proxy_header(input, ProxyProtocol::V2),
            Ok(ProxyStatus::Absent)
        );
    }

    #[test]
    fn v2() {
        let mut input = V2_SIGNATURE.to_vec();
        input.extend_from_slice(&[
            0x21, 0x11, 0, 12, 10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0, 80,
        ]);
        input.extend_from_slice(b"GET");
        for cut in 0..input.len() - 3 {
            assert_eq!(
                parse_proxy_header(&input[..cut], ProxyProtocol::Any),
                Ok(ProxyStatus::Partial),
                "cut {cut}"
            );
        }
        let ProxyStatus::Complete(h, n) = parse_proxy_header(&input, ProxyProtocol::V2).unwrap()
        else {
            panic!("not complete")
        };
        assert_eq!(n, 28);
        assert_eq!(h.source, Some("10.0.0.1:8080".parse().unwrap()));
        assert_eq!(h.destination, Some("10.0.0.2:80".parse().unwrap()));
        input[12] = 0x31;
        assert!(parse_proxy_header(&input, ProxyProtocol::Any).is_err());
    }
}
