//! What a check observed and the verdict it comes to.

use std::fmt;

/// How binding a clause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A failure fails the run.
    Must,
    /// A failure is reported as `non-strict`.
    Should,
    /// Measured and reported only.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        })
    }
}
/// The verdict of one run of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The clause held.
    Pass,
    /// A MUST clause did not hold.
    Fail,
    /// A SHOULD clause did not hold.
    NonStrict,
    /// Not run, with the reason.
    Skipped(String),
    /// The harness itself failed, with the reason.
    Error(String),
}

impl Verdict {
    /// The verdict's name without its reason: `pass`, `fail`, `non-strict`, `skipped`
    /// or `error` (the names `ci/expectations.tsv` uses).
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NonStrict => "non-strict",
            Verdict::Skipped(_) => "skipped",
            Verdict::Error(_) => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("pass"),
            Verdict::Fail => f.write_str("fail"),
            Verdict::NonStrict => f.write_str("non-strict"),
            Verdict::Skipped(r) => write!(f, "skipped ({r})"),
            Verdict::Error(r) => write!(f, "error ({r})"),
        }
    }
}

/// What a check observed.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Verdict (set by [`Outcome::finish`] from the failures recorded).
    pub verdict: Verdict,
    /// Every acceptable outcome, in words.
    pub expected: Vec<String>,
    /// What was observed (per connection: what the client saw and when).
    pub actual: Vec<String>,
    /// The mismatches found (empty on pass).
    pub failures: Vec<String>,
}

impl Outcome {
    /// An empty outcome; record with the methods below, then [`finish`](Outcome::finish).
    pub fn new() -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            expected: Vec::new(),
            actual: Vec::new(),
            failures: Vec::new(),
        }
    }
    /// Adds an acceptable outcome.
    pub fn expect(&mut self, what: impl Into<String>) {
        self.expected.push(what.into());
    }
    /// Records an observation.
    pub fn saw(&mut self, what: impl Into<String>) {
        self.actual.push(what.into());
    }
    /// Records a failure unless `ok`.
    pub fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) -> bool {
        if !ok {
            self.failures.push(failure());
        }
        ok
    }
    /// Records a failure.
    pub fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }
    /// The harness could not run the check.
    pub fn error(mut self, why: impl Into<String>) -> Outcome {
        self.verdict = Verdict::Error(why.into());
        self
    }
    /// The check does not apply here.
    pub fn skipped(mut self, why: impl Into<String>) -> Outcome {
        self.verdict = Verdict::Skipped(why.into());
        self
    }
    /// Sets the verdict from the failures and the clause's level.
    pub fn finish(mut self, level: Level) -> Outcome {
        if matches!(self.verdict, Verdict::Error(_) | Verdict::Skipped(_)) {
            return self;
        }
        self.verdict = if self.failures.is_empty() {
            Verdict::Pass
        } else if level == Level::Must {
            Verdict::Fail
        } else {
            Verdict::NonStrict
        };
        self
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome::new()
    }
}

/// Why a check stopped before its end: the harness could not run it (an `error`
/// verdict), or it does not apply here (`skipped`). What the check recorded before
/// stays in its [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Abort {
    /// The harness itself failed, with the reason.
    #[error("{0}")]
    Error(String),
    /// The check does not apply, with the reason.
    #[error("skipped: {0}")]
    Skipped(String),
}

impl From<String> for Abort {
    fn from(why: String) -> Abort {
        Abort::Error(why)
    }
}

impl From<&str> for Abort {
    fn from(why: &str) -> Abort {
        Abort::Error(why.to_string())
    }
}

/// What a check returns: `Ok` when it ran to its end (the failures it recorded in its
/// [`Outcome`] decide the verdict), `Err` when it stopped early; harness and setup
/// errors propagate with `?`.
pub type Checked = Result<(), Abort>;

/// `.or_error("what")?`: a harness step that failed, as `what: the error`.
pub trait OrError<T> {
    /// The value, or an [`Abort::Error`] saying `what: {error}`.
    fn or_error(self, what: &str) -> Result<T, Abort>;
}

impl<T, E: fmt::Display> OrError<T> for Result<T, E> {
    fn or_error(self, what: &str) -> Result<T, Abort> {
        self.map_err(|e| Abort::Error(format!("{what}: {e}")))
    }
}
