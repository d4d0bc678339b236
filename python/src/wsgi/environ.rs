//! The `environ` dict of PEP 3333, keyed and valued as gunicorn's `http/wsgi.py` does.
//! Built without Python code: a per-worker template holding the constant entries is
//! copied, then the request's entries are set with interned keys and cached values.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Mutex;

use ferrocorn_worker::{Peer, Request, Version};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::errors::ErrorStream;
use super::file_wrapper::FileWrapper;
use super::input::InputStream;
use crate::interp::latin1;

/// `SERVER_SOFTWARE`.
const SERVER_SOFTWARE: &str = concat!("ferrocorn/", env!("CARGO_PKG_VERSION"));

/// Where `Host` is in [`COMMON_HEADERS`].
const HOST: usize = 0;

/// Header names common enough to keep their `HTTP_*` key ready.
const COMMON_HEADERS: &[&str] = &[
    "Host",
    "User-Agent",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Connection",
    "Cookie",
    "Referer",
    "Origin",
    "Cache-Control",
    "Pragma",
    "Authorization",
    "Upgrade-Insecure-Requests",
    "If-None-Match",
    "If-Modified-Since",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Real-IP",
    "X-Requested-With",
    "X-Request-ID",
    "Sec-Fetch-Site",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Dest",
    "Sec-Fetch-User",
    "Sec-Ch-Ua",
    "Sec-Ch-Ua-Mobile",
    "Sec-Ch-Ua-Platform",
    "DNT",
    "Expect",
    "Range",
    "Keep-Alive",
];

/// Request methods whose `str` is kept ready.
const METHODS: &[&str] = &["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Interned keys and ready values, made once per process.
#[derive(Debug)]
pub(crate) struct EnvironBuilder {
    /// The constant entries, and every key each request sets (with placeholder values):
    /// a copy of it is the start of each environ (see [`EnvironBuilder::new`]).
    template: Py<PyDict>,
    request_method: Py<PyString>,
    path_info: Py<PyString>,
    query_string: Py<PyString>,
    raw_uri: Py<PyString>,
    server_protocol: Py<PyString>,
    server_name: Py<PyString>,
    server_port: Py<PyString>,
    remote_addr: Py<PyString>,
    remote_port: Py<PyString>,
    content_type: Py<PyString>,
    content_length: Py<PyString>,
    url_scheme: Py<PyString>,
    input: Py<PyString>,
    http: Py<PyString>,
    https: Py<PyString>,
    http10: Py<PyString>,
    http11: Py<PyString>,
    empty: Py<PyString>,
    port80: Py<PyString>,
    port443: Py<PyString>,
    methods: Vec<Py<PyString>>,
    /// The `HTTP_*` key of each of [`COMMON_HEADERS`], and its last value.
    headers: Vec<(Py<PyString>, LastValue)>,
    last_server_name: LastValue,
    last_server_port: LastValue,
    last_remote_addr: LastValue,
    /// `SCRIPT_NAME` without a trailing `/`: stripped from the front of `PATH_INFO`.
    script_name: String,
}

/// The `str` made for the last bytes seen in one place (a header's value, the client's
/// address), handed out again while the next request brings the same bytes: a load
/// balancer, a benchmark client or one browser repeat most of them. Saves making, hashing
/// and freeing a `str` per field.
#[derive(Debug, Default)]
struct LastValue {
    // Held only to compare and to take a new reference: never across a call into Python.
    slot: Mutex<Option<Seen>>,
}

/// Bytes and the `str` made of them.
type Seen = (Box<[u8]>, Py<PyString>);

impl LastValue {
    fn get<'py>(&self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some((seen, value)) = &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            if **seen == *bytes {
                return Ok(value.bind(py).clone());
            }
        }
        let value = latin1(py, bytes)?;
        let old = self
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((bytes.into(), value.clone().unbind()));
        drop(old);
        Ok(value)
    }
}

/// What the constant part of every environ says about this worker.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// `SCRIPT_NAME` (`--root-path`, else the process's `SCRIPT_NAME`).
    pub script_name: String,
    /// `wsgi.multithread`.
    pub multithread: bool,
    /// `wsgi.multiprocess`.
    pub multiprocess: bool,
}

fn key(py: Python<'_>, s: &str) -> Py<PyString> {
    PyString::intern(py, s).unbind()
}

impl EnvironBuilder {
    pub(crate) fn new(py: Python<'_>, setup: &Setup) -> PyResult<EnvironBuilder> {
        let script_name = setup.script_name.trim_end_matches('/').to_owned();
        let b = EnvironBuilder {
            template: PyDict::new(py).unbind(),
            request_method: key(py, "REQUEST_METHOD"),
            path_info: key(py, "PATH_INFO"),
            query_string: key(py, "QUERY_STRING"),
            raw_uri: key(py, "RAW_URI"),
            server_protocol: key(py, "SERVER_PROTOCOL"),
            server_name: key(py, "SERVER_NAME"),
            server_port: key(py, "SERVER_PORT"),
            remote_addr: key(py, "REMOTE_ADDR"),
            remote_port: key(py, "REMOTE_PORT"),
            content_type: key(py, "CONTENT_TYPE"),
            content_length: key(py, "CONTENT_LENGTH"),
            url_scheme: key(py, "wsgi.url_scheme"),
            input: key(py, "wsgi.input"),
            http: key(py, "http"),
            https: key(py, "https"),
            http10: key(py, "HTTP/1.0"),
            http11: key(py, "HTTP/1.1"),
            empty: key(py, ""),
            port80: key(py, "80"),
            port443: key(py, "443"),
            methods: METHODS.iter().map(|m| key(py, m)).collect(),
            headers: COMMON_HEADERS
                .iter()
                .map(|h| (key(py, &cgi_name(h)), LastValue::default()))
                .collect(),
            last_server_name: LastValue::default(),
            last_server_port: LastValue::default(),
            last_remote_addr: LastValue::default(),
            script_name,
        };
        let template = b.template.bind(py);
        template.set_item(key(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        template.set_item(key(py, "wsgi.errors"), Py::new(py, ErrorStream::default())?)?;
        template.set_item(key(py, "wsgi.multithread"), setup.multithread)?;
        template.set_item(key(py, "wsgi.multiprocess"), setup.multiprocess)?;
        template.set_item(key(py, "wsgi.run_once"), false)?;
        template.set_item(key(py, "wsgi.input_terminated"), true)?;
        template.set_item(key(py, "wsgi.file_wrapper"), py.get_type::<FileWrapper>())?;
        template.set_item(key(py, "SERVER_SOFTWARE"), key(py, SERVER_SOFTWARE))?;
        template.set_item(
            key(py, "SCRIPT_NAME"),
            latin1(py, b.script_name.as_bytes())?,
        )?;
        // The keys every request sets: replacing a value costs less than inserting a key.
        for k in [
            &b.request_method,
            &b.path_info,
            &b.query_string,
            &b.raw_uri,
            &b.server_protocol,
            &b.server_name,
            &b.server_port,
            &b.remote_addr,
            &b.remote_port,
            &b.url_scheme,
            &b.input,
        ] {
            template.set_item(k, &b.empty)?;
        }
        // Two more keys, deleted again, make CPython grow the template's table to 64 slots
        // (it grows when the 22nd key arrives). `dict.copy()` of a dict with few deleted
        // entries copies its table as it is, so each environ starts with room for the
        // request's header fields instead of being resized twice while they go in. Only
        // a matter of speed: any CPython builds the same dict.
        for pad in ["ferrocorn.pad0", "ferrocorn.pad1"] {
            template.set_item(pad, py.None())?;
        }
        for pad in ["ferrocorn.pad0", "ferrocorn.pad1"] {
            template.del_item(pad)?;
        }
        Ok(b)
    }

    /// The environ for `req`. Moves the request body into `wsgi.input`.
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        req: &mut Request,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.template.bind(py).copy()?;
        let method = req.method();
        match METHODS.iter().position(|m| *m == method) {
            Some(i) => env.set_item(&self.request_method, &self.methods[i])?,
            None => env.set_item(&self.request_method, PyString::new(py, method))?,
        }
        let path = req.path();
        let path = match self.script_name.as_str() {
            "" => path,
            prefix => strip_script_name(path, prefix),
        };
        let path_info = path_info(py, path.as_bytes())?;
        let query = req.query();
        if !query.is_empty() {
            env.set_item(&self.query_string, PyString::new(py, query))?;
        }
        // Mostly the target is the path as it is (`/`, `/users/1`): one str for both.
        let target = req.target();
        if target.len() == path.len() && !path.contains('%') {
            env.set_item(&self.raw_uri, &path_info)?;
        } else {
            env.set_item(&self.raw_uri, PyString::new(py, target))?;
        }
        env.set_item(&self.path_info, path_info)?;
        if req.version() == Version::Http11 {
            env.set_item(&self.server_protocol, &self.http11)?;
        } else {
            env.set_item(&self.server_protocol, &self.http10)?;
        }
        let https = req.scheme() == "https";
        env.set_item(
            &self.url_scheme,
            if https { &self.https } else { &self.http },
        )?;

        let host = self.set_headers(py, &env, req)?;
        self.set_server(py, &env, req, host, https)?;
        match req.peer() {
            Peer::Tcp(addr) => {
                let mut buf = [0u8; 48];
                let ip = format_ip(&mut buf, addr.ip());
                env.set_item(&self.remote_addr, self.last_remote_addr.get(py, ip)?)?;
                env.set_item(&self.remote_port, port_str(py, addr.port()))?;
            }
            // gunicorn: a Unix socket's peer has no address, and REMOTE_PORT is left out.
            Peer::Unix => env.del_item(&self.remote_port)?,
        }
        let body = std::mem::take(req.body());
        env.set_item(&self.input, Py::new(py, InputStream::new(body))?)?;
        Ok(env)
    }

    /// `HTTP_*` from the header fields (repeated names joined with `,`, values latin-1),
    /// `CONTENT_TYPE` and `CONTENT_LENGTH` without the prefix. Returns the first `Host`.
    fn set_headers<'r>(
        &self,
        py: Python<'_>,
        env: &Bound<'_, PyDict>,
        req: &'r Request,
    ) -> PyResult<Option<&'r [u8]>> {
        // The fields once, on the stack for any ordinary request: each `headers()` pass
        // checks the names again.
        const ON_STACK: usize = 32;
        let mut stack: [(&str, &[u8]); ON_STACK] = [("", &[]); ON_STACK];
        let mut heap = Vec::new();
        let mut count = 0;
        for field in req.headers() {
            if count < ON_STACK {
                stack[count] = field;
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&stack);
                }
                heap.push(field);
            }
            count += 1;
        }
        let fields = if count <= ON_STACK {
            &stack[..count]
        } else {
            &heap[..]
        };
        let mut host = None;
        for (i, &(name, value)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(n, _)| same_cgi_name(n, name)) {
                continue; // joined with the first of its name
            }
            let mut repeats = fields[i + 1..]
                .iter()
                .filter(|(n, _)| same_cgi_name(n, name))
                .peekable();
            let joined;
            let value = if repeats.peek().is_some() {
                let mut all = value.to_vec();
                for (_, v) in repeats {
                    all.push(b',');
                    all.extend_from_slice(v);
                }
                joined = all;
                &joined[..]
            } else {
                value
            };
            if name.eq_ignore_ascii_case("content-type") {
                env.set_item(&self.content_type, latin1(py, value)?)?;
            } else if name.eq_ignore_ascii_case("content-length") {
                env.set_item(&self.content_length, latin1(py, value)?)?;
            } else if let Some(k) = COMMON_HEADERS
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
            {
                if k == HOST {
                    host = Some(fields[i].1); // the first Host field, not the joined ones
                }
                let (key, last) = &self.headers[k];
                env.set_item(key, last.get(py, value)?)?;
            } else {
                env.set_item(PyString::new(py, &cgi_name(name)), latin1(py, value)?)?;
            }
        }
        Ok(host)
    }

    /// `SERVER_NAME` and `SERVER_PORT`, as gunicorn sets them: the address of the listener
    /// that accepted the connection (server-controlled, unlike `Host`, which applications
    /// read from `HTTP_HOST`). On a Unix socket, the name in `Host` (else `localhost`) and
    /// its port, else the scheme's.
    fn set_server(
        &self,
        py: Python<'_>,
        env: &Bound<'_, PyDict>,
        req: &Request,
        host: Option<&[u8]>,
        https: bool,
    ) -> PyResult<()> {
        if let Some(addr) = req.local_addr() {
            let mut buf = [0u8; 48];
            let ip = format_ip(&mut buf, addr.ip());
            env.set_item(&self.server_name, self.last_server_name.get(py, ip)?)?;
            env.set_item(&self.server_port, port_str(py, addr.port()))?;
            return Ok(());
        }
        let default_port = if https { &self.port443 } else { &self.port80 };
        let (name, port) = match host.filter(|h| !h.is_empty()) {
            Some(host) => split_host(host),
            None => (&b"localhost"[..], None),
        };
        env.set_item(&self.server_name, self.last_server_name.get(py, name)?)?;
        match port {
            Some(p) if !p.is_empty() => {
                env.set_item(&self.server_port, self.last_server_port.get(py, p)?)?
            }
            _ => env.set_item(&self.server_port, default_port)?,
        }
        Ok(())
    }
}

/// An IP address as text, written into `buf` (IPv4 by hand: `fmt` costs more than the
/// rest of the environ's addresses together).
fn format_ip(buf: &mut [u8; 48], ip: IpAddr) -> &[u8] {
    match ip {
        IpAddr::V4(v4) => {
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                n += write_decimal(&mut buf[n..], u32::from(octet));
            }
            &buf[..n]
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{v6}");
            let n = cursor.position() as usize;
            &buf[..n]
        }
    }
}

/// Writes `n` in decimal at the start of `out`, returning the number of digits.
fn write_decimal(out: &mut [u8], mut n: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

fn port_str(py: Python<'_>, port: u16) -> Bound<'_, PyString> {
    let mut buf = [0u8; 5];
    let n = write_decimal(&mut buf, u32::from(port));
    PyString::new(py, std::str::from_utf8(&buf[..n]).unwrap_or(""))
}

/// `Accept-Encoding` → `HTTP_ACCEPT_ENCODING`.
fn cgi_name(name: &str) -> String {
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    key
}

/// Whether two field names map to the same `HTTP_*` key (`X-A`, `x_a`).
fn same_cgi_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let norm = |c: u8| {
                if c == b'-' {
                    b'_'
                } else {
                    c.to_ascii_uppercase()
                }
            };
            norm(x) == norm(y)
        })
}

/// The path below the application's mount point: `prefix` is removed when the path starts
/// with it at a segment boundary (`/app` from `/app/x` or `/app`, not from `/apple`).
fn strip_script_name<'a>(path: &'a str, prefix: &str) -> &'a str {
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `PATH_INFO`: percent-decoded, then taken as latin-1 (gunicorn's `unquote_to_wsgi_str`).
fn path_info<'py>(py: Python<'py>, path: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if !path.contains(&b'%') {
        return latin1(py, path);
    }
    latin1(py, &percent_decode(path))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is (as
/// `urllib.parse.unquote_to_bytes` leaves it).
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// `host:port` → (`host`, `port`); `[v6]:port` keeps the brackets on the name.
fn split_host(host: &[u8]) -> (&[u8], Option<&[u8]>) {
    if host.first() == Some(&b'[') {
        if let Some(end) = host.iter().position(|&b| b == b']') {
            let rest = &host[end + 1..];
            return (&host[..=end], rest.strip_prefix(b":"));
        }
        return (host, None);
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(i) => (&host[..i], Some(&host[i + 1..])),
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_leaves_broken_escapes() {
        assert_eq!(percent_decode(b"/a%20b%2Fc"), b"/a b/c");
        assert_eq!(percent_decode(b"/%e9t%C3%A9"), b"/\xe9t\xc3\xa9");
        assert_eq!(percent_decode(b"/%zz%4"), b"/%zz%4");
        assert_eq!(percent_decode(b"%"), b"%");
        assert_eq!(percent_decode(b"%41"), b"A");
    }

    #[test]
    fn hosts_split_into_name_and_port() {
        assert_eq!(split_host(b"example.com"), (&b"example.com"[..], None));
        assert_eq!(
            split_host(b"example.com:8080"),
            (&b"example.com"[..], Some(&b"8080"[..]))
        );
        assert_eq!(split_host(b"[::1]:81"), (&b"[::1]"[..], Some(&b"81"[..])));
        assert_eq!(split_host(b"[::1]"), (&b"[::1]"[..], None));
    }

    #[test]
    fn script_name_is_stripped_at_a_segment_boundary() {
        assert_eq!(strip_script_name("/app/x", "/app"), "/x");
        assert_eq!(strip_script_name("/app", "/app"), "");
        assert_eq!(strip_script_name("/apple", "/app"), "/apple");
        assert_eq!(strip_script_name("/other", "/app"), "/other");
    }

    #[test]
    fn addresses_format_as_std_does() {
        let mut buf = [0u8; 48];
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.199",
            "::1",
            "fe80::1:2",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(format_ip(&mut buf, parsed), ip.as_bytes());
        }
        let mut out = [0u8; 10];
        let n = write_decimal(&mut out, 65535);
        assert_eq!(&out[..n], b"65535");
        let n = write_decimal(&mut out, 0);
        assert_eq!(&out[..n], b"0");
    }

    #[test]
    fn cgi_names() {
        assert_eq!(COMMON_HEADERS[HOST], "Host");
        assert_eq!(cgi_name("Accept-Encoding"), "HTTP_ACCEPT_ENCODING");
        assert!(same_cgi_name("X-A", "x_a"));
        assert!(!same_cgi_name("X-A", "X-AB"));
    }
}
