//! What the bench reads from `/proc`: a server's process tree, its CPU time and memory,
//! the machine's facts, and the CPU time of the load generator.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{sysconf, SysconfVar};

/// The fields of `/proc/<pid>/stat` the bench uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime + cutime + cstime in clock ticks: the process's own CPU time plus that
    /// of the children it has reaped, so a worker that exits during a run still counts.
    pub cpu_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name sits in parentheses and may hold
/// spaces or parentheses itself, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
    let ppid = u32::try_from(field(1)?).ok()?;
    let cpu: i64 = (11..=14).map(field).sum::<Option<i64>>()?;
    Some(ProcStat {
        pid,
        ppid,
        cpu_ticks: u64::try_from(cpu).ok()?,
    })
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process now alive, as (pid, ppid).
fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// `root` and all its descendants alive now, root first.
pub fn process_tree(root: u32) -> Vec<ProcStat> {
    let all = all_processes();
    let mut children: HashMap<u32, Vec<&ProcStat>> = HashMap::new();
    for stat in &all {
        children.entry(stat.ppid).or_default().push(stat);
    }
    let mut tree: Vec<ProcStat> = all.iter().filter(|s| s.pid == root).copied().collect();
    let mut next = 0;
    while next < tree.len() {
        let pid = tree[next].pid;
        if let Some(kids) = children.get(&pid) {
            tree.extend(kids.iter().map(|s| **s));
        }
        next += 1;
    }
    tree
}

/// Clock ticks per second for `/proc/<pid>/stat` times.
pub fn clock_ticks_per_second() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as u64,
        _ => 100,
    }
}

/// CPU time used so far by `root`'s whole process tree.
pub fn tree_cpu(root: u32, ticks_per_second: u64) -> Duration {
    let ticks: u64 = process_tree(root).iter().map(|s| s.cpu_ticks).sum();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64)
}

/// Memory of one process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub peak_kib: u64,
    /// Resident set size now (`VmRSS`).
    pub current_kib: u64,
}

/// Reads `VmHWM` and `VmRSS` out of a `/proc/<pid>/status` text.
pub fn parse_status_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        peak_kib: field("VmHWM:")?,
        current_kib: field("VmRSS:")?,
    })
}

/// The memory of process `pid`, or `None` once it is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status_memory(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Which CPU time to read for the load generator.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// This process (the built-in generator runs on threads of xtask).
    SelfProcess,
    /// The children this process has reaped (wrk, once waited for).
    Children,
}

/// User plus system CPU time of `who`.
pub fn rusage_cpu(who: Who) -> Duration {
    let who = match who {
        Who::SelfProcess => UsageWho::RUSAGE_SELF,
        Who::Children => UsageWho::RUSAGE_CHILDREN,
    };
    let Ok(usage) = getrusage(who) else {
        return Duration::ZERO;
    };
    let micros = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec().max(0) as u64)
            + Duration::from_micros(tv.tv_usec().max(0) as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// The niceness of this process's main thread (field 19 of `/proc/self/stat`), 0 if
/// unreadable.
pub fn own_nice() -> i32 {
    fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().nth(16)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Sets the niceness of the calling thread, which the processes and threads it starts
/// afterwards inherit. Needs root (or CAP_SYS_NICE) for a value below the current one.
pub fn set_priority(nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority only reads its three integer arguments; `0` names the calling
    // thread, and PRIO_PROCESS with who = 0 never touches another process.
    let rc = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, nice) };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Facts about the machine the bench ran on.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory: String,
    /// `/proc/loadavg` when the bench started: other work on a shared machine skews figures.
    pub loadavg_before: String,
    pub loadavg_after: String,
}

impl Machine {
    /// Reads the machine's facts now.
    pub fn read() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
            memory,
            loadavg_before: loadavg(),
            loadavg_after: String::new(),
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_the_name() {
        let line = "4242 (we (ird) name) S 4200 4242 4242 0 -1 4194560 100 0 0 0 \
                    7 3 2 1 20 0 1 0 123 4096 100 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.ppid, 4200);
        assert_eq!(stat.cpu_ticks, 7 + 3 + 2 + 1);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_memory_fields() {
        let status =
            "Name:\tnginx\nVmPeak:\t  10000 kB\nVmHWM:\t    3120 kB\nVmRSS:\t    2904 kB\n";
        assert_eq!(
            parse_status_memory(status),
            Some(Memory {
                peak_kib: 3120,
                current_kib: 2904
            })
        );
        // Kernel threads have no VmRSS line.
        assert_eq!(parse_status_memory("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn own_nice_is_in_range() {
        assert!((-20..=19).contains(&own_nice()));
    }

    #[test]
    fn own_process_tree_holds_this_process_and_its_cpu() {
        let me = std::process::id();
        let tree = process_tree(me);
        assert_eq!(tree.first().map(|s| s.pid), Some(me));
        assert!(memory(me).is_some_and(|m| m.peak_kib >= m.current_kib && m.current_kib > 0));
    }
}
