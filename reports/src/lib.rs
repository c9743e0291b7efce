//! The results model (versioned JSON), latency statistics from HDR histograms, plots
//! and reports, and the exact merge of results. Statistics are computed in [`stats`];
//! [`plot`] only draws.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod gate;
pub mod header;
pub mod histogram;
pub mod merge;
pub mod output;
pub mod plot;
pub mod report;
pub mod result;
pub mod scenarios;
pub mod stats;

pub use result::*;
