//! The guard around everything a forked child runs. The child starts as a copy of the
//! arbiter, in the middle of the arbiter's loop: if it returned or unwound from there, the
//! `Master` it copied would be dropped in the child, deleting the live arbiter's pidfile and
//! unlinking its Unix socket files. So every path out of a child, a panic included, ends in
//! `_exit`, which runs no destructor and no `atexit` handler inherited from the arbiter.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ferrocorn_worker::panic_message;

/// Runs `body` in a freshly forked child and exits the process with the code it returns.
/// If `body` panics, `on_panic` gets the panic's message (to leave it where the arbiter
/// will read it) and the process exits with `panic_code`. Never returns.
pub(crate) fn guard(body: impl FnOnce() -> i32, on_panic: impl FnOnce(&str), panic_code: i32) -> ! {
    let code = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let message = panic_message(&*payload);
            // A payload whose destructor panics again would unwind out of here.
            std::mem::forget(payload);
            let reported = catch_unwind(AssertUnwindSafe(|| on_panic(&message)));
            if let Err(payload) = reported {
                std::mem::forget(payload);
            }
            panic_code
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit(2) ends the process at once; nothing of the arbiter's state it leaves
    // behind (destructors, atexit handlers, stdio buffers flushed above) belongs to this
    // child.
    unsafe { nix::libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ferrocorn_tests::in_child_process;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    /// Forks, runs `child` under the guard in the child, and returns how the child ended.
    fn in_child(child: impl FnOnce() -> i32, on_panic: impl FnOnce(&str)) -> WaitStatus {
        // SAFETY: the child only runs `child` and `on_panic` (allocation, a file write) and
        // leaves through `guard`, which ends in _exit: it never returns into the test
        // harness, whose other threads do not exist in the child.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => guard(child, on_panic, 42),
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    // Each test forks from a process of its own (`in_child_process!`): a fork of the
    // multi-threaded test runner copies whatever lock another thread holds at that moment
    // (stdout's, while the runner prints a result), and the child's flush in `guard` would
    // wait on it forever.

    #[test]
    fn a_panic_in_the_child_ends_in_exit_with_its_message() {
        in_child_process!(a_panic_in_the_child_ends_in_exit_with_its_message, || {
            let path = std::env::temp_dir().join(format!("ferrocorn-guard-{}", std::process::id()));
            let status = in_child(
                || panic!("boom {}", 7),
                |message| std::fs::write(&path, message).expect("write"),
            );
            assert!(matches!(status, WaitStatus::Exited(_, 42)), "{status:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "boom 7");
            std::fs::remove_file(&path).unwrap();
        });
    }

    #[test]
    fn a_panic_in_the_child_drops_nothing_of_the_frames_it_was_forked_in() {
        /// Stands for the arbiter's `Master`, whose destructors remove its files.
        struct Owner(std::path::PathBuf);
        impl Drop for Owner {
            fn drop(&mut self) {
                let _ = std::fs::write(&self.0, "dropped");
            }
        }
        in_child_process!(
            a_panic_in_the_child_drops_nothing_of_the_frames_it_was_forked_in,
            || {
                let path =
                    std::env::temp_dir().join(format!("ferrocorn-drop-{}", std::process::id()));
                let owner = Owner(path.clone());
                let status = in_child(|| panic!("in the child"), |_| {});
                assert!(matches!(status, WaitStatus::Exited(_, 42)), "{status:?}");
                assert!(
                    !path.exists(),
                    "the child dropped a value of the parent's frames"
                );
                drop(owner);
                assert!(path.exists());
                std::fs::remove_file(&path).unwrap();
            }
        );
    }

    #[test]
    fn the_body_chooses_the_exit_code() {
        in_child_process!(the_body_chooses_the_exit_code, || {
            let status = in_child(|| 3, |_| {});
            assert!(matches!(status, WaitStatus::Exited(_, 3)), "{status:?}");
        });
    }
}
