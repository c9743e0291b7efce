//! `loadgen merge`: results written at the same time by several load processes or
//! hosts in, one results file out (see `reports::merge` for what is exact).

use clap::Args;
use reports::merge::{self, MergeInput};
use reports::report::{self, Input};

use crate::export::{self, OutputFile};
use crate::load::config::parse_duration;
use crate::EXIT_OK;

/// `loadgen merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results files (loadgen.result/v1) from runs made at the same time.
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The merged results file to write.
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// How far apart the runs' starts and ends may be, e.g. 2s, 500ms.
    #[arg(long, default_value = "2s")]
    pub tolerance: String,
}

/// Runs `loadgen merge`.
pub fn run(args: MergeArgs) -> Result<u8, String> {
    let tolerance = parse_duration(&args.tolerance).map_err(|e| format!("--tolerance: {e}"))?;
    let mut inputs = Vec::new();
    let mut seen: Vec<(std::path::PathBuf, &std::path::Path)> = Vec::new();
    for path in &args.files {
        // The same file under two names is refused before it is read.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Err(format!(
                "{} and {} are the same file: the same run given twice; give each run once",
                first.display(),
                path.display()
            ));
        }
        seen.push((real, path));
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
    let mut merged = merge::merge(&inputs, tolerance.as_millis() as u64)?;
    if merged.identity.run_id.is_none() {
        merged.identity = export::results::new_identity();
    }
    OutputFile::create("--out", &args.out)?.write_json(&merged)?;
    let merged_runs = merged
        .runs
        .iter()
        .filter(|r| r.config.merged_runs.is_some())
        .count();
    println!(
        "merged {} files: {} runs ({merged_runs} merged) -> {}",
        inputs.len(),
        merged.runs.len(),
        args.out.display()
    );
    Ok(EXIT_OK)
}
