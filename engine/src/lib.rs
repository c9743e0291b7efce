//! A reference epoll HTTP/1.1 engine on raw Linux syscalls.
//!
//! One event-loop thread per worker, each with its own epoll instance and its own
//! `SO_REUSEPORT` listen socket on the shared port. The contract it keeps, clause by
//! clause, is `SPEC-engine.md`; the `scenarios` crate checks every clause.
//!
//! ```no_run
//! use std::sync::Arc;
//! use engine::{Config, Engine, Request, Response};
//!
//! let handler = |_req: &Request<'_>, res: &mut Response| {
//!     res.header("content-type", b"text/plain").body(b"Hello, World!");
//! };
//! let engine = Arc::new(Engine::new(Config { workers: 2, ..Config::default() }, handler)?);
//! let runner = Arc::clone(&engine);
//! let thread = std::thread::spawn(move || runner.listen());
//! // ... engine.addr(), engine.pause_accept(), engine.worker_loop(7).write(fd, b"..") ...
//! engine.shutdown(std::time::Duration::from_secs(5))?;
//! thread.join().unwrap()?;
//! # Ok::<(), engine::EngineError>(())
//! ```

#![warn(missing_docs)]
// Every `unsafe` of the crate is in `sys`, the one module allowed it (below).
#![deny(unsafe_code)]

/// Whether a named fault is injected; constant `false` without the `faults` feature.
macro_rules! fault {
    ($cfg:expr, $name:ident) => {{
        #[cfg(feature = "faults")]
        {
            $cfg.fault(crate::faults::Fault::$name)
        }
        #[cfg(not(feature = "faults"))]
        {
            let _ = &$cfg;
            false
        }
    }};
}

// Code map, top down: each module imports only modules on its line or below it, and
// there is no import cycle (both checked by loadgen/tests/architecture.rs).
//
//   engine       the `Engine` handle: lifecycle, accept and worker control, selection
//   worker/      one event-loop thread (drain rule and triggering in worker/mod.rs)
//   worker_loop  the public `WorkerLoop` handle and its driver API
//   shared       what the handle, the workers and the `WorkerLoop`s share
//   driver       one registered driver fd: callbacks and capped write queue
//   token        the epoll token of a worker's events
//   http/        parsing, response framing, the `Handler` interface
//   config, error, metrics, faults
//   sys          syscalls, and the only `unsafe` of the crate
//   sync         poison-tolerant locking
//
// Architecture invariant: nothing outside `sys` is `unsafe`, and no public item
// outside `sys` takes or returns a `sys` type.

pub mod sync;
// Public for the harness crates (`loadgen`, `scenarios`), hidden from the engine's
// documented API: see the module's own documentation.
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod sys;

mod config;
mod driver;
mod engine;
mod error;
#[cfg(feature = "faults")]
pub mod faults;
pub mod http;
mod metrics;
mod shared;
mod token;
mod worker;
mod worker_loop;

pub use config::{Config, ConfigError, ValidConfig, DRIVER_WRITE_CAP, MAX_TIMEOUT};
pub use engine::{Engine, EngineType};
pub use error::{DriverError, EngineError};
pub use http::handler::{BodySource, Handler, Request, Response};
pub use metrics::{Metrics, WorkerMetrics, WorkerState};
pub use worker_loop::WorkerLoop;
