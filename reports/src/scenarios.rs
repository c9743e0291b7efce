//! The scenario results file: `loadgen.scenarios/v1`, written by
//! `loadgen scenario --json FILE`. Dedicated serde structs; units are in the field
//! names (`_ms`, `_unix_ms`). The JSON Schema is
//! `reports/schema/loadgen.scenarios.v1.json`; a test validates real output against it.

use serde::{Deserialize, Serialize};

use crate::result::{Host, Tool};

/// The schema identifier of scenario results files.
pub const SCENARIOS_SCHEMA: &str = "loadgen.scenarios/v1";

/// A scenario results file: one entry per scenario run, in registry order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioResults {
    /// Always [`SCENARIOS_SCHEMA`].
    pub schema: String,
    /// The tool that wrote it.
    pub tool: Tool,
    /// Where it ran.
    pub host: Host,
    /// When the run started: RFC 3339, UTC.
    pub started_at: String,
    /// Milliseconds since the Unix epoch at the start.
    pub started_unix_ms: u64,
    /// Wall time of the whole run, milliseconds.
    pub duration_ms: f64,
    /// The factor every tolerance and deadline was scaled by (`--slack`).
    pub slack: f64,
    /// Workers of the engines the scenarios started (`--workers`).
    pub workers: u32,
    /// The fault injected into the engine (`--fault`), or null for the reference engine.
    pub fault: Option<String>,
    /// The engine the scenarios ran against (`reference`, `nginx (nginx/1.22.1)`, a URL).
    #[serde(default = "reference_target")]
    pub target: String,
    /// Runs of each scenario (`--repeat`).
    pub repeat: u32,
    /// Scenarios run at the same time (1 with `--serial`).
    pub parallel: u32,
    /// Scenarios by final verdict.
    pub totals: Totals,
    /// The comparison with an expectations file (`--expect`), or null.
    pub expectations: Option<ExpectationCheck>,
    /// The process exit code: 0 every MUST clause passed (or, with `--expect`, every
    /// verdict was expected), 1 a MUST clause failed (or a verdict was unexpected),
    /// 2 harness error.
    pub exit_code: u8,
    /// The scenarios, in registry order.
    pub scenarios: Vec<ScenarioResult>,
}

/// Scenarios by final verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Scenarios run.
    pub scenarios: u32,
    /// Final verdict `pass`.
    pub pass: u32,
    /// Final verdict `fail`.
    pub fail: u32,
    /// Final verdict `non-strict`.
    pub non_strict: u32,
    /// Final verdict `skipped`.
    pub skipped: u32,
    /// Final verdict `error`.
    pub error: u32,
    /// Scenarios whose repeated runs did not all agree (some passed, some did not).
    pub flaky: u32,
}

/// A verdict, as written in results and expectations files.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    /// The clause held.
    Pass,
    /// A MUST clause did not hold.
    Fail,
    /// A SHOULD clause did not hold.
    NonStrict,
    /// Not run (see the reason).
    Skipped,
    /// The harness itself failed (see the reason).
    Error,
}

impl VerdictKind {
    /// Every verdict.
    pub const ALL: [VerdictKind; 5] = [
        VerdictKind::Pass,
        VerdictKind::Fail,
        VerdictKind::NonStrict,
        VerdictKind::Skipped,
        VerdictKind::Error,
    ];

    /// The name used in results and expectations files (`non-strict`, ...).
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Pass => "pass",
            VerdictKind::Fail => "fail",
            VerdictKind::NonStrict => "non-strict",
            VerdictKind::Skipped => "skipped",
            VerdictKind::Error => "error",
        }
    }

    /// The verdict with this name.
    pub fn from_name(name: &str) -> Option<VerdictKind> {
        VerdictKind::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// One scenario: its clause, its final verdict and the evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioResult {
    /// The clause ID, e.g. `accept.pause.drain-fin`.
    pub id: String,
    /// `MUST`, `SHOULD` or `INFO`.
    pub level: String,
    /// The requirement, in one sentence.
    pub clause: String,
    /// Short names that select it.
    pub aliases: Vec<String>,
    /// The worst verdict of its runs (fail > error > skipped > non-strict > pass).
    pub verdict: VerdictKind,
    /// Why it was skipped or errored; null otherwise.
    pub reason: Option<String>,
    /// True when repeated runs did not all agree.
    pub flaky: bool,
    /// Wall time of all its runs, milliseconds.
    pub duration_ms: f64,
    /// Every run, in order (one without `--repeat`).
    pub runs: Vec<ScenarioRun>,
    /// Every acceptable outcome, in words (from the run the verdict comes from).
    pub expected: Vec<String>,
    /// What was observed: per connection, what the client saw and when.
    pub actual: Vec<String>,
    /// The mismatches found (empty on pass).
    pub failures: Vec<String>,
}

/// One run of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioRun {
    /// Its verdict.
    pub verdict: VerdictKind,
    /// Why it was skipped or errored; null otherwise.
    pub reason: Option<String>,
    /// Its wall time, milliseconds.
    pub duration_ms: f64,
}

/// The comparison of the verdicts with an expectations file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExpectationCheck {
    /// The expectations file, as given.
    pub file: String,
    /// Every scenario whose verdict was not among the expected ones.
    pub differences: Vec<ExpectationDifference>,
}

/// A scenario whose verdict was not among those its expectation allows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExpectationDifference {
    /// The clause ID.
    pub id: String,
    /// The allowed verdicts (`pass` for a scenario the file does not list).
    pub allowed: Vec<VerdictKind>,
    /// The verdicts seen that are not allowed, one per offending run.
    pub seen: Vec<VerdictKind>,
}

fn reference_target() -> String {
    "reference".into()
}
