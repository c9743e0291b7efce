//! `loadgen sweep`: steps the open-model rate up until the corrected p99 crosses the
//! SLO (or requests fail, or the server cannot keep up), then bisects between the last
//! rate that held and the first that did not, and reports the highest rate that held
//! with the whole latency-vs-rate curve.
//!
//! The search ([`sweep`]) and the verdict of one step ([`judge`]) are plain functions
//! of measured figures, so they are tested without a server.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use reports::RunResult;

use crate::run::config::{parse_duration, Arrivals};
use crate::run::{run as run_load, RunConfig};
use crate::EXIT_OK;

/// A step holds only if at least this share of the offered rate completed.
const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// ... and at most this share of the due requests was never sent.
const MAX_NEVER_SENT_SHARE: f64 = 0.01;
/// ... and at most this share of the sends was over 1 ms behind its due time.
const MAX_LATE_SHARE: f64 = 0.5;
/// Bisection stops early once the bracket is narrower than this share of its low end.
const MIN_BRACKET_SHARE: f64 = 0.005;

/// `loadgen sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The URL to load, http://host:port/path.
    pub url: String,
    /// The p99 latency to hold (corrected: from each request's due time), e.g. 10ms,
    /// 500us.
    #[arg(long, value_name = "DURATION")]
    pub slo: String,
    /// The first offered rate, requests per second.
    #[arg(long, default_value_t = 1000.0, value_name = "R")]
    pub start: f64,
    /// How the rate grows from step to step: a percentage (`25%`: times 1.25) or a
    /// number of requests per second added (`500`).
    #[arg(long, default_value = "25%", value_name = "STEP")]
    pub step: String,
    /// The highest rate to offer, requests per second; the sweep stops there even if it
    /// still holds.
    #[arg(long, value_name = "R")]
    pub max: Option<f64>,
    /// Bisection steps between the last rate that held and the first that did not
    /// (each halves the gap; 0: none).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub refine: u32,
    /// Measure a rising step that did not hold again, up to N times, before bisecting:
    /// a transient stall (another process taking the CPU) then does not end the search
    /// early, while a rate over capacity fails every time.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: u32,
    /// How long each step measures, e.g. 5s, 500ms.
    #[arg(short = 'd', long, default_value = "5s")]
    pub duration: String,
    /// Load without recording before each step, e.g. 1s, 0s.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Start no step after the sweep has run this long, e.g. 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub max_time: String,
    /// Connections in all (each has one request in flight: enough for rate × latency).
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Client threads (default: the CPUs this process may use).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Open-model arrivals: fixed or poisson.
    #[arg(long, default_value = "fixed")]
    pub arrivals: String,
    /// A request without a response after this fails as `timeout`.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long)]
    pub header: Vec<String>,
    /// Write every step's run (loadgen.result/v1 JSON, workload `sweep`) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// No progress line per step on stderr (the table and the answer still print).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// How the rate grows between steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// Multiply by this factor (> 1).
    Factor(f64),
    /// Add this many requests per second (> 0).
    Add(f64),
}

impl Growth {
    /// Parses `25%` (factor 1.25) or `500` (add 500 req/s).
    pub fn parse(s: &str) -> Result<Growth, String> {
        let t = s.trim();
        let bad = || format!("--step {s:?}: use a percentage such as 25% or a rate such as 500");
        if let Some(pct) = t.strip_suffix('%') {
            let p: f64 = pct.trim().parse().map_err(|_| bad())?;
            if !(p.is_finite() && p > 0.0) {
                return Err(format!("--step {s:?}: use a positive percentage, e.g. 25%"));
            }
            Ok(Growth::Factor(1.0 + p / 100.0))
        } else {
            let a: f64 = t.parse().map_err(|_| bad())?;
            if !(a.is_finite() && a > 0.0) {
                return Err(format!(
                    "--step {s:?}: use a positive number of requests per second, e.g. 500"
                ));
            }
            Ok(Growth::Add(a))
        }
    }

    /// The rate after `r`: always at least 1 req/s higher, whole requests per second.
    pub fn next(self, r: f64) -> f64 {
        let n = match self {
            Growth::Factor(f) => r * f,
            Growth::Add(a) => r + a,
        };
        n.round().max(r.floor() + 1.0)
    }
}

/// The search's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The first rate.
    pub start: f64,
    /// The growth between steps.
    pub growth: Growth,
    /// The highest rate to offer.
    pub max: Option<f64>,
    /// Bisection steps after the first step that did not hold.
    pub refine: u32,
    /// Repeats of a rising step that did not hold before it counts as not holding.
    pub retries: u32,
}

/// Why a step ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Stepping the rate up.
    Grow,
    /// Measuring a rising step that did not hold again.
    Retry,
    /// Bisecting between the last rate that held and the first that did not.
    Refine,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Grow => "grow",
            Phase::Retry => "retry",
            Phase::Refine => "refine",
        }
    }
}

/// Why the sweep stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// A step did not hold (its rate).
    Failed(f64),
    /// `--max` held.
    Max,
    /// `--max-time` was spent before a step failed.
    TimeLimit,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The highest rate that held; `None` when not even the first did.
    pub max_rate: Option<f64>,
    /// Why it stopped.
    pub stop: Stop,
    /// Every step: (rate, phase, held), in order.
    pub steps: Vec<(f64, Phase, bool)>,
}

/// The search: steps up from `plan.start` until a step does not hold (or `plan.max`
/// holds, or `more_time()` says no), then bisects `plan.refine` times between the last
/// rate that held and the first that did not. A rising step that does not hold is
/// measured again up to `plan.retries` times first and holds if any attempt does
/// (bisection steps are not repeated: a spurious failure there only narrows the answer
/// within the bracket). `measure(rate, phase)` runs one step and says whether it held;
/// its errors end the search.
pub fn sweep(
    plan: &Plan,
    mut measure: impl FnMut(f64, Phase) -> Result<bool, String>,
    mut more_time: impl FnMut() -> bool,
) -> Result<Outcome, String> {
    let mut steps = Vec::new();
    let mut rate = plan.start;
    let mut held_max: Option<f64> = None;
    let failed = loop {
        if !steps.is_empty() && !more_time() {
            return Ok(Outcome {
                max_rate: held_max,
                stop: Stop::TimeLimit,
                steps,
            });
        }
        let mut held = measure(rate, Phase::Grow)?;
        steps.push((rate, Phase::Grow, held));
        for _ in 0..plan.retries {
            if held || !more_time() {
                break;
            }
            held = measure(rate, Phase::Retry)?;
            steps.push((rate, Phase::Retry, held));
        }
        if !held {
            break rate;
        }
        held_max = Some(rate);
        match plan.max {
            Some(m) if rate >= m => {
                return Ok(Outcome {
                    max_rate: held_max,
                    stop: Stop::Max,
                    steps,
                })
            }
            Some(m) => rate = plan.growth.next(rate).min(m),
            None => rate = plan.growth.next(rate),
        }
    };
    if let Some(mut lo) = held_max {
        let mut hi = failed;
        for _ in 0..plan.refine {
            if hi - lo <= (lo * MIN_BRACKET_SHARE).max(1.0) || !more_time() {
                break;
            }
            let mid = ((lo + hi) / 2.0).round();
            let held = measure(mid, Phase::Refine)?;
            steps.push((mid, Phase::Refine, held));
            if held {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        held_max = Some(lo);
    }
    Ok(Outcome {
        max_rate: held_max,
        stop: Stop::Failed(failed),
        steps,
    })
}

/// The figures of one step that decide whether it held.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// Offered rate, req/s.
    pub offered: f64,
    /// Completed successfully, req/s.
    pub achieved: f64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Corrected median, µs.
    pub p50_us: u64,
    /// Corrected p99, µs.
    pub p99_us: u64,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Requests sent (measured part).
    pub sent: u64,
    /// Sends over 1 ms behind their due time.
    pub late: u64,
    /// Requests due in the measured part but never sent.
    pub never_sent: u64,
    /// Connections (each may end the step with one due request unsent).
    pub connections: u64,
}

impl Figures {
    /// The figures of a run.
    pub fn of(r: &RunResult) -> Figures {
        let om = r.open_model.as_ref();
        Figures {
            offered: om.map_or(0.0, |o| o.rate_per_s),
            achieved: r.requests_per_s,
            duration_s: r.duration_s,
            p50_us: r.latency_corrected.p50_us,
            p99_us: r.latency_corrected.p99_us,
            requests: r.requests,
            errors: r.errors.total(),
            sent: r.requests + r.errors.total(),
            late: om.map_or(0, |o| o.late),
            never_sent: om.map_or(0, |o| o.never_sent),
            connections: r
                .config
                .get("connections")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        }
    }
}

/// Whether a step held the SLO: `Ok` or the first reason it did not. It holds when
/// the corrected p99 is within the SLO, no request failed, at least 95 % of the offered
/// rate completed (a server that falls behind does not hold just because the slow
/// requests are still in flight at the end) and the client kept its schedule (at most
/// 1 % of the due requests never sent, beyond the one per connection that the end of
/// the step can catch waiting for its turn; at most half the sends over 1 ms late).
pub fn judge(f: &Figures, slo_us: u64) -> Result<(), String> {
    if f.requests == 0 {
        return Err("no successful response".into());
    }
    if f.errors > 0 {
        return Err(format!("{} requests failed", f.errors));
    }
    if f.p99_us > slo_us {
        return Err(format!("p99 {} > {}", ms(f.p99_us), ms(slo_us)));
    }
    if f.achieved < f.offered * MIN_ACHIEVED_SHARE {
        return Err(format!(
            "achieved {:.0} req/s < {:.0} % of the offered rate",
            f.achieved,
            MIN_ACHIEVED_SHARE * 100.0
        ));
    }
    let due = (f.offered * f.duration_s).max(1.0);
    if f.never_sent as f64 > due * MAX_NEVER_SENT_SHARE + f.connections as f64 {
        return Err(format!(
            "{} due requests never sent (every connection busy: the server is behind, or add -c)",
            f.never_sent
        ));
    }
    if f.late as f64 > f.sent.max(1) as f64 * MAX_LATE_SHARE {
        return Err(format!(
            "{} of {} sends over 1 ms late (the client fell behind: add -t or -c)",
            f.late, f.sent
        ));
    }
    Ok(())
}

/// A latency for the table: `0.612 ms`, `25.1 ms`.
fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.3} ms", us as f64 / 1000.0)
    }
}

/// The SLO as the answer line shows it: `10ms`, `500us`, `1.5s`.
fn slo_text(us: u64) -> String {
    if us >= 1_000_000 && us % 100_000 == 0 {
        format!("{}s", us as f64 / 1e6)
    } else if us >= 1000 && us % 100 == 0 {
        format!("{}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

/// Validated settings.
struct Settings {
    plan: Plan,
    slo_us: u64,
    base: RunConfig,
    max_time: Duration,
}

fn settings(a: &SweepArgs) -> Result<Settings, String> {
    let dur = |flag: &str, s: &str| parse_duration(s).map_err(|e| format!("--{flag} {s:?}: {e}"));
    let slo = dur("slo", &a.slo)?;
    let slo_us = slo.as_micros().min(u64::MAX as u128) as u64;
    if slo_us == 0 {
        return Err(format!(
            "--slo {:?}: use a positive latency, e.g. 10ms",
            a.slo
        ));
    }
    if !(a.start.is_finite() && a.start >= 1.0) {
        return Err(format!(
            "--start {}: use a rate of at least 1 request per second",
            a.start
        ));
    }
    if let Some(m) = a.max {
        if !(m.is_finite() && m >= a.start) {
            return Err(format!(
                "--max {m}: use a rate at or above --start ({})",
                a.start
            ));
        }
    }
    let growth = Growth::parse(&a.step)?;
    let duration = dur("duration", &a.duration)?;
    if duration < Duration::from_millis(100) {
        return Err(format!(
            "--duration {:?}: use at least 100ms per step, e.g. 5s",
            a.duration
        ));
    }
    let max_time = dur("max-time", &a.max_time)?;
    let mut base = RunConfig::new(&a.url, a.connections.max(1), duration)?;
    base.connections = a.connections;
    base.threads = a
        .threads
        .unwrap_or_else(|| {
            engine::sys::thread::allowed_cpus()
                .map(|c| c.len())
                .unwrap_or(1)
        })
        .min(a.connections.max(1));
    base.warmup = dur("warmup", &a.warmup)?;
    base.timeout = dur("timeout", &a.timeout)?;
    base.arrivals = match a.arrivals.as_str() {
        "fixed" => Arrivals::Fixed,
        "poisson" => Arrivals::Poisson,
        other => return Err(format!("--arrivals {other:?}: use fixed or poisson")),
    };
    base.method = a.method.to_ascii_uppercase();
    for h in &a.header {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: use 'Name: value'"))?;
        base.headers
            .push((n.trim().to_string(), v.trim().to_string()));
    }
    base.rate = Some(a.start);
    base.progress = false;
    base.validate()?;
    Ok(Settings {
        plan: Plan {
            start: a.start.round().max(1.0),
            growth,
            max: a.max,
            refine: a.refine,
            retries: a.retries,
        },
        slo_us,
        base,
        max_time,
    })
}

/// One measured step, tagged for the results file.
fn measure_step(
    s: &Settings,
    step: usize,
    rate: f64,
    phase: Phase,
) -> Result<(RunResult, Result<(), String>), String> {
    let mut cfg = s.base.clone();
    cfg.rate = Some(rate);
    // A different (reproducible) Poisson sequence per step.
    cfg.seed = step as u64;
    cfg.validate()?;
    let mut r = run_load(&cfg).map_err(|e| format!("sweep step {step} ({rate:.0} req/s): {e}"))?;
    let verdict = judge(&Figures::of(&r), s.slo_us);
    r.workload = "sweep".into();
    r.config.insert("sweep_step".into(), step.into());
    r.config.insert("sweep_phase".into(), phase.name().into());
    r.config.insert("sweep_rate".into(), rate.into());
    r.config.insert("sweep_slo_us".into(), s.slo_us.into());
    r.config.insert("sweep_held".into(), verdict.is_ok().into());
    r.config.insert(
        "sweep_reason".into(),
        verdict.as_ref().err().cloned().into(),
    );
    Ok((r, verdict))
}

fn table(runs: &[RunResult]) -> String {
    let mut out = format!(
        "{:>4} {:<6} {:>10} {:>10} {:>11} {:>11} {:>7}  {}\n",
        "step", "phase", "offered/s", "achieved/s", "p50", "p99", "errors", "holds"
    );
    for r in runs {
        let get = |k: &str| r.config.get(k);
        let reason = get("sweep_reason").and_then(|v| v.as_str()).unwrap_or("");
        let held = get("sweep_held").and_then(|v| v.as_bool()) == Some(true);
        out.push_str(&format!(
            "{:>4} {:<6} {:>10.0} {:>10.0} {:>11} {:>11} {:>7}  {}\n",
            get("sweep_step").and_then(|v| v.as_u64()).unwrap_or(0),
            get("sweep_phase").and_then(|v| v.as_str()).unwrap_or(""),
            get("sweep_rate").and_then(|v| v.as_f64()).unwrap_or(0.0),
            r.requests_per_s,
            ms(r.latency_corrected.p50_us),
            ms(r.latency_corrected.p99_us),
            r.errors.total(),
            if held {
                "yes".to_string()
            } else {
                format!("no: {reason}")
            }
        ));
    }
    out
}

fn answer(o: &Outcome, slo_us: u64, start: f64) -> String {
    let head = format!("max rate under p99 <= {}", slo_text(slo_us));
    match (o.max_rate, o.stop) {
        (None, _) => format!(
            "{head}: none (the first step, {start:.0} req/s, did not hold: lower --start)"
        ),
        (Some(r), Stop::Failed(_)) => format!("{head}: {r:.0} req/s"),
        (Some(r), Stop::Max) => {
            format!("{head}: {r:.0} req/s (reached --max: the server may hold more)")
        }
        (Some(r), Stop::TimeLimit) => format!(
            "{head}: {r:.0} req/s (stopped by --max-time before a step failed: the server may hold more)"
        ),
    }
}

fn write_json(
    path: &std::path::Path,
    file: &mut std::fs::File,
    runs: Vec<RunResult>,
    started: SystemTime,
) -> Result<(), String> {
    let results = crate::run::output::results(runs, started);
    serde_json::to_writer_pretty(&mut *file, &results)
        .map_err(std::io::Error::from)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))
}

/// Runs the subcommand; returns the exit code. Exit 0 also when not even the first
/// step held (the answer is then `none`); 2 for usage and setup errors.
pub fn run(args: SweepArgs) -> Result<u8, String> {
    let s = settings(&args)?;
    // Open the results file first: a bad path fails now, not after the whole sweep.
    let mut json_file = match &args.json {
        Some(path) => Some((
            path.clone(),
            std::fs::File::create(path)
                .map_err(|e| format!("--json {}: cannot create: {e}", path.display()))?,
        )),
        None => None,
    };
    let started = SystemTime::now();
    let begun = Instant::now();
    let step_time = s.base.warmup + s.base.duration.unwrap_or_default();
    let mut runs: Vec<RunResult> = Vec::new();
    let mut settle = Duration::ZERO;
    let outcome = sweep(
        &s.plan,
        |rate, phase| {
            // Let the backlog of a step that did not hold drain before the next one.
            std::thread::sleep(settle);
            let step = runs.len() + 1;
            let (r, verdict) = measure_step(&s, step, rate, phase)?;
            if !args.quiet {
                eprintln!(
                    "sweep: step {step} ({}) {rate:.0} req/s: achieved {:.0} req/s, p50 {}, p99 {}, {} errors: {}",
                    phase.name(),
                    r.requests_per_s,
                    ms(r.latency_corrected.p50_us),
                    ms(r.latency_corrected.p99_us),
                    r.errors.total(),
                    match &verdict {
                        Ok(()) => "holds".to_string(),
                        Err(why) => format!("does not hold ({why})"),
                    }
                );
            }
            settle = if verdict.is_ok() {
                Duration::ZERO
            } else {
                Duration::from_micros(r.latency_corrected.p99_us.saturating_mul(2))
                    .clamp(Duration::from_millis(250), Duration::from_secs(2))
            };
            runs.push(r);
            Ok(verdict.is_ok())
        },
        || begun.elapsed() + step_time <= s.max_time,
    );
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // Keep what was measured before the failure.
            if let Some((path, file)) = json_file.as_mut() {
                if !runs.is_empty() {
                    let _ = write_json(path, file, runs, started);
                }
            }
            return Err(e);
        }
    };
    for r in &mut runs {
        r.config
            .insert("sweep_max_rate".into(), outcome.max_rate.into());
    }
    print!("{}", table(&runs));
    println!("{}", answer(&outcome, s.slo_us, s.plan.start));
    if let Some((path, file)) = json_file.as_mut() {
        write_json(path, file, runs, started)?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(start: f64, growth: Growth, max: Option<f64>, refine: u32) -> Plan {
        Plan {
            start,
            growth,
            max,
            refine,
            retries: 0,
        }
    }

    /// A server that holds every rate up to `capacity`.
    fn capacity(c: f64) -> impl FnMut(f64, Phase) -> Result<bool, String> {
        move |r, _| Ok(r <= c)
    }

    #[test]
    fn growth_parses_and_steps() {
        assert_eq!(Growth::parse("25%").unwrap(), Growth::Factor(1.25));
        assert_eq!(Growth::parse("500").unwrap(), Growth::Add(500.0));
        assert_eq!(Growth::Factor(1.25).next(1000.0), 1250.0);
        assert_eq!(Growth::Add(500.0).next(1000.0), 1500.0);
        // Always moves up, even when the step rounds to nothing.
        assert_eq!(Growth::Factor(1.001).next(10.0), 11.0);
        for bad in ["0%", "-5%", "x", "0", "-1", "%", "inf"] {
            let e = Growth::parse(bad).unwrap_err();
            assert!(e.starts_with("--step") && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn steps_up_then_bisects_to_within_the_refined_gap() {
        let p = plan(1000.0, Growth::Factor(1.25), None, 3);
        let o = sweep(&p, capacity(2000.0), || true).unwrap();
        let rates: Vec<f64> = o.steps.iter().map(|s| s.0).collect();
        // 1000 1250 1563 1954 2443 (fails), then 2199 2077 2016 (all fail).
        assert_eq!(
            rates,
            [1000.0, 1250.0, 1563.0, 1954.0, 2443.0, 2199.0, 2077.0, 2016.0]
        );
        assert_eq!(o.max_rate, Some(1954.0));
        assert_eq!(o.stop, Stop::Failed(2443.0));
        assert!(o.steps[5..].iter().all(|s| s.1 == Phase::Refine));
        // Bisection narrows the bracket: with 6 steps the answer is within 1 %.
        let p = plan(1000.0, Growth::Factor(1.25), None, 6);
        let o = sweep(&p, capacity(2100.0), || true).unwrap();
        let m = o.max_rate.unwrap();
        assert!((2100.0 * 0.99..=2100.0).contains(&m), "{m}");
    }

    #[test]
    fn a_rising_step_that_fails_once_is_measured_again() {
        let p = Plan {
            retries: 2,
            ..plan(1000.0, Growth::Add(1000.0), None, 1)
        };
        // 2000 fails on its first attempt only (a stall); 3000 is over capacity.
        let mut attempts_at_2000 = 0;
        let o = sweep(
            &p,
            |r, _| {
                if r == 2000.0 {
                    attempts_at_2000 += 1;
                    return Ok(attempts_at_2000 > 1);
                }
                Ok(r <= 2600.0)
            },
            || true,
        )
        .unwrap();
        let steps: Vec<(f64, Phase)> = o.steps.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(
            steps,
            [
                (1000.0, Phase::Grow),
                (2000.0, Phase::Grow),
                (2000.0, Phase::Retry),
                (3000.0, Phase::Grow),
                (3000.0, Phase::Retry),
                (3000.0, Phase::Retry),
                (2500.0, Phase::Refine),
            ]
        );
        assert_eq!((o.max_rate, o.stop), (Some(2500.0), Stop::Failed(3000.0)));
    }

    #[test]
    fn additive_steps_and_no_refinement() {
        let p = plan(100.0, Growth::Add(100.0), None, 0);
        let o = sweep(&p, capacity(350.0), || true).unwrap();
        assert_eq!(o.steps.len(), 4);
        assert_eq!(o.max_rate, Some(300.0));
    }

    #[test]
    fn stops_at_max_when_it_holds() {
        let p = plan(1000.0, Growth::Factor(1.5), Some(2000.0), 3);
        let o = sweep(&p, capacity(1e9), || true).unwrap();
        let rates: Vec<f64> = o.steps.iter().map(|s| s.0).collect();
        assert_eq!(rates, [1000.0, 1500.0, 2000.0]);
        assert_eq!((o.max_rate, o.stop), (Some(2000.0), Stop::Max));
    }

    #[test]
    fn first_step_failing_means_none() {
        let p = plan(1000.0, Growth::Factor(1.25), None, 3);
        let o = sweep(&p, capacity(10.0), || true).unwrap();
        assert_eq!(o.steps.len(), 1);
        assert_eq!((o.max_rate, o.stop), (None, Stop::Failed(1000.0)));
        let line = answer(&o, 10_000, 1000.0);
        assert!(
            line.starts_with("max rate under p99 <= 10ms: none"),
            "{line}"
        );
    }

    #[test]
    fn time_limit_and_measurement_errors_stop_the_search() {
        let p = plan(1000.0, Growth::Factor(1.25), None, 3);
        let mut budget = 3;
        let o = sweep(&p, capacity(1e9), || {
            budget -= 1;
            budget > 0
        })
        .unwrap();
        assert_eq!(o.steps.len(), 3);
        assert_eq!((o.max_rate, o.stop), (Some(1563.0), Stop::TimeLimit));
        let e = sweep(
            &p,
            |r, _| {
                if r > 1300.0 {
                    Err("gone".into())
                } else {
                    Ok(true)
                }
            },
            || true,
        )
        .unwrap_err();
        assert_eq!(e, "gone");
    }

    fn holding() -> Figures {
        Figures {
            offered: 1000.0,
            achieved: 999.0,
            duration_s: 5.0,
            p50_us: 500,
            p99_us: 4_000,
            requests: 4995,
            errors: 0,
            sent: 5000,
            late: 10,
            never_sent: 0,
            connections: 16,
        }
    }

    #[test]
    fn a_step_holds_only_within_slo_without_errors_and_keeping_up() {
        let slo = 5_000;
        assert_eq!(judge(&holding(), slo), Ok(()));
        type Change = fn(&mut Figures);
        let cases: [(&str, Change); 6] = [
            ("p99 6.000 ms > 5.000 ms", |f| f.p99_us = 6_000),
            ("3 requests failed", |f| f.errors = 3),
            ("achieved", |f| f.achieved = 900.0),
            ("never sent", |f| f.never_sent = 100),
            ("late", |f| f.late = 4000),
            ("no successful response", |f| f.requests = 0),
        ];
        for (want, change) in cases {
            let mut f = holding();
            change(&mut f);
            let why = judge(&f, slo).unwrap_err();
            assert!(why.contains(want), "{want}: {why}");
        }
    }

    fn args(extra: &[&str]) -> SweepArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Top {
            #[command(flatten)]
            a: SweepArgs,
        }
        let mut v = vec!["sweep", "http://127.0.0.1:1/"];
        v.extend_from_slice(extra);
        Top::try_parse_from(v).unwrap().a
    }

    #[test]
    fn bad_input_is_one_line_naming_the_flag() {
        let cases: [(&[&str], &str); 10] = [
            (&["--slo", "fast"], "--slo \"fast\""),
            (&["--slo", "0ms"], "--slo \"0ms\""),
            (&["--slo", "10ms", "--start", "0"], "--start 0"),
            (&["--slo", "10ms", "--start", "NaN"], "--start NaN"),
            (&["--slo", "10ms", "--max", "10"], "--max 10"),
            (&["--slo", "10ms", "--step", "fast"], "--step \"fast\""),
            (&["--slo", "10ms", "-d", "0s"], "--duration \"0s\""),
            (
                &["--slo", "10ms", "--arrivals", "bursty"],
                "--arrivals \"bursty\"",
            ),
            (&["--slo", "10ms", "-c", "0"], "--connections 0"),
            (
                &["--slo", "10ms", "--header", "nocolon"],
                "--header \"nocolon\"",
            ),
        ];
        for (extra, want) in cases {
            let e = settings(&args(extra)).err().expect("refused");
            assert!(e.contains(want) && !e.contains('\n'), "{extra:?}: {e}");
        }
        let e = settings(&SweepArgs {
            url: "ftp://x/".into(),
            ..args(&["--slo", "1ms"])
        })
        .err()
        .unwrap();
        assert!(e.contains("http://"), "{e}");
        let ok = settings(&args(&["--slo", "2.5ms", "--step", "300"])).unwrap();
        assert_eq!(ok.slo_us, 2500);
        assert_eq!(ok.plan.growth, Growth::Add(300.0));
        assert_eq!(slo_text(ok.slo_us), "2.5ms");
        assert_eq!(slo_text(10_000), "10ms");
        assert_eq!(slo_text(250), "250us");
        assert_eq!(slo_text(2_000_000), "2s");
    }
}
