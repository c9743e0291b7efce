//! Command-line arguments (clap derive). Subcommands turn these into validated
//! configurations; nothing below this module sees clap.

use clap::{Args, Parser, Subcommand};

/// Conformance scenarios and load generation for epoll HTTP/1.1 engines.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about = None, after_help = "Examples:
  loadgen scenario list
  loadgen scenario pause-accept
  loadgen run http://127.0.0.1:8080/ -c 64 -d 10s --json out.json
  loadgen serve --addr 127.0.0.1:8080")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run conformance scenarios against the embedded reference engine.
    #[command(after_help = "Examples:
  loadgen scenario list
  loadgen scenario pause-accept
  loadgen scenario 'accept.*' --repeat 5
  loadgen scenario --all --slack 2
  loadgen scenario list --markdown
  loadgen scenario --all --expect ci/expectations.tsv --junit scenarios.xml --json scenarios.json

Scenarios run two at a time unless --serial; output is in registry order either way.
Exit codes: 0 every MUST clause passed, 1 a MUST clause failed (with --expect: a verdict
the file does not allow, an unexpected pass included), 2 usage or harness error.")]
    Scenario(ScenarioArgs),
    /// Load-test one HTTP/1.1 server (closed model, or open model with --rate).
    #[command(after_help = "Examples:
  loadgen run http://127.0.0.1:8080/ -c 64 -d 10s
  loadgen run http://127.0.0.1:8080/ -c 64 --pipeline 16 --json out.json
  loadgen run http://127.0.0.1:8080/ -c 16 --rate 20000 --arrivals poisson -d 30s
  loadgen run http://127.0.0.1:8080/echo --method POST --body hello --expect-body hello
  loadgen run http://127.0.0.1:8080/ -c 8 --requests-per-conn 1 --requests 10000

Latency is recorded for every request: corrected (from its due time, the default) and
uncorrected (from its send). Failed requests are counted by class with their own
histogram. Exit codes: 0 done, 2 usage or setup error.")]
    Run(Box<RunArgs>),
    /// Start the reference engine and serve until interrupted.
    #[command(after_help = "Examples:
  loadgen serve --addr 127.0.0.1:8080 --workers 2
  loadgen serve --addr 0.0.0.0:8080 --pin --duration 60

Routes: / (13-byte plaintext), /echo (echoes the body), /worker (the worker index).")]
    Serve(ServeArgs),
}

/// `loadgen scenario`.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario IDs, aliases or globs (`accept.*`); `list` lists them.
    pub selectors: Vec<String>,
    /// Run every scenario.
    #[arg(long)]
    pub all: bool,
    /// Run each selected scenario K times and report flakes.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub repeat: u32,
    /// Scale every tolerance and deadline by F (slow machines: 2, 3 ...).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub slack: f64,
    /// Workers of the engines scenarios start (where the scenario does not fix it).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub workers: usize,
    /// Inject a named fault into the engine (needs `--features faults`).
    #[arg(long, value_name = "NAME")]
    pub fault: Option<String>,
    /// Write the results (loadgen.scenarios/v1 JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Compare every verdict with an expectations file (id, verdicts, reason; unlisted
    /// scenarios must pass) and exit 1 on any difference, an unexpected pass included.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<std::path::PathBuf>,
    /// Run the scenarios one after another.
    #[arg(long, conflicts_with = "parallel")]
    pub serial: bool,
    /// Run up to N scenarios at the same time.
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// With `list`: print the table as Markdown (the README's scenarios table).
    #[arg(long)]
    pub markdown: bool,
}

/// `loadgen serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Number of workers (default: the CPUs this process may use).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Pin each worker to its own CPU.
    #[arg(long)]
    pub pin: bool,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
}

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
