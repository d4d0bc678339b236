//! `static:DIR` through `App::call`, on a fixture tree with symlinks, hidden files and a FIFO,
//! by both routes (`openat2` and `canonicalize`).

use std::sync::atomic::Ordering;

use ferrocorn_worker::Body;

use super::path::OPENAT2_MISSING;
use super::*;

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> (TempDir, StaticFiles) {
    let base = std::env::temp_dir().join(format!("ferrocorn-static-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let root = base.join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("a.txt"), b"0123456789").unwrap();
    fs::write(root.join("sub/index.html"), b"<p>hi</p>").unwrap();
    fs::create_dir_all(root.join("list")).unwrap();
    fs::write(root.join("list/<b>.txt"), b"x").unwrap();
    fs::write(base.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(base.join("secret"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("inside")).unwrap();
    fs::create_dir_all(root.join("trap")).unwrap();
    std::os::unix::fs::symlink(base.join("secret"), root.join("trap/index.html")).unwrap();
    // Relative links: one leaving the root, one to a file and one to a directory inside.
    std::os::unix::fs::symlink("../secret", root.join("rel-escape")).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("rel-inside")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("rel-dir")).unwrap();
    std::os::unix::fs::symlink("../../secret", root.join("sub/up")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), Mode::S_IRWXU).unwrap();
    // Hidden files, and the one dot directory that is served.
    fs::write(root.join(".hidden"), b"hidden").unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".git/config"), b"[core]").unwrap();
    fs::create_dir_all(root.join("sub/.git")).unwrap();
    fs::create_dir_all(root.join(".well-known")).unwrap();
    fs::write(root.join(".well-known/security.txt"), b"Contact: x").unwrap();
    let app = StaticFiles::new(&root).unwrap();
    (TempDir(base), app)
}

fn get(app: &StaticFiles, target: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::for_test("GET", target, headers, b"");
    let mut res = Response::new();
    app.call(&mut req, &mut res);
    res
}

#[test]
fn missing_dir_fails_with_its_name() {
    let err = StaticFiles::new(Path::new("/nonexistent/ferrocorn-x")).unwrap_err();
    assert!(err.contains("/nonexistent/ferrocorn-x"), "{err}");
}

/// The app as it runs, and the same app forced onto the `canonicalize` route (kernels
/// without `openat2`): both must give the same answers.
fn both_routes(app: &StaticFiles) -> [(&'static str, StaticFiles); 2] {
    let checked = StaticFiles {
        root_dir: None,
        ..app.clone()
    };
    [("openat2", app.clone()), ("canonicalize", checked)]
}

#[test]
fn traversal_attempts_are_404() {
    let (_t, app) = fixture("trav");
    for (route, app) in both_routes(&app) {
        for target in [
            "/../secret",
            "/sub/../../secret",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/sub%2f..%2f..%2fsecret",
            "/..%2fsecret",
            "/escape",
            "/rel-escape",
            "/sub/up",
            "/rel-dir/up",
            "/fifo",
            "/a.txt%00",
            "/..\\secret",
            "/%zz",
            "relative",
            "/.hidden",
            "/%2ehidden",
            "/.git/config",
            "/sub/.git/",
            "/sub/.git",
            "/.well-known/../.hidden",
        ] {
            assert_eq!(get(&app, target, &[]).status, 404, "{route}: {target}");
        }
        assert!(
            app.resolve("/inside").is_some(),
            "symlink inside the root is served"
        );
        for target in [
            "/.well-known/security.txt",
            "/inside",
            "/rel-inside",
            "/sub/./index.html",
            "/rel-dir/",
            "/rel-dir/index.html",
        ] {
            let res = get(&app, target, &[]);
            assert_eq!(res.status, 200, "{route}: {target}");
            assert!(matches!(res.body, Body::File { .. }), "{route}: {target}");
        }
        assert_eq!(get(&app, "/rel-dir", &[]).status, 301, "{route}");
        // An index.html symlinked outside the root is not served: the directory is listed.
        let res = get(&app, "/trap/", &[]);
        let Body::Bytes(html) = &res.body else {
            panic!("{route}: a listing, not the secret file")
        };
        assert!(!String::from_utf8_lossy(html).contains("secret\n"));
    }
}

#[test]
fn openat2_decides_what_it_can_and_leaves_the_rest_to_canonicalize() {
    let (_t, app) = fixture("beneath");
    let open = |p: &str| app.open_beneath(Path::new(p)).unwrap();
    if OPENAT2_MISSING.load(Ordering::Relaxed) || matches!(open("a.txt"), Beneath::Unsure) {
        eprintln!("SKIPPED: openat2 is not available here; the canonicalize route is tested");
        return;
    }
    assert!(matches!(open("a.txt"), Beneath::Opened(_)));
    assert!(matches!(open("rel-inside"), Beneath::Opened(_)));
    assert!(matches!(open("."), Beneath::Opened(_)));
    assert!(matches!(open("nope"), Beneath::Missing));
    assert!(matches!(open("a.txt/x"), Beneath::Missing));
    // Leaving the root, or an absolute link (which may point inside): canonicalize decides.
    assert!(matches!(open("rel-escape"), Beneath::Unsure));
    assert!(matches!(open("escape"), Beneath::Unsure));
    assert!(matches!(open("inside"), Beneath::Unsure));
}

#[test]
fn file_has_validators_and_file_body() {
    let (_t, app) = fixture("file");
    let res = get(&app, "/a.txt", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header_value("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(res.header_value("etag").is_some());
    assert!(res.header_value("last-modified").is_some());
    assert!(matches!(
        res.body,
        Body::File {
            offset: 0,
            len: 10,
            ..
        }
    ));
}

#[test]
fn conditional_requests() {
    let (_t, app) = fixture("cond");
    let res = get(&app, "/a.txt", &[]);
    let etag = res.header_value("etag").unwrap().to_string();
    let lm = res.header_value("last-modified").unwrap().to_string();
    assert_eq!(get(&app, "/a.txt", &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(
        get(&app, "/a.txt", &[("If-None-Match", &format!("W/{etag}"))]).status,
        304
    );
    assert_eq!(
        get(&app, "/a.txt", &[("If-None-Match", "\"other\", *")]).status,
        304
    );
    assert_eq!(
        get(&app, "/a.txt", &[("If-None-Match", "\"other\"")]).status,
        200
    );
    assert_eq!(
        get(&app, "/a.txt", &[("If-Modified-Since", &lm)]).status,
        304
    );
    assert_eq!(
        get(
            &app,
            "/a.txt",
            &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")]
        )
        .status,
        200
    );
    // If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
    assert_eq!(
        get(
            &app,
            "/a.txt",
            &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)]
        )
        .status,
        200
    );
    assert_eq!(
        get(&app, "/a.txt", &[("If-Match", "\"other\"")]).status,
        412
    );
    assert_eq!(get(&app, "/a.txt", &[("If-Match", &etag)]).status, 200);
    assert_eq!(
        get(&app, "/a.txt", &[("If-Modified-Since", "garbage")]).status,
        200
    );
}

/// Regression: `If-Modified-Since`, `If-Unmodified-Since` and `If-Range` dates were only
/// understood as IMF-fixdate, so a client sending the RFC 850 or asctime form (RFC 9110
/// §5.6.7: recipients must accept all three) always got the whole file.
#[test]
fn conditional_dates_in_all_three_forms() {
    let (t, app) = fixture("cond-dates");
    let file = File::options()
        .write(true)
        .open(t.0.join("root/a.txt"))
        .unwrap();
    // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
    file.set_modified(mtime).unwrap();
    for (same, earlier) in [
        (
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:36 GMT",
        ),
        (
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:36 GMT",
        ),
        ("Sun Nov  6 08:49:37 1994", "Sun Nov  6 08:49:36 1994"),
    ] {
        let status = |headers: &[(&str, &str)]| get(&app, "/a.txt", headers).status;
        assert_eq!(status(&[("If-Modified-Since", same)]), 304, "{same}");
        assert_eq!(status(&[("If-Modified-Since", earlier)]), 200, "{earlier}");
        assert_eq!(
            status(&[("If-Unmodified-Since", earlier)]),
            412,
            "{earlier}"
        );
        assert_eq!(status(&[("If-Unmodified-Since", same)]), 200, "{same}");
        let range = |if_range| status(&[("Range", "bytes=0-1"), ("If-Range", if_range)]);
        assert_eq!(range(same), 206, "{same}");
        assert_eq!(range(earlier), 200, "{earlier}");
    }
}

#[test]
fn range_responses() {
    let (_t, app) = fixture("range");
    let res = get(&app, "/a.txt", &[("Range", "bytes=2-5")]);
    assert_eq!(res.status, 206);
    assert_eq!(res.header_value("content-range"), Some("bytes 2-5/10"));
    assert!(matches!(
        res.body,
        Body::File {
            offset: 2,
            len: 4,
            ..
        }
    ));
    let res = get(&app, "/a.txt", &[("Range", "bytes=50-")]);
    assert_eq!(res.status, 416);
    assert_eq!(res.header_value("content-range"), Some("bytes */10"));
    let res = get(
        &app,
        "/a.txt",
        &[("Range", "bytes=2-5"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(res.status, 200);
}

/// Regression: `GET //evil.com` (with a directory `evil.com` under the root) was
/// redirected to `Location: //evil.com/`, which a browser follows to another host: an
/// open redirect. Every redirect now names a path on this host.
#[test]
fn directory_redirects_never_name_another_host() {
    let (t, app) = fixture("redirect-host");
    fs::create_dir_all(t.0.join("root/evil.com")).unwrap();
    for (route, app) in both_routes(&app) {
        for (target, location) in [
            ("//evil.com", "/evil.com/"),
            ("///evil.com", "/evil.com/"),
            ("//evil.com?x=//y", "/evil.com/?x=//y"),
            ("/.//evil.com", "/.//evil.com/"),
            ("http://host//evil.com", "/evil.com/"),
            ("/evil.com", "/evil.com/"),
        ] {
            let res = get(&app, target, &[]);
            assert_eq!(res.status, 301, "{route} {target}");
            assert_eq!(
                res.header_value("location"),
                Some(location),
                "{route} {target}"
            );
        }
    }
    for path in ["/a", "//a", "/\\a", "\\/a", "////"] {
        let location = directory_location(path, "");
        assert!(location.starts_with('/'), "{location}");
        assert!(
            !matches!(location.as_bytes().get(1), Some(b'/' | b'\\')),
            "{location}"
        );
    }
}

#[test]
fn directories() {
    let (_t, app) = fixture("dirs");
    let res = get(&app, "/sub", &[]);
    assert_eq!(res.status, 301);
    assert_eq!(res.header_value("location"), Some("/sub/"));
    let res = get(&app, "/sub/", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header_value("content-type"),
        Some("text/html; charset=utf-8")
    );
    let res = get(&app, "/list/", &[]);
    assert_eq!(res.status, 200);
    let Body::Bytes(html) = &res.body else {
        panic!()
    };
    let html = String::from_utf8_lossy(html);
    assert!(
        html.contains("href=\"%3Cb%3E.txt\">&lt;b&gt;.txt</a>"),
        "{html}"
    );
}

/// A listing names exactly what a request could fetch.
#[test]
fn listing_leaves_out_what_is_not_served() {
    let (_t, app) = fixture("listing");
    for (route, app) in both_routes(&app) {
        let res = get(&app, "/", &[]);
        let Body::Bytes(html) = &res.body else {
            panic!("{route}: a listing")
        };
        let html = String::from_utf8_lossy(html);
        let mut names: Vec<&str> = html
            .split("<li><a href=\"")
            .skip(1)
            .filter_map(|item| item.split('"').next())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                ".well-known/",
                "a.txt",
                "inside",
                "list/",
                "rel-dir/",
                "rel-inside",
                "sub/",
                "trap/"
            ],
            "{route}: {html}"
        );
        for name in &names {
            let status = get(&app, &format!("/{name}"), &[]).status;
            assert_eq!(status, 200, "{route}: listed {name} is served");
        }
    }
}

/// Bug: a listing's title showed the percent-encoded path (`Index of /%C3%BC/`)
/// instead of the directory's name.
#[test]
fn bug_listing_title_is_the_decoded_path_escaped() {
    let (_t, app) = fixture("title");
    fs::create_dir(app.root.join("\u{fc} <i>&")).unwrap();
    let res = get(&app, "/%C3%BC%20%3Ci%3E%26/", &[]);
    assert_eq!(res.status, 200);
    let Body::Bytes(html) = &res.body else {
        panic!()
    };
    let html = String::from_utf8_lossy(html);
    assert!(
        html.contains("<title>Index of /\u{fc} &lt;i&gt;&amp;/</title>"),
        "{html}"
    );
}

/// Bug: `/a.txt/` served the file `a.txt` (empty segments were skipped), where a file
/// named as a directory does not exist.
#[test]
fn bug_file_with_a_trailing_slash_is_404() {
    let (_t, app) = fixture("slash");
    assert_eq!(get(&app, "/a.txt", &[]).status, 200);
    assert_eq!(get(&app, "/a.txt/", &[]).status, 404);
    assert_eq!(get(&app, "/inside/", &[]).status, 404);
    assert_eq!(get(&app, "/sub/", &[]).status, 200);
}

#[test]
fn other_methods_are_405() {
    let (_t, app) = fixture("meth");
    let mut req = Request::for_test("POST", "/a.txt", &[], b"");
    let mut res = Response::new();
    app.call(&mut req, &mut res);
    assert_eq!(res.status, 405);
    assert_eq!(res.header_value("allow"), Some("GET, HEAD"));
}
