//! The counters document is a product too: real `loadgen counters --json` output and
//! the committed baseline (`ci/counters.json`) validate against the checked-in JSON
//! Schema (`reports/schema/loadgen.counters.v1.json`), and the schema is strict enough
//! to reject a damaged document.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use jsonschema::Validator;
use serde_json::{json, Value};

use common::loadgen;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.counters.v1.json"
);

fn validator() -> Validator {
    common::schema_validator(SCHEMA_PATH)
}

#[track_caller]
fn assert_valid(v: &Validator, doc: &Value) {
    common::assert_schema_valid(v, doc, SCHEMA_PATH);
}

fn read(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: not JSON: {e}"))
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let text = std::fs::read_to_string(SCHEMA_PATH).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{SCHEMA_PATH} is not a valid draft 2020-12 schema: {e}");
    }
}

#[test]
fn real_output_and_the_baseline_validate_and_damage_is_rejected() {
    let v = validator();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("counters-schema-{}.json", std::process::id()));
    let out = loadgen(
        &["counters", "--json", path.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let doc = read(&path);
    let _ = std::fs::remove_file(&path);
    assert_valid(&v, &doc);
    assert_eq!(doc["schema"], json!("loadgen.counters/v1"));
    assert!(
        doc["workloads"].as_array().is_some_and(|w| w.len() >= 3),
        "{doc}"
    );
    let baseline = read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ci/counters.json"));
    assert_valid(&v, &baseline);

    let damaged = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d
    };
    let without = |key: &'static str| {
        move |d: &mut Value| {
            d["workloads"][0].as_object_mut().unwrap().remove(key);
        }
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "another schema id",
            damaged(&|d| d["schema"] = json!("loadgen.counters/v2")),
        ),
        (
            "a missing workloads array",
            damaged(&|d| {
                d.as_object_mut().unwrap().remove("workloads");
            }),
        ),
        ("a workload without requests", damaged(&without("requests"))),
        ("a workload without counters", damaged(&without("counters"))),
        ("a workload without a name", damaged(&without("name"))),
        (
            "zero requests (the divisor)",
            damaged(&|d| d["workloads"][0]["requests"] = json!(0)),
        ),
        (
            "a negative counter",
            damaged(&|d| d["workloads"][0]["counters"]["read"] = json!(-1)),
        ),
        (
            "a fractional counter",
            damaged(&|d| d["workloads"][0]["counters"]["read"] = json!(1.5)),
        ),
        (
            "a counter as a string",
            damaged(&|d| d["workloads"][0]["counters"]["read"] = json!("1000")),
        ),
        (
            "a time-dependent counter",
            damaged(&|d| d["workloads"][0]["counters"]["epoll_wait_empty"] = json!(3)),
        ),
        (
            "no allocations counter",
            damaged(&|d| {
                d["workloads"][0]["counters"]
                    .as_object_mut()
                    .unwrap()
                    .remove("allocations");
            }),
        ),
        (
            "an unknown field in a workload",
            damaged(&|d| d["workloads"][0]["per_request"] = json!(true)),
        ),
        (
            "an unknown top-level field",
            damaged(&|d| d["host"] = json!("x")),
        ),
    ];
    for (what, d) in &cases {
        assert!(!v.is_valid(d), "the schema accepts a document with {what}");
    }
    // A new syscall kind needs no schema change.
    let extended = damaged(&|d| d["workloads"][0]["counters"]["recvmsg"] = json!(0));
    assert_valid(&v, &extended);
}
