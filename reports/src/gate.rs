//! Regression gating statistics: paired samples of a baseline and a candidate, the
//! median of the paired ratios candidate / baseline, its bootstrap confidence interval,
//! and a verdict against a per-metric threshold. Pure computation, no I/O: the
//! `loadgen gate` command reads the files and prints what this module returns.
//!
//! Why paired ratios: the samples come from interleaved runs (A B A B) on one noisy
//! machine, so a pair shares the machine's state (frequency, neighbours, cache
//! temperature) and its ratio cancels much of the drift that separate medians keep.
//!
//! Why "the whole interval": a verdict is only `regressed` when every plausible value of
//! the ratio is beyond the threshold on the bad side. A noisy machine widens the
//! interval, which turns the answer into `inconclusive`, never into a false alarm. The
//! price: an effect equal to the threshold is rarely caught, since the interval must
//! clear the threshold entirely; to catch an effect of size E reliably, the threshold
//! must sit well inside E and the pairs must be many enough for a narrow interval
//! (figures in `tests/gate.rs`).

use crate::RunResult;

/// Resamples of the bootstrap.
pub const DEFAULT_RESAMPLES: usize = 2000;
/// Confidence of the interval.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Fewer pairs than this give `inconclusive`: an interval from one or two ratios means
/// nothing.
pub const MIN_PAIRS: usize = 3;

/// Which way is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Throughput: a ratio below 1 is a loss.
    HigherIsBetter,
    /// Latency, CPU, errors: a ratio above 1 is a loss.
    LowerIsBetter,
}

/// The outcome for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval lies beyond the threshold on the bad side.
    Regressed,
    /// The whole interval lies beyond the threshold on the good side.
    Improved,
    /// The whole interval lies within ± the threshold.
    Unchanged,
    /// The interval straddles a threshold (too much noise), or too few samples.
    Inconclusive,
}

impl Verdict {
    /// Lower-case name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metrics the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Successful requests per second.
    Throughput,
    /// Median corrected latency, µs.
    P50,
    /// 99th percentile corrected latency, µs.
    P99,
    /// Server CPU time per successful request, µs.
    ServerCpuPerRequest,
    /// Failed requests (all classes), per run.
    Errors,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 5] = [
        Metric::Throughput,
        Metric::P50,
        Metric::P99,
        Metric::ServerCpuPerRequest,
        Metric::Errors,
    ];

    /// Name with unit, as printed.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput (req/s)",
            Metric::P50 => "p50 latency (µs)",
            Metric::P99 => "p99 latency (µs)",
            Metric::ServerCpuPerRequest => "server CPU per request (µs)",
            Metric::Errors => "errors",
        }
    }

    /// Which way is good.
    pub fn direction(self) -> Direction {
        match self {
            Metric::Throughput => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }

    /// The run's value of this metric, when the run has it.
    pub fn value(self, run: &RunResult) -> Option<f64> {
        match self {
            Metric::Throughput => Some(run.requests_per_s),
            Metric::P50 => Some(run.latency_corrected.p50_us as f64),
            Metric::P99 => Some(run.latency_corrected.p99_us as f64),
            Metric::ServerCpuPerRequest => match (run.server_cpu_s, run.requests) {
                (Some(cpu), n) if n > 0 => Some(cpu * 1e6 / n as f64),
                _ => None,
            },
            Metric::Errors => Some(run.errors.total() as f64),
        }
    }
}

/// Per-metric thresholds, as fractions (0.05 = 5 %).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Thresholds {
    /// Throughput; default 5 %.
    pub throughput: f64,
    /// p50 latency; default 10 %.
    pub p50: f64,
    /// p99 latency; default 10 %.
    pub p99: f64,
    /// Server CPU per request; default 5 %.
    pub server_cpu_per_request: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            throughput: 0.05,
            p50: 0.10,
            p99: 0.10,
            server_cpu_per_request: 0.05,
        }
    }
}

impl Thresholds {
    /// The threshold of `metric` (errors have none: any error where there were none is a
    /// regression).
    pub fn of(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Throughput => self.throughput,
            Metric::P50 => self.p50,
            Metric::P99 => self.p99,
            Metric::ServerCpuPerRequest => self.server_cpu_per_request,
            Metric::Errors => 0.0,
        }
    }
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Bootstrap {
    /// Resamples of the pairs; default [`DEFAULT_RESAMPLES`].
    pub resamples: usize,
    /// Confidence of the interval; default [`DEFAULT_CONFIDENCE`].
    pub confidence: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            confidence: DEFAULT_CONFIDENCE,
        }
    }
}

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Pairs used.
    pub pairs: usize,
    /// Median of the baseline samples (of the pairs used; errors: their total).
    pub baseline_median: f64,
    /// Median of the candidate samples (of the pairs used; errors: their total).
    pub candidate_median: f64,
    /// Median of the paired ratios candidate / baseline (absent without pairs).
    pub ratio: Option<f64>,
    /// Bootstrap confidence interval of that median (absent with fewer than
    /// [`MIN_PAIRS`] pairs).
    pub interval: Option<(f64, f64)>,
    /// The threshold applied, as a fraction.
    pub threshold: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is what it is, when that is not evident (too few pairs, unequal
    /// counts, dropped pairs).
    pub notes: Vec<String>,
}

/// Compares paired samples: pair i is `(baseline[i], candidate[i])`. Unequal lengths are
/// paired by order up to the shorter one (and noted). Deterministic: the resampling
/// generator is seeded from the samples.
pub fn compare(
    direction: Direction,
    threshold: f64,
    baseline: &[f64],
    candidate: &[f64],
    bootstrap: &Bootstrap,
) -> Comparison {
    let mut notes = Vec::new();
    if baseline.len() != candidate.len() {
        notes.push(format!(
            "{} baseline and {} candidate samples: paired by order, the first {}",
            baseline.len(),
            candidate.len(),
            baseline.len().min(candidate.len())
        ));
    }
    let mut base = Vec::new();
    let mut cand = Vec::new();
    let mut ratios = Vec::new();
    let mut dropped = 0;
    for (&b, &c) in baseline.iter().zip(candidate) {
        let ratio = if b == 0.0 && c == 0.0 { 1.0 } else { c / b };
        if !ratio.is_finite() || !b.is_finite() || !c.is_finite() || b < 0.0 || c < 0.0 {
            dropped += 1;
            continue;
        }
        base.push(b);
        cand.push(c);
        ratios.push(ratio);
    }
    if dropped > 0 {
        notes.push(format!(
            "{dropped} pair(s) dropped: zero, negative or non-finite baseline"
        ));
    }
    let pairs = ratios.len();
    let baseline_median = median(&mut base.clone()).unwrap_or(f64::NAN);
    let candidate_median = median(&mut cand.clone()).unwrap_or(f64::NAN);
    let ratio = median(&mut ratios.clone());
    if pairs < MIN_PAIRS {
        notes.push(format!(
            "{pairs} pair(s): at least {MIN_PAIRS} are needed for an interval"
        ));
        return Comparison {
            pairs,
            baseline_median,
            candidate_median,
            ratio,
            interval: None,
            threshold,
            verdict: Verdict::Inconclusive,
            notes,
        };
    }
    let interval = bootstrap_interval(&ratios, bootstrap);
    Comparison {
        pairs,
        baseline_median,
        candidate_median,
        ratio,
        interval: Some(interval),
        threshold,
        verdict: verdict(direction, threshold, interval),
        notes,
    }
}

/// The errors metric: `regressed` if the candidate has errors and the baseline has
/// none, else `unchanged`. Counts are per run; in place of the medians the result holds
/// the totals of the compared runs (one failed request in ten runs still shows).
pub fn compare_errors(baseline: &[u64], candidate: &[u64]) -> Comparison {
    let n = baseline.len().min(candidate.len());
    let mut notes = Vec::new();
    if baseline.len() != candidate.len() {
        notes.push(format!(
            "{} baseline and {} candidate runs: the first {n} of each compared",
            baseline.len(),
            candidate.len()
        ));
    }
    let (b, c) = (&baseline[..n], &candidate[..n]);
    let (b_total, c_total): (u64, u64) = (b.iter().sum(), c.iter().sum());
    let verdict = if c_total > 0 && b_total == 0 {
        notes.push(format!(
            "the candidate failed {c_total} request(s), the baseline none"
        ));
        Verdict::Regressed
    } else {
        Verdict::Unchanged
    };
    Comparison {
        pairs: n,
        baseline_median: b_total as f64,
        candidate_median: c_total as f64,
        ratio: None,
        interval: None,
        threshold: 0.0,
        verdict,
        notes,
    }
}

/// One metric of one group of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    /// Which metric.
    pub metric: Metric,
    /// Its comparison.
    pub comparison: Comparison,
}

/// Compares every metric of two series of runs of one workload (runs in order: run i of
/// the baseline is paired with run i of the candidate). Server CPU per request is left
/// out when neither side measured it.
pub fn compare_runs(
    baseline: &[&RunResult],
    candidate: &[&RunResult],
    thresholds: &Thresholds,
    bootstrap: &Bootstrap,
) -> Vec<MetricComparison> {
    let mut out = Vec::new();
    for metric in Metric::ALL {
        let comparison = match metric {
            Metric::Errors => {
                let counts = |runs: &[&RunResult]| -> Vec<u64> {
                    runs.iter().map(|r| r.errors.total()).collect()
                };
                compare_errors(&counts(baseline), &counts(candidate))
            }
            Metric::ServerCpuPerRequest => {
                let n = baseline.len().min(candidate.len());
                let measured: Vec<(f64, f64)> = baseline[..n]
                    .iter()
                    .zip(&candidate[..n])
                    .filter_map(|(b, c)| Some((metric.value(b)?, metric.value(c)?)))
                    .collect();
                if measured.is_empty() {
                    continue;
                }
                let (b, c): (Vec<f64>, Vec<f64>) = measured.into_iter().unzip();
                let mut cmp = compare(metric.direction(), thresholds.of(metric), &b, &c, bootstrap);
                if b.len() < n {
                    cmp.notes
                        .push(format!("server CPU known for {} of {n} pairs", b.len()));
                }
                cmp
            }
            _ => {
                let values = |runs: &[&RunResult]| -> Vec<f64> {
                    runs.iter().filter_map(|r| metric.value(r)).collect()
                };
                compare(
                    metric.direction(),
                    thresholds.of(metric),
                    &values(baseline),
                    &values(candidate),
                    bootstrap,
                )
            }
        };
        out.push(MetricComparison { metric, comparison });
    }
    out
}

/// The verdict for an interval of the ratio candidate / baseline.
pub fn verdict(direction: Direction, threshold: f64, (lo, hi): (f64, f64)) -> Verdict {
    let (down, up) = (1.0 - threshold, 1.0 + threshold);
    let (bad, good) = match direction {
        Direction::HigherIsBetter => (hi < down, lo > up),
        Direction::LowerIsBetter => (lo > up, hi < down),
    };
    if bad {
        Verdict::Regressed
    } else if good {
        Verdict::Improved
    } else if lo >= down && hi <= up {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}

/// Percentile bootstrap interval of the median of `ratios` (resampled with replacement).
fn bootstrap_interval(ratios: &[f64], bootstrap: &Bootstrap) -> (f64, f64) {
    let n = ratios.len();
    let resamples = bootstrap.resamples.max(1);
    let mut rng = SplitMix64::new(seed_of(ratios));
    let mut sample = vec![0.0; n];
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in sample.iter_mut() {
            *slot = ratios[rng.below(n)];
        }
        medians.push(median(&mut sample).unwrap_or(f64::NAN));
    }
    medians.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - bootstrap.confidence).clamp(0.0, 1.0);
    let lo = ((resamples as f64) * alpha / 2.0).floor() as usize;
    let hi = (((resamples as f64) * (1.0 - alpha / 2.0)).ceil() as usize).saturating_sub(1);
    (
        medians[lo.min(resamples - 1)],
        medians[hi.min(resamples - 1)],
    )
}

/// The median (average of the middle two for an even count); reorders `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    // After the selection, everything before n/2 is <= upper: its maximum is the other
    // middle value.
    let lower = values[..n / 2]
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    Some((lower + upper) / 2.0)
}

/// FNV-1a over the samples' bits: the same input resamples the same way.
fn seed_of(values: &[f64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for byte in v.to_bits().to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough for resampling.
/// Public so tests and simulations can draw reproducible synthetic samples.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n) (multiply-shift; n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal: the sum of 12 uniforms minus 6 (Irwin–Hall).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}
