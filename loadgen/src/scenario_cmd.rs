//! `loadgen scenario`: select scenarios, run them, print verdicts with Requirement /
//! Expected / Actual for failures, and map the results to an exit code.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reports::scenarios::{ExpectationCheck, ExpectationDifference, Totals, VerdictKind};
use scenarios::targets::{Nginx, Reference, RemoteTarget, Target, UrlTarget};
use scenarios::{registry, Ctx, Level, Outcome, Scenario, Verdict};

use crate::cli::ScenarioArgs;
use crate::{EXIT_CONFORMANCE, EXIT_OK, EXIT_USAGE};

mod expectations;
mod junit;
mod pool;
mod results_json;

use expectations::Expectations;

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

/// What a scenario needs from its target, e.g. `config, accept-control`.
fn needs(s: &Scenario) -> String {
    let names: Vec<&str> = s.needs.iter().map(|c| c.name()).collect();
    names.join(", ")
}

fn list(all: &[Scenario]) {
    println!(
        "{:<30} {:<6} {:<28} clause (needs)",
        "ID", "LEVEL", "ALIASES"
    );
    for s in all {
        println!(
            "{:<30} {:<6} {:<28} {} ({})",
            s.clause.id,
            s.clause.level.to_string(),
            s.aliases.join(","),
            s.clause.text,
            needs(s)
        );
    }
}

/// The scenarios table in Markdown (ID, level, aliases, needs, clause): the README's
/// table.
pub fn markdown_table(all: &[Scenario]) -> String {
    let cell = |t: &str| t.replace('|', "\\|");
    let mut out =
        String::from("| ID | Level | Aliases | Needs | Clause |\n|---|---|---|---|---|\n");
    for s in all {
        let aliases: Vec<String> = s.aliases.iter().map(|a| format!("`{a}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.clause.id,
            s.clause.level,
            aliases.join(", "),
            needs(s),
            cell(s.clause.text)
        ));
    }
    out
}

/// The target `--target`, `--target-url` or `--target-cmd` names.
fn target(args: &ScenarioArgs) -> Result<Arc<dyn Target>, String> {
    if let Some(url) = &args.target_url {
        return Ok(Arc::new(UrlTarget::parse(url)?));
    }
    if let Some(cmd) = &args.target_cmd {
        return Ok(Arc::new(RemoteTarget::new(cmd)?));
    }
    match args.target.as_str() {
        "reference" => Ok(Arc::new(Reference)),
        "nginx" => Ok(Arc::new(Nginx::find(None)?)),
        other => Err(format!(
            "--target {other:?} is not a known target: use reference or nginx (or --target-url URL)"
        )),
    }
}

fn context(args: &ScenarioArgs) -> Result<Ctx, String> {
    if !(args.slack.is_finite() && args.slack > 0.0 && args.slack <= 100.0) {
        return Err(format!(
            "--slack {} is out of range: use a factor in (0, 100]",
            args.slack
        ));
    }
    if args.workers == 0 || args.workers > 64 {
        return Err(format!(
            "--workers {} is out of range: use 1 to 64",
            args.workers
        ));
    }
    if args.repeat == 0 {
        return Err("--repeat 0 runs nothing: use 1 or more".into());
    }
    #[allow(unused_mut)]
    let mut ctx = Ctx::new(args.slack, args.workers).with_target(target(args)?);
    // A command target gets the fault in its configuration (it must be a faults build).
    let faultable = args.target_url.is_none() && args.target == "reference";
    if args.fault.is_some() && !faultable {
        return Err(format!(
            "--fault applies to the reference engine only, not to target {}: drop --fault or --target",
            ctx.target.name()
        ));
    }
    if let Some(name) = &args.fault {
        #[cfg(feature = "faults")]
        {
            let f = engine::faults::Fault::from_name(name).ok_or_else(|| {
                let names: Vec<String> = engine::faults::Fault::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect();
                format!("unknown fault {name:?}: use one of {}", names.join(", "))
            })?;
            ctx.fault = Some(f);
        }
        #[cfg(not(feature = "faults"))]
        return Err(format!(
            "--fault {name} needs the faults build: cargo run -p loadgen --features faults -- scenario ..."
        ));
    }
    Ok(ctx)
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

fn print_record(r: &Record) {
    let s = &r.scenario;
    let worst = r.worst();
    let label = match &worst.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::NonStrict => "NON-STRICT",
        Verdict::Skipped(_) => "SKIP",
        Verdict::Error(_) => "ERROR",
    };
    let repeat_note = if r.runs.len() > 1 {
        format!(
            "  {}/{} passed{}",
            r.passes(),
            r.runs.len(),
            if r.flaky() { " (FLAKY)" } else { "" }
        )
    } else {
        String::new()
    };
    println!(
        "{label:<10} {:<30} {:<6} {:>7.0} ms{repeat_note}",
        s.clause.id,
        s.clause.level.to_string(),
        r.duration().as_secs_f64() * 1000.0 / r.runs.len() as f64
    );
    if let Some(why) = reason(&worst.verdict) {
        println!("    Reason:      {why}");
    }
    if matches!(worst.verdict, Verdict::Fail | Verdict::NonStrict) {
        for line in failure_text(s, worst).lines() {
            println!("    {line}");
        }
    }
}

/// Creates an output file up front, so a bad path fails before minutes of scenarios.
fn create(flag: &str, path: &Option<PathBuf>) -> Result<Option<(PathBuf, File)>, String> {
    let Some(path) = path else { return Ok(None) };
    let f = File::create(path).map_err(|e| {
        format!(
            "{flag} {}: cannot create the file: {e}: give a writable path",
            path.display()
        )
    })?;
    Ok(Some((path.clone(), f)))
}

fn write(flag: &str, out: Option<(PathBuf, File)>, text: &str) -> Result<(), String> {
    let Some((path, mut f)) = out else {
        return Ok(());
    };
    f.write_all(text.as_bytes())
        .and_then(|()| f.flush())
        .map_err(|e| format!("{flag} {}: cannot write: {e}", path.display()))
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: ScenarioArgs) -> Result<u8, String> {
    // A panic inside a check is caught and reported as an `error` verdict with its
    // message (some checks provoke one on purpose): no backtrace on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let all = registry();
    if args.selectors.first().map(String::as_str) == Some("list") {
        if args.markdown {
            print!("{}", markdown_table(&all));
        } else {
            list(&all);
        }
        return Ok(EXIT_OK);
    }
    if args.markdown {
        return Err("--markdown goes with `list`: loadgen scenario list --markdown".into());
    }
    let chosen = if args.all {
        all.clone()
    } else if args.selectors.is_empty() {
        return Err("name scenarios to run (IDs, aliases or globs), or use --all; `loadgen scenario list` shows them".into());
    } else {
        select(&all, &args.selectors)?
    };
    let ctx = context(&args)?;
    let parallel = if args.serial {
        1
    } else {
        args.parallel.unwrap_or(DEFAULT_PARALLEL)
    };
    if parallel == 0 || parallel > 64 {
        return Err(format!(
            "--parallel {parallel} is out of range: use 1 to 64 (or --serial)"
        ));
    }
    let expectations = match &args.expect {
        Some(p) => Some(Expectations::load(p, &all)?),
        None => None,
    };
    let json_out = create("--json", &args.json)?;
    let junit_out = create("--junit", &args.junit)?;

    if ctx.target.name() != "reference" {
        println!("target: {}", ctx.target.name());
    }
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut records: Vec<Record> = Vec::with_capacity(chosen.len());
    pool::run_in_order(
        &chosen,
        parallel,
        |s| Record::run(s, &ctx, args.repeat),
        |_, r| {
            print_record(&r);
            records.push(r);
        },
    );
    let wall = started.elapsed();

    let totals = totals(&records);
    let differences: Vec<ExpectationDifference> = expectations
        .as_ref()
        .map(|e| {
            records
                .iter()
                .filter_map(|r| e.check(r.scenario.clause.id, &r.verdicts()))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "\n{} scenarios in {:.1} s: {} passed, {} failed, {} non-strict, {} skipped, {} errors{}",
        totals.scenarios,
        wall.as_secs_f64(),
        totals.pass,
        totals.fail,
        totals.non_strict,
        totals.skipped,
        totals.error,
        if args.repeat > 1 {
            format!(", {} flaky", totals.flaky)
        } else {
            String::new()
        }
    );
    let code = if let Some(e) = &expectations {
        for d in &differences {
            println!("{}", expectations::describe(d, args.repeat as usize));
        }
        if differences.is_empty() {
            println!("every verdict as {} expects", e.file);
        }
        exit_code_expecting(&differences)
    } else {
        exit_code(&records)
    };

    let meta = results_json::Meta {
        started_at,
        wall,
        slack: args.slack,
        workers: args.workers,
        fault: args.fault.clone(),
        target: ctx.target.name(),
        repeat: args.repeat,
        parallel,
        expectations: expectations.map(|e| ExpectationCheck {
            file: e.file,
            differences,
        }),
        exit_code: code,
    };
    if json_out.is_some() {
        let doc = results_json::document(&records, totals.clone(), meta.clone());
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| format!("--json: cannot serialise the results: {e}"))?;
        write("--json", json_out, &(text + "\n"))?;
    }
    if junit_out.is_some() {
        write("--junit", junit_out, &junit::report(&records, &meta)?)?;
    }
    Ok(code)
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
