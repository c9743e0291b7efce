//! The conformance runner on the console: the scenario list (plain and Markdown), one
//! block per scenario as it completes, the totals and the expectation differences.

use std::time::Duration;

use reports::scenarios::{ExpectationDifference, Totals, VerdictKind};
use scenarios::{Scenario, Verdict};

use super::tables::{Align, Column, Table};
use crate::suite::{failure_text, reason, Record};

/// What a scenario needs from its target, e.g. `config, accept-control`.
fn needs(s: &Scenario) -> String {
    let names: Vec<&str> = s.needs.iter().map(|c| c.name()).collect();
    names.join(", ")
}

/// `loadgen scenario list`: ID, level, aliases, clause (needs).
pub fn list(all: &[Scenario]) -> String {
    let mut t = Table::new(vec![
        Column::new("ID", Align::Left, 30),
        Column::new("LEVEL", Align::Left, 6),
        Column::new("ALIASES", Align::Left, 28),
        Column::new("clause (needs)", Align::Left, 0),
    ]);
    for s in all {
        t.row(vec![
            s.clause.id.to_string(),
            s.clause.level.to_string(),
            s.aliases.join(","),
            format!("{} ({})", s.clause.text, needs(s)),
        ]);
    }
    t.render()
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

/// A scenario's block: its verdict line, then the reason or the evidence.
pub fn record(r: &Record) -> String {
    let mut out = String::new();
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
    out.push_str(&format!(
        "{label:<10} {:<30} {:<6} {:>7.0} ms{repeat_note}\n",
        s.clause.id,
        s.clause.level.to_string(),
        r.duration().as_secs_f64() * 1000.0 / r.runs.len() as f64
    ));
    if let Some(why) = reason(&worst.verdict) {
        out.push_str(&format!("    Reason:      {why}\n"));
    }
    if matches!(worst.verdict, Verdict::Fail | Verdict::NonStrict) {
        for line in failure_text(s, worst).lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

/// The totals line (after a blank line).
pub fn totals(t: &Totals, wall: Duration, repeat: u32) -> String {
    format!(
        "\n{} scenarios in {:.1} s: {} passed, {} failed, {} non-strict, {} skipped, {} errors{}\n",
        t.scenarios,
        wall.as_secs_f64(),
        t.pass,
        t.fail,
        t.non_strict,
        t.skipped,
        t.error,
        if repeat > 1 {
            format!(", {} flaky", t.flaky)
        } else {
            String::new()
        }
    )
}

/// Every difference from the expectations file, one line each, or the line saying
/// there is none.
pub fn differences(file: &str, differences: &[ExpectationDifference], runs: usize) -> String {
    if differences.is_empty() {
        return format!("every verdict as {file} expects\n");
    }
    differences
        .iter()
        .map(|d| describe(d, runs) + "\n")
        .collect()
}

/// The one console line for a difference.
pub fn describe(d: &ExpectationDifference, runs: usize) -> String {
    let names = |v: &[VerdictKind]| v.iter().map(|k| k.name()).collect::<Vec<_>>().join("|");
    let mut seen: Vec<VerdictKind> = Vec::new();
    for v in &d.seen {
        if !seen.contains(v) {
            seen.push(*v);
        }
    }
    let unexpected_pass = if seen.contains(&VerdictKind::Pass) {
        " (an unexpected pass: remove or update its line)"
    } else {
        ""
    };
    let of_runs = if runs > 1 {
        format!(" in {} of {runs} runs", d.seen.len())
    } else {
        String::new()
    };
    format!(
        "UNEXPECTED {}: {}{of_runs}, expected {}{unexpected_pass}",
        d.id,
        names(&seen),
        names(&d.allowed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unexpected_pass_is_a_difference() {
        let e = reports::scenarios::Expectations::parse(
            "exp.tsv",
            "engine.type\tnon-strict\tknown deviation\n",
            |id| scenarios::find(id).is_some(),
        )
        .unwrap();
        let d = e.check("engine.type", &[VerdictKind::Pass]).unwrap();
        assert!(
            describe(&d, 1).contains("unexpected pass"),
            "{}",
            describe(&d, 1)
        );
        assert_eq!(
            describe(&d, 1),
            "UNEXPECTED engine.type: pass, expected non-strict (an unexpected pass: remove or update its line)"
        );
    }
}
