//! Time formatting for responses and the access log: the `Date` header (IMF-fixdate,
//! RFC 9110 §5.6.7) cached once a second, and the access log's `[10/Oct/2000:13:55:36 +0000]`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub weekday: usize,
}

/// Converts seconds since the Unix epoch to a UTC date (Howard Hinnant's days_from_civil
/// inverse).
pub(crate) fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        weekday: (days.rem_euclid(7)) as usize,
    }
}

/// Seconds since the epoch for a UTC date, the inverse of [`civil`].
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (29 bytes).
pub(crate) fn http_date(secs: u64) -> String {
    let c = civil(secs);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[c.weekday],
        c.day,
        MONTHS[c.month as usize - 1],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Parses an IMF-fixdate (the only form a sender may generate, RFC 9110 §5.6.7). Returns
/// seconds since the epoch, `None` for anything else (the caller then ignores the field, as
/// RFC 9110 §13.1.3 requires for an invalid `If-Modified-Since`).
pub(crate) fn parse_http_date(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    let b = s.as_bytes();
    if b.len() != 29 || &s[3..5] != ", " || &s[25..] != " GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = &s[r];
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u32 + 1;
    let year = num(12..16)?;
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    if day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(secs).ok()
}

/// Formats the access log's `%(t)s`: `[10/Oct/2000:13:55:36 +0000]` (always UTC).
pub(crate) fn log_date(secs: u64, out: &mut String) {
    use std::fmt::Write;
    let c = civil(secs);
    let _ = write!(
        out,
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        c.day,
        MONTHS[c.month as usize - 1],
        c.year,
        c.hour,
        c.minute,
        c.second
    );
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
    next_check: Option<Instant>,
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
        cache.refresh(Instant::now());
        cache
    }

    /// Brings the date up to `now` (the loop's clock, read once per loop turn). Reads the wall
    /// clock only when a new second may have begun.
    #[inline]
    pub fn refresh(&mut self, now: Instant) {
        if self.next_check.is_some_and(|t| now < t) {
            return;
        }
        self.refresh_wall(now);
    }

    #[cold]
    fn refresh_wall(&mut self, now: Instant) {
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
    fn parses_what_it_formats_and_rejects_other_forms() {
        for secs in [0, 784_111_777, 951_782_400, 4_102_444_800] {
            assert_eq!(parse_http_date(http_date(secs).as_bytes()), Some(secs));
        }
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Xyz 1994 08:49:37 GMT"), None);
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
        let start = Instant::now();
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
