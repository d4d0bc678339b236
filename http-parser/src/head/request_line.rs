//! The request line (RFC 9112 §3): its grammar, the method rules, and the judgement of a
//! line's prefix ([`check_line_prefix`]) that answers garbage before its line ends.

use crate::error::{Error, ErrorKind};
use crate::limits::Policy;
use crate::syntax::{check_target, is_target_byte_under, is_tchar, TargetForm};

/// The longest method accepted without [`Policy::permit_unconventional_http_method`]
/// (gunicorn's bound).
pub(super) const CONVENTIONAL_METHOD_LEN: std::ops::RangeInclusive<usize> = 3..=20;

/// A method the policy's defaults accept: 3 to 20 bytes without lower case or `#` (gunicorn's
/// rule; the caller checked it is a token). The common methods answer without the loop.
#[inline(always)]
fn is_conventional_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"POST" | b"HEAD" | b"PUT")
        || (CONVENTIONAL_METHOD_LEN.contains(&method.len())
            && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#'))
}

pub(super) struct RequestLine {
    pub(super) method_len: usize,
    pub(super) target_len: usize,
    pub(super) target_form: TargetForm,
    pub(super) version: (u8, u8),
}

/// Parses `method SP request-target SP HTTP-version` (RFC 9112 §3), without its CRLF.
pub(super) fn parse_request_line(line: &[u8], policy: &Policy) -> Result<RequestLine, Error> {
    let invalid = || Error::with_value(ErrorKind::InvalidRequestLine, line);
    let method_len = line.iter().position(|&b| b == b' ').ok_or_else(invalid)?;
    let method = &line[..method_len];
    check_method(method, line, policy)?;

    let rest = &line[method_len + 1..];
    let target_len = rest.iter().position(|&b| b == b' ').ok_or_else(invalid)?;
    let target = &rest[..target_len];
    if target.is_empty() {
        return Err(invalid());
    }
    if !target
        .iter()
        .all(|&b| is_target_byte_under(b, policy.allow_non_ascii_target))
    {
        return Err(Error::with_value(ErrorKind::InvalidTarget, target));
    }
    let version = parse_version(&rest[target_len + 1..])?;
    let target_form = check_target(method, target, policy.allow_fragment, policy.allow_userinfo)?;
    Ok(RequestLine {
        method_len,
        target_len,
        target_form,
        version,
    })
}

/// Checks the method: a token (RFC 9110 §9.1), and unless the policy permits unconventional
/// methods, 3 to 20 bytes without lower case or `#`, as gunicorn checks.
fn check_method(method: &[u8], line: &[u8], policy: &Policy) -> Result<(), Error> {
    let bad = || Error::with_value(ErrorKind::InvalidMethod, line);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad());
    }
    if !policy.permit_unconventional_http_method && !is_conventional_method(method) {
        return Err(bad());
    }
    Ok(())
}

/// What the bytes of a request line so far say about its method and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinePrefix {
    /// Only tchars so far, none the method rules refuse: more bytes may still decide it.
    MethodOpen,
    /// An acceptable method and SP, then only target bytes so far.
    TargetOpen,
    /// An acceptable method or method and target, then a CR as the last byte so far: the
    /// next byte decides.
    AwaitingCr,
    /// Method and target complete (each ended by SP); the rest is judged with the whole line.
    Done,
}

/// Judges the method and the target from the bytes of the request line received so far
/// (`line`: up to its LF or the end of the input), so that input that cannot begin a valid
/// request line is answered at once, not when its line ends. RFC 9112 §3: a request line is
/// `method SP request-target SP HTTP-version`, the method a token (RFC 9110 §9.1), the target
/// visible ASCII (RFC 3986 §2; bytes >= 0x80 only under
/// [`Policy::allow_non_ascii_target`]).
///
/// Fails with [`ErrorKind::InvalidMethod`] as soon as a byte that is not a tchar comes before
/// the first SP, or the method's bytes so far break [`check_method`]'s rules (too long, lower
/// case, `#`), or the method ends at SP and is refused (empty, too short); then with
/// [`ErrorKind::InvalidRequestLine`] for an empty target, or [`ErrorKind::InvalidTarget`] as
/// soon as a byte that cannot be in a target comes before the second SP. A CR as the last byte
/// so far decides nothing yet: it may end the line.
///
/// The verdict does not depend on how the input arrives: it looks only at the first `limit`
/// bytes (past them the line is too long, which a prefix may already say), and once bytes
/// decide it, every longer input with those bytes decides it the same way. It runs before the
/// other checks of the request line, so the whole input gets the error a prefix got.
pub(super) fn check_line_prefix(
    line: &[u8],
    limit: Option<usize>,
    policy: &Policy,
) -> Result<LinePrefix, Error> {
    let seen = &line[..limit.map_or(line.len(), |limit| line.len().min(limit))];
    let end = seen.iter().position(|&b| !is_tchar(b));
    let method = &seen[..end.unwrap_or(seen.len())];
    let bad_method = |upto: usize| Error::with_value(ErrorKind::InvalidMethod, &seen[..upto]);
    let conventional = |method: &[u8]| {
        policy.permit_unconventional_http_method
            || (method.len() <= *CONVENTIONAL_METHOD_LEN.end()
                && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#'))
    };
    let method_end = match end.map(|end| (end, seen[end])) {
        None if conventional(method) => return Ok(LinePrefix::MethodOpen),
        Some((end, b'\r')) if end + 1 == seen.len() && conventional(method) => {
            return Ok(LinePrefix::AwaitingCr)
        }
        Some((end, b' ')) => {
            check_method(method, &seen[..=end], policy)?;
            end
        }
        None => return Err(bad_method(seen.len())),
        Some((end, _)) => return Err(bad_method(end + 1)),
    };
    let target = &seen[method_end + 1..];
    let allow_non_ascii = policy.allow_non_ascii_target;
    match target
        .iter()
        .position(|&b| !is_target_byte_under(b, allow_non_ascii))
    {
        None => Ok(LinePrefix::TargetOpen),
        Some(0) if target[0] == b' ' => Err(Error::with_value(
            ErrorKind::InvalidRequestLine,
            &seen[..method_end + 2],
        )),
        Some(end) if target[end] == b' ' => Ok(LinePrefix::Done),
        Some(end) if target[end] == b'\r' && end + 1 == target.len() => Ok(LinePrefix::AwaitingCr),
        Some(end) => Err(Error::with_value(ErrorKind::InvalidTarget, &target[..=end])),
    }
}

/// For [`HeadParser::parse_resuming`]: whether the bytes `new`, appended to the incomplete
/// request `line` (which ends with them) whose prefix was `prefix`, leave what was open open,
/// so that [`check_line_prefix`] would still answer the same (conservatively: `false` sends
/// the caller to the full parse, which decides). Always `true` for other lines.
pub(super) fn stays_open(
    prefix: Option<LinePrefix>,
    line: &[u8],
    new: &[u8],
    policy: &Policy,
) -> bool {
    let lenient = policy.permit_unconventional_http_method;
    match prefix {
        Some(LinePrefix::MethodOpen) => {
            new.iter()
                .all(|&b| is_tchar(b) && (lenient || !(b.is_ascii_lowercase() || b == b'#')))
                && (lenient || line.len() <= *CONVENTIONAL_METHOD_LEN.end())
        }
        Some(LinePrefix::TargetOpen) => new
            .iter()
            .all(|&b| is_target_byte_under(b, policy.allow_non_ascii_target)),
        Some(LinePrefix::AwaitingCr) => false,
        Some(LinePrefix::Done) | None => true,
    }
}

/// Parses `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 9112 §2.3), exactly.
fn parse_version(v: &[u8]) -> Result<(u8, u8), Error> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Ok((major - b'0', minor - b'0'))
        }
        _ => Err(Error::with_value(ErrorKind::InvalidVersion, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HeadParser, Progress, Status};
    use crate::limits::{Limits, Policy};

    #[test]
    fn input_that_cannot_begin_a_request_line_is_refused_at_once() {
        // Regression: bytes with no LF (a TLS ClientHello, binary noise) waited for the header
        // timeout (408) because only complete lines were judged; they are 400 from the first
        // byte that decides it, and the whole input gets the same error as any prefix.
        let client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x15";
        let verdicts = |limits: Limits, policy: Policy, input: &[u8]| -> Vec<String> {
            let mut parser = HeadParser::new(limits, policy);
            let mut progress = Progress::default();
            (1..=input.len())
                .map(|n| {
                    let resumed = match parser.parse_resuming(&input[..n], &mut progress) {
                        Ok(Status::Partial) => "partial".to_string(),
                        Ok(Status::Complete(..)) => "complete".to_string(),
                        Err(e) => {
                            progress = Progress::default();
                            format!("{} {:?}", e.status(), e.kind())
                        }
                    };
                    let fresh = match HeadParser::new(limits, policy).parse(&input[..n]) {
                        Ok(Status::Partial) => "partial".to_string(),
                        Ok(Status::Complete(..)) => "complete".to_string(),
                        Err(e) => format!("{} {:?}", e.status(), e.kind()),
                    };
                    assert_eq!(resumed, fresh, "{:?}", String::from_utf8_lossy(&input[..n]));
                    fresh
                })
                .collect()
        };
        let refused = "400 InvalidMethod";
        let strict = || verdicts(Limits::default(), Policy::default(), client_hello);
        assert!(strict().iter().all(|v| v == refused), "{:?}", strict());
        let g0t = b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = verdicts(Limits::default(), Policy::default(), g0t);
        assert_eq!(got[0], "partial");
        assert!(got[1..].iter().all(|v| v == refused), "{got:?}");
        // Which prefixes decide, under the default policy and under gunicorn's lenient one.
        let lenient = Policy {
            permit_unconventional_http_method: true,
            ..Policy::default()
        };
        for (input, strict_last, lenient_last) in [
            (&b"GET"[..], "partial", "partial"),
            (b"GET\r", "partial", "partial"),
            (b"GET\rX", refused, refused),
            (b"GET /", "partial", "partial"),
            (b"get", refused, "partial"),
            (b"GE#T", refused, "partial"),
            (b"ABCDEFGHIJKLMNOPQRSTU", refused, "partial"),
            (b"GE ", refused, "partial"),
            (b" ", refused, refused),
            (b"GET\t/", refused, refused),
            (b"\r\n\x16", refused, refused),
            // Then the target: its bytes, up to the second SP.
            (b"GET /a\x00", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\x7f", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\rb", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a\r", "partial", "partial"),
            (b"GET /\xc3\xa9", "400 InvalidTarget", "400 InvalidTarget"),
            (b"GET /a HTTP/1.1\x00", "partial", "partial"),
            (b"GET  ", "400 InvalidRequestLine", "400 InvalidRequestLine"),
        ] {
            let last = |policy| verdicts(Limits::default(), policy, input).pop();
            let shown = String::from_utf8_lossy(input);
            assert_eq!(
                last(Policy::default()).as_deref(),
                Some(strict_last),
                "{shown:?}"
            );
            assert_eq!(last(lenient).as_deref(), Some(lenient_last), "{shown:?}");
        }
        // Past the request-line limit the line is too long, whatever comes there.
        let short_line = Limits {
            request_line: 4,
            ..Limits::default()
        };
        let got = verdicts(short_line, lenient, b"GETX\0 / HTTP/1.1\r\n");
        assert_eq!(got[3], "partial");
        assert_eq!(got[4], "414 RequestLineTooLong");
        let got = verdicts(short_line, lenient, b"GE\0X / HTTP/1.1\r\n");
        assert_eq!(got[2], refused);
    }
}
