//! The expectations file (`ci/expectations.tsv`): every scenario's expected verdicts on
//! the reference engine. One line per known deviation: `id<TAB>verdicts<TAB>reason`,
//! verdicts separated by `|`; `#` starts a comment. A scenario not listed must pass.

use std::path::Path;

use reports::scenarios::{ExpectationDifference, VerdictKind};
use scenarios::Scenario;

/// A parsed expectations file.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The file, as given.
    pub file: String,
    entries: Vec<(String, Vec<VerdictKind>)>,
}

impl Expectations {
    /// Reads and checks `path`: every ID must name a scenario of `all`, every verdict
    /// must be known, every deviation needs its reason.
    pub fn load(path: &Path, all: &[Scenario]) -> Result<Expectations, String> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--expect {file}: cannot read: {e}"))?;
        Expectations::parse(&file, &text, all)
    }

    /// Parses the text of an expectations file named `file`.
    pub fn parse(file: &str, text: &str, all: &[Scenario]) -> Result<Expectations, String> {
        let mut entries: Vec<(String, Vec<VerdictKind>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let [id, verdicts, reason] = cols[..] else {
                return Err(format!(
                    "{at}: want 3 tab-separated columns (id, verdicts, reason), found {}",
                    cols.len()
                ));
            };
            if !all.iter().any(|s| s.clause.id == id) {
                return Err(format!(
                    "{at}: unknown scenario {id:?}: `loadgen scenario list` shows the IDs"
                ));
            }
            if entries.iter().any(|(e, _)| e == id) {
                return Err(format!("{at}: {id} is listed twice: keep one line"));
            }
            let mut allowed = Vec::new();
            for v in verdicts.split('|') {
                let kind = VerdictKind::from_name(v.trim()).ok_or_else(|| {
                    let names: Vec<&str> = VerdictKind::ALL.iter().map(|k| k.name()).collect();
                    format!("{at}: unknown verdict {v:?}: use {}", names.join(", "))
                })?;
                allowed.push(kind);
            }
            if reason.trim().is_empty() {
                return Err(format!("{at}: {id}: a deviation needs its reason"));
            }
            entries.push((id.to_string(), allowed));
        }
        Ok(Expectations {
            file: file.to_string(),
            entries,
        })
    }

    /// The verdicts allowed for `id` (`pass` when the file does not list it).
    pub fn allowed(&self, id: &str) -> Vec<VerdictKind> {
        self.entries
            .iter()
            .find(|(e, _)| e == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| vec![VerdictKind::Pass])
    }

    /// The difference for scenario `id` whose runs ended in `verdicts`, if any run's
    /// verdict is not allowed.
    pub fn check(&self, id: &str, verdicts: &[VerdictKind]) -> Option<ExpectationDifference> {
        let allowed = self.allowed(id);
        let seen: Vec<VerdictKind> = verdicts
            .iter()
            .copied()
            .filter(|v| !allowed.contains(v))
            .collect();
        (!seen.is_empty()).then(|| ExpectationDifference {
            id: id.to_string(),
            allowed,
            seen,
        })
    }
}

/// The one console line for a difference.
pub fn describe(d: &ExpectationDifference, runs: usize) -> String {
    let names = |v: &[VerdictKind]| v.iter().map(|k| k.name()).collect::<Vec<_>>().join("|");
    let mut seen: Vec<VerdictKind> = Vec::new();
    for v in &d.seen {
        if !seen.contains(v) {
            seen.push(*v);
        }
    }
    let unexpected_pass = if seen.contains(&VerdictKind::Pass) {
        " (an unexpected pass: remove or update its line)"
    } else {
        ""
    };
    let of_runs = if runs > 1 {
        format!(" in {} of {runs} runs", d.seen.len())
    } else {
        String::new()
    };
    format!(
        "UNEXPECTED {}: {}{of_runs}, expected {}{unexpected_pass}",
        d.id,
        names(&seen),
        names(&d.allowed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Expectations, String> {
        Expectations::parse("exp.tsv", text, &scenarios::registry())
    }

    #[test]
    fn unlisted_must_pass_and_listed_sets_allow_any_member() {
        let e =
            load("# comment\naccept.pause.handover-race\tpass|non-strict\tkernel race\n").unwrap();
        use VerdictKind::*;
        assert!(e.check("engine.type", &[Pass]).is_none());
        let d = e.check("engine.type", &[Pass, Fail]).unwrap();
        assert_eq!(d.seen, [Fail]);
        assert_eq!(d.allowed, [Pass]);
        assert!(e
            .check("accept.pause.handover-race", &[Pass, NonStrict])
            .is_none());
        assert!(e.check("accept.pause.handover-race", &[Fail]).is_some());
    }

    #[test]
    fn an_unexpected_pass_is_a_difference() {
        let e = load("engine.type\tnon-strict\tknown deviation\n").unwrap();
        let d = e.check("engine.type", &[VerdictKind::Pass]).unwrap();
        assert!(
            describe(&d, 1).contains("unexpected pass"),
            "{}",
            describe(&d, 1)
        );
        assert_eq!(
            describe(&d, 1),
            "UNEXPECTED engine.type: pass, expected non-strict (an unexpected pass: remove or update its line)"
        );
    }

    #[test]
    fn bad_lines_are_one_line_errors_with_the_place() {
        for (text, want) in [
            ("nope.nope\tpass\twhy\n", "exp.tsv:1: unknown scenario"),
            ("engine.type\tpasss\twhy\n", "exp.tsv:1: unknown verdict"),
            ("# c\nengine.type\tpass\n", "exp.tsv:2: want 3"),
            ("engine.type\tfail\t \n", "needs its reason"),
            (
                "engine.type\tfail\ta\nengine.type\tfail\tb\n",
                "listed twice",
            ),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn the_committed_file_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations.tsv");
        Expectations::load(Path::new(path), &scenarios::registry()).unwrap();
    }
}
