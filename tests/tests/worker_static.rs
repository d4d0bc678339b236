//! Black-box: the `static:DIR` application through the real binary: files sent whole and in
//! ranges, conditional requests, directories, and traversal attempts that must all be 404.

use std::io::{BufReader, Write};

use ferrocorn_tests::{connect, read_response, Server, TempDir};

/// A served directory with a file, a subdirectory, and a secret beside it.
fn fixture(name: &str) -> (TempDir, std::path::PathBuf, Vec<u8>) {
    let tmp = TempDir::new(name);
    let root = tmp.join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("hello.txt"), b"hello, static\n").unwrap();
    std::fs::write(root.join("docs/index.html"), b"<h1>docs</h1>").unwrap();
    std::fs::write(tmp.join("secret.txt"), b"top secret").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret.txt"), root.join("leak")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), b"top secret").unwrap();
    std::fs::write(root.join(".env"), b"top secret").unwrap();
    (tmp, root, big)
}

fn get_with(server: &Server, target: &str, headers: &str) -> ferrocorn_tests::Response {
    server
        .request(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap()
}

#[test]
fn files_ranges_and_conditional_requests() {
    let (_tmp, root, big) = fixture("static-files");
    let server = Server::start([format!("static:{}", root.display())]);

    let r = server.get("/big.bin").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1048576"));
    assert!(r.body == big, "1 MiB file intact");
    let etag = r.header("etag").expect("etag").to_string();
    let last_modified = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();

    let r = get_with(&server, "/big.bin", "Range: bytes=100-199\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1048576"));
    assert_eq!(r.body, &big[100..200]);

    let r = get_with(&server, "/big.bin", "Range: bytes=-10\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &big[big.len() - 10..]);

    let r = get_with(&server, "/big.bin", "Range: bytes=2000000-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1048576"));

    let r = get_with(&server, "/big.bin", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = get_with(
        &server,
        "/big.bin",
        &format!("If-Modified-Since: {last_modified}\r\n"),
    );
    assert_eq!(r.status, 304);
    let r = get_with(&server, "/big.bin", "If-None-Match: \"nope\"\r\n");
    assert_eq!(r.status, 200);

    let r = server.get("/hello.txt").unwrap();
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "hello, static\n");
    // RFC 9112 §3.2.2: the absolute form names the same file.
    let r = get_with(&server, "http://t/hello.txt?x=1", "");
    assert_eq!((r.status, r.text()), (200, "hello, static\n".to_string()));
}

#[test]
fn head_and_keep_alive_after_file_bodies() {
    let (_tmp, root, big) = fixture("static-head");
    let server = Server::start([format!("static:{}", root.display())]);
    let mut stream = connect(server.addr).unwrap();
    stream
        .write_all(
            b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n\r\n\
              GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_response(&mut reader, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1048576"));
    assert_eq!(read_response(&mut reader, false).unwrap().body, &big[..4]);
    assert!(read_response(&mut reader, false).unwrap().body == big);
    assert_eq!(
        read_response(&mut reader, false).unwrap().text(),
        "hello, static\n"
    );
}

#[test]
fn directories_index_listing_and_redirect() {
    let (_tmp, root, _) = fixture("static-dirs");
    let server = Server::start([format!("static:{}", root.display())]);
    let r = server.get("/docs/").unwrap();
    assert_eq!(r.text(), "<h1>docs</h1>");
    let r = server.get("/docs").unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/"));
    let r = server.get("/").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("href=\"hello.txt\""), "{}", r.text());
    assert!(r.text().contains("href=\"docs/\""), "{}", r.text());
    for hidden in ["leak", "up", ".git", ".env"] {
        assert!(
            !r.text().contains(&format!("href=\"{hidden}")),
            "{hidden} is not listed: {}",
            r.text()
        );
    }
}

#[test]
fn traversal_attempts_are_404() {
    let (_tmp, root, _) = fixture("static-traversal");
    let server = Server::start([format!("static:{}", root.display())]);
    for target in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/docs%2f..%2f..%2fsecret.txt",
        "/leak",
        "/up/secret.txt",
        "/hello.txt%00.png",
        "/.git/config",
        "/.env",
        "/%2eenv",
        "/docs/../.env",
    ] {
        let r = get_with(&server, target, "");
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert!(!r.text().contains("top secret"), "{target}");
    }
    // The server is still fine afterwards.
    assert_eq!(server.get("/hello.txt").unwrap().status, 200);
}

#[test]
fn missing_static_dir_stops_the_start() {
    let (status, stderr) = Server::builder()
        .args(["static:/nonexistent/ferrocorn-static-dir"])
        .run_to_exit(std::time::Duration::from_secs(30));
    assert_ne!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/ferrocorn-static-dir"),
        "the error names the directory:\n{stderr}"
    );
}

#[test]
fn a_client_that_does_not_read_blocks_no_one() {
    let (_tmp, root, big) = fixture("static-slow-reader");
    let server = Server::start([format!("static:{}", root.display())]);
    // Ask for 16 MiB and never read: the worker's writes to this client stall.
    let mut stalled = connect(server.addr).unwrap();
    for _ in 0..16 {
        stalled
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for _ in 0..5 {
        let r = server.get("/big.bin").unwrap();
        assert!(r.body == big, "others still get whole files");
    }
    drop(stalled);
    assert_eq!(server.get("/hello.txt").unwrap().status, 200);
}
