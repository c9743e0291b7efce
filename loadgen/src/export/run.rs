//! The summary of one run on the console: target, workload, throughput, errors by
//! class, the latency percentiles, the self-check warnings and the `--check` verdicts.

use reports::{CheckResult, LatencySummary, RunResult};

fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}", us as f64 / 1000.0)
    } else {
        format!("{:.3}", us as f64 / 1000.0)
    }
}

fn row(name: &str, s: &LatencySummary) -> String {
    format!(
        "  {name:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        ms(s.min_us),
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.p999_us),
        ms(s.p9999_us),
        ms(s.max_us)
    )
}

/// A check's measured value in the unit of its expression's kind.
fn measured(c: &CheckResult) -> String {
    match c.unit.as_str() {
        "us" => format!("{} ms", ms(c.measured as u64)),
        "percent" => format!("{:.3} %", c.measured),
        "per_s" => format!("{:.1}/s", c.measured),
        _ => format!("{}", c.measured),
    }
}

/// The compact table.
pub fn summary(r: &RunResult) -> String {
    let mut out = String::new();
    let record = r.config.run.as_ref();
    if record.is_some_and(|c| c.interrupted) {
        out.push_str("interrupted: the run was stopped early; the figures cover the time it ran\n");
    }
    out.push_str(&format!("target    {}\n", r.target));
    out.push_str(&format!("workload  {}\n", r.workload));
    let set = |k: &str| r.config.settings.get(k).filter(|v| !v.is_null());
    if let (Some(i), Some(n), Some(c)) =
        (set("shard_index"), set("shard_count"), set("connections"))
    {
        let rate = set("rate_per_s").map_or(String::new(), |r| format!(", {r}/s"));
        out.push_str(&format!(
            "shard     {i} of {n}: {c} conns{rate} of the workload's\n"
        ));
    }
    out.push_str(&format!(
        "requests  {} in {:.2} s = {:.1}/s, {:.2} MiB/s received\n",
        r.requests,
        r.duration_s,
        r.requests_per_s,
        r.bytes_per_s / (1024.0 * 1024.0)
    ));
    let e = &r.errors;
    out.push_str(&format!(
        "errors    {} (refused {}, connect timeout {}, reset {}, eof {}, timeout {}, parse {}, 4xx {}, 5xx {}, client {})\n",
        e.total(), e.connect_refused, e.connect_timeout, e.reset, e.eof, e.timeout, e.parse, e.status_4xx, e.status_5xx, e.client
    ));
    out.push_str(&format!(
        "latency ms   {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "min", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    ));
    out.push_str(&row("corrected", &r.latency_corrected));
    out.push('\n');
    out.push_str(&row("uncorrected", &r.latency_uncorrected));
    out.push('\n');
    if r.latency_errors.count > 0 {
        out.push_str(&row("failed", &r.latency_errors));
        out.push('\n');
    }
    if let Some(o) = &r.open_model {
        out.push_str(&format!(
            "schedule  {} /s {}, late {}, never sent {}, lag mean {:.3} ms max {:.3} ms\n",
            o.rate_per_s,
            o.arrivals,
            o.late,
            o.never_sent,
            o.mean_lag_us / 1000.0,
            o.max_lag_us as f64 / 1000.0
        ));
    }
    if let Some(cpu) = r.client_cpu_s {
        if r.requests > 0 {
            let per = cpu / r.requests as f64 * 1e6;
            out.push_str(&format!(
                "client    {cpu:.2} CPU s, {per:.2} µs per request\n"
            ));
        } else {
            out.push_str(&format!("client    {cpu:.2} CPU s, no request completed\n"));
        }
    }
    for w in &r.warnings {
        out.push_str(&format!("warning   [{}] {}\n", w.kind, w.message));
    }
    for c in record.map_or(&[][..], |c| &c.checks) {
        let verdict = if c.passed { "pass" } else { "FAIL" };
        out.push_str(&format!(
            "check     {:<20} {verdict}  (measured {})\n",
            c.expression,
            measured(c)
        ));
    }
    out
}
