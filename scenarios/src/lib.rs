//! Conformance scenarios: one check per clause ID of `SPEC-engine.md`.
//!
//! A check drives a fresh engine on port 0, observes from the client side and returns
//! an [`Outcome`] (verdict, every acceptable outcome, what it actually saw), so that a
//! runner can print Requirement / Expected / Actual, and `cargo test` can assert on it.

#![warn(missing_docs)]

pub mod checks;
pub mod client;
pub mod harness;
pub mod nginx;
mod registry;
pub mod remote;
pub mod target;

pub use registry::{find, registry, Clause, Ctx, Level, Outcome, Scenario, Verdict};
