//! A scenario (a clause and its check) and how one is run: capabilities first, a
//! panic caught, the FIN/RST clauses in a network namespace of their own.

use crate::ctx::Ctx;
use crate::outcome::{Abort, Checked, Level, Outcome};
use crate::targets::{Capability, Target};

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
/// A scenario: its clause and its check.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The clause checked.
    pub clause: Clause,
    /// Short names that select it (with others), e.g. `pause-accept`.
    pub aliases: &'static [&'static str],
    /// What it needs from the target; without one of them it is `skipped`.
    pub needs: &'static [Capability],
    /// Whether its clause is about FIN versus RST, and so how the host's RSTs count.
    pub host_rsts: HostRsts,
    /// The check.
    pub check: Check,
}

/// A check: records what it expects and sees in the outcome it is given; stops early
/// with an [`Abort`] when the harness cannot run it or it does not apply.
pub type Check = fn(&Ctx, &mut Outcome) -> Checked;

/// For a clause about FIN versus RST: as root, the scenario runs in a fresh network
/// namespace and reports the RSTs the host emitted next to the client-side view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRsts {
    /// Not a FIN/RST clause: run as is, nothing counted.
    NotCounted,
    /// Counted and reported; the client-side view decides.
    Reported,
    /// The harness closes every client socket cleanly, so any RST in the namespace is
    /// the engine's and fails the clause.
    Forbidden,
}
fn run_check(check: Check, ctx: &Ctx) -> Outcome {
    let mut o = Outcome::new();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(ctx, &mut o))) {
        Ok(Ok(())) => o,
        Ok(Err(Abort::Error(why))) => o.error(why),
        Ok(Err(Abort::Skipped(why))) => o.skipped(why),
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
fn run_in_namespace(check: Check, ctx: &Ctx, strict: bool) -> Outcome {
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
        let rst = match self.host_rsts {
            HostRsts::NotCounted => None,
            HostRsts::Reported => Some(false),
            HostRsts::Forbidden => Some(true),
        };
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
    /// The same scenario with this RST policy.
    pub const fn host_rsts(mut self, host_rsts: HostRsts) -> Scenario {
        self.host_rsts = host_rsts;
        self
    }

    /// The capabilities this scenario needs that `target` lacks.
    pub fn missing(&self, target: &dyn Target) -> Vec<Capability> {
        self.needs
            .iter()
            .copied()
            .filter(|c| !target.has(*c))
            .collect()
    }
}
