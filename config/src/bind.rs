//! Parsing of one `--bind` address into a [`BindAddress`], with gunicorn's forms.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::BindAddress;

/// The port of a bare `HOST` bind, as in gunicorn.
pub const DEFAULT_PORT: u16 = 8000;

/// Parses `HOST:PORT`, `[IPV6]:PORT`, `HOST` or `[IPV6]` (port [`DEFAULT_PORT`]), a bare
/// IPv6 literal (port [`DEFAULT_PORT`]), `unix:PATH` or `fd://N`. Port 0 asks the kernel
/// for an ephemeral port. Fails with a short reason naming the bad part.
pub fn parse_bind(text: &str) -> Result<BindAddress, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: without a path".to_string());
        }
        return Ok(BindAddress::Unix(PathBuf::from(path)));
    }
    if let Some(fd) = text.strip_prefix("fd://") {
        return match fd.parse::<i32>() {
            Ok(n) if n >= 0 => Ok(BindAddress::Fd(n)),
            _ => Err(format!("fd://{fd}: not a file descriptor number")),
        };
    }
    if text.is_empty() {
        return Err("empty address".to_string());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']'"))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(port) => parse_port(port)?,
                None => return Err(format!("{text:?}: expected ':PORT' after ']'")),
            },
        };
        return Ok(BindAddress::Tcp {
            host: host.to_string(),
            port,
        });
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok(BindAddress::Tcp {
            host: text.to_string(),
            port: DEFAULT_PORT,
        });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, parse_port(port)?),
        None => (text, DEFAULT_PORT),
    };
    check_host(host)?;
    Ok(BindAddress::Tcp {
        host: host.to_string(),
        port,
    })
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    port.parse()
        .map_err(|_| format!("port {port} is above the maximum 65535"))
}

/// A host is an IPv4 literal or a DNS name (RFC 1123 §2.1 letters, digits, `-`, `.`).
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid_name {
        Ok(())
    } else if host.contains(':') {
        Err(format!(
            "{host:?}: an IPv6 address needs brackets, as [{host}]:PORT"
        ))
    } else {
        Err(format!("{host:?} is not a host name or IP address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> BindAddress {
        BindAddress::Tcp {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn accepts_gunicorn_forms() {
        let cases = [
            ("127.0.0.1:8000", tcp("127.0.0.1", 8000)),
            ("127.0.0.1:0", tcp("127.0.0.1", 0)),
            ("localhost", tcp("localhost", 8000)),
            ("example.com:80", tcp("example.com", 80)),
            ("0.0.0.0:65535", tcp("0.0.0.0", 65535)),
            ("[::1]:8080", tcp("::1", 8080)),
            ("[::]", tcp("::", 8000)),
            ("::1", tcp("::1", 8000)),
            (
                "unix:/run/app.sock",
                BindAddress::Unix("/run/app.sock".into()),
            ),
            ("unix:rel.sock", BindAddress::Unix("rel.sock".into())),
            ("fd://3", BindAddress::Fd(3)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_bind(text), Ok(expected.clone()), "{text}");
            // Display gives back a form that parses to the same address.
            assert_eq!(parse_bind(&expected.to_string()), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:http",
            "[::1",
            "[::1]8000",
            "[nothost]:80",
            "1::2::3:80",
            "unix:",
            "fd://",
            "fd://-1",
            "fd://x",
            "a b:80",
            "a,b:80",
            ":80",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad:?} accepted");
        }
    }
}
