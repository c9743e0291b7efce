//! Results files are written whole or not at all: a command that fails before it has
//! results (a refused connection, a server that never listens, a failure half-way
//! through a bench) leaves an earlier file of the same name byte for byte as it was,
//! and no temporary file behind. A command that succeeds replaces the file whole.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{loadgen, unused_port, EngineServer};

/// A fresh directory holding `out.json` with a known earlier content.
fn dir_with_earlier_file(name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("results-kept-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.json");
    let earlier = format!("{{\"earlier\": \"{name}\"}}\n").into_bytes();
    std::fs::write(&file, &earlier).unwrap();
    (dir, file, earlier)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `args` (where `{out}` stands for the results file), which must fail with exit 2
/// and leave the earlier file as it was and nothing else in its directory.
#[track_caller]
fn fails_and_keeps(name: &str, args: &[&str], want: &str) {
    let (dir, file, earlier) = dir_with_earlier_file(name);
    let out_arg = file.to_str().unwrap();
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "{out}" { out_arg } else { a })
        .collect();
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 2, "{args:?}: {out:?}");
    assert!(out.stderr.contains(want), "{args:?}: {out:?}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        earlier,
        "{args:?} changed the earlier results file"
    );
    assert_eq!(entries(&dir), ["out.json"], "{args:?} left files behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_against_a_refused_port_keeps_the_earlier_file() {
    let dead = format!("http://127.0.0.1:{}/", unused_port());
    fails_and_keeps(
        "run",
        &["run", &dead, "-c", "2", "-d", "1s", "--json", "{out}"],
        "cannot connect",
    );
}

#[test]
fn a_sweep_against_a_refused_port_keeps_the_earlier_file() {
    let dead = format!("http://127.0.0.1:{}/", unused_port());
    fails_and_keeps(
        "sweep",
        &[
            "sweep", &dead, "--slo", "10ms", "-d", "200ms", "--json", "{out}",
        ],
        "cannot connect",
    );
}

#[test]
fn a_bench_whose_server_never_listens_keeps_the_earlier_file() {
    // A unique sleep: bench kills it when it gives up.
    let cmd = format!("sleep 59.{} # {{addr}}", std::process::id());
    fails_and_keeps(
        "bench-start",
        &[
            "bench",
            "--aa",
            &cmd,
            "--start-timeout",
            "1s",
            "--workload",
            "plaintext",
            "--json",
            "{out}",
            "--json-a",
            "{out}",
        ],
        "did not accept connections",
    );
}

#[test]
fn a_bench_that_fails_half_way_keeps_the_earlier_file() {
    // The embedded engine is measured first, then the second target refuses.
    let dead = format!("http://127.0.0.1:{}/", unused_port());
    fails_and_keeps(
        "bench-halfway",
        &[
            "bench",
            "--target",
            "embedded",
            "--target",
            &dead,
            "--workload",
            "plaintext",
            "--duration",
            "300ms",
            "--json",
            "{out}",
        ],
        "cannot connect",
    );
}

#[test]
fn a_run_that_succeeds_replaces_the_file_whole_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let server = EngineServer::start(|_: &engine::Request<'_>, res: &mut engine::Response| {
        res.body(b"ok");
    });
    let (dir, file, _) = dir_with_earlier_file("replace");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let url = server.url();
    let args = [
        "run",
        &url,
        "-c",
        "2",
        "-d",
        "300ms",
        "-q",
        "--json",
        file.to_str().unwrap(),
    ];
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "{out:?}");
    let doc: reports::Results = serde_json::from_slice(&std::fs::read(&file).unwrap())
        .unwrap_or_else(|e| {
            panic!("{}: not a results file: {e}", file.display());
        });
    assert_eq!(doc.runs.len(), 1);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file's mode was not kept");
    assert_eq!(entries(&dir), ["out.json"], "left files behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_report_that_fails_half_way_keeps_the_earlier_report() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/tests/fixtures/scenarios.json"
    );
    let (dir, _, _) = dir_with_earlier_file("report");
    let out_dir = dir.join("report");
    let out_arg = out_dir.to_str().unwrap();
    let out = loadgen(
        &["report", fixture, "--out", out_arg],
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let before = entries(&out_dir);
    assert!(before.contains(&"summary.md".to_string()), "{before:?}");
    let earlier_summary = std::fs::read(out_dir.join("summary.md")).unwrap();
    // index.html, written last, cannot be replaced: the report fails after drawing
    // every plot and writing the summary, and must put none of them in place.
    std::fs::remove_file(out_dir.join("index.html")).unwrap();
    std::fs::create_dir(out_dir.join("index.html")).unwrap();
    std::fs::write(out_dir.join("summary.md"), b"earlier").unwrap();
    let out = loadgen(
        &["report", fixture, "--out", out_arg],
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("index.html"), "{out:?}");
    assert_eq!(
        std::fs::read(out_dir.join("summary.md")).unwrap(),
        b"earlier"
    );
    assert_ne!(earlier_summary, b"earlier");
    assert_eq!(entries(&out_dir), before, "left files behind");
    std::fs::remove_dir_all(&dir).unwrap();
}
