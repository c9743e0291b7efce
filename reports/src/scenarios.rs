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

/// An expectations file (`ci/expectations.tsv`): every scenario's expected verdicts.
/// One line per known deviation: `id<TAB>verdicts<TAB>reason`, verdicts separated by
/// `|`; `#` starts a comment. A scenario not listed must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The file, as given.
    pub file: String,
    entries: Vec<(String, Vec<VerdictKind>)>,
}

impl Expectations {
    /// Parses the text of the expectations file named `file`: every ID must be one
    /// that `known` accepts, every verdict must be known, every deviation needs its
    /// reason. Errors are one line starting with `FILE:LINE:`.
    pub fn parse(
        file: &str,
        text: &str,
        known: impl Fn(&str) -> bool,
    ) -> Result<Expectations, String> {
        let mut entries: Vec<(String, Vec<VerdictKind>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let [id, verdicts, reason] = cols[..] else {
                return Err(format!(
                    "{at}: want 3 tab-separated columns (id, verdicts, reason), found {}",
                    cols.len()
                ));
            };
            if !known(id) {
                return Err(format!(
                    "{at}: unknown scenario {id:?}: `loadgen scenario list` shows the IDs"
                ));
            }
            if entries.iter().any(|(e, _)| e == id) {
                return Err(format!("{at}: {id} is listed twice: keep one line"));
            }
            let mut allowed = Vec::new();
            for v in verdicts.split('|') {
                let kind = VerdictKind::from_name(v.trim()).ok_or_else(|| {
                    let names: Vec<&str> = VerdictKind::ALL.iter().map(|k| k.name()).collect();
                    format!("{at}: unknown verdict {v:?}: use {}", names.join(", "))
                })?;
                allowed.push(kind);
            }
            if reason.trim().is_empty() {
                return Err(format!("{at}: {id}: a deviation needs its reason"));
            }
            entries.push((id.to_string(), allowed));
        }
        Ok(Expectations {
            file: file.to_string(),
            entries,
        })
    }

    /// The verdicts allowed for `id` (`pass` when the file does not list it).
    pub fn allowed(&self, id: &str) -> Vec<VerdictKind> {
        self.entries
            .iter()
            .find(|(e, _)| e == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| vec![VerdictKind::Pass])
    }

    /// The difference for scenario `id` whose runs ended in `verdicts`, if any run's
    /// verdict is not allowed.
    pub fn check(&self, id: &str, verdicts: &[VerdictKind]) -> Option<ExpectationDifference> {
        let allowed = self.allowed(id);
        let seen: Vec<VerdictKind> = verdicts
            .iter()
            .copied()
            .filter(|v| !allowed.contains(v))
            .collect();
        (!seen.is_empty()).then(|| ExpectationDifference {
            id: id.to_string(),
            allowed,
            seen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 2] = ["engine.type", "accept.pause.handover-race"];

    fn load(text: &str) -> Result<Expectations, String> {
        Expectations::parse("exp.tsv", text, |id| IDS.contains(&id))
    }

    #[test]
    fn unlisted_must_pass_and_listed_sets_allow_any_member() {
        let e =
            load("# comment\naccept.pause.handover-race\tpass|non-strict\tkernel race\n").unwrap();
        use VerdictKind::*;
        assert!(e.check("engine.type", &[Pass]).is_none());
        let d = e.check("engine.type", &[Pass, Fail]).unwrap();
        assert_eq!(d.seen, [Fail]);
        assert_eq!(d.allowed, [Pass]);
        assert!(e
            .check("accept.pause.handover-race", &[Pass, NonStrict])
            .is_none());
        assert!(e.check("accept.pause.handover-race", &[Fail]).is_some());
    }

    #[test]
    fn an_unexpected_pass_is_a_difference() {
        let e = load("engine.type\tnon-strict\tknown deviation\n").unwrap();
        let d = e.check("engine.type", &[VerdictKind::Pass]).unwrap();
        assert_eq!(d.seen, [VerdictKind::Pass]);
        assert_eq!(d.allowed, [VerdictKind::NonStrict]);
    }

    #[test]
    fn bad_lines_are_one_line_errors_with_the_place() {
        for (text, want) in [
            ("nope.nope\tpass\twhy\n", "exp.tsv:1: unknown scenario"),
            ("engine.type\tpasss\twhy\n", "exp.tsv:1: unknown verdict"),
            ("# c\nengine.type\tpass\n", "exp.tsv:2: want 3"),
            ("engine.type\tfail\t \n", "needs its reason"),
            (
                "engine.type\tfail\ta\nengine.type\tfail\tb\n",
                "listed twice",
            ),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
