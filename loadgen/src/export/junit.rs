//! The `--junit` file: one testsuite `loadgen.scenarios`, one testcase per scenario
//! with `name` = the clause ID and `classname` = `scenarios.<section>` (the ID's first
//! segment), both stable across runs so CI tools can track a case's history.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use scenarios::Verdict;

use super::scenarios::Meta;
use crate::suite::{failure_text, Record};

/// The testsuite's name.
pub const SUITE: &str = "loadgen.scenarios";

/// `scenarios.<section>` for a clause ID such as `accept.pause.sync`.
pub fn classname(id: &str) -> String {
    format!("scenarios.{}", id.split('.').next().unwrap_or(id))
}

fn case(r: &Record) -> TestCase {
    let s = &r.scenario;
    let worst = r.worst();
    let runs = if r.runs.len() > 1 {
        format!(
            " ({}/{} runs passed{})",
            r.passes(),
            r.runs.len(),
            if r.flaky() { ", flaky" } else { "" }
        )
    } else {
        String::new()
    };
    let evidence = failure_text(s, worst);
    let mut note = None;
    let status = match &worst.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::NonStrict => {
            // A SHOULD not met does not fail the build; the note keeps the evidence.
            note = Some(format!(
                "non-strict: a SHOULD clause was not met{runs}\n{evidence}"
            ));
            TestCaseStatus::success()
        }
        Verdict::Fail => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let first = worst.failures.first().map_or("", String::as_str);
            st.set_message(format!("{} failed{runs}: {first}", s.clause.level))
                .set_type("fail")
                .set_description(evidence);
            st
        }
        Verdict::Skipped(why) => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(why.as_str()).set_type("skipped");
            st
        }
        Verdict::Error(why) => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(format!("harness error{runs}: {why}"))
                .set_type("error");
            st
        }
    };
    let mut tc = TestCase::new(s.clause.id, status);
    tc.set_classname(classname(s.clause.id))
        .set_time(r.duration())
        .add_property(Property::new("level", s.clause.level.to_string()));
    if let Some(n) = note {
        tc.set_system_out(n);
    }
    tc
}

/// The JUnit XML text.
pub fn report(records: &[Record], meta: &Meta) -> Result<String, String> {
    let mut suite = TestSuite::new(SUITE);
    suite
        .set_time(meta.wall)
        .add_property(Property::new("slack", meta.slack.to_string()))
        .add_property(Property::new("workers", meta.workers.to_string()))
        .add_property(Property::new("repeat", meta.repeat.to_string()))
        .add_property(Property::new("parallel", meta.parallel.to_string()));
    if let Some(f) = &meta.fault {
        suite.add_property(Property::new("fault", f.as_str()));
    }
    suite.add_test_cases(records.iter().map(case));
    let mut report = Report::new("loadgen");
    report.set_time(meta.wall).add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("--junit: cannot serialise the report: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
    use scenarios::{find, Outcome, Verdict};

    use crate::export::scenarios::Meta;
    use crate::suite::Record;

    fn record(id: &str, verdicts: &[Verdict]) -> Record {
        let runs = verdicts
            .iter()
            .map(|v| {
                let mut o = Outcome::new();
                o.expect("a 200 response & nothing else");
                o.saw("conn 0: rst at 3 ms <unexpected>");
                if matches!(v, Verdict::Fail | Verdict::NonStrict) {
                    o.fail("saw rst, wanted fin");
                }
                o.verdict = v.clone();
                (o, Duration::from_millis(5))
            })
            .collect();
        Record {
            scenario: find(id).unwrap(),
            runs,
        }
    }

    #[test]
    fn every_verdict_maps_to_its_junit_status() {
        let records = [
            record("engine.type", &[Verdict::Pass]),
            record("accept.pause.sync", &[Verdict::Pass, Verdict::Fail]),
            record("accept.pause.zero-loss", &[Verdict::NonStrict]),
            record("loop.cpuid", &[Verdict::Skipped("needs 2 CPUs".into())]),
            record("driver.recv", &[Verdict::Error("socket: EMFILE".into())]),
        ];
        let meta = Meta {
            started_at: SystemTime::now(),
            wall: Duration::from_millis(30),
            slack: 1.0,
            workers: 2,
            fault: Some("close-without-drain".into()),
            target: "reference".into(),
            repeat: 1,
            parallel: 2,
            expectations: None,
            exit_code: 2,
        };
        let xml = super::report(&records, &meta).unwrap();
        let r = Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let suite = &r.test_suites[0];
        assert_eq!(suite.name.as_str(), super::SUITE);
        assert_eq!(
            (suite.tests, suite.failures, suite.errors, suite.skipped),
            (5, 1, 1, 1)
        );
        let cases = &suite.test_cases;
        assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
        match &cases[1].status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                description,
                ..
            } => {
                let m = message.as_ref().unwrap().as_str();
                assert_eq!(
                    m,
                    "MUST failed (1/2 runs passed, flaky): saw rst, wanted fin"
                );
                let d = description.as_ref().unwrap().as_str();
                assert!(d.starts_with("Requirement: "), "{d}");
                assert!(
                    d.contains("Expected:    a 200 response & nothing else"),
                    "{d}"
                );
                assert!(
                    d.contains("Actual:      conn 0: rst at 3 ms <unexpected>"),
                    "{d}"
                );
            }
            other => panic!("fail became {other:?}"),
        }
        assert!(matches!(cases[2].status, TestCaseStatus::Success { .. }));
        let out = cases[2].system_out.as_ref().unwrap().as_str();
        assert!(
            out.starts_with("non-strict: a SHOULD clause was not met"),
            "{out}"
        );
        match &cases[3].status {
            TestCaseStatus::Skipped { message, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "needs 2 CPUs")
            }
            other => panic!("skip became {other:?}"),
        }
        match &cases[4].status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                message,
                ..
            } => assert!(message.as_ref().unwrap().as_str().contains("EMFILE")),
            other => panic!("error became {other:?}"),
        }
        let fault = suite.properties.iter().find(|p| p.name.as_str() == "fault");
        assert_eq!(fault.unwrap().value.as_str(), "close-without-drain");
    }

    #[test]
    fn classname_is_the_first_segment() {
        assert_eq!(super::classname("accept.pause.sync"), "scenarios.accept");
        assert_eq!(super::classname("engine.type"), "scenarios.engine");
        assert_eq!(super::classname("solo"), "scenarios.solo");
    }
}
