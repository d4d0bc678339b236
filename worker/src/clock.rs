//! The loop's clock: one reading of CLOCK_MONOTONIC (the clock `Instant` reads) gives both
//! the `Instant` for deadlines and nanoseconds for request durations, so that a duration is
//! one subtraction, where `Instant` arithmetic costs a few dozen instructions per request
//! (see `docs/BENCHMARKS.md`).

use std::time::{Duration, Instant};

/// Nanoseconds on CLOCK_MONOTONIC (0 if the clock cannot be read, which Linux never does).
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Tells the time as an `Instant` and as [`monotonic_ns`] with one reading of the clock:
/// the `Instant` is the epoch's plus the nanoseconds since (no second call).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
    epoch_ns: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
            epoch_ns: monotonic_ns(),
        }
    }

    /// The time now.
    #[inline]
    pub(crate) fn now(&self) -> (Instant, u64) {
        let ns = monotonic_ns();
        let since = Duration::from_nanos(ns.saturating_sub(self.epoch_ns));
        (self.epoch.checked_add(since).unwrap_or(self.epoch), ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_nanoseconds_agree() {
        let clock = Clock::new();
        let (a, a_ns) = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let (b, b_ns) = clock.now();
        assert!(b_ns - a_ns >= 20_000_000);
        assert_eq!(b.duration_since(a).as_nanos(), u128::from(b_ns - a_ns));
        let real = Instant::now();
        assert!(real >= b && real - b < Duration::from_millis(100));
    }
}
