//! From a request path to an open file beneath the root: the path's segments checked
//! (no `..`, no hidden names, no encoded separators), then one `openat2(RESOLVE_BENEATH)`
//! relative to the root's descriptor, or `canonicalize` where that cannot decide.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

use super::StaticFiles;

/// Set once `openat2(2)` answered `ENOSYS` (Linux before 5.6, or a seccomp filter that
/// hides it): from then on every path takes the `canonicalize` route.
pub(super) static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// What opening a path beneath the root found out.
pub(super) enum Beneath {
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
    /// Opens `rel` (from [`relative_path`]) beneath the root in one system call. The kernel
    /// follows symlinks but fails the lookup if any step leaves the root: the guarantee of
    /// [`StaticFiles::resolve`] without its `readlink` per path component and its two
    /// `stat`s, and with no window between the check and the open. The flags are nginx's
    /// for static files: `O_NONBLOCK` so that a FIFO cannot block the worker, `O_NOCTTY`
    /// for a terminal.
    pub(super) fn open_beneath(&self, rel: &Path) -> io::Result<Beneath> {
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
}

/// The request path as a path relative to the root (`.` for the root), or `None` (answered
/// 404) when it is malformed, climbs or is hidden: `..` segments (also percent-encoded),
/// encoded `/` or `\`, NUL, a segment starting with `.` (see [`is_hidden`]).
pub(super) fn relative_path(request_path: &str) -> Option<PathBuf> {
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
pub(super) fn is_hidden(name: &[u8]) -> bool {
    name.starts_with(b".") && name != b".well-known"
}

/// Decodes `%XX` escapes. `None` for a malformed escape or an encoded `/` (which would
/// change how the path splits into segments).
pub(super) fn percent_decode(s: &str) -> Option<Vec<u8>> {
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
