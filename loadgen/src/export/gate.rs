//! The gate's verdicts as a console table and as Markdown for a pull request.

use std::fmt::Write as _;

use reports::gate::{Comparison, Metric, Verdict};

use super::tables::{Column, Table};
use crate::gate::Group;

/// One table row's cells: metric, baseline, candidate, ratio, interval, threshold,
/// verdict.
fn cells(metric: Metric, c: &Comparison) -> [String; 7] {
    let number = |v: f64| -> String {
        if !v.is_finite() {
            "-".into()
        } else if v.abs() >= 100.0 || v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    [
        metric.label().into(),
        number(c.baseline_median),
        number(c.candidate_median),
        c.ratio.map_or("-".into(), |r| format!("{r:.3}")),
        c.interval
            .map_or("-".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]")),
        match metric {
            Metric::Errors => "none → some".into(),
            _ => format!("±{:.0}%", c.threshold * 100.0),
        },
        c.verdict.as_str().into(),
    ]
}

const HEADER: [&str; 7] = [
    "metric",
    "baseline median",
    "candidate median",
    "ratio",
    "95% CI",
    "threshold",
    "verdict",
];

fn summary(groups: &[Group]) -> &'static str {
    let verdicts: Vec<Verdict> = groups
        .iter()
        .flat_map(|g| g.comparisons.iter().map(|m| m.comparison.verdict))
        .collect();
    if verdicts.contains(&Verdict::Regressed) {
        "regressed"
    } else if verdicts.contains(&Verdict::Inconclusive) {
        "no regression found (some metrics inconclusive: too noisy or too few runs)"
    } else {
        "no regression"
    }
}

fn metric_notes(g: &Group) -> Vec<String> {
    g.comparisons
        .iter()
        .flat_map(|m| {
            m.comparison
                .notes
                .iter()
                .map(move |n| format!("{}: {n}", m.metric.label()))
        })
        .collect()
}

/// The console table, one block per group, and the summary line.
pub fn text_table(groups: &[Group], notes: &[String]) -> String {
    let mut out = String::new();
    for g in groups {
        let pairs = g.comparisons.first().map_or(0, |m| m.comparison.pairs);
        let _ = writeln!(out, "{}  ({pairs} pairs)", g.label);
        let columns = HEADER
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == 0 {
                    Column::fit(h)
                } else {
                    Column::fit(h).after("  ")
                }
            })
            .collect();
        let mut table = Table::new(columns).indented("  ");
        for m in &g.comparisons {
            table.row(cells(m.metric, &m.comparison).into());
        }
        out.push_str(&table.render());
        for n in metric_notes(g) {
            let _ = writeln!(out, "  note: {n}");
        }
        out.push('\n');
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "gate: {}", summary(groups));
    out
}

/// The same as Markdown.
pub fn markdown(groups: &[Group], notes: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### loadgen gate: {}\n", summary(groups));
    for g in groups {
        let pairs = g.comparisons.first().map_or(0, |m| m.comparison.pairs);
        let _ = writeln!(out, "**{}** ({pairs} pairs)\n", escape(&g.label));
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(HEADER.len() - 2) + "---|");
        for m in &g.comparisons {
            let mut row = cells(m.metric, &m.comparison);
            if m.comparison.verdict == Verdict::Regressed {
                row[6] = format!("**{}**", row[6]);
            }
            let row: Vec<String> = row.iter().map(|c| escape(c)).collect();
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let notes = metric_notes(g);
        if !notes.is_empty() {
            out.push('\n');
        }
        for n in notes {
            let _ = writeln!(out, "- {}", escape(&n));
        }
        out.push('\n');
    }
    for n in notes {
        let _ = writeln!(out, "- {}", escape(n));
    }
    let _ = writeln!(
        out,
        "\nRatio: median of paired candidate/baseline ratios; 95% CI: bootstrap (2000 resamples). `regressed` only when the whole interval lies beyond the threshold."
    );
    out
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}
