//! What `/proc` says of a process: the standard `process_*` metrics of the arbiter and the
//! resident memory of each worker. Read at scrape time by the metrics process.

use std::fs;

/// The standard process metrics (Prometheus client libraries' names and units).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The soft limit; `None` when unlimited.
    pub max_fds: Option<u64>,
    /// Seconds since the Unix epoch.
    pub start_time: f64,
}

/// The stats of process `pid`; `None` when it is gone or `/proc` cannot be read.
pub(crate) fn process_stats(pid: i32) -> Option<ProcessStats> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces and parentheses.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // stat(5) numbers fields from 1 (pid), 2 (comm), 3 (state): index = number - 3.
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let ticks = clock_ticks() as f64;
    let open_fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page_size()),
        open_fds,
        max_fds: max_open_files(pid),
        start_time: boot_time()? as f64 + field(22)? as f64 / ticks,
    })
}

/// The resident memory of process `pid` in bytes (`/proc/PID/statm`).
pub(crate) fn resident_bytes(pid: i32) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()))
}

/// The soft `RLIMIT_NOFILE` of `pid` (`/proc/PID/limits`); `None` when unlimited.
fn max_open_files(pid: i32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// When the machine booted, in seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as u64,
        _ => 100,
    }
}

fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) if size > 0 => size as u64,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_described() {
        let stats = process_stats(std::process::id() as i32).expect("own stats");
        assert!(stats.resident_bytes > 0);
        assert!(stats.virtual_bytes >= stats.resident_bytes);
        assert!(stats.open_fds >= 3, "{stats:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(stats.start_time <= now + 1.0 && stats.start_time > now - 86_400.0 * 365.0);
        assert!(resident_bytes(std::process::id() as i32).unwrap() > 0);
        assert_eq!(process_stats(-1), None);
    }
}
