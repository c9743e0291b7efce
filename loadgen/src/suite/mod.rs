//! The conformance runner behind `loadgen scenario`: selects scenarios, runs them on a
//! bounded pool (results in registry order), checks the verdicts against an
//! expectations file and maps them to an exit code. Printing and the JSON and JUnit
//! documents are in `export`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reports::scenarios::{ExpectationDifference, Expectations, Totals, VerdictKind};
use scenarios::targets::{Nginx, Reference, RemoteTarget, Target, UrlTarget};
use scenarios::{Ctx, Level, Outcome, Scenario, Verdict};

use crate::{EXIT_CONFORMANCE, EXIT_OK, EXIT_USAGE};

pub mod pool;

/// Scenarios run at the same time unless `--serial` or `--parallel N` says otherwise.
pub const DEFAULT_PARALLEL: usize = 2;

/// `*` matches any run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The scenarios `selectors` name (IDs, aliases, globs), in registry order.
pub fn select(all: &[Scenario], selectors: &[String]) -> Result<Vec<Scenario>, String> {
    let mut chosen = vec![false; all.len()];
    for sel in selectors {
        let mut hit = false;
        for (i, s) in all.iter().enumerate() {
            if s.clause.id == sel
                || s.aliases.contains(&sel.as_str())
                || glob_match(sel, s.clause.id)
            {
                chosen[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Err(format!(
                "no scenario matches {sel:?}: run `loadgen scenario list` for IDs and aliases"
            ));
        }
    }
    Ok(all
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(s, _)| *s)
        .collect())
}

/// The engine under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// `--target NAME`: `reference` or `nginx`.
    Named(String),
    /// `--target-url URL`.
    Url(String),
    /// `--target-cmd COMMAND`.
    Command(String),
}

/// How the scenarios run, as given (validated by [`context`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// Tolerance and deadline factor.
    pub slack: f64,
    /// Workers of the engines scenarios start.
    pub workers: usize,
    /// Runs of each scenario.
    pub repeat: u32,
    /// A fault to inject into the reference engine.
    pub fault: Option<String>,
    /// The engine under test.
    pub target: TargetSpec,
}

fn target(spec: &TargetSpec) -> Result<Arc<dyn Target>, String> {
    match spec {
        TargetSpec::Url(url) => Ok(Arc::new(UrlTarget::parse(url)?)),
        TargetSpec::Command(cmd) => Ok(Arc::new(RemoteTarget::new(cmd)?)),
        TargetSpec::Named(name) => match name.as_str() {
            "reference" => Ok(Arc::new(Reference)),
            "nginx" => Ok(Arc::new(Nginx::find(None)?)),
            other => Err(format!(
                "--target {other:?} is not a known target: use reference or nginx (or --target-url URL)"
            )),
        },
    }
}

/// The scenarios' context for `o`, or a one-line error naming the flag.
pub fn context(o: &Options) -> Result<Ctx, String> {
    if !(o.slack.is_finite() && o.slack > 0.0 && o.slack <= 100.0) {
        return Err(format!(
            "--slack {} is out of range: use a factor in (0, 100]",
            o.slack
        ));
    }
    if o.workers == 0 || o.workers > 64 {
        return Err(format!(
            "--workers {} is out of range: use 1 to 64",
            o.workers
        ));
    }
    if o.repeat == 0 {
        return Err("--repeat 0 runs nothing: use 1 or more".into());
    }
    #[allow(unused_mut)]
    let mut ctx = Ctx::new(o.slack, o.workers).with_target(target(&o.target)?);
    // A command target gets the fault in its configuration (it must be a faults build).
    let faultable = match &o.target {
        TargetSpec::Named(n) => n == "reference",
        TargetSpec::Command(_) => true,
        TargetSpec::Url(_) => false,
    };
    if o.fault.is_some() && !faultable {
        return Err(format!(
            "--fault applies to the reference engine only, not to target {}: drop --fault or --target",
            ctx.target.name()
        ));
    }
    if let Some(name) = &o.fault {
        #[cfg(feature = "faults")]
        {
            use engine::faults::Fault;
            let f = Fault::from_name(name)
                .ok_or_else(|| format!("unknown fault {name:?}: use one of {}", Fault::names()))?;
            ctx.fault = Some(f);
        }
        #[cfg(not(feature = "faults"))]
        return Err(format!(
            "--fault {name} needs the faults build: cargo run -p loadgen --features faults -- scenario ..."
        ));
    }
    Ok(ctx)
}

/// Reads `--expect FILE`: every ID must name a scenario of `all`.
pub fn load_expectations(path: &Path, all: &[Scenario]) -> Result<Expectations, String> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--expect {file}: cannot read: {e}"))?;
    Expectations::parse(&file, &text, |id| all.iter().any(|s| s.clause.id == id))
}

/// What to run.
#[derive(Debug)]
pub struct Plan {
    /// The scenarios, in registry order.
    pub chosen: Vec<Scenario>,
    /// Their context.
    pub ctx: Ctx,
    /// Runs of each.
    pub repeat: u32,
    /// Scenarios at the same time.
    pub parallel: usize,
    /// The expectations to check the verdicts against.
    pub expectations: Option<Expectations>,
}

/// What a run of the suite found.
#[derive(Debug)]
pub struct SuiteRun {
    /// When it started.
    pub started_at: SystemTime,
    /// Its wall time.
    pub wall: Duration,
    /// Every scenario's runs, in registry order.
    pub records: Vec<Record>,
    /// Scenarios by final verdict.
    pub totals: Totals,
    /// Verdicts the expectations do not allow.
    pub differences: Vec<ExpectationDifference>,
    /// The exit code.
    pub exit_code: u8,
}

/// Runs the plan; `done` sees each record as soon as it and every one before it are
/// done (the console streams them).
pub fn run(plan: &Plan, mut done: impl FnMut(&Record)) -> SuiteRun {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut records: Vec<Record> = Vec::with_capacity(plan.chosen.len());
    pool::run_in_order(
        &plan.chosen,
        plan.parallel,
        |s| Record::run(s, &plan.ctx, plan.repeat),
        |_, r| {
            done(&r);
            records.push(r);
        },
    );
    let wall = started.elapsed();
    let totals = totals(&records);
    let differences: Vec<ExpectationDifference> = plan
        .expectations
        .as_ref()
        .map(|e| {
            records
                .iter()
                .filter_map(|r| e.check(r.scenario.clause.id, &r.verdicts()))
                .collect()
        })
        .unwrap_or_default();
    let exit_code = if plan.expectations.is_some() {
        exit_code_expecting(&differences)
    } else {
        exit_code(&records)
    };
    SuiteRun {
        started_at,
        wall,
        records,
        totals,
        differences,
        exit_code,
    }
}

/// Requirement / Expected / Actual / Mismatch lines of a failure (console and JUnit).
pub fn failure_text(s: &Scenario, o: &Outcome) -> String {
    let mut out = format!("Requirement: {}\n", s.clause.text);
    for e in &o.expected {
        out.push_str(&format!("Expected:    {e}\n"));
    }
    for a in &o.actual {
        out.push_str(&format!("Actual:      {a}\n"));
    }
    for f in &o.failures {
        out.push_str(&format!("Mismatch:    {f}\n"));
    }
    out
}

/// A verdict without its reason.
pub fn kind(v: &Verdict) -> VerdictKind {
    match v {
        Verdict::Pass => VerdictKind::Pass,
        Verdict::Fail => VerdictKind::Fail,
        Verdict::NonStrict => VerdictKind::NonStrict,
        Verdict::Skipped(_) => VerdictKind::Skipped,
        Verdict::Error(_) => VerdictKind::Error,
    }
}

/// The reason of a skip or error.
pub fn reason(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Skipped(r) | Verdict::Error(r) => Some(r),
        _ => None,
    }
}

/// Every run of one scenario.
#[derive(Debug, Clone)]
pub struct Record {
    /// The scenario.
    pub scenario: Scenario,
    /// Each run's outcome and wall time, in order.
    pub runs: Vec<(Outcome, Duration)>,
}

impl Record {
    /// Runs `s` `repeat` times.
    pub fn run(s: &Scenario, ctx: &Ctx, repeat: u32) -> Record {
        let runs = (0..repeat)
            .map(|_| {
                let t0 = Instant::now();
                let o = s.run(ctx);
                (o, t0.elapsed())
            })
            .collect();
        Record { scenario: *s, runs }
    }

    /// The run the verdict comes from: the last one with the worst verdict.
    pub fn worst(&self) -> &Outcome {
        self.runs
            .iter()
            .map(|(o, _)| o)
            // `max_by_key` keeps the last of equals.
            .max_by_key(|o| severity(&o.verdict))
            .expect("a record has at least one run")
    }

    /// Each run's verdict.
    pub fn verdicts(&self) -> Vec<VerdictKind> {
        self.runs.iter().map(|(o, _)| kind(&o.verdict)).collect()
    }

    /// Runs that passed.
    pub fn passes(&self) -> usize {
        self.runs
            .iter()
            .filter(|(o, _)| o.verdict == Verdict::Pass)
            .count()
    }

    /// Some runs passed and some did not.
    pub fn flaky(&self) -> bool {
        let p = self.passes();
        p > 0 && p < self.runs.len()
    }

    /// Wall time of all runs.
    pub fn duration(&self) -> Duration {
        self.runs.iter().map(|(_, d)| *d).sum()
    }
}

fn totals(records: &[Record]) -> Totals {
    let mut t = Totals {
        scenarios: records.len() as u32,
        ..Totals::default()
    };
    for r in records {
        match kind(&r.worst().verdict) {
            VerdictKind::Pass => t.pass += 1,
            VerdictKind::Fail => t.fail += 1,
            VerdictKind::NonStrict => t.non_strict += 1,
            VerdictKind::Skipped => t.skipped += 1,
            VerdictKind::Error => t.error += 1,
        }
        t.flaky += u32::from(r.flaky());
    }
    t
}

/// 2 on a harness error, 1 when a MUST clause failed, else 0.
fn exit_code(records: &[Record]) -> u8 {
    let worst = |r: &Record| kind(&r.worst().verdict);
    if records.iter().any(|r| worst(r) == VerdictKind::Error) {
        EXIT_USAGE
    } else if records
        .iter()
        .any(|r| worst(r) == VerdictKind::Fail && r.scenario.clause.level == Level::Must)
    {
        EXIT_CONFORMANCE
    } else {
        EXIT_OK
    }
}

/// With an expectations file: 2 on an unexpected harness error, 1 on any other
/// difference (an unexpected pass included), else 0.
fn exit_code_expecting(differences: &[ExpectationDifference]) -> u8 {
    if differences
        .iter()
        .any(|d| d.seen.contains(&VerdictKind::Error))
    {
        EXIT_USAGE
    } else if !differences.is_empty() {
        EXIT_CONFORMANCE
    } else {
        EXIT_OK
    }
}

fn severity(v: &Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::NonStrict => 1,
        Verdict::Skipped(_) => 2,
        Verdict::Error(_) => 3,
        Verdict::Fail => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenarios::registry;

    #[test]
    fn the_committed_expectations_file_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations.tsv");
        load_expectations(Path::new(path), &registry()).unwrap();
    }

    #[test]
    fn globs() {
        assert!(glob_match("accept.*", "accept.pause.sync"));
        assert!(glob_match("*.sync", "accept.pause.sync"));
        assert!(glob_match("a*p*c", "accept.pause.sync"));
        assert!(!glob_match("worker.*", "accept.pause.sync"));
        assert!(glob_match("engine.type", "engine.type"));
    }

    #[test]
    fn aliases_and_globs_select_in_registry_order() {
        let all = registry();
        let pa = select(&all, &["pause-accept".to_string()]).unwrap();
        assert!(!pa.is_empty());
        assert!(pa.iter().all(|s| s.clause.id.starts_with("accept.")));
        let q = select(&all, &["queue-full".to_string()]).unwrap();
        let ids: Vec<_> = q.iter().map(|s| s.clause.id).collect();
        assert_eq!(ids, ["driver.write.queue-full", "driver.write.no-loss"]);
        assert!(select(&all, &["nope".to_string()])
            .unwrap_err()
            .contains("loadgen scenario list"));
    }
}
