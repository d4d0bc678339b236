//! `static:DIR`: GET and HEAD of files under DIR with `ETag`/`Last-Modified` validators,
//! conditional requests, single byte ranges, `index.html` or a listing for directories, and
//! file bodies sent with `sendfile`. Nothing outside DIR is ever served, and neither are hidden
//! files: a path with a segment starting with `.` (`/.git/config`, `/.env`) is a 404 and is
//! left out of listings, because `static:.` in a project directory would otherwise publish its
//! repository and secrets. `/.well-known/` (RFC 8615) is the one exception.
//!
//! `path.rs` maps a request path to a file beneath the root and opens it, `conditional.rs`
//! answers with a file (validators, preconditions, a single range), `listing.rs` lists a
//! directory, `media_type.rs` names a file's type.

mod conditional;
mod listing;
mod media_type;
mod path;

use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocorn_worker::{App, Request, Response};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use conditional::send_file;
use listing::listing;
use path::{relative_path, Beneath};

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

#[cfg(test)]
mod tests;
