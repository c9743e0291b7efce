//! `loadgen`: the harness's one binary. See `loadgen --help`.

use std::process::ExitCode;

use clap::Parser;

/// Counts heap allocations for `loadgen counters` (one relaxed atomic add per
/// allocation; the load generator's request path does not allocate).
#[global_allocator]
static GLOBAL: engine::sys::alloc::Counting = engine::sys::alloc::Counting;

fn main() -> ExitCode {
    let cli = loadgen::cli::Cli::parse();
    match loadgen::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(loadgen::EXIT_USAGE)
        }
    }
}
