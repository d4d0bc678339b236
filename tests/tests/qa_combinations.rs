//! Black-box regression tests for defects found where features meet (TLS with the PROXY
//! protocol, WebSockets, ASGI, recycling, logs, statsd, configuration), by using the real
//! binary as a new user would; each test names the bug it pins down.

use std::io::{BufReader, Write};

use ferrocorn_tests::tls::Pki;
use ferrocorn_tests::{read_response, wait_until, Server, IO_TIMEOUT};

/// `--certfile` and `--keyfile` of `pki`, then `args`.
fn tls_args<'a>(pki: &'a Pki, args: &[&'a str]) -> Vec<String> {
    let mut all = vec![
        "--certfile".to_string(),
        pki.path("server.pem").display().to_string(),
        "--keyfile".to_string(),
        pki.path("server.key").display().to_string(),
    ];
    all.extend(args.iter().map(ToString::to_string));
    all
}

/// Bug: with `--proxy-protocol` on a TLS listener, the PROXY header a proxy sends in the
/// clear before the ClientHello (HAProxy's `send-proxy`, as nginx's `listen ... ssl
/// proxy_protocol` reads it) was taken for plain HTTP: the client got a plain `400` instead
/// of a handshake. The header is now read before the session starts, whether it arrives
/// alone or in one packet with the ClientHello; the address it names is the request's peer.
#[test]
fn bug_a_proxy_header_before_the_tls_handshake_is_read_in_the_clear() {
    let pki = Pki::new("qa-proxy-tls");
    let server = Server::builder()
        .args(tls_args(
            &pki,
            &[
                "--proxy-protocol",
                "auto",
                "--proxy-allow-from",
                "127.0.0.1",
                "--access-logfile",
                "-",
                "--access-logformat",
                "%(h)s %(r)s %(s)s",
                "echo",
            ],
        ))
        .start();
    let client = pki.client();
    let v1 = b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 443\r\n".to_vec();
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[10, 4, 5, 6, 10, 0, 0, 1, 0x15, 0xb3, 0x01, 0xbb]);
    let cases: [(&str, &[u8], bool, &str); 5] = [
        ("v1 alone", &v1, false, "10.1.2.3 GET /v1-alone"),
        (
            "v1 with the ClientHello",
            &v1,
            true,
            "10.1.2.3 GET /v1-with",
        ),
        ("v2 alone", &v2, false, "10.4.5.6 GET /v2-alone"),
        (
            "v2 with the ClientHello",
            &v2,
            true,
            "10.4.5.6 GET /v2-with",
        ),
        // Without a header (optional in `auto`), a direct client still works.
        ("no header", b"", false, "127.0.0.1 GET /none"),
    ];
    for (name, prefix, same_write, line) in cases {
        let path = line.split(' ').nth(2).unwrap();
        let mut stream = client
            .connect_after(server.addr, prefix, same_write)
            .unwrap_or_else(|e| panic!("{name}: handshake: {e}\n{}", server.stderr()));
        let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).unwrap();
        stream.flush().unwrap();
        let response = read_response(&mut BufReader::new(stream), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(response.status, 200, "{name}: {}", response.text());
        assert!(
            wait_until(IO_TIMEOUT, || server.stdout().contains(line)),
            "{name}: no access log line {line:?} in {}",
            server.stdout()
        );
    }
    // A malformed header is refused in the clear, as plain HTTP on a TLS port is.
    let response = ferrocorn_tests::request(server.addr, b"PROXY TCP4 nonsense\r\n").unwrap();
    assert_eq!(response.status, 400, "{}", response.text());
}

/// Bug: a TLS file that cannot be used stopped the start (and `--check-config`) with the
/// setting and the file but not where the value came from, as every other configuration
/// error says it; and a relative path, looked for in `chdir`, did not say so.
#[test]
fn bug_tls_file_errors_name_the_source_of_the_value() {
    let dir = ferrocorn_tests::TempDir::new("qa-tls-source");
    let config = dir.join("ferrocorn.toml");
    std::fs::write(&config, "workers = 1\ncertfile = \"/no/such/cert.pem\"\n").unwrap();
    let file_source = format!("file {} line 2", config.display());
    // (what, arguments, environment, the line expected on stderr)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, String);
    let cases: [Case; 4] = [
        (
            "cli",
            vec!["--certfile", "/no/such/cert.pem"],
            vec![],
            "TLS: cli --certfile: certfile /no/such/cert.pem: cannot read it".to_string(),
        ),
        (
            "env",
            vec![],
            vec![("FERROCORN_CERTFILE", "/no/such/cert.pem")],
            "TLS: env FERROCORN_CERTFILE: certfile /no/such/cert.pem: cannot read it".to_string(),
        ),
        (
            "file",
            vec!["-c", config.to_str().unwrap()],
            vec![],
            format!("TLS: {file_source}: certfile /no/such/cert.pem: cannot read it"),
        ),
        (
            "relative, in chdir",
            vec![
                "--certfile",
                "cert.pem",
                "--chdir",
                dir.path().to_str().unwrap(),
            ],
            vec![],
            format!(
                "TLS: cli --certfile: certfile cert.pem (in {}): cannot read it",
                dir.path().display()
            ),
        ),
    ];
    for (name, args, env, expected) in cases {
        for check in [false, true] {
            let mut builder = Server::builder().no_default_bind();
            if check {
                builder = builder.args(["--check-config"]);
            } else {
                builder = builder.args(["--bind", "127.0.0.1:0"]);
            }
            for (key, value) in &env {
                builder = builder.env(key, value);
            }
            let (status, stderr) = builder
                .args(args.iter().copied())
                .args(["hello"])
                .run_to_exit(std::time::Duration::from_secs(30));
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(2),
                "{name} (check {check}): {stderr}"
            );
            assert!(
                stderr.contains(&expected),
                "{name} (check {check}): want {expected:?} in {stderr}"
            );
        }
    }
}

/// Bug: an ASGI application in a module named like a built-in application (`echo:app`,
/// `python:hello`, `helo:app`) was wrapped for the built-in name hint by a wrapper that did
/// not pass `App::deferred` on: its event loop never started, no lifespan ran, and every
/// request was a 500 ("the WSGI application ... is not loaded").
#[test]
fn bug_an_asgi_app_in_a_module_named_like_a_builtin_is_served_as_asgi() {
    let dir = ferrocorn_tests::TempDir::new("qa-asgi-builtin-name");
    std::fs::write(
        dir.join("echo.py"),
        "async def app(scope, receive, send):\n\
         \x20   if scope['type'] == 'lifespan':\n\
         \x20       while True:\n\
         \x20           message = await receive()\n\
         \x20           if message['type'] == 'lifespan.startup':\n\
         \x20               scope['state']['ready'] = 'lifespan ran'\n\
         \x20               await send({'type': 'lifespan.startup.complete'})\n\
         \x20           else:\n\
         \x20               await send({'type': 'lifespan.shutdown.complete'})\n\
         \x20               return\n\
         \x20   body = f\"{scope['state']['ready']}, {scope['scheme']}\".encode()\n\
         \x20   await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n\
         \x20   await send({'type': 'http.response.body', 'body': body})\n",
    )
    .unwrap();
    for (args, app) in [
        (&["-k", "asgi"][..], "echo:app"),
        (&[][..], "echo:app"),
        (&["-k", "asgi"][..], "python:echo:app"),
    ] {
        let mut server = ferrocorn_tests::python::python_server()
            .cwd(dir.path())
            .args(["--workers", "1"])
            .args(args)
            .args([app])
            .start();
        let response = server.get("/").unwrap();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "lifespan ran, http"),
            "{args:?} {app}: {}",
            server.stderr()
        );
        server.signal(ferrocorn_tests::Signal::SIGTERM);
        assert!(
            server
                .wait_exit(std::time::Duration::from_secs(30))
                .is_some(),
            "{app}: no exit after TERM"
        );
        assert!(
            server.stderr().contains("Worker exiting"),
            "{app}: the worker did not stop gracefully: {}",
            server.stderr()
        );
    }
}

/// Bug: `--asgi-loop uvloop` where uvloop is not installed passed `--check-config` and only
/// failed in each booting worker's event loop thread, with a message naming neither the
/// setting nor what to do. The import of the application now judges it, so both say so.
#[test]
fn bug_asgi_loop_uvloop_without_uvloop_fails_check_config_naming_the_setting() {
    use ferrocorn_tests::python::{base_python_imports, python_server};
    if base_python_imports("uvloop") {
        eprintln!("skipped: the base Python has uvloop");
        return;
    }
    let expected = "asgi_loop is uvloop, but uvloop cannot be imported";
    for check in [true, false] {
        let mut builder = python_server().no_default_bind();
        builder = if check {
            builder.args(["--check-config"])
        } else {
            builder.args(["--bind", "127.0.0.1:0"])
        };
        let (status, stderr) = builder
            .args(["--asgi-loop", "uvloop", "asgi_app:app"])
            .run_to_exit(std::time::Duration::from_secs(30));
        assert_ne!(
            status.and_then(|s| s.code()),
            Some(0),
            "check {check}: {stderr}"
        );
        assert!(stderr.contains(expected), "check {check}: {stderr}");
        assert!(stderr.contains("set asgi_loop to auto"), "{stderr}");
    }
    // `auto` falls back to asyncio.
    let server = python_server()
        .args(["--asgi-loop", "auto", "asgi_app:no_lifespan"])
        .start();
    assert_eq!(server.get("/").unwrap().status, 200);
}

/// Bug: Ctrl-C in a terminal sends SIGINT to the whole process group, so each worker got
/// it twice (from the terminal and from the arbiter). A second stop signal still pending
/// when the worker restored its signal mask on the way out killed it, and the arbiter logged
/// "[ERROR] Worker (pid:N) was killed by int" for a clean stop (one run in two or three).
#[test]
fn bug_ctrl_c_to_the_process_group_stops_every_worker_cleanly() {
    for run in 0..8 {
        let mut server = Server::builder()
            .own_process_group()
            .args(["--workers", "4", "hello"])
            .start();
        assert!(
            server.wait_for_workers(4, IO_TIMEOUT),
            "{}",
            server.stderr()
        );
        assert_eq!(server.get("/").unwrap().status, 200);
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(server.pid),
            ferrocorn_tests::Signal::SIGINT,
        )
        .expect("signal the server's process group");
        assert!(
            server
                .wait_exit(std::time::Duration::from_secs(30))
                .is_some(),
            "run {run}: no exit"
        );
        let log = server.stderr();
        assert!(!log.contains("killed by"), "run {run}: {log}");
        assert_eq!(log.matches("Worker exiting").count(), 4, "run {run}: {log}");
    }
}

/// The bad-input corpus over TLS gets what it gets over TCP: the same status for each case
/// (within `expect_any`), `Connection: close`, and nothing served after it. (A guard where
/// the parser and the TLS layer meet; no defect found.)
#[test]
fn the_bad_input_corpus_over_tls_is_answered_as_over_tcp() {
    let Some(corpus) = ferrocorn_tests::corpus::bad_inputs() else {
        return;
    };
    let limits: Vec<&str> = corpus.limit_args.iter().map(String::as_str).collect();
    let pki = Pki::new("qa-corpus-tls");
    let tls = Server::builder()
        .args(tls_args(&pki, &limits))
        .args(["echo"])
        .start();
    let plain = Server::builder().args(&limits).args(["echo"]).start();
    let client = pki.client();
    let mut failures = Vec::new();
    for case in &corpus.cases {
        let name = &case.name;
        let over_tcp = plain.request(&case.raw).map(|r| r.status).ok();
        let mut stream = client.connect(tls.addr).expect("handshake");
        // The server may answer and close before reading everything.
        let _ = stream.write_all(&case.raw).and_then(|()| stream.flush());
        let mut reader = BufReader::new(stream);
        let response = match read_response(&mut reader, false) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: no response over TLS: {e}"));
                continue;
            }
        };
        if Some(response.status) != over_tcp {
            failures.push(format!(
                "{name}: {} over TLS, {over_tcp:?} over TCP",
                response.status
            ));
        }
        ferrocorn_tests::corpus::check_closing_answer(
            name,
            " over TLS",
            &response,
            &mut reader,
            &mut failures,
        );
    }
    assert_eq!(client.get(tls.addr, "/after").unwrap().status, 200);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}
