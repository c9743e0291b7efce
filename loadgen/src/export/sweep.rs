//! `loadgen sweep` on the console: the steps table and the answer line.

use reports::RunResult;

use super::tables::{Align, Column, Table};
use crate::sweep::search::{ms, NotHeld, Outcome, Phase, Stop};

/// The SLO as the answer line shows it: `10ms`, `500us`, `1.5s`.
pub fn slo_text(us: u64) -> String {
    if us >= 1_000_000 && us.is_multiple_of(100_000) {
        format!("{}s", us as f64 / 1e6)
    } else if us >= 1000 && us.is_multiple_of(100) {
        format!("{}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

/// The progress line of one step (stderr).
pub fn progress(step: usize, phase: Phase, r: &RunResult, why: Option<&NotHeld>) -> String {
    let rate = r.config.sweep.as_ref().map_or(0.0, |s| s.sweep_rate);
    format!(
        "sweep: step {step} ({}) {rate:.0} req/s: achieved {:.0} req/s, p50 {}, p99 {}, {} errors: {}",
        phase.name(),
        r.requests_per_s,
        ms(r.latency_corrected.p50_us),
        ms(r.latency_corrected.p99_us),
        r.errors.total(),
        match why {
            _ if r.config.run.as_ref().is_some_and(|x| x.interrupted) => {
                "cut short (interrupted)".to_string()
            }
            None => "holds".to_string(),
            Some(why) => format!("does not hold ({why})"),
        }
    )
}

/// One line per step: offered and achieved rate, p50, p99, errors, whether it held.
pub fn table(runs: &[RunResult]) -> String {
    let right = |h, w| Column::new(h, Align::Right, w);
    let mut t = Table::new(vec![
        right("step", 4),
        Column::new("phase", Align::Left, 6),
        right("offered/s", 10),
        right("achieved/s", 10),
        right("p50", 11),
        right("p99", 11),
        right("errors", 7),
        Column::new("holds", Align::Left, 0).after("  "),
    ]);
    for r in runs {
        let rec = r.config.sweep.clone().unwrap_or_default();
        t.row(vec![
            rec.sweep_step.to_string(),
            rec.sweep_phase.name().to_string(),
            format!("{:.0}", rec.sweep_rate),
            format!("{:.0}", r.requests_per_s),
            ms(r.latency_corrected.p50_us),
            ms(r.latency_corrected.p99_us),
            r.errors.total().to_string(),
            if r.config.run.as_ref().is_some_and(|x| x.interrupted) {
                "cut short (interrupted)".to_string()
            } else if rec.sweep_held {
                "yes".to_string()
            } else {
                format!("no: {}", rec.sweep_reason.as_deref().unwrap_or(""))
            },
        ]);
    }
    t.render()
}

/// `max rate under p99 <= 10ms: N req/s`, with why the search stopped.
pub fn answer(o: &Outcome, slo_us: u64, start: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_failing_means_none() {
        let o = Outcome {
            max_rate: None,
            stop: Stop::Failed(1000.0),
            steps: Vec::new(),
        };
        let line = answer(&o, 10_000, 1000.0);
        assert!(
            line.starts_with("max rate under p99 <= 10ms: none"),
            "{line}"
        );
    }

    #[test]
    fn slo_texts() {
        assert_eq!(slo_text(2_500), "2.5ms");
        assert_eq!(slo_text(10_000), "10ms");
        assert_eq!(slo_text(250), "250us");
        assert_eq!(slo_text(2_000_000), "2s");
    }
}
