//! `loadgen`: the harness's one binary. See `loadgen --help`.

use std::process::ExitCode;

use clap::Parser;

/// Counts heap allocations for `loadgen counters` (one relaxed atomic add per
/// allocation; the load generator's request path does not allocate).
#[global_allocator]
static GLOBAL: engine::sys::alloc::Counting = engine::sys::alloc::Counting;

fn main() -> ExitCode {
    let cli = match loadgen::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let args: Vec<String> = std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some(line) = loadgen::cli::negative_value(&args, &e) {
                eprintln!("error: {line}");
                return ExitCode::from(loadgen::EXIT_USAGE);
            }
            e.exit()
        }
    };
    match loadgen::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(loadgen::EXIT_USAGE)
        }
    }
}
