//! Processes as the tests see them through `/proc`: children, descendants, names, memory,
//! sockets; signals; and reaping what a test started.

use super::*;

/// Makes the test process adopt orphaned descendants (an upgraded arbiter whose parent
/// exited) so that `Drop` can reap them instead of leaving zombies behind.
pub(crate) fn become_subreaper() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// Reaps `pid` if it is a (zombie) child of the test process; harmless otherwise.
pub(crate) fn reap(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// SIGKILLs `pid` and whatever it started, unless already gone.
pub(crate) fn all_descendants_killed(pid: i32) {
    for child in descendants(pid) {
        if is_running(child) {
            send_signal(child, Signal::SIGKILL);
        }
    }
    if is_running(pid) {
        send_signal(pid, Signal::SIGKILL);
    }
}

pub(crate) fn kill_tree(pid: i32, child: &mut Child) {
    all_descendants_killed(pid);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn send_signal(pid: i32, signal: Signal) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
}

/// True while `pid` exists and is not a zombie.
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => process_state(&stat) != Some('Z'),
        Err(_) => false,
    }
}

/// The state letter and parent pid from `/proc/PID/stat` (fields after the `(comm)`).
pub(crate) fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The fields of `/proc/PID/stat` after the `(comm)`, which may itself hold spaces: the
/// state is the first, the parent pid the second. (No CPU times: tests do not judge CPU
/// use; `cargo xtask bench` measures it.)
pub(crate) fn stat_fields(stat: &str) -> impl Iterator<Item = &str> {
    stat.rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
}

pub(crate) fn parent_of(stat: &str) -> Option<i32> {
    stat_fields(stat).nth(1)?.parse().ok()
}

/// The peak resident set size (`VmHWM` in `/proc/PID/status`) of `pid`, in KiB; `None`
/// when the process is gone. A memory bound, not a timing: a worker that holds a request
/// body in memory shows it here after the request has ended.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// The resident memory of process `pid` now (`VmRSS`), in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

pub(crate) fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The live (non-zombie) children of `pid`, from `/proc`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        if parent_of(&stat) == Some(pid) && process_state(&stat) != Some('Z') {
            found.push(child);
        }
    }
    found.sort_unstable();
    found
}

/// All live descendants of `pid`, children first.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(next) = queue.pop() {
        for child in children(next) {
            if !found.contains(&child) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// The process name of `pid` (`/proc/PID/comm`).
pub fn process_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_string())
}

/// The workers of arbiter `pid`: its live children named [`WORKER_PROCESS_NAME`].
pub fn worker_pids_of(pid: i32) -> Vec<i32> {
    children(pid)
        .into_iter()
        .filter(|&child| process_name(child).as_deref() == Some(WORKER_PROCESS_NAME))
        .collect()
}

/// The sockets process `pid` has open, as `socket:[INODE]` names from `/proc/PID/fd`.
/// A worker's set grows by one when it accepts a connection: take the set while the
/// worker is idle, connect, then wait for a name that was not there (see
/// [`has_new_socket`]). (Matching `/proc/net/tcp` instead misses entries while other
/// connections churn: the kernel's table walk is not a snapshot.)
pub fn socket_names(pid: i32) -> BTreeSet<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .filter(|link| link.starts_with("socket:"))
        .collect()
}

/// True when `pid` has a socket open that is not in `before` (see [`socket_names`]).
pub fn has_new_socket(pid: i32, before: &BTreeSet<String>) -> bool {
    socket_names(pid).difference(before).next().is_some()
}
