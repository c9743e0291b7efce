//! `loadgen scenario --json FILE` is a product: real output validates against the
//! checked-in JSON Schema (`reports/schema/loadgen.scenarios.v1.json`), reads back
//! into the serde structs, and the schema rejects a damaged document.

mod common;
mod scenario_file;

use std::path::PathBuf;

use jsonschema::Validator;
use reports::scenarios::{ScenarioResults, VerdictKind, SCENARIOS_SCHEMA};
use serde_json::{json, Value};

use scenario_file::scenario_file;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.scenarios.v1.json"
);

fn validator() -> Validator {
    common::schema_validator(SCHEMA_PATH)
}

#[track_caller]
fn assert_valid(v: &Validator, doc: &Value) {
    common::assert_schema_valid(v, doc, SCHEMA_PATH);
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenarios-{name}-{}.json", std::process::id()))
}

/// Runs `loadgen scenario <args> --json FILE`; returns the exit code and the file.
fn real_results(name: &str, args: &[&str]) -> (i32, Value) {
    let (code, text, file) = scenario_file(name, "--json", "json", args);
    let doc =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("--json {file} is not JSON: {e}"));
    (code, doc)
}

#[test]
fn real_output_validates_and_reads_back() {
    let v = validator();
    let (code, doc) = real_results("modulo", &["modulo", "engine.type", "--repeat", "2"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_valid(&v, &doc);
    let r: ScenarioResults = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("does not deserialise into ScenarioResults: {e}"));
    assert_eq!(r.schema, SCENARIOS_SCHEMA);
    assert_eq!(r.tool.name, "loadgen");
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.repeat, 2);
    assert!(r.expectations.is_none());
    let ids: Vec<&str> = r.scenarios.iter().map(|s| s.id.as_str()).collect();
    // Registry order, whatever the order of the selectors.
    assert_eq!(ids[0], "engine.type");
    assert!(
        ids[1..].iter().all(|id| id.starts_with("select.")),
        "{ids:?}"
    );
    assert_eq!(r.totals.scenarios as usize, ids.len());
    assert_eq!(r.totals.pass as usize, ids.len());
    for s in &r.scenarios {
        assert_eq!(s.verdict, VerdictKind::Pass, "{}", s.id);
        assert_eq!(s.runs.len(), 2, "{}", s.id);
        assert!(!s.clause.is_empty() && !s.expected.is_empty(), "{}", s.id);
        let sum: f64 = s.runs.iter().map(|r| r.duration_ms).sum();
        assert!(
            (sum - s.duration_ms).abs() < 0.01,
            "{}: runs do not add up",
            s.id
        );
    }
    let modulo = r
        .scenarios
        .iter()
        .find(|s| s.id == "select.modulo")
        .unwrap();
    assert!(modulo.aliases.contains(&"modulo".to_string()));
    assert_eq!(modulo.level, "MUST");
}

#[test]
fn expectations_and_fault_fields_are_written() {
    let v = validator();
    let exp = tmp("expect").with_extension("tsv");
    std::fs::write(&exp, "engine.type\tnon-strict\ta listed deviation\n").unwrap();
    let (code, doc) = real_results(
        "expect",
        &["engine.type", "--serial", "--expect", exp.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&exp);
    assert_eq!(code, 1, "an unexpected pass must exit 1: {doc:#}");
    assert_valid(&v, &doc);
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["parallel"], 1);
    assert_eq!(
        doc["expectations"]["differences"],
        json!([{ "id": "engine.type", "allowed": ["non-strict"], "seen": ["pass"] }])
    );
}

/// What is wrong with the document, and how to break it so.
type Damage = (&'static str, fn(&mut Value));

#[test]
fn the_schema_rejects_damaged_documents() {
    let v = validator();
    let (_, doc) = real_results("damaged", &["engine.type"]);
    assert_valid(&v, &doc);
    let damaged: [Damage; 7] = [
        ("another schema id", |d| {
            d["schema"] = json!("loadgen.result/v1")
        }),
        ("a missing host", |d| {
            d.as_object_mut().unwrap().remove("host");
        }),
        ("an unknown verdict", |d| {
            d["scenarios"][0]["verdict"] = json!("passed")
        }),
        ("an unknown top-level field", |d| d["extra"] = json!(1)),
        ("a negative duration", |d| {
            d["scenarios"][0]["duration_ms"] = json!(-1.0)
        }),
        ("a run without its verdict", |d| {
            d["scenarios"][0]["runs"][0]
                .as_object_mut()
                .unwrap()
                .remove("verdict");
        }),
        ("exit code 3", |d| d["exit_code"] = json!(3)),
    ];
    for (what, damage) in damaged {
        let mut d = doc.clone();
        damage(&mut d);
        assert!(!v.is_valid(&d), "the schema accepts a document with {what}");
    }
}
