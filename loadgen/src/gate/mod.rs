//! `loadgen gate`: reads two sets of results files, pairs their runs, and prints a
//! verdict per metric (statistics in `reports::gate`). Exit 3 on any regression.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use reports::gate::{self, Bootstrap, Comparison, Metric, MetricComparison, Thresholds, Verdict};
use reports::{Results, RunResult, RESULT_SCHEMA};

use crate::cli::GateArgs;

/// The runs of one workload (and target, when both sides name the same targets).
#[derive(Debug)]
struct Group {
    label: String,
    comparisons: Vec<MetricComparison>,
}

/// Runs `loadgen gate`.
pub fn run(args: GateArgs) -> Result<u8, String> {
    let thresholds = thresholds(&args)?;
    let markdown_file = match &args.markdown {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("--markdown {}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let baseline = read_runs("--baseline", &args.baseline)?;
    let candidate = read_runs("--candidate", &args.candidate)?;
    let (groups, notes) = compare(&baseline, &candidate, &thresholds)?;
    print!("{}", text_table(&groups, &notes));
    if let (Some(mut file), Some(path)) = (markdown_file, &args.markdown) {
        use std::io::Write;
        file.write_all(markdown(&groups, &notes).as_bytes())
            .map_err(|e| format!("--markdown {}: cannot write: {e}", path.display()))?;
    }
    let regressed = groups
        .iter()
        .flat_map(|g| &g.comparisons)
        .any(|m| m.comparison.verdict == Verdict::Regressed);
    Ok(if regressed {
        crate::EXIT_REGRESSION
    } else {
        crate::EXIT_OK
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

/// Every run of `paths`, in file order then run order.
fn read_runs(flag: &str, paths: &[PathBuf]) -> Result<Vec<RunResult>, String> {
    let mut runs = Vec::new();
    for path in paths {
        runs.extend(read_results(flag, path)?.runs);
    }
    Ok(runs)
}

fn read_results(flag: &str, path: &Path) -> Result<Results, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{flag} {shown}: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{flag} {shown}: not JSON ({e}); expected a loadgen.result/v1 file from `loadgen run --json`"))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(RESULT_SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "{flag} {shown}: schema {other:?}, expected {RESULT_SCHEMA:?} (a results file from `loadgen run --json`)"
            ))
        }
        None => {
            return Err(format!(
                "{flag} {shown}: no \"schema\" field; expected a {RESULT_SCHEMA} results file from `loadgen run --json`"
            ))
        }
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{flag} {shown}: not a valid {RESULT_SCHEMA} file: {e}"))
}

/// Groups both sides' runs and compares each group present on both sides.
fn compare(
    baseline: &[RunResult],
    candidate: &[RunResult],
    thresholds: &Thresholds,
) -> Result<(Vec<Group>, Vec<String>), String> {
    if baseline.is_empty() || candidate.is_empty() {
        let side = if baseline.is_empty() {
            "--baseline"
        } else {
            "--candidate"
        };
        return Err(format!("nothing to compare: the {side} files hold no runs"));
    }
    let targets = |runs: &[RunResult]| -> BTreeSet<String> {
        runs.iter().map(|r| r.target.clone()).collect()
    };
    let by_target = targets(baseline) == targets(candidate);
    let mut notes = Vec::new();
    if !by_target {
        notes.push(format!(
            "the two sides name different targets ({} vs {}): runs are matched by workload only",
            join(&targets(baseline)),
            join(&targets(candidate))
        ));
    }
    let base = group("--baseline", baseline, by_target)?;
    let cand = group("--candidate", candidate, by_target)?;
    let mut groups = Vec::new();
    for (label, b) in &base {
        match cand.get(label) {
            Some(c) => groups.push(Group {
                label: label.clone(),
                comparisons: gate::compare_runs(b, c, thresholds, &Bootstrap::default()),
            }),
            None => notes.push(format!("{label:?}: only in the baseline, not compared")),
        }
    }
    for label in cand.keys().filter(|l| !base.contains_key(*l)) {
        notes.push(format!("{label:?}: only in the candidate, not compared"));
    }
    if groups.is_empty() {
        return Err(format!(
            "nothing to compare: no workload is in both the baseline ({}) and the candidate ({})",
            join(&base.keys().cloned().collect()),
            join(&cand.keys().cloned().collect())
        ));
    }
    Ok((groups, notes))
}

/// Runs by workload (and target when `by_target`), in order; with workload-only
/// matching, one side may not mix targets within a workload.
fn group<'a>(
    flag: &str,
    runs: &'a [RunResult],
    by_target: bool,
) -> Result<BTreeMap<String, Vec<&'a RunResult>>, String> {
    let mut groups: BTreeMap<String, Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        let key = if by_target {
            format!("{} @ {}", r.workload, r.target)
        } else {
            r.workload.clone()
        };
        groups.entry(key).or_default().push(r);
    }
    if !by_target {
        for (workload, runs) in &groups {
            let names: BTreeSet<&str> = runs.iter().map(|r| r.target.as_str()).collect();
            if names.len() > 1 {
                return Err(format!(
                    "{flag}: workload {workload:?} has runs of {} targets while the two sides name different targets: give each side one target's runs",
                    names.len()
                ));
            }
        }
    }
    Ok(groups)
}

fn join(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One table row's cells: metric, baseline, candidate, ratio, interval, threshold,
/// verdict.
fn cells(metric: Metric, c: &Comparison) -> [String; 7] {
    let number = |v: f64| -> String {
        if !v.is_finite() {
            "-".into()
        } else if v.abs() >= 100.0 || v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    [
        metric.label().into(),
        number(c.baseline_median),
        number(c.candidate_median),
        c.ratio.map_or("-".into(), |r| format!("{r:.3}")),
        c.interval
            .map_or("-".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]")),
        match metric {
            Metric::Errors => "none → some".into(),
            _ => format!("±{:.0}%", c.threshold * 100.0),
        },
        c.verdict.as_str().into(),
    ]
}

const HEADER: [&str; 7] = [
    "metric",
    "baseline median",
    "candidate median",
    "ratio",
    "95% CI",
    "threshold",
    "verdict",
];

fn summary(groups: &[Group]) -> &'static str {
    let verdicts: Vec<Verdict> = groups
        .iter()
        .flat_map(|g| g.comparisons.iter().map(|m| m.comparison.verdict))
        .collect();
    if verdicts.contains(&Verdict::Regressed) {
        "regressed"
    } else if verdicts.contains(&Verdict::Inconclusive) {
        "no regression found (some metrics inconclusive: too noisy or too few runs)"
    } else {
        "no regression"
    }
}

fn metric_notes(g: &Group) -> Vec<String> {
    g.comparisons
        .iter()
        .flat_map(|m| {
            m.comparison
                .notes
                .iter()
                .map(move |n| format!("{}: {n}", m.metric.label()))
        })
        .collect()
}

fn text_table(groups: &[Group], notes: &[String]) -> String {
    let mut out = String::new();
    for g in groups {
        let pairs = g.comparisons.first().map_or(0, |m| m.comparison.pairs);
        let _ = writeln!(out, "{}  ({pairs} pairs)", g.label);
        let rows: Vec<[String; 7]> = g
            .comparisons
            .iter()
            .map(|m| cells(m.metric, &m.comparison))
            .collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("  {}", padded.join("  ").trim_end())
        };
        let _ = writeln!(out, "{}", line(&HEADER.map(String::from)));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        for n in metric_notes(g) {
            let _ = writeln!(out, "  note: {n}");
        }
        out.push('\n');
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "gate: {}", summary(groups));
    out
}

fn markdown(groups: &[Group], notes: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### loadgen gate: {}\n", summary(groups));
    for g in groups {
        let pairs = g.comparisons.first().map_or(0, |m| m.comparison.pairs);
        let _ = writeln!(out, "**{}** ({pairs} pairs)\n", escape(&g.label));
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(HEADER.len() - 2) + "---|");
        for m in &g.comparisons {
            let mut row = cells(m.metric, &m.comparison);
            if m.comparison.verdict == Verdict::Regressed {
                row[6] = format!("**{}**", row[6]);
            }
            let row: Vec<String> = row.iter().map(|c| escape(c)).collect();
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let notes = metric_notes(g);
        if !notes.is_empty() {
            out.push('\n');
        }
        for n in notes {
            let _ = writeln!(out, "- {}", escape(&n));
        }
        out.push('\n');
    }
    for n in notes {
        let _ = writeln!(out, "- {}", escape(n));
    }
    let _ = writeln!(
        out,
        "\nRatio: median of paired candidate/baseline ratios; 95% CI: bootstrap (2000 resamples). `regressed` only when the whole interval lies beyond the threshold."
    );
    out
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}
