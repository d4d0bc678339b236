//! Upgrades (USR2): re-executing the binary with the listeners inherited, and taking the
//! pidfile over once the previous arbiter has exited.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::unistd::{fork, getppid, ForkResult};

use super::Master;
use crate::child;
use crate::listeners::{self, Listener, FERROCORN_FD_ENV, FERROCORN_METRICS_FD_ENV};
use crate::notify::sd_notify;
use crate::signals::{self, BlockedSignals};

/// Exit code of the re-executing child when the binary cannot be executed (the shell's).
const EXEC_FAILED: i32 = 127;

impl Master {
    /// USR2: fork and execute the ferrocorn binary again with the listeners inherited
    /// through `FERROCORN_FD`. The new arbiter writes `<pidfile>.2` and takes the pidfile
    /// over once this one exits (TERM to this one completes the upgrade).
    pub(super) fn reexec(&mut self) {
        if let Some(child) = self.reexec_child {
            tracing::warn!("USR2 ignored: upgraded arbiter (pid:{child}) is already running");
            return;
        }
        if let Some(parent) = self.upgrade_parent {
            tracing::warn!("USR2 ignored: the previous arbiter (pid:{parent}) is still running");
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => strip_deleted(exe),
            Err(error) => {
                tracing::error!("cannot upgrade: cannot find the running binary: {error}");
                return;
            }
        };
        let fds: Vec<i32> = self.listeners.iter().map(Listener::raw_fd).collect();
        let fd_list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let Some(program) = cstring(exe.as_os_str().as_bytes()) else {
            tracing::error!("cannot upgrade: the binary path contains a NUL byte");
            return;
        };
        let argv: Option<Vec<CString>> = std::env::args_os()
            .map(|arg| cstring(arg.as_bytes()))
            .collect();
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(key, _)| key != FERROCORN_FD_ENV && key != FERROCORN_METRICS_FD_ENV)
            .collect();
        env.push((FERROCORN_FD_ENV.into(), fd_list.into()));
        let metrics_listener = self.metrics.as_ref().map(|m| &m.listener);
        if let Some(listener) = metrics_listener {
            env.push((
                FERROCORN_METRICS_FD_ENV.into(),
                listener.raw_fd().to_string().into(),
            ));
        }
        let envp: Option<Vec<CString>> = env
            .iter()
            .map(|(key, value)| {
                let mut pair = key.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                cstring(&pair)
            })
            .collect();
        let (Some(argv), Some(envp)) = (argv, envp) else {
            tracing::error!(
                "cannot upgrade: an argument or environment variable contains a NUL byte"
            );
            return;
        };
        let start_dir = cstring(self.start_dir.as_os_str().as_bytes());
        let blocked = BlockedSignals::block_all();
        // SAFETY: single-threaded arbiter (`Master::start` checks it); the child runs under
        // `child::guard`: it executes the binary or ends in _exit, never returning or
        // unwinding into the loop.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            drop(blocked);
        }
        match forked {
            Err(error) => tracing::error!("cannot upgrade: fork failed: {error}"),
            Ok(ForkResult::Child) => child::guard(
                || {
                    // SAFETY: this is the forked child, which leaves through execve or
                    // `child::guard`'s _exit: the `Master` holding the pipe is never
                    // dropped here.
                    unsafe { self.signals.close_in_child() };
                    signals::reset_in_child();
                    if let Some(dir) = &start_dir {
                        let _ = nix::unistd::chdir(dir.as_c_str());
                    }
                    let metrics = metrics_listener
                        .map(std::slice::from_ref)
                        .unwrap_or_default();
                    if listeners::prepare_inheritance(&self.listeners).is_ok()
                        && listeners::prepare_inheritance(metrics).is_ok()
                    {
                        let _ = nix::unistd::execve(&program, &argv, &envp);
                    }
                    EXEC_FAILED
                },
                |_| {},
                EXEC_FAILED,
            ),
            Ok(ForkResult::Parent { child }) => {
                tracing::info!(
                    "Upgrading: started {} as arbiter (pid:{child})",
                    exe.display()
                );
                self.reexec_child = Some(child);
            }
        }
    }

    /// After an upgrade: once the old arbiter has exited, the pidfile becomes ours.
    pub(super) fn take_over_from_parent(&mut self) {
        let Some(parent) = self.upgrade_parent else {
            return;
        };
        if getppid() == parent {
            return;
        }
        self.upgrade_parent = None;
        tracing::info!("The previous arbiter (pid:{parent}) has exited: this one takes over");
        if let (Some(pidfile), Some(path)) = (self.pidfile.as_mut(), self.settings.pidfile.as_ref())
        {
            if let Err(error) = pidfile.rename_to(&self.start_dir.join(path)) {
                tracing::error!("cannot write pidfile {}: {error}", path.display());
            }
        }
        sd_notify(&format!("MAINPID={}", self.pid));
    }
}

/// `/proc/self/exe` of a binary replaced on disk reads `PATH (deleted)`; the new binary is
/// at `PATH`.
fn strip_deleted(exe: PathBuf) -> PathBuf {
    let bytes = exe.as_os_str().as_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(stripped) => PathBuf::from(std::ffi::OsStr::from_bytes(stripped)),
        None => exe,
    }
}

fn cstring(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}
