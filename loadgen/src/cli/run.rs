//! `loadgen run`: one load test against one HTTP/1.1 server.

use std::time::{Duration, SystemTime};

use clap::Args;

use crate::export::{self, OutputFile};
use crate::load::config::{parse_duration_flag, parse_header, Arrivals};
use crate::load::{self, RunConfig, Target};
use crate::EXIT_OK;

/// `loadgen run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The URL to load, http://host:port/path.
    pub url: String,
    /// Connections in all.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Client threads (default: the CPUs this process may use).
    #[arg(short = 't', long, default_value_t = default_threads())]
    pub threads: usize,
    /// How long to measure, e.g. 10s, 500ms, 2m (default 10s).
    #[arg(short = 'd', long)]
    pub duration: Option<String>,
    /// Stop after this many requests instead of after a duration.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Load without recording first, e.g. 2s.
    #[arg(long, default_value = "0s")]
    pub warmup: String,
    /// A request without a response after this fails as `timeout`.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Requests in flight per connection (closed model).
    #[arg(short = 'p', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Open model: offered requests per second, spread over the connections.
    #[arg(short = 'r', long)]
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
    #[arg(long)]
    pub requests_per_conn: Option<u64>,
    /// Write the results (loadgen.result/v1 JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Write an HdrHistogram interval log to this file.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<std::path::PathBuf>,
    /// No progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn default_threads() -> usize {
    engine::sys::thread::allowed_cpus()
        .map(|c| c.len())
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
    let cfg = RunConfig {
        target,
        threads: a.threads.min(a.connections.max(1)),
        connections: a.connections,
        duration,
        requests: a.requests,
        warmup: parse_duration_flag("warmup", &a.warmup)?,
        timeout: parse_duration_flag("timeout", &a.timeout)?,
        pipeline: a.pipeline,
        rate: a.rate,
        arrivals,
        seed: a.seed,
        method: a.method.to_ascii_uppercase(),
        headers,
        body: a.body.clone().unwrap_or_default().into_bytes(),
        expect_status: a.expect_status,
        expect_body: a.expect_body.clone().map(String::into_bytes),
        requests_per_conn: a.requests_per_conn,
        hdr_log: a.hdr_log.clone(),
        progress: !a.quiet,
        json: a.json.clone(),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Runs `loadgen run`.
pub fn run(args: RunArgs) -> Result<u8, String> {
    let cfg = config(&args)?;
    let json = OutputFile::create_opt("--json", &args.json)?;
    let started = SystemTime::now();
    let result = load::run(&cfg)?;
    print!("{}", export::run::summary(&result));
    if let Some(file) = json {
        file.write_json(&export::results::document(vec![result], started))?;
    }
    Ok(EXIT_OK)
}
