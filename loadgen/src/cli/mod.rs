//! The command line: clap definitions, one file per subcommand. Each file converts its
//! arguments into a validated library configuration, makes one library call and exports
//! the outcome. Architecture invariant: nothing outside `cli/` (and `main.rs`) imports
//! clap.

use clap::{Parser, Subcommand};

pub mod bench;
pub mod cost;
pub mod counters;
pub mod gate;
mod help;
pub mod merge;
mod negative;
pub mod report;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod sweep;

pub use negative::negative_value;

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
    Scenario(scenario::ScenarioArgs),
    /// Load-test one HTTP/1.1 server (closed model, or open model with --rate).
    // Its examples and notes: `cli/help.rs`.
    #[command(after_help = help::RUN)]
    Run(Box<run::RunArgs>),
    /// Start the reference engine and serve until interrupted.
    // Its examples and notes: `cli/serve.rs`.
    Serve(serve::ServeArgs),
    /// Write plots (PNG, SVG), a self-contained index.html and summary.md from results.
    #[command(after_help = "Examples:
  loadgen report a.json --out report
  loadgen report base.json new.json scenarios.json --out report

Takes loadgen.result/v1 files (runs with the same target and workload are repeats: one
median line and min-max band, req/s with a 95 % confidence interval) and
loadgen.scenarios/v1 files (a verdict matrix). index.html opens with the machine, build,
settings and warnings; summary.md is tables only (for a PR comment). Plots: latency
spectrum, req/s, p99 and errors per second, comparison bars, latency vs rate (sweeps),
scenario verdicts. Exit codes: 0 written, 2 usage or input error.")]
    Report(report::ReportArgs),
    /// Merge results written at the same time by several load processes or hosts.
    #[command(after_help = "Examples:
  loadgen merge host1.json host2.json --out all.json
  loadgen merge shard-0.json shard-1.json shard-2.json --tolerance 1s --out all.json

Runs with the same target and workload are merged exactly: histograms added, counts
and req/s summed, timelines summed by second. They must have run at the same time
(starts and ends within --tolerance). Other runs are kept as they are. Shards of a
sharded run (loadgen run --shard) must all be there once, of one run id and count,
with their windows within --tolerance: a missing, duplicated or foreign shard is an
error naming the file.")]
    Merge(merge::MergeArgs),
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
noisy machine. A file with an interrupted run is refused. Exit codes: 0 no regression,
3 a metric regressed, 2 usage or input error.")]
    Gate(gate::GateArgs),
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
with run i of B. Ctrl-C or SIGTERM stops the bench: the runs so far are printed and
written, the one under way marked interrupted (`loadgen gate` refuses it). Exit codes:
0 done, 2 usage or setup error, 130 interrupted.")]
    Bench(bench::BenchArgs),
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
first step did not hold: lower --start). Ctrl-C or SIGTERM stops the sweep: the steps
so far are printed and written, the one under way marked interrupted, and there is no
answer. Exit codes: 0 done (an answer of `none` included), 2 usage or setup error, 130
interrupted.")]
    Sweep(Box<sweep::SweepArgs>),
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
    Counters(counters::CountersArgs),
    /// Deterministic cost per request of any server (instructions, allocations,
    /// syscalls, bytes written) under valgrind and strace; `--ab` compares two exactly.
    // Its examples and notes: `cli/cost.rs`.
    Cost(cost::CostArgs),
}

/// Runs the parsed command line; returns the exit code, or a one-line error (exit 2).
pub fn run(cli: Cli) -> Result<u8, String> {
    match cli.command {
        Command::Scenario(args) => scenario::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(args) => report::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Run(args) => run::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Sweep(args) => sweep::run(*args),
        Command::Counters(args) => counters::run(args),
        Command::Cost(args) => cost::run(args),
    }
}
