//! What the plots and the summary show, computed from results files: percentile
//! spectra from the exact histograms, means with 95 % confidence intervals across
//! repeats, per-second timelines and the scenario verdict matrix. The plot module only
//! draws these values (criterion's split: statistics here, drawing there).

use rayon::prelude::*;

use crate::histogram::{self, LatencyHistogram};
use crate::result::{Results, RunResult};
use crate::scenarios::{ScenarioResult, ScenarioResults, VerdictKind};

/// The largest percentile of a spectrum: 99.999 % (x = 100 000).
pub const SPECTRUM_MAX_X: f64 = 100_000.0;
/// Points per decade of the 1/(1-p) axis.
const SPECTRUM_POINTS_PER_DECADE: u32 = 40;

/// One point of a percentile spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumPoint {
    /// The percentile as a fraction, 0 ≤ p ≤ 0.99999.
    pub quantile: f64,
    /// The position on the log axis: 1/(1-p).
    pub x: f64,
    /// The latency at that percentile, µs.
    pub value_us: u64,
}

/// The latency percentile spectrum of a histogram: p from 0 to 0.99999, evenly spaced
/// on the 1/(1-p) log axis. Empty for an empty histogram.
pub fn spectrum(h: &LatencyHistogram) -> Vec<SpectrumPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    let decades = SPECTRUM_MAX_X.log10();
    let steps = (decades * f64::from(SPECTRUM_POINTS_PER_DECADE)).round() as u32;
    (0..=steps)
        .map(|i| {
            let x = 10f64.powf(decades * f64::from(i) / f64::from(steps));
            let quantile = (1.0 - 1.0 / x).clamp(0.0, 1.0);
            SpectrumPoint {
                quantile,
                x,
                value_us: h.value_at_quantile(quantile),
            }
        })
        .collect()
}

/// The axis label of a position on the 1/(1-p) axis: `50%`, `99.9%`, ...
pub fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".to_string();
    }
    let pct = 100.0 * (1.0 - 1.0 / x);
    // Enough decimals to tell 99.9 % from 99.99 %, no trailing zeros.
    let decimals = (x.log10().round() as i32 - 2).clamp(0, 6) as usize;
    let s = format!("{pct:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}%")
}

/// A target as reports show it: a URL without its scheme (`127.0.0.1:8080/`), so that
/// a report holds no link-like text.
pub fn display_target(target: &str) -> String {
    target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .unwrap_or(target)
        .to_string()
}

/// A run's workload as reports show it: a sweep step (a run carrying `sweep_rate` in
/// its config) adds its offered rate, `sweep @ 2000/s`, so that the steps of a sweep
/// are told apart rather than taken for repeats of one workload.
pub fn workload_label(run: &RunResult) -> String {
    match sweep_rate(run) {
        Some(rate) => format!("{} @ {rate:.0}/s", run.workload),
        None => run.workload.clone(),
    }
}

/// The offered rate of a sweep step (`sweep_rate` in its config).
fn sweep_rate(run: &RunResult) -> Option<f64> {
    run.config.sweep.as_ref().map(|s| s.sweep_rate)
}

fn all_runs(files: &[Results]) -> impl Iterator<Item = &RunResult> {
    files.iter().flat_map(|f| f.runs.iter())
}

/// Whether every request of the run failed (or none completed): it has no latency to
/// show, and reports say "failed" rather than a p50 of 0 µs.
pub fn run_failed(run: &RunResult) -> bool {
    run.requests == 0
}

/// The median and range of one figure across a group's repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest.
    pub low: f64,
    /// The largest.
    pub high: f64,
}

/// The [`Band`] of `values`; `None` when empty.
pub fn band(values: &[f64]) -> Option<Band> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Band {
        median,
        low: v[0],
        high: v[n - 1],
    })
}

/// The runs of one target and workload (its repeats), as plots and tables show them.
#[derive(Debug, Clone)]
pub struct RunGroup<'a> {
    /// The target, as [`display_target`] shows it.
    pub target: String,
    /// The workload, as [`workload_label`] shows it.
    pub workload: String,
    /// Its runs, in file order.
    pub runs: Vec<&'a RunResult>,
}

impl RunGroup<'_> {
    /// `target workload`.
    pub fn label(&self) -> String {
        format!("{} {}", self.target, self.workload)
    }

    /// How many of its runs failed ([`run_failed`]).
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| run_failed(r)).count()
    }
}

/// Every run grouped by (target, workload), groups in first-seen order. Every plot and
/// table lists groups in this order, so that a group has the same colour everywhere.
pub fn run_groups(files: &[Results]) -> Vec<RunGroup<'_>> {
    let mut groups: Vec<RunGroup<'_>> = Vec::new();
    for run in all_runs(files) {
        let target = display_target(&run.target);
        let workload = workload_label(run);
        first_seen_entry(
            &mut groups,
            |g| g.target == target && g.workload == workload,
            || RunGroup {
                target: target.clone(),
                workload: workload.clone(),
                runs: Vec::new(),
            },
        )
        .runs
        .push(run);
    }
    groups
}

/// How a group's runs went, for legends: `n=18`, `n=18, 2 failed`, or `failed: every
/// request of its 3 runs failed`.
fn group_note(runs: usize, failed: usize) -> String {
    match (runs, failed) {
        (1, 1) => "failed: every request failed".to_string(),
        (n, f) if f == n => format!("failed: every request of its {n} runs failed"),
        (1, _) => String::new(),
        (n, 0) => format!("n={n}"),
        (n, f) => format!("n={n}, {f} failed"),
    }
}

/// The legend label of a group: `target workload (n=18)`.
fn group_label(g: &RunGroup<'_>) -> String {
    let note = group_note(g.runs.len(), g.failed());
    if note.is_empty() {
        g.label()
    } else {
        format!("{} ({note})", g.label())
    }
}

/// A point of a group's spectrum: the median and range across its repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandPoint {
    /// The position on the 1/(1-p) log axis.
    pub x: f64,
    /// The latency at that percentile, µs, across the group's runs.
    pub us: Band,
}

/// The spectra of one target and workload, corrected and uncorrected, across the
/// runs that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpectrum {
    /// `target workload (n=…)`, or with `failed` when every run failed.
    pub label: String,
    /// The workload, as [`workload_label`] shows it.
    pub workload: String,
    /// Runs in the group.
    pub runs: usize,
    /// Runs of them that failed (they add nothing to the spectra).
    pub failed: usize,
    /// Latency from the due time; empty when every run failed.
    pub corrected: Vec<BandPoint>,
    /// Latency from the actual send; empty when every run failed.
    pub uncorrected: Vec<BandPoint>,
}

/// The point-by-point band of spectra that share their x positions.
fn band_spectrum(spectra: &[Vec<SpectrumPoint>]) -> Vec<BandPoint> {
    let spectra: Vec<&Vec<SpectrumPoint>> = spectra.iter().filter(|s| !s.is_empty()).collect();
    let Some(first) = spectra.first() else {
        return Vec::new();
    };
    (0..first.len())
        .filter_map(|i| {
            let values: Vec<f64> = spectra
                .iter()
                .filter_map(|s| s.get(i).map(|p| p.value_us as f64))
                .collect();
            band(&values).map(|us| BandPoint { x: first[i].x, us })
        })
        .collect()
}

/// The spectra of every group of runs ([`run_groups`]); histograms are decoded in
/// parallel.
pub fn spectra(files: &[Results]) -> Result<Vec<GroupSpectrum>, String> {
    run_groups(files)
        .par_iter()
        .map(|g| {
            let label = group_label(g);
            let mut corrected = Vec::new();
            let mut uncorrected = Vec::new();
            for run in g.runs.iter().filter(|r| !run_failed(r)) {
                let c = histogram::decode(&run.histogram_corrected)
                    .map_err(|e| format!("{}: corrected {e}", g.label()))?;
                let u = histogram::decode(&run.histogram_uncorrected)
                    .map_err(|e| format!("{}: uncorrected {e}", g.label()))?;
                corrected.push(spectrum(&c));
                uncorrected.push(spectrum(&u));
            }
            Ok(GroupSpectrum {
                label,
                workload: g.workload.clone(),
                runs: g.runs.len(),
                failed: g.failed(),
                corrected: band_spectrum(&corrected),
                uncorrected: band_spectrum(&uncorrected),
            })
        })
        .collect()
}

/// A mean with its 95 % confidence interval (Student's t).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Samples.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Lower bound of the 95 % interval (= mean for one sample).
    pub low: f64,
    /// Upper bound of the 95 % interval (= mean for one sample).
    pub high: f64,
}

/// Two-sided 95 % Student's t critical values for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 95 % t critical value for `df` degrees of freedom (the normal 1.96
/// past the table, an error under 2 % from df 31 on).
pub fn t95(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T95[df - 1],
        _ => 1.96,
    }
}

/// The mean of `samples` and its 95 % confidence interval; `None` when empty. With one
/// sample the interval has zero width (nothing is known about the spread).
pub fn mean_ci(samples: &[f64]) -> Option<MeanCi> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(MeanCi {
            n,
            mean,
            low: mean,
            high: mean,
        });
    }
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Some(MeanCi {
        n,
        mean,
        low: mean - half,
        high: mean + half,
    })
}

/// One target × workload across its repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The target, as [`display_target`] shows it.
    pub target: String,
    /// The workload.
    pub workload: String,
    /// Successful requests per second, over every run (a failed run counts as 0).
    pub requests_per_s: MeanCi,
    /// Median corrected latency, µs, over the runs that did not fail; `None` when
    /// every run failed.
    pub p50_us: Option<MeanCi>,
    /// 99th percentile corrected latency, µs, likewise.
    pub p99_us: Option<MeanCi>,
    /// Failed requests, all repeats added up.
    pub errors: u64,
    /// Runs in which every request failed.
    pub failed_runs: usize,
}

/// Runs grouped by (target, workload) ([`run_groups`]), with the mean and 95 %
/// confidence interval of each figure across the group's repeats.
pub fn comparisons(files: &[Results]) -> Vec<Comparison> {
    run_groups(files)
        .into_iter()
        .filter_map(|g| {
            let ok: Vec<&RunResult> = g.runs.iter().copied().filter(|r| !run_failed(r)).collect();
            let of = |runs: &[&RunResult], f: &dyn Fn(&RunResult) -> f64| {
                mean_ci(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            Some(Comparison {
                requests_per_s: of(&g.runs, &|r| r.requests_per_s)?,
                p50_us: of(&ok, &|r| r.latency_corrected.p50_us as f64),
                p99_us: of(&ok, &|r| r.latency_corrected.p99_us as f64),
                errors: g.runs.iter().map(|r| r.errors.total()).sum(),
                failed_runs: g.failed(),
                target: g.target,
                workload: g.workload,
            })
        })
        .collect()
}

/// One group's per-second figures, each the median and range across its repeats at
/// that second.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineGroup {
    /// `target workload (n=…)` (see [`GroupSpectrum::label`]).
    pub label: String,
    /// The workload, as [`workload_label`] shows it.
    pub workload: String,
    /// Seconds since measuring started, every second any of the runs has.
    pub seconds: Vec<f64>,
    /// Successful requests in each second.
    pub requests_per_s: Vec<Band>,
    /// Failed requests in each second.
    pub errors_per_s: Vec<Band>,
    /// Corrected p99 of each second, milliseconds; `None` for a second in which no run
    /// completed a request.
    pub p99_ms: Vec<Option<Band>>,
}

/// The timeline of every group of runs ([`run_groups`]).
pub fn timelines(files: &[Results]) -> Vec<TimelineGroup> {
    run_groups(files)
        .iter()
        .map(|g| {
            let mut seconds: Vec<u64> = g
                .runs
                .iter()
                .flat_map(|r| r.timeline.iter().map(|p| p.second))
                .collect();
            seconds.sort_unstable();
            seconds.dedup();
            let at = |second: u64| {
                g.runs
                    .iter()
                    .filter_map(move |r| r.timeline.iter().find(|p| p.second == second))
            };
            let mut out = TimelineGroup {
                label: group_label(g),
                workload: g.workload.clone(),
                seconds: Vec::new(),
                requests_per_s: Vec::new(),
                errors_per_s: Vec::new(),
                p99_ms: Vec::new(),
            };
            for &s in &seconds {
                let requests: Vec<f64> = at(s).map(|p| p.requests as f64).collect();
                let errors: Vec<f64> = at(s).map(|p| p.errors as f64).collect();
                let p99: Vec<f64> = at(s)
                    .filter(|p| p.requests > 0)
                    .map(|p| p.p99_us as f64 / 1000.0)
                    .collect();
                let (Some(r), Some(e)) = (band(&requests), band(&errors)) else {
                    continue;
                };
                out.seconds.push(s as f64);
                out.requests_per_s.push(r);
                out.errors_per_s.push(e);
                out.p99_ms.push(band(&p99));
            }
            out
        })
        .collect()
}

/// One open-model run on the latency-vs-rate curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePoint {
    /// Offered rate, requests per second.
    pub offered_per_s: f64,
    /// Successful requests per second.
    pub achieved_per_s: f64,
    /// Corrected median, milliseconds.
    pub p50_ms: f64,
    /// Corrected 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Whether the step held its SLO (`sweep_held`).
    pub held: bool,
    /// Every request of the step failed: its latencies are not drawn.
    pub failed: bool,
}

/// The latency-vs-offered-rate curve of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct RateCurve {
    /// The target, as [`display_target`] shows it.
    pub target: String,
    /// The steps of the target's sweeps, by offered rate.
    pub points: Vec<RatePoint>,
    /// The p99 SLO of its sweep (`sweep_slo_us`), milliseconds.
    pub slo_ms: Option<f64>,
}

/// The element of `groups` that `is_it` picks, else `new()` appended: how runs are
/// grouped in first-seen order.
fn first_seen_entry<T>(
    groups: &mut Vec<T>,
    is_it: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    let i = match groups.iter().position(is_it) {
        Some(i) => i,
        None => {
            groups.push(new());
            groups.len() - 1
        }
    };
    &mut groups[i]
}

/// The latency-vs-rate curves: one per target, from the steps of sweeps (runs that
/// carry a sweep record), in first-seen target order. A lone open-model run (`loadgen
/// run --rate`) is not a curve and is left out. Empty when there is no sweep.
pub fn rate_curves(files: &[Results]) -> Vec<RateCurve> {
    let mut curves: Vec<RateCurve> = Vec::new();
    for run in all_runs(files) {
        let Some(sweep) = &run.config.sweep else {
            continue;
        };
        let target = display_target(&run.target);
        let c = first_seen_entry(
            &mut curves,
            |c| c.target == target,
            || RateCurve {
                target: target.clone(),
                points: Vec::new(),
                slo_ms: None,
            },
        );
        if c.slo_ms.is_none() {
            c.slo_ms = Some(sweep.sweep_slo_us as f64 / 1000.0);
        }
        let offered = run
            .open_model
            .as_ref()
            .map_or(sweep.sweep_rate, |om| om.rate_per_s);
        c.points.push(RatePoint {
            offered_per_s: offered,
            achieved_per_s: run.requests_per_s,
            p50_ms: run.latency_corrected.p50_us as f64 / 1000.0,
            p99_ms: run.latency_corrected.p99_us as f64 / 1000.0,
            held: sweep.sweep_held,
            failed: run_failed(run),
        });
    }
    for c in &mut curves {
        c.points
            .sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    }
    curves
}

/// What a sweep found for one target and SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    /// The target, as [`display_target`] shows it.
    pub target: String,
    /// The p99 SLO, µs.
    pub slo_us: u64,
    /// Steps measured.
    pub steps: usize,
    /// The highest offered rate that held; `None` when none did.
    pub max_rate_per_s: Option<f64>,
    /// The lowest offered rate that did not hold; `None` when all did.
    pub first_failed_per_s: Option<f64>,
}

/// The sweeps in the files (runs carrying `sweep_rate`, `sweep_slo_us` and
/// `sweep_held`), one per target and SLO, in first-seen order.
pub fn sweep_summaries(files: &[Results]) -> Vec<SweepSummary> {
    let mut out: Vec<SweepSummary> = Vec::new();
    for run in all_runs(files) {
        let Some(sweep) = &run.config.sweep else {
            continue;
        };
        let (rate, slo_us, held) = (sweep.sweep_rate, sweep.sweep_slo_us, sweep.sweep_held);
        let target = display_target(&run.target);
        let s = first_seen_entry(
            &mut out,
            |s| s.target == target && s.slo_us == slo_us,
            || SweepSummary {
                target: target.clone(),
                slo_us,
                steps: 0,
                max_rate_per_s: None,
                first_failed_per_s: None,
            },
        );
        s.steps += 1;
        if held {
            s.max_rate_per_s = Some(s.max_rate_per_s.map_or(rate, |r| r.max(rate)));
        } else {
            s.first_failed_per_s = Some(s.first_failed_per_s.map_or(rate, |r| r.min(rate)));
        }
    }
    out
}

/// Scenario verdicts: one row per clause ID, one column per scenario results file.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictMatrix {
    /// Column titles: the file's target (`reference`, `nginx (1.22.1)`, a URL, a
    /// command), with ` + FAULT` for a negative control, made unique with `#n`.
    pub columns: Vec<String>,
    /// Clause IDs, in first-seen order.
    pub rows: Vec<String>,
    /// `cells[row][column]`: the final verdict, `None` where the file lacks the clause.
    pub cells: Vec<Vec<Option<VerdictKind>>>,
    /// `flaky[row][column]`: repeated runs disagreed.
    pub flaky: Vec<Vec<bool>>,
}

/// The verdict matrix of one or more scenario results files.
pub fn verdict_matrix(files: &[ScenarioResults]) -> VerdictMatrix {
    let mut columns: Vec<String> = Vec::new();
    for f in files {
        let base = match &f.fault {
            Some(fault) => format!("{} + {fault}", f.target),
            None => f.target.clone(),
        };
        let n = columns
            .iter()
            .filter(|c| **c == base || c.starts_with(&format!("{base} #")))
            .count();
        columns.push(if n == 0 {
            base
        } else {
            format!("{base} #{}", n + 1)
        });
    }
    let mut rows: Vec<String> = Vec::new();
    for s in files.iter().flat_map(|f| f.scenarios.iter()) {
        if !rows.contains(&s.id) {
            rows.push(s.id.clone());
        }
    }
    fn cell<'a>(id: &str, f: &'a ScenarioResults) -> Option<&'a ScenarioResult> {
        f.scenarios.iter().find(|s| s.id == id)
    }
    let cells = rows
        .iter()
        .map(|id| {
            files
                .iter()
                .map(|f| cell(id, f).map(|s| s.verdict))
                .collect()
        })
        .collect();
    let flaky = rows
        .iter()
        .map(|id| {
            files
                .iter()
                .map(|f| cell(id, f).is_some_and(|s| s.flaky))
                .collect()
        })
        .collect();
    VerdictMatrix {
        columns,
        rows,
        cells,
        flaky,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_spans_zero_to_five_nines_and_is_monotonic() {
        let mut h = histogram::new_histogram();
        for v in 1..=100_000 {
            histogram::record(&mut h, v);
        }
        let s = spectrum(&h);
        assert_eq!(s[0].quantile, 0.0);
        assert!((s.last().unwrap().quantile - 0.99999).abs() < 1e-9);
        assert!(s.windows(2).all(|w| w[0].value_us <= w[1].value_us));
        let p99 = s.iter().find(|p| (p.x - 100.0).abs() < 1e-6).unwrap();
        assert!((98_900..=99_100).contains(&p99.value_us), "{p99:?}");
        assert!(spectrum(&histogram::new_histogram()).is_empty());
    }

    #[test]
    fn percentile_labels() {
        let l: Vec<String> = [1.0, 2.0, 10.0, 100.0, 1e3, 1e4, 1e5]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(l, ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    /// A results file of sweep steps (rate, p99 µs, held) built from a real-looking
    /// run, plus one closed-model run that has no place on the curve.
    fn sweep_file(steps: &[(f64, u64, bool)]) -> Results {
        let mut h = histogram::new_histogram();
        histogram::record(&mut h, 100);
        let mut base: serde_json::Value = serde_json::json!({
            "schema": crate::RESULT_SCHEMA,
            "tool": {"name": "loadgen", "version": "0", "git_revision": null},
            "host": {"kernel": "k", "cpu_model": "c", "cores": 2, "governor": null},
            "started_at": "2025-01-01T00:00:00Z",
            "started_unix_ms": 0,
            "runs": []
        });
        let closed = serde_json::json!({
            "target": "http://127.0.0.1:8080/", "workload": "plaintext", "config": {},
            "duration_s": 1.0, "requests": 1, "errors": crate::ErrorCounts::default(),
            "requests_per_s": 1.0, "bytes_per_s": 1.0, "bytes_read": 1, "bytes_written": 1,
            "latency_corrected": histogram::summarize(&h),
            "latency_uncorrected": histogram::summarize(&h),
            "latency_errors": crate::LatencySummary::default(),
            "histogram_corrected": histogram::encode(&h),
            "histogram_uncorrected": histogram::encode(&h),
            "histogram_errors": histogram::encode(&h),
            "timeline": [], "open_model": null, "client_cpu_s": null, "server_cpu_s": null,
            "warnings": []
        });
        let mut runs = vec![closed.clone()];
        for &(rate, p99, held) in steps {
            let mut r = closed.clone();
            r["workload"] = "sweep".into();
            r["config"] = serde_json::json!({
                "sweep_rate": rate, "sweep_slo_us": 10_000, "sweep_held": held
            });
            r["latency_corrected"]["p99_us"] = p99.into();
            r["open_model"] = serde_json::to_value(crate::OpenModel {
                rate_per_s: rate,
                ..Default::default()
            })
            .unwrap();
            runs.push(r);
        }
        base["runs"] = runs.into();
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn rate_curves_and_sweep_summaries() {
        let f = sweep_file(&[
            (1000.0, 2_000, true),
            (2000.0, 4_000, true),
            (3000.0, 50_000, false),
            (2500.0, 12_000, false),
        ]);
        let curves = rate_curves(std::slice::from_ref(&f));
        assert_eq!(curves.len(), 1);
        let c = &curves[0];
        assert_eq!(c.target, "127.0.0.1:8080/");
        assert_eq!(c.slo_ms, Some(10.0));
        let rates: Vec<f64> = c.points.iter().map(|p| p.offered_per_s).collect();
        assert_eq!(rates, [1000.0, 2000.0, 2500.0, 3000.0]);
        assert_eq!(c.points[3].p99_ms, 50.0);
        assert!(!c.points[2].held);
        let s = sweep_summaries(std::slice::from_ref(&f));
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].steps, s[0].max_rate_per_s, s[0].first_failed_per_s),
            (4, Some(2000.0), Some(2500.0))
        );
        // Sweep steps are told apart from each other, not taken for repeats.
        let cmp = comparisons(&[f]);
        assert_eq!(cmp.len(), 5);
        assert_eq!(cmp[1].workload, "sweep @ 1000/s");
        assert!(rate_curves(&[sweep_file(&[])]).is_empty());
    }

    #[test]
    fn mean_ci_uses_student_t() {
        let ci = mean_ci(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!(ci.mean, 12.0);
        // s = 2, n = 3, t(2) = 4.303: half width 4.303 * 2 / sqrt(3).
        let half = 4.303 * 2.0 / 3f64.sqrt();
        assert!((ci.high - 12.0 - half).abs() < 1e-9);
        assert!((12.0 - ci.low - half).abs() < 1e-9);
        let one = mean_ci(&[5.0]).unwrap();
        assert_eq!((one.low, one.high), (5.0, 5.0));
        assert!(mean_ci(&[]).is_none());
    }
}
