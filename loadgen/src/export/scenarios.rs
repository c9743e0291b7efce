//! The `--json` file: scenario results as `loadgen.scenarios/v1`
//! (`reports::scenarios`, schema `reports/schema/loadgen.scenarios.v1.json`).

use std::time::{Duration, SystemTime};

use reports::scenarios::{
    ExpectationCheck, ScenarioResult, ScenarioResults, ScenarioRun, Totals, SCENARIOS_SCHEMA,
};

use super::results::{host, rfc3339, tool, unix_ms};
use crate::suite::{kind, reason, Options, Plan, Record, SuiteRun};

/// How the scenarios were run, and the outcome of the whole run.
#[derive(Debug, Clone)]
pub struct Meta {
    /// When the run started.
    pub started_at: SystemTime,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// `--slack`.
    pub slack: f64,
    /// `--workers`.
    pub workers: usize,
    /// `--fault`.
    pub fault: Option<String>,
    /// The target's name.
    pub target: String,
    /// `--repeat`.
    pub repeat: u32,
    /// Scenarios run at the same time.
    pub parallel: usize,
    /// The comparison with `--expect`.
    pub expectations: Option<ExpectationCheck>,
    /// The exit code.
    pub exit_code: u8,
}

impl Meta {
    /// The meta of a finished run of `plan`, run with `options`.
    pub fn new(options: &Options, plan: &Plan, done: &SuiteRun) -> Meta {
        Meta {
            started_at: done.started_at,
            wall: done.wall,
            slack: options.slack,
            workers: options.workers,
            fault: options.fault.clone(),
            target: plan.ctx.target.name(),
            repeat: plan.repeat,
            parallel: plan.parallel,
            expectations: plan.expectations.as_ref().map(|e| ExpectationCheck {
                file: e.file.clone(),
                differences: done.differences.clone(),
            }),
            exit_code: done.exit_code,
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn scenario(r: &Record) -> ScenarioResult {
    let s = &r.scenario;
    let worst = r.worst();
    ScenarioResult {
        id: s.clause.id.to_string(),
        level: s.clause.level.to_string(),
        clause: s.clause.text.to_string(),
        aliases: s.aliases.iter().map(|a| a.to_string()).collect(),
        verdict: kind(&worst.verdict),
        reason: reason(&worst.verdict).map(String::from),
        flaky: r.flaky(),
        duration_ms: ms(r.duration()),
        runs: r
            .runs
            .iter()
            .map(|(o, d)| ScenarioRun {
                verdict: kind(&o.verdict),
                reason: reason(&o.verdict).map(String::from),
                duration_ms: ms(*d),
            })
            .collect(),
        expected: worst.expected.clone(),
        actual: worst.actual.clone(),
        failures: worst.failures.clone(),
    }
}

/// The results file.
pub fn document(records: &[Record], totals: Totals, meta: Meta) -> ScenarioResults {
    let unix_ms = unix_ms(meta.started_at);
    ScenarioResults {
        schema: SCENARIOS_SCHEMA.into(),
        tool: tool(),
        host: host(),
        started_at: rfc3339(unix_ms),
        started_unix_ms: unix_ms,
        duration_ms: ms(meta.wall),
        slack: meta.slack,
        workers: meta.workers as u32,
        fault: meta.fault,
        target: meta.target,
        repeat: meta.repeat,
        parallel: meta.parallel as u32,
        totals,
        expectations: meta.expectations,
        exit_code: meta.exit_code,
        scenarios: records.iter().map(scenario).collect(),
    }
}
