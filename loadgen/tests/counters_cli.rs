//! `loadgen counters`: the committed baseline matches the current tree exactly, and any
//! difference from a baseline exits 3 naming the counter.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::loadgen;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ci/counters.json")
}

fn baseline() -> Value {
    let text = std::fs::read_to_string(baseline_path()).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A file in the temp dir, unique to this process and `name`, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str, text: &str) -> Temp {
        let p = std::env::temp_dir().join(format!("counters-cli-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        Temp(p)
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The baseline with `workload`'s `counter` moved by `by`.
fn edited(workload: &str, counter: &str, by: i64) -> String {
    let mut doc = baseline();
    let w = doc["workloads"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|w| w["name"] == workload)
        .unwrap_or_else(|| panic!("no workload {workload} in ci/counters.json"));
    let v = w["counters"][counter].as_u64().unwrap() as i64 + by;
    w["counters"][counter] = Value::from(v);
    serde_json::to_string_pretty(&doc).unwrap()
}

#[test]
fn the_committed_baseline_equals_the_current_tree() {
    let out = loadgen(
        &["counters", "--check", baseline_path().to_str().unwrap()],
        DEADLINE,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("counters: all "), "{}", out.stdout);
    // The baseline is not trivially zero: the workloads really read and send.
    let doc = baseline();
    let ka = doc["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "keep-alive")
        .unwrap();
    assert_eq!(ka["counters"]["read"], ka["requests"]);
    assert_eq!(ka["counters"]["send"], ka["requests"]);
}

#[test]
fn a_baseline_one_below_reality_is_a_regression_naming_the_counter() {
    let lowered = Temp::new("lowered.json", &edited("keep-alive", "read", -1));
    let out = loadgen(&["counters", "--check", lowered.arg()], DEADLINE);
    assert_eq!(out.code(), 3, "{out:?}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("counters: "))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per counter, then advice: {lines:#?}"
    );
    assert!(
        lines[0].starts_with("counters: keep-alive read: 1 per request (1000 over 1000), baseline 0.999 per request (999 over 1000) (higher: regression)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("--write") && lines[1].contains("1 differ"),
        "{}",
        lines[1]
    );
}

#[test]
fn a_baseline_above_reality_also_fails_and_says_to_update_it() {
    let raised = Temp::new("raised.json", &edited("new-connection", "setsockopt", 1));
    let json = Temp::new("measured.json", "");
    let out = loadgen(
        &["counters", "--check", raised.arg(), "--json", json.arg()],
        DEADLINE,
    );
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(
        out.stdout
            .contains("counters: new-connection setsockopt: 1 per request (200 over 200), baseline 1.005 per request (201 over 200) (lower"),
        "{}",
        out.stdout
    );
    // --json wrote what was measured: the committed baseline's counters.
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&json.0).unwrap()).unwrap();
    assert_eq!(written["schema"], "loadgen.counters/v1");
    assert_eq!(written["workloads"], baseline()["workloads"]);
}

#[test]
fn a_malformed_baseline_is_a_one_line_setup_error() {
    for (name, text, want) in [
        ("truncated.json", "{\"schema\": ", "not JSON"),
        (
            "schema.json",
            "{\"schema\": \"loadgen.result/v1\", \"workloads\": []}",
            "schema",
        ),
    ] {
        let bad = Temp::new(name, text);
        let out = loadgen(&["counters", "--check", bad.arg()], DEADLINE);
        assert_eq!(out.code(), 2, "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.starts_with("error: --check ") && out.stderr.contains(want),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "nothing measured: {}", out.stdout);
    }
    let out = loadgen(
        &["counters", "--check", "/nonexistent/counters.json"],
        DEADLINE,
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
}
