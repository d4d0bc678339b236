//! Signal delivery into the arbiter's loop through a self-pipe: the handler only writes the
//! signal number to a non-blocking pipe; the loop reads and acts on it. Nothing else ever
//! runs inside a handler.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use crate::error::{system, ArbiterError};

/// The signals the arbiter acts on (gunicorn's set).
pub const HANDLED: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Write end of the self-pipe, read by the handler; -1 when not installed.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: nix::libc::c_int) {
    let saved = Errno::last_raw();
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` outlives the call. A full pipe
        // (EAGAIN) only loses a duplicate wake-up: the loop drains before acting.
        unsafe { nix::libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    Errno::set_raw(saved);
}

/// The arbiter's end of the self-pipe. Dropping it restores the default handlers.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalPipe {
    /// Creates the pipe and installs the handlers for [`HANDLED`]. Fails when pipe2 or
    /// sigaction fails. Only one may exist per process.
    pub fn install() -> Result<SignalPipe, ArbiterError> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| system("pipe2", e))?;
        PIPE_WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in HANDLED {
            // SAFETY: `on_signal` only calls async-signal-safe functions (write, errno).
            unsafe { sigaction(signal, &action) }.map_err(|e| system("sigaction", e))?;
        }
        let mut unblock = SigSet::empty();
        for signal in HANDLED {
            unblock.add(signal);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&unblock), None)
            .map_err(|e| system("sigprocmask", e))?;
        Ok(SignalPipe { read, write })
    }

    /// Waits up to `timeout` for signals and returns those received, in arrival order
    /// (adjacent SIGCHLDs collapsed). Returns early when one arrives. The kernel itself
    /// merges a signal sent again while the first is still pending.
    pub fn wait(&self, timeout: Duration) -> Vec<Signal> {
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout); // EINTR: a signal arrived; the read below sees it.
        self.drain()
    }

    fn drain(&self) -> Vec<Signal> {
        let mut received = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for &byte in &buf[..n] {
                        if let Ok(signal) = Signal::try_from(byte as i32) {
                            // Each TTIN/TTOU counts; one CHLD stands for many (reaping
                            // collects every exited child).
                            let repeated_chld = signal == Signal::SIGCHLD
                                && received.last() == Some(&Signal::SIGCHLD);
                            if !repeated_chld {
                                received.push(signal);
                            }
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        received
    }

    /// In a forked child: closes the child's copies of both pipe ends, so that a worker
    /// holds no descriptor of the arbiter's signal delivery.
    ///
    /// # Safety
    ///
    /// Call it only in a forked child, at most once, and never drop or use this
    /// `SignalPipe` there afterwards: the child must leave through `_exit` or `exec`. The
    /// `OwnedFd`s still name the closed descriptors; dropping them would close whatever
    /// file has taken those numbers since (an I/O-safety violation).
    pub unsafe fn close_in_child(&self) {
        // SAFETY: both descriptors are open in the child (inherited copies); by this
        // function's contract nothing in the child uses or drops them again.
        unsafe {
            nix::libc::close(self.read.as_raw_fd());
            nix::libc::close(self.write.as_raw_fd());
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        PIPE_WRITE_FD.store(-1, Ordering::Relaxed);
        reset_to_default();
    }
}

/// Blocks every signal until dropped (then the previous mask returns). Held across `fork`:
/// a signal sent to a child before it has reset its handlers would otherwise run the
/// arbiter's handler there and write into the arbiter's self-pipe (a TERM meant for a new
/// worker would stop the arbiter). The child calls [`reset_in_child`], which unblocks.
#[derive(Debug)]
pub struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    /// Blocks all signals; pending ones are delivered when the guard drops.
    pub fn block_all() -> BlockedSignals {
        let mut previous = SigSet::empty();
        let _ = nix::sys::signal::sigprocmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut previous),
        );
        BlockedSignals { previous }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// In a freshly forked child: forget the arbiter's pipe (the caller closes its copy by
/// dropping or forgetting it), give every signal its default disposition and unblock all,
/// so the worker or the re-executed binary starts with a clean signal state.
pub fn reset_in_child() {
    PIPE_WRITE_FD.store(-1, Ordering::Relaxed);
    reset_to_default();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn reset_to_default() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in HANDLED {
        // SAFETY: installing SIG_DFL runs no code of ours in a handler.
        let _ = unsafe { sigaction(signal, &default) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_arrive_through_the_pipe_in_order() {
        // Handlers and the signal mask are the process's: installed in a child.
        ferrocorn_tests::in_child_process!(
            signals_arrive_through_the_pipe_in_order,
            signals_arrive_in_order
        );
    }

    fn signals_arrive_in_order() {
        let pipe = SignalPipe::install().unwrap();
        for signal in [
            Signal::SIGTTIN,
            Signal::SIGTTIN,
            Signal::SIGCHLD,
            Signal::SIGCHLD,
        ] {
            nix::sys::signal::raise(signal).unwrap();
        }
        nix::sys::signal::raise(Signal::SIGTTOU).unwrap();
        let mut received = Vec::new();
        for _ in 0..10 {
            received.extend(pipe.wait(Duration::from_millis(100)));
            if received.contains(&Signal::SIGTTOU) {
                break;
            }
        }
        drop(pipe);
        // Only this process's own SIGCHLD could come besides (it forks nothing here).
        received.retain(|&signal| signal != Signal::SIGCHLD);
        assert_eq!(
            received,
            vec![Signal::SIGTTIN, Signal::SIGTTIN, Signal::SIGTTOU],
            "each TTIN counts"
        );
    }
}
