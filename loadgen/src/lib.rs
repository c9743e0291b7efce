//! The `loadgen` binary's library: argument definitions and subcommands, with a thin
//! `main`.

pub mod cli;
pub mod run;
pub mod scenario_cmd;
pub mod serve_cmd;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a MUST clause failed.
pub const EXIT_CONFORMANCE: u8 = 1;
/// Exit code: usage, setup or harness error.
pub const EXIT_USAGE: u8 = 2;

/// Runs the parsed command line; returns the exit code, or a one-line error (exit 2).
pub fn run(cli: cli::Cli) -> Result<u8, String> {
    match cli.command {
        cli::Command::Scenario(args) => scenario_cmd::run(args),
        cli::Command::Serve(args) => serve_cmd::run(args),
        cli::Command::Run(args) => run_cmd(*args),
    }
}

fn run_cmd(args: cli::RunArgs) -> Result<u8, String> {
    let cfg = run::RunConfig::from_args(&args)?;
    let started = std::time::SystemTime::now();
    let result = run::run(&cfg)?;
    print!("{}", run::output::human(&result));
    if let Some(path) = &args.json {
        let results = run::output::results(vec![result], started);
        let text = serde_json::to_string_pretty(&results)
            .map_err(|e| format!("--json: cannot serialise results: {e}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))?;
    }
    Ok(EXIT_OK)
}
