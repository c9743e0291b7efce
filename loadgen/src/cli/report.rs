//! `loadgen report`: results files in, plots, `index.html` and `summary.md` out. The
//! statistics, plots and pages are the `reports` crate's; this only reads the files
//! and says where the report went.

use clap::Args;
use reports::report::{self, Input};

use crate::EXIT_OK;

/// `loadgen report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results files (loadgen.result/v1) and scenario results files (loadgen.scenarios/v1).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

/// Runs `loadgen report`.
pub fn run(args: ReportArgs) -> Result<u8, String> {
    let mut results = Vec::new();
    let mut scenarios = Vec::new();
    for path in &args.files {
        match report::load(path)? {
            Input::Results(r) => results.push(*r),
            Input::Scenarios(s) => scenarios.push(*s),
        }
    }
    let files =
        report::write_report(&results, &scenarios, &args.out).map_err(|e| format!("--out: {e}"))?;
    println!("report: {}", files.index.display());
    println!("summary: {}", files.summary.display());
    for p in &files.plots {
        println!("plot: {} {}", p.png.display(), p.svg.display());
    }
    Ok(EXIT_OK)
}
