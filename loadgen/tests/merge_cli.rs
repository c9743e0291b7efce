//! `loadgen merge` on real `loadgen run` output refuses a run given twice (one file
//! twice, a copy, two files of one run id) and an incomplete or duplicated set of
//! shards, each with exit 2 and one line naming the files; and it labels the merged run
//! with the total connections (closed model) and the total offered rate (open model).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::{Request, Response};
use serde_json::{json, Value};

use common::{loadgen, EngineServer, Output};

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("merge-cli-{name}-{}", std::process::id()))
}

/// Two `loadgen run`s at the same time against one engine, with `extra` flags; returns
/// their files.
fn two_concurrent_runs(name: &str, extra: &[&str]) -> [PathBuf; 2] {
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    });
    let url = server.url();
    let paths = [
        tmp(&format!("{name}-a.json")),
        tmp(&format!("{name}-b.json")),
    ];
    std::thread::scope(|s| {
        for path in &paths {
            let url = &url;
            s.spawn(move || {
                let file = path.to_str().unwrap();
                let mut args = vec!["run", url, "-t", "1", "-d", "1s", "-q", "--json", file];
                args.extend_from_slice(extra);
                let out = loadgen(&args, Duration::from_secs(60));
                assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");
            });
        }
    });
    paths
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn write(name: &str, doc: &Value) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    path
}

fn merge(files: &[&Path], out: &Path) -> Output {
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    loadgen(&args, Duration::from_secs(60))
}

/// A usage error: exit 2, one line on stderr with every one of `want`, no file written.
#[track_caller]
fn refused(out: &Output, merged: &Path, want: &[&str]) {
    assert_eq!(out.code(), 2, "{out:?}");
    let err = out.stderr.trim_end();
    assert!(!err.contains('\n'), "not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
    assert!(!merged.exists(), "wrote {} anyway", merged.display());
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_run_given_twice_is_refused_naming_both_files() {
    let [a, b] = two_concurrent_runs("twice", &["-c", "2"]);
    let merged = tmp("twice-merged.json");
    let _ = std::fs::remove_file(&merged);
    let (da, db) = (read(&a), read(&b));
    // Every run writes a run id of its own.
    let (ida, idb) = (
        da["run_id"].as_str().unwrap(),
        db["run_id"].as_str().unwrap(),
    );
    assert_eq!(ida.len(), 36, "{ida}");
    assert_ne!(ida, idb);

    // The same path twice, also under another name.
    let out = merge(&[&a, &a], &merged);
    refused(&out, &merged, &["same file", &name(&a)]);
    let dotted = a.parent().unwrap().join(".").join(a.file_name().unwrap());
    let out = merge(&[&a, &b, &dotted], &merged);
    refused(&out, &merged, &["same file", &name(&a), &name(&dotted)]);

    // A copy of the file.
    let copy = write("twice-copy.json", &da);
    let out = merge(&[&a, &copy], &merged);
    refused(&out, &merged, &["same results", &name(&a), &name(&copy)]);

    // The same run id with the same target and workload: the run again, edited.
    let mut edited = da.clone();
    edited["runs"][0]["requests"] = json!(edited["runs"][0]["requests"].as_u64().unwrap() + 1);
    let edited = write("twice-edited.json", &edited);
    let out = merge(&[&b, &a, &edited], &merged);
    refused(
        &out,
        &merged,
        &[&format!("both run {ida}"), &name(&a), &name(&edited)],
    );

    // The two different runs merge, under a new run id.
    let out = merge(&[&a, &b], &merged);
    assert_eq!(out.code(), 0, "{out:?}");
    let m = read(&merged);
    let id = m["run_id"].as_str().unwrap();
    assert!(id != ida && id != idb && id.len() == 36, "{id}");
    assert_eq!(m["runs"][0]["config"]["merged_runs"], json!(2));
}

/// `doc` as shard `index` of `count` of run `id`.
fn as_shard(doc: &Value, id: &str, index: u32, count: u32) -> Value {
    let mut d = doc.clone();
    d["run_id"] = json!(id);
    d["shard"] = json!({"index": index, "count": count});
    d
}

#[test]
fn shards_must_all_be_there_once() {
    let [a, b] = two_concurrent_runs("shards", &["-c", "2"]);
    let merged = tmp("shards-merged.json");
    let _ = std::fs::remove_file(&merged);
    let (da, db) = (read(&a), read(&b));
    let id = "0b5e3a4c-7d1f-4e2a-9c3b-5a6d7e8f9012";

    let s0 = write("shard-0of3.json", &as_shard(&da, id, 0, 3));
    let s2 = write("shard-2of3.json", &as_shard(&db, id, 2, 3));
    let out = merge(&[&s0, &s2], &merged);
    refused(
        &out,
        &merged,
        &["shard 1 of 3 is missing", id, &name(&s0), &name(&s2)],
    );

    let s0b = write("shard-0of2-b.json", &as_shard(&db, id, 0, 2));
    let s0a = write("shard-0of2-a.json", &as_shard(&da, id, 0, 2));
    let out = merge(&[&s0a, &s0b], &merged);
    refused(
        &out,
        &merged,
        &["both shard 0 of 2", &name(&s0a), &name(&s0b)],
    );

    let s1of3 = write("shard-1of3.json", &as_shard(&db, id, 1, 3));
    let out = merge(&[&s0a, &s1of3], &merged);
    refused(
        &out,
        &merged,
        &["shards of run", &name(&s0a), &name(&s1of3)],
    );

    // A shard of another run among them is foreign.
    let other = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
    let foreign = write("shard-1of2-foreign.json", &as_shard(&db, other, 1, 2));
    let out = merge(&[&s0a, &foreign], &merged);
    refused(
        &out,
        &merged,
        &[
            "foreign shard",
            "shard 1 of 2",
            other,
            &name(&foreign),
            &name(&s0a),
        ],
    );

    // Shards whose recorded windows are further apart than the tolerance.
    let window = |d: &Value, start_s: u64| {
        let mut d = d.clone();
        let ns = start_s * 1_000_000_000;
        d["window"] = json!({"start_unix_ns": ns, "end_unix_ns": ns + 1_000_000_000,
            "clock_offset_ns": null, "clock_offset_source": "unknown"});
        d
    };
    let w0 = write("shard-0of2-w.json", &window(&as_shard(&da, id, 0, 2), 100));
    let w1 = write("shard-1of2-w.json", &window(&as_shard(&db, id, 1, 2), 105));
    let out = merge(&[&w0, &w1], &merged);
    refused(
        &out,
        &merged,
        &["different windows", "(shard 1)", &name(&w0), &name(&w1)],
    );

    // Both shards of a split in two: merged, keeping the run's id, no shard.
    let s1 = write("shard-1of2.json", &as_shard(&db, id, 1, 2));
    let out = merge(&[&s1, &s0a], &merged);
    assert_eq!(out.code(), 0, "{out:?}");
    let m = read(&merged);
    assert_eq!(m["run_id"], json!(id));
    assert!(m.get("shard").is_none(), "{}", m["shard"]);
    let requests = |d: &Value| d["runs"][0]["requests"].as_u64().unwrap();
    assert_eq!(requests(&m), requests(&da) + requests(&db));
}

#[test]
fn the_merged_label_gives_the_total_connections_and_rate() {
    let merged = tmp("label-merged.json");
    let [a, b] = two_concurrent_runs("closed", &["-c", "8"]);
    let out = merge(&[&a, &b], &merged);
    assert_eq!(out.code(), 0, "{out:?}");
    let run = &read(&merged)["runs"][0];
    assert_eq!(
        read(&a)["runs"][0]["workload"],
        json!("GET /, 8 conns, closed p1")
    );
    assert_eq!(run["workload"], json!("GET /, 16 conns, closed p1"));
    assert_eq!(run["config"]["connections"], json!(16));
    assert_eq!(run["config"]["threads"], json!(2));

    let [a, b] = two_concurrent_runs("open", &["-c", "4", "--rate", "150"]);
    let out = merge(&[&a, &b], &merged);
    assert_eq!(out.code(), 0, "{out:?}");
    let run = &read(&merged)["runs"][0];
    assert_eq!(
        read(&a)["runs"][0]["workload"],
        json!("GET /, 4 conns, open 150/s")
    );
    assert_eq!(run["workload"], json!("GET /, 8 conns, open 300/s"));
    assert_eq!(run["config"]["rate_per_s"], json!(300.0));
    assert_eq!(run["open_model"]["rate_per_s"], json!(300.0));
}
