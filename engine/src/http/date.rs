//! The `date` header value (IMF-fixdate), formatted once per second per worker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A cached `date` value, refreshed when the second changes. The worker asks with the
/// monotonic time it already read: the wall clock is read again only once that time
/// reaches the instant the wall clock's second was due to change (so a request costs no
/// clock read of its own), and at least once a second.
#[derive(Debug)]
pub struct DateCache {
    second: u64,
    value: [u8; 29],
    /// When the wall clock is next read: the start of the next second, as it was
    /// expected when last read.
    next: Instant,
}

impl Default for DateCache {
    fn default() -> Self {
        let mut d = DateCache {
            second: u64::MAX,
            value: [b' '; 29],
            next: Instant::now(),
        };
        d.refresh(d.next);
        d
    }
}

impl DateCache {
    /// The value for `now` (the caller's recent `Instant::now()`), refreshed from the
    /// wall clock when a new second may have begun.
    pub fn get(&mut self, now: Instant) -> &[u8; 29] {
        if now >= self.next {
            self.refresh(now);
        }
        &self.value
    }

    fn refresh(&mut self, now: Instant) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let secs = wall.as_secs();
        // The rest of this second; a wall clock stepped meanwhile is seen at the latest
        // one second later.
        let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(wall.subsec_nanos()));
        self.next = now + rest;
        if secs != self.second {
            self.second = secs;
            self.value = format_imf(secs);
        }
    }
}

/// The (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (Howard
/// Hinnant's algorithm).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    (year, month, day)
}

/// Formats seconds since the epoch as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_imf(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let (year, month, day) = civil_from_days(days);
    let month = month as usize;

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(day));
    out[8..11].copy_from_slice(MONTHS[month - 1]);
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year % 100));
    out[17..19].copy_from_slice(&two(h));
    out[20..22].copy_from_slice(&two(m));
    out[23..25].copy_from_slice(&two(s));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(&super::format_imf(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &super::format_imf(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            &super::format_imf(1_709_210_096),
            b"Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }
}
