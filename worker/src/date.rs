//! Time formatting for responses and the access log: HTTP-dates ([`http_date`], public for
//! applications), the `Date` header cached once a second, and the access log's
//! `[10/Oct/2000:13:55:36 +0000]`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::Moment;

/// The last second `httpdate` can format (9999-12-31T23:59:59Z): a later time (a file
/// modified in the far future) is shown as this one rather than making it panic.
const LAST_FORMATTABLE: u64 = 253_402_300_799;

/// Formats `secs` since the Unix epoch as an HTTP-date in its preferred form, IMF-fixdate
/// (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`, always 29 bytes. The worker's `Date`
/// header uses it; an application uses it for `Last-Modified` or `Expires`. A time after
/// 9999-12-31T23:59:59Z (a file modified in the far future) is shown as that second.
///
/// ```
/// assert_eq!(ferrocorn_worker::http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs.min(LAST_FORMATTABLE)))
}

/// Formats the access log's `%(t)s`: `[10/Oct/2000:13:55:36 +0000]` (always UTC), from the
/// fields of the IMF-fixdate (`Tue, 10 Oct 2000 13:55:36 GMT`).
pub(crate) fn log_date(secs: u64, out: &mut String) {
    let date = http_date(secs);
    let (day, month, year, time) = (&date[5..7], &date[8..11], &date[12..16], &date[17..25]);
    for piece in ["[", day, "/", month, "/", year, ":", time, " +0000]"] {
        out.push_str(piece);
    }
}

/// The current `Date` line (`Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`), reformatted only
/// when the second changes. The wall clock is read only when the monotonic clock the loop
/// reads anyway says the second may have changed: one `SystemTime::now()` a second instead
/// of one per loop turn.
#[derive(Debug)]
pub(crate) struct DateCache {
    secs: u64,
    line: [u8; 37],
    /// When (on the loop's monotonic clock) the wall clock's second next changes.
    next_check: Option<Moment>,
}

impl DateCache {
    pub fn new() -> DateCache {
        let mut line = [b' '; 37];
        line[..6].copy_from_slice(b"Date: ");
        line[35..].copy_from_slice(b"\r\n");
        let mut cache = DateCache {
            secs: u64::MAX,
            line,
            next_check: None,
        };
        cache.refresh(Moment::now());
        cache
    }

    /// Brings the date up to `now` (the loop's clock, read once per loop turn). Reads the wall
    /// clock only when a new second may have begun.
    #[inline]
    pub fn refresh(&mut self, now: Moment) {
        if self.next_check.is_some_and(|t| now < t) {
            return;
        }
        self.refresh_wall(now);
    }

    #[cold]
    fn refresh_wall(&mut self, now: Moment) {
        let since_epoch = self.set(SystemTime::now());
        // The monotonic and the wall clock run at the same rate (both are slewed by NTP); a
        // step of the wall clock shows at the next second.
        let to_next =
            Duration::from_secs(1) - Duration::from_nanos(since_epoch.subsec_nanos().into());
        self.next_check = now.checked_add(to_next);
    }

    /// Sets the date to the wall-clock time `wall`; returns it as time since the epoch.
    fn set(&mut self, wall: SystemTime) -> Duration {
        let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since_epoch.as_secs();
        if secs != self.secs {
            self.secs = secs;
            self.line[6..35].copy_from_slice(http_date(secs).as_bytes());
        }
        since_epoch
    }

    /// The whole header line: `Date: `, the date, CRLF (37 bytes).
    pub fn line(&self) -> &[u8; 37] {
        &self.line
    }

    /// Sets the cached second by hand.
    #[cfg(test)]
    pub fn set_for_test(&mut self, secs: u64) {
        self.set(UNIX_EPOCH + Duration::from_secs(secs));
    }

    /// The cached second.
    pub fn secs(&self) -> u64 {
        self.secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_example() {
        // RFC 9110 §5.6.7's example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn far_future_times_are_shown_as_the_last_one_formattable() {
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        let mut s = String::new();
        log_date(u64::MAX, &mut s);
        assert_eq!(s, "[31/Dec/9999:23:59:59 +0000]");
    }

    #[test]
    fn log_date_is_gunicorn_shaped() {
        let mut s = String::new();
        log_date(971_182_536, &mut s);
        assert_eq!(s, "[10/Oct/2000:12:55:36 +0000]");
    }

    #[test]
    fn cache_changes_only_with_the_second() {
        let mut cache = DateCache::new();
        let t = UNIX_EPOCH + Duration::from_millis(784_111_777_100);
        cache.set(t);
        assert_eq!(&cache.line()[6..35], b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(cache.line(), b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        cache.set(t + Duration::from_millis(800));
        assert_eq!(cache.secs(), 784_111_777);
        cache.set(t + Duration::from_millis(900));
        assert_eq!(&cache.line()[6..35], b"Sun, 06 Nov 1994 08:49:38 GMT");
    }

    #[test]
    fn refresh_reads_the_wall_clock_once_the_second_may_have_changed() {
        let mut cache = DateCache::new();
        let start = Moment::now();
        cache.refresh(start);
        let next = cache.next_check.unwrap();
        assert!(next > start && next <= start + Duration::from_secs(1));
        // Before the boundary nothing is read: a date set by hand stays.
        cache.set(UNIX_EPOCH);
        cache.refresh(next - Duration::from_nanos(1));
        assert_eq!(cache.secs(), 0);
        // At the boundary the wall clock is read again.
        cache.refresh(next);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(cache.secs().abs_diff(wall) <= 1);
        assert_eq!(&cache.line()[..6], b"Date: ");
        assert_eq!(&cache.line()[35..], b"\r\n");
    }
}
