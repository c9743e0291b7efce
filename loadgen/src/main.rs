//! `loadgen`: the harness's one binary. See `loadgen --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = loadgen::cli::Cli::parse();
    match loadgen::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(loadgen::EXIT_USAGE)
        }
    }
}
