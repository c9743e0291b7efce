//! The `loadgen` binary's library: argument definitions and subcommands, with a thin
//! `main`.

pub mod bench_cmd;
pub mod cli;
pub mod counters_cmd;
pub mod gate_cmd;
pub mod merge_cmd;
pub mod report_cmd;
pub mod run;
pub mod scenario_cmd;
pub mod serve_cmd;
pub mod sweep_cmd;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a MUST clause failed.
pub const EXIT_CONFORMANCE: u8 = 1;
/// Exit code: usage, setup or harness error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a performance metric regressed (`loadgen gate`).
pub const EXIT_REGRESSION: u8 = 3;

/// Runs the parsed command line; returns the exit code, or a one-line error (exit 2).
pub fn run(cli: cli::Cli) -> Result<u8, String> {
    match cli.command {
        cli::Command::Scenario(args) => scenario_cmd::run(args),
        cli::Command::Serve(args) => serve_cmd::run(args),
        cli::Command::Report(args) => report_cmd::run(args),
        cli::Command::Merge(args) => merge_cmd::run(args),
        cli::Command::Gate(args) => gate_cmd::run(args),
        cli::Command::Run(args) => run_cmd(*args),
        cli::Command::Bench(args) => bench_cmd::run(args),
        cli::Command::Sweep(args) => sweep_cmd::run(*args),
        cli::Command::Counters(args) => counters_cmd::run(args),
    }
}

fn run_cmd(args: cli::RunArgs) -> Result<u8, String> {
    let cfg = run::RunConfig::from_args(&args)?;
    // Open the results file first: a bad path fails now, not after the whole run.
    let json_file = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("--json {}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let started = std::time::SystemTime::now();
    let result = run::run(&cfg)?;
    print!("{}", run::output::human(&result));
    if let (Some(mut file), Some(path)) = (json_file, &args.json) {
        use std::io::Write;
        let results = run::output::results(vec![result], started);
        serde_json::to_writer_pretty(&mut file, &results)
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))?;
    }
    Ok(EXIT_OK)
}
