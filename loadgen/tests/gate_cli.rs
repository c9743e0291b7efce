//! `loadgen gate` on synthetic results files: a real throughput drop exits 3 and says
//! `regressed`, an unchanged candidate exits 0, and bad input is one line with exit 2.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use reports::gate::SplitMix64;
use reports::{ErrorCounts, Host, LatencySummary, Results, RunResult, Tool, RESULT_SCHEMA};

use common::{loadgen, Output};

const DEADLINE: Duration = Duration::from_secs(30);
const RUNS: usize = 8;

/// A run of the workload `GET /` against `target` with this throughput and p99; the
/// other fields are plausible constants.
fn run_result(target: &str, requests_per_s: f64, p99_us: u64) -> RunResult {
    let latency = LatencySummary {
        count: (requests_per_s * 5.0) as u64,
        min_us: 20,
        mean_us: 60.0,
        stdev_us: 15.0,
        p50_us: 55,
        p90_us: 80,
        p99_us,
        p999_us: p99_us * 2,
        p9999_us: p99_us * 3,
        max_us: p99_us * 4,
    };
    RunResult {
        target: target.into(),
        workload: "GET /, 64 conns, closed p1".into(),
        config: Default::default(),
        duration_s: 5.0,
        requests: (requests_per_s * 5.0) as u64,
        errors: ErrorCounts::default(),
        requests_per_s,
        bytes_per_s: requests_per_s * 100.0,
        bytes_read: (requests_per_s * 500.0) as u64,
        bytes_written: (requests_per_s * 200.0) as u64,
        latency_corrected: latency.clone(),
        latency_uncorrected: latency,
        latency_errors: LatencySummary::default(),
        histogram_corrected: String::new(),
        histogram_uncorrected: String::new(),
        histogram_errors: String::new(),
        timeline: Vec::new(),
        open_model: None,
        client_cpu_s: Some(4.0),
        server_cpu_s: Some(requests_per_s * 5.0 * 10e-6),
        warnings: Vec::new(),
        started_unix_ms: None,
    }
}

/// `RUNS` runs around `requests_per_s` with ±1 % noise (seeded).
fn results(seed: u64, target: &str, requests_per_s: f64) -> Results {
    let mut rng = SplitMix64::new(seed);
    let runs = (0..RUNS)
        .map(|_| {
            let noise = 1.0 + 0.01 * rng.normal();
            run_result(target, requests_per_s * noise, (200.0 / noise) as u64)
        })
        .collect();
    Results {
        schema: RESULT_SCHEMA.into(),
        tool: Tool {
            name: "loadgen".into(),
            version: "0.1.0".into(),
            git_revision: None,
        },
        host: Host {
            hostname: None,
            kernel: "6.0".into(),
            cpu_model: "test".into(),
            cores: 2,
            governor: None,
        },
        started_at: "2024-01-01T00:00:00.000Z".into(),
        started_unix_ms: 1_704_067_200_000,
        identity: Default::default(),
        runs,
    }
}

/// A path in the test's temporary directory, unique to this process.
fn temp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gate-cli-{}-{name}", std::process::id()))
}

fn write(name: &str, results: &Results) -> String {
    let path = temp(name);
    std::fs::write(&path, serde_json::to_string_pretty(results).unwrap()).unwrap();
    path.to_str().unwrap().into()
}

fn gate(args: &[&str]) -> Output {
    let mut all = vec!["gate"];
    all.extend_from_slice(args);
    loadgen(&all, DEADLINE)
}

#[test]
fn a_10_percent_throughput_drop_exits_3_and_says_regressed() {
    let base = write(
        "drop-base.json",
        &results(1, "http://127.0.0.1:8001/", 50_000.0),
    );
    let head = write(
        "drop-head.json",
        &results(2, "http://127.0.0.1:8002/", 45_000.0),
    );
    let md = temp("drop.md");
    let out = gate(&[
        "--baseline",
        &base,
        "--candidate",
        &head,
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 3, "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("throughput"))
        .unwrap_or_else(|| panic!("no throughput row: {}", out.stdout));
    assert!(line.contains("regressed"), "{line}");
    // Different target names (two builds on two ports): matched by workload, and said so.
    assert!(out.stdout.contains("workload only"), "{}", out.stdout);
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("| throughput (req/s) |"), "{markdown}");
    assert!(markdown.contains("**regressed**"), "{markdown}");
    for f in [&base, &head] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(md);
}

#[test]
fn an_unchanged_candidate_exits_0() {
    let target = "http://127.0.0.1:8080/";
    let base = write("same-base.json", &results(3, target, 50_000.0));
    let head = write("same-head.json", &results(4, target, 50_000.0));
    let out = gate(&["--baseline", &base, "--candidate", &head]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains("regressed"), "{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("throughput"))
        .unwrap_or_else(|| panic!("no throughput row: {}", out.stdout));
    assert!(line.contains("unchanged"), "{line}");
    for f in [&base, &head] {
        let _ = std::fs::remove_file(f);
    }
}

#[track_caller]
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.code(), 2, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line: {}", out.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_malformed_file_is_one_line_and_exit_2() {
    let base = write("bad-base.json", &results(5, "t", 50_000.0));
    let bad = temp("bad-head.json");
    std::fs::write(&bad, "{\"schema\": \"loadgen.result/v1\", \"runs\": [").unwrap();
    let out = gate(&["--baseline", &base, "--candidate", bad.to_str().unwrap()]);
    assert_one_line_error(&out, "--candidate");

    std::fs::write(&bad, "{\"schema\": \"loadgen.scenarios/v1\"}").unwrap();
    let out = gate(&["--baseline", &base, "--candidate", bad.to_str().unwrap()]);
    assert_one_line_error(&out, "loadgen.result/v1");

    let missing = temp("missing.json");
    let out = gate(&[
        "--baseline",
        missing.to_str().unwrap(),
        "--candidate",
        &base,
    ]);
    assert_one_line_error(&out, "--baseline");

    let mut empty = results(6, "t", 50_000.0);
    empty.runs.clear();
    let empty = write("empty.json", &empty);
    let out = gate(&["--baseline", &base, "--candidate", &empty]);
    assert_one_line_error(&out, "nothing to compare");

    for f in [&base, &empty] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(bad);
}
