//! The report's header: what was measured, on what machine, with what build and
//! settings, and what the self-checks warned about, all read from the input files.
//! A field no file records reads `unknown`; one the files disagree on lists every
//! value, so a mixed report shows that it is mixed.

use crate::result::{Host, Results, Tool};
use crate::scenarios::ScenarioResults;
use crate::stats::{self, display_target};

/// What a value is shown as when no input records it.
pub const UNKNOWN: &str = "unknown";

/// The header's facts, each a display string.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// One sentence: runs, groups, files, sweeps, scenario files.
    pub measured: String,
    /// The targets, in first-seen order.
    pub targets: Vec<String>,
    /// The workloads, in first-seen order.
    pub workloads: Vec<String>,
    /// `(name, value)` of the machine: host, kernel, CPU model, cores, governor.
    pub machine: Vec<(&'static str, String)>,
    /// `(name, value)` of the build and the time: tool, version, git revision, date.
    pub build: Vec<(&'static str, String)>,
    /// Every run setting by name, with its value (or its values, when runs differ).
    pub settings: Vec<(String, String)>,
    /// Self-check warnings: `(where, kind, message)`, one per distinct message.
    pub warnings: Vec<(String, String, String)>,
}

/// The distinct values in first-seen order, joined; [`UNKNOWN`] when there are none.
fn distinct(values: impl IntoIterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    match seen.len() {
        0 => UNKNOWN.to_string(),
        1 => seen.remove(0),
        _ => format!("{} (the files differ)", seen.join("; ")),
    }
}

fn push_new(list: &mut Vec<String>, v: String) {
    if !list.contains(&v) {
        list.push(v);
    }
}

/// A setting's value as text: strings bare (a URL without its scheme, as
/// [`display_target`] shows targets, so the page holds no link), `null` as `-`, the
/// rest as JSON.
fn setting_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => display_target(s),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

impl Header {
    /// The header of a report on `results` and `scenarios`.
    pub fn new(results: &[Results], scenarios: &[ScenarioResults]) -> Header {
        let runs: usize = results.iter().map(|f| f.runs.len()).sum();
        let groups = stats::run_groups(results);
        let sweeps = stats::sweep_summaries(results).len();
        let mut targets = Vec::new();
        let mut workloads = Vec::new();
        for run in results.iter().flat_map(|f| f.runs.iter()) {
            push_new(&mut targets, display_target(&run.target));
            push_new(&mut workloads, run.workload.clone());
        }
        for s in scenarios {
            push_new(&mut targets, s.target.clone());
        }
        let mut parts = Vec::new();
        if !results.is_empty() {
            parts.push(format!(
                "{runs} run{} in {} target × workload group{}, from {} results file{}",
                plural(runs),
                groups.len(),
                plural(groups.len()),
                results.len(),
                plural(results.len())
            ));
        }
        if sweeps > 0 {
            parts.push(format!("{sweeps} sweep{}", plural(sweeps)));
        }
        if !scenarios.is_empty() {
            parts.push(format!(
                "{} scenario results file{}",
                scenarios.len(),
                plural(scenarios.len())
            ));
        }
        let measured = if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join("; ")
        };
        let hosts: Vec<&Host> = results
            .iter()
            .map(|f| &f.host)
            .chain(scenarios.iter().map(|s| &s.host))
            .collect();
        let tools: Vec<&Tool> = results
            .iter()
            .map(|f| &f.tool)
            .chain(scenarios.iter().map(|s| &s.tool))
            .collect();
        let known = |s: &str| (!s.is_empty() && s != UNKNOWN).then(|| s.to_string());
        let machine = vec![
            (
                "host",
                distinct(
                    hosts
                        .iter()
                        .filter_map(|h| h.hostname.as_deref().and_then(known)),
                ),
            ),
            (
                "kernel",
                distinct(hosts.iter().filter_map(|h| known(&h.kernel))),
            ),
            (
                "CPU model",
                distinct(hosts.iter().filter_map(|h| known(&h.cpu_model))),
            ),
            (
                "cores",
                distinct(
                    hosts
                        .iter()
                        .filter(|h| h.cores > 0)
                        .map(|h| h.cores.to_string()),
                ),
            ),
            (
                "governor",
                distinct(hosts.iter().filter_map(|h| h.governor.clone())),
            ),
        ];
        let mut dates: Vec<&str> = results
            .iter()
            .map(|f| f.started_at.as_str())
            .chain(scenarios.iter().map(|s| s.started_at.as_str()))
            .collect();
        dates.sort_unstable();
        let date = match (dates.first(), dates.last()) {
            (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
            (Some(a), _) => a.to_string(),
            _ => UNKNOWN.to_string(),
        };
        let build = vec![
            ("tool", distinct(tools.iter().map(|t| t.name.clone()))),
            ("version", distinct(tools.iter().map(|t| t.version.clone()))),
            (
                "git revision",
                distinct(tools.iter().filter_map(|t| t.git_revision.clone())),
            ),
            ("date (UTC)", date),
        ];
        let mut names: Vec<String> = Vec::new();
        for run in results.iter().flat_map(|f| f.runs.iter()) {
            for k in run.config.settings.keys() {
                push_new(&mut names, k.clone());
            }
        }
        let settings = names
            .into_iter()
            .map(|name| {
                let values = results.iter().flat_map(|f| f.runs.iter()).map(|r| {
                    r.config
                        .settings
                        .get(&name)
                        .map_or_else(|| "-".to_string(), setting_text)
                });
                let value = distinct(values).replace(" (the files differ)", " (runs differ)");
                (name, value)
            })
            .collect();
        let mut warnings: Vec<(String, String, String)> = Vec::new();
        for g in &groups {
            for run in &g.runs {
                for w in &run.warnings {
                    let entry = (g.label(), w.kind.clone(), w.message.clone());
                    if !warnings.contains(&entry) {
                        warnings.push(entry);
                    }
                }
            }
        }
        Header {
            measured,
            targets,
            workloads,
            machine,
            build,
            settings,
            warnings,
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
