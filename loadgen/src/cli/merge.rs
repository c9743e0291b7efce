//! `loadgen merge`: results written at the same time by several load processes or
//! hosts in, one results file out (see `reports::merge` for what is exact).

use std::io::Write as _;

use reports::merge::{self, MergeInput};
use reports::report::{self, Input};

use crate::cli::MergeArgs;
use crate::EXIT_OK;

/// Runs `loadgen merge`.
pub fn run(args: MergeArgs) -> Result<u8, String> {
    let tolerance = crate::run::config::parse_duration(&args.tolerance)
        .map_err(|e| format!("--tolerance: {e}"))?;
    let mut inputs = Vec::new();
    for path in &args.files {
        match report::load(path)? {
            Input::Results(results) => inputs.push(MergeInput {
                name: path.display().to_string(),
                results: *results,
            }),
            Input::Scenarios(_) => {
                return Err(format!(
                    "{}: scenario results cannot be merged; merge takes {} files",
                    path.display(),
                    reports::RESULT_SCHEMA
                ))
            }
        }
    }
    let merged = merge::merge(&inputs, tolerance.as_millis() as u64)?;
    let out = &args.out;
    let mut file = std::fs::File::create(out)
        .map_err(|e| format!("--out {}: cannot create: {e}", out.display()))?;
    serde_json::to_writer_pretty(&mut file, &merged)
        .map_err(std::io::Error::from)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| format!("--out {}: cannot write: {e}", out.display()))?;
    let merged_runs = merged
        .runs
        .iter()
        .filter(|r| r.config.contains_key("merged_runs"))
        .count();
    println!(
        "merged {} files: {} runs ({merged_runs} merged) -> {}",
        inputs.len(),
        merged.runs.len(),
        out.display()
    );
    Ok(EXIT_OK)
}
