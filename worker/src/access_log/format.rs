//! gunicorn's `access_log_format` language (`%(h)s %(l)s ...`), compiled once; each line
//! is formatted on the loop.

use super::LogEntry;
use crate::app::Request;

/// One piece of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Literal(String),
    /// `h`: remote address.
    RemoteAddr,
    /// `l`: always `-`.
    Dash,
    /// `u`: user name from `Authorization: Basic`.
    User,
    /// `t`: `[10/Oct/2000:13:55:36 +0000]`.
    Time,
    /// `r`: the request line.
    RequestLine,
    /// `s`: status.
    Status,
    /// `m`: method.
    Method,
    /// `U`: path without query.
    Path,
    /// `q`: query string.
    Query,
    /// `H`: protocol.
    Protocol,
    /// `b`: body length, `-` when zero or unknown.
    BytesDash,
    /// `B`: body length, `0` when zero or unknown.
    Bytes,
    /// `f`: Referer.
    Referer,
    /// `a`: User-Agent.
    UserAgent,
    /// `T`: duration in whole seconds.
    Seconds,
    /// `M`: duration in milliseconds.
    Millis,
    /// `D`: duration in microseconds.
    Micros,
    /// `L`: duration in decimal seconds.
    DecimalSeconds,
    /// `p`: process id.
    Pid,
    /// `{name}i`: a request header.
    RequestHeader(String),
    /// `{name}o`: a response header.
    ResponseHeader(String),
    /// `{name}e`: an environment variable (read once, when the format is compiled).
    Env(String),
    /// An atom gunicorn does not define: written as `-`.
    Unknown,
}

/// A compiled `access_log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFormat {
    atoms: Vec<Atom>,
    needs_duration: bool,
}

impl LogFormat {
    /// Compiles gunicorn's `%(name)s` language; `%%` is a literal `%`. Anything that is not
    /// an atom is kept literally, so compiling never fails.
    pub fn compile(format: &str) -> LogFormat {
        let mut atoms = Vec::new();
        let mut lit = String::new();
        let mut rest = format;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("%%") {
                lit.push('%');
                rest = r;
                continue;
            }
            let parsed = rest.strip_prefix("%(").and_then(|r| {
                let close = r.find(')')?;
                let name = &r[..close];
                if name.contains('(') {
                    return None;
                }
                let after = &r[close + 1..];
                let conv = after.chars().next().filter(|c| matches!(c, 's' | 'd'))?;
                Some((name, &after[conv.len_utf8()..]))
            });
            match parsed {
                Some((name, r)) => {
                    if !lit.is_empty() {
                        atoms.push(Atom::Literal(std::mem::take(&mut lit)));
                    }
                    atoms.push(atom(name));
                    rest = r;
                }
                None => {
                    lit.push('%');
                    rest = &rest[1..];
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            atoms.push(Atom::Literal(lit));
        }
        let needs_duration = atoms.iter().any(|a| {
            matches!(
                a,
                Atom::Seconds | Atom::Millis | Atom::Micros | Atom::DecimalSeconds
            )
        });
        LogFormat {
            atoms,
            needs_duration,
        }
    }

    /// Appends one line (with a trailing newline) for a finished request.
    pub fn format(&self, e: &LogEntry<'_>, out: &mut String) {
        use std::fmt::Write as _;
        let elapsed = if self.needs_duration {
            e.started.elapsed()
        } else {
            std::time::Duration::ZERO
        };
        for a in &self.atoms {
            match a {
                Atom::Literal(s) => out.push_str(s),
                Atom::RemoteAddr => {
                    let _ = write!(out, "{}", e.req.peer());
                }
                Atom::Dash | Atom::Unknown => out.push('-'),
                Atom::User => match basic_user(e.req) {
                    Some(u) => out.push_str(&u),
                    None => out.push('-'),
                },
                Atom::Time => crate::date::log_date(e.now_secs, out),
                Atom::RequestLine => {
                    let _ = write!(
                        out,
                        "{} {} {}",
                        e.req.method(),
                        e.req.target(),
                        e.req.version().as_str()
                    );
                }
                Atom::Status => {
                    let _ = write!(out, "{}", e.res.status);
                }
                Atom::Method => out.push_str(e.req.method()),
                Atom::Path => out.push_str(e.req.path()),
                Atom::Query => out.push_str(e.req.query()),
                Atom::Protocol => out.push_str(e.req.version().as_str()),
                Atom::BytesDash => match e.body_bytes {
                    Some(n) if n > 0 => {
                        let _ = write!(out, "{n}");
                    }
                    _ => out.push('-'),
                },
                Atom::Bytes => {
                    let _ = write!(out, "{}", e.body_bytes.unwrap_or(0));
                }
                Atom::Referer => push_header(out, e.req.header("referer")),
                Atom::UserAgent => push_header(out, e.req.header("user-agent")),
                Atom::Seconds => {
                    let _ = write!(out, "{}", elapsed.as_secs());
                }
                Atom::Millis => {
                    let _ = write!(out, "{}", elapsed.as_millis());
                }
                Atom::Micros => {
                    let _ = write!(out, "{}", elapsed.as_micros());
                }
                Atom::DecimalSeconds => {
                    let _ = write!(out, "{:.6}", elapsed.as_secs_f64());
                }
                Atom::Pid => {
                    // gunicorn's glogging: `'p': "<%s>" % os.getpid()`.
                    let _ = write!(out, "<{}>", std::process::id());
                }
                Atom::RequestHeader(name) => push_header(out, e.req.header(name)),
                Atom::ResponseHeader(name) => {
                    push_header(out, e.res.header_value(name).map(str::as_bytes))
                }
                Atom::Env(value) => out.push_str(value),
            }
        }
        out.push('\n');
    }
}

fn atom(name: &str) -> Atom {
    if let Some(inner) = name.strip_prefix('{') {
        if let Some((key, kind)) = inner.rsplit_once('}') {
            let key = key.to_ascii_lowercase();
            return match kind {
                "i" => Atom::RequestHeader(key),
                "o" => Atom::ResponseHeader(key),
                "e" => Atom::Env(
                    std::env::var(key.to_ascii_uppercase()).unwrap_or_else(|_| "-".into()),
                ),
                _ => Atom::Unknown,
            };
        }
    }
    match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "s" => Atom::Status,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "b" => Atom::BytesDash,
        "B" => Atom::Bytes,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        _ => Atom::Unknown,
    }
}

/// Writes a header value; bytes outside printable ASCII and `"`/`\` are escaped as `\xNN`
/// so a client cannot forge log lines.
fn push_header(out: &mut String, value: Option<&[u8]>) {
    match value {
        None => out.push('-'),
        Some(v) => push_escaped(out, v),
    }
}

fn push_escaped(out: &mut String, v: &[u8]) {
    use std::fmt::Write as _;
    for &b in v {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// The user name of an `Authorization: Basic` header, as gunicorn's `%(u)s`, escaped.
fn basic_user(req: &Request) -> Option<String> {
    let user = basic_user_bytes(req)?;
    let mut s = String::new();
    push_escaped(&mut s, &user);
    Some(s)
}

/// The user name of an `Authorization: Basic` header, as it was encoded.
pub(super) fn basic_user_bytes(req: &Request) -> Option<Vec<u8>> {
    let v = req.header("authorization")?;
    let v = std::str::from_utf8(v).ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let user = decoded.split(|&b| b == b':').next()?;
    Some(user.to_vec())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Body, Response};

    fn line(format: &str, req: &Request, res: &Response, bytes: Option<u64>) -> String {
        let mut out = String::new();
        LogFormat::compile(format).format(&LogEntry::for_test(req, res, bytes), &mut out);
        out
    }

    #[test]
    fn default_format_matches_gunicorn() {
        let req = Request::for_test(
            "GET",
            "/a?b=1",
            &[("Referer", "http://r/"), ("User-Agent", "curl/8")],
            b"",
        );
        let mut res = Response::new();
        res.body = Body::Static(b"Hello");
        let l = line(
            ferrocorn_config::DEFAULT_ACCESS_LOG_FORMAT,
            &req,
            &res,
            Some(5),
        );
        assert_eq!(
            l,
            "127.0.0.1 - - [10/Oct/2000:12:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 5 \"http://r/\" \"curl/8\"\n"
        );
    }

    #[test]
    fn all_atoms_render() {
        let req = Request::for_test(
            "POST",
            "/p?q=2",
            &[("X-Req", "in"), ("Authorization", "Basic dXNlcjpwYXNz")],
            b"",
        );
        let mut res = Response::new();
        res.status = 404;
        res.header("X-Out", "out");
        let l = line("%(m)s|%(U)s|%(q)s|%(H)s|%(b)s|%(B)s|%(u)s|%({x-req}i)s|%({X-Out}o)s|%({nope}i)s|%(zz)s|100%%|%(p)s", &req, &res, Some(0));
        assert_eq!(
            l,
            format!(
                "POST|/p|q=2|HTTP/1.1|-|0|user|in|out|-|-|100%|<{}>\n",
                std::process::id()
            )
        );
        let d = line("%(T)s %(M)s %(D)s %(L)s", &req, &res, None);
        let parts: Vec<&str> = d.trim_end().split(' ').collect();
        assert_eq!(parts.len(), 4);
        assert!(parts[..3].iter().all(|p| p.parse::<u64>().is_ok()), "{d}");
        assert!(parts[3].parse::<f64>().is_ok(), "{d}");
    }

    #[test]
    fn header_values_cannot_forge_lines() {
        let req = Request::for_test("GET", "/", &[("User-Agent", "a\"b\\c\u{7f}")], b"");
        let res = Response::new();
        assert_eq!(line("%(a)s", &req, &res, None), "a\\x22b\\x5cc\\x7f\n");
    }

    #[test]
    fn stray_percent_is_literal() {
        let req = Request::for_test("GET", "/", &[], b"");
        let res = Response::new();
        assert_eq!(line("50% %(x %(s)d", &req, &res, None), "50% %(x 200\n");
    }
}
