//! `loadgen gate`: reads two sets of results files, pairs their runs, and prints a
//! verdict per metric (statistics in `reports::gate`). Exit 3 on any regression.

use clap::Args;
use reports::gate::Thresholds;

use crate::export::{self, OutputFile};
use crate::gate;
use crate::{EXIT_OK, EXIT_REGRESSION};

/// `loadgen gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Baseline results files (loadgen.result/v1); their runs are taken in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub baseline: Vec<std::path::PathBuf>,
    /// Candidate results files (loadgen.result/v1); their runs are taken in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub candidate: Vec<std::path::PathBuf>,
    /// Throughput threshold, percent.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    pub threshold_throughput: f64,
    /// p50 latency threshold, percent.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub threshold_p50: f64,
    /// p99 latency threshold, percent.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub threshold_p99: f64,
    /// Server CPU per request threshold, percent.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    pub threshold_server_cpu: f64,
    /// Also write the table as Markdown (for a pull-request comment) to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<std::path::PathBuf>,
}

/// Runs `loadgen gate`.
pub fn run(args: GateArgs) -> Result<u8, String> {
    let thresholds = thresholds(&args)?;
    let markdown_file = OutputFile::create_opt("--markdown", &args.markdown)?;
    let baseline = gate::read_runs("--baseline", &args.baseline)?;
    let candidate = gate::read_runs("--candidate", &args.candidate)?;
    let (groups, notes) = gate::compare(&baseline, &candidate, &thresholds)?;
    print!("{}", export::gate::text_table(&groups, &notes));
    if let Some(file) = markdown_file {
        file.write(export::gate::markdown(&groups, &notes).as_bytes())?;
    }
    Ok(if gate::regressed(&groups) {
        EXIT_REGRESSION
    } else {
        EXIT_OK
    })
}

fn thresholds(args: &GateArgs) -> Result<Thresholds, String> {
    let check = |flag: &str, percent: f64, max: f64| -> Result<f64, String> {
        if percent.is_finite() && (0.0..max).contains(&percent) {
            Ok(percent / 100.0)
        } else {
            Err(format!(
                "{flag} {percent}: a percentage from 0 to below {max} is needed, e.g. 5"
            ))
        }
    };
    let mut t = Thresholds::default();
    t.throughput = check("--threshold-throughput", args.threshold_throughput, 100.0)?;
    t.p50 = check("--threshold-p50", args.threshold_p50, f64::INFINITY)?;
    t.p99 = check("--threshold-p99", args.threshold_p99, f64::INFINITY)?;
    t.server_cpu_per_request = check(
        "--threshold-server-cpu",
        args.threshold_server_cpu,
        f64::INFINITY,
    )?;
    Ok(t)
}
