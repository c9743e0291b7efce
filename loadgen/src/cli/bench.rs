//! `loadgen bench`: the workload matrix against one or more targets, repeated with the
//! targets interleaved, into one results file (or, for an A/B, one file per side).

use std::time::Duration;

use clap::Args;
use reports::RunResult;

use crate::bench::targets::parse_spec;
use crate::bench::{self, select_workloads, Matrix};
use crate::export::{self, OutputFile};
use crate::load::config::parse_duration;
use crate::load::interrupt::{self, EXIT_INTERRUPTED};
use crate::EXIT_OK;

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

/// Runs `loadgen bench`.
pub fn run(args: BenchArgs) -> Result<u8, String> {
    let duration = match &args.duration {
        Some(d) => parse_duration(d).map_err(|e| format!("--duration {d:?}: {e}"))?,
        None if args.quick => Duration::from_secs(1),
        None => Duration::from_secs(10),
    };
    if duration.is_zero() {
        return Err("--duration 0: use a positive duration, e.g. 1s".into());
    }
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 });
    if repeat == 0 {
        return Err("--repeat 0: use at least 1 round".into());
    }
    let start_timeout = parse_duration(&args.start_timeout)
        .map_err(|e| format!("--start-timeout {:?}: {e}", args.start_timeout))?;
    let paired = args.ab.is_some() || args.aa.is_some();
    if !paired && (args.json_a.is_some() || args.json_b.is_some()) {
        return Err(
            "--json-a / --json-b split an A/B: use them with --ab A B or --aa A (else --json)"
                .into(),
        );
    }
    if paired && args.name_a == args.name_b {
        return Err(format!(
            "--name-a and --name-b are both {:?}: give the two sides different names",
            args.name_a
        ));
    }
    let workloads = select_workloads(&args.workload)?;
    let targets = target_list(&args)?;
    for (_, spec, flag) in &targets {
        parse_spec(flag, spec)?;
    }
    // Open the results files first: a bad path fails now, not after the whole matrix.
    let json = OutputFile::create_opt("--json", &args.json)?;
    let json_a = OutputFile::create_opt("--json-a", &args.json_a)?;
    let json_b = OutputFile::create_opt("--json-b", &args.json_b)?;
    let matrix = Matrix {
        workloads,
        targets,
        duration,
        repeat,
        idle: args.idle,
        start_timeout,
    };
    let stop = interrupt::on_signals()?;
    let done = bench::run(&matrix, &mut |line| eprintln!("{line}"), &stop)?;
    print!("{}", export::bench::table(&done.runs, &done.skipped));
    if done.interrupted {
        eprintln!(
            "bench: interrupted after {} runs: the results hold them, the last one cut short and marked interrupted",
            done.runs.len()
        );
    }
    let side = |name: &str| -> Vec<RunResult> {
        done.runs
            .iter()
            .filter(|r| r.target == name)
            .cloned()
            .collect()
    };
    // The files of one bench are one run: they share its id.
    let identity = export::results::new_identity();
    let document = |runs| export::results::document_of(runs, done.started, identity.clone());
    if let Some(file) = json_a {
        file.write_json(&document(side(&args.name_a)))?;
    }
    if let Some(file) = json_b {
        file.write_json(&document(side(&args.name_b)))?;
    }
    if let (Some(a), Some(b)) = (&args.json_a, &args.json_b) {
        eprintln!(
            "bench: compare with: loadgen gate --baseline {} --candidate {}",
            a.display(),
            b.display()
        );
    }
    let interrupted = done.interrupted;
    if let Some(file) = json {
        file.write_json(&document(done.runs))?;
    }
    Ok(if interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    })
}

/// The targets in order, with their names: `--target` specs are their own names;
/// `--ab` / `--aa` sides are named `--name-a` / `--name-b`.
fn target_list(args: &BenchArgs) -> Result<Vec<(String, String, &'static str)>, String> {
    if let Some(ab) = &args.ab {
        let [a, b] = ab.as_slice() else {
            return Err("--ab needs two targets: --ab A B".into());
        };
        return Ok(vec![
            (args.name_a.clone(), a.clone(), "--ab"),
            (args.name_b.clone(), b.clone(), "--ab"),
        ]);
    }
    if let Some(a) = &args.aa {
        return Ok(vec![
            (args.name_a.clone(), a.clone(), "--aa"),
            (args.name_b.clone(), a.clone(), "--aa"),
        ]);
    }
    let specs = if args.target.is_empty() {
        vec!["embedded".to_string()]
    } else {
        args.target.clone()
    };
    Ok(specs
        .into_iter()
        .map(|s| (s.clone(), s, "--target"))
        .collect())
}
