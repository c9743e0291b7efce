//! The counters' model: what a workload measured, the counters document
//! (`loadgen.counters/v1`, JSON Schema `reports/schema/loadgen.counters.v1.json`,
//! validated by `loadgen/tests/counters_schema.rs`) and the exact comparison with a
//! baseline.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The schema tag of the counters document (`--json`, `--check`).
pub const COUNTERS_SCHEMA: &str = "loadgen.counters/v1";

/// Counters of one workload: gated totals over `requests` and the untimed rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Workload name.
    pub name: String,
    /// Requests served in the workload.
    pub requests: u64,
    /// Gated counters (totals over `requests`), by name.
    pub counters: BTreeMap<String, u64>,
    /// Counters shown but not gated (timer wakeups), by name.
    pub untimed: BTreeMap<String, u64>,
    /// What the workload does.
    pub description: String,
}

/// Counter names that depend on time and are never gated.
pub fn is_untimed(name: &str) -> bool {
    name.ends_with("_empty")
}

/// One counter that differs from the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Workload name.
    pub workload: String,
    /// Counter name.
    pub counter: String,
    /// (total, requests) in the baseline, if it has the counter.
    pub baseline: Option<(u64, u64)>,
    /// (total, requests) now, if the run has the counter.
    pub measured: Option<(u64, u64)>,
}

impl Difference {
    /// One line: what differs, which way, by how much per request.
    pub fn line(&self, advice: bool) -> String {
        let per = |v: Option<(u64, u64)>| match v {
            Some((t, r)) => format!("{} per request ({t} over {r})", ratio(t, r)),
            None => "absent".into(),
        };
        let which = match (self.baseline, self.measured) {
            (Some(b), Some(m))
                if u128::from(m.0) * u128::from(b.1) > u128::from(b.0) * u128::from(m.1) =>
            {
                "higher: regression"
            }
            (Some(_), Some(_)) => {
                if advice {
                    "lower: an improvement, but the baseline must equal reality"
                } else {
                    "lower"
                }
            }
            (None, _) => "not in the baseline",
            (_, None) => "no longer measured",
        };
        format!(
            "{} {}: {}, baseline {} ({which})",
            self.workload,
            self.counter,
            per(self.measured),
            per(self.baseline)
        )
    }
}

/// Every counter that is not exactly equal per request (compared as exact ratios),
/// plus workloads or counters present on one side only.
pub fn compare(baseline: &[Measured], measured: &[Measured]) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |w: &str, c: &str, b: Option<(u64, u64)>, m: Option<(u64, u64)>| Difference {
        workload: w.into(),
        counter: c.into(),
        baseline: b,
        measured: m,
    };
    for b in baseline {
        let Some(m) = measured.iter().find(|m| m.name == b.name) else {
            out.push(diff(&b.name, "(workload)", Some((0, b.requests)), None));
            continue;
        };
        for (name, &bv) in &b.counters {
            match m.counters.get(name) {
                Some(&mv)
                    if u128::from(mv) * u128::from(b.requests)
                        == u128::from(bv) * u128::from(m.requests) => {}
                Some(&mv) => out.push(diff(
                    &b.name,
                    name,
                    Some((bv, b.requests)),
                    Some((mv, m.requests)),
                )),
                None => out.push(diff(&b.name, name, Some((bv, b.requests)), None)),
            }
        }
        for (name, &mv) in &m.counters {
            if !b.counters.contains_key(name) {
                out.push(diff(&b.name, name, None, Some((mv, m.requests))));
            }
        }
    }
    for m in measured {
        if !baseline.iter().any(|b| b.name == m.name) {
            out.push(diff(&m.name, "(workload)", None, Some((0, m.requests))));
        }
    }
    out
}

/// `t / r` as a short exact decimal where there is one (`0.0625`), else 4 places.
pub fn ratio(t: u64, r: u64) -> String {
    if r == 0 {
        return "-".into();
    }
    if t.is_multiple_of(r) {
        return (t / r).to_string();
    }
    let v = t as f64 / r as f64;
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    s.to_string()
}

/// The counters document as written (fields in alphabetical order, as before).
#[derive(Debug, Serialize)]
pub struct CountersDocument<'a> {
    about: &'static str,
    schema: &'static str,
    workloads: Vec<WorkloadEntry<'a>>,
}

#[derive(Debug, Serialize)]
struct WorkloadEntry<'a> {
    counters: &'a BTreeMap<String, u64>,
    description: &'a str,
    name: &'a str,
    requests: u64,
}

/// The document for `measured`.
pub fn document(measured: &[Measured]) -> CountersDocument<'_> {
    CountersDocument {
        about: "Exact counters of the reference engine (1 worker) over fixed workloads: \
                heap allocations (process-wide) and syscalls by kind made by the worker \
                thread through engine::sys, totals over `requests`. Written by \
                `loadgen counters --write FILE`; compared exactly by `--check FILE`.",
        schema: COUNTERS_SCHEMA,
        workloads: measured
            .iter()
            .map(|m| WorkloadEntry {
                counters: &m.counters,
                description: &m.description,
                name: &m.name,
                requests: m.requests,
            })
            .collect(),
    }
}

/// Parses a counters document (the format `--json` writes).
pub fn parse_counters(text: &str) -> Result<Vec<Measured>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let schema = v.get("schema").and_then(Value::as_str).unwrap_or("");
    if schema != COUNTERS_SCHEMA {
        return Err(format!("schema {schema:?}, expected {COUNTERS_SCHEMA:?}"));
    }
    let workloads = v
        .get("workloads")
        .and_then(Value::as_array)
        .ok_or("no \"workloads\" array")?;
    let mut out = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let name = w
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("workloads[{i}]: no \"name\""))?;
        let requests = w
            .get("requests")
            .and_then(Value::as_u64)
            .filter(|&r| r > 0)
            .ok_or_else(|| format!("workload {name}: \"requests\" is not a positive integer"))?;
        let counters = w
            .get("counters")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("workload {name}: no \"counters\" object"))?
            .iter()
            .map(|(k, v)| {
                v.as_u64().map(|v| (k.clone(), v)).ok_or_else(|| {
                    format!("workload {name}: counter {k} is not a non-negative integer")
                })
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        if out.iter().any(|m: &Measured| m.name == name) {
            return Err(format!("workload {name} appears twice"));
        }
        out.push(Measured {
            name: name.into(),
            requests,
            counters,
            untimed: BTreeMap::new(),
            description: w
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, requests: u64, counters: &[(&str, u64)]) -> Measured {
        Measured {
            name: name.into(),
            requests,
            counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            untimed: BTreeMap::new(),
            description: String::new(),
        }
    }

    #[test]
    fn equal_counts_and_equal_ratios_pass() {
        let base = [m("a", 1000, &[("read", 1000), ("send", 63)])];
        assert!(compare(&base, &base).is_empty());
        // 126 over 2000 is the same ratio as 63 over 1000.
        let now = [m("a", 2000, &[("read", 2000), ("send", 126)])];
        assert!(compare(&base, &now).is_empty());
    }

    #[test]
    fn any_difference_is_reported_with_its_direction() {
        let base = [m("a", 1000, &[("read", 1000), ("send", 1000), ("x", 0)])];
        let now = [m("a", 1000, &[("read", 1001), ("send", 999), ("y", 1)])];
        let d = compare(&base, &now);
        let lines: Vec<String> = d.iter().map(|d| d.line(true)).collect();
        assert_eq!(d.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("a read: 1.001 per request (1001 over 1000), baseline 1 per request (1000 over 1000) (higher: regression)"), "{}", lines[0]);
        assert!(
            lines[1].contains("a send:") && lines[1].contains("(lower"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("a x: absent") && lines[2].contains("no longer measured"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("a y:") && lines[3].contains("not in the baseline"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn missing_and_extra_workloads_are_differences() {
        let base = [m("a", 10, &[("read", 10)]), m("b", 10, &[])];
        let now = [m("a", 10, &[("read", 10)]), m("c", 10, &[])];
        let d = compare(&base, &now);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].workload.as_str(), d[0].measured), ("b", None));
        assert_eq!((d[1].workload.as_str(), d[1].baseline), ("c", None));
    }

    #[test]
    fn documents_round_trip_and_bad_ones_say_why() {
        let ms = vec![m("a", 16, &[("allocations", 0), ("send", 1)])];
        let text = serde_json::to_string(&document(&ms)).unwrap();
        assert_eq!(parse_counters(&text).unwrap(), ms);
        let bad = [
            ("{", "not JSON"),
            (r#"{"schema":"x","workloads":[]}"#, "schema \"x\""),
            (r#"{"schema":"loadgen.counters/v1"}"#, "no \"workloads\""),
            (
                r#"{"schema":"loadgen.counters/v1","workloads":[{"name":"a","requests":0,"counters":{}}]}"#,
                "positive integer",
            ),
            (
                r#"{"schema":"loadgen.counters/v1","workloads":[{"name":"a","requests":1,"counters":{"r":-1}}]}"#,
                "counter r",
            ),
        ];
        for (text, want) in bad {
            let e = parse_counters(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn ratios_are_short_and_exact() {
        assert_eq!(ratio(64, 1024), "0.0625");
        assert_eq!(ratio(3000, 1000), "3");
    }
}
