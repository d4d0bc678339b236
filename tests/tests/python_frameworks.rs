//! Black-box: Flask and Django applications served from the test virtualenv (made on
//! first use, see `ferrocorn_tests::python::test_venv`; the tests skip loudly without it,
//! and fail under `CI=true`), and the three ways a virtualenv is found: `VIRTUAL_ENV`, its
//! `bin/` first on `PATH`, and `--virtualenv DIR`.

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::Duration;

use ferrocorn_tests::python::{base_python_imports, python_server, test_venv, Venv};
use ferrocorn_tests::{connect, read_response, Response, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn flask(venv: &Venv, args: &[&str]) -> Server {
    venv.activate(python_server())
        .args(args)
        .args(["flask_app:app"])
        .start()
}

fn send(server: &Server, raw: &[u8]) -> Response {
    server
        .request(raw)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()))
}

/// `POST path` with `content_type` and `body`, `Connection: close`.
fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn assert_json(r: &Response, server: &Server, expected: Value) {
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.stderr());
    assert_eq!(r.json(), expected);
}

#[test]
fn flask_form_and_json() {
    let Some(venv) = test_venv() else { return };
    let server = flask(venv, &[]);
    let r = send(
        &server,
        &post(
            "/form",
            "application/x-www-form-urlencoded",
            b"name=Ada+Lovelace&tag=a&tag=b%26c",
        ),
    );
    assert_json(
        &r,
        &server,
        json!({"name": "Ada Lovelace", "tags": ["a", "b&c"]}),
    );
    let r = send(
        &server,
        &post("/json", "application/json", br#"{"numbers": [1, 2, 3.5]}"#),
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_json(
        &r,
        &server,
        json!({"sum": 6.5, "received": {"numbers": [1, 2, 3.5]}}),
    );
}

#[test]
fn flask_multipart_upload() {
    let Some(venv) = test_venv() else { return };
    // 100 KiB: beyond what the worker buffers before calling the application.
    let file: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 251) as u8).collect();
    let boundary = "ferrocorn-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi there\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    for threads in ["1", "4"] {
        let server = flask(venv, &["--threads", threads]);
        let r = send(
            &server,
            &post(
                "/upload",
                &format!("multipart/form-data; boundary={boundary}"),
                &body,
            ),
        );
        assert_json(
            &r,
            &server,
            json!({"filename": "data.bin", "size": file.len(), "pattern_ok": true, "note": "hi there"}),
        );
    }
}

#[test]
fn flask_streamed_response() {
    let Some(venv) = test_venv() else { return };
    let server = flask(venv, &[]);
    let r = send(
        &server,
        b"GET /stream?n=1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "no length is known in advance"
    );
    let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    assert!(r.text() == expected, "{}", r.text());
}

#[test]
fn flask_redirects_cookies_and_errors() {
    let Some(venv) = test_venv() else { return };
    let server = flask(venv, &[]);
    let mut stream = connect(server.addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |path: &str| {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        read_response(&mut reader, false)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", server.stderr()))
    };

    let r = ask("/redirect");
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_string();
    assert!(location.ends_with("/target"), "{location}");
    let r = ask("/target");
    assert_eq!((r.status, r.text().as_str()), (200, "redirected here"));

    let r = ask("/cookies");
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(cookies.len(), 2, "two Set-Cookie fields: {:?}", r.headers);
    assert!(cookies[0].starts_with("first=1"), "{cookies:?}");
    assert!(
        cookies[1].starts_with("second=2") && cookies[1].contains("HttpOnly"),
        "{cookies:?}"
    );

    assert_eq!(ask("/missing").status, 404);
    assert_eq!(ask("/boom").status, 500);
    // Flask logs the traceback to wsgi.errors, which is the error log.
    assert!(
        server.wait_for_log("flask_app: boom on purpose", WAIT),
        "{}",
        server.stderr()
    );
    let r = ask("/target");
    assert_eq!(r.status, 200, "the connection serves on after the 500");
}

#[test]
fn django_single_file_project() {
    let Some(venv) = test_venv() else { return };
    let server = venv.activate(python_server()).args(["django_site"]).start();
    let r = send(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Django"),
        "{}",
        server.stderr()
    );
    let r = send(
        &server,
        &post(
            "/echo?q=1",
            "application/x-www-form-urlencoded",
            b"name=Ada",
        ),
    );
    assert_json(
        &r,
        &server,
        json!({"method": "POST", "name": "Ada", "q": "1", "script_name": "", "path": "/echo", "path_info": "/echo"}),
    );
    let r = send(
        &server,
        &post("/guarded", "application/x-www-form-urlencoded", b"name=Ada"),
    );
    assert_eq!(r.status, 403, "Django's CSRF check: {}", r.text());
}

#[test]
fn django_under_a_root_path() {
    let Some(venv) = test_venv() else { return };
    let server = venv
        .activate(python_server())
        .args(["--root-path", "/site", "django_site"])
        .start();
    let r = send(
        &server,
        &post(
            "/site/echo",
            "application/x-www-form-urlencoded",
            b"name=Ada",
        ),
    );
    assert_json(
        &r,
        &server,
        json!({"method": "POST", "name": "Ada", "q": null, "script_name": "/site", "path": "/site/echo", "path_info": "/echo"}),
    );
}

/// Checks, from flask_app's /where, that Flask and every site-packages directory on
/// `sys.path` come from `venv`, and `sys.prefix` is the virtualenv.
fn assert_only_the_venv(server: &Server, venv: &Venv, how: &str) {
    let r = send(
        server,
        b"GET /where HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{how}: {}\n{}", r.text(), server.stderr());
    let where_ = r.json();
    let root = venv.dir().canonicalize().unwrap();
    let inside = |value: &Value| {
        value
            .as_str()
            .and_then(|path| Path::new(path).canonicalize().ok())
            .is_some_and(|path| path.starts_with(&root))
    };
    assert!(inside(&where_["flask_file"]), "{how}: {where_:#}");
    assert!(inside(&where_["prefix"]), "{how}: {where_:#}");
    for entry in where_["path"].as_array().unwrap() {
        if entry.as_str().is_some_and(|p| p.contains("site-packages")) {
            assert!(
                inside(entry),
                "{how}: only the virtualenv's site-packages: {where_:#}"
            );
        }
    }
}

#[test]
fn an_activated_virtualenv_is_used() {
    let Some(venv) = test_venv() else { return };
    let server = flask(venv, &[]);
    assert_only_the_venv(&server, venv, "VIRTUAL_ENV and PATH");
    drop(server);

    // Its bin/ first on PATH, without VIRTUAL_ENV, counts as activated.
    let server = venv
        .activate(python_server())
        .env_remove("VIRTUAL_ENV")
        .args(["flask_app:app"])
        .start();
    assert_only_the_venv(&server, venv, "bin/ first on PATH");
}

/// Starts `spec` without any virtualenv: it must fail to import `module`, which only the
/// virtualenv has (unless the base Python has it too, which the test then says and skips).
fn without_venv_it_is_not_found(spec: &str, module: &str) {
    if base_python_imports(module) {
        eprintln!(
            "note: the base Python imports {module} by itself; that {spec} fails without a \
             virtualenv is not checked on this machine"
        );
        return;
    }
    let (status, stderr) = python_server().args([spec]).run_to_exit(WAIT * 2);
    assert!(
        status.is_some_and(|s| !s.success()),
        "{spec}: {status:?}\n{stderr}"
    );
    assert!(
        stderr.contains("ModuleNotFoundError") && stderr.contains(module),
        "{spec}: {stderr}"
    );
}

#[test]
fn virtualenv_flag_serves_from_a_virtualenv_that_is_not_activated() {
    let Some(venv) = test_venv() else { return };
    let venv_arg = venv.dir().display().to_string();
    let server = python_server()
        .args(["--virtualenv", &venv_arg, "flask_app:app"])
        .start();
    assert_only_the_venv(&server, venv, "--virtualenv");
    drop(server);

    let server = python_server()
        .args(["--virtualenv", &venv_arg, "django_site"])
        .start();
    let r = send(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "Hello from Django"));
    drop(server);

    without_venv_it_is_not_found("flask_app:app", "flask");
    without_venv_it_is_not_found("django_site", "django");
}
