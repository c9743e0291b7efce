//! The cost document is a product too: real `loadgen cost --json` output, of one server
//! and of `--ab`, validates against the checked-in JSON Schema
//! (`reports/schema/loadgen.cost.v1.json`) and reads back into the model, and the schema
//! is strict enough to reject a damaged document. Needs valgrind and strace (as `loadgen
//! cost` does; `.ci/run` installs them): without them the real runs are skipped, saying
//! so, except in CI (`CI` set), where that fails.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonschema::Validator;
use loadgen::cost::model::{self, CostDoc, Verdict};
use serde_json::{json, Value};

use common::loadgen;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.cost.v1.json"
);

fn validator() -> Validator {
    common::schema_validator(SCHEMA_PATH)
}

#[track_caller]
fn assert_valid(v: &Validator, doc: &Value) {
    common::assert_schema_valid(v, doc, SCHEMA_PATH);
}

/// Runs `loadgen cost` with `args` and `--json`; returns the document.
/// Whether valgrind and strace are here; in CI their absence fails the test.
fn tools_present() -> bool {
    let present = ["valgrind", "strace"].iter().all(|t| {
        std::process::Command::new(t)
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

fn real_cost(name: &str, args: &[&str]) -> Value {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cost-schema-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let file = path.to_str().unwrap();
    let mut all = vec!["cost"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", file]);
    let out = loadgen(&all, Duration::from_secs(300));
    assert_eq!(out.code(), 0, "loadgen {all:?} failed: {out:?}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("--json {file} was not written ({e}): {out:?}"));
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("--json {file}: not JSON: {e}"))
}

/// `doc` reads back into the model and serializes to the same JSON.
#[track_caller]
fn assert_round_trips(doc: &Value) {
    let typed: CostDoc = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("the document does not read back into CostDoc: {e}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), doc);
}

/// What a damage is called, and the damage done to a copy of the document.
type Damage<'a> = (&'a str, &'a dyn Fn(&mut Value));

/// Each damaged copy of `doc` must be rejected, one assertion per damage.
#[track_caller]
fn assert_each_rejected(v: &Validator, doc: &Value, cases: &[Damage<'_>]) {
    for (what, damage) in cases {
        let mut d = doc.clone();
        damage(&mut d);
        assert_ne!(&d, doc, "the damage `{what}` changed nothing");
        assert!(!v.is_valid(&d), "the schema accepts a document with {what}");
    }
}

fn remove(v: &mut Value, key: &str) {
    let shown = v.to_string();
    let object = v
        .as_object_mut()
        .unwrap_or_else(|| panic!("not an object: {shown}"));
    object
        .remove(key)
        .unwrap_or_else(|| panic!("no {key:?} in {shown}"));
}

/// The first workload of the first server.
fn w(d: &mut Value) -> &mut Value {
    &mut d["servers"][0]["workloads"][0]
}

/// The first workload of the comparison.
fn aw(d: &mut Value) -> &mut Value {
    &mut d["ab"]["workloads"][0]
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let text = std::fs::read_to_string(SCHEMA_PATH).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{SCHEMA_PATH} is not a valid draft 2020-12 schema: {e}");
    }
    assert_eq!(
        schema["properties"]["schema"]["const"],
        json!(model::SCHEMA)
    );
}

#[test]
fn real_output_of_one_server_validates_and_damage_is_rejected() {
    if !tools_present() {
        return;
    }
    let v = validator();
    let doc = real_cost("one", &["--workload", "keep-alive"]);
    assert_valid(&v, &doc);
    assert_round_trips(&doc);
    assert_eq!(doc["schema"], json!("loadgen.cost/v1"));
    assert!(doc.get("ab").is_none(), "{doc}");
    let first = &doc["servers"][0]["workloads"][0];
    assert_eq!(first["workload"], json!("keep-alive"));
    assert!(
        first["syscalls"].as_object().is_some_and(|s| !s.is_empty()),
        "{doc}"
    );
    assert!(
        first["functions"].as_array().is_some_and(|f| !f.is_empty()),
        "{doc}"
    );

    // A new syscall, a negative per-request figure and a second workload need no
    // schema change.
    let mut extended = doc.clone();
    let w0 = &mut extended["servers"][0]["workloads"][0];
    w0["syscalls"]["epoll_pwait2"] = json!({"totals": [5, 3], "per_request": -0.001});
    w0["functions"][0]["instructions_per_request"] = json!(-2.5);
    let mut second = w0.clone();
    second["workload"] = json!("post-4k");
    extended["servers"][0]["workloads"]
        .as_array_mut()
        .unwrap()
        .push(second);
    assert_valid(&v, &extended);

    let cases: &[Damage<'_>] = &[
        ("another schema id", &|d| {
            d["schema"] = json!("loadgen.cost/v2")
        }),
        ("the counters' schema id", &|d| {
            d["schema"] = json!("loadgen.counters/v1")
        }),
        ("no method", &|d| remove(d, "method")),
        ("no servers", &|d| remove(d, "servers")),
        ("no server at all", &|d| d["servers"] = json!([])),
        ("method as a number", &|d| d["method"] = json!(1)),
        ("an unknown top-level field", &|d| d["host"] = json!("x")),
        ("ab as null", &|d| d["ab"] = Value::Null),
        (
            "an ab without a second server",
            &|d| d["ab"] = json!({"threshold_pct": 1.0, "verdict": "unchanged", "workloads": []}),
        ),
        ("a single server named base", &|d| {
            d["servers"][0]["name"] = json!("base")
        }),
        ("a server without a command", &|d| {
            remove(&mut d["servers"][0], "command")
        }),
        ("an unknown field in a server", &|d| {
            d["servers"][0]["pid"] = json!(1)
        }),
        ("workloads as an object", &|d| {
            d["servers"][0]["workloads"] = json!({})
        }),
        ("a workload without instructions", &|d| {
            remove(w(d), "instructions")
        }),
        ("a workload without allocations", &|d| {
            remove(w(d), "allocations")
        }),
        ("a workload without requests", &|d| remove(w(d), "requests")),
        ("a workload without syscalls", &|d| remove(w(d), "syscalls")),
        ("a workload without not_gated", &|d| {
            remove(w(d), "not_gated")
        }),
        ("a workload without functions", &|d| {
            remove(w(d), "functions")
        }),
        ("a workload without a name", &|d| remove(w(d), "workload")),
        ("a workload name in capitals", &|d| {
            w(d)["workload"] = json!("Keep-Alive")
        }),
        ("the model's unwritten all_functions", &|d| {
            w(d)["all_functions"] = json!({})
        }),
        ("requests of length 3", &|d| {
            w(d)["requests"] = json!([1000, 2000, 3000])
        }),
        ("requests of length 1", &|d| {
            w(d)["requests"] = json!([3000])
        }),
        ("zero requests (N2, the divisor)", &|d| {
            w(d)["requests"] = json!([0, 0])
        }),
        ("a negative request count", &|d| {
            w(d)["requests"] = json!([-1, 3000])
        }),
        ("a totals array of length 3", &|d| {
            w(d)["instructions"]["totals"] = json!([1, 2, 3])
        }),
        ("a totals array of length 1", &|d| {
            w(d)["allocations"]["totals"] = json!([1])
        }),
        ("a negative total", &|d| {
            w(d)["bytes_written"]["totals"][0] = json!(-1)
        }),
        ("a fractional total", &|d| {
            w(d)["instructions"]["totals"][1] = json!(1.5)
        }),
        ("a total beyond u64", &|d| {
            w(d)["instructions"]["totals"][1] = json!(1.9e19)
        }),
        ("totals as an object", &|d| {
            w(d)["instructions"]["totals"] = json!({"n1": 1, "n2": 2})
        }),
        ("per_request as a string", &|d| {
            w(d)["instructions"]["per_request"] = json!("25873.7")
        }),
        ("per_request as null (NaN)", &|d| {
            w(d)["instructions"]["per_request"] = Value::Null
        }),
        ("a counter without per_request", &|d| {
            remove(&mut w(d)["allocations"], "per_request")
        }),
        ("an unknown field in a counter", &|d| {
            w(d)["instructions"]["difference"] = json!(1)
        }),
        ("a syscall counter as a bare number", &|d| {
            w(d)["syscalls"]["read"] = json!(2000)
        }),
        ("a syscall name that is not a name", &|d| {
            w(d)["syscalls"]["read("] = json!({"totals": [1, 2], "per_request": 0.0005})
        }),
        ("no epoll_wait_empty", &|d| {
            remove(&mut w(d)["not_gated"], "epoll_wait_empty")
        }),
        ("a function without its figure", &|d| {
            remove(&mut w(d)["functions"][0], "instructions_per_request")
        }),
        ("a function figure as a string", &|d| {
            w(d)["functions"][0]["instructions_per_request"] = json!("1882")
        }),
        ("an unknown field in a function", &|d| {
            w(d)["functions"][0]["inclusive"] = json!(1.0)
        }),
    ];
    assert_each_rejected(&v, &doc, cases);
}

#[test]
fn real_ab_output_validates_and_damage_is_rejected() {
    if !tools_present() {
        return;
    }
    let v = validator();
    let doc = real_cost(
        "ab",
        &["--ab", "embedded", "embedded", "--workload", "keep-alive"],
    );
    assert_valid(&v, &doc);
    assert_round_trips(&doc);
    assert_eq!(doc["servers"][0]["name"], json!("base"));
    assert_eq!(doc["servers"][1]["name"], json!("head"));
    let counters = doc["ab"]["workloads"][0]["counters"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    let names: Vec<&str> = counters
        .iter()
        .map(|c| c["counter"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"instructions"), "{names:?}");
    assert_eq!(names.last(), Some(&"bytes_written"), "{names:?}");
    assert!(names.contains(&"syscall:read"), "{names:?}");
    let bytes = names.len() - 1;
    let syscall = names
        .iter()
        .position(|n| n.starts_with("syscall:"))
        .unwrap();

    // A counter whose base is 0 has no delta_pct: left out, not null.
    let mut no_delta = doc.clone();
    remove(
        &mut no_delta["ab"]["workloads"][0]["counters"][0],
        "delta_pct",
    );
    assert_valid(&v, &no_delta);

    let cases: &[Damage<'_>] = &[
        ("no ab for two servers", &|d| remove(d, "ab")),
        ("base and head swapped", &|d| {
            d["servers"][0]["name"] = json!("head");
            d["servers"][1]["name"] = json!("base");
        }),
        ("three servers", &|d| {
            let s = d["servers"][1].clone();
            d["servers"].as_array_mut().unwrap().push(s);
        }),
        ("an ab without a threshold", &|d| {
            remove(&mut d["ab"], "threshold_pct")
        }),
        ("a negative threshold", &|d| {
            d["ab"]["threshold_pct"] = json!(-1.0)
        }),
        ("a threshold as a string", &|d| {
            d["ab"]["threshold_pct"] = json!("1 %")
        }),
        ("an unknown verdict", &|d| {
            d["ab"]["verdict"] = json!("worse")
        }),
        ("a document verdict of not_gated", &|d| {
            d["ab"]["verdict"] = json!("not_gated")
        }),
        ("a verdict as the table's word", &|d| {
            aw(d)["counters"][bytes]["verdict"] = json!("not gated")
        }),
        ("an unknown field in ab", &|d| {
            d["ab"]["exit_code"] = json!(0)
        }),
        ("an ab workload without a verdict", &|d| {
            remove(aw(d), "verdict")
        }),
        ("an ab workload without functions", &|d| {
            remove(aw(d), "functions")
        }),
        ("an ab workload verdict of not_gated", &|d| {
            aw(d)["verdict"] = json!("not_gated")
        }),
        ("an unknown field in an ab workload", &|d| {
            aw(d)["threshold_pct"] = json!(1.0)
        }),
        ("an ab counter without a name", &|d| {
            remove(&mut aw(d)["counters"][0], "counter")
        }),
        ("an ab counter without head", &|d| {
            remove(&mut aw(d)["counters"][0], "head_per_request")
        }),
        ("an unknown ab counter", &|d| {
            aw(d)["counters"][0]["counter"] = json!("cycles")
        }),
        ("a syscall counter without its prefix", &|d| {
            aw(d)["counters"][syscall]["counter"] = json!("epoll_wait")
        }),
        ("delta_pct as null", &|d| {
            aw(d)["counters"][0]["delta_pct"] = Value::Null
        }),
        ("delta_pct as a string", &|d| {
            aw(d)["counters"][0]["delta_pct"] = json!("-0.01 %")
        }),
        ("gated bytes written", &|d| {
            aw(d)["counters"][bytes]["verdict"] = json!("unchanged")
        }),
        ("instructions not gated", &|d| {
            aw(d)["counters"][0]["verdict"] = json!("not_gated")
        }),
        ("an unknown field in an ab counter", &|d| {
            aw(d)["counters"][0]["delta"] = json!(0.0)
        }),
        ("an ab function below 0.5 instructions", &|d| {
            aw(d)["functions"] = json!([{"function": "f", "base_per_request": 10.0,
                "head_per_request": 10.25, "delta_per_request": 0.25}])
        }),
        ("an ab function without its delta", &|d| {
            aw(d)["functions"] = json!([{"function": "f", "base_per_request": 10.0,
                "head_per_request": 12.0}])
        }),
    ];
    assert_each_rejected(&v, &doc, cases);

    // The comparison's other verdict and its functions (none changed in the real run),
    // from the model on the real figures: head with 2 % more instructions per request
    // than base, one function 30 more, one gone (-7), one new (+0.75).
    let mut typed: CostDoc = serde_json::from_value(doc.clone()).unwrap();
    let ins = typed.servers[0].workloads[0].instructions.totals;
    let bw = &mut typed.servers[0].workloads[0];
    bw.all_functions = BTreeMap::from([("parse".to_string(), 100.0), ("gone".into(), 7.0)]);
    let hw = &mut typed.servers[1].workloads[0];
    hw.instructions = model::Counter::new([ins[0], ins[1] + (ins[1] - ins[0]) / 50], hw.requests);
    hw.all_functions = BTreeMap::from([("parse".to_string(), 130.0), ("new".into(), 0.75)]);
    typed.ab = Some(model::compare(&typed.servers[0], &typed.servers[1], 1.0, 5));
    let ab = typed.ab.as_ref().unwrap();
    assert_eq!(ab.verdict, Verdict::Regressed);
    assert_eq!(ab.workloads[0].functions.len(), 3, "{ab:?}");
    let regressed = serde_json::to_value(&typed).unwrap();
    assert_valid(&v, &regressed);
    assert_eq!(regressed["ab"]["verdict"], json!("regressed"));
    assert_eq!(
        regressed["ab"]["workloads"][0]["functions"][1]["delta_per_request"],
        json!(-7.0)
    );
}
