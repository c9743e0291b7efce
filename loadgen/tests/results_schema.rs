//! The results file is a product: real `loadgen run --json` output, closed and open
//! model, validates against the checked-in JSON Schema
//! (`reports/schema/loadgen.result.v1.json`), and the schema is strict enough to
//! reject a damaged document.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use engine::{Request, Response};
use jsonschema::Validator;
use serde_json::{json, Value};

use common::{loadgen, EngineServer};

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.result.v1.json"
);

fn schema() -> Value {
    let text = std::fs::read_to_string(SCHEMA_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn validator() -> Validator {
    common::schema_validator(SCHEMA_PATH)
}

#[track_caller]
fn assert_valid(v: &Validator, doc: &Value) {
    common::assert_schema_valid(v, doc, SCHEMA_PATH);
}

#[track_caller]
fn assert_rejected(v: &Validator, doc: &Value, what: &str) {
    assert!(
        !v.is_valid(doc),
        "the schema accepts a document with {what}"
    );
}

/// Loads a fresh engine for about a second with `extra` flags; returns the results file.
fn real_results(name: &str, extra: &[&str]) -> Value {
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    });
    let url = server.url();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("results-schema-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let file = path.to_str().unwrap();
    let mut args = vec!["run", &url, "-c", "4", "-d", "1s", "--json", file];
    args.extend_from_slice(extra);
    let out = loadgen(&args, Duration::from_secs(60));
    assert_eq!(out.code(), 0, "loadgen {args:?} failed: {out:?}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("--json {file} was not written ({e}): {out:?}"));
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("--json {file} is not JSON: {e}"))
}

/// The serde structs read back what the binary wrote.
#[track_caller]
fn round_trips(doc: &Value) -> reports::Results {
    let r: reports::Results = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("results file does not deserialise into Results: {e}"));
    assert_eq!(&serde_json::to_value(&r).unwrap(), doc);
    r
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema()) {
        panic!("{SCHEMA_PATH} is not a valid draft 2020-12 schema: {e}");
    }
}

#[test]
fn a_closed_model_run_validates_and_damage_is_rejected() {
    let v = validator();
    let doc = real_results("closed", &[]);
    assert_valid(&v, &doc);
    let r = round_trips(&doc);
    assert_eq!(r.schema, reports::RESULT_SCHEMA);
    assert_eq!(r.runs.len(), 1);
    let run = &r.runs[0];
    assert!(run.requests > 0, "no request succeeded: {:?}", run.errors);
    assert!(run.open_model.is_none());
    assert_eq!(run.latency_corrected.count, run.requests);

    // The schema must be able to fail: each damage on its own is rejected.
    let damaged = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d
    };
    let run0 = |d: &mut Value| -> serde_json::Map<String, Value> {
        d["runs"][0].as_object().unwrap().clone()
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "a missing required field (runs[0].requests)",
            damaged(&|d| {
                let mut r = run0(d);
                r.remove("requests");
                d["runs"][0] = Value::Object(r);
            }),
        ),
        (
            "a missing nullable field (runs[0].open_model)",
            damaged(&|d| {
                let mut r = run0(d);
                r.remove("open_model");
                d["runs"][0] = Value::Object(r);
            }),
        ),
        (
            "a wrong type (duration_s as a string)",
            damaged(&|d| d["runs"][0]["duration_s"] = json!("1s")),
        ),
        (
            "a negative count",
            damaged(&|d| d["runs"][0]["errors"]["reset"] = json!(-1)),
        ),
        (
            "a fractional count",
            damaged(&|d| d["runs"][0]["latency_corrected"]["p99_us"] = json!(1.5)),
        ),
        (
            "an unknown field in a fixed object",
            damaged(&|d| d["runs"][0]["errors"]["teapot"] = json!(0)),
        ),
        (
            "another schema id",
            damaged(&|d| d["schema"] = json!("loadgen.result/v2")),
        ),
        (
            "a histogram that is not base64",
            damaged(&|d| d["runs"][0]["histogram_corrected"] = json!("not base64!")),
        ),
        (
            "a start time that is not RFC 3339",
            damaged(&|d| d["started_at"] = json!("yesterday")),
        ),
        (
            "null where a value is required",
            damaged(&|d| d["host"]["kernel"] = Value::Null),
        ),
    ];
    for (what, d) in &cases {
        assert_rejected(&v, d, what);
    }
    // `config` is open: new settings need no schema change.
    let extended = damaged(&|d| d["runs"][0]["config"]["future_flag"] = json!(true));
    assert_valid(&v, &extended);
}

#[test]
fn every_run_has_a_run_id_that_older_files_may_lack_and_shards_need() {
    let v = validator();
    let doc = real_results("identity", &[]);
    let r = round_trips(&doc);
    let id = r.identity.run_id.as_deref().expect("a run without run_id");
    assert!(r.identity.shard.is_none());
    let other = round_trips(&real_results("identity-2", &["-t", "1"]));
    assert_ne!(
        other.identity.run_id.as_deref(),
        Some(id),
        "two runs, one id"
    );
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut m = doc.as_object().unwrap().clone();
        f(&mut m);
        Value::Object(m)
    };
    // A file written before run ids existed still validates and reads.
    let old = with(&|m| {
        m.remove("run_id");
    });
    assert_valid(&v, &old);
    assert_eq!(round_trips(&old).identity, reports::RunIdentity::default());
    // A shard of a run validates and reads.
    let shard = with(&|m| {
        m.insert("shard".into(), json!({"index": 1, "count": 3}));
    });
    assert_valid(&v, &shard);
    let s = round_trips(&shard).identity.shard.unwrap();
    assert_eq!((s.index, s.count), (1, 3));
    let cases: Vec<(&str, Value)> = vec![
        (
            "a run id with a space",
            with(&|m| {
                m.insert("run_id".into(), json!("run 1"));
            }),
        ),
        (
            "a run id starting with '-'",
            with(&|m| {
                m.insert("run_id".into(), json!("-x"));
            }),
        ),
        (
            "a window without its clock offset",
            with(&|m| {
                m.insert(
                    "window".into(),
                    json!({"start_unix_ns": 1, "end_unix_ns": 2, "clock_offset_source": "x"}),
                );
            }),
        ),
        (
            "a shard without a run id",
            with(&|m| {
                m.remove("run_id");
                m.insert("shard".into(), json!({"index": 0, "count": 2}));
            }),
        ),
        (
            "a shard without its count",
            with(&|m| {
                m.insert("shard".into(), json!({"index": 0}));
            }),
        ),
        (
            "a shard count of 0",
            with(&|m| {
                m.insert("shard".into(), json!({"index": 0, "count": 0}));
            }),
        ),
        (
            "an unknown field in the shard",
            with(&|m| {
                m.insert("shard".into(), json!({"index": 0, "count": 2, "of": 2}));
            }),
        ),
    ];
    for (what, d) in &cases {
        assert_rejected(&v, d, what);
    }
}

#[test]
fn a_shard_records_its_run_id_share_and_window() {
    let v = validator();
    let args = ["--rate", "300", "--shard", "1/3", "--start-at", "+3s"];
    let doc = real_results("shard", &[&args[..], &["--run-id", "load-7"]].concat());
    assert_valid(&v, &doc);
    let r = round_trips(&doc);
    assert_eq!(r.identity.run_id.as_deref(), Some("load-7"));
    let s = r.identity.shard.unwrap();
    assert_eq!((s.index, s.count), (1, 3));
    let w = r.identity.window.expect("a shard without its window");
    let measured = (w.end_unix_ns - w.start_unix_ns) as f64 / 1e9;
    assert!((measured - r.runs[0].duration_s).abs() < 0.01, "{w:?}");
    // The start leaves time to probe the server's date header: same host, same clock.
    let offset = w.clock_offset_ns.expect(&w.clock_offset_source);
    assert!(offset.abs() < 100_000_000, "offset {offset} ns: {w:?}");
    assert!(w.clock_offset_source.starts_with("date header"), "{w:?}");
    let run = &r.runs[0];
    // The label is the whole run's; the settings hold the share and the totals.
    assert_eq!(run.workload, "GET /, 4 conns, open 300/s");
    let set = &run.config.settings;
    assert_eq!(set["connections"], json!(1));
    assert_eq!(set["rate_per_s"], json!(100.0));
    assert_eq!(set["total_connections"], json!(4));
    assert_eq!(
        (set["shard_index"].clone(), set["shard_count"].clone()),
        (json!(1), json!(3))
    );
    // Without --run-id a relative start cannot give the shards one id.
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    });
    let url = server.url();
    let out = loadgen(
        &[&["run", &url, "-d", "1s"], &args[..]].concat(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 2, "{out:?}");
    let err = &out.stderr;
    assert!(
        err.contains("--run-id") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn an_open_model_run_validates() {
    let v = validator();
    let doc = real_results("open", &["--rate", "200"]);
    assert_valid(&v, &doc);
    let r = round_trips(&doc);
    let run = &r.runs[0];
    let open = run
        .open_model
        .as_ref()
        .expect("--rate run without open_model figures");
    assert_eq!(open.rate_per_s, 200.0);
    assert_eq!(open.arrivals, "fixed");
    assert!(run.requests > 0, "no request succeeded: {:?}", run.errors);
    let mut bad = doc.clone();
    bad["runs"][0]["open_model"]["arrivals"] = json!("bursty");
    assert_rejected(&v, &bad, "an unknown arrivals kind");
}
