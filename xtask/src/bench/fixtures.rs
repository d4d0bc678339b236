//! The files the servers under test serve or read, written under `.bench/` by every run:
//! the 1 MiB static file, the WSGI apps, the TLS certificate, and nginx's configuration.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::scenario::{STATIC_FILE_BYTES, STATIC_FILE_NAME};
use super::servers::{BenchDir, WORKERS};

/// Writes the static file, the WSGI apps and the directories the servers need.
pub fn write_fixtures(dir: &BenchDir) -> Result<()> {
    for sub in [
        "static",
        "wsgi",
        "nginx/tmp",
        "nginx-tls/tmp",
        "logs",
        "wrk",
        "tls",
    ] {
        fs::create_dir_all(dir.abs(sub))
            .with_context(|| format!("could not create {}", dir.abs(sub).display()))?;
    }
    let file = dir.abs("static").join(STATIC_FILE_NAME);
    if fs::metadata(&file).map(|m| m.len()).ok() != Some(STATIC_FILE_BYTES as u64) {
        // A fixed pseudo-random pattern (xorshift), so that no layer can compress it.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..STATIC_FILE_BYTES)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        fs::write(&file, bytes).with_context(|| format!("could not write {}", file.display()))?;
    }
    write_certificate(&dir.abs("tls"))?;
    for (name, text) in [
        ("bench_app.py", WSGI_APP),
        ("wsgi_hello.py", WSGI_HELLO_APP),
        ("wsgi_echo.py", WSGI_ECHO_APP),
        ("wsgi_loop.py", WSGI_LOOP),
        ("asgi_hello.py", ASGI_HELLO_APP),
    ] {
        let app = dir.abs("wsgi").join(name);
        fs::write(&app, text).with_context(|| format!("could not write {}", app.display()))?;
    }
    Ok(())
}

/// The WSGI hello app (`wsgi_hello:app`) that ferrocorn, gunicorn and granian all run: one
/// bytes object, with `Content-Type` and `Content-Length`, as the simplest real app does.
pub const WSGI_HELLO_APP: &str = r#""""WSGI hello for `cargo xtask bench`, written by the task."""

BODY = b"Hello, World!\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
"#;

/// The ASGI hello app (`asgi_hello:app`) that ferrocorn, granian, uvicorn and gunicorn's
/// `asgi` worker run: a raw ASGI 3.0 function, the head with `Content-Length`, one body
/// message; it ignores the lifespan scope (returns at once, which every server accepts).
pub const ASGI_HELLO_APP: &str = r#""""ASGI hello for `cargo xtask bench`, written by the task."""

BODY = b"Hello, World!\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"14")],
}
MESSAGE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(START)
    await send(MESSAGE)
"#;

/// Calls a WSGI app `module:callable` N times with no server (`python wsgi_loop.py
/// wsgi_hello:app 2000`): the environ a server would pass for the bench's GET, prepared
/// once, and a `start_response` that does nothing. callgrind counts it to tell the app's
/// own instructions from the server's.
pub const WSGI_LOOP: &str = r#""""Calls a WSGI app N times with no server, for `cargo xtask bench`'s callgrind count."""
import importlib
import io
import sys

module, _, name = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), name or "application")
environ = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
    "RAW_URI": "/", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
    "HTTP_HOST": "127.0.0.1:8000", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": False,
    "wsgi.multiprocess": True, "wsgi.run_once": False,
}


def start_response(status, headers, exc_info=None):
    return None


for _ in range(int(sys.argv[2])):
    for piece in app(environ, start_response):
        pass
"#;

/// The WSGI echo app (`wsgi_echo:app`): reads `CONTENT_LENGTH` bytes from `wsgi.input` and
/// returns them.
pub const WSGI_ECHO_APP: &str = r#""""WSGI echo for `cargo xtask bench`, written by the task."""


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// The WSGI app gunicorn serves: the same three answers as ferrocorn's `hello`, `echo` and
/// `static:.bench/static`, chosen by path. If ferrocorn's built-in apps change what they
/// answer, change this too.
pub const WSGI_APP: &str = r#""""WSGI app for `cargo xtask bench`, written by the task: ferrocorn's hello, echo and static apps."""
import json
import os

HELLO = b"Hello, World!\n"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "static")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [[k[5:].replace("_", "-").title(), v] for k, v in environ.items() if k.startswith("HTTP_")]
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers.append([name, environ[key]])
        out = json.dumps({
            "method": environ["REQUEST_METHOD"],
            "target": environ.get("RAW_URI", path),
            "version": environ["SERVER_PROTOCOL"],
            "headers": headers,
            "body": body.decode("latin-1"),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]
    if path.startswith("/file-"):
        name = os.path.basename(path)
        try:
            f = open(os.path.join(STATIC_DIR, name), "rb")
        except OSError:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
            return [b"not found\n"]
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 65536)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]
"#;

/// The TLS scenarios' certificate and key in `.bench/tls/`: ECDSA P-256, self-signed for
/// 127.0.0.1, served by ferrocorn and nginx alike.
pub const TLS_CERT: &str = "cert.pem";
pub const TLS_KEY: &str = "key.pem";

/// Makes the certificate with the `openssl` command, unless it is there.
fn write_certificate(tls: &Path) -> Result<()> {
    if tls.join(TLS_CERT).exists() && tls.join(TLS_KEY).exists() {
        return Ok(());
    }
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            TLS_KEY,
            "-out",
            TLS_CERT,
            "-days",
            "3650",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            // An end-entity certificate (webpki refuses a CA's as a server's), which the
            // client trusts as its own root.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .current_dir(tls)
        .output()
        .context("could not run openssl (the TLS scenarios need it for their certificate)")?;
    if !output.status.success() {
        bail!(
            "openssl could not make the TLS certificate: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The nginx configuration for `port`: `return 200` for hello, the static directory for the
/// file, `worker_processes` as for the others; all paths under its prefix (`.bench/nginx/`,
/// `.bench/nginx-tls/`). With `tls` (the directory of the certificate) the listener speaks
/// TLS 1.2 and 1.3 as ferrocorn's does (nginx's defaults otherwise: session tickets on, no
/// session cache, no kTLS).
pub fn nginx_conf(port: u16, static_dir: &Path, run_as_root: bool, tls: Option<&Path>) -> String {
    let listen = match tls {
        None => format!("listen 127.0.0.1:{port};"),
        Some(dir) => format!(
            "listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;",
            cert = dir.join(TLS_CERT).display(),
            key = dir.join(TLS_KEY).display()
        ),
    };
    let user = if run_as_root {
        // As root nginx would switch its workers to `nobody`; keep them the current user.
        "user root;\n"
    } else {
        ""
    };
    format!(
        "# generated by `cargo xtask bench`
worker_processes {WORKERS};
daemon off;
pid nginx.pid;
error_log stderr warn;
{user}events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # Not the stock 1000: closing every 1000th keep-alive connection would handicap nginx.
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {{
        {listen}
        location = /{STATIC_FILE_NAME} {{
            root {static};
        }}
        location / {{
            default_type text/plain;
            return 200 \"Hello, World!\\n\";
        }}
    }}
}}
",
        static = static_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_runs_as_many_workers_as_the_others() {
        let conf = nginx_conf(8002, Path::new("/project/.bench/static"), false, None);
        assert!(conf.contains("worker_processes 2;"));
        assert!(conf.contains("listen 127.0.0.1:8002;"));
        assert!(!conf.contains("user root"));
        assert!(conf.contains("return 200 \"Hello, World!\\n\";"));
    }
}
