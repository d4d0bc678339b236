//! `start_response(status, headers, exc_info=None)` and the `write()` callable it returns
//! (PEP 3333, "The start_response() Callable"). Status and headers are checked here, so
//! that a bad one raises in the application with a traceback instead of reaching the wire.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard};

use ferrocorn_worker::HeaderText;
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::loader::type_name;

/// The response head as the application set it, and the body bytes it gave `write()`.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// The status code, once `start_response` was called.
    pub status: Option<u16>,
    /// The reason phrase, when it is not the standard one for the status.
    pub reason: Option<String>,
    /// The header fields to send (hop-by-hop fields and `Content-Length` left out).
    pub headers: Vec<(HeaderText, HeaderText)>,
    /// The `Content-Length` the application declared.
    pub content_length: Option<u64>,
    /// Body bytes were produced: the head counts as sent (PEP 3333: an `exc_info` call
    /// after this re-raises).
    pub committed: bool,
    /// Bytes given to `write()` and not yet taken into the response body.
    pub written: Vec<u8>,
}

/// The `start_response` callable of one request.
#[pyclass(frozen, module = "ferrocorn", name = "StartResponse")]
#[derive(Debug, Default)]
pub(crate) struct StartResponse {
    // Never held across a call into Python.
    head: Mutex<Head>,
}

impl StartResponse {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Head> {
        self.head.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        match exc_info.filter(|e| !e.is_none()) {
            Some(exc_info) => {
                if me.lock().committed {
                    // PEP 3333: too late to replace the head; re-raise so the application
                    // stops and the server closes the connection.
                    return Err(PyErr::from_value(exc_info.get_item(1)?));
                }
            }
            None => {
                if me.lock().status.is_some() {
                    return Err(PyAssertionError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
            }
        }
        let (code, reason) = parse_status(status)?;
        let (fields, content_length) = parse_headers(headers)?;
        {
            let mut head = me.lock();
            head.status = Some(code);
            head.reason = reason;
            head.headers = fields;
            head.content_length = content_length;
        }
        slf.getattr(intern!(slf.py(), "write"))
    }

    /// Appends body bytes (PEP 3333's imperative `write()`): the head counts as sent.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data)))
        })?;
        let mut head = self.lock();
        if head.status.is_none() {
            return Err(PyAssertionError::new_err(
                "write() called before start_response()",
            ));
        }
        head.committed = true;
        head.written.extend_from_slice(data.as_bytes());
        Ok(())
    }
}

/// `"200 OK"` → 200: three digits, then nothing or a space and a reason without control
/// characters. Interim (1xx) codes cannot be a final answer and are refused. The reason
/// comes back when it is not the standard one (`"299 Fine"`), to be sent as given.
fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(u16, Option<String>)> {
    let text = status.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "status must be a str like '200 OK', not {}",
            type_name(status)
        ))
    })?;
    let text = text.to_cow()?;
    let b = text.as_bytes();
    let well_formed = b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && (b.len() == 3 || b[3] == b' ')
        && !b.iter().any(|&c| c.is_ascii_control() && c != b'\t');
    if !well_formed {
        return Err(PyValueError::new_err(format!(
            "invalid status {text:?}: expected three digits and a reason, like '200 OK'"
        )));
    }
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    if code < 200 {
        return Err(PyValueError::new_err(format!(
            "status {text:?}: an interim (1xx) status cannot answer a request"
        )));
    }
    let reason = text.get(4..).unwrap_or("");
    let custom = (!reason.is_empty() && reason != ferrocorn_worker::reason_phrase(code))
        .then(|| reason.to_owned());
    Ok((code, custom))
}

/// Checks the header list and converts it: names must be tokens and values latin-1 text
/// without control characters but tab (RFC 9110 §5.5; a CR or LF could split the head).
/// Values lose surrounding blanks. `Content-Length` is returned apart (the worker frames
/// the body itself); hop-by-hop fields (RFC 9110 §7.6.1) are dropped as gunicorn drops
/// them, but `Connection: close`, which makes the worker close after this response.
#[allow(clippy::type_complexity)]
fn parse_headers(
    headers: &Bound<'_, PyAny>,
) -> PyResult<(Vec<(HeaderText, HeaderText)>, Option<u64>)> {
    let mut fields = Vec::with_capacity(headers.len().unwrap_or(4));
    let mut content_length = None;
    for item in headers.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a list of (name, value) tuples, not {}",
            type_name(headers)
        ))
    })? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "header {} is not a (name, value) tuple",
                    item.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("header name {name} is not a str")))?;
        let name = name.to_cow()?;
        let value = value.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "value of header {name:?} is not a str but {}",
                type_name(&value)
            ))
        })?;
        let value = value.to_cow()?;
        if !ferrocorn_http_parser::is_token(name.as_bytes()) {
            return Err(PyValueError::new_err(format!(
                "invalid header name {name:?}"
            )));
        }
        // The value itself is left out of the message: it may be what an attacker put in.
        if !value_is_valid(&value) {
            return Err(PyValueError::new_err(format!(
                "invalid value for header {name:?}: a control character (CR, LF, NUL, ...) or \
                 a character outside latin-1"
            )));
        }
        let value = value.trim_matches([' ', '\t']);
        match name.len() {
            14 if name.eq_ignore_ascii_case("content-length") => {
                content_length = Some(value.parse::<u64>().map_err(|_| {
                    PyValueError::new_err(format!("invalid Content-Length {value:?}"))
                })?);
                continue;
            }
            10 if name.eq_ignore_ascii_case("connection") => {
                if value.eq_ignore_ascii_case("close") {
                    fields.push((Cow::Borrowed("Connection"), Cow::Borrowed("close")));
                }
                continue;
            }
            _ if is_hop_by_hop(&name) => continue,
            _ => {}
        }
        fields.push((
            header_text(KNOWN_NAMES, &name),
            header_text(KNOWN_VALUES, value),
        ));
    }
    Ok((fields, content_length))
}

/// Hop-by-hop fields an application must not set (PEP 3333), but `Connection`.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|h| h.eq_ignore_ascii_case(name))
}

/// Common names and values, as static text: no allocation for them per response.
const KNOWN_NAMES: &[&str] = &[
    "Content-Type",
    "Cache-Control",
    "Set-Cookie",
    "Location",
    "Vary",
    "ETag",
    "Last-Modified",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Expires",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Access-Control-Allow-Origin",
];
const KNOWN_VALUES: &[&str] = &[
    "text/plain",
    "text/plain; charset=utf-8",
    "text/html",
    "text/html; charset=utf-8",
    "application/json",
    "DENY",
    "nosniff",
    "same-origin",
    "Cookie",
    "Accept-Encoding",
    "no-cache",
];

/// `text` as one of `known` when it is one, else owned.
fn header_text(known: &'static [&'static str], text: &str) -> HeaderText {
    match known.iter().find(|k| **k == text) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(text.to_owned()),
    }
}

/// A field value as RFC 9110 §5.5 and PEP 3333 allow it: visible latin-1 text, spaces and
/// tabs (so no CR, LF or NUL). Checked on the UTF-8 bytes, ASCII first.
fn value_is_valid(value: &str) -> bool {
    let ascii_ok = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
    value.bytes().all(ascii_ok)
        || value.chars().all(|c| match u8::try_from(c) {
            Ok(b) => ascii_ok(b) || b >= 0x80,
            Err(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_visible_latin1_text() {
        assert!(value_is_valid("text/html; charset=utf-8"));
        assert!(value_is_valid("a\tb ~"));
        assert!(value_is_valid("caf\u{e9}"));
        for bad in ["a\r\nb", "a\nb", "a\0b", "\u{7f}", "\u{20ac}", "\u{1}"] {
            assert!(!value_is_valid(bad), "{bad:?}");
        }
    }
}
