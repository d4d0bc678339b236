//! `static:DIR`: GET and HEAD of files under DIR with `ETag`/`Last-Modified` validators,
//! conditional requests, single byte ranges, `index.html` or a listing for directories, and
//! file bodies sent with `sendfile`. Nothing outside DIR is ever served, and neither are hidden
//! files: a path with a segment starting with `.` (`/.git/config`, `/.env`) is a 404 and is
//! left out of listings, because `static:.` in a project directory would otherwise publish its
//! repository and secrets. `/.well-known/` (RFC 8615) is the one exception.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::app::{App, Body, Request, Response};
use crate::date::{http_date, parse_http_date};

/// Set once `openat2(2)` answered `ENOSYS` (Linux before 5.6, or a seccomp filter that
/// hides it): from then on every path takes the `canonicalize` route.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Serves the files under a directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    /// The root, opened once (`O_PATH`): files are opened relative to it with
    /// `openat2(RESOLVE_BENEATH)`, so that the kernel refuses any escape in the same call
    /// that opens the file. `None` if it could not be opened (then paths are checked with
    /// `canonicalize`, as on kernels without `openat2`).
    root_dir: Option<Arc<OwnedFd>>,
}

/// What opening a path beneath the root found out.
enum Beneath {
    /// Opened; the kernel kept every step of the lookup (symlinks included) under the root.
    Opened(File),
    /// No such file (or a component is not a directory, a symlink loop, a name too long):
    /// answered 404, as `canonicalize` failing was.
    Missing,
    /// The fast check cannot decide: an absolute symlink or one leaving the root (`EXDEV`,
    /// which may still point inside), a permission error (`EACCES`/`EPERM`: a directory
    /// that may not be searched is a 404, an unreadable file a 403), or no `openat2`.
    /// The path is then served by the `canonicalize` route.
    Unsure,
}

impl StaticFiles {
    /// Serves `dir`. Fails when `dir` does not exist or is not a directory; the message
    /// names the directory.
    pub fn new(dir: &Path) -> Result<StaticFiles, String> {
        let root = fs::canonicalize(dir)
            .map_err(|e| format!("static directory {:?} is not usable: {e}", dir.display()))?;
        if !root.is_dir() {
            return Err(format!(
                "static directory {:?} is not a directory",
                dir.display()
            ));
        }
        // Opened in the arbiter and inherited by the workers it forks (close-on-exec: not
        // by a re-executed binary, which loads its application itself).
        let root_dir = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(Arc::new);
        Ok(StaticFiles { root, root_dir })
    }

    /// Maps a request path to a path under the root, or `None` (answered 404) when the path
    /// is malformed or would leave the root: `..` segments (also percent-encoded), encoded
    /// `/` or `\`, NUL, and symlinks whose target lies outside.
    pub fn resolve(&self, request_path: &str) -> Option<PathBuf> {
        let path = self.root.join(relative_path(request_path)?);
        // Symlinks are followed, then the real path must still lie under the root.
        let real = fs::canonicalize(&path).ok()?;
        real.starts_with(&self.root).then_some(real)
    }

    /// Opens `rel` (from [`relative_path`]) beneath the root in one system call. The kernel
    /// follows symlinks but fails the lookup if any step leaves the root: the guarantee of
    /// [`StaticFiles::resolve`] without its `readlink` per path component and its two
    /// `stat`s, and with no window between the check and the open (`strace -c` under the
    /// `static-1m-8` benchmark: 13 system calls per request before, 6 after). The flags
    /// are nginx's for static files: `O_NONBLOCK` so that a FIFO cannot block the worker,
    /// `O_NOCTTY` for a terminal.
    fn open_beneath(&self, rel: &Path) -> io::Result<Beneath> {
        let Some(root_dir) = &self.root_dir else {
            return Ok(Beneath::Unsure);
        };
        if OPENAT2_MISSING.load(Ordering::Relaxed) {
            return Ok(Beneath::Unsure);
        }
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match nix::fcntl::openat2(root_dir.as_ref(), rel, how) {
            Ok(fd) => Ok(Beneath::Opened(File::from(fd))),
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG) => {
                Ok(Beneath::Missing)
            }
            Err(Errno::ENOSYS) => {
                OPENAT2_MISSING.store(true, Ordering::Relaxed);
                Ok(Beneath::Unsure)
            }
            Err(Errno::EXDEV | Errno::EACCES | Errno::EPERM | Errno::EAGAIN) => Ok(Beneath::Unsure),
            Err(e) => Err(e.into()),
        }
    }

    fn serve(&self, req: &Request, res: &mut Response) -> io::Result<()> {
        let Some(rel) = relative_path(req.path()) else {
            res.plain(404, "not found\n");
            return Ok(());
        };
        let file = match self.open_beneath(&rel)? {
            Beneath::Opened(file) => file,
            Beneath::Missing => {
                res.plain(404, "not found\n");
                return Ok(());
            }
            Beneath::Unsure => return self.serve_checked(req, res),
        };
        let meta = file.metadata()?;
        if meta.is_dir() {
            if redirect_to_directory(req, res) {
                return Ok(());
            }
            let index = rel.join("index.html");
            return match self.open_beneath(&index)? {
                Beneath::Opened(file) => {
                    let meta = file.metadata()?;
                    if meta.is_file() {
                        send_file(req, res, file, &meta, &index)
                    } else {
                        listing(req, res, &self.root, &self.root.join(&rel))
                    }
                }
                Beneath::Missing => listing(req, res, &self.root, &self.root.join(&rel)),
                Beneath::Unsure => self.serve_directory_checked(req, res, &self.root.join(&rel)),
            };
        }
        // A file named as a directory (`/a.txt/`) does not exist, as open(2) says
        // (ENOTDIR); serving it would also break the page's relative links.
        if !meta.is_file() || req.path().ends_with('/') {
            res.plain(404, "not found\n");
            return Ok(());
        }
        send_file(req, res, file, &meta, &rel)
    }

    /// The route without `openat2`: `canonicalize` the path and check that it stays under the
    /// root, then open it.
    fn serve_checked(&self, req: &Request, res: &mut Response) -> io::Result<()> {
        let Some(path) = self.resolve(req.path()) else {
            res.plain(404, "not found\n");
            return Ok(());
        };
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            if redirect_to_directory(req, res) {
                return Ok(());
            }
            return self.serve_directory_checked(req, res, &path);
        }
        if !meta.is_file() || req.path().ends_with('/') {
            res.plain(404, "not found\n");
            return Ok(());
        }
        let file = File::open(&path)?;
        let meta = file.metadata()?;
        send_file(req, res, file, &meta, &path)
    }

    /// A directory named with its trailing `/`, by the `canonicalize` route: its
    /// `index.html`, or a listing.
    fn serve_directory_checked(
        &self,
        req: &Request,
        res: &mut Response,
        path: &Path,
    ) -> io::Result<()> {
        // index.html may itself be a symlink: it is held to the root like any path.
        let index = fs::canonicalize(path.join("index.html"))
            .ok()
            .filter(|real| real.starts_with(&self.root) && real.is_file());
        if let Some(index) = index {
            let file = File::open(&index)?;
            let meta = file.metadata()?;
            return send_file(req, res, file, &meta, &index);
        }
        listing(req, res, &self.root, path)
    }
}

/// The request path as a path relative to the root (`.` for the root), or `None` (answered
/// 404) when it is malformed, climbs or is hidden: `..` segments (also percent-encoded),
/// encoded `/` or `\`, NUL, a segment starting with `.` (see [`is_hidden`]).
fn relative_path(request_path: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if !request_path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(request_path)?;
    let mut path = PathBuf::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => continue,
            b".." => return None,
            s if s.contains(&0) || s.contains(&b'\\') || is_hidden(s) => return None,
            s => path.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    if path.as_os_str().is_empty() {
        path.push(".");
    }
    Some(path)
}

/// Whether a file name is hidden: it starts with `.` and is not `.well-known`, the directory
/// RFC 8615 reserves for files meant to be fetched (ACME challenges, `security.txt`).
fn is_hidden(name: &[u8]) -> bool {
    name.starts_with(b".") && name != b".well-known"
}

/// A directory named without its trailing `/` is answered with a redirect to the name with
/// it (the page's relative links need it). Returns whether it answered.
fn redirect_to_directory(req: &Request, res: &mut Response) -> bool {
    if req.path().ends_with('/') {
        return false;
    }
    res.header("Location", directory_location(req.path(), req.query()));
    res.plain(301, "moved permanently\n");
    true
}

/// The `Location` of a directory's redirect: `path` with a trailing `/`, and the query.
///
/// Always a path on this host: leading slashes are collapsed into one, because a reference
/// starting with `//` (or `/\`, which browsers read alike) is protocol-relative, naming
/// another host (RFC 3986 §4.2): `GET //evil.com` where a directory `evil.com` exists must
/// not redirect to `//evil.com/`. The path otherwise stays as received (percent-encoded
/// visible ASCII: no byte in it can end the field or start another host).
fn directory_location(path: &str, query: &str) -> String {
    let rest = path.trim_start_matches(['/', '\\']);
    let mut location = String::with_capacity(rest.len() + query.len() + 3);
    location.push('/');
    location.push_str(rest);
    if !rest.ends_with('/') && !rest.is_empty() {
        location.push('/');
    }
    if !query.is_empty() {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// Answers with the open `file` (validators, preconditions, a single range); `name` gives
/// the media type.
fn send_file(
    req: &Request,
    res: &mut Response,
    file: File,
    meta: &Metadata,
    name: &Path,
) -> io::Result<()> {
    let size = meta.len();
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        size,
        meta.mtime_nsec() as u64 ^ (mtime << 20)
    );
    let last_modified = http_date(mtime);
    res.header("Last-Modified", last_modified);
    res.header("ETag", etag.clone());
    res.header("Accept-Ranges", "bytes");
    match precondition(req, &etag, mtime) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            res.status = 304;
            return Ok(());
        }
        Precondition::Failed => {
            res.status = 412;
            return Ok(());
        }
    }
    res.header("Content-Type", content_type(name));
    let range = req
        .header("range")
        .filter(|_| if_range_allows(req, &etag, mtime))
        .map(|r| parse_range(r, size));
    match range {
        None | Some(RangeOutcome::Ignore) => {
            res.body = Body::File {
                file,
                offset: 0,
                len: size,
            };
        }
        Some(RangeOutcome::Unsatisfiable) => {
            // RFC 9110 §15.5.17: 416 carries `Content-Range: bytes */size`.
            res.header("Content-Range", format!("bytes */{size}"));
            res.status = 416;
            res.body = Body::Empty;
        }
        Some(RangeOutcome::Range(start, end)) => {
            res.status = 206;
            res.header("Content-Range", format!("bytes {start}-{end}/{size}"));
            res.body = Body::File {
                file,
                offset: start,
                len: end - start + 1,
            };
        }
    }
    Ok(())
}

impl App for StaticFiles {
    fn call(&self, req: &mut Request, res: &mut Response) {
        if req.method() != "GET" && req.method() != "HEAD" {
            res.header("Allow", "GET, HEAD");
            res.plain(405, "method not allowed\n");
            return;
        }
        if let Err(e) = self.serve(req, res) {
            res.reset();
            match e.kind() {
                io::ErrorKind::NotFound => res.plain(404, "not found\n"),
                io::ErrorKind::PermissionDenied => res.plain(403, "forbidden\n"),
                _ => res.plain(500, "internal server error\n"),
            }
        }
    }
}

/// Decodes `%XX` escapes. `None` for a malformed escape or an encoded `/` (which would
/// change how the path splits into segments).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if v == b'/' {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// Whether `etag` matches one of a list of entity tags (`*` matches anything). Weak
/// comparison (RFC 9110 §8.8.3.2) when `weak`, strong otherwise.
fn etag_matches(list: &[u8], etag: &str, weak: bool) -> bool {
    let list = String::from_utf8_lossy(list);
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        match t.strip_prefix("W/") {
            Some(w) => weak && w == etag,
            None => t == etag,
        }
    })
}

/// Evaluates the preconditions in RFC 9110 §13.2.2's order.
fn precondition(req: &Request, etag: &str, mtime: u64) -> Precondition {
    if let Some(v) = req.header("if-match") {
        if !etag_matches(v, etag, false) {
            return Precondition::Failed;
        }
    } else if let Some(t) = req.header("if-unmodified-since").and_then(parse_http_date) {
        if mtime > t {
            return Precondition::Failed;
        }
    }
    if let Some(v) = req.header("if-none-match") {
        if etag_matches(v, etag, true) {
            return Precondition::NotModified;
        }
    } else if let Some(t) = req.header("if-modified-since").and_then(parse_http_date) {
        if mtime <= t {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// RFC 9110 §13.1.5: a Range is honoured only if `If-Range` (when present) still matches.
fn if_range_allows(req: &Request, etag: &str, mtime: u64) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) if v.starts_with(b"\"") => v == etag.as_bytes(),
        Some(v) => parse_http_date(v) == Some(mtime),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeOutcome {
    /// Not a single byte range we serve: answer the whole file (RFC 9110 §14.2 lets a
    /// server ignore Range).
    Ignore,
    Unsatisfiable,
    /// Inclusive first and last byte.
    Range(u64, u64),
}

fn parse_range(value: &[u8], size: u64) -> RangeOutcome {
    let Ok(v) = std::str::from_utf8(value) else {
        return RangeOutcome::Ignore;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Ignore;
    };
    if spec.contains(',') {
        return RangeOutcome::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeOutcome::Ignore,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if size == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Range(size.saturating_sub(n), size - 1),
        },
        (a, "") => match num(a) {
            None => RangeOutcome::Ignore,
            Some(a) if a >= size => RangeOutcome::Unsatisfiable,
            Some(a) => RangeOutcome::Range(a, size - 1),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    RangeOutcome::Unsatisfiable
                } else {
                    RangeOutcome::Range(a, b.min(size - 1))
                }
            }
            _ => RangeOutcome::Ignore,
        },
    }
}

/// The media type for a file name's extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "text" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "application/octet-stream",
    }
}

fn html_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn href_escape(name: &[u8], out: &mut String) {
    use std::fmt::Write;
    for &b in name {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// An HTML listing of a directory, sorted by name, directories with a trailing `/`.
/// A directory's listing: the entries a request could fetch, so no hidden names, no symlinks
/// that are broken or lead outside `root`, and nothing but files and directories (the rest
/// is answered 404).
fn listing(req: &Request, res: &mut Response, root: &Path, dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut entries: Vec<(String, Vec<u8>, bool)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            if is_hidden(name.as_bytes()) {
                return None;
            }
            let mut file_type = e.file_type().ok()?;
            if file_type.is_symlink() {
                let real = fs::canonicalize(e.path()).ok()?;
                if !real.starts_with(root) {
                    return None;
                }
                file_type = fs::metadata(real).ok()?.file_type();
            }
            // Sockets, FIFOs and devices are not served either.
            if !(file_type.is_file() || file_type.is_dir()) {
                return None;
            }
            let is_dir = file_type.is_dir();
            Some((
                name.to_string_lossy().into_owned(),
                name.as_bytes().to_vec(),
                is_dir,
            ))
        })
        .collect();
    entries.sort();
    // The title shows the path as the user reads it, decoded, then escaped like the names.
    let shown = percent_decode(req.path())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|| req.path().to_string());
    let mut title = String::new();
    html_escape(&shown, &mut title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    for (name, raw, is_dir) in entries {
        html.push_str("<li><a href=\"");
        href_escape(&raw, &mut html);
        if is_dir {
            html.push('/');
        }
        html.push_str("\">");
        html_escape(&name, &mut html);
        if is_dir {
            html.push('/');
        }
        html.push_str("</a></li>\n");
    }
    html.push_str("</ul></body></html>\n");
    res.header("Content-Type", "text/html; charset=utf-8");
    res.body = Body::Bytes(html.into_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fixture(name: &str) -> (TempDir, StaticFiles) {
        let base =
            std::env::temp_dir().join(format!("ferrocorn-static-{name}-{}", std::process::id()));
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
    fn range_parsing() {
        use RangeOutcome::*;
        assert_eq!(parse_range(b"bytes=0-4", 10), Range(0, 4));
        assert_eq!(parse_range(b"bytes=5-", 10), Range(5, 9));
        assert_eq!(parse_range(b"bytes=-3", 10), Range(7, 9));
        assert_eq!(parse_range(b"bytes=-30", 10), Range(0, 9));
        assert_eq!(parse_range(b"bytes=8-100", 10), Range(8, 9));
        assert_eq!(parse_range(b"bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=20-30", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range(b"bytes=5-2", 10), Ignore);
        assert_eq!(parse_range(b"bytes=0-1,3-4", 10), Ignore);
        assert_eq!(parse_range(b"items=0-1", 10), Ignore);
        assert_eq!(parse_range(b"bytes=a-b", 10), Ignore);
        assert_eq!(parse_range(b"bytes=0-0", 0), Unsatisfiable);
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
}
