//! `--access-logformat json`: one JSON object a line, with the fields gunicorn's atoms give
//! and the request id. Every string is escaped here, byte by byte, so that nothing a client
//! sends (a quote, a newline, bytes that are not UTF-8) can end a value or forge a field.
//! The fields are listed in `docs/operations.md` ("The access log as JSON"): change both.

use std::fmt::Write as _;

use super::format::basic_user_bytes;
use super::LogEntry;

/// Appends the line of `e` (with its newline).
pub(super) fn format(e: &LogEntry<'_>, out: &mut String) {
    out.push_str("{\"time\":\"");
    push_iso_date(e.now_secs, out);
    out.push_str("\",\"remote_addr\":");
    let _ = write!(out, "\"{}\"", e.req.peer());
    out.push_str(",\"method\":");
    push_string(out, e.req.method().as_bytes());
    out.push_str(",\"path\":");
    push_string(out, e.req.path().as_bytes());
    out.push_str(",\"query\":");
    push_string(out, e.req.query().as_bytes());
    out.push_str(",\"protocol\":");
    push_string(out, e.req.version().as_str().as_bytes());
    let _ = write!(out, ",\"status\":{},\"bytes\":", e.res.status);
    match e.body_bytes {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"duration_s\":{:.6}",
        e.started.elapsed().as_secs_f64()
    );
    for (key, value) in [
        ("referer", e.req.header("referer")),
        ("user_agent", e.req.header("user-agent")),
        ("user", basic_user_bytes(e.req).as_deref()),
        ("request_id", e.req.header("x-request-id")),
    ] {
        let _ = write!(out, ",\"{key}\":");
        match value {
            Some(v) => push_string(out, v),
            None => out.push_str("null"),
        }
    }
    let _ = writeln!(out, ",\"pid\":{}}}", std::process::id());
}

/// `bytes` as a JSON string: UTF-8 kept, with `"`, `\`, control characters, DEL and the
/// line separators U+2028/U+2029 escaped; a byte that is not part of valid UTF-8 becomes
/// the character of the same number (ISO-8859-1, as PEP 3333 reads header bytes), escaped
/// as `\u00XX`.
fn push_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(out, "\\u{b:04x}");
        }
    }
    out.push('"');
}

/// `2000-10-10T12:55:36Z` (ISO 8601, UTC), from the fields of the IMF-fixdate the `Date`
/// header uses (`Tue, 10 Oct 2000 12:55:36 GMT`).
fn push_iso_date(secs: u64, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let date = crate::date::http_date(secs);
    let (day, month, year, time) = (&date[5..7], &date[8..11], &date[12..16], &date[17..25]);
    let month = MONTHS.iter().position(|m| *m == month).map_or(0, |i| i + 1);
    let _ = write!(out, "{year}-{month:02}-{day}T{time}Z");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Body, Request, Response};

    fn line(req: &Request, res: &Response, bytes: Option<u64>) -> String {
        let mut out = String::new();
        format(&LogEntry::for_test(req, res, bytes), &mut out);
        out
    }

    #[test]
    fn a_line_has_every_field_in_order() {
        let req = Request::for_test(
            "POST",
            "/a/b?x=1&y=2",
            &[
                ("Referer", "http://r/"),
                ("User-Agent", "curl/8"),
                ("X-Request-Id", "abc-123"),
                ("Authorization", "Basic dXNlcjpwYXNz"),
            ],
            b"",
        );
        let mut res = Response::new();
        res.status = 201;
        res.body = Body::Static(b"Hello");
        let l = line(&req, &res, Some(5));
        let (head, tail) = l.split_once(",\"duration_s\":").unwrap();
        assert_eq!(
            head,
            "{\"time\":\"2000-10-10T12:55:36Z\",\"remote_addr\":\"127.0.0.1\",\
             \"method\":\"POST\",\"path\":\"/a/b\",\"query\":\"x=1&y=2\",\
             \"protocol\":\"HTTP/1.1\",\"status\":201,\"bytes\":5"
        );
        let (duration, rest) = tail.split_once(',').unwrap();
        assert!(duration.parse::<f64>().is_ok(), "{duration}");
        assert_eq!(
            rest,
            format!(
                "\"referer\":\"http://r/\",\"user_agent\":\"curl/8\",\"user\":\"user\",\
                 \"request_id\":\"abc-123\",\"pid\":{}}}\n",
                std::process::id()
            )
        );
    }

    #[test]
    fn absent_values_are_null() {
        let req = Request::for_test("GET", "/", &[], b"");
        let l = line(&req, &Response::new(), None);
        for key in ["bytes", "referer", "user_agent", "user", "request_id"] {
            assert!(l.contains(&format!("\"{key}\":null")), "{key}: {l}");
        }
        assert!(l.contains("\"query\":\"\""), "{l}");
    }

    #[test]
    fn strings_are_escaped_so_no_field_can_be_forged() {
        let mut out = String::new();
        push_string(
            &mut out,
            b"a\"b\\c\nd\re\tf\x00\x1f\x7f \xe2\x80\xa8 \xc3\xa9 \xff\xfe \xc3",
        );
        assert_eq!(
            out,
            "\"a\\\"b\\\\c\\nd\\re\\tf\\u0000\\u001f\\u007f \\u2028 \u{e9} \\u00ff\\u00fe \\u00c3\""
        );
        let mut out = String::new();
        push_string(&mut out, b"\",\"status\":999,\"x\":\"");
        assert_eq!(out, "\"\\\",\\\"status\\\":999,\\\"x\\\":\\\"\"");
    }

    #[test]
    fn iso_dates_cover_the_range() {
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (971_182_536, "2000-10-10T12:55:36Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (u64::MAX, "9999-12-31T23:59:59Z"),
        ] {
            let mut s = String::new();
            push_iso_date(secs, &mut s);
            assert_eq!(s, expected);
        }
    }
}
