//! `loadgen run`: one load test against one HTTP/1.1 server.

use std::time::{Duration, SystemTime};

use clap::Args;

use crate::export::{self, OutputFile};
use crate::load::check::Check;
use crate::load::config::{
    count_flag, parse_duration_flag, parse_header, parse_start_at, rate_flag, Arrivals,
};
use crate::load::interrupt::{self, EXIT_INTERRUPTED};
use crate::load::shard::{self, ShardSpec};
use crate::load::{self, RunConfig, Target};
use crate::EXIT_OK;

/// `--check` failed, or no request succeeded.
const EXIT_FAILED: u8 = 1;

/// `loadgen run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The URL to load, http://host:port/path.
    pub url: String,
    /// Connections in all.
    #[arg(short = 'c', long, default_value_t = 64, allow_negative_numbers = true)]
    pub connections: i64,
    /// Client threads (default: the CPUs this process may use).
    #[arg(short = 't', long, default_value_t = default_threads(), allow_negative_numbers = true)]
    pub threads: i64,
    /// How long to measure, e.g. 10s, 500ms, 2m (default 10s).
    #[arg(short = 'd', long, allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// Stop after this many requests instead of after a duration.
    #[arg(short = 'n', long, allow_negative_numbers = true)]
    pub requests: Option<i64>,
    /// Load without recording first, e.g. 2s.
    #[arg(long, default_value = "0s", allow_hyphen_values = true)]
    pub warmup: String,
    /// A request without a response after this fails as `timeout`; also the grace
    /// given to requests still in flight when the window ends.
    #[arg(long, default_value = "5s", allow_hyphen_values = true)]
    pub timeout: String,
    /// Requests in flight per connection (closed model).
    #[arg(short = 'p', long, default_value_t = 1, allow_negative_numbers = true)]
    pub pipeline: i64,
    /// Open model: offered requests per second, spread over the connections.
    #[arg(short = 'r', long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Open-model arrivals: fixed or poisson.
    #[arg(long, default_value = "fixed")]
    pub arrivals: String,
    /// Seed of the Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long)]
    pub header: Vec<String>,
    /// Request body.
    #[arg(short = 'b', long)]
    pub body: Option<String>,
    /// Only this status counts as success.
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Responses must have exactly this body.
    #[arg(long)]
    pub expect_body: Option<String>,
    /// Reconnect after this many requests per connection (1 = a new connection per request).
    #[arg(long, allow_negative_numbers = true)]
    pub requests_per_conn: Option<i64>,
    /// A threshold the run must meet, else exit 1 (repeatable): p99<10ms, p50<=500us,
    /// p99.9<1s, errors<0.1%, errors<5, rps>1000.
    #[arg(long, value_name = "EXPR")]
    pub check: Vec<String>,
    /// Write the results (loadgen.result/v1 JSON) to this file.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Run share I of a load split over N processes or hosts (I from 0), e.g. 0/3:
    /// -c and --rate are the whole run's, divided exactly.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Run one of N shares, the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<String>,
    /// Start measuring at this wall-clock time (connect and warm up before): RFC 3339
    /// UTC, e.g. 2026-12-04T02:00:00Z, or +10s from now. The same for every shard.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub start_at: Option<String>,
    /// The run's id, the same for every shard (default: derived from an absolute
    /// --start-at and the command line for shards, random otherwise).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Write an HdrHistogram interval log to this file.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<std::path::PathBuf>,
    /// No progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn default_threads() -> i64 {
    engine::sys::thread::allowed_cpus()
        .map(|c| c.len() as i64)
        .unwrap_or(1)
        .max(1)
}

/// Converts and validates the flags.
pub fn config(a: &RunArgs) -> Result<RunConfig, String> {
    let target = Target::parse(&a.url)?;
    let duration = match (&a.duration, a.requests) {
        (Some(_), Some(_)) => {
            return Err("--duration and --requests both given: use one of them".into())
        }
        (Some(d), None) => Some(parse_duration_flag("duration", d)?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let headers = a
        .header
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<_, _>>()?;
    let arrivals = Arrivals::parse(&a.arrivals)?;
    let connections = count_flag("connections", a.connections, "64")? as usize;
    let threads = count_flag("threads", a.threads, "2")? as usize;
    let opt_count = |flag, v: Option<i64>, ex| v.map(|v| count_flag(flag, v, ex)).transpose();
    let rate = a.rate.map(|r| rate_flag("rate", r, "500")).transpose()?;
    let spec = ShardSpec::from_cli(a.shard.as_deref(), a.shards.as_deref())?;
    let (connections, rate, shard) = shard::split(spec, connections, rate)?;
    let start_at = a.start_at.as_deref().map(parse_start_at).transpose()?;
    let cfg = RunConfig {
        target,
        threads: threads.min(connections.max(1)),
        connections,
        duration,
        requests: opt_count("requests", a.requests, "10000")?,
        warmup: parse_duration_flag("warmup", &a.warmup)?,
        timeout: parse_duration_flag("timeout", &a.timeout)?,
        pipeline: count_flag("pipeline", a.pipeline, "16")? as usize,
        rate,
        arrivals,
        seed: a.seed,
        method: a.method.to_ascii_uppercase(),
        headers,
        body: a.body.clone().unwrap_or_default().into_bytes(),
        expect_status: a.expect_status,
        expect_body: a.expect_body.clone().map(String::into_bytes),
        requests_per_conn: opt_count("requests-per-conn", a.requests_per_conn, "1")?,
        hdr_log: a.hdr_log.clone(),
        progress: !a.quiet,
        json: a.json.clone(),
        shard,
        start_at,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Runs `loadgen run`: exit 0 done, 1 a `--check` failed or no request succeeded,
/// 130 interrupted (the summary and the results are still written).
pub fn run(args: RunArgs) -> Result<u8, String> {
    let cfg = config(&args)?;
    let checks = args
        .check
        .iter()
        .map(|c| Check::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let (run_id, start_at) = (args.run_id.as_deref(), args.start_at.as_deref());
    let identity = export::results::identity_of(&cfg, run_id, start_at)?;
    let json = OutputFile::create_opt("--json", &args.json)?;
    let stop = interrupt::on_signals()?;
    let clock = load::clock::before_start(&cfg);
    let started = SystemTime::now();
    let mut result = load::run_until(&cfg, &stop)?;
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    let record = reports::RunRecord {
        interrupted,
        checks: checks.iter().map(|c| c.evaluate(&result)).collect(),
    };
    let failed = result.requests == 0 || record.checks.iter().any(|c| !c.passed);
    result.config.run = Some(record);
    print!("{}", export::run::summary(&result));
    if let Some(file) = json {
        let doc = export::results::run_document(&cfg, result, started, identity, clock);
        file.write_json(&doc)?;
    }
    Ok(if interrupted {
        EXIT_INTERRUPTED
    } else if failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
