//! How a scenario is run: tolerances, workers, the fault to inject, the target.

use std::sync::Arc;
use std::time::Duration;

use crate::targets::{Reference, Target};

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
