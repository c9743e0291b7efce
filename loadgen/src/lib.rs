//! The `loadgen` binary's library. Bird's eye view:
//!
//! - [`cli`]: clap definitions and one short file per subcommand (arguments → a
//!   validated configuration → one library call → an export).
//! - [`load`]: the load engine (epoll client threads, response framing, the run's
//!   figures); `loadgen run`, `bench` and `sweep` drive it.
//! - [`bench`]: the workload matrix, the servers it starts, idle connections.
//! - [`sweep`]: the rate search (pure, in [`sweep::search`]) and its driver.
//! - [`counters`]: per-request counters of the reference engine and their exact
//!   comparison with a baseline.
//! - [`cost`]: the cost per request of any server command under valgrind and strace
//!   (instructions, allocations, syscalls), and the exact A/B comparison.
//! - [`suite`]: the conformance runner (selection, pool, expectations, JUnit, JSON).
//! - [`gate`]: pairing runs for the regression verdict (statistics in `reports::gate`).
//! - [`serve`]: the reference engine's routes for `loadgen serve`.
//! - [`server`]: a server this process started as a child process, stopped on drop.
//!   The blocking response reader (`bench`'s idle connections, `counters`) is
//!   `scenarios::client`'s.
//! - [`export`]: every document and console table (serialization does no I/O) and the
//!   one place that writes output files.
//!
//! Architecture invariants: no module outside `cli/` imports clap; library modules
//! return configurations and figures, `cli/` and `export/` print them.

#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod cost;
pub mod counters;
pub mod export;
pub mod gate;
pub mod load;
pub mod serve;
pub mod server;
pub mod suite;
pub mod sweep;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a MUST clause failed.
pub const EXIT_CONFORMANCE: u8 = 1;
/// Exit code: usage, setup or harness error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a performance metric regressed (`loadgen gate`).
pub const EXIT_REGRESSION: u8 = 3;
