//! The results model (versioned JSON), latency statistics from HDR histograms, and
//! (later) plots and reports. Statistics are computed here; plotting only draws.

#![warn(missing_docs)]

pub mod histogram;
pub mod result;
pub mod scenarios;

pub use result::*;
