//! `loadgen counters`: measures the reference engine's per-request counters and
//! compares them exactly with a baseline (exit 3 on any difference).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::counters::{self, model};
use crate::export::{self, OutputFile};
use crate::{EXIT_OK, EXIT_REGRESSION};

/// Arguments of `loadgen counters`.
#[derive(Debug, Default, Args)]
pub struct CountersArgs {
    /// Compare exactly with this baseline (loadgen.counters/v1): any difference, up or
    /// down, exits 3.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// Write the measured counters (loadgen.counters/v1) to FILE; `--write` is the
    /// same option, meant for updating the baseline.
    #[arg(long, visible_alias = "write", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure this many times, each on a fresh engine; the counts must agree (exit 2
    /// if they do not: something is timing-dependent).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
}

fn read_baseline(path: &Path) -> Result<Vec<model::Measured>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--check {}: cannot read: {e}", path.display()))?;
    model::parse_counters(&text).map_err(|e| {
        format!(
            "--check {}: {e}; write a valid one with `loadgen counters --write {}`",
            path.display(),
            path.display()
        )
    })
}

/// Runs `loadgen counters`.
pub fn run(args: CountersArgs) -> Result<u8, String> {
    if args.repeat == 0 {
        return Err("--repeat 0: use at least 1".into());
    }
    // Read the baseline first: a bad file fails now, not after the measurement.
    let baseline = match &args.check {
        Some(path) => Some(read_baseline(path)?),
        None => None,
    };
    // Then open the output (a bad path fails before measuring; after reading the
    // baseline, which may be the same file).
    let json = OutputFile::create_opt("--json", &args.json)?;
    let measured = counters::measure_repeated(args.repeat)?;
    print!("{}", export::counters::table(&measured, args.repeat));
    if let Some(file) = json {
        file.write_json(&model::document(&measured))?;
    }
    let Some((path, base)) = args.check.as_ref().zip(baseline) else {
        return Ok(EXIT_OK);
    };
    let diffs = model::compare(&base, &measured);
    print!("{}", export::counters::check(&base, &diffs, path));
    Ok(if diffs.is_empty() {
        EXIT_OK
    } else {
        EXIT_REGRESSION
    })
}
