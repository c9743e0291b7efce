//! Sharded runs: one load split exactly over N processes or hosts (`loadgen run
//! --shard I/N`, or `--shards N` with I from `JOB_COMPLETION_INDEX` in a Kubernetes
//! Indexed Job), and the wall-clock start (`--start-at`) that lines their windows up.
//!
//! The split: connections and the offered rate are divided exactly, the remainders
//! going to the first shards (`split_count`, `split_rate`). Every shard keeps the
//! same per-shard schedule as an unsharded run of its share, shifted by
//! [`ShardPlan::phase`]: shard I sends its first request I/N of the way into its own
//! inter-arrival interval (I/R of the total rate R's), so with equal shares the
//! shards' arrivals interleave into the total schedule instead of firing together.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable a Kubernetes Indexed Job sets to the pod's index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Which share of a split load this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// From 0.
    pub index: u32,
    /// Shares in all, at least 1.
    pub count: u32,
}

impl ShardSpec {
    /// Parses `--shard I/N` (I from 0, I < N).
    pub fn parse(s: &str) -> Result<ShardSpec, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| {
            format!("--shard {s:?}: use INDEX/COUNT with the index from 0, e.g. --shard 0/3")
        })?;
        let index = i.trim().parse::<u32>().map_err(|_| {
            format!("--shard {s:?}: the index {i:?} is not a number from 0: use e.g. --shard 0/3")
        })?;
        let count = parse_count("shard", n.trim(), s)?;
        ShardSpec::new(index, count, &format!("--shard {s}"))
    }

    /// `--shards N` with the index from `index_env` (the value of
    /// `JOB_COMPLETION_INDEX`, `None` when unset).
    pub fn from_env(count: &str, index_env: Option<&str>) -> Result<ShardSpec, String> {
        let count = parse_count("shards", count.trim(), count)?;
        let raw = index_env.ok_or_else(|| {
            format!("--shards {count}: {INDEX_ENV} is not set: run it in a Kubernetes Indexed Job, or set {INDEX_ENV}, or use --shard I/{count}")
        })?;
        let index = raw.trim().parse::<u32>().map_err(|_| {
            format!("--shards {count}: {INDEX_ENV}={raw:?} is not a number from 0: the pod's index is expected there")
        })?;
        ShardSpec::new(
            index,
            count,
            &format!("--shards {count} ({INDEX_ENV}={index})"),
        )
    }

    /// `--shard I/N`, or `--shards N` with the index from `index_env`
    /// (`JOB_COMPLETION_INDEX`); `None` for an unsplit run.
    pub fn from_flags(
        shard: Option<&str>,
        shards: Option<&str>,
        index_env: Option<&str>,
    ) -> Result<Option<ShardSpec>, String> {
        match (shard, shards) {
            (Some(s), _) => ShardSpec::parse(s).map(Some),
            (None, Some(n)) => ShardSpec::from_env(n, index_env).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// [`ShardSpec::from_flags`] with the index from this process's environment.
    pub fn from_cli(
        shard: Option<&str>,
        shards: Option<&str>,
    ) -> Result<Option<ShardSpec>, String> {
        let index = std::env::var(INDEX_ENV).ok();
        ShardSpec::from_flags(shard, shards, index.as_deref())
    }

    fn new(index: u32, count: u32, what: &str) -> Result<ShardSpec, String> {
        if index >= count {
            return Err(format!(
                "{what}: the index {index} is not below the count {count}: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(ShardSpec { index, count })
    }
}

fn parse_count(flag: &str, n: &str, given: &str) -> Result<u32, String> {
    match n.parse::<u32>() {
        Ok(0) => Err(format!(
            "--{flag} {given}: the count is 0: use at least 1 shard"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "--{flag} {given}: the count {n:?} is not a whole number: use e.g. 3"
        )),
    }
}

/// Shard `index`'s part of `total` split over `count` (remainders to the first shards).
pub fn split_count(total: u64, index: u32, count: u32) -> u64 {
    let (n, i) = (u64::from(count.max(1)), u64::from(index));
    total / n + u64::from(i < total % n)
}

/// Shard `index`'s part of the rate `total` (requests per second), split in units of
/// 1/1000 request per second so that the parts add up to the total exactly (to that
/// unit), the remainder going to the first shards.
pub fn split_rate(total: f64, index: u32, count: u32) -> f64 {
    let milli = (total * 1000.0).round().max(0.0) as u64;
    split_count(milli, index, count) as f64 / 1000.0
}

/// A shard's place in the split, as the load engine uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    /// Which share.
    pub spec: ShardSpec,
    /// Connections of the whole run.
    pub total_connections: usize,
    /// How many connections the shards before this one have (this shard's first
    /// connection's number in the whole run).
    pub conn_base: usize,
    /// Offered rate of the whole run (open model).
    pub total_rate: Option<f64>,
    /// The open-model schedule's shift: shard I's first request is due I/R after the
    /// start (R the total rate), I/N of the way into its own inter-arrival gap.
    pub phase: Duration,
}

/// Splits a run of `connections` (and `rate`) for `spec`: this shard's connections
/// and rate, and its plan. A shard left without a connection (or a rate) is an error
/// that says to lower the count.
pub fn plan(
    spec: ShardSpec,
    connections: usize,
    rate: Option<f64>,
) -> Result<(usize, Option<f64>, ShardPlan), String> {
    let ShardSpec { index, count } = spec;
    let conns = split_count(connections as u64, index, count) as usize;
    if conns == 0 {
        return Err(format!(
            "shard {index} of {count} gets no connection: {connections} connections split over {count} shards leave some empty; lower the shard count to at most {connections} or raise -c"
        ));
    }
    let shard_rate = match rate {
        Some(r) => {
            let part = split_rate(r, index, count);
            if part <= 0.0 {
                return Err(format!(
                    "shard {index} of {count} gets no requests: --rate {r} split over {count} shards leaves some at 0/s; lower the shard count or raise --rate"
                ));
            }
            Some(part)
        }
        None => None,
    };
    let phase = match rate {
        Some(r) if r > 0.0 => Duration::from_secs_f64(f64::from(index) / r),
        _ => Duration::ZERO,
    };
    Ok((
        conns,
        shard_rate,
        ShardPlan {
            spec,
            total_connections: connections,
            conn_base: (0..index)
                .map(|j| split_count(connections as u64, j, count) as usize)
                .sum(),
            total_rate: rate,
            phase,
        },
    ))
}

/// [`plan`] for a split run; an unsplit one (or one without connections, which the
/// config's validation refuses) keeps its connections and rate.
pub fn split(
    spec: Option<ShardSpec>,
    connections: usize,
    rate: Option<f64>,
) -> Result<(usize, Option<f64>, Option<ShardPlan>), String> {
    match spec {
        Some(spec) if connections > 0 => {
            let (c, r, p) = plan(spec, connections, rate)?;
            Ok((c, r, Some(p)))
        }
        _ => Ok((connections, rate, None)),
    }
}

/// Nanoseconds since the Unix epoch of an RFC 3339 date-time (from 1970 on).
pub fn parse_rfc3339_ns(s: &str) -> Result<u64, String> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<u64, String> {
        let part = s.get(from..from + len).ok_or("too short")?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("{part:?} is not a number"));
        }
        part.parse::<u64>().map_err(|e| e.to_string())
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err(format!(
                "expected {:?} at position {}",
                allowed[0] as char,
                at + 1
            )),
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt ")?;
    let (hour, min) = (num(11, 2)?, num(14, 2)?);
    sep(13, b":")?;
    sep(16, b":")?;
    let sec = num(17, 2)?;
    let mut pos = 19;
    let mut frac_ns = 0u64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let digits = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err("no digits after the decimal point".into());
        }
        for (k, c) in b[pos..pos + digits].iter().enumerate() {
            if k < 9 {
                frac_ns += u64::from(c - b'0') * 10u64.pow(8 - k as u32);
            }
        }
        pos += digits;
    }
    let offset_s: i64 = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if pos + 6 == b.len() => {
            sep(pos + 3, b":")?;
            let (oh, om) = (num(pos + 1, 2)?, num(pos + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err("the UTC offset is out of range".into());
            }
            let o = (oh * 3600 + om * 60) as i64;
            if c == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return Err("no time zone: end with Z (UTC) or an offset like +01:00".into()),
    };
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return Err("the date is out of range".into());
    }
    if day == 0 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 {
        return Err("no such date or time".into());
    }
    let days = days_from_civil(year, month, day);
    let local = (days * 86_400 + hour * 3600 + min * 60 + sec.min(59)) as i64;
    let utc = u64::try_from(local - offset_s).map_err(|_| "before 1970")?;
    utc.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac_ns))
        .ok_or_else(|| "too far in the future (after 2554)".to_string())
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date from 1970 on.
pub fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let before_year: u64 = (1970..y).map(|y| if is_leap(y) { 366 } else { 365 }).sum();
    let before_month: u64 = (1..m).map(|m| days_in_month(y, m)).sum();
    before_year + before_month + d - 1
}

/// The run id the shards of one run derive alike when none is given: a hash of the
/// start instant and of the command line without what differs between shards
/// (`--shard`, `--shards`, the output files), shaped as a UUID (version 8).
pub fn derived_run_id(start_at_ns: u64, args: &[String]) -> String {
    let kept = args_without_shard_parts(args);
    let mut text = format!("{start_at_ns}");
    for a in &kept {
        text.push('\0');
        text.push_str(a);
    }
    let h1 = fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let h2 = fnv1a(text.as_bytes(), 0x8422_2325_cbf2_9ce4 ^ h1);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&h1.to_be_bytes());
    bytes[8..].copy_from_slice(&h2.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8: custom
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Checks a `--run-id`: 1 to 128 letters, digits and `._:-`, starting with a letter
/// or digit (it goes into file names and Kubernetes labels).
pub fn check_run_id(id: &str) -> Result<(), String> {
    let ok = id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--run-id {id:?}: use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit, e.g. --run-id load-2026-12-04"
        ))
    }
}

/// The run id of a run: `given` (checked), else for a shard the id derived from the
/// absolute `--start-at` and the command line `args` (so that every shard finds the
/// same one), else `None` (the caller gives the run a new random id).
pub fn run_id(
    given: Option<&str>,
    shard: Option<ShardSpec>,
    start_at: Option<(&str, SystemTime)>,
    args: &[String],
) -> Result<Option<String>, String> {
    if let Some(id) = given {
        check_run_id(id)?;
        return Ok(Some(id.to_string()));
    }
    let Some(spec) = shard else {
        return Ok(None);
    };
    match start_at {
        Some((text, at)) if !text.trim_start().starts_with('+') => {
            Ok(Some(derived_run_id(unix_ns(at), args)))
        }
        _ => Err(format!(
            "shard {} of {}: no --run-id, and no absolute --start-at to derive one from: give --run-id ID (the same to every shard) or --start-at 2026-12-04T02:00:00Z",
            spec.index, spec.count
        )),
    }
}

/// The flags (with their values) that differ between the shards of one run.
const PER_SHARD: [&str; 6] = [
    "--shard",
    "--shards",
    "--json",
    "-o",
    "--hdr-log",
    "--run-id",
];

/// `args` without the per-shard flags and their values (`--flag V` and `--flag=V`).
pub fn args_without_shard_parts(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip_next = false;
    for a in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if PER_SHARD.contains(&a.as_str()) {
            skip_next = true;
            continue;
        }
        if PER_SHARD
            .iter()
            .any(|f| a.strip_prefix(f).is_some_and(|r| r.starts_with('=')))
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Nanoseconds since the Unix epoch (0 before it).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_exactly_with_remainders_first() {
        let parts: Vec<u64> = (0..3).map(|i| split_count(10, i, 3)).collect();
        assert_eq!(parts, [4, 3, 3]);
        for (total, n) in [(0u64, 1u32), (1, 1), (7, 7), (64, 5), (1000, 7), (5, 8)] {
            let sum: u64 = (0..n).map(|i| split_count(total, i, n)).sum();
            assert_eq!(sum, total, "{total} over {n}");
            let max = (0..n).map(|i| split_count(total, i, n)).max().unwrap();
            let min = (0..n).map(|i| split_count(total, i, n)).min().unwrap();
            assert!(max - min <= 1);
        }
    }

    #[test]
    fn rates_split_exactly_to_the_milli_request() {
        let parts: Vec<f64> = (0..3).map(|i| split_rate(1000.0, i, 3)).collect();
        assert_eq!(parts, [333.334, 333.333, 333.333]);
        let sum: f64 = (0..4).map(|i| split_rate(3000.0, i, 4)).sum();
        assert_eq!(sum, 3000.0);
        assert_eq!(split_rate(10.5, 0, 2), 5.25);
    }

    #[test]
    fn a_shard_without_connections_is_refused() {
        let e = plan(ShardSpec { index: 3, count: 4 }, 3, None).unwrap_err();
        assert!(e.contains("lower the shard count"), "{e}");
        let (c, r, p) = plan(ShardSpec { index: 1, count: 3 }, 8, Some(900.0)).unwrap();
        assert_eq!((c, r), (3, Some(300.0)));
        assert_eq!(p.phase, Duration::from_secs_f64(1.0 / 900.0));
        assert_eq!((p.total_connections, p.conn_base), (8, 3));
    }

    #[test]
    fn shard_flags() {
        assert_eq!(
            ShardSpec::parse("2/3").unwrap(),
            ShardSpec { index: 2, count: 3 }
        );
        for (bad, says) in [
            ("3/3", "not below"),
            ("0/0", "at least 1"),
            ("1", "INDEX/COUNT"),
            ("-1/3", "not a number"),
            ("a/b", "not a number"),
        ] {
            let e = ShardSpec::parse(bad).unwrap_err();
            assert!(e.contains(says) && !e.contains('\n'), "{bad}: {e}");
        }
        assert_eq!(
            ShardSpec::from_env("4", Some("3")).unwrap(),
            ShardSpec { index: 3, count: 4 }
        );
        assert!(ShardSpec::from_env("4", None)
            .unwrap_err()
            .contains(INDEX_ENV));
        assert!(ShardSpec::from_env("4", Some("4"))
            .unwrap_err()
            .contains("not below"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339_ns("2026-12-04T02:00:00Z").unwrap(),
            1_796_349_600 * 1_000_000_000
        );
        assert_eq!(
            parse_rfc3339_ns("2026-12-04T03:00:00.5+01:00").unwrap(),
            1_796_349_600 * 1_000_000_000 + 500_000_000
        );
        assert_eq!(
            parse_rfc3339_ns("2024-02-29T00:00:00Z").unwrap() / 1_000_000_000,
            1_709_164_800
        );
        for bad in [
            "2026-12-04",
            "2026-12-04T02:00:00",
            "2026-02-30T00:00:00Z",
            "2026-12-04T25:00:00Z",
            "2026-12-04T02:00:00.Z",
            "2999-01-01T00:00:00Z",
            "x",
        ] {
            assert!(parse_rfc3339_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_ids() {
        let t = UNIX_EPOCH + Duration::from_secs(9);
        let spec = Some(ShardSpec { index: 0, count: 2 });
        assert_eq!(
            run_id(Some("a-1"), spec, None, &[]).unwrap().unwrap(),
            "a-1"
        );
        assert!(run_id(Some("a b"), spec, None, &[])
            .unwrap_err()
            .contains("--run-id"));
        assert!(run_id(None, None, None, &[]).unwrap().is_none());
        assert!(run_id(None, spec, Some(("+5s", t)), &[])
            .unwrap_err()
            .contains("--run-id"));
        assert!(run_id(None, spec, None, &[]).is_err());
        let id = run_id(None, spec, Some(("1970-01-01T00:00:09Z", t)), &[]).unwrap();
        assert_eq!(id.unwrap(), derived_run_id(9_000_000_000, &[]));
    }

    #[test]
    fn shards_derive_the_same_run_id() {
        let argv = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let a = argv(&[
            "run",
            "http://h/",
            "-c",
            "9",
            "--shard",
            "0/3",
            "-o",
            "a.json",
        ]);
        let b = argv(&[
            "run",
            "http://h/",
            "-c",
            "9",
            "--shard=2/3",
            "--json=b.json",
        ]);
        assert_eq!(derived_run_id(5, &a), derived_run_id(5, &b));
        assert_ne!(derived_run_id(5, &a), derived_run_id(6, &a));
        let c = argv(&["run", "http://h/", "-c", "8", "--shard", "0/3"]);
        assert_ne!(derived_run_id(5, &a), derived_run_id(5, &c));
        assert_eq!(derived_run_id(5, &a).len(), 36);
    }
}
