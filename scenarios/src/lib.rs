//! Conformance scenarios: one check per clause ID of `SPEC-engine.md`.
//!
//! A check drives a fresh engine on port 0, observes from the client side and returns
//! an [`Outcome`] (verdict, every acceptable outcome, what it actually saw), so that a
//! runner can print Requirement / Expected / Actual, and `cargo test` can assert on it.
//!
//! Module map (each module uses only those listed after it; there is no cycle):
//!
//! - [`registry`]: the table of scenarios, one entry per clause.
//! - `checks`: the checks, by section of the contract.
//! - [`scenario`]: a scenario and how one is run (capabilities, panics, RST counting).
//! - [`harness`]: starting an instance of the target for a check; `/proc` readings.
//! - [`ctx`]: how a scenario is run (slack, workers, fault, target).
//! - [`targets`]: what a scenario needs from an engine, and the engines: the reference
//!   engine in process (and `reference::Running`, the one "engine on a thread" type
//!   tests and `loadgen counters` share), a URL, nginx, and an engine in another
//!   process over the control protocol (both of its ends).
//! - [`test_handler`]: the reference engine's one route table: the public routes
//!   (`loadgen serve`) and the test routes on top.
//! - [`client`]: the client side: connecting, requests, observing how a connection
//!   ends, and the one response head parser (also behind `loadgen`'s fixed-buffer
//!   reader).
//! - [`outcome`]: verdicts and outcomes.
//! - [`wait`]: polling with a deadline.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod checks;
pub mod client;
pub mod ctx;
pub mod harness;
pub mod outcome;
pub mod registry;
pub mod scenario;
pub mod targets;
pub mod test_handler;
pub mod wait;

pub use ctx::Ctx;
pub use outcome::{Level, Outcome, Verdict};
pub use registry::{find, registry};
pub use scenario::{Clause, HostRsts, Scenario};
