//! Scenario descriptions, verdicts and the run context.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::target::{Capability, Reference, Target};

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

/// A clause of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Clause {
    /// Stable ID, e.g. `accept.pause.drain-fin`.
    pub id: &'static str,
    /// Level.
    pub level: Level,
    /// The requirement, in one sentence.
    pub text: &'static str,
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

/// How a scenario is run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Scales every tolerance and deadline (slow machines: > 1).
    pub slack: f64,
    /// Workers of the engines the scenarios start (at least 2 where it matters).
    pub workers: usize,
    /// The fault to inject (negative controls).
    #[cfg(feature = "faults")]
    pub fault: Option<engine::faults::Fault>,
    /// The engine under test (default: the reference engine, in process).
    pub target: Arc<dyn Target>,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new(1.0, 2)
    }
}

impl Ctx {
    /// A context with this slack factor and worker count, no fault.
    pub fn new(slack: f64, workers: usize) -> Ctx {
        Ctx {
            slack,
            workers,
            #[cfg(feature = "faults")]
            fault: None,
            target: Arc::new(Reference),
        }
    }

    /// The same context against `target`.
    pub fn with_target(mut self, target: Arc<dyn Target>) -> Ctx {
        self.target = target;
        self
    }

    /// A duration scaled by the slack.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.slack.max(0.01))
    }
    /// `ms` milliseconds, scaled.
    pub fn ms(&self, ms: u64) -> Duration {
        self.scaled(Duration::from_millis(ms))
    }
    /// The base engine configuration for a scenario: `workers` workers on
    /// `127.0.0.1:0`, with the fault injected when one is set.
    pub fn config(&self) -> engine::Config {
        #[allow(unused_mut)]
        let mut cfg = engine::Config {
            workers: self.workers,
            address: "127.0.0.1:0".to_string(),
            ..engine::Config::default()
        };
        #[cfg(feature = "faults")]
        {
            cfg.fault = self.fault;
        }
        cfg
    }
}

/// A scenario: its clause and its check.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The clause checked.
    pub clause: Clause,
    /// Short names that select it (with others), e.g. `pause-accept`.
    pub aliases: &'static [&'static str],
    /// What it needs from the target; without one of them it is `skipped`.
    pub needs: &'static [Capability],
    /// The check.
    pub check: fn(&Ctx) -> Outcome,
}

/// Scenarios whose clause is about FIN versus RST. As root they run in a fresh network
/// namespace and report the RSTs the host emitted next to the client-side view; for
/// those marked `true` the harness closes every client socket cleanly, so any RST in
/// the namespace is the engine's and fails the clause.
const HOST_RST_SCENARIOS: &[(&str, bool)] = &[
    ("accept.pause.drain-fin", true),
    ("accept.pause.zero-loss", true),
    ("accept.no-deferred", true),
    ("accept.pause.handover", false),
    ("accept.pause.handover-race", false),
    ("accept.pause.keep-serving", false),
    ("engine.shutdown.graceful", false),
    ("http.keepalive", false),
    ("http.errors", false),
    ("http.timeouts", false),
];

fn run_check(check: fn(&Ctx) -> Outcome, ctx: &Ctx) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(ctx))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Outcome::new().error(format!("the check panicked: {msg}"))
        }
    }
}

/// Runs `check` on a thread inside a fresh network namespace and adds the host's RST
/// counts (`Tcp: OutRsts`, `TcpExt: TCPAbortOnClose`) to its outcome.
fn run_in_namespace(check: fn(&Ctx) -> Outcome, ctx: &Ctx, strict: bool) -> Outcome {
    use engine::sys::netns;
    let ctx = ctx.clone();
    let worker = std::thread::Builder::new()
        .name("scenario-netns".into())
        .spawn(move || {
            netns::enter_new_net_namespace()
                .map_err(|e| format!("creating a network namespace: {e}"))?;
            let before = netns::rst_counters().map_err(|e| format!("reading RST counters: {e}"))?;
            let mut o = run_check(check, &ctx);
            let after = netns::rst_counters().map_err(|e| format!("reading RST counters: {e}"))?;
            let out_rsts = after.out_rsts - before.out_rsts;
            let aborts = after.abort_on_close - before.abort_on_close;
            o.saw(format!(
                "host RSTs in the scenario's network namespace: Tcp OutRsts +{out_rsts}, TcpExt TCPAbortOnClose +{aborts}"
            ));
            if strict {
                o.expect("the host sends no RST at all (Tcp OutRsts +0 in the scenario's network namespace)");
                o.check(out_rsts == 0, || {
                    format!("the host sent {out_rsts} RSTs ({aborts} on close with unread data); allowed 0")
                });
            }
            Ok::<Outcome, String>(o)
        });
    match worker.map_err(|e| e.to_string()).and_then(|h| {
        h.join()
            .map_err(|_| "the scenario thread panicked".to_string())
    }) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) | Err(e) => Outcome::new().error(e),
    }
}

impl Scenario {
    /// Runs the check (a panic inside becomes an `error` verdict) and sets the verdict.
    /// FIN/RST scenarios run in a fresh network namespace when the process is root, and
    /// report the host's RST counters; otherwise they say the view is client-side only.
    pub fn run(&self, ctx: &Ctx) -> Outcome {
        let missing = self.missing(ctx.target.as_ref());
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
            return Outcome::new()
                .skipped(format!(
                    "target {} lacks {}",
                    ctx.target.name(),
                    names.join(", ")
                ))
                .finish(self.clause.level);
        }
        let rst = HOST_RST_SCENARIOS
            .iter()
            .find(|(id, _)| *id == self.clause.id)
            .map(|(_, strict)| *strict);
        let outcome = match rst {
            Some(strict) if engine::sys::netns::is_root() && ctx.target.can_isolate() => {
                run_in_namespace(self.check, ctx, strict)
            }
            Some(_) if !ctx.target.can_isolate() => {
                let mut o = run_check(self.check, ctx);
                o.saw("client-side only: the target runs outside the harness's network namespaces, so the host's RSTs are not counted");
                o
            }
            Some(_) => {
                let mut o = run_check(self.check, ctx);
                o.saw("client-side only: not root, so the host's RSTs are not counted (no network namespace)");
                o
            }
            None => run_check(self.check, ctx),
        };
        outcome.finish(self.clause.level)
    }
}

impl Scenario {
    /// The capabilities this scenario needs that `target` lacks.
    pub fn missing(&self, target: &dyn Target) -> Vec<Capability> {
        self.needs
            .iter()
            .copied()
            .filter(|c| !target.has(*c))
            .collect()
    }
}

/// Every scenario, in contract order.
pub fn registry() -> Vec<Scenario> {
    crate::checks::all()
}

/// The scenario with this clause ID.
pub fn find(id: &str) -> Option<Scenario> {
    registry().into_iter().find(|s| s.clause.id == id)
}
