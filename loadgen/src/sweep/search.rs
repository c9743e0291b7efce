//! The rate search of `loadgen sweep`: steps the open-model rate up until the
//! corrected p99 crosses the SLO (or requests fail, or the server cannot keep up), then
//! bisects between the last rate that held and the first that did not.
//!
//! The search ([`sweep`]) and the verdict of one step ([`judge`]) are plain functions
//! of measured figures, so they are tested without a server.

use reports::RunResult;
pub use reports::SweepPhase as Phase;

/// A step holds only if at least this share of the offered rate completed.
const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// ... and at most this share of the due requests was never sent.
const MAX_NEVER_SENT_SHARE: f64 = 0.01;
/// ... and at most this share of the sends was over 1 ms behind its due time.
const MAX_LATE_SHARE: f64 = 0.5;
/// Bisection stops early once the bracket is narrower than this share of its low end.
const MIN_BRACKET_SHARE: f64 = 0.005;

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
                .settings
                .get("connections")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        }
    }
}

/// Why a step did not hold; the message is the one the table and the results show.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotHeld {
    /// Not one request succeeded.
    #[error("no successful response")]
    NoResponse,
    /// Some requests failed.
    #[error("{0} requests failed")]
    Errors(u64),
    /// The corrected p99 is over the SLO.
    #[error("p99 {} > {}", ms(*p99_us), ms(*slo_us))]
    OverSlo {
        /// Measured p99, µs.
        p99_us: u64,
        /// The SLO, µs.
        slo_us: u64,
    },
    /// Too little of the offered rate completed.
    #[error("achieved {achieved:.0} req/s < {:.0} % of the offered rate", MIN_ACHIEVED_SHARE * 100.0)]
    BehindRate {
        /// Completed, req/s.
        achieved: f64,
    },
    /// Too many due requests were never sent.
    #[error(
        "{0} due requests never sent (every connection busy: the server is behind, or add -c)"
    )]
    NeverSent(u64),
    /// The client fell behind its schedule.
    #[error("{late} of {sent} sends over 1 ms late (the client fell behind: add -t or -c)")]
    Late {
        /// Sends over 1 ms late.
        late: u64,
        /// Sends.
        sent: u64,
    },
}

/// A latency for tables and reasons: `0.612 ms`, `25.1 ms`.
pub fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.3} ms", us as f64 / 1000.0)
    }
}

/// Whether a step held the SLO: `Ok` or the first reason it did not. It holds when
/// the corrected p99 is within the SLO, no request failed, at least 95 % of the offered
/// rate completed (a server that falls behind does not hold just because the slow
/// requests are still in flight at the end) and the client kept its schedule (at most
/// 1 % of the due requests never sent, beyond the one per connection that the end of
/// the step can catch waiting for its turn; at most half the sends over 1 ms late).
pub fn judge(f: &Figures, slo_us: u64) -> Result<(), NotHeld> {
    if f.requests == 0 {
        return Err(NotHeld::NoResponse);
    }
    if f.errors > 0 {
        return Err(NotHeld::Errors(f.errors));
    }
    if f.p99_us > slo_us {
        return Err(NotHeld::OverSlo {
            p99_us: f.p99_us,
            slo_us,
        });
    }
    if f.achieved < f.offered * MIN_ACHIEVED_SHARE {
        return Err(NotHeld::BehindRate {
            achieved: f.achieved,
        });
    }
    let due = (f.offered * f.duration_s).max(1.0);
    if f.never_sent as f64 > due * MAX_NEVER_SENT_SHARE + f.connections as f64 {
        return Err(NotHeld::NeverSent(f.never_sent));
    }
    if f.late as f64 > f.sent.max(1) as f64 * MAX_LATE_SHARE {
        return Err(NotHeld::Late {
            late: f.late,
            sent: f.sent,
        });
    }
    Ok(())
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
            let why = judge(&f, slo).unwrap_err().to_string();
            assert!(why.contains(want), "{want}: {why}");
        }
    }
}
