//! `loadgen cost` on the console and as Markdown for a pull request: the cost per
//! request of each workload, or with `--ab` the exact deltas and their verdicts.

use std::fmt::Write as _;

use super::tables::{Align, Column, Table};
use crate::cost::model::{Ab, AbWorkload, CostDoc, ServerCost, Verdict};

/// A per-request figure: whole numbers as they are, others to 2 decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The rows of one server's cost: counter, then one cell per workload.
fn cost_rows(s: &ServerCost) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["per request".to_string()];
    header.extend(s.workloads.iter().map(|w| w.workload.clone()));
    let mut rows = Vec::new();
    let mut push = |name: &str, get: &dyn Fn(&crate::cost::model::WorkloadCost) -> Option<f64>| {
        let mut row = vec![name.to_string()];
        row.extend(
            s.workloads
                .iter()
                .map(|w| get(w).map_or("0".into(), number)),
        );
        rows.push(row);
    };
    push("instructions", &|w| Some(w.instructions.per_request));
    push("allocations", &|w| Some(w.allocations.per_request));
    let names: std::collections::BTreeSet<&String> =
        s.workloads.iter().flat_map(|w| w.syscalls.keys()).collect();
    for name in names {
        push(name, &|w| w.syscalls.get(name).map(|c| c.per_request));
    }
    push("bytes written", &|w| Some(w.bytes_written.per_request));
    push("(not gated) epoll_wait_empty", &|w| {
        w.not_gated.get("epoll_wait_empty").map(|c| c.per_request)
    });
    let mut requests = vec!["requests N1, N2".to_string()];
    requests.extend(
        s.workloads
            .iter()
            .map(|w| format!("{}, {}", w.requests[0], w.requests[1])),
    );
    rows.push(requests);
    (header, rows)
}

fn console(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                Column::fit(h)
            } else {
                Column::new(h, Align::Right, h.len().max(10)).after("  ")
            }
        })
        .collect();
    let mut t = Table::new(columns).indented("  ");
    for r in rows {
        t.row(r.clone());
    }
    t.render()
}

fn markdown_table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let esc = |s: &String| s.replace('|', "\\|");
    let _ = writeln!(
        out,
        "| {} |",
        header.iter().map(esc).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---:|".repeat(header.len() - 1));
    for r in rows {
        let _ = writeln!(
            out,
            "| {} |",
            r.iter().map(esc).collect::<Vec<_>>().join(" | ")
        );
    }
}

/// The rows of one workload's comparison.
fn ab_rows(w: &AbWorkload) -> (Vec<String>, Vec<Vec<String>>) {
    let header = ["counter", "base", "head", "delta", "verdict"].map(String::from);
    let rows = w
        .counters
        .iter()
        .map(|c| {
            vec![
                c.counter.clone(),
                number(c.base_per_request),
                number(c.head_per_request),
                c.delta_pct.map_or("-".into(), |p| format!("{p:+.3}%")),
                c.verdict.word().into(),
            ]
        })
        .collect();
    (header.to_vec(), rows)
}

/// What changed, in one line: the counters that regressed, or `unchanged`.
fn summary(ab: &Ab) -> String {
    let bad: Vec<String> = ab
        .workloads
        .iter()
        .flat_map(|w| {
            w.counters
                .iter()
                .filter(|c| c.verdict == Verdict::Regressed)
                .map(move |c| {
                    format!(
                        "{} {} {}",
                        w.workload,
                        c.counter,
                        c.delta_pct.map_or(
                            format!(
                                "{} -> {}",
                                number(c.base_per_request),
                                number(c.head_per_request)
                            ),
                            |p| format!("{p:+.3}%")
                        )
                    )
                })
        })
        .collect();
    match ab.verdict {
        Verdict::Regressed => format!(
            "regressed ({}; threshold {}% of instructions, any rise of allocations, more than 2 calls of a syscall in the window)",
            bad.join(", "),
            ab.threshold_pct
        ),
        v => v.word().to_string(),
    }
}

/// The console output.
pub fn text(doc: &CostDoc) -> String {
    let mut out = String::new();
    match &doc.ab {
        None => {
            for s in &doc.servers {
                let _ = writeln!(out, "cost of {} ({}), per request:", s.name, s.command);
                let (h, r) = cost_rows(s);
                out.push_str(&console(&h, &r));
                for w in &s.workloads {
                    let top: Vec<String> = w
                        .functions
                        .iter()
                        .take(5)
                        .map(|f| format!("{} {}", f.function, number(f.instructions_per_request)))
                        .collect();
                    let _ = writeln!(
                        out,
                        "  top functions (own instructions per request), {}: {}",
                        w.workload,
                        top.join("; ")
                    );
                }
            }
        }
        Some(ab) => {
            if let [base, head] = doc.servers.as_slice() {
                let _ = writeln!(out, "base: {}\nhead: {}", base.command, head.command);
            }
            for w in &ab.workloads {
                let _ = writeln!(out, "{} (per request): {}", w.workload, w.verdict.word());
                let (h, r) = ab_rows(w);
                out.push_str(&console(&h, &r));
                for f in &w.functions {
                    let _ = writeln!(
                        out,
                        "  changed most: {:+.2} instructions per request in {} ({} -> {})",
                        f.delta_per_request,
                        f.function,
                        number(f.base_per_request),
                        number(f.head_per_request)
                    );
                }
            }
            let _ = writeln!(out, "cost: {}", summary(ab));
        }
    }
    out
}

/// The Markdown for a pull request comment.
pub fn markdown(doc: &CostDoc) -> String {
    let mut out = String::new();
    match &doc.ab {
        None => {
            for s in &doc.servers {
                let _ = writeln!(out, "### loadgen cost: {}\n", s.name);
                let (h, r) = cost_rows(s);
                markdown_table(&mut out, &h, &r);
                out.push('\n');
            }
        }
        Some(ab) => {
            let _ = writeln!(out, "### loadgen cost --ab: {}\n", summary(ab));
            for w in &ab.workloads {
                let _ = writeln!(
                    out,
                    "**{}** (per request): {}\n",
                    w.workload,
                    w.verdict.word()
                );
                let (h, mut r) = ab_rows(w);
                for row in &mut r {
                    if row[4] == "regressed" {
                        row[4] = "**regressed**".into();
                    }
                }
                markdown_table(&mut out, &h, &r);
                if !w.functions.is_empty() {
                    out.push_str("\nChanged most (own instructions per request):\n\n");
                }
                for f in &w.functions {
                    let _ = writeln!(
                        out,
                        "- `{}`: {:+.2} ({} → {})",
                        f.function.replace('`', "'"),
                        f.delta_per_request,
                        number(f.base_per_request),
                        number(f.head_per_request)
                    );
                }
                out.push('\n');
            }
        }
    }
    let _ = writeln!(
        out,
        "Counts are exact: {} (per request = difference / (N2 - N1)).",
        doc.method
    );
    out
}
