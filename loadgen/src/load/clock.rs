//! The load host's clock against the server's, from the server's `date` header, so
//! that the windows of shards on different hosts can be compared on one clock.
//!
//! `date` has a resolution of one second, but the instant it changes is sharp: probes
//! (a new connection, one request, `Connection: close`) a millisecond apart until the
//! value changes from S - 1 to S place the server's tick to S between the send of the
//! last probe that saw S - 1 and the answer to the first that saw S. The offset is S
//! minus the middle of that span on the host's clock; half the span is its error
//! (about a millisecond plus a round trip). It costs up to a little more than a second
//! of probing before the load starts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use super::config::{RunConfig, Target};
use super::shard::{days_from_civil, unix_ns};

/// What is known of the host clock's offset from the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockOffset {
    /// Server minus host, nanoseconds; `None` when not known.
    pub offset_ns: Option<i64>,
    /// How it was found (with its error), or why it is not known.
    pub source: String,
}

impl ClockOffset {
    fn unknown(why: impl Into<String>) -> ClockOffset {
        ClockOffset {
            offset_ns: None,
            source: format!("unknown: {}", why.into()),
        }
    }
}

/// The longest the probing takes.
const BUDGET: Duration = Duration::from_millis(1300);

/// Measures the offset before a run with `--start-at`, when the start leaves time
/// for it (the probing plus the warmup); `None` for other runs.
pub fn before_start(cfg: &RunConfig) -> Option<ClockOffset> {
    let at = cfg.start_at?;
    let ahead = at.duration_since(SystemTime::now()).unwrap_or_default();
    if ahead < BUDGET + cfg.warmup + Duration::from_millis(200) {
        return Some(ClockOffset::unknown(
            "--start-at too close to probe the server's date header (it needs 1.5 s more than --warmup)",
        ));
    }
    Some(measure(&cfg.target, BUDGET))
}

/// Probes `target`'s `date` header for up to `budget`.
pub fn measure(target: &Target, budget: Duration) -> ClockOffset {
    let end = SystemTime::now() + budget;
    let mut last: Option<(u64, SystemTime)> = None;
    while SystemTime::now() < end {
        let sent = SystemTime::now();
        // No probe outlasts the budget by much: the load must start on time.
        let left = end
            .duration_since(sent)
            .unwrap_or_default()
            .max(Duration::from_millis(50));
        let date = match probe(target, left) {
            Ok(Some(d)) => d,
            Ok(None) => return ClockOffset::unknown("the server sends no date header"),
            Err(e) => return ClockOffset::unknown(format!("probing the date header: {e}")),
        };
        let answered = SystemTime::now();
        if let Some((prev, prev_sent)) = last {
            if date == prev + 1 {
                let (lo, hi) = (unix_ns(prev_sent), unix_ns(answered));
                let mid = lo / 2 + hi / 2;
                return ClockOffset {
                    offset_ns: Some((date * 1_000_000_000) as i64 - mid as i64),
                    source: format!("date header tick, +/- {:.1} ms", (hi - lo) as f64 / 2e6),
                };
            }
        }
        // The latest send that saw this second bounds the tick from below.
        last = Some((date, sent));
        std::thread::sleep(Duration::from_millis(1));
    }
    ClockOffset::unknown("the server's date header did not change while probing")
}

/// One request on its own connection, each step within `timeout`; the `date`
/// header's seconds since the epoch.
fn probe(target: &Target, timeout: Duration) -> std::io::Result<Option<u64>> {
    let mut s = TcpStream::connect_timeout(&target.addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    s.write_all(req.as_bytes())?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("date")
                .then(|| parse_imf(value.trim()))
                .flatten()
        }))
}

/// Seconds since the epoch of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_imf(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = s.split_ascii_whitespace();
    let (_weekday, day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if zone != "GMT" {
        return None;
    }
    let day: u64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year: u64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_dates() {
        assert_eq!(parse_imf("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf("Fri, 04 Dec 2026 02:00:00 GMT"),
            Some(1_796_349_600)
        );
        for s in 0..3 {
            let secs = 1_796_349_600 + s * 86_399;
            let text = engine::http::date::format_imf(secs);
            assert_eq!(parse_imf(std::str::from_utf8(&text).unwrap()), Some(secs));
        }
        assert_eq!(parse_imf("Fri, 04 Dec 2026 02:00:00 CET"), None);
        assert_eq!(parse_imf("yesterday"), None);
    }

    #[test]
    fn a_server_without_a_date_leaves_the_offset_unknown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        let target = Target::parse(&format!("http://{addr}/")).unwrap();
        let c = measure(&target, Duration::from_secs(2));
        assert_eq!(c.offset_ns, None);
        assert!(c.source.contains("no date header"), "{c:?}");
        server.join().unwrap();
    }
}
