//! `loadgen counters` on the console: the per-request table.

use std::fmt::Write as _;

use engine::sys::count::NAMES;

use std::path::Path;

use crate::counters::model::{is_untimed, ratio, Difference, Measured};

/// The per-request table, allocations first, then syscalls in the engine's order.
pub fn table(measured: &[Measured], repeat: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "counters of the reference engine, per request ({} run{}, 1 worker):",
        repeat,
        if repeat == 1 { "" } else { "s, all equal" }
    );
    let _ = write!(out, "{:<20}", "counter");
    for m in measured {
        let _ = write!(out, "{:>16}", m.name);
    }
    out.push('\n');
    let names: Vec<&String> = measured
        .first()
        .map(|m| m.counters.keys().collect())
        .unwrap_or_default();
    let row = |out: &mut String, name: &str, get: &dyn Fn(&Measured) -> Option<u64>| {
        let _ = write!(out, "{name:<20}");
        for m in measured {
            let v = get(m).map_or("-".into(), |t| ratio(t, m.requests));
            let _ = write!(out, "{v:>16}");
        }
        out.push('\n');
    };
    // Allocations first, then syscalls in the engine's kind order.
    row(&mut out, "allocations", &|m| {
        m.counters.get("allocations").copied()
    });
    for name in NAMES.iter().filter(|n| !is_untimed(n)) {
        row(&mut out, name, &|m| m.counters.get(*name).copied());
    }
    for name in names {
        if name != "allocations" && !NAMES.contains(&name.as_str()) {
            row(&mut out, name, &|m| m.counters.get(name).copied());
        }
    }
    let _ = write!(out, "{:<20}", "requests");
    for m in measured {
        let _ = write!(out, "{:>16}", m.requests);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "not gated (timer wakeups, vary with time), totals: {}",
        measured
            .iter()
            .map(|m| {
                let parts: Vec<String> =
                    m.untimed.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{} {}", m.name, parts.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        out,
        "not counted: close(2) (OwnedFd drop), clock_gettime (vDSO)"
    );
    out
}

/// The verdict of `--check FILE`: every difference, or the line saying all are equal.
pub fn check(baseline: &[Measured], diffs: &[Difference], path: &Path) -> String {
    if diffs.is_empty() {
        return format!(
            "counters: all {} equal to {}\n",
            baseline.iter().map(|w| w.counters.len()).sum::<usize>(),
            path.display()
        );
    }
    let mut out = String::new();
    for d in diffs {
        let _ = writeln!(out, "counters: {}", d.line(true));
    }
    let _ = writeln!(
        out,
        "counters: {} differ from {}; if the change is intended, update the baseline \
         with `loadgen counters --write {}` and commit it",
        diffs.len(),
        path.display(),
        path.display()
    );
    out
}
