//! The ASGI 3.0 `http` and `websocket` connection scopes of a request: what every scope
//! shares is built once per process (the `asgi` and `extensions` dicts, interned keys); per
//! request, the path percent-decoded as UTF-8, the headers as lower-cased byte pairs in
//! received order, and a shallow copy of the lifespan `state`.

use std::borrow::Cow;
use std::net::SocketAddr;

use ferrocorn_worker::{Request, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// The ASGI specification version served (`scope["asgi"]["spec_version"]`).
pub(crate) const SPEC_VERSION: &str = "2.4";

/// What every scope of this process shares.
pub(crate) struct ScopeBuilder {
    asgi: Py<PyDict>,
    extensions: Py<PyDict>,
    ws_extensions: Py<PyDict>,
    root_path: Py<PyString>,
    root: String,
    /// The lifespan state, copied into each scope.
    state: Py<PyDict>,
}

impl ScopeBuilder {
    pub(crate) fn new(py: Python<'_>, root_path: &str, state: Py<PyDict>) -> PyResult<Self> {
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", SPEC_VERSION)?;
        let extensions = PyDict::new(py);
        extensions.set_item("http.response.trailers", PyDict::new(py))?;
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        // The WebSocket Denial Response extension: `websocket.http.response.*` before accept.
        let ws_extensions = PyDict::new(py);
        ws_extensions.set_item("websocket.http.response", PyDict::new(py))?;
        Ok(ScopeBuilder {
            asgi: asgi.unbind(),
            extensions: extensions.unbind(),
            ws_extensions: ws_extensions.unbind(),
            root_path: PyString::new(py, root_path).unbind(),
            root: root_path.to_owned(),
            state,
        })
    }

    /// The scope of `req`.
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
    ) -> PyResult<Bound<'py, PyDict>> {
        let scope = PyDict::new(py);
        scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
        scope.set_item(intern!(py, "method"), method(py, req.method()))?;
        let scheme = match req.scheme() {
            "https" => intern!(py, "https"),
            _ => intern!(py, "http"),
        };
        scope.set_item(intern!(py, "scheme"), scheme)?;
        self.connection(&scope, req)?;
        scope.set_item(intern!(py, "extensions"), self.extensions.bind(py))?;
        Ok(scope)
    }

    /// The `websocket` scope of a handshake request: `scheme` is `wss` where an `http`
    /// scope's would be `https`; `subprotocols` as the client offers them.
    pub(crate) fn build_websocket<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
    ) -> PyResult<Bound<'py, PyDict>> {
        let scope = PyDict::new(py);
        scope.set_item(intern!(py, "type"), intern!(py, "websocket"))?;
        let scheme = match req.scheme() {
            "https" => intern!(py, "wss"),
            _ => intern!(py, "ws"),
        };
        scope.set_item(intern!(py, "scheme"), scheme)?;
        self.connection(&scope, req)?;
        let offered = PyList::new(py, req.websocket_protocols())?;
        scope.set_item(intern!(py, "subprotocols"), offered)?;
        scope.set_item(intern!(py, "extensions"), self.ws_extensions.bind(py))?;
        Ok(scope)
    }

    /// What the `http` and `websocket` scopes share.
    fn connection(&self, scope: &Bound<'_, PyDict>, req: &Request) -> PyResult<()> {
        let py = scope.py();
        scope.set_item(intern!(py, "asgi"), self.asgi.bind(py))?;
        let version = match req.version() {
            Version::Http10 => intern!(py, "1.0"),
            Version::Http11 => intern!(py, "1.1"),
        };
        scope.set_item(intern!(py, "http_version"), version)?;
        // The full path, root_path included (ASGI, as Starlette reads it): as received when
        // the proxy passed the prefix on, else with the prefix put back. raw_path as
        // received.
        let raw = req.path().as_bytes();
        let decoded = String::from_utf8_lossy(&percent_decode(raw)).into_owned();
        let path = if under_root(&decoded, &self.root) {
            decoded
        } else {
            format!("{}{decoded}", self.root)
        };
        scope.set_item(intern!(py, "path"), PyString::new(py, &path))?;
        scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, raw))?;
        scope.set_item(
            intern!(py, "query_string"),
            PyBytes::new(py, req.query().as_bytes()),
        )?;
        scope.set_item(intern!(py, "root_path"), self.root_path.bind(py))?;
        scope.set_item(intern!(py, "headers"), headers(py, req)?)?;
        scope.set_item(intern!(py, "client"), client(py, req)?)?;
        scope.set_item(intern!(py, "server"), address(py, req.local_addr())?)?;
        scope.set_item(intern!(py, "state"), self.state.bind(py).copy()?)?;
        Ok(())
    }
}

/// Whether `path` is `root` or below it (`/mnt` holds `/mnt` and `/mnt/x`, not `/mntx`).
fn under_root(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The method, interned for the common ones.
fn method<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        _ => PyString::new(py, method),
    }
}

/// `[(name, value), ...]`: names lower-cased, both bytes, in received order.
fn headers<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    let mut name_buf = Vec::with_capacity(32);
    for (name, value) in req.headers() {
        name_buf.clear();
        name_buf.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, &name_buf).into_any(),
                PyBytes::new(py, value).into_any(),
            ],
        )?;
        list.append(pair)?;
    }
    Ok(list)
}

fn client<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyAny>> {
    match req.peer() {
        ferrocorn_worker::Peer::Tcp(addr) => address(py, Some(*addr)),
        ferrocorn_worker::Peer::Unix => Ok(py.None().into_bound(py)),
    }
}

/// `(host, port)`, or None.
fn address(py: Python<'_>, addr: Option<SocketAddr>) -> PyResult<Bound<'_, PyAny>> {
    match addr {
        Some(addr) => Ok((addr.ip().to_string(), addr.port())
            .into_pyobject(py)?
            .into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// `%XX` sequences decoded to bytes (a `%` not followed by two hex digits stays as it is).
pub(crate) fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'%') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_sequences_are_decoded_and_broken_ones_kept() {
        assert_eq!(&*percent_decode(b"/plain"), b"/plain");
        assert_eq!(&*percent_decode(b"/caf%C3%A9"), "/café".as_bytes());
        assert_eq!(&*percent_decode(b"/a%2Fb%20c"), b"/a/b c");
        assert_eq!(&*percent_decode(b"/100%"), b"/100%");
        assert_eq!(&*percent_decode(b"/%4"), b"/%4");
        assert_eq!(&*percent_decode(b"/%zz%41"), b"/%zzA");
    }

    #[test]
    fn the_root_path_is_a_whole_segment() {
        assert!(under_root("/mnt/x", "/mnt"));
        assert!(under_root("/mnt", "/mnt"));
        assert!(!under_root("/mntx", "/mnt"));
        assert!(under_root("/anything", ""));
    }
}
