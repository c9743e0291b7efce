//! `loadgen sweep`'s driver: measures each step of the [`search`] with the load
//! engine, records every step as a typed [`SweepRecord`] in its run, and lets the
//! backlog of a step that did not hold drain before the next.

pub mod search;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reports::{RunRecord, RunResult, SweepRecord};

use crate::load::{self, RunConfig};
use search::{judge, sweep, Figures, NotHeld, Outcome, Phase, Plan};

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The search.
    pub plan: Plan,
    /// The p99 to hold, µs.
    pub slo_us: u64,
    /// Every step's run, but for its rate and seed.
    pub base: RunConfig,
    /// No step starts after the sweep has run this long.
    pub max_time: Duration,
}

/// What the sweep measured: every step's run, in order, and the answer (or the error
/// that ended it; the runs before it are kept).
#[derive(Debug)]
pub struct SweepRun {
    /// Every step's run.
    pub runs: Vec<RunResult>,
    /// The search's outcome.
    pub outcome: Result<Outcome, String>,
    /// Ctrl-C or SIGTERM ended it: the last step is cut short (marked interrupted in
    /// its run) and there is no answer.
    pub interrupted: bool,
}

/// One measured step, tagged for the results file.
fn measure_step(
    s: &Settings,
    step: usize,
    rate: f64,
    phase: Phase,
    stop: &Arc<AtomicBool>,
) -> Result<(RunResult, Result<(), NotHeld>), String> {
    let mut cfg = s.base.clone();
    cfg.rate = Some(rate);
    // A different (reproducible) Poisson sequence per step.
    cfg.seed = step as u64;
    cfg.validate()?;
    let mut r = load::run_until(&cfg, stop)
        .map_err(|e| format!("sweep step {step} ({rate:.0} req/s): {e}"))?;
    if stop.load(SeqCst) {
        r.config.run = Some(RunRecord {
            interrupted: true,
            checks: Vec::new(),
        });
    }
    let verdict = judge(&Figures::of(&r), s.slo_us);
    r.workload = "sweep".into();
    r.config.sweep = Some(SweepRecord {
        sweep_step: step as u64,
        sweep_phase: phase,
        sweep_rate: rate,
        sweep_slo_us: s.slo_us,
        sweep_held: verdict.is_ok(),
        sweep_reason: verdict.as_ref().err().map(NotHeld::to_string),
        sweep_max_rate: None,
    });
    Ok((r, verdict))
}

/// Runs the sweep; `on_step(step, phase, run, why it did not hold)` sees each step as
/// it is measured (the console's progress line).
/// When `stop` is set the step under way ends early and the sweep ends after it.
pub fn run(
    s: &Settings,
    mut on_step: impl FnMut(usize, Phase, &RunResult, Option<&NotHeld>),
    stop: &Arc<AtomicBool>,
) -> SweepRun {
    let begun = Instant::now();
    let step_time = s.base.warmup + s.base.duration.unwrap_or_default();
    let mut runs: Vec<RunResult> = Vec::new();
    let mut settle = Duration::ZERO;
    let outcome = sweep(
        &s.plan,
        |rate, phase| {
            // Let the backlog of a step that did not hold drain before the next one.
            std::thread::sleep(settle);
            if stop.load(SeqCst) {
                return Err("interrupted".into());
            }
            let step = runs.len() + 1;
            let (r, verdict) = measure_step(s, step, rate, phase, stop)?;
            on_step(step, phase, &r, verdict.as_ref().err());
            if stop.load(SeqCst) {
                runs.push(r);
                return Err("interrupted".into());
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
    if let Ok(o) = &outcome {
        for r in &mut runs {
            if let Some(rec) = r.config.sweep.as_mut() {
                rec.sweep_max_rate = Some(o.max_rate);
            }
        }
    }
    SweepRun {
        runs,
        outcome,
        interrupted: stop.load(SeqCst),
    }
}
