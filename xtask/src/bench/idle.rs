//! Whether an idle ferrocorn goes back to sleep: after keep-alive traffic, with its
//! connections left open and silent, the CPU time its process tree uses over a second. A
//! worker that kept polling for them (`busy_poll`) would use most of a CPU. Measured here,
//! not asserted in a test: tests do not judge CPU time (it moves with the machine's load).

use std::time::Duration;

use anyhow::{Context, Result};

use super::loadgen;
use super::procfs;
use super::report::{Target, Verdict};
use super::servers::Instance;

/// The most of one CPU an idle server may use.
const LIMIT: f64 = 0.05;
/// Keep-alive connections left open, as the test this replaces had.
const CONNECTIONS: usize = 3;
/// Requests on each before it goes idle.
const REQUESTS: u64 = 100;
/// The wait before measuring, for the poll window to run out.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the idle server is measured: shorter than ferrocorn's default `keepalive` (2 s),
/// so that the connections are still open throughout.
const OVER: Duration = Duration::from_secs(1);

const WHAT: &str = "an idle ferrocorn sleeps: ≤ 5 % of a CPU with 3 idle keep-alive connections";

/// What [`measure`] saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleCpu {
    /// CPU time of the whole process tree over `over`.
    pub cpu: Duration,
    pub over: Duration,
}

impl IdleCpu {
    /// The share of one CPU used.
    pub fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.over.as_secs_f64()
    }
}

/// Serves `REQUESTS` hello requests on each of `CONNECTIONS` keep-alive connections of
/// `instance` (a ferrocorn serving hello), leaves them open and idle, and measures its CPU.
pub fn measure(instance: &Instance, ticks_per_second: u64) -> Result<IdleCpu> {
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let held = (0..CONNECTIONS)
        .map(|_| loadgen::sequential_then_idle(instance.addr, request, REQUESTS))
        .collect::<std::io::Result<Vec<_>>>()
        .context("keep-alive requests before the idle measurement")?;
    std::thread::sleep(SETTLE);
    let root = instance.root_pid();
    let before = procfs::tree_cpu(root, ticks_per_second);
    std::thread::sleep(OVER);
    let after = procfs::tree_cpu(root, ticks_per_second);
    drop(held);
    Ok(IdleCpu {
        cpu: after.saturating_sub(before),
        over: OVER,
    })
}

/// The target: an idle server's share of a CPU at most `LIMIT`.
pub fn target(idle: Option<&IdleCpu>, why_not: Option<&str>) -> Target {
    match idle {
        Some(idle) => Target {
            what: WHAT,
            measured: format!(
                "{:.1} % ({} ms of CPU in {} ms)",
                idle.share() * 100.0,
                idle.cpu.as_millis(),
                idle.over.as_millis()
            ),
            verdict: if idle.share() <= LIMIT {
                Verdict::Met
            } else {
                Verdict::Missed
            },
        },
        None => Target {
            what: WHAT,
            measured: String::new(),
            verdict: Verdict::Unmeasured(why_not.unwrap_or("ferrocorn did not run").to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_a_share_of_one_cpu() {
        let idle = |ms| IdleCpu {
            cpu: Duration::from_millis(ms),
            over: Duration::from_secs(1),
        };
        assert_eq!(target(Some(&idle(10)), None).verdict, Verdict::Met);
        assert_eq!(target(Some(&idle(50)), None).verdict, Verdict::Met);
        assert_eq!(target(Some(&idle(60)), None).verdict, Verdict::Missed);
        assert_eq!(
            target(Some(&idle(60)), None).measured,
            "6.0 % (60 ms of CPU in 1000 ms)"
        );
        assert!(matches!(
            target(None, Some("skipped")).verdict,
            Verdict::Unmeasured(why) if why == "skipped"
        ));
    }
}
