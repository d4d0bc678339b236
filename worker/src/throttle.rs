//! Reports of a failure that can repeat many times a second (an access log that cannot be
//! written, `accept` out of descriptors): the first is reported at once, later ones at most
//! once per interval with how many there were, so that the error log stays readable and
//! cannot fill a disk of its own.

use std::time::Duration;

use crate::clock::Moment;

/// How often a repeating failure is reported at most.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Counts the failures of one kind and says when to report them.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    interval: Duration,
    /// No report before this time (`None`: report the next failure at once).
    quiet_until: Option<Moment>,
    /// Failures since the last report.
    unreported: u64,
}

impl Throttle {
    /// A throttle reporting at most once per `interval`.
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            quiet_until: None,
            unreported: 0,
        }
    }

    /// Counts one failure at `now`. `Some(n)` when it is to be reported now: `n` failures
    /// since the last report, this one included (1 for the first).
    pub fn failure(&mut self, now: Moment) -> Option<u64> {
        self.unreported += 1;
        self.report(now)
    }

    /// Notes a success at `now`. `Some(n)` when the failures have stopped and `n` of them are
    /// not reported yet, and the interval allows a report: the caller says the failure is
    /// over. Cheap when nothing failed.
    pub fn success(&mut self, now: Moment) -> Option<u64> {
        if self.unreported == 0 {
            return None;
        }
        self.report(now)
    }

    fn report(&mut self, now: Moment) -> Option<u64> {
        if self.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        self.quiet_until = Some(now + self.interval);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_failure_is_reported_then_one_report_per_interval_with_a_count() {
        let mut t = Throttle::new(10 * SECOND);
        let start = Moment::now();
        assert_eq!(t.failure(start), Some(1));
        // 35,000 failures in 5 s: silence.
        for i in 0..35_000u32 {
            let now = start + SECOND * i / 7_000;
            assert_eq!(t.failure(now), None, "failure {i}");
        }
        // The next one after the interval reports them all.
        assert_eq!(t.failure(start + 10 * SECOND), Some(35_001));
        assert_eq!(t.failure(start + 11 * SECOND), None);
        assert_eq!(t.failure(start + 21 * SECOND), Some(2));
    }

    #[test]
    fn successes_report_what_is_left_once_the_interval_allows() {
        let mut t = Throttle::new(10 * SECOND);
        let start = Moment::now();
        assert_eq!(t.success(start), None, "nothing failed");
        assert_eq!(t.failure(start), Some(1));
        assert_eq!(t.success(start + SECOND), None, "all reported");
        // Failures and successes taking turns: no report each time either.
        for i in 2..9 {
            assert_eq!(t.failure(start + SECOND * i), None);
            assert_eq!(t.success(start + SECOND * i), None);
        }
        assert_eq!(t.success(start + 10 * SECOND), Some(7));
        assert_eq!(t.success(start + 30 * SECOND), None);
        // A failure long after is news: reported at once.
        assert_eq!(t.failure(start + 40 * SECOND), Some(1));
    }
}
