//! Every clause's check against the reference engine: each must pass (SHOULD clauses
//! may be non-strict only where `ci/expectations.tsv` says so). The list of clauses is
//! the registry's: a new scenario is tested without being named here.

use std::sync::Mutex;

use engine::sync::lock;
use scenarios::{find, registry, Ctx};

/// The verdicts `ci/expectations.tsv` allows for `id` (default: pass only). The file
/// is checked as `loadgen scenario --expect` checks it: known IDs, known verdicts, a
/// reason for every deviation.
fn allowed(id: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations.tsv");
    let text = std::fs::read_to_string(path).expect("ci/expectations.tsv is readable");
    let expectations =
        reports::scenarios::Expectations::parse("ci/expectations.tsv", &text, |lid| {
            find(lid).is_some()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    expectations
        .allowed(id)
        .iter()
        .map(|v| v.name().to_string())
        .collect()
}

/// Runs `id` against the reference engine; the mismatch, if its verdict is not allowed.
fn run(id: &str) -> Option<String> {
    let scenario = find(id).unwrap_or_else(|| panic!("no scenario {id}"));
    let outcome = scenario.run(&Ctx::default());
    let verdict = outcome.verdict.to_string();
    let ok = allowed(id);
    (!ok.iter().any(|v| v == outcome.verdict.name())).then(|| {
        format!(
            "{id}: verdict {verdict}, expected {ok:?}: {}\nfailures: {:#?}\nexpected: {:#?}\nactual: {:#?}",
            scenario.clause.text, outcome.failures, outcome.expected, outcome.actual
        )
    })
}

/// Every registered scenario, on two threads (as `cargo test` would run one test per
/// clause on two cores). `SCENARIO=id[,id..]` runs only those.
#[test]
fn every_registered_scenario_holds_against_the_reference_engine() {
    let only: Option<Vec<String>> = std::env::var("SCENARIO")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let ids: Vec<&'static str> = registry()
        .iter()
        .map(|s| s.clause.id)
        .filter(|id| only.as_ref().is_none_or(|o| o.iter().any(|x| x == id)))
        .collect();
    if let Some(o) = &only {
        for id in o {
            assert!(find(id).is_some(), "SCENARIO names unknown scenario {id}");
        }
    }
    let queue = Mutex::new(ids.clone());
    let ran = Mutex::new(Vec::new());
    let mismatches = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(id) = lock(&queue).pop() else { break };
                let mismatch = run(id);
                lock(&ran).push(id);
                if let Some(m) = mismatch {
                    lock(&mismatches).push(m);
                }
            });
        }
    });
    let mismatches = mismatches.into_inner().unwrap();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    let mut ran = ran.into_inner().unwrap();
    ran.sort_unstable();
    let mut want = ids;
    want.sort_unstable();
    assert_eq!(ran, want, "every selected scenario ran once");
}

#[test]
fn every_registered_scenario_has_a_unique_id() {
    let mut ids: Vec<&str> = registry().iter().map(|s| s.clause.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate clause IDs in the registry");
    for id in ids {
        assert!(
            find(id).is_some_and(|s| s.clause.id == id),
            "{id} is not found by its ID"
        );
    }
}
