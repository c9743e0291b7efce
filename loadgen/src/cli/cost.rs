//! `loadgen cost`: the deterministic cost per request of a server command (or of two,
//! compared exactly with `--ab`: exit 3 on a regression).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cost::{self, workload::Workload, Plan};
use crate::export::{self, OutputFile};
use crate::{EXIT_OK, EXIT_REGRESSION};

/// Arguments of `loadgen cost`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  loadgen cost
  loadgen cost --server-cmd './my-server --listen {addr}' --workload keep-alive
  loadgen cost --ab base/loadgen head/loadgen --markdown cost.md --json cost.json
  loadgen cost --ab 'nginx -c /tmp/a/nginx.conf' 'nginx -c /tmp/b/nginx.conf' \\
           --addr 127.0.0.1:18080 --workload keep-alive

Each workload runs on fresh servers, one request, batch or connection in flight at a
time, N1 < N2 requests; per request = (count(N2) - count(N1)) / (N2 - N1). Instructions:
valgrind --tool=cachegrind --cache-sim=no, whole-process totals of two runs (stopped with
SIGTERM), so start-up and shutdown cancel. Heap allocations (valgrind --tool=memcheck,
read through vgdb) and syscalls by name and bytes written (strace -f -ttt): counted in
one run, inside windows the client marks after quiet gaps, so start-up and shutdown do
not count. Workloads:
keep-alive, pipelined-16, new-connection, post-4k (POST /echo: leave it out for a server
that cannot echo). --ab: `regressed` when instructions per request rise beyond
--threshold (1 %), allocations per request rise at all, or a syscall's count in the
window rises by more than 2 calls (a timer wakeup at a window's edge moves one); the functions
whose own instructions changed most are named. Needs valgrind and strace. Exit codes: 0
done (no regression), 3 regressed, 2 usage or setup error.")]
pub struct CostArgs {
    /// The server: a command with {addr} (or {port}) where it should listen, the path
    /// of a loadgen binary (its `serve`), or `embedded` (this binary's `serve`, the
    /// default). One program with its arguments, optionally after NAME=VALUE words.
    #[arg(long, value_name = "CMD", conflicts_with = "ab")]
    pub server_cmd: Option<String>,
    /// Compare two servers (each as for --server-cmd): exact deltas per workload and
    /// counter; exit 3 when head regressed.
    #[arg(long, num_args = 2, value_names = ["BASE", "HEAD"])]
    pub ab: Option<Vec<String>>,
    /// A workload to measure (repeatable; default: all): keep-alive, pipelined-16,
    /// new-connection, post-4k.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// --ab: a rise of instructions per request beyond this many percent regresses
    /// (allocations regress on any rise, syscalls on more than 2 calls in the window).
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    pub threshold: f64,
    /// --ab: how many of the functions that changed most to name per workload.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub functions: usize,
    /// Where a server whose command has no {addr} or {port} listens (e.g. an nginx
    /// config's `listen`).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// How long a server under valgrind may take to accept its first connection.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub start_timeout: u64,
    /// Write the loadgen.cost/v1 document to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the table as Markdown (for a pull request comment) to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

fn workloads(names: &[String]) -> Result<Vec<Workload>, String> {
    if names.is_empty() {
        return Ok(Workload::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        let w = Workload::from_name(n).ok_or_else(|| {
            format!(
                "--workload {n:?}: unknown workload; use one of {}",
                Workload::names()
            )
        })?;
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `loadgen cost`.
pub fn run(args: CostArgs) -> Result<u8, String> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        return Err(format!(
            "--threshold {}: give a percentage of 0 or more, e.g. 1",
            args.threshold
        ));
    }
    if args.start_timeout == 0 {
        return Err("--start-timeout 0: give at least 1 second".into());
    }
    let servers = match &args.ab {
        Some(pair) => vec![
            cost::server_cmd("--ab", "base", &pair[0], args.addr)?,
            cost::server_cmd("--ab", "head", &pair[1], args.addr)?,
        ],
        None => {
            let spec = args.server_cmd.as_deref().unwrap_or("embedded");
            vec![cost::server_cmd("--server-cmd", "server", spec, args.addr)?]
        }
    };
    let plan = Plan {
        servers,
        workloads: workloads(&args.workloads)?,
        start_timeout: Duration::from_secs(args.start_timeout),
        threshold_pct: args.threshold,
        functions: args.functions,
    };
    let json = OutputFile::create_opt("--json", &args.json)?;
    let markdown = OutputFile::create_opt("--markdown", &args.markdown)?;
    let doc = cost::run(&plan)?;
    print!("{}", export::cost::text(&doc));
    if let Some(file) = json {
        file.write_json(&doc)?;
    }
    if let Some(file) = markdown {
        file.write(export::cost::markdown(&doc).as_bytes())?;
    }
    let regressed = doc
        .ab
        .as_ref()
        .is_some_and(|ab| ab.verdict == cost::model::Verdict::Regressed);
    Ok(if regressed { EXIT_REGRESSION } else { EXIT_OK })
}
