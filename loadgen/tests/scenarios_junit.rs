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

/// A real run's file against the Jenkins/Ant `junit-10.xsd` committed as test data
/// (xmllint; in CI, where it is installed, its absence fails the test).
#[test]
fn a_real_run_is_valid_against_junit_10_xsd() {
    let (code, text, file) = scenario_file("xsd", "--junit", "xml", &["modulo", "engine.type"]);
    assert_eq!(code, 0, "{text}");
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/junit-10.xsd");
    let path = std::env::temp_dir().join(format!("junit-xsd-{}.xml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(o) => assert!(
            o.status.success(),
            "--junit {file} is not valid against junit-10.xsd: {}\n{text}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "xmllint (apt: libxml2-utils) is needed in CI: {e}"
            );
            eprintln!("xmllint not installed ({e}): schema check skipped here");
        }
    }
}
