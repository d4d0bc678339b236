//! A worker's memory as `/proc` reports it, for `max_worker_memory`: PSS or USS from
//! `/proc/PID/smaps_rollup`, RSS from `/proc/PID/status`. One read into a stack buffer per
//! sample: nothing here can make the arbiter's loop wait on a worker.

use std::fs::File;
use std::io::{self, Read};

use ferrocorn_config::MemoryMetric;
use nix::unistd::Pid;

/// Room for the whole file: `smaps_rollup` is about 20 lines (under 1 KiB), `status` about
/// 60 (under 2 KiB). What does not fit is not read.
const READ_LIMIT: usize = 4096;

/// The setting's value, for the log.
pub(super) fn metric_name(metric: MemoryMetric) -> &'static str {
    match metric {
        MemoryMetric::Pss => "pss",
        MemoryMetric::Rss => "rss",
        MemoryMetric::Uss => "uss",
    }
}

/// `pid`'s memory in bytes, measured as `metric`.
///
/// RSS comes from the counters of `/proc/PID/status` (`VmRSS`, what `ps` shows). PSS and
/// USS need `/proc/PID/smaps_rollup` (Linux 4.14), which the kernel computes by walking the
/// process's page tables: it costs time in proportion to the process's mapped memory, which
/// is why the arbiter samples each worker only once per `memory_check_interval`.
pub(super) fn sample(pid: Pid, metric: MemoryMetric) -> io::Result<u64> {
    let (file, keys): (&str, &[&str]) = match metric {
        MemoryMetric::Rss => ("status", &["VmRSS"]),
        MemoryMetric::Pss => ("smaps_rollup", &["Pss"]),
        MemoryMetric::Uss => ("smaps_rollup", &["Private_Clean", "Private_Dirty"]),
    };
    let mut buf = [0u8; READ_LIMIT];
    let len = read_bounded(&format!("/proc/{pid}/{file}"), &mut buf)?;
    let text = String::from_utf8_lossy(&buf[..len]);
    sum_kib(&text, keys)
        .map(|kib| kib.saturating_mul(1024))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/{file} has no {}", keys.join(" or ")),
            )
        })
}

/// Reads `path` into `buf` until its end or `buf` is full; the bytes read.
fn read_bounded(path: &str, buf: &mut [u8]) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(len)
}

/// The sum of the `KEY:   N kB` lines named by `keys` (each counted once), in KiB; `None`
/// when one of them is missing.
fn sum_kib(text: &str, keys: &[&str]) -> Option<u64> {
    let mut total = 0u64;
    for key in keys {
        let value = text.lines().find_map(|line| {
            let (name, rest) = line.split_once(':')?;
            (name == *key).then_some(rest)
        })?;
        let number = value.trim().strip_suffix("kB")?.trim();
        total = total.saturating_add(number.parse::<u64>().ok()?);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS_ROLLUP: &str = "\
55d0c3e00000-7ffd5a5f4000 ---p 00000000 00:00 0                          [rollup]
Rss:               14212 kB
Pss:                6180 kB
Pss_Dirty:          4168 kB
Pss_Anon:           4064 kB
Pss_File:           2012 kB
Pss_Shmem:           104 kB
Shared_Clean:       9868 kB
Shared_Dirty:        216 kB
Private_Clean:       104 kB
Private_Dirty:      4024 kB
Referenced:        14212 kB
Anonymous:          4064 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";

    #[test]
    fn pss_and_uss_are_read_from_smaps_rollup() {
        // `Pss:` itself, not `Pss_Dirty:` or `SwapPss:` that share its prefix or suffix.
        assert_eq!(sum_kib(SMAPS_ROLLUP, &["Pss"]), Some(6180));
        assert_eq!(
            sum_kib(SMAPS_ROLLUP, &["Private_Clean", "Private_Dirty"]),
            Some(4128)
        );
        assert_eq!(sum_kib(SMAPS_ROLLUP, &["Missing"]), None);
        assert_eq!(sum_kib("Pss: many kB\n", &["Pss"]), None);
        assert_eq!(sum_kib("Pss: 12\n", &["Pss"]), None, "no unit");
    }

    #[test]
    fn every_metric_of_this_process_can_be_sampled() {
        let me = nix::unistd::getpid();
        // Smallest first: memory the other tests allocate meanwhile only widens the gaps.
        let uss = sample(me, MemoryMetric::Uss).expect("uss");
        let pss = sample(me, MemoryMetric::Pss).expect("pss");
        let rss = sample(me, MemoryMetric::Rss).expect("rss");
        assert!(rss > 0 && pss > 0 && uss > 0, "{rss} {pss} {uss}");
        // Unique pages are part of the proportional share, which is part of the resident set
        // (within what other threads freed between two reads).
        assert!(uss <= pss + (4 << 20), "uss {uss} pss {pss}");
        assert!(pss <= rss + (4 << 20), "pss {pss} rss {rss}");
    }

    #[test]
    fn a_process_that_is_gone_is_an_error() {
        // Pid numbers stop well below this (`/proc/sys/kernel/pid_max` is at most 2^22).
        let gone = Pid::from_raw(i32::MAX);
        assert!(sample(gone, MemoryMetric::Pss).is_err());
        assert!(sample(gone, MemoryMetric::Rss).is_err());
    }
}
