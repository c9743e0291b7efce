//! The cost document is a product too: real `loadgen cost --json` output, alone and
//! with `--ab`, validates against the checked-in JSON Schema
//! (`reports/schema/loadgen.cost.v1.json`), and the schema is strict enough to reject a
//! damaged document. Needs valgrind and strace (`.ci/run` installs them); without them
//! the real runs are skipped, saying so, except in CI (`CI` set), where that fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use jsonschema::Validator;
use serde_json::{json, Value};

use common::loadgen;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.cost.v1.json"
);

fn validator() -> Validator {
    common::schema_validator(SCHEMA_PATH)
}

fn tools_present() -> bool {
    let present = ["valgrind", "strace"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "valgrind or strace missing in CI: .ci/run must install them"
        );
        eprintln!("cost_schema: valgrind or strace missing: real runs skipped (apt-get install valgrind strace)");
    }
    present
}

/// `loadgen cost ARGS --json F` for the keep-alive workload, read back.
fn cost(args: &[&str], name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cost-schema-{name}-{}.json", std::process::id()));
    let mut all = vec!["cost", "--workload", "keep-alive"];
    all.extend_from_slice(args);
    all.extend(["--json", path.to_str().unwrap()]);
    let out = loadgen(&all, Duration::from_secs(300));
    assert_eq!(out.code(), 0, "{out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).unwrap()
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
fn real_output_alone_and_with_ab_validates_and_damage_is_rejected() {
    if !tools_present() {
        return;
    }
    let v = validator();
    let one = cost(&[], "one");
    common::assert_schema_valid(&v, &one, SCHEMA_PATH);
    assert_eq!(one["schema"], json!("loadgen.cost/v1"));
    assert!(one.get("ab").is_none(), "{one}");
    let ab = cost(&["--ab", "embedded", "embedded"], "ab");
    common::assert_schema_valid(&v, &ab, SCHEMA_PATH);
    assert_eq!(ab["servers"].as_array().map(Vec::len), Some(2), "{ab}");
    assert!(ab["ab"]["workloads"][0]["counters"][0]["counter"] == json!("instructions"));

    type Damage = fn(&mut Value);
    let damages: [(&str, Damage); 10] = [
        ("wrong schema name", |d| {
            d["schema"] = json!("loadgen.cost/v2")
        }),
        ("no method", |d| {
            d.as_object_mut().unwrap().remove("method");
        }),
        ("unknown top-level field", |d| d["extra"] = json!(1)),
        ("no servers", |d| d["servers"] = json!([])),
        ("totals of three", |d| {
            d["servers"][0]["workloads"][0]["instructions"]["totals"] = json!([1, 2, 3])
        }),
        ("negative total", |d| {
            d["servers"][0]["workloads"][0]["allocations"]["totals"] = json!([-1, 0])
        }),
        ("per_request as a string", |d| {
            d["servers"][0]["workloads"][0]["instructions"]["per_request"] = json!("3311")
        }),
        ("a workload without syscalls", |d| {
            d["servers"][0]["workloads"][0]
                .as_object_mut()
                .unwrap()
                .remove("syscalls");
        }),
        ("an unknown verdict", |d| {
            d["ab"]["workloads"][0]["verdict"] = json!("worse")
        }),
        ("a counter of no known kind", |d| {
            d["ab"]["workloads"][0]["counters"][0]["counter"] = json!("Instructions")
        }),
    ];
    for (what, damage) in damages {
        let mut d = ab.clone();
        damage(&mut d);
        assert!(!v.is_valid(&d), "the schema accepts a document with {what}");
    }
}
