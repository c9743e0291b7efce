//! Command-line arguments (clap derive). Subcommands turn these into validated
//! configurations; nothing below this module sees clap.

use clap::{Args, Parser, Subcommand};

/// Conformance scenarios and load generation for epoll HTTP/1.1 engines.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about = None)]
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

Exit codes: 0 every MUST clause passed, 1 a MUST clause failed, 2 usage or harness error.")]
    Scenario(ScenarioArgs),
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
