//! The `loadgen` binary's library: argument definitions and subcommands, with a thin
//! `main`.

pub mod cli;
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
    }
}
