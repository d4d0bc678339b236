//! The statsd settings' kinds: `statsd_host` (where the datagrams go), and `statsd_prefix`
//! and `dogstatsd_tags`, text that is copied into every statsd line and so must not carry
//! the protocol's separators.

use std::fmt;
use std::path::PathBuf;

use super::{Kind, Raw, TEXT};
use crate::parse_bind;
use crate::BindAddress;

/// The port of a `statsd_host` given without one: statsd's, as gunicorn assumes.
pub const DEFAULT_STATSD_PORT: u16 = 8125;

/// Where statsd datagrams are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdAddress {
    /// `HOST:PORT` over UDP; `host` is a name or an IP literal without brackets.
    Udp { host: String, port: u16 },
    /// `unix:PATH`: a Unix datagram socket.
    Unix(PathBuf),
}

impl fmt::Display for StatsdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsdAddress::Udp { host, port } if host.contains(':') => {
                write!(f, "[{host}]:{port}")
            }
            StatsdAddress::Udp { host, port } => write!(f, "{host}:{port}"),
            StatsdAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// `statsd_host`: `HOST:PORT`, `[IPV6]:PORT`, `HOST` (port 8125), `unix:PATH` or gunicorn's
/// `unix://PATH`; the empty string is "off".
#[derive(Debug)]
pub struct OptStatsd;

impl Kind for OptStatsd {
    type Out = Option<StatsdAddress>;

    fn parse(&self, raw: &Raw) -> Result<Option<StatsdAddress>, String> {
        let text = TEXT.parse(raw)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        // gunicorn writes `unix://PATH`; `unix:PATH` is the form `--bind` takes.
        let text = match text.strip_prefix("unix://") {
            Some(path) => format!("unix:{path}"),
            None => text.to_string(),
        };
        if text.starts_with("fd://") {
            return Err("fd://N cannot be used here".to_string());
        }
        // `parse_bind` gives a bare HOST the HTTP port: statsd's is 8125.
        let has_port = text.starts_with("unix:")
            || text.rsplit_once(':').is_some_and(|(host, _)| {
                !host.contains(':') || (host.starts_with('[') && host.ends_with(']'))
            });
        Ok(Some(match parse_bind(&text)? {
            BindAddress::Unix(path) => StatsdAddress::Unix(path),
            BindAddress::Tcp { host, port } => StatsdAddress::Udp {
                host,
                port: if has_port { port } else { DEFAULT_STATSD_PORT },
            },
            BindAddress::Fd(_) => return Err("fd://N cannot be used here".to_string()),
        }))
    }

    fn accepted(&self) -> String {
        "one of HOST:PORT, [IPV6]:PORT, HOST (port 8125), unix:PATH or unix://PATH \
         (empty: off)"
            .to_string()
    }

    fn to_toml(&self, value: &Option<StatsdAddress>) -> toml::Value {
        toml::Value::String(value.as_ref().map(|a| a.to_string()).unwrap_or_default())
    }

    fn samples(&self) -> Vec<String> {
        vec![
            "127.0.0.1:8125".to_string(),
            "unix:/tmp/statsd.sock".to_string(),
            String::new(),
        ]
    }
}

/// Text copied into every statsd line (`statsd_prefix`, `dogstatsd_tags`): printable ASCII
/// without the characters that separate a line's parts (`:` name from value, `|` fields,
/// `@` sample rate, `#` tags) beyond those `allowed` here. gunicorn sends the text as it is,
/// and a stray separator would make every line unreadable to the server.
#[derive(Debug)]
pub struct StatsdText {
    what: &'static str,
    allowed: &'static [char],
}

/// `statsd_prefix`: a metric name part (dots allowed, no `:`).
pub const STATSD_PREFIX: StatsdText = StatsdText {
    what: "a metric name prefix",
    allowed: &[],
};

/// `dogstatsd_tags`: comma-separated `key:value` tags.
pub const DOGSTATSD_TAGS: StatsdText = StatsdText {
    what: "comma-separated DogStatsD tags",
    allowed: &[':'],
};

impl Kind for StatsdText {
    type Out = String;

    fn parse(&self, raw: &Raw) -> Result<String, String> {
        let text = TEXT.parse(raw)?;
        let separators = [':', '|', '@', '#'];
        if let Some(c) = text.chars().find(|&c| {
            !c.is_ascii_graphic() || (separators.contains(&c) && !self.allowed.contains(&c))
        }) {
            return Err(format!("contains {c:?}"));
        }
        Ok(text)
    }

    fn accepted(&self) -> String {
        let refused: String = [':', '|', '@', '#']
            .iter()
            .filter(|c| !self.allowed.contains(c))
            .map(|c| format!(" {c}"))
            .collect();
        format!(
            "{}: printable ASCII without spaces or{refused} (empty: none)",
            self.what
        )
    }

    fn to_toml(&self, value: &String) -> toml::Value {
        toml::Value::String(value.clone())
    }

    fn samples(&self) -> Vec<String> {
        if self.allowed.contains(&':') {
            vec![
                "env:prod".to_string(),
                "env:prod,team:web".to_string(),
                String::new(),
            ]
        } else {
            vec!["app".to_string(), "web.eu.".to_string(), String::new()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Raw {
        Raw::Str(text.to_string())
    }

    fn udp(host: &str, port: u16) -> Option<StatsdAddress> {
        Some(StatsdAddress::Udp {
            host: host.to_string(),
            port,
        })
    }

    #[test]
    fn statsd_host_takes_gunicorn_forms() {
        let cases = [
            ("127.0.0.1:9125", udp("127.0.0.1", 9125)),
            ("localhost", udp("localhost", 8125)),
            ("statsd.local:8126", udp("statsd.local", 8126)),
            ("[::1]:8125", udp("::1", 8125)),
            ("[::1]", udp("::1", 8125)),
            ("::1", udp("::1", 8125)),
            (
                "unix:/run/statsd.sock",
                Some(StatsdAddress::Unix("/run/statsd.sock".into())),
            ),
            (
                "unix:///run/statsd.sock",
                Some(StatsdAddress::Unix("/run/statsd.sock".into())),
            ),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(OptStatsd.parse(&s(text)), Ok(expected.clone()), "{text}");
            // What `--print-config` shows reads back as the same address.
            let shown = OptStatsd.to_toml(&expected);
            let back = OptStatsd.parse(&s(shown.as_str().unwrap()));
            assert_eq!(back, Ok(expected), "{text}");
        }
    }

    #[test]
    fn statsd_host_refuses_what_cannot_be_sent_to() {
        for bad in ["fd://3", "unix:", "host:port", "127.0.0.1:65536", "a b:1"] {
            assert!(OptStatsd.parse(&s(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(OptStatsd.accepted().contains("unix:PATH"));
    }

    #[test]
    fn prefix_and_tags_refuse_the_line_separators() {
        assert_eq!(
            STATSD_PREFIX.parse(&s("web.eu.")),
            Ok("web.eu.".to_string())
        );
        assert_eq!(
            DOGSTATSD_TAGS.parse(&s("env:prod,team:web")),
            Ok("env:prod,team:web".to_string())
        );
        for bad in ["a:b", "a|b", "a b", "a\nb", "é", "a@1", "a#b"] {
            assert!(STATSD_PREFIX.parse(&s(bad)).is_err(), "{bad:?} accepted");
        }
        for bad in ["a|b", "a,b c", "a\nb", "a#b"] {
            assert!(DOGSTATSD_TAGS.parse(&s(bad)).is_err(), "{bad:?} accepted");
        }
        assert_eq!(STATSD_PREFIX.parse(&s("a|b")).unwrap_err(), "contains '|'");
    }
}
