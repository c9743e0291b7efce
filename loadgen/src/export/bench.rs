//! `loadgen bench` on the console: one line per run, then the skipped workloads.

use reports::RunResult;

use super::tables::{Align, Column, Table};

/// The table of runs; `skipped` is (target, workload, why).
pub fn table(runs: &[RunResult], skipped: &[(String, &str, &str)]) -> String {
    let width = runs
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 40);
    let right = |h, w| Column::new(h, Align::Right, w);
    let mut t = Table::new(vec![
        Column::new("target", Align::Left, width),
        Column::new("workload", Align::Left, 14),
        right("round", 5),
        right("req/s", 12),
        right("p99 ms", 10),
        right("srv CPU µs/req", 14),
    ]);
    for r in runs {
        let round = r.config.bench.as_ref().map_or(0, |b| b.bench_round);
        let cpu = match r.server_cpu_s {
            Some(c) if r.requests > 0 => format!("{:.2}", c / r.requests as f64 * 1e6),
            _ => "-".into(),
        };
        t.row(vec![
            r.target.clone(),
            r.workload.clone(),
            round.to_string(),
            format!("{:.1}", r.requests_per_s),
            format!("{:.3}", r.latency_corrected.p99_us as f64 / 1000.0),
            cpu,
        ]);
    }
    let mut out = t.render();
    for (target, w, why) in skipped {
        out.push_str(&format!("skipped: {w} on {target}: {why}\n"));
    }
    out
}
