//! `loadgen scenario --expect FILE` (the CI check of ci/expectations.tsv) and the
//! one-line errors of the scenario outputs.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{assert_refused_up_front, loadgen};

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("expect-{name}-{}.tsv", std::process::id()))
}

fn run_with(name: &str, expectations: &str, args: &[&str]) -> common::Output {
    let path = tmp(name);
    std::fs::write(&path, expectations).unwrap();
    let mut all = vec!["scenario"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--expect", path.to_str().unwrap()]);
    let out = loadgen(&all, Duration::from_secs(120));
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn as_expected_exits_0() {
    let out = run_with(
        "ok",
        "# comment\nselect.mirror\tpass|non-strict\tmay be either\n",
        &["modulo", "engine.type"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("every verdict as"), "{}", out.stdout);
    assert!(!out.stdout.contains("UNEXPECTED"), "{}", out.stdout);
}

#[test]
fn an_unexpected_pass_exits_1_with_one_line_per_difference() {
    let out = run_with(
        "pass",
        "engine.type\tfail\ta listed deviation\nselect.modulo\tnon-strict|skipped\tanother\n",
        &["modulo", "engine.type", "--repeat", "2"],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("UNEXPECTED"))
        .collect();
    assert_eq!(
        lines,
        [
            "UNEXPECTED engine.type: pass in 2 of 2 runs, expected fail (an unexpected pass: remove or update its line)",
            "UNEXPECTED select.modulo: pass in 2 of 2 runs, expected non-strict|skipped (an unexpected pass: remove or update its line)",
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_expectations_file_is_a_one_line_usage_error() {
    let out = run_with("bad", "engine.typo\tpass\twhy\n", &["engine.type"]);
    assert_refused_up_front(&out, ":1: unknown scenario");
}

#[test]
fn unwritable_outputs_fail_before_running_anything() {
    for flag in ["--json", "--junit"] {
        let out = loadgen(
            &["scenario", "--all", flag, "/nonexistent-dir/out"],
            Duration::from_secs(30),
        );
        assert_refused_up_front(&out, "cannot create");
        assert!(
            out.stderr.starts_with(&format!(
                "error: {flag} /nonexistent-dir/out: cannot create"
            )),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn markdown_needs_list_and_parallel_needs_a_range() {
    let out = loadgen(
        &["scenario", "engine.type", "--markdown"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("list --markdown"), "{}", out.stderr);
    let out = loadgen(
        &["scenario", "engine.type", "--parallel", "0"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("--parallel 0 is out of range"),
        "{}",
        out.stderr
    );
    let out = loadgen(
        &["scenario", "engine.type", "--parallel", "2", "--serial"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
}
