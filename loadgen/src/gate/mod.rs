//! What `loadgen gate` compares: two sets of results files read, their runs grouped
//! by workload (and target) and each group compared (statistics in `reports::gate`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reports::gate::{self, Bootstrap, MetricComparison, Thresholds, Verdict};
use reports::{Results, RunResult, RESULT_SCHEMA};

/// The runs of one workload (and target, when both sides name the same targets).
#[derive(Debug)]
pub struct Group {
    /// `workload @ target`, or the workload.
    pub label: String,
    /// One comparison per metric.
    pub comparisons: Vec<MetricComparison>,
}

/// Whether any metric of any group regressed.
pub fn regressed(groups: &[Group]) -> bool {
    groups
        .iter()
        .flat_map(|g| &g.comparisons)
        .any(|m| m.comparison.verdict == Verdict::Regressed)
}

/// Every run of `paths`, in file order then run order.
pub fn read_runs(flag: &str, paths: &[PathBuf]) -> Result<Vec<RunResult>, String> {
    let mut runs = Vec::new();
    for path in paths {
        let file = read_results(flag, path)?;
        // Figures of a run cut short are not comparable with whole ones.
        if let Some((i, r)) = file
            .runs
            .iter()
            .enumerate()
            .find(|(_, r)| r.config.run.as_ref().is_some_and(|x| x.interrupted))
        {
            return Err(format!(
                "{flag} {}: run {} ({} on {}) was interrupted and cut short: measure again without interrupting it",
                path.display(),
                i + 1,
                r.workload,
                r.target
            ));
        }
        runs.extend(file.runs);
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

/// Groups both sides' runs and compares each group present on both sides; also
/// returns notes on what was not compared.
pub fn compare(
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
