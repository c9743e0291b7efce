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
  loadgen scenario 'http.*' --target nginx
  loadgen scenario 'http.*' --target-url http://127.0.0.1:8080/
  loadgen scenario --all --target-cmd 'loadgen serve --control'

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
  loadgen serve --addr 127.0.0.1:8080 --workers 1 --fault burn-cpu   (faults build)

Routes: / (13-byte plaintext), /echo (echoes the body), /worker (the worker index),
/big?bytes=N (N bytes of 'a', N <= 64 MiB). --fault injects one of the engine's named
bugs (cargo build -p loadgen --features faults), e.g. burn-cpu: each request burns
LOADGEN_BURN_NS ns of CPU (default 800, about 10 % of plaintext throughput).")]
    Serve(ServeArgs),
    /// Write plots (PNG, SVG), a self-contained index.html and summary.md from results.
    #[command(after_help = "Examples:
  loadgen report a.json --out report
  loadgen report base.json new.json scenarios.json --out report

Takes loadgen.result/v1 files (runs with the same target and workload are repeats:
their req/s is shown with a 95 % confidence interval) and loadgen.scenarios/v1 files
(a verdict matrix). Plots: latency percentile spectrum, throughput and p99 timeline,
comparison bars, scenario verdicts. Exit codes: 0 written, 2 usage or input error.")]
    Report(ReportArgs),
    /// Merge results written at the same time by several load processes or hosts.
    #[command(after_help = "Examples:
  loadgen merge host1.json host2.json --out all.json

Runs with the same target and workload are merged exactly: histograms added, counts
and req/s summed, timelines summed by second. They must have run at the same time
(starts and ends within --tolerance). Other runs are kept as they are.")]
    Merge(MergeArgs),
    /// Statistical regression verdict: candidate runs against baseline runs.
    #[command(after_help = "Examples:
  loadgen gate --baseline base.json --candidate head.json
  loadgen gate --baseline base-*.json --candidate head-*.json --markdown gate.md
  loadgen gate --baseline a.json --candidate b.json --threshold-throughput 2 --threshold-p99 20

Runs of the same workload (and target, when both sides name the same targets) are
repeats; run i of the baseline is paired with run i of the candidate, so write them
interleaved (A B A B). Per metric: the median of the paired ratios candidate/baseline
and its 95 % bootstrap interval; `regressed` only when the whole interval lies beyond
the threshold, `inconclusive` when it is too wide. At least 3 pairs; 20 or more on a
noisy machine. Exit codes: 0 no regression, 3 a metric regressed, 2 usage or input
error.")]
    Gate(GateArgs),
    /// The workload matrix against one or more targets, repeated, into one results file.
    #[command(after_help = "Examples:
  loadgen bench --quick --json bench.json
  loadgen bench --target embedded --target nginx --repeat 5 --json side-by-side.json
  loadgen bench --ab 'base/loadgen serve --addr {addr} --workers 1' \\
                     'head/loadgen serve --addr {addr} --workers 1' \\
                --workload plaintext --repeat 10 --json-a base.json --json-b head.json \\
    && loadgen gate --baseline base.json --candidate head.json
  loadgen bench --ab embedded 'faults/loadgen serve --addr {addr} --workers 1 --fault burn-cpu' \\
                --workload plaintext --repeat 10 --json-a base.json --json-b head.json
    (faults/loadgen: cargo build --release -p loadgen --features faults)
  loadgen bench --aa 'loadgen serve --addr {addr} --workers 1' --workload plaintext --repeat 10 \\
                --json-a a1.json --json-b a2.json && loadgen gate --baseline a1.json --candidate a2.json

Targets: `embedded` starts `loadgen serve --workers 1`; `nginx` starts nginx (worker_processes
1, master_process off, generated config in a temp dir; it cannot echo, so post-4k is
skipped); a URL is loaded as it is; a command containing {addr} (or {port}) is started
with `sh -c 'exec CMD'` on a free 127.0.0.1 port, must accept within --start-timeout
and is killed at the end (it is exec'd: one program, no `cd .. &&`). Started targets
are pinned to the last allowed CPU (taskset); their CPU seconds come from /proc/PID/stat.
Workloads: plaintext (64 conns), pipelined-16 (64 conns, 16 in flight), churn (8 conns,
a new connection per request), post-4k (16 conns, 4 KiB POST /echo), response-1m
(8 conns, GET /big?bytes=1048576), idle-active (8 active conns while --idle keep-alive
connections sit idle). Every round runs each workload on every target; the order of the
targets reverses from one round to the next (A B, B A, ...) so drift cancels. With --ab /
--aa, --json-a and --json-b split the runs for `loadgen gate`, which pairs run i of A
with run i of B. Exit codes: 0 done, 2 usage or setup error.")]
    Bench(BenchArgs),
    /// Step the open-model rate up until p99 crosses the SLO; report the highest rate
    /// that holds it.
    #[command(after_help = "Examples:
  loadgen sweep http://127.0.0.1:8080/ --slo 10ms
  loadgen sweep http://127.0.0.1:8080/ --slo 2ms --start 5000 --step 20% --max 200000 -d 10s
  loadgen sweep http://127.0.0.1:8080/ --slo 50ms --step 1000 --refine 5 --json sweep.json
  loadgen report sweep.json --out report

Each step is an open-model run (see `loadgen run --rate`). A step holds when the
corrected p99 (from each request's due time) is within --slo, no request failed, at
least 95 % of the offered rate completed and the client kept its schedule. The sweep
stops at the first step that does not hold (measured again --retries times first), then
bisects --refine times between the last rate that held and that one. Prints a table of
the steps and the answer line `max rate under p99 <= 10ms: N req/s` (`none` when the
first step did not hold: lower --start). Exit codes: 0 done (an answer of `none`
included), 2 usage or setup error.")]
    Sweep(Box<crate::sweep_cmd::SweepArgs>),
    /// Deterministic counters of the reference engine (allocations, syscalls per
    /// request), compared exactly with a committed baseline.
    #[command(after_help = "Examples:
  loadgen counters
  loadgen counters --check ci/counters.json
  loadgen counters --write ci/counters.json
  loadgen counters --repeat 20 --json counters.json

Runs the reference engine in process (1 worker) and fixed workloads against it, one
request, batch or connection at a time: keep-alive (1000 GET /), pipelined-16 (64
batches of 16) and new-connection (200 connections, one request each). Counts heap
allocations (process-wide) and the worker thread's syscalls by kind (through
engine::sys; close(2) and vDSO clock reads are not counted). epoll_wait calls that
return no event are timer wakeups: shown, not gated. --check compares every counter
per request exactly: any difference, up or down, exits 3 (a lower count is an
improvement, but the baseline must then be rewritten with --write). Exit codes: 0
equal, 2 usage or setup error (or counts that differ between --repeat runs), 3
different from the baseline.")]
    Counters(crate::counters_cmd::CountersArgs),
}

/// `loadgen bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Target: `embedded` (the reference engine as a child process), `nginx` (started
    /// with a generated config), a base URL http://host:port/, or a command that starts a
    /// server on `{addr}` / `{port}` (repeatable; default embedded).
    #[arg(long, value_name = "TARGET", conflicts_with_all = ["ab", "aa"])]
    pub target: Vec<String>,
    /// A/B comparison: two targets (as for --target), run alternately with the same
    /// load in every round and named A and B in the results.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "aa")]
    pub ab: Option<Vec<String>>,
    /// A/A comparison: one target as both A and B (a command or `embedded` is started
    /// twice) to measure the noise floor of an A/B.
    #[arg(long, value_name = "A")]
    pub aa: Option<String>,
    /// The name of side A in the results (with --ab / --aa).
    #[arg(long, default_value = "A", value_name = "NAME")]
    pub name_a: String,
    /// The name of side B in the results (with --ab / --aa).
    #[arg(long, default_value = "B", value_name = "NAME")]
    pub name_b: String,
    /// Run only this workload of the matrix (repeatable; default all).
    #[arg(long, value_name = "NAME")]
    pub workload: Vec<String>,
    /// How long a started server (command, nginx) may take to accept connections.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub start_timeout: String,
    /// Idle keep-alive connections held open during the idle-active workload.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub idle: usize,
    /// How long each point measures, e.g. 10s, 500ms (default 10s; 1s with --quick).
    #[arg(short = 'd', long)]
    pub duration: Option<String>,
    /// Rounds over the whole matrix (default 3; 1 with --quick).
    #[arg(long, value_name = "K")]
    pub repeat: Option<u32>,
    /// CI profile: 1 s per point, one round (the matrix fits in about a minute).
    #[arg(long)]
    pub quick: bool,
    /// Write every run (loadgen.result/v1 JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// With --ab / --aa: write side A's runs to this file (the gate's --baseline).
    #[arg(long, value_name = "FILE")]
    pub json_a: Option<std::path::PathBuf>,
    /// With --ab / --aa: write side B's runs to this file (the gate's --candidate).
    #[arg(long, value_name = "FILE")]
    pub json_b: Option<std::path::PathBuf>,
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
    /// The engine under test: `reference` (the reference engine in this process) or
    /// `nginx` (nginx from PATH, started per scenario with a generated configuration).
    /// Scenarios needing what the target lacks are skipped, saying why.
    #[arg(long, default_value = "reference", value_name = "NAME")]
    pub target: String,
    /// Run against a server already running at this URL (HTTP only: the scenarios
    /// needing more, or their own limits and timeouts, are skipped).
    #[arg(long, value_name = "URL", conflicts_with = "target")]
    pub target_url: Option<String>,
    /// Run against an engine in another process: this command is started once per
    /// instance with $LOADGEN_CONTROL naming a Unix socket, and speaks the control
    /// protocol on it (docs/control-protocol.md), e.g. 'loadgen serve --control'.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["target", "target_url"])]
    pub target_cmd: Option<String>,
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

/// `loadgen report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results files (loadgen.result/v1) and scenario results files (loadgen.scenarios/v1).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

/// `loadgen merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results files (loadgen.result/v1) from runs made at the same time.
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The merged results file to write.
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// How far apart the runs' starts and ends may be, e.g. 2s, 500ms.
    #[arg(long, default_value = "2s")]
    pub tolerance: String,
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
    /// Inject a named fault into the engine, e.g. burn-cpu (needs `--features faults`).
    #[arg(long, value_name = "NAME")]
    pub fault: Option<String>,
    /// Be an out-of-process scenario target: speak the control protocol on the Unix
    /// socket named by $LOADGEN_CONTROL (docs/control-protocol.md); the harness starts
    /// this, e.g. `loadgen scenario --all --target-cmd 'loadgen serve --control'`.
    #[arg(long, conflicts_with_all = ["addr", "workers", "pin", "duration", "fault"])]
    pub control: bool,
}

/// `loadgen gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Baseline results files (loadgen.result/v1); their runs are taken in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub baseline: Vec<std::path::PathBuf>,
    /// Candidate results files (loadgen.result/v1); their runs are taken in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub candidate: Vec<std::path::PathBuf>,
    /// Throughput threshold, percent.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    pub threshold_throughput: f64,
    /// p50 latency threshold, percent.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub threshold_p50: f64,
    /// p99 latency threshold, percent.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub threshold_p99: f64,
    /// Server CPU per request threshold, percent.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    pub threshold_server_cpu: f64,
    /// Also write the table as Markdown (for a pull-request comment) to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<std::path::PathBuf>,
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
