//! The pidfile: written atomically (temporary file + rename), refused when it names a live
//! process, removed on exit only if it still names this process.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::error::ArbiterError;

/// A pidfile this process wrote.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: i32,
    /// The file's mode (`Settings::created_file_mode`).
    mode: u32,
}

impl Pidfile {
    /// Writes `pid` to `path` atomically, with exactly `mode` whatever the process's umask
    /// (gunicorn's pidfile is `-rw-r--r--`). Fails with [`ArbiterError::PidfileLive`] when
    /// the file names another process that is alive, or when it cannot be written.
    /// A relative `path` is taken from the current directory now and kept absolute, so
    /// that the file is still found (and removed) after the arbiter changes directory.
    pub fn create(path: &Path, pid: i32, mode: u32) -> Result<Pidfile, ArbiterError> {
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(other) = read_pid(path) {
            if other != pid && is_alive(other) {
                return Err(ArbiterError::PidfileLive {
                    path: path.to_path_buf(),
                    pid: other,
                });
            }
        }
        write_atomically(path, pid, mode).map_err(|source| ArbiterError::Pidfile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
            mode,
        })
    }

    /// Moves the pidfile to `path` (after an upgrade the new arbiter's `<pid>.2` becomes the
    /// pidfile). The new file is written before the old one is removed.
    pub fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        write_atomically(path, self.pid, self.mode)?;
        if read_pid(&self.path) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
        self.path = path.to_path_buf();
        Ok(())
    }
}

impl Drop for Pidfile {
    /// Removes the file only if it still names this process: after an upgrade it may name
    /// the new arbiter.
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pid a pidfile names, if it exists and holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // kill(pid, 0): EPERM means it exists but belongs to someone else.
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

fn write_atomically(path: &Path, pid: i32, mode: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // A leftover of ours is removed; anything else there (a planted symlink) makes the
        // exclusive create fail rather than be written through.
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        // Exactly `mode`, whatever the umask the process inherited.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        writeln!(file, "{pid}")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ferrocorn-pid-{}-{name}", std::process::id()))
    }

    #[test]
    fn written_then_removed_when_ours() {
        let path = temp_path("ours");
        let pidfile = Pidfile::create(&path, std::process::id() as i32, 0o644).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id() as i32));
        drop(pidfile);
        assert!(!path.exists());
    }

    #[test]
    fn live_pid_is_refused_stale_one_replaced() {
        let path = temp_path("live");
        // The parent of the test runner is alive and is not us.
        let live = nix::unistd::getppid().as_raw();
        std::fs::write(&path, format!("{live}\n")).unwrap();
        let error = Pidfile::create(&path, std::process::id() as i32, 0o644).unwrap_err();
        assert!(matches!(error, ArbiterError::PidfileLive { pid, .. } if pid == live));
        // A pid that cannot be alive (above pid_max) is stale.
        std::fs::write(&path, "2147483000\n").unwrap();
        let pidfile = Pidfile::create(&path, std::process::id() as i32, 0o644).unwrap();
        drop(pidfile);
        assert!(!path.exists());
    }

    /// Bug: under the default umask 0 the pidfile (and an upgrade's `<pid>.2`) was
    /// created world-writable, so any local user could make `kill $(cat pidfile)` hit
    /// another process. Its mode is now exactly the one asked for, whatever the umask (no
    /// umask is changed here: that is process-wide state).
    #[test]
    fn bug_the_pidfile_has_exactly_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        for mode in [0o644, 0o600, 0o666] {
            let path = temp_path(&format!("mode-{mode:o}"));
            let pidfile = Pidfile::create(&path, std::process::id() as i32, mode).unwrap();
            let found = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(found, mode, "pidfile mode {found:o}");
            drop(pidfile);
        }
    }

    #[test]
    fn not_removed_when_it_names_someone_else() {
        let path = temp_path("theirs");
        let pidfile = Pidfile::create(&path, std::process::id() as i32, 0o644).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pidfile);
        assert_eq!(read_pid(&path), Some(1));
        std::fs::remove_file(&path).unwrap();
    }
}
