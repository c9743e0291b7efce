//! `loadgen bench` on the real binary: the workload matrix against the embedded engine
//! (a child process, server CPU read from /proc), A/B and A/A runs of started commands
//! that `loadgen gate` takes as they are, workload selection, the idle-active workload,
//! start failures, and nginx when it is installed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_schema_valid, loadgen, schema_validator, Output};

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-cli-{name}-{}", std::process::id()))
}

/// Runs `loadgen args`, which must exit 0 within 30 s.
#[track_caller]
fn loadgen_ok(args: &[&str]) -> Output {
    let out = loadgen(args, Duration::from_secs(30));
    assert_eq!(out.code(), 0, "{out:?}");
    out
}

fn read(path: &Path) -> reports::Results {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The embedded engine as a command target: `{addr}` is filled in by bench.
fn serve_cmd() -> String {
    format!(
        "{} serve --addr {{addr}} --workers 1",
        env!("CARGO_BIN_EXE_loadgen")
    )
}

/// The pids bench reports for the servers it started (`bench: NAME: pid N on ...`).
fn started_pids(stderr: &str) -> Vec<u32> {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once(": pid ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn process_gone(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still count as left behind.
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// A run's `config` object as the results file has it.
fn config(r: &reports::RunResult) -> serde_json::Value {
    serde_json::to_value(&r.config).unwrap()
}

fn config_u64(r: &reports::RunResult, key: &str) -> u64 {
    config(r)
        .get(key)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("{} has no {key}: {:?}", r.workload, r.config))
}

#[test]
fn quick_matrix_against_embedded_then_report() {
    let json = tmp("quick.json");
    let file = json.to_str().unwrap();
    let args = ["bench", "--quick", "--duration", "300ms", "--json", file];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/schema/loadgen.result.v1.json"
    );
    assert_schema_valid(&schema_validator(schema), &value, schema);
    let results = read(&json);
    let names: Vec<&str> = results.runs.iter().map(|r| r.workload.as_str()).collect();
    // The whole matrix, in matrix order (its names are pinned by bench's unit test).
    let matrix: Vec<&str> = loadgen::bench::select_workloads(&[])
        .unwrap()
        .iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, matrix);
    assert_eq!(names.len(), 6);
    let mut last_start = 0;
    for r in &results.runs {
        assert_eq!(r.target, "embedded");
        assert!(r.requests > 0, "{}: no request completed", r.workload);
        assert_eq!(r.errors.total(), 0, "{}: errors {:?}", r.workload, r.errors);
        let cpu = r.server_cpu_s.expect("server CPU of the embedded engine");
        assert!(cpu >= 0.0, "{}: server CPU {cpu}", r.workload);
        // Each run records its own start, one after another, within the file's time.
        let start = r.started_unix_ms.expect("the run's own start");
        assert!(
            start >= results.started_unix_ms && start > last_start,
            "{}: start {start} (file {}, previous {last_start})",
            r.workload,
            results.started_unix_ms
        );
        last_start = start + (r.duration_s * 1000.0) as u64;
    }

    let dir = tmp("report");
    let args = ["report", file, "--out", dir.to_str().unwrap()];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");
    assert!(dir.join("index.html").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&json);
}

#[test]
fn ab_of_two_commands_alternates_and_feeds_the_gate() {
    let (all, a, b) = (tmp("ab.json"), tmp("ab-a.json"), tmp("ab-b.json"));
    let cmd = serve_cmd();
    let args = [
        "bench",
        "--ab",
        &cmd,
        &cmd,
        "--workload",
        "plaintext",
        "--repeat",
        "3",
        "-d",
        "300ms",
        "--json",
        all.to_str().unwrap(),
        "--json-a",
        a.to_str().unwrap(),
        "--json-b",
        b.to_str().unwrap(),
    ];
    let out = loadgen_ok(&args);

    // Rounds alternate the order: A B, B A, A B.
    let all_runs = read(&all).runs;
    let order: Vec<(&str, u64)> = all_runs
        .iter()
        .map(|r| (r.target.as_str(), config_u64(r, "bench_round")))
        .collect();
    assert_eq!(
        order,
        [("A", 1), ("B", 1), ("B", 2), ("A", 2), ("A", 3), ("B", 3)]
    );
    let starts: Vec<u64> = all_runs
        .iter()
        .map(|r| r.started_unix_ms.expect("run start"))
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
    // Two instances: one port each.
    let url = |r: &reports::RunResult| config(r)["bench_url"].as_str().unwrap().to_string();
    assert_ne!(url(&all_runs[0]), url(&all_runs[1]));
    for r in &all_runs {
        assert!(r.requests > 0 && r.errors.total() == 0, "{r:?}");
        assert!(r.server_cpu_s.is_some(), "no server CPU for {}", r.target);
    }
    for (path, side) in [(&a, "A"), (&b, "B")] {
        let runs = read(path).runs;
        assert_eq!(runs.len(), 3, "{path:?}");
        assert!(runs.iter().all(|r| r.target == side), "{path:?}");
    }
    // The three files are one bench: one run id.
    let id = read(&all).identity.run_id.expect("no run_id");
    for path in [&a, &b] {
        assert_eq!(read(path).identity.run_id.as_ref(), Some(&id), "{path:?}");
    }

    let pids = started_pids(&out.stderr);
    assert_eq!(pids.len(), 2, "{}", out.stderr);
    assert_ne!(pids[0], pids[1]);
    for pid in pids {
        assert!(process_gone(pid), "server {pid} still exists after bench");
    }

    let gate = [
        "gate",
        "--baseline",
        a.to_str().unwrap(),
        "--candidate",
        b.to_str().unwrap(),
    ];
    let out = loadgen(&gate, Duration::from_secs(30));
    assert!(matches!(out.code(), 0 | 3), "{out:?}");
    assert!(out.stdout.contains("plaintext  (3 pairs)"), "{out:?}");
    for f in [all, a, b] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn aa_starts_the_command_twice() {
    let (a, b) = (tmp("aa-a.json"), tmp("aa-b.json"));
    let cmd = serve_cmd();
    let args = [
        "bench",
        "--aa",
        &cmd,
        "--name-a",
        "first",
        "--name-b",
        "second",
        "--workload",
        "plaintext",
        "-d",
        "300ms",
        "--repeat",
        "1",
        "--json-a",
        a.to_str().unwrap(),
        "--json-b",
        b.to_str().unwrap(),
    ];
    let out = loadgen_ok(&args);
    let (ra, rb) = (read(&a).runs, read(&b).runs);
    assert_eq!((ra.len(), rb.len()), (1, 1));
    assert_eq!(
        (ra[0].target.as_str(), rb[0].target.as_str()),
        ("first", "second")
    );
    assert_eq!(
        config(&ra[0])["bench_target"],
        config(&rb[0])["bench_target"]
    );
    assert_ne!(config(&ra[0])["bench_url"], config(&rb[0])["bench_url"]);
    let pids = started_pids(&out.stderr);
    assert_eq!(pids.len(), 2, "{}", out.stderr);
    assert_ne!(pids[0], pids[1], "one instance per side");
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
}

#[test]
fn usage_errors_are_one_line() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["bench", "--workload", "plain"],
            "use one of plaintext, pipelined-16, churn, post-4k, response-1m, idle-active",
        ),
        (&["bench", "--json-a", "x.json"], "--ab"),
        (&["bench", "--aa", "./server"], "{addr}"),
        (
            &["bench", "--aa", "embedded", "--name-b", "A"],
            "different names",
        ),
    ];
    for (args, want) in cases {
        let out = loadgen(args, Duration::from_secs(10));
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{args:?}: {out:?}");
        assert!(out.stderr.contains(want), "{args:?}: {out:?}");
    }
}

#[test]
fn a_command_that_never_listens_fails_within_the_deadline_and_is_killed() {
    // A unique sleep, to find the process afterwards.
    let marker = format!("59.{}", std::process::id());
    let cmd = format!("sleep {marker} # {{addr}}");
    let args = [
        "bench",
        "--aa",
        &cmd,
        "--start-timeout",
        "1s",
        "--workload",
        "plaintext",
    ];
    let t = Instant::now();
    let out = loadgen(&args, Duration::from_secs(20));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("did not accept connections") && out.stderr.contains("within 1.0 s"),
        "{out:?}"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// bench picks the port a command binds just before starting it; a server that lost
/// it to another process meanwhile ("Address already in use") is started again on
/// another port.
#[test]
fn a_command_that_lost_its_port_is_started_again_on_another() {
    let flag = tmp("lost-port-flag");
    let script = tmp("lost-port.sh");
    let _ = std::fs::remove_file(&flag);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ -e {flag} ] && exec {exe} serve --addr \"$1\" --workers 1\ntouch {flag}; echo 'bind: Address already in use' >&2; exit 1\n",
            flag = flag.display(),
            exe = env!("CARGO_BIN_EXE_loadgen")
        ),
    )
    .unwrap();
    let cmd = format!("sh {} {{addr}}", script.display());
    let json = tmp("lost-port.json");
    let out = loadgen(
        &[
            "bench",
            "--target",
            &cmd,
            "--workload",
            "plaintext",
            "-d",
            "300ms",
            "--json",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(flag.exists(), "the first start never ran");
    assert_eq!(started_pids(&out.stderr).len(), 1, "{out:?}");
    assert!(read(&json).runs.iter().all(|r| r.requests > 0));
    for p in [&flag, &script, &json] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn idle_active_holds_idle_connections_while_active_ones_run() {
    let json = tmp("idle.json");
    let args = [
        "bench",
        "--workload",
        "idle-active",
        "--idle",
        "300",
        "-d",
        "300ms",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
    ];
    loadgen_ok(&args);
    let runs = read(&json).runs;
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.workload, "idle-active");
    assert!(r.requests > 0 && r.errors.total() == 0, "{r:?}");
    assert_eq!(config_u64(r, "connections"), 8, "{:?}", r.config);
    // Every idle connection had a request answered before the run and another after
    // it: the server accepted and kept all of them while the active ones ran.
    assert_eq!(config_u64(r, "idle_requested"), 300);
    assert_eq!(config_u64(r, "idle_connections"), 300);
    assert_eq!(config_u64(r, "idle_answered_after"), 300);
    assert!(
        r.warnings.iter().all(|w| w.kind != "idle"),
        "{:?}",
        r.warnings
    );
    let _ = std::fs::remove_file(json);
}

#[test]
fn nginx_target_when_installed() {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("nginx").is_file()))
        .unwrap_or(false);
    if !on_path {
        eprintln!("skipped: nginx is not on PATH (install nginx-light to run this test)");
        return;
    }
    let json = tmp("nginx.json");
    let args = [
        "bench",
        "--target",
        "nginx",
        "--workload",
        "plaintext",
        "--workload",
        "post-4k",
        "--workload",
        "response-1m",
        "-d",
        "300ms",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
    ];
    let out = loadgen_ok(&args);
    let runs = read(&json).runs;
    let names: Vec<&str> = runs.iter().map(|r| r.workload.as_str()).collect();
    assert_eq!(names, ["plaintext", "response-1m"], "post-4k is skipped");
    assert!(out.stdout.contains("skipped: post-4k on nginx"), "{out:?}");
    for r in &runs {
        assert!(r.requests > 0 && r.errors.total() == 0, "{r:?}");
        assert!(r.server_cpu_s.is_some());
        assert_eq!(
            config(r)["bench_skipped_workloads"],
            serde_json::json!(["post-4k"])
        );
    }
    // 13-byte bodies for `/`, 1 MiB for `/big`.
    let per_request = |r: &reports::RunResult| r.bytes_read / r.requests;
    assert!(
        (13..1024).contains(&per_request(&runs[0])),
        "{}",
        per_request(&runs[0])
    );
    assert!(
        per_request(&runs[1]) >= 1 << 20,
        "{}",
        per_request(&runs[1])
    );
    for pid in started_pids(&out.stderr) {
        assert!(process_gone(pid), "nginx {pid} still exists after bench");
    }
    let _ = std::fs::remove_file(json);
}

#[test]
fn serve_fault_names_are_checked() {
    let out = loadgen(
        &["serve", "--addr", "127.0.0.1:0", "--fault", "burn-cpu-typo"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    if cfg!(feature = "faults") {
        assert!(
            out.stderr.contains("unknown fault") && out.stderr.contains("burn-cpu"),
            "{out:?}"
        );
    } else {
        assert!(out.stderr.contains("faults build"), "{out:?}");
    }
}
