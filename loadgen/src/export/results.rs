//! The human summary of a run (a compact table on stdout) and the results file.

use std::time::{SystemTime, UNIX_EPOCH};

use reports::{Host, LatencySummary, Results, RunResult, Tool, RESULT_SCHEMA};

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

/// The compact table.
pub fn human(r: &RunResult) -> String {
    let mut out = String::new();
    out.push_str(&format!("target    {}\n", r.target));
    out.push_str(&format!("workload  {}\n", r.workload));
    out.push_str(&format!(
        "requests  {} in {:.2} s = {:.1}/s, {:.2} MiB/s received\n",
        r.requests,
        r.duration_s,
        r.requests_per_s,
        r.bytes_per_s / (1024.0 * 1024.0)
    ));
    let e = &r.errors;
    out.push_str(&format!(
        "errors    {} (refused {}, connect timeout {}, reset {}, eof {}, timeout {}, parse {}, 4xx {}, 5xx {})\n",
        e.total(), e.connect_refused, e.connect_timeout, e.reset, e.eof, e.timeout, e.parse, e.status_4xx, e.status_5xx
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
    out
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The host description.
pub fn host() -> Host {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Host {
        kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model,
        cores: engine::sys::thread::allowed_cpus()
            .map(|c| c.len() as u32)
            .unwrap_or(0),
        governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }
}

/// RFC 3339 UTC for a Unix time in milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let rem = secs % 86_400;
    let (year, month, day) = engine::http::date::civil_from_days(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// This binary, for the `tool` field of results files.
pub fn tool() -> Tool {
    Tool {
        name: "loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_revision: option_env!("LOADGEN_GIT_REVISION").map(String::from),
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wraps runs into a results file.
pub fn results(runs: Vec<RunResult>, started: SystemTime) -> Results {
    let unix_ms = unix_ms(started);
    Results {
        schema: RESULT_SCHEMA.into(),
        tool: tool(),
        host: host(),
        started_at: rfc3339(unix_ms),
        started_unix_ms: unix_ms,
        runs,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_709_210_096_123),
            "2024-02-29T12:34:56.123Z"
        );
    }
}
