//! `loadgen report` and `loadgen merge` on real `loadgen run` output: the report is
//! self-contained and has its table; a merge adds histograms exactly and refuses runs
//! that did not happen at the same time.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use engine::{Request, Response};
use reports::histogram;

use common::{loadgen, EngineServer};

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("report-cli-{name}-{}", std::process::id()))
}

/// Two `loadgen run`s at the same time against one engine; returns their files.
fn two_concurrent_runs(name: &str) -> (PathBuf, PathBuf) {
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    });
    let url = server.url();
    let paths = (
        tmp(&format!("{name}-a.json")),
        tmp(&format!("{name}-b.json")),
    );
    std::thread::scope(|s| {
        for path in [&paths.0, &paths.1] {
            let url = &url;
            s.spawn(move || {
                let file = path.to_str().unwrap();
                let args = [
                    "run", url, "-c", "2", "-t", "1", "-d", "1s", "-q", "--json", file,
                ];
                let out = loadgen(&args, Duration::from_secs(60));
                assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");
            });
        }
    });
    paths
}

fn read_results(path: &PathBuf) -> reports::Results {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn report_writes_a_self_contained_page_plots_and_a_summary_table() {
    let (a, b) = two_concurrent_runs("report");
    let dir = tmp("report-out");
    let _ = std::fs::remove_dir_all(&dir);
    let scenarios = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/tests/fixtures/scenarios.json"
    );
    let args = [
        "report",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        scenarios,
        "--out",
        dir.to_str().unwrap(),
    ];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "{out:?}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for external in ["http://", "https://", "src=\"//", "<link"] {
        assert!(!html.contains(external), "index.html holds {external:?}");
    }
    for stem in ["spectrum", "timeline", "comparison", "verdicts"] {
        for ext in ["png", "svg"] {
            let f = dir.join(format!("{stem}.{ext}"));
            assert!(
                std::fs::metadata(&f).is_ok_and(|m| m.len() > 1000),
                "{}",
                f.display()
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| target | workload | runs | req/s (95 % CI) | p50 | p99 | errors |"),
        "{md}"
    );
    // Both runs are repeats of one target and workload: one row, 2 runs.
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 1, "{md}");
    assert!(rows[0].contains(" | 2 | "), "{md}");
    // No links to the plot files: they would not resolve in a pull-request comment.
    assert!(!md.contains("]("), "{md}");
}

#[test]
fn report_errors_are_one_line() {
    let missing = tmp("missing.json");
    let out = loadgen(
        &["report", missing.to_str().unwrap(), "--out", "/tmp"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("cannot read"), "{out:?}");

    let wrong = tmp("wrong-schema.json");
    std::fs::write(&wrong, r#"{"schema": "something/v9"}"#).unwrap();
    let out = loadgen(
        &["report", wrong.to_str().unwrap(), "--out", "/tmp"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("\"something/v9\""), "{out:?}");

    // A directory below a regular file cannot be created.
    let bad_dir = wrong.join("sub");
    let scenarios = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/tests/fixtures/scenarios.json"
    );
    let results = PathBuf::from(scenarios);
    let out = loadgen(
        &[
            "report",
            results.to_str().unwrap(),
            "--out",
            bad_dir.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
}

#[test]
fn merge_adds_histograms_and_refuses_runs_at_different_times() {
    let (a, b) = two_concurrent_runs("merge");
    let merged = tmp("merged.json");
    let args = [
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "{out:?}");

    let (ra, rb, rm) = (read_results(&a), read_results(&b), read_results(&merged));
    assert_eq!(rm.runs.len(), 1);
    let (x, y, m) = (&ra.runs[0], &rb.runs[0], &rm.runs[0]);
    let hist = |s: &str| histogram::decode(s).unwrap();
    let (hx, hy, hm) = (
        hist(&x.histogram_corrected),
        hist(&y.histogram_corrected),
        hist(&m.histogram_corrected),
    );
    assert_eq!(hm.len(), hx.len() + hy.len());
    let (p_lo, p_hi) = {
        let (p, q) = (hx.value_at_quantile(0.99), hy.value_at_quantile(0.99));
        (p.min(q), p.max(q))
    };
    let p = hm.value_at_quantile(0.99);
    assert!(
        (p_lo..=p_hi).contains(&p),
        "merged p99 {p} outside [{p_lo}, {p_hi}]"
    );
    assert_eq!(m.latency_corrected.count, hm.len());
    assert_eq!(m.requests, x.requests + y.requests);
    assert!((m.requests_per_s - (x.requests_per_s + y.requests_per_s)).abs() < 1e-6);
    let tl = |r: &reports::RunResult| r.timeline.iter().map(|p| p.requests).sum::<u64>();
    assert_eq!(tl(m), tl(x) + tl(y));

    // The same run shifted a minute later did not happen at the same time.
    let mut late = rb.clone();
    late.started_unix_ms += 60_000;
    for r in &mut late.runs {
        r.started_unix_ms = r.started_unix_ms.map(|s| s + 60_000);
    }
    let late_path = tmp("late.json");
    std::fs::write(&late_path, serde_json::to_string(&late).unwrap()).unwrap();
    let args = [
        "merge",
        a.to_str().unwrap(),
        late_path.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("did not run at the same time"),
        "{out:?}"
    );
}
