//! Negative controls out of process: with each fault of `ci/fault-matrix.tsv` injected
//! into the engine behind `--target-cmd 'loadgen serve --control'`, every scenario the
//! matrix names must still fail. The control protocol must not hide a fault that the
//! in-process run catches (`scenarios/tests/negative_controls.rs`).
#![cfg(feature = "faults")]

mod common;

use std::time::Duration;

use common::loadgen;

/// (fault name, clause IDs) of every fault that breaks a clause.
fn matrix() -> Vec<(String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/fault-matrix.tsv");
    let text = std::fs::read_to_string(path).expect("ci/fault-matrix.tsv is readable");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, ids) = l.split_once('\t').expect("fault<TAB>clauses");
            // `-`: a performance-only fault; the gate catches it, not a scenario.
            (ids.trim() != "-").then(|| {
                (
                    name.to_string(),
                    ids.split(',').map(|s| s.trim().to_string()).collect(),
                )
            })
        })
        .collect()
}

/// Runs the clauses `ids` with `fault` injected through the protocol; the clauses that
/// did not fail, each with what the scenario saw.
fn misses(cmd: &str, json: &std::path::Path, fault: &str, ids: &[String]) -> Vec<(String, String)> {
    let mut args = vec!["scenario"];
    args.extend(ids.iter().map(String::as_str));
    args.extend([
        "--fault",
        fault,
        "--target-cmd",
        cmd,
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = loadgen(&args, Duration::from_secs(300));
    assert!(out.code() == 0 || out.code() == 1, "{fault}: {out:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let verdicts = doc["scenarios"].as_array().unwrap();
    assert_eq!(verdicts.len(), ids.len(), "{fault}: {doc}");
    verdicts
        .iter()
        .filter(|s| !["fail", "non-strict"].contains(&s["verdict"].as_str().unwrap()))
        .map(|s| {
            (
                format!(
                    "{fault}: {} gave {} out of process",
                    s["id"].as_str().unwrap(),
                    s["verdict"].as_str().unwrap()
                ),
                s.to_string(),
            )
        })
        .collect()
}

/// A fault must be caught. One that is missed is tried once more, and the first miss is
/// printed whole either way (in the job's log), so that a check which only sometimes
/// catches its fault is seen and can be sharpened; a fault missed twice fails the test.
#[test]
#[ignore = "needs a release build: cargo test --release -p loadgen --features faults --test remote_negative_controls -- --ignored"]
fn every_fault_is_caught_through_the_control_protocol() {
    let cmd = format!("{} serve --control", env!("CARGO_BIN_EXE_loadgen"));
    let json = std::env::temp_dir().join(format!("remote-negative-{}.json", std::process::id()));
    let mut missed = Vec::new();
    let rows = matrix();
    assert!(rows.len() > 40, "the matrix lists {} faults", rows.len());
    for (fault, ids) in &rows {
        let first = misses(&cmd, &json, fault, ids);
        if first.is_empty() {
            continue;
        }
        for (what, detail) in &first {
            eprintln!("negative control missed once, trying again: {what}\n{detail}");
        }
        let again = misses(&cmd, &json, fault, ids);
        if again.is_empty() {
            eprintln!("negative control {fault}: caught on the second try (flaky detection: sharpen the check)");
        }
        missed.extend(again.into_iter().map(|(what, _)| what));
    }
    let _ = std::fs::remove_file(&json);
    assert!(missed.is_empty(), "{missed:#?}");
}
