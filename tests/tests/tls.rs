//! Black-box: TLS on the listeners (`--certfile`), with real clients (`curl`, `openssl
//! s_client`, Python's `ssl`) and a rustls client, against certificates each test makes
//! with the `openssl` command (`ferrocorn_tests::tls::Pki`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ferrocorn_tests::python::python_server;
use ferrocorn_tests::tls::{client_hello, run_client, ClientRun, Pki};
use ferrocorn_tests::{
    connect, read_response, request, wait_until, Load, Server, ServerBuilder, Signal,
};
use rustls::HandshakeKind;

const WAIT: Duration = Duration::from_secs(30);

/// `--certfile server.pem --keyfile server.key` for `pki`, then `args`.
fn tls_server(pki: &Pki, args: &[&str]) -> ServerBuilder {
    Server::builder()
        .args([
            "--certfile",
            pki.path("server.pem").to_str().unwrap(),
            "--keyfile",
            pki.path("server.key").to_str().unwrap(),
        ])
        .args(args)
}

/// `curl -sS --cacert ca.pem ARGS https://localhost:PORT/PATH` (localhost pinned to
/// 127.0.0.1), verbose on stderr.
fn curl(pki: &Pki, addr: SocketAddr, path: &str, args: &[&str]) -> ClientRun {
    curl_as(pki, addr, "localhost", path, args)
}

fn curl_as(pki: &Pki, addr: SocketAddr, host: &str, path: &str, args: &[&str]) -> ClientRun {
    let port = addr.port();
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-v", "--max-time", "20", "--cacert"])
        .arg(pki.path("ca.pem"))
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(args)
        .arg(format!("https://{host}:{port}{path}"));
    run_client(command, b"", WAIT)
}

/// `openssl s_client` to `addr` with `args`, sending `input` and waiting for the server to
/// close the connection.
fn s_client(pki: &Pki, addr: SocketAddr, args: &[&str], input: &[u8]) -> ClientRun {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-ign_eof",
            "-connect",
            &addr.to_string(),
            "-CAfile",
        ])
        .arg(pki.path("ca.pem"))
        .args(["-verify_return_error", "-servername", "localhost"])
        .args(args);
    run_client(command, input, WAIT)
}

/// Reads until the server closes the connection; fails if it stays open past the timeout.
fn read_until_closed(stream: &mut impl Read) -> Vec<u8> {
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection ({e}): {received:?}"),
    }
    received
}

#[test]
fn curl_is_served_over_tls_1_3_and_1_2_with_alpn_http_1_1() {
    let pki = Pki::new("tls-curl");
    let server = tls_server(&pki, &["hello"]).start();
    assert!(
        server.stderr().contains("Listening at: https://127.0.0.1:"),
        "{}",
        server.stderr()
    );
    let run = curl(&pki, server.addr, "/", &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout, "Hello, World!\n");
    assert!(
        run.stderr.contains("SSL connection using TLSv1.3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ALPN: server accepted http/1.1"),
        "{}",
        run.stderr
    );

    let run = curl(&pki, server.addr, "/", &["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout, "Hello, World!\n");
    assert!(
        run.stderr.contains("SSL connection using TLSv1.2"),
        "{}",
        run.stderr
    );
}

#[test]
fn openssl_s_client_gets_pipelined_answers_on_one_connection_in_both_versions() {
    let pki = Pki::new("tls-s-client");
    let server = tls_server(&pki, &["echo"]).start();
    let requests = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n\
                     GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let run = s_client(&pki, server.addr, &[flag], requests);
        assert!(run.success(), "{flag}: {run:?}");
        assert!(
            run.stdout.contains(&format!("New, {version}")),
            "{flag}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("Verify return code: 0 (ok)"),
            "{}",
            run.stdout
        );
        assert_eq!(
            run.stdout.matches("HTTP/1.1 200 OK").count(),
            3,
            "{}",
            run.stdout
        );
        for target in ["\"/a\"", "\"/b\"", "\"/c\""] {
            assert!(run.stdout.contains(target), "{target}: {}", run.stdout);
        }
    }
}

#[test]
fn keep_alive_pipelining_and_100_continue_over_tls() {
    let pki = Pki::new("tls-keepalive");
    let server = tls_server(&pki, &["echo"]).start();
    let client = pki.client();
    let mut stream = client.connect(server.addr).unwrap();
    // Three pipelined requests in one write, three answers on the same connection.
    stream
        .write_all(
            b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /3 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    for target in ["/1", "/2", "/3"] {
        let response = read_response(&mut reader, false).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["target"], target);
    }
    // Then 100-continue: the interim answer before the body is sent.
    reader
        .get_mut()
        .write_all(
            b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    let interim = read_response(&mut reader, false).unwrap();
    assert_eq!(interim.status, 100);
    reader.get_mut().write_all(b"hello").unwrap();
    let response = read_response(&mut reader, false).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["body"], "hello");
    // Still the first handshake's connection.
    assert_eq!(
        reader.get_ref().conn.handshake_kind(),
        Some(HandshakeKind::Full)
    );
}

#[test]
fn large_bodies_stream_both_ways_over_tls() {
    let pki = Pki::new("tls-large");
    let files = ferrocorn_tests::TempDir::new("tls-large-files");
    let download: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(files.join("big.bin"), &download).unwrap();
    let static_app = format!("static:{}", files.path().display());
    for threads in ["1", "4"] {
        let server = tls_server(&pki, &["--threads", threads, &static_app]).start();
        let client = pki.client();
        let response = client.get(server.addr, "/big.bin").unwrap();
        assert_eq!(response.status, 200);
        assert!(
            response.body == download,
            "threads {threads}: the file differs"
        );
        let ranged = client
            .request(
                server.addr,
                b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000000-1999999\r\n\
                  Connection: close\r\n\r\n",
            )
            .unwrap();
        assert_eq!(ranged.status, 206);
        assert!(ranged.body == download[1_000_000..2_000_000]);
        drop(server);

        let server = tls_server(&pki, &["--threads", threads, "echo"]).start();
        let upload: Vec<u8> = (0..3 * 1024 * 1024u32)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        for chunked in [false, true] {
            let mut stream = client.connect(server.addr).unwrap();
            let framing = if chunked {
                "Transfer-Encoding: chunked".to_string()
            } else {
                format!("Content-Length: {}", upload.len())
            };
            write!(
                stream,
                "POST /up HTTP/1.1\r\nHost: t\r\n{framing}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            for piece in upload.chunks(100_000) {
                if chunked {
                    write!(stream, "{:x}\r\n", piece.len()).unwrap();
                }
                stream.write_all(piece).unwrap();
                if chunked {
                    stream.write_all(b"\r\n").unwrap();
                }
            }
            if chunked {
                stream.write_all(b"0\r\n\r\n").unwrap();
            }
            let response = read_response(&mut BufReader::new(stream), false).unwrap();
            assert_eq!(response.status, 200, "threads {threads}, chunked {chunked}");
            let body = response.json()["body"].as_str().unwrap().to_string();
            assert!(
                body.as_bytes() == upload,
                "threads {threads}, chunked {chunked}"
            );
        }
    }
}

#[test]
fn python_ssl_client_and_a_wsgi_app_seeing_https() {
    let pki = Pki::new("tls-python");
    let server = python_server()
        .args([
            "--certfile",
            pki.path("server.pem").to_str().unwrap(),
            "--keyfile",
            pki.path("server.key").to_str().unwrap(),
            "--access-logfile",
            "-",
            "pep3333_app",
        ])
        .start();
    let script = format!(
        "import http.client, ssl, sys\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         conn = http.client.HTTPSConnection('localhost', {port}, context=ctx, timeout=20)\n\
         conn.request('GET', '/environ')\n\
         r = conn.getresponse()\n\
         sys.stdout.write(conn.sock.version() + '\\n' + r.read().decode())\n",
        ca = pki.path("ca.pem").display().to_string(),
        port = server.addr.port()
    );
    let mut command = Command::new("python3");
    command.args(["-c", &script]);
    let run = run_client(command, b"", WAIT);
    assert!(run.success(), "{run:?}\n{}", server.stderr());
    let (version, body) = run.stdout.split_once('\n').unwrap();
    assert!(version.starts_with("TLSv1."), "{version}");
    let report: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(report["str"]["wsgi.url_scheme"], "https", "{report}");
    assert_eq!(report["str"]["SERVER_PORT"], server.addr.port().to_string());
    // The access log saw the request too.
    assert!(
        wait_until(WAIT, || server.stdout().contains("GET /environ")),
        "{}",
        server.stdout()
    );
}

#[test]
fn tls_min_version_1_3_refuses_tls_1_2_clients() {
    let pki = Pki::new("tls-min");
    let server = tls_server(&pki, &["--tls-min-version", "1.3", "hello"]).start();
    let run = curl(&pki, server.addr, "/", &["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(!run.success(), "{run:?}");
    let run = curl(&pki, server.addr, "/", &[]);
    assert!(run.success(), "{run:?}");
    assert!(run.stderr.contains("TLSv1.3"), "{}", run.stderr);
}

#[test]
fn ciphers_choose_the_suite_and_an_unknown_one_is_refused() {
    let pki = Pki::new("tls-ciphers");
    let server = tls_server(
        &pki,
        &[
            "--ciphers",
            "TLS13_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
            "hello",
        ],
    )
    .start();
    let run = curl(&pki, server.addr, "/", &[]);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr.contains("TLS_CHACHA20_POLY1305_SHA256"),
        "{}",
        run.stderr
    );
    let run = curl(&pki, server.addr, "/", &["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr.contains("ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{}",
        run.stderr
    );
    drop(server);

    let (status, stderr) = tls_server(
        &pki,
        &["--ciphers", "TLS13_AES_128_GCM_SHA256,RC4-MD5", "hello"],
    )
    .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(
        stderr.contains("ciphers") && stderr.contains("\"RC4-MD5\""),
        "{stderr}"
    );
}

#[test]
fn client_certificates_required_optional_and_missing() {
    let pki = Pki::new("tls-client-certs");
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with_cert = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];

    let server = tls_server(&pki, &["--ca-certs", ca, "--cert-reqs", "2", "hello"]).start();
    let run = curl(&pki, server.addr, "/", &with_cert);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout, "Hello, World!\n");
    let run = curl(&pki, server.addr, "/", &[]);
    assert!(
        !run.success(),
        "served without a client certificate: {run:?}"
    );
    let response = pki.client().get(server.addr, "/");
    assert!(response.is_err(), "{response:?}");
    let response = pki.client_with_certificate().get(server.addr, "/").unwrap();
    assert_eq!(response.status, 200);
    drop(server);

    let server = tls_server(&pki, &["--ca-certs", ca, "--cert-reqs", "1", "hello"]).start();
    for args in [&with_cert[..], &[]] {
        let run = curl(&pki, server.addr, "/", args);
        assert!(run.success(), "{args:?}: {run:?}");
    }
    drop(server);

    let (status, stderr) = tls_server(&pki, &["--cert-reqs", "2", "hello"]).run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains("ca_certs"), "{stderr}");
}

#[test]
fn a_wrong_server_name_fails_the_clients_check_and_nothing_else() {
    let pki = Pki::new("tls-sni");
    let server = tls_server(&pki, &["hello"]).start();
    // curl checks the name it asked for against the certificate: exit 60.
    let run = curl_as(&pki, server.addr, "wrong.example", "/", &[]);
    assert_eq!(run.status.and_then(|s| s.code()), Some(60), "{run:?}");
    let run = curl_as(&pki, server.addr, "wrong.example", "/", &["-k"]);
    assert!(run.success(), "{run:?}");
    assert!(pki
        .client()
        .connect_as(server.addr, "wrong.example")
        .is_err());
    // openssl sends the SNI and is served the one certificate.
    let run = s_client(
        &pki,
        server.addr,
        &["-servername", "other.example"],
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(run.stdout.contains("Hello, World!"), "{run:?}");
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
}

#[test]
fn a_truncated_handshake_is_cut_off_at_the_header_timeout() {
    let pki = Pki::new("tls-truncated");
    let server = tls_server(&pki, &["--header-timeout", "1", "hello"]).start();
    let hello = client_hello();
    // Half a ClientHello, then silence: closed at the header deadline, not kept forever.
    let mut stream = connect(server.addr).unwrap();
    stream.write_all(&hello[..hello.len() / 2]).unwrap();
    let received = read_until_closed(&mut stream);
    assert!(received.is_empty(), "{received:?}");
    // Half a ClientHello, then the client goes away: the worker carries on.
    let mut stream = connect(server.addr).unwrap();
    stream.write_all(&hello[..20]).unwrap();
    drop(stream);
    // A whole ClientHello and nothing after: the handshake never finishes, cut off too.
    let mut stream = connect(server.addr).unwrap();
    stream.write_all(&hello).unwrap();
    let received = read_until_closed(&mut stream);
    assert_eq!(received.first(), Some(&0x16), "the ServerHello came first");
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
}

#[test]
fn garbage_after_the_client_hello_ends_that_connection_only() {
    let pki = Pki::new("tls-garbage");
    let server = tls_server(&pki, &["hello"]).start();
    for garbage in [
        &b"\x17\x03\x03\x00\x10not a record...."[..],
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        &[0xff; 64],
    ] {
        let mut stream = connect(server.addr).unwrap();
        let mut bytes = client_hello();
        bytes.extend_from_slice(garbage);
        stream.write_all(&bytes).unwrap();
        let received = read_until_closed(&mut stream);
        assert_eq!(received.first(), Some(&0x16), "{garbage:?}: {received:?}");
        // An alert record (in TLS 1.3 disguised as application data) ends the session;
        // never an HTTP answer.
        assert!(!received.windows(5).any(|w| w == b"HTTP/"), "{received:?}");
    }
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
    assert_eq!(server.worker_pids().len(), 1, "{}", server.stderr());
}

#[test]
fn plain_http_to_the_tls_port_gets_a_plain_400_and_tls_to_a_plain_port_too() {
    let pki = Pki::new("tls-plain");
    let server = tls_server(&pki, &["hello"]).start();
    let response = request(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.status, 400);
    assert!(response.text().contains("TLS port"), "{}", response.text());
    assert_eq!(response.header("connection"), Some("close"));
    drop(server);

    let plain = Server::start(["hello"]);
    let mut stream = connect(plain.addr).unwrap();
    stream.write_all(&client_hello()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 400"), "{line:?}");
}

#[test]
fn session_tickets_resume_on_another_worker_of_the_generation() {
    let pki = Pki::new("tls-resume");
    let server = tls_server(&pki, &["--workers", "2", "--threads", "1", "echo"]).start();
    assert!(server.wait_for_workers(2, WAIT));
    let client = pki.client();
    // A full handshake; reading an answer brings the tickets (sent after it) in.
    let mut first = client.connect(server.addr).unwrap();
    assert_eq!(first.conn.handshake_kind(), Some(HandshakeKind::Full));
    first
        .write_all(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = BufReader::new(first);
    assert_eq!(read_response(&mut first, false).unwrap().status, 200);
    // That worker is now busy (threads 1: the call runs on its loop) for 2 s, so the
    // next connection is served by the other one, resuming with the first one's ticket.
    first
        .get_mut()
        .write_all(b"GET /delay/2000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut second = client.connect(server.addr).unwrap();
    assert_eq!(second.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    second
        .write_all(b"GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_response(&mut BufReader::new(second), false).unwrap();
    assert_eq!(answer.status, 200);
    // The first worker was still in its delay: the second answer came from the other.
    let delayed = read_response(&mut first, false).unwrap();
    assert_eq!(delayed.status, 200);
}

/// Copies the PKI's `NAME.pem` and `NAME.key` to `live.pem` and `live.key`.
fn install(pki: &Pki, name: &str) {
    for ext in ["pem", "key"] {
        std::fs::copy(
            pki.path(&format!("{name}.{ext}")),
            pki.path(&format!("live.{ext}")),
        )
        .unwrap();
    }
}

fn live_server(pki: &Pki, workers: &str) -> Server {
    Server::builder()
        .args([
            "--certfile",
            pki.path("live.pem").to_str().unwrap(),
            "--keyfile",
            pki.path("live.key").to_str().unwrap(),
            "--workers",
            workers,
            "hello",
        ])
        .start()
}

#[test]
fn hup_swaps_the_certificate_under_load_without_a_failed_request() {
    let pki = Pki::new("tls-hup");
    install(&pki, "server");
    let server = live_server(&pki, "2");
    assert!(server.wait_for_workers(2, WAIT));
    let client = pki.client();
    let served = |client: &ferrocorn_tests::tls::TlsClient| {
        let stream = client.connect(server.addr).unwrap();
        stream.conn.peer_certificates().unwrap()[0].clone()
    };
    assert_eq!(served(&client), pki.leaf("server.pem"));
    let (load_client, addr) = (client.clone(), server.addr);
    let load = Load::start_with(3, move || load_client.get(addr, "/"));
    server.assert_hup_renews_workers_under(load, 2, WAIT, || {
        pki.issue_server("next", "localhost");
        install(&pki, "next");
    });
    assert_eq!(served(&pki.client()), pki.leaf("next.pem"));
}

#[test]
fn a_bad_certificate_on_hup_keeps_the_old_one_serving() {
    let pki = Pki::new("tls-hup-bad");
    install(&pki, "server");
    let server = live_server(&pki, "1");
    assert!(server.wait_for_workers(1, WAIT));
    let before = server.worker_pids();
    std::fs::write(pki.path("live.pem"), "not a certificate\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log("reload failed, keeping the running configuration", WAIT),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("live.pem"), "{}", server.stderr());
    let stream = pki.client().connect(server.addr).unwrap();
    assert_eq!(
        stream.conn.peer_certificates().unwrap()[0],
        pki.leaf("server.pem")
    );
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
    assert_eq!(server.worker_pids(), before);
    // A key that does not match on HUP: refused the same way.
    install(&pki, "server");
    std::fs::copy(pki.path("client.key"), pki.path("live.key")).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_log("does not match the certificate", WAIT),
        "{}",
        server.stderr()
    );
    assert_eq!(server.worker_pids(), before);
}

#[test]
fn bad_files_stop_the_start_naming_the_file_and_the_reason() {
    let pki = Pki::new("tls-bad-files");
    let dir = pki.dir();
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "server.key",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "enc.key",
        ],
    );
    std::fs::write(pki.path("empty.pem"), "").unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("missing.pem", "server.key", "cannot read it"),
        ("empty.pem", "server.key", "no certificate found"),
        ("server.key", "server.key", "no certificate found"),
        ("server.pem", "enc.key", "the private key is encrypted"),
        ("server.pem", "server.pem", "no private key found"),
        ("server.pem", "client.key", "does not match the certificate"),
    ];
    for (cert, key, reason) in cases {
        let (cert, key) = (pki.path(cert), pki.path(key));
        let args = [
            "--certfile",
            cert.to_str().unwrap(),
            "--keyfile",
            key.to_str().unwrap(),
            "hello",
        ];
        let (status, stderr) = Server::builder().args(args).run_to_exit(WAIT);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(2),
            "{cert:?} {key:?}: {stderr}"
        );
        assert!(stderr.contains(reason), "{cert:?} {key:?}: {stderr}");
        let named = if reason.contains("key") && !reason.contains("certificate found") {
            &key
        } else {
            &cert
        };
        assert!(stderr.contains(named.to_str().unwrap()), "{stderr}");
        // `--check-config` reads them too.
        let (status, stderr) = Server::builder()
            .no_default_bind()
            .args(["--check-config"])
            .args(args)
            .run_to_exit(WAIT);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(2),
            "check-config: {stderr}"
        );
        assert!(stderr.contains(reason), "check-config: {stderr}");
    }
    let (status, stderr) = Server::builder()
        .args([
            "--keyfile",
            pki.path("server.key").to_str().unwrap(),
            "hello",
        ])
        .run_to_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(
        stderr.contains("keyfile is set but certfile is not"),
        "{stderr}"
    );
}

#[test]
fn keys_in_pkcs1_and_sec1_form_and_in_the_certificate_file_serve() {
    let pki = Pki::new("tls-key-forms");
    let dir = pki.dir();
    // SEC1 ("EC PRIVATE KEY") of the server's key.
    openssl(dir, &["ec", "-in", "server.key", "-out", "sec1.key"]);
    assert!(std::fs::read_to_string(pki.path("sec1.key"))
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    // The key after the chain in one file.
    let mut both = std::fs::read(pki.path("server.pem")).unwrap();
    both.extend(std::fs::read(pki.path("server.key")).unwrap());
    std::fs::write(pki.path("both.pem"), both).unwrap();
    // PKCS#1 ("RSA PRIVATE KEY"), with a self-signed RSA certificate.
    openssl(dir, &["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            "rsa.key",
            "-out",
            "rsa.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    );
    assert!(std::fs::read_to_string(pki.path("rsa.key"))
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));

    let serve = |args: Vec<String>| Server::builder().args(args).args(["hello"]).start();
    let path = |name: &str| pki.path(name).to_str().unwrap().to_string();
    let server = serve(vec![
        "--certfile".into(),
        path("server.pem"),
        "--keyfile".into(),
        path("sec1.key"),
    ]);
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
    drop(server);
    let server = serve(vec!["--certfile".into(), path("both.pem")]);
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
    drop(server);
    let server = serve(vec![
        "--certfile".into(),
        path("rsa.pem"),
        "--keyfile".into(),
        path("rsa.key"),
    ]);
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(pki.path("rsa.pem"))
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.addr.port()),
        ])
        .arg(format!("https://localhost:{}/", server.addr.port()));
    let run = run_client(command, b"", WAIT);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout, "Hello, World!\n");
}

#[test]
fn ssl_version_is_accepted_with_a_warning() {
    let pki = Pki::new("tls-ssl-version");
    let server = tls_server(&pki, &["--ssl-version", "TLSv1_2", "hello"]).start();
    assert!(
        server.stderr().contains("ssl_version (TLSv1_2) is ignored"),
        "{}",
        server.stderr()
    );
    assert_eq!(pki.client().get(server.addr, "/").unwrap().status, 200);
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    ferrocorn_tests::tls::openssl(dir, args);
}
