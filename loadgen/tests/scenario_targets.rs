//! `loadgen scenario` against other targets: a running server by URL, nginx, and the
//! errors for targets that do not exist.

mod common;

use std::time::Duration;

use common::{loadgen, unused_port, EngineServer};

fn plain(_: &engine::Request<'_>, res: &mut engine::Response) {
    res.body(b"Hello, World!");
}

#[test]
fn url_target_runs_the_http_clauses_it_can_and_skips_the_rest() {
    let server = EngineServer::start(plain);
    let json = std::env::temp_dir().join(format!("targets-url-{}.json", std::process::id()));
    let out = loadgen(
        &[
            "scenario",
            "http.*",
            "--target-url",
            &server.url(),
            "--json",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(doc["target"], server.url().as_str());
    let verdict = |id: &str| {
        doc["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
            .clone()
    };
    // Needs nothing but HTTP: runs and passes on the reference engine behind the URL.
    assert_eq!(verdict("http.keepalive")["verdict"], "pass");
    assert_eq!(verdict("http.date")["verdict"], "pass");
    // Sets its own limits: skipped, saying what the target lacks.
    let errors = verdict("http.errors");
    assert_eq!(errors["verdict"], "skipped");
    assert!(
        errors["reason"].as_str().unwrap().contains("lacks config"),
        "{errors}"
    );
}

#[test]
fn url_target_that_is_not_listening_is_a_harness_error() {
    let url = format!("http://127.0.0.1:{}/", unused_port());
    let out = loadgen(
        &["scenario", "http.keepalive", "--target-url", &url],
        Duration::from_secs(30),
    );
    // The scenario cannot start its target: an `error` verdict, exit 2.
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stdout.contains("cannot connect"), "{out:?}");
}

#[test]
fn unknown_target_and_fault_with_other_target_are_one_line_errors() {
    let out = loadgen(
        &["scenario", "--all", "--target", "apache"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("--target \"apache\""), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");

    let out = loadgen(
        &["scenario", "http.*", "--target-url", "ftp://x/"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("not an http:// URL"), "{out:?}");
}

/// nginx is optional on a developer machine; CI installs it and also checks the whole
/// table with `--expect ci/expectations-nginx.tsv`.
#[test]
fn nginx_target_matches_its_expectations() {
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("nginx is not installed: skipped (apt-get install nginx-light)");
        return;
    }
    let expect = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations-nginx.tsv");
    let out = loadgen(
        &[
            "scenario", "http.*", "--target", "nginx", "--expect", expect,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("target: nginx"), "{out:?}");
}

/// The whole suite through `--target-cmd 'loadgen serve --control'` (the reference
/// engine in another process, over the control protocol) runs every scenario, none
/// skipped, and gives the same verdict as in process for each. In a release build only: in a debug build,
/// base64 and JSON of the 64 MiB driver writes are too slow for the timing clauses
/// (`.ci/run` runs it with `cargo test --release ... -- --ignored`).
#[test]
#[ignore = "needs a release build: cargo test --release -p loadgen --test scenario_targets -- --ignored"]
fn out_of_process_verdicts_equal_in_process_ones() {
    let dir = std::env::temp_dir();
    let local = dir.join(format!("targets-local-{}.json", std::process::id()));
    let remote = dir.join(format!("targets-remote-{}.json", std::process::id()));
    let out = loadgen(
        &["scenario", "--all", "--json", local.to_str().unwrap()],
        Duration::from_secs(300),
    );
    assert!(out.code() == 0 || out.code() == 1, "{out:?}");
    let cmd = format!("{} serve --control", env!("CARGO_BIN_EXE_loadgen"));
    let out = loadgen(
        &[
            "scenario",
            "--all",
            "--target-cmd",
            &cmd,
            "--json",
            remote.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    assert!(out.code() == 0 || out.code() == 1, "{out:?}");
    let read = |p: &std::path::Path| -> serde_json::Value {
        let v = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let _ = std::fs::remove_file(p);
        v
    };
    let (local, remote) = (read(&local), read(&remote));
    assert!(
        remote["target"]
            .as_str()
            .unwrap()
            .contains("serve --control"),
        "{}",
        remote["target"]
    );
    let verdicts = |doc: &serde_json::Value| -> Vec<(String, String, String)> {
        doc["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["verdict"].as_str().unwrap().to_string(),
                    s["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let (l, r) = (verdicts(&local), verdicts(&remote));
    assert_eq!(l.len(), scenarios::registry().len(), "{l:?}");
    assert_eq!(l.len(), r.len());
    let mut differences = Vec::new();
    for ((id, lv, lwhy), (rid, rv, why)) in l.iter().zip(&r) {
        assert_eq!(id, rid);
        if rv == "skipped" {
            differences.push(format!("{id}: skipped out of process ({why})"));
            continue;
        }
        // A scenario that needs the engine out of the harness's process (hostile.emfile
        // lowers the engine's descriptor limit) is skipped in process, saying so, and
        // must pass here.
        let own_process = lv == "skipped" && lwhy.contains("the harness's own process");
        if own_process && rv == "pass" {
            continue;
        }
        if lv != rv {
            differences.push(format!("{id}: in process {lv}, out of process {rv}"));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
