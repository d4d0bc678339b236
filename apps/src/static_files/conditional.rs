//! Answering with a file: its validators (`ETag`, `Last-Modified`), the preconditions of
//! RFC 9110 §13 (`If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`)
//! and a single byte range (`Range`, `If-Range`, RFC 9110 §14).

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use ferrocorn_worker::{http_date, Body, Request, Response};

use super::media_type::content_type;

/// Answers with the open `file` (validators, preconditions, a single range); `name` gives
/// the media type.
pub(super) fn send_file(
    req: &Request,
    res: &mut Response,
    file: File,
    meta: &Metadata,
    name: &Path,
) -> io::Result<()> {
    let size = meta.len();
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        size,
        meta.mtime_nsec() as u64 ^ (mtime << 20)
    );
    let last_modified = http_date(mtime);
    res.header("Last-Modified", last_modified);
    res.header("ETag", etag.clone());
    res.header("Accept-Ranges", "bytes");
    match precondition(req, &etag, mtime) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            res.status = 304;
            return Ok(());
        }
        Precondition::Failed => {
            res.status = 412;
            return Ok(());
        }
    }
    res.header("Content-Type", content_type(name));
    let range = req
        .header("range")
        .filter(|_| if_range_allows(req, &etag, mtime))
        .map(|r| parse_range(r, size));
    match range {
        None | Some(RangeOutcome::Ignore) => {
            res.body = Body::File {
                file,
                offset: 0,
                len: size,
            };
        }
        Some(RangeOutcome::Unsatisfiable) => {
            // RFC 9110 §15.5.17: 416 carries `Content-Range: bytes */size`.
            res.header("Content-Range", format!("bytes */{size}"));
            res.status = 416;
            res.body = Body::Empty;
        }
        Some(RangeOutcome::Range(start, end)) => {
            res.status = 206;
            res.header("Content-Range", format!("bytes {start}-{end}/{size}"));
            res.body = Body::File {
                file,
                offset: start,
                len: end - start + 1,
            };
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// Whether `etag` matches one of a list of entity tags (`*` matches anything). Weak
/// comparison (RFC 9110 §8.8.3.2) when `weak`, strong otherwise.
fn etag_matches(list: &[u8], etag: &str, weak: bool) -> bool {
    let list = String::from_utf8_lossy(list);
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        match t.strip_prefix("W/") {
            Some(w) => weak && w == etag,
            None => t == etag,
        }
    })
}

/// Evaluates the preconditions in RFC 9110 §13.2.2's order.
fn precondition(req: &Request, etag: &str, mtime: u64) -> Precondition {
    if let Some(v) = req.header("if-match") {
        if !etag_matches(v, etag, false) {
            return Precondition::Failed;
        }
    } else if let Some(t) = req.header("if-unmodified-since").and_then(parse_http_date) {
        if mtime > t {
            return Precondition::Failed;
        }
    }
    if let Some(v) = req.header("if-none-match") {
        if etag_matches(v, etag, true) {
            return Precondition::NotModified;
        }
    } else if let Some(t) = req.header("if-modified-since").and_then(parse_http_date) {
        if mtime <= t {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// RFC 9110 §13.1.5: a Range is honoured only if `If-Range` (when present) still matches.
fn if_range_allows(req: &Request, etag: &str, mtime: u64) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) if v.starts_with(b"\"") => v == etag.as_bytes(),
        Some(v) => parse_http_date(v) == Some(mtime),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeOutcome {
    /// Not a single byte range we serve: answer the whole file (RFC 9110 §14.2 lets a
    /// server ignore Range).
    Ignore,
    Unsatisfiable,
    /// Inclusive first and last byte.
    Range(u64, u64),
}

fn parse_range(value: &[u8], size: u64) -> RangeOutcome {
    let Ok(v) = std::str::from_utf8(value) else {
        return RangeOutcome::Ignore;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Ignore;
    };
    if spec.contains(',') {
        return RangeOutcome::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeOutcome::Ignore,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if size == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Range(size.saturating_sub(n), size - 1),
        },
        (a, "") => match num(a) {
            None => RangeOutcome::Ignore,
            Some(a) if a >= size => RangeOutcome::Unsatisfiable,
            Some(a) => RangeOutcome::Range(a, size - 1),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    RangeOutcome::Unsatisfiable
                } else {
                    RangeOutcome::Range(a, b.min(size - 1))
                }
            }
            _ => RangeOutcome::Ignore,
        },
    }
}

/// Parses an HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7):
/// IMF-fixdate, RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). Returns seconds since the epoch, `None` for anything else
/// (the caller then ignores the field, as RFC 9110 §13.1.3 requires for an invalid
/// `If-Modified-Since`).
fn parse_http_date(s: &[u8]) -> Option<u64> {
    let time = httpdate::parse_http_date(std::str::from_utf8(s).ok()?).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_parsing() {
        use RangeOutcome::*;
        assert_eq!(parse_range(b"bytes=0-4", 10), Range(0, 4));
        assert_eq!(parse_range(b"bytes=5-", 10), Range(5, 9));
        assert_eq!(parse_range(b"bytes=-3", 10), Range(7, 9));
        assert_eq!(parse_range(b"bytes=-30", 10), Range(0, 9));
        assert_eq!(parse_range(b"bytes=8-100", 10), Range(8, 9));
        assert_eq!(parse_range(b"bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=20-30", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=5-2", 10), Ignore);
        assert_eq!(parse_range(b"bytes=0-1,3-4", 10), Ignore);
        assert_eq!(parse_range(b"items=0-1", 10), Ignore);
        assert_eq!(parse_range(b"bytes=a-b", 10), Ignore);
        assert_eq!(parse_range(b"bytes=0-0", 0), Unsatisfiable);
    }

    #[test]
    fn parses_what_it_formats() {
        for secs in [0, 784_111_777, 951_782_400, 4_102_444_800] {
            assert_eq!(parse_http_date(http_date(secs).as_bytes()), Some(secs));
        }
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Xyz 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT\xff"), None);
        assert_eq!(parse_http_date(b"garbage"), None);
    }

    /// Regression: only IMF-fixdate was understood; RFC 9110 §5.6.7 requires a recipient to
    /// accept the obsolete RFC 850 and asctime forms too.
    #[test]
    fn parses_the_obsolete_forms_too() {
        for form in [
            &b"Sun, 06 Nov 1994 08:49:37 GMT"[..],
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_http_date(form),
                Some(784_111_777),
                "{}",
                String::from_utf8_lossy(form)
            );
        }
    }
}
