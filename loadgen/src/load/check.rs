//! `--check EXPR`: k6-style thresholds on a finished run (`p99<10ms`, `p99.9<=2s`,
//! `errors<0.1%`, `errors<5`, `rps>1000`). Parsed before the run (a bad expression
//! is a one-line usage error), evaluated on its result.

use reports::histogram::decode;
use reports::{CheckResult, RunResult};

/// What a threshold is about.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// A percentile of the corrected latency of the successful requests (0..=100).
    Percentile(f64),
    /// Failed requests as a share of all, percent.
    ErrorShare,
    /// Failed requests, counted.
    ErrorCount,
    /// Successful requests per second.
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
        }
    }
}

/// One parsed `--check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    expression: String,
    metric: Metric,
    op: Op,
    /// In the metric's unit: µs, percent, requests or per second.
    threshold: f64,
}

const USAGE: &str = "use e.g. p99<10ms, p99.9<=2s, errors<0.1%, errors<5 or rps>1000";

impl Check {
    /// Parses `EXPR`; the error is one line naming it.
    pub fn parse(expr: &str) -> Result<Check, String> {
        let bad = |why: &str| format!("--check {expr:?}: {why}: {USAGE}");
        let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison (<, <=, > or >=)"))?;
        let (name, rest) = compact.split_at(at);
        let (op, value) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        let number = |s: &str| -> Result<f64, String> {
            let v: f64 = s
                .parse()
                .map_err(|_| bad(&format!("{s:?} is not a number")))?;
            if !v.is_finite() || v < 0.0 {
                return Err(bad(&format!("{s} is not a number of 0 or more")));
            }
            Ok(v)
        };
        let (metric, threshold) = match name.to_ascii_lowercase().as_str() {
            "errors" => match value.strip_suffix('%') {
                Some(v) => (Metric::ErrorShare, number(v)?),
                None => (Metric::ErrorCount, number(value)?),
            },
            "rps" => (Metric::Rate, number(value)?),
            p if p.starts_with('p') => {
                let q: f64 = p[1..]
                    .parse()
                    .map_err(|_| bad(&format!("unknown metric {name:?}")))?;
                if !(q > 0.0 && q <= 100.0) {
                    return Err(bad(&format!("percentile {q} is not in (0, 100]")));
                }
                let split = value
                    .find(|c: char| c.is_ascii_alphabetic())
                    .ok_or_else(|| bad("a latency needs a unit: us, ms or s"))?;
                let (v, unit) = value.split_at(split);
                let scale = match unit {
                    "us" => 1.0,
                    "ms" => 1e3,
                    "s" => 1e6,
                    _ => return Err(bad(&format!("unknown unit {unit:?}: use us, ms or s"))),
                };
                (Metric::Percentile(q), number(v)? * scale)
            }
            _ => return Err(bad(&format!("unknown metric {name:?}"))),
        };
        Ok(Check {
            expression: expr.to_string(),
            metric,
            op,
            threshold,
        })
    }

    /// The verdict on `run`. A latency threshold fails when no request succeeded.
    pub fn evaluate(&self, run: &RunResult) -> CheckResult {
        let failed = run.errors.total();
        let all = run.requests + failed;
        let (measured, unit, passed) = match self.metric {
            Metric::Percentile(q) => {
                let v = decode(&run.histogram_corrected)
                    .ok()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.value_at_quantile(q / 100.0) as f64);
                match v {
                    Some(v) => (v, "us", self.op.holds(v, self.threshold)),
                    None => (0.0, "us", false),
                }
            }
            Metric::ErrorShare => {
                let share = if all == 0 {
                    0.0
                } else {
                    failed as f64 * 100.0 / all as f64
                };
                // No request at all is not an error rate to be proud of.
                let passed = all > 0 && self.op.holds(share, self.threshold);
                (share, "percent", passed)
            }
            Metric::ErrorCount => {
                let n = failed as f64;
                (n, "requests", self.op.holds(n, self.threshold))
            }
            Metric::Rate => {
                let r = run.requests_per_s;
                (r, "per_s", self.op.holds(r, self.threshold))
            }
        };
        CheckResult {
            expression: self.expression.clone(),
            measured,
            threshold: self.threshold,
            unit: unit.into(),
            passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_with_their_units() {
        let c = Check::parse("p99<10ms").unwrap();
        assert_eq!(
            (c.metric, c.op, c.threshold),
            (Metric::Percentile(99.0), Op::Lt, 10_000.0)
        );
        let c = Check::parse("p99.9 <= 2s").unwrap();
        assert_eq!(
            (c.metric, c.op, c.threshold),
            (Metric::Percentile(99.9), Op::Le, 2e6)
        );
        assert_eq!(Check::parse("p50<250us").unwrap().threshold, 250.0);
        let c = Check::parse("errors<0.1%").unwrap();
        assert_eq!((c.metric, c.threshold), (Metric::ErrorShare, 0.1));
        let c = Check::parse("errors<5").unwrap();
        assert_eq!((c.metric, c.threshold), (Metric::ErrorCount, 5.0));
        let c = Check::parse("rps>=1000").unwrap();
        assert_eq!((c.metric, c.op), (Metric::Rate, Op::Ge));
    }

    #[test]
    fn bad_expressions_are_one_line_errors() {
        for bad in [
            "p99",
            "p99<10",
            "p99<10parsecs",
            "p0<1ms",
            "p101<1ms",
            "latency<1ms",
            "rps>x",
            "errors<-1",
            "",
        ] {
            let e = Check::parse(bad).unwrap_err();
            assert!(e.starts_with("--check") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
