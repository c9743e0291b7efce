//! `loadgen bench --quick` on the real binary: every workload runs against the embedded
//! engine (a child process), server CPU is read from /proc, and the file feeds `report`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::loadgen;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-cli-{name}-{}", std::process::id()))
}

#[test]
fn quick_matrix_against_embedded_then_report() {
    let json = tmp("quick.json");
    let file = json.to_str().unwrap();
    let args = ["bench", "--quick", "--duration", "300ms", "--json", file];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");

    let results: reports::Results =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = results.runs.iter().map(|r| r.workload.as_str()).collect();
    assert_eq!(
        names,
        [
            "plaintext",
            "pipelined-16",
            "churn",
            "post-4k",
            "response-1m"
        ]
    );
    for r in &results.runs {
        assert_eq!(r.target, "embedded");
        assert!(r.requests > 0, "{}: no request completed", r.workload);
        assert_eq!(r.errors.total(), 0, "{}: errors {:?}", r.workload, r.errors);
        let cpu = r.server_cpu_s.expect("server CPU of the embedded engine");
        assert!(cpu >= 0.0, "{}: server CPU {cpu}", r.workload);
    }

    let dir = tmp("report");
    let args = ["report", file, "--out", dir.to_str().unwrap()];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");
    assert!(dir.join("index.html").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&json);
}
