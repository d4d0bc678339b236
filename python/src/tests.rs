//! The WSGI host seen through [`App::call`]: one interpreter per test process, each test's
//! application a Python module written to a directory on `sys.path`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use ferrocorn_worker::{App, Body, Request, Response};
use pyo3::prelude::*;

use crate::{interp, load, PythonOptions};

/// The directory the test applications are written to (on `sys.path`).
fn apps_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrocorn-python-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn options(threads: usize) -> PythonOptions {
    PythonOptions {
        pythonpath: vec![apps_dir().clone()],
        preload: true,
        threads,
        workers: 2,
        ..Default::default()
    }
}

/// Writes `source` as module `name` and loads `spec` from it (`name:app` by default).
fn load_spec(name: &str, source: &str, spec: &str, threads: usize) -> Result<Arc<dyn App>, String> {
    std::fs::write(apps_dir().join(format!("{name}.py")), source).unwrap();
    load(spec, &options(threads))
}

fn app(name: &str, source: &str) -> Arc<dyn App> {
    load_spec(name, source, &format!("{name}:app"), 1).unwrap()
}

fn call(app: &dyn App, mut req: Request) -> Response {
    let mut res = Response::new();
    app.call(&mut req, &mut res);
    res
}

fn get(app: &dyn App, target: &str) -> Response {
    call(
        app,
        Request::for_test("GET", target, &[("Host", "example.com")], b""),
    )
}

/// Reads the whole body; `Err` when a stream fails.
fn body_of(res: Response) -> std::io::Result<Vec<u8>> {
    Ok(match res.body {
        Body::Empty => Vec::new(),
        Body::Static(b) => b.to_vec(),
        Body::Bytes(b) => b,
        Body::File { file, offset, len } => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0; len as usize];
            file.read_exact_at(&mut buf, offset)?;
            buf
        }
        Body::Stream { mut reader, .. } => {
            let mut buf = Vec::new();
            let mut piece = [0u8; 7];
            loop {
                match reader.read(&mut piece)? {
                    0 => break buf,
                    n => buf.extend_from_slice(&piece[..n]),
                }
            }
        }
    })
}

fn text(res: Response) -> String {
    String::from_utf8(body_of(res).unwrap()).unwrap()
}

/// Evaluates a Python expression in module `name` (to read what an application recorded).
fn eval(name: &str, expr: &str) -> String {
    interp::attach(|py| {
        let module = py.import(name).unwrap();
        let value = module
            .getattr("__dict__")
            .and_then(|d| {
                py.eval(
                    &std::ffi::CString::new(expr).unwrap(),
                    None,
                    Some(d.cast().unwrap()),
                )
            })
            .unwrap();
        value.str().unwrap().to_string()
    })
}

#[test]
fn a_list_of_one_bytes_is_one_owned_body() {
    let app = app(
        "hello",
        r#"
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Custom", "yes")])
    return [b"Hello, World!"]
"#,
    );
    let res = get(&*app, "/");
    assert_eq!(res.status, 200);
    assert_eq!(res.header_value("content-type"), Some("text/plain"));
    assert_eq!(res.header_value("x-custom"), Some("yes"));
    assert!(matches!(&res.body, Body::Bytes(b) if b == b"Hello, World!"));
}

#[test]
fn environ_holds_every_cgi_and_wsgi_key_as_native_str() {
    let app = app(
        "environ_keys",
        r#"
import sys
seen = {}
def app(environ, start_response):
    seen.clear()
    seen.update(environ)
    bad = [k for k, v in environ.items()
           if type(k) is not str or (not k.startswith("wsgi.") and type(v) is not str)]
    start_response("200 OK", [])
    return [repr(bad).encode()]
"#,
    );
    let req = Request::for_test(
        "POST",
        "/a%20b/%C3%A9?x=1&y=%20",
        &[
            ("Host", "example.com:8080"),
            ("Content-Type", "text/plain"),
            ("Content-Length", "5"),
            ("X-Multi", "one"),
            ("Accept", "a"),
            ("x-multi", "two"),
            ("X-Latin", "caf\u{e9}"),
        ],
        b"hello",
    );
    assert_eq!(text(call(&*app, req)), "[]");
    let env = |k: &str| eval("environ_keys", &format!("seen.get({k:?}, '<absent>')"));
    assert_eq!(env("REQUEST_METHOD"), "POST");
    assert_eq!(env("SCRIPT_NAME"), "");
    // Percent-decoded, then taken as latin-1: é's two UTF-8 bytes are two characters.
    assert_eq!(env("PATH_INFO"), "/a b/Ã©");
    assert_eq!(env("QUERY_STRING"), "x=1&y=%20");
    assert_eq!(env("RAW_URI"), "/a%20b/%C3%A9?x=1&y=%20");
    assert_eq!(env("CONTENT_TYPE"), "text/plain");
    assert_eq!(env("CONTENT_LENGTH"), "5");
    assert_eq!(env("HTTP_CONTENT_TYPE"), "<absent>");
    // The listener's address, as gunicorn gives it; the client's Host is HTTP_HOST.
    assert_eq!(env("SERVER_NAME"), "127.0.0.1");
    assert_eq!(env("SERVER_PORT"), "8000");
    assert_eq!(env("SERVER_PROTOCOL"), "HTTP/1.1");
    assert_eq!(env("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env("REMOTE_PORT"), "1");
    assert_eq!(env("HTTP_HOST"), "example.com:8080");
    assert_eq!(env("HTTP_X_MULTI"), "one,two");
    assert_eq!(env("HTTP_ACCEPT"), "a");
    assert_eq!(env("HTTP_X_LATIN"), "cafÃ©");
    assert_eq!(
        env("SERVER_SOFTWARE"),
        concat!("ferrocorn/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(env("wsgi.version"), "(1, 0)");
    assert_eq!(env("wsgi.url_scheme"), "http");
    assert_eq!(env("wsgi.multithread"), "False");
    assert_eq!(env("wsgi.multiprocess"), "True");
    assert_eq!(env("wsgi.run_once"), "False");
    assert_eq!(env("wsgi.input_terminated"), "True");
    assert_eq!(
        eval("environ_keys", "type(seen['wsgi.errors']).__name__"),
        "ErrorStream"
    );
    assert_eq!(
        eval("environ_keys", "seen['wsgi.file_wrapper'].__name__"),
        "FileWrapper"
    );
    assert_eq!(
        eval("environ_keys", "seen['wsgi.input'].read()"),
        "b'hello'"
    );
}

#[test]
fn server_name_is_the_listener_and_on_unix_sockets_the_host_or_the_scheme_port() {
    let app = app(
        "server_name",
        r#"
def app(environ, start_response):
    start_response("200 OK", [])
    return [("%s|%s|%s" % (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["wsgi.url_scheme"])).encode()]
"#,
    );
    assert_eq!(
        text(call(&*app, Request::for_test("GET", "/", &[], b""))),
        "127.0.0.1|8000|http"
    );
    let mut req = Request::for_test("GET", "/", &[("Host", "h:1")], b"");
    req.set_secure_for_test(true);
    assert_eq!(text(call(&*app, req)), "127.0.0.1|8000|https");
    let unix = |headers: &[(&str, &str)], secure: bool| {
        let mut req = Request::for_test("GET", "/", headers, b"");
        req.set_peer_for_test(ferrocorn_worker::Peer::Unix, None);
        req.set_secure_for_test(secure);
        text(call(&*app, req))
    };
    assert_eq!(unix(&[("Host", "h")], true), "h|443|https");
    assert_eq!(unix(&[("Host", "h:81")], false), "h|81|http");
    assert_eq!(unix(&[], false), "localhost|80|http");
}

#[test]
fn root_path_is_script_name_and_is_stripped_from_path_info() {
    std::fs::write(
        apps_dir().join("mounted.py"),
        r#"
def app(environ, start_response):
    start_response("200 OK", [])
    return [("%s|%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"], environ["RAW_URI"])).encode()]
"#,
    )
    .unwrap();
    let opts = PythonOptions {
        root_path: "/api/".into(),
        ..options(1)
    };
    let app = load("mounted:app", &opts).unwrap();
    assert_eq!(text(get(&*app, "/api/users")), "/api|/users|/api/users");
    assert_eq!(text(get(&*app, "/api")), "/api||/api");
    assert_eq!(text(get(&*app, "/apiary")), "/api|/apiary|/apiary");
}

#[test]
fn input_reads_lines_sizes_and_iterates() {
    let app = app(
        "input_methods",
        r#"
def app(environ, start_response):
    f = environ["wsgi.input"]
    out = [f.read(2), f.readline(), f.readline(2), f.readline(-1), f.readlines(1)]
    out.append(list(f))
    out.append(f.read())
    out.append(f.read(10))
    start_response("200 OK", [])
    return [repr(out).encode()]
"#,
    );
    let req = Request::for_test("POST", "/", &[], b"abcd\nefgh\nij\nkl\nmn");
    assert_eq!(
        text(call(&*app, req)),
        "[b'ab', b'cd\\n', b'ef', b'gh\\n', [b'ij\\n'], [b'kl\\n', b'mn'], b'', b'']"
    );
}

#[test]
fn a_large_body_reads_in_full_and_never_past_its_end() {
    let app = app(
        "input_large",
        r#"
import hashlib
def app(environ, start_response):
    f = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = f.read(65536)
        if not chunk:
            break
        n += len(chunk)
        h.update(chunk)
    start_response("200 OK", [])
    return [("%d %s" % (n, h.hexdigest()[:16])).encode()]
"#,
    );
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = interp::attach(|py| {
        let h = py
            .import("hashlib")
            .unwrap()
            .call_method1("sha256", (pyo3::types::PyBytes::new(py, &body),))
            .unwrap();
        let hex: String = h.call_method0("hexdigest").unwrap().extract().unwrap();
        format!("{} {}", body.len(), &hex[..16])
    });
    assert_eq!(
        text(call(&*app, Request::for_test("POST", "/", &[], &body))),
        expected
    );
}

#[test]
fn invalid_status_or_headers_are_500_never_sent() {
    let app = app(
        "bad_heads",
        r#"
CASES = {
    "/short": ("20 OK", []),
    "/interim": ("100 Continue", []),
    "/bytes-status": (b"200 OK", []),
    "/crlf-value": ("200 OK", [("X-A", "b\r\nSet-Cookie: evil=1")]),
    "/nul": ("200 OK", [("X-A", "b\x00")]),
    "/bad-name": ("200 OK", [("X A", "b")]),
    "/not-tuple": ("200 OK", [["X-A", "b"]]),
    "/bytes-value": ("200 OK", [("X-A", b"b")]),
    "/not-latin1": ("200 OK", [("X-A", "\u20ac")]),
    "/bad-length": ("200 OK", [("Content-Length", "x")]),
    "/ok": ("299 Fine", [("X-A", "  padded\t")]),
}
def app(environ, start_response):
    status, headers = CASES[environ["PATH_INFO"]]
    start_response(status, headers)
    return [b"body"]
"#,
    );
    for path in [
        "/short",
        "/interim",
        "/bytes-status",
        "/crlf-value",
        "/nul",
        "/bad-name",
        "/not-tuple",
        "/bytes-value",
        "/not-latin1",
        "/bad-length",
    ] {
        let res = get(&*app, path);
        assert_eq!(res.status, 500, "{path}");
        assert_eq!(res.header_value("x-a"), None, "{path}");
    }
    let res = get(&*app, "/ok");
    assert_eq!(res.status, 299);
    assert_eq!(
        res.reason(),
        "Fine",
        "the application's reason phrase is kept"
    );
    assert_eq!(res.header_value("x-a"), Some("padded"));
}

#[test]
fn hop_by_hop_headers_are_dropped_but_connection_close() {
    let app = app(
        "hop_by_hop",
        r#"
def app(environ, start_response):
    start_response("200 OK", [("Connection", "close"), ("Keep-Alive", "5"), ("Upgrade", "x"),
                              ("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    return [b""]
"#,
    );
    let res = get(&*app, "/");
    let headers: Vec<(String, String)> = res
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            ("Connection".into(), "close".into()),
            ("Set-Cookie".into(), "a=1".into()),
            ("Set-Cookie".into(), "b=2".into())
        ]
    );
    assert!(matches!(res.body, Body::Empty));
}

#[test]
fn start_response_twice_needs_exc_info_which_replaces_the_head() {
    let app = app(
        "exc_info",
        r#"
import sys
def app(environ, start_response):
    start_response("200 OK", [("X-First", "1")])
    if environ["PATH_INFO"] == "/twice":
        start_response("201 Created", [])
        return [b"unreachable"]
    try:
        raise ValueError("boom")
    except ValueError:
        start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
    return [b"replaced"]
"#,
    );
    let res = get(&*app, "/");
    assert_eq!(res.status, 503);
    assert_eq!(res.header_value("x-first"), None);
    assert_eq!(res.header_value("x-second"), Some("2"));
    assert_eq!(text(res), "replaced");
    assert_eq!(get(&*app, "/twice").status, 500);
}

#[test]
fn exc_info_after_the_head_was_sent_reraises_and_breaks_the_stream() {
    let app = app(
        "exc_info_late",
        r#"
import sys
def app(environ, start_response):
    start_response("200 OK", [])
    yield b"first"
    try:
        raise KeyError("late")
    except KeyError:
        start_response("500 Oops", [], sys.exc_info())
    yield b"never"
"#,
    );
    let res = get(&*app, "/");
    assert_eq!(res.status, 200);
    let err = body_of(res).unwrap_err();
    assert!(err.to_string().contains("KeyError"), "{err}");
}

#[test]
fn write_output_comes_before_the_returned_body() {
    let app = app(
        "write_callable",
        r#"
def app(environ, start_response):
    write = start_response("200 OK", [])
    write(b"one ")
    write(b"two ")
    if environ["PATH_INFO"] == "/gen":
        def gen():
            write(b"three ")
            yield b""
            yield b"four"
            write(b" five")
        return gen()
    return [b"three"]
"#,
    );
    assert_eq!(text(get(&*app, "/")), "one two three");
    assert_eq!(text(get(&*app, "/gen")), "one two three four five");
}

#[test]
fn start_response_may_be_called_from_the_iterator() {
    let app = app(
        "lazy_head",
        r#"
def app(environ, start_response):
    def body():
        yield b""
        start_response("202 Accepted", [("X-Late", "1")])
        yield b"a"
        yield b"b"
    return body()
"#,
    );
    let res = get(&*app, "/");
    assert_eq!(res.status, 202);
    assert_eq!(res.header_value("x-late"), Some("1"));
    assert!(matches!(res.body, Body::Stream { len: None, .. }));
    assert_eq!(text(res), "ab");
}

#[test]
fn a_body_before_start_response_or_none_at_all_is_500() {
    let app = app(
        "no_head",
        r#"
def app(environ, start_response):
    if environ["PATH_INFO"] == "/list":
        return [b"x"]
    def body():
        yield b"x"
    return body()
"#,
    );
    assert_eq!(get(&*app, "/list").status, 500);
    assert_eq!(get(&*app, "/gen").status, 500);
}

const CLOSING: &str = r#"
closed = []
class Body:
    def __init__(self, name, pieces, fail_at=None):
        self.name, self.pieces, self.fail_at = name, pieces, fail_at
    def __iter__(self):
        for i, p in enumerate(self.pieces):
            if i == self.fail_at:
                raise RuntimeError("failed at %d" % i)
            yield p
    def close(self):
        closed.append(self.name)

class ClosingList(list):
    def close(self):
        closed.append("list")

def app(environ, start_response):
    start_response("200 OK", [])
    path = environ["PATH_INFO"]
    if path == "/list":
        return ClosingList([b"a", b"b"])
    if path == "/fail-first":
        return Body(path, [b"a"], fail_at=0)
    if path == "/fail-later":
        return Body(path, [b"a", b"b"], fail_at=1)
    if path == "/not-bytes":
        return Body(path, [b"a", "str"])
    return Body(path, [b"x" * 10, b"y" * 10, b"z" * 10])
"#;

#[test]
fn close_is_called_once_in_every_ending() {
    let app = app("closing", CLOSING);
    let closed = || eval("closing", "closed");

    assert_eq!(text(get(&*app, "/list")), "ab");
    assert_eq!(closed(), "['list']");

    assert_eq!(text(get(&*app, "/full")).len(), 30);
    assert_eq!(closed(), "['list', '/full']");

    // The client goes away after the first piece: dropping the stream closes it.
    let res = get(&*app, "/gone");
    assert_eq!(closed(), "['list', '/full']");
    drop(res);
    assert_eq!(closed(), "['list', '/full', '/gone']");

    assert_eq!(get(&*app, "/fail-first").status, 500);
    assert!(body_of(get(&*app, "/fail-later")).is_err());
    assert!(body_of(get(&*app, "/not-bytes")).is_err());
    assert_eq!(
        closed(),
        "['list', '/full', '/gone', '/fail-first', '/fail-later', '/not-bytes']"
    );
}

#[test]
fn an_iterator_over_a_list_is_read_at_once_like_django_responses() {
    let app = app(
        "list_iterator",
        r#"
closed = []
class Response:
    def __init__(self, pieces):
        self.pieces = pieces
    def __iter__(self):
        return iter(self.pieces)
    def close(self):
        closed.append(len(self.pieces))

def app(environ, start_response):
    start_response("200 OK", [])
    if environ["PATH_INFO"] == "/bad":
        return Response([b"a", "not bytes"])
    return Response([b"", b"one ", b"two"])
"#,
    );
    let res = get(&*app, "/");
    assert!(
        matches!(res.body, Body::Bytes(ref b) if b == b"one two"),
        "{:?}",
        res.body
    );
    let res = get(&*app, "/bad");
    assert_eq!(res.status, 200, "the head went with the first piece");
    assert!(body_of(res).is_err());
    assert_eq!(eval("list_iterator", "closed"), "[3, 2]");
}

#[test]
fn a_declared_content_length_is_enforced() {
    let app = app(
        "content_length",
        r#"
def app(environ, start_response):
    n, pieces = {
        "/long": ("3", [b"hello"]),
        "/short": ("10", [b"hi"]),
        "/exact": ("5", [b"he", b"llo"]),
    }.get(environ["PATH_INFO"], ("4", None))
    start_response("200 OK", [("Content-Length", n)])
    if pieces is None:
        def gen():
            yield b"ab"
            yield b"cdef"
            yield b"never read"
        return gen()
    return pieces
"#,
    );
    assert!(matches!(get(&*app, "/long").body, Body::Bytes(ref b) if b == b"hel"));
    let short = get(&*app, "/short");
    assert!(matches!(short.body, Body::Stream { len: Some(10), .. }));
    assert_eq!(text(short), "hi");
    assert!(matches!(get(&*app, "/exact").body, Body::Bytes(ref b) if b == b"hello"));
    let streamed = get(&*app, "/gen");
    assert!(matches!(streamed.body, Body::Stream { len: Some(4), .. }));
    assert_eq!(text(streamed), "abcd");
}

#[test]
fn file_wrapper_of_a_real_file_is_sent_with_sendfile() {
    let data = apps_dir().join("payload.bin");
    std::fs::write(&data, b"0123456789abcdef").unwrap();
    let app = app(
        "file_wrapper",
        &format!(
            r#"
import io
PATH = {:?}
def app(environ, start_response):
    path = environ["PATH_INFO"]
    headers = [("Content-Length", "4")] if path == "/limited" else []
    start_response("200 OK", headers)
    if path == "/memory":
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"), 4)
    f = open(PATH, "rb")
    f.read(3)
    return environ["wsgi.file_wrapper"](f)
"#,
            data.display()
        ),
    );
    let res = get(&*app, "/");
    assert!(
        matches!(
            res.body,
            Body::File {
                offset: 3,
                len: 13,
                ..
            }
        ),
        "{:?}",
        res.body
    );
    assert_eq!(text(res), "3456789abcdef");
    let res = get(&*app, "/limited");
    assert!(
        matches!(
            res.body,
            Body::File {
                offset: 3,
                len: 4,
                ..
            }
        ),
        "{:?}",
        res.body
    );
    let res = get(&*app, "/memory");
    assert!(matches!(res.body, Body::Stream { .. }));
    assert_eq!(text(res), "in memory");
}

#[test]
fn exceptions_are_500_and_the_worker_serves_on() {
    let app = app(
        "raising",
        r#"
def app(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise ZeroDivisionError("nope")
    if environ["PATH_INFO"] == "/none":
        start_response("200 OK", [])
        return None
    start_response("200 OK", [])
    return [b"fine"]
"#,
    );
    let res = get(&*app, "/raise");
    assert_eq!(res.status, 500);
    assert_eq!(text(res), "internal server error\n");
    assert_eq!(get(&*app, "/none").status, 500);
    assert_eq!(text(get(&*app, "/")), "fine");
}

#[test]
fn import_errors_name_the_module_the_attribute_and_the_exception() {
    let err =
        |name: &str, source: &str, spec: &str| load_spec(name, source, spec, 1).err().unwrap();
    let e = err("imp_ok", "app = 1\n", "imp_missing_module:app");
    assert_eq!(
        e,
        "cannot import module 'imp_missing_module': ModuleNotFoundError: No module named 'imp_missing_module'"
    );
    let e = err("imp_attr", "x = 1\n", "imp_attr:app");
    assert_eq!(e, "module 'imp_attr' has no attribute 'app'");
    let e = err("imp_attr2", "class O: pass\n", "imp_attr2:O.app");
    assert_eq!(e, "module 'imp_attr2' has no attribute 'O.app'");
    let e = err("imp_call", "app = 42\n", "imp_call:app");
    assert!(e.starts_with("'imp_call:app' is not callable"), "{e}");
    let e = err("imp_syntax", "def app(:\n", "imp_syntax:app");
    assert!(
        e.starts_with("cannot import module 'imp_syntax': SyntaxError"),
        "{e}"
    );
    let e = err("imp_raise", "import imp_nothere_dep\n", "imp_raise:app");
    assert_eq!(
        e,
        "cannot import module 'imp_raise': ModuleNotFoundError: No module named 'imp_nothere_dep'"
    );
    let factory = "def make(name='x', debug=False):\n    if name == 'none':\n        return None\n    def app(e, s):\n        s('200 OK', [])\n        return [('%s %s' % (name, debug)).encode()]\n    return app\n";
    let e = err("imp_factory", factory, "imp_factory:make(open('x'))");
    assert!(e.contains("must be Python literals"), "{e}");
    let e = err("imp_factory2", factory, "imp_factory2:make(*[1])");
    assert!(e.contains("*args is not a literal"), "{e}");
    let e = err("imp_factory3", factory, "imp_factory3:make('none')");
    assert!(e.contains("returned None"), "{e}");
    let e = err("imp_factory4", factory, "imp_factory4:make(1, 2, 3)");
    assert!(
        e.starts_with("application factory 'imp_factory4:make' failed: TypeError"),
        "{e}"
    );
    let app = load_spec(
        "imp_factory5",
        factory,
        r#"imp_factory5:make("y", debug=True)"#,
        1,
    )
    .unwrap();
    assert_eq!(text(get(&*app, "/")), "y True");
}

#[test]
fn a_module_alone_serves_its_application_callable() {
    let app = load_spec(
        "bare_module",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'bare']\n",
        "bare_module",
        1,
    )
    .unwrap();
    assert_eq!(text(get(&*app, "/")), "bare");
}

#[test]
fn without_preload_nothing_is_imported_until_init_worker() {
    let opts = PythonOptions {
        preload: false,
        ..options(1)
    };
    let app = load("never_written_module:app", &opts).unwrap();
    assert_eq!(get(&*app, "/").status, 500);
    let err = app.init_worker().err().unwrap();
    assert!(
        err.contains("No module named 'never_written_module'"),
        "{err}"
    );
    assert!(load("bad spec", &opts).is_err());
}

#[test]
fn wsgiref_validator_finds_nothing_to_complain_about() {
    let app = app(
        "validated",
        r#"
import warnings
from wsgiref.validate import validator, WSGIWarning
warnings.simplefilter("error", WSGIWarning)

def inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"].readline()
    environ["wsgi.input"].readlines()
    environ["wsgi.errors"].write("validated request\n")
    environ["wsgi.errors"].writelines(["a\n"])
    environ["wsgi.errors"].flush()
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"<")
    if environ["PATH_INFO"] == "/stream":
        def gen():
            yield b"streamed "
            yield body
        return gen()
    return [body, b">"]

app = validator(inner)
"#,
    );
    let req = Request::for_test(
        "POST",
        "/",
        &[("Host", "h"), ("Content-Length", "4")],
        b"data",
    );
    let res = call(&*app, req);
    assert_eq!(res.status, 200);
    assert_eq!(text(res), "<data>");
    let req = Request::for_test(
        "POST",
        "/stream",
        &[("Host", "h"), ("Content-Length", "4")],
        b"data",
    );
    let res = call(&*app, req);
    assert_eq!(res.status, 200);
    assert_eq!(text(res), "<streamed data");
    let req = Request::for_test("GET", "/?q=1", &[("Host", "h")], b"");
    assert_eq!(text(call(&*app, req)), "<>");
}

#[test]
fn many_threads_call_at_once() {
    std::fs::write(
        apps_dir().join("threaded.py"),
        r#"
import threading
def app(environ, start_response):
    data = environ["wsgi.input"].read()
    start_response("200 OK", [])
    return [data, environ["wsgi.multithread"] and b"+" or b"-"]
"#,
    )
    .unwrap();
    let app = load("threaded:app", &options(4)).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let app = Arc::clone(&app);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let body = format!("{t}-{i}");
                    let res = call(&*app, Request::for_test("POST", "/", &[], body.as_bytes()));
                    assert_eq!(text(res), format!("{body}+"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_stream_dropped_on_the_loop_thread_is_closed_by_the_janitor() {
    std::fs::write(
        apps_dir().join("janitor.py"),
        r#"
import threading
closed = []
def app(environ, start_response):
    start_response("200 OK", [])
    called_on = threading.get_ident()
    def gen():
        try:
            yield b"a"
            yield b"b"
        finally:
            closed.append("elsewhere" if threading.get_ident() != called_on else "loop thread")
    return gen()
"#,
    )
    .unwrap();
    let app = load("janitor:app", &options(4)).unwrap();
    // This thread plays the event loop: init_worker records it.
    let loop_thread = std::thread::spawn(move || {
        app.init_worker().unwrap();
        let res = get(&*app, "/");
        drop(res);
    });
    loop_thread.join().unwrap();
    let mut closed = String::new();
    for _ in 0..500 {
        closed = eval("janitor", "closed");
        if closed != "[]" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(closed, "['elsewhere']");
}

#[test]
fn errors_stream_and_fork_hooks_are_safe_to_call() {
    interp::attach(|_| ());
    // Not between a fork: the after-fork calls without a before_fork do nothing.
    interp::after_fork_parent();
    interp::after_fork_child();
    interp::before_fork();
    interp::after_fork_parent();
    let app = app(
        "errors_stream",
        r#"
def app(environ, start_response):
    n = environ["wsgi.errors"].write("partial")
    environ["wsgi.errors"].write(" line\nnext")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [])
    return [str(n).encode()]
"#,
    );
    assert_eq!(text(get(&*app, "/")), "7");
}
