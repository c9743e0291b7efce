//! The validated configuration of one load run (built from CLI flags by
//! `cli::run`, `cli::sweep` and the bench matrix; tests build it directly).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::shard::{unix_ns, ShardPlan};

/// How requests arrive in the open model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced: request k of a connection is due at start + k / its rate.
    Fixed,
    /// Exponential gaps with the same mean (seeded, reproducible).
    Poisson,
}

impl Arrivals {
    /// Parses `--arrivals`: `fixed` or `poisson`.
    pub fn parse(s: &str) -> Result<Arrivals, String> {
        match s {
            "fixed" => Ok(Arrivals::Fixed),
            "poisson" => Ok(Arrivals::Poisson),
            other => Err(format!("--arrivals {other:?}: use fixed or poisson")),
        }
    }

    /// The name in results files.
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Fixed => "fixed",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// Parses a `--header` value, `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (n, v) = h
        .split_once(':')
        .ok_or_else(|| format!("--header {h:?}: use 'Name: value'"))?;
    Ok((n.trim().to_string(), v.trim().to_string()))
}

/// Parses the duration given to `--FLAG`; the error names the flag and the value.
pub fn parse_duration_flag(flag: &str, s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(negative(flag, s, "a duration", "10s"));
    }
    parse_duration(s).map_err(|e| format!("--{flag} {s:?}: {e}"))
}

/// The one line for a negative value: `--rate: -5 is negative: give a rate above 0
/// (e.g. --rate 500)`.
pub fn negative(flag: &str, value: &str, what: &str, example: &str) -> String {
    format!("--{flag}: {value} is negative: give {what} above 0 (e.g. --{flag} {example})")
}

/// A count given to `--FLAG` (parsed as signed so that a negative one gets our message,
/// not clap's).
pub fn count_flag(flag: &str, v: i64, example: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| negative(flag, &v.to_string(), "a number", example))
}

/// A rate given to `--FLAG`.
pub fn rate_flag(flag: &str, v: f64, example: &str) -> Result<f64, String> {
    if v < 0.0 {
        return Err(negative(flag, &v.to_string(), "a rate", example));
    }
    Ok(v)
}

/// Why a URL is not a target; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `https://`: there is no TLS.
    #[error("{0}: https is not supported (no TLS): use an http:// URL")]
    Https(String),
    /// Not `http://`.
    #[error("{0:?} is not an http:// URL: use e.g. http://127.0.0.1:8080/")]
    NotHttp(String),
    /// `http:///`.
    #[error("{0:?} has no host: use e.g. http://127.0.0.1:8080/")]
    NoHost(String),
    /// The host does not resolve.
    #[error("{url}: cannot resolve {authority:?}: {source}")]
    Resolve {
        /// The URL.
        url: String,
        /// Its `host:port`.
        authority: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The host resolves to nothing.
    #[error("{url}: {authority:?} resolves to no address")]
    NoAddress {
        /// The URL.
        url: String,
        /// Its `host:port`.
        authority: String,
    },
}

/// A combination of settings that cannot run; the message names the flag and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL is not a target.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// `--connections 0`.
    #[error("--connections 0: use at least 1 connection")]
    NoConnections,
    /// `--threads 0`.
    #[error("--threads 0: use at least 1 thread")]
    NoThreads,
    /// `--pipeline 0`.
    #[error("--pipeline 0: use at least 1 request in flight")]
    NoPipeline,
    /// A rate that is not a positive number.
    #[error("--rate {0}: use a positive number of requests per second")]
    BadRate(f64),
    /// The open model with pipelining.
    #[error("--rate with --pipeline > 1: the open model sends one request at a time per connection; drop one of them")]
    RateWithPipeline,
    /// `--duration 0`.
    #[error("--duration 0: use a positive duration, e.g. 10s")]
    ZeroDuration,
    /// `--requests 0`.
    #[error("--requests 0: use at least 1 request")]
    NoRequests,
    /// `--requests-per-conn 0`.
    #[error("--requests-per-conn 0: use at least 1 (1 = a new connection per request)")]
    NoRequestsPerConn,
    /// `--timeout 0`.
    #[error("--timeout 0: use a positive timeout, e.g. 5s")]
    ZeroTimeout,
    /// A method that is not a token.
    #[error("--method {0:?}: use a token such as GET or POST")]
    BadMethod(String),
}

/// Commands report errors as one line of text.
impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

/// Commands report errors as one line of text.
impl From<TargetError> for String {
    fn from(e: TargetError) -> String {
        e.to_string()
    }
}

/// A parsed `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Request target (path and query).
    pub path: String,
}

impl Target {
    /// Parses and resolves `url`. Errors are one line saying what to do.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        if url.starts_with("https://") {
            return Err(TargetError::Https(url.into()));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| TargetError::NotHttp(url.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(p) => (&rest[..p], &rest[p..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(TargetError::NoHost(url.into()));
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|source| TargetError::Resolve {
                url: url.into(),
                authority: authority.into(),
                source,
            })?
            .next()
            .ok_or_else(|| TargetError::NoAddress {
                url: url.into(),
                authority: authority.into(),
            })?;
        Ok(Target {
            url: url.to_string(),
            addr,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where to send requests.
    pub target: Target,
    /// Client threads (each its own epoll loop).
    pub threads: usize,
    /// Connections in all (spread evenly over threads).
    pub connections: usize,
    /// Measure for this long (after warmup) ...
    pub duration: Option<Duration>,
    /// ... or until this many requests completed.
    pub requests: Option<u64>,
    /// Load without recording before measuring.
    pub warmup: Duration,
    /// A request without a response after this fails with `timeout`.
    pub timeout: Duration,
    /// Requests in flight per connection (closed model).
    pub pipeline: usize,
    /// Offered rate, requests per second (open model).
    pub rate: Option<f64>,
    /// Open-model arrivals.
    pub arrivals: Arrivals,
    /// Seed for Poisson arrivals.
    pub seed: u64,
    /// Request method.
    pub method: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Only this status counts as success (others are errors).
    pub expect_status: Option<u16>,
    /// Responses must have exactly this body.
    pub expect_body: Option<Vec<u8>>,
    /// Close and reconnect after this many requests on a connection.
    pub requests_per_conn: Option<u64>,
    /// Write an HdrHistogram interval log here.
    pub hdr_log: Option<PathBuf>,
    /// Show progress on stderr.
    pub progress: bool,
    /// Where the results file goes (recorded in the results; written by the caller).
    pub json: Option<PathBuf>,
    /// This run's share of a split load (`connections` and `rate` are the share's).
    pub shard: Option<ShardPlan>,
    /// Start measuring at this wall-clock instant (connecting and warming up before).
    pub start_at: Option<SystemTime>,
}

impl RunConfig {
    /// A closed-model run of `duration` against `url` with defaults elsewhere.
    pub fn new(
        url: &str,
        connections: usize,
        duration: Duration,
    ) -> Result<RunConfig, ConfigError> {
        let cfg = RunConfig {
            target: Target::parse(url)?,
            threads: 1,
            connections,
            duration: Some(duration),
            requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(5),
            pipeline: 1,
            rate: None,
            arrivals: Arrivals::Fixed,
            seed: 1,
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            expect_status: None,
            expect_body: None,
            requests_per_conn: None,
            hdr_log: None,
            progress: false,
            json: None,
            shard: None,
            start_at: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the combination of settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError::*;
        if self.connections == 0 {
            return Err(NoConnections);
        }
        if self.threads == 0 {
            return Err(NoThreads);
        }
        if self.pipeline == 0 {
            return Err(NoPipeline);
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(BadRate(r));
            }
            if self.pipeline > 1 {
                return Err(RateWithPipeline);
            }
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(ZeroDuration);
        }
        if self.requests == Some(0) {
            return Err(NoRequests);
        }
        if self.requests_per_conn == Some(0) {
            return Err(NoRequestsPerConn);
        }
        if self.timeout.is_zero() {
            return Err(ZeroTimeout);
        }
        if !self.method.bytes().all(|b| b.is_ascii_alphabetic()) || self.method.is_empty() {
            return Err(BadMethod(self.method.clone()));
        }
        Ok(())
    }

    /// The request's bytes.
    pub fn request_bytes(&self) -> Vec<u8> {
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.target.path, self.target.host
        );
        for (n, v) in &self.headers {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" || self.method == "PUT" {
            r.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Every setting, for the results file.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        let ms = |d: Duration| json!(d.as_secs_f64() * 1000.0);
        m.insert("url".into(), json!(self.target.url));
        m.insert("threads".into(), json!(self.threads));
        m.insert("connections".into(), json!(self.connections));
        m.insert("duration_ms".into(), self.duration.map_or(json!(null), ms));
        m.insert("requests".into(), json!(self.requests));
        m.insert("warmup_ms".into(), ms(self.warmup));
        m.insert("timeout_ms".into(), ms(self.timeout));
        m.insert("pipeline".into(), json!(self.pipeline));
        m.insert("rate_per_s".into(), json!(self.rate));
        m.insert("arrivals".into(), json!(self.arrivals.name()));
        m.insert("seed".into(), json!(self.seed));
        m.insert("method".into(), json!(self.method));
        m.insert(
            "headers".into(),
            json!(self
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()),
        );
        m.insert("body_bytes".into(), json!(self.body.len()));
        m.insert("expect_status".into(), json!(self.expect_status));
        m.insert(
            "expect_body".into(),
            json!(self
                .expect_body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())),
        );
        m.insert("requests_per_conn".into(), json!(self.requests_per_conn));
        let path = |p: &Option<PathBuf>| json!(p.as_ref().map(|p| p.display().to_string()));
        m.insert("json".into(), path(&self.json));
        m.insert("hdr_log".into(), path(&self.hdr_log));
        m.insert("quiet".into(), json!(!self.progress));
        if let Some(p) = &self.shard {
            m.insert("shard_index".into(), json!(p.spec.index));
            m.insert("shard_count".into(), json!(p.spec.count));
            m.insert("total_connections".into(), json!(p.total_connections));
            m.insert("total_rate_per_s".into(), json!(p.total_rate));
            m.insert("schedule_phase_ns".into(), json!(p.phase.as_nanos() as u64));
        }
        if let Some(at) = self.start_at {
            m.insert("start_at_unix_ns".into(), json!(unix_ns(at)));
        }
        m
    }
}

/// When measuring starts: `+10s` (from now) or an RFC 3339 time
/// (`2026-12-04T02:00:00Z`, fractions and `+01:00` offsets allowed). A time not in
/// the future is refused.
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    parse_start_at_from(s, SystemTime::now())
}

/// [`parse_start_at`] at the instant `now`.
pub fn parse_start_at_from(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = s.trim();
    let at = if let Some(rel) = t.strip_prefix('+') {
        let d = parse_duration(rel).map_err(|e| format!("--start-at {s:?}: {e}"))?;
        now + d
    } else {
        let ns = super::shard::parse_rfc3339_ns(t).map_err(|e| {
            format!("--start-at {s:?}: {e}: use RFC 3339 UTC like 2026-12-04T02:00:00Z, or +10s")
        })?;
        UNIX_EPOCH + Duration::from_nanos(ns)
    };
    if at <= now {
        let ago = now.duration_since(at).unwrap_or_default().as_secs_f64();
        return Err(format!(
            "--start-at {s}: that is {ago:.1} s in the past: give a time in the future (e.g. +10s), the same for every shard"
        ));
    }
    Ok(at)
}

/// Parses `10s`, `500ms`, `2m`, `1.5s`, `100us` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(p) => (&s[..p], &s[p..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| "not a duration: use e.g. 10s, 500ms or 2m".to_string())?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("unknown unit {unit:?}: use us, ms, s, m or h")),
    };
    if !(secs.is_finite() && (0.0..1e7).contains(&secs)) {
        return Err("out of range: use a duration from 0 to 100 days, e.g. 10s".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/a?b").unwrap();
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.path, "/a?b");
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(Target::parse("http://[::1]:9/").unwrap().addr.port(), 9);
        assert!(Target::parse("https://x/")
            .unwrap_err()
            .to_string()
            .contains("https"));
        assert!(Target::parse("ftp://x/")
            .unwrap_err()
            .to_string()
            .contains("http://"));
        assert!(Target::parse("http:///").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn start_at_refuses_the_past() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_349_600);
        assert_eq!(
            parse_start_at_from("+10s", now).unwrap(),
            now + Duration::from_secs(10)
        );
        let e = parse_start_at_from("2026-12-04T01:59:00Z", now).unwrap_err();
        assert!(e.contains("60.0 s in the past"), "{e}");
        assert!(parse_start_at_from("2026-12-04T02:00:01Z", now).is_ok());
        assert!(parse_start_at_from("tomorrow", now)
            .unwrap_err()
            .contains("RFC 3339"));
    }

    #[test]
    fn bad_combinations_are_refused_in_one_line() {
        let mut c = RunConfig::new("http://127.0.0.1:1/", 4, Duration::from_secs(1)).unwrap();
        c.rate = Some(100.0);
        c.pipeline = 2;
        let e = c.validate().unwrap_err();
        assert!(matches!(e, ConfigError::RateWithPipeline), "{e:?}");
        assert!(e.to_string().contains("--pipeline"));
        c.pipeline = 1;
        c.connections = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--connections 0"));
    }
}
