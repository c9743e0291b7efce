//! `loadgen scenario --junit FILE`: one testsuite `loadgen.scenarios`, one testcase
//! per scenario named by its clause ID with classname `scenarios.<section>`, read back
//! with quick-junit's own deserializer.

mod common;
mod scenario_file;

use quick_junit::{Report, TestCaseStatus};

use scenario_file::scenario_file;

fn junit(name: &str, args: &[&str]) -> (i32, Report) {
    let (code, text, file) = scenario_file(name, "--junit", "xml", args);
    assert!(text.starts_with("<?xml"), "{text}");
    let report = Report::deserialize_from_str(&text)
        .unwrap_or_else(|e| panic!("--junit {file} is not JUnit XML: {e}\n{text}"));
    (code, report)
}

#[test]
fn one_case_per_scenario_with_stable_names() {
    let (code, r) = junit("modulo", &["modulo", "engine.type"]);
    assert_eq!(code, 0);
    assert_eq!(r.test_suites.len(), 1);
    let suite = &r.test_suites[0];
    assert_eq!(suite.name.as_str(), "loadgen.scenarios");
    let names: Vec<(&str, &str)> = suite
        .test_cases
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.classname.as_ref().map_or("", |n| n.as_str()),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("engine.type", "scenarios.engine"),
            ("select.modulo", "scenarios.select"),
            ("select.mirror", "scenarios.select"),
            ("select.before-listen", "scenarios.select"),
            ("select.stable", "scenarios.select"),
        ]
    );
    assert_eq!((suite.tests, suite.failures, suite.errors), (5, 0, 0));
    assert_eq!(r.tests, 5);
    for c in &suite.test_cases {
        assert!(
            matches!(c.status, TestCaseStatus::Success { .. }),
            "{}: {:?}",
            c.name.as_str(),
            c.status
        );
        assert!(c.time.is_some());
    }
}

#[test]
fn names_do_not_change_between_runs_or_pool_sizes() {
    let ids = |r: &Report| -> Vec<(String, String)> {
        r.test_suites[0]
            .test_cases
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    c.classname.as_ref().unwrap().as_str().to_string(),
                )
            })
            .collect()
    };
    let (_, a) = junit("stable-a", &["queue-full", "engine.type", "--serial"]);
    let (_, b) = junit(
        "stable-b",
        &["queue-full", "engine.type", "--parallel", "2"],
    );
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).len(), 3);
}
