//! The worker's clock: [`Moment`], a reading of CLOCK_MONOTONIC (the clock `Instant` reads)
//! in nanoseconds. The loop's deadlines, idle times and request durations are moments, so
//! that setting a deadline is an addition and a duration a subtraction of two integers,
//! where `Instant` arithmetic normalises seconds and nanoseconds and checks for overflow on
//! every step (see `docs/BENCHMARKS.md`).

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time on CLOCK_MONOTONIC, in nanoseconds since an unspecified start (the
/// machine's boot on Linux). Arithmetic saturates: 2^64 ns is over 580 years of uptime, so
/// only a duration from the configuration that is "forever" ever reaches the end, and a
/// deadline at the end never comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Moment(u64);

impl Moment {
    /// The time now.
    #[inline]
    pub(crate) fn now() -> Moment {
        let mut ts = nix::libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        // CLOCK_MONOTONIC cannot fail on Linux; if it did, `ts` would stay zero.
        unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
        Moment(
            (ts.tv_sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(ts.tv_nsec as u64),
        )
    }

    /// Nanoseconds from `earlier` to this moment (0 if `earlier` is later).
    #[inline]
    pub(crate) fn nanos_since(self, earlier: Moment) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The time from `earlier` to this moment (zero if `earlier` is later).
    #[inline]
    pub(crate) fn saturating_duration_since(self, earlier: Moment) -> Duration {
        Duration::from_nanos(self.nanos_since(earlier))
    }

    /// The time since this moment.
    pub(crate) fn elapsed(self) -> Duration {
        Moment::now().saturating_duration_since(self)
    }

    /// This moment plus `d`, or `None` past the clock's end.
    pub(crate) fn checked_add(self, d: Duration) -> Option<Moment> {
        let ns = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_add(ns).map(Moment)
    }
}

/// `d` in nanoseconds, saturating.
#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl Add<Duration> for Moment {
    type Output = Moment;

    /// Saturates at the clock's end: a deadline "forever" away.
    #[inline]
    fn add(self, d: Duration) -> Moment {
        Moment(self.0.saturating_add(nanos(d)))
    }
}

impl Sub<Duration> for Moment {
    type Output = Moment;

    #[inline]
    fn sub(self, d: Duration) -> Moment {
        Moment(self.0.saturating_sub(nanos(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn moments_follow_the_monotonic_clock() {
        // The moments are read between the instants: on the same clock, their interval
        // lies within the instants' whatever the scheduling.
        let real_a = Instant::now();
        let a = Moment::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = Moment::now();
        let real_b = Instant::now();
        let ours = b.saturating_duration_since(a);
        let theirs = real_b.duration_since(real_a);
        assert!(ours >= Duration::from_millis(20));
        assert!(ours <= theirs, "{ours:?} {theirs:?}");
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert!(a.elapsed() >= ours);
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Moment(5_000_000_000);
        assert_eq!(t + Duration::from_millis(1500), Moment(6_500_000_000));
        assert_eq!(t - Duration::from_secs(2), Moment(3_000_000_000));
        assert_eq!(t - Duration::from_secs(10), Moment(0));
        assert_eq!(t + Duration::MAX, Moment(u64::MAX));
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(
            t.checked_add(Duration::from_nanos(1)),
            Some(Moment(5_000_000_001))
        );
        assert_eq!(Moment(7).nanos_since(Moment(9)), 0);
    }
}
