//! What a scenario needs from an engine: the [`Target`] abstraction.
//!
//! A scenario never names the reference engine: it asks its context's target to start
//! an instance ([`Target::start`]) with a configuration, then drives it through
//! [`Instance`] (accept and worker control, selection, metrics, shutdown) and
//! [`DriverLoop`] (the driver API), and observes it from the client side. A target
//! declares the [`Capability`]s it has; a scenario that needs one it lacks is
//! `skipped` with the reason. The lifecycle clauses (`engine.new.validate`,
//! `engine.listen.*`, ...) go one step earlier: [`Target::host`] gives a [`Host`] (the
//! process engines are built in, observed from `/proc/<pid>`) whose
//! [`build`](Host::build) is `new` without listening, and the [`Built`] engine is
//! queried before, while and after `listen`.
//!
//! The vocabulary is the contract's (`SPEC-engine.md`): [`engine::Config`] for the
//! settings a scenario asks for, [`EngineError`], [`DriverError`], [`WorkerState`] and
//! [`Metrics`] for what comes back. An engine author maps their engine onto these.
//!
//! Implementing it for your own Rust engine (here a toy that only serves HTTP on an
//! address it was given, so it declares [`Capability::Http`] alone and the accept,
//! worker and driver scenarios are skipped):
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use engine::{Config, EngineError};
//! use scenarios::targets::{Capability, Instance, Target};
//!
//! #[derive(Debug)]
//! struct MyEngine {
//!     addr: SocketAddr,
//! }
//!
//! impl Target for MyEngine {
//!     fn name(&self) -> String {
//!         "my-engine".into()
//!     }
//!     fn capabilities(&self) -> &[Capability] {
//!         &[Capability::Http]
//!     }
//!     fn start(&self, _cfg: &Config, _tag: &str) -> Result<Arc<dyn Instance>, String> {
//!         Ok(Arc::new(Running { addr: self.addr }))
//!     }
//! }
//!
//! struct Running {
//!     addr: SocketAddr,
//! }
//!
//! // Only what an HTTP-only engine has; accept and worker control, selection and
//! // metrics keep their defaults ("unsupported"), matching the capabilities above.
//! impl Instance for Running {
//!     fn addr(&self) -> SocketAddr {
//!         self.addr
//!     }
//!     fn effective_config(&self) -> Option<Config> {
//!         None
//!     }
//!     fn num_workers(&self) -> usize {
//!         1
//!     }
//!     fn shutdown(&self, _grace: Duration) -> Result<(), EngineError> {
//!         Ok(())
//!     }
//! }
//!
//! let ctx = scenarios::Ctx::new(1.0, 2)
//!     .with_target(Arc::new(MyEngine { addr: "127.0.0.1:9".parse().unwrap() }));
//! let pause = scenarios::find("accept.pause.sync").unwrap();
//! // The target cannot pause accepting: the scenario is skipped, saying why.
//! assert!(matches!(pause.run(&ctx).verdict, scenarios::Verdict::Skipped(_)));
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Config, DriverError, EngineError, EngineType, Metrics, WorkerState};

mod free_port;
pub mod nginx;
pub mod reference;
pub mod remote;
pub mod url;

pub use free_port::{on_free_port, StartError};
pub use nginx::Nginx;
pub use reference::Reference;
pub use remote::RemoteTarget;
pub use url::UrlTarget;

/// Something a scenario may need from a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Serves HTTP/1.1 on an address (every target has it).
    Http,
    /// Starts instances with the limits and timeouts a scenario asks for
    /// (`max_header_bytes`, `idle_timeout`, ...), and with the number of workers.
    Config,
    /// Serves the test routes: `/worker`, `/echo`, `/slow`, `/hold`, `/big`,
    /// `/inspect`, `/id` (see [`TestHandler`](crate::test_handler::TestHandler); its
    /// `/count` and `/stall` serve the reference engine's own tests, no scenario
    /// asks a target for them).
    TestRoutes,
    /// `pause_accept` / `resume_accept`.
    AcceptControl,
    /// Two instances can share one port (`SO_REUSEPORT`) for the handover scenarios.
    SharedPort,
    /// `pause_worker` / `resume_worker` / `worker_state`.
    WorkerControl,
    /// `worker_loop(n)`: modulo selection, worker index, CPU and thread id.
    Selection,
    /// The driver API on caller-owned fds of this process: `register_conn`,
    /// `unregister_conn`, `write`.
    Driver,
    /// `metrics()`.
    Metrics,
    /// The engine's lifecycle ([`Target::host`]): `new` that validates without
    /// listening, `listen` run in the background and watched until it returns, and
    /// `addr`, `num_workers`, `engine_type` and `worker_loop` before listening.
    Lifecycle,
    /// The engine's process is on this machine and readable in `/proc/<pid>`
    /// ([`Instance::pid`], [`Host::pid`]): its fds, sockets and threads.
    Process,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 11] = [
        Capability::Http,
        Capability::Config,
        Capability::TestRoutes,
        Capability::AcceptControl,
        Capability::SharedPort,
        Capability::WorkerControl,
        Capability::Selection,
        Capability::Driver,
        Capability::Metrics,
        Capability::Lifecycle,
        Capability::Process,
    ];

    /// Its name in messages and `scenario list`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Http => "http",
            Capability::Config => "config",
            Capability::TestRoutes => "test-routes",
            Capability::AcceptControl => "accept-control",
            Capability::SharedPort => "shared-port",
            Capability::WorkerControl => "worker-control",
            Capability::Selection => "selection",
            Capability::Driver => "driver",
            Capability::Metrics => "metrics",
            Capability::Lifecycle => "lifecycle",
            Capability::Process => "process",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine the scenarios can run against.
pub trait Target: Send + Sync + fmt::Debug {
    /// Its name in reports (`reference`, `nginx`, a URL, ...).
    fn name(&self) -> String;
    /// What it can do.
    fn capabilities(&self) -> &[Capability];
    /// Starts an instance with `cfg` (its `address`, `workers`, limits and timeouts, as
    /// far as the target has [`Capability::Config`]) and returns once it listens.
    /// `tag` is what the instance answers on `/id` (tells two instances on one port
    /// apart). The instance shuts down when the last handle is dropped.
    fn start(&self, cfg: &Config, tag: &str) -> Result<Arc<dyn Instance>, String>;
    /// Can its instances start inside a fresh network namespace (for the FIN/RST
    /// scenarios, which count the host's RSTs there)? Not for a server that is already
    /// running elsewhere.
    fn can_isolate(&self) -> bool {
        true
    }
    /// A place to build engines in without listening ([`Capability::Lifecycle`]):
    /// this process for an in-process engine, a fresh process for one driven from
    /// outside. Default: unsupported.
    fn host(&self) -> Result<Box<dyn Host>, String> {
        Err(format!(
            "{}: no lifecycle (new / listen) operations",
            self.name()
        ))
    }
    /// Does it have `cap`?
    fn has(&self, cap: Capability) -> bool {
        self.capabilities().contains(&cap)
    }
}

/// A running instance of a target: the operations of the contract's sections 2-5.
/// Every method may be called from any thread.
pub trait Instance: Send + Sync {
    /// The bound address.
    fn addr(&self) -> SocketAddr;
    /// The limits and timeouts the instance really runs with, when known.
    fn effective_config(&self) -> Option<Config>;
    /// Workers.
    fn num_workers(&self) -> usize;
    /// Graceful shutdown within `grace`; returns once the instance has stopped.
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError>;
    /// Closes every listen socket (drain with FIN) and returns when they are closed.
    /// Default: unsupported (a target without [`Capability::AcceptControl`]).
    fn pause_accept(&self) -> Result<(), EngineError> {
        Err(unsupported("pause_accept"))
    }
    /// Is accepting paused engine-wide?
    fn accept_paused(&self) -> bool {
        false
    }
    /// Listens again on every worker; returns when they listen.
    fn resume_accept(&self) -> Result<(), EngineError> {
        Err(unsupported("resume_accept"))
    }
    /// Pauses worker `index` (asynchronous). Default: unsupported (a target without
    /// [`Capability::WorkerControl`]), as for the two below.
    fn pause_worker(&self, _index: usize) -> Result<(), EngineError> {
        Err(unsupported("pause_worker"))
    }
    /// Resumes worker `index`.
    fn resume_worker(&self, _index: usize) -> Result<(), EngineError> {
        Err(unsupported("resume_worker"))
    }
    /// Worker `index`'s state.
    fn worker_state(&self, _index: usize) -> Result<WorkerState, EngineError> {
        Err(unsupported("worker_state"))
    }
    /// The worker `n` selects (modulo, mirrored), or `None` when the target has no
    /// [`Capability::Selection`].
    fn worker_loop(&self, _n: i64) -> Option<Arc<dyn DriverLoop>> {
        None
    }
    /// A metrics snapshot (default: all zero, for a target without
    /// [`Capability::Metrics`]).
    fn metrics(&self) -> Metrics {
        Metrics::default()
    }
    /// How many `/hold` requests have entered the handler so far.
    fn holds_entered(&self) -> u64 {
        0
    }
    /// Lets every held (and future) `/hold` request through.
    fn release_holds(&self) {}
    /// SIGPIPEs the engine's process has received so far, when it is not this
    /// process (`None`: count them here; `Some(Err)`: the process could not be asked,
    /// e.g. because it died).
    fn sigpipes(&self) -> Option<Result<u64, String>> {
        None
    }
    /// The process the instance runs in, when the harness can read its `/proc`
    /// ([`Capability::Process`]).
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// Where engines are built ([`Target::host`]): one process, observed from `/proc`.
pub trait Host: Send + Sync {
    /// The process the engines live in.
    fn pid(&self) -> u32;
    /// `Engine::new`: an engine that validated `cfg` and does not listen yet (`tag` is
    /// what it answers on `/id`), or why not.
    fn build(&self, cfg: &Config, tag: &str) -> Result<Box<dyn Built>, BuildError>;
}

/// Why [`Host::build`] gave no engine.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The engine refused the configuration (its answer).
    #[error("new: {}", .0.message)]
    Rejected(Rejected),
    /// The host could not ask the engine (the target went away, does not know `new`,
    /// ...): not the engine's verdict on the configuration.
    #[error("new: {0}")]
    Host(String),
}

/// The engine's refusal of a configuration.
#[derive(Debug)]
pub struct Rejected {
    /// The error, in the contract's vocabulary.
    pub error: EngineError,
    /// The message as the engine worded it.
    pub message: String,
    /// Whether the engine had released the handler it was given by the time `new`
    /// returned (nothing spawned or kept holds it); `None` when the target cannot tell.
    pub handler_released: Option<bool>,
}

/// What `engine_type()` says: the variant (when the harness knows the name) and how
/// it displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeReport {
    /// The variant.
    pub typed: Option<EngineType>,
    /// Its `Display`.
    pub shown: String,
}

/// Where a built engine's `listen` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenState {
    /// Not called yet.
    Idle,
    /// Running.
    Running,
    /// Returned this (the error as the engine worded it).
    Returned(Result<(), String>),
}

/// One look at a built engine: `addr()`, `num_workers()`, `engine_type()` and its
/// `listen`, taken together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `addr()`: `None` until every worker listens.
    pub addr: Option<SocketAddr>,
    /// `num_workers()`.
    pub workers: usize,
    /// `engine_type()`.
    pub engine_type: TypeReport,
    /// Where `listen` is.
    pub listen: ListenState,
}

/// A worker `worker_loop` selected: its index and kernel thread id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// The worker's index.
    pub index: usize,
    /// Its thread (in the engine's process).
    pub thread_id: i32,
}

/// An engine [`Host::build`] made: not listening until [`Built::listen`]. Stopped when
/// dropped (with its process, for a target in another one).
pub trait Built: Send + Sync {
    /// Its status now (`Err`: the target could not be asked).
    fn status(&self) -> Result<Status, String>;
    /// `worker_loop(n)` when `strict` (which must refuse before listening: `Err` with
    /// the engine's message, e.g. a Rust panic's) or `try_worker_loop(n)` (which must
    /// return `Ok(None)` then).
    fn select(&self, n: i64, strict: bool) -> Result<Option<Selected>, String>;
    /// Starts `listen` in the background and returns at once.
    fn listen(&self) -> Result<(), String>;
    /// `shutdown(grace)` (whether `listen` has returned is in [`Built::status`]).
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError>;
}

thread_local! {
    static CALLBACK_THREAD: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// The kernel thread id a driver callback runs on, as the engine saw it: inside a
/// callback of a remote target, the target's worker thread the event came from;
/// otherwise the calling thread.
pub fn callback_thread_id() -> i32 {
    CALLBACK_THREAD
        .with(|c| c.get())
        .unwrap_or_else(engine::sys::thread::gettid)
}

/// Marks the current thread as running a callback of the target's thread `tid`.
pub(crate) fn set_callback_thread(tid: Option<i32>) {
    CALLBACK_THREAD.with(|c| c.set(tid));
}

/// Called with the bytes that arrive on a driver connection, on the worker thread.
pub type OnRecv = Box<dyn FnMut(&[u8]) + Send + 'static>;
/// Called once when a driver connection closes, on the worker thread.
pub type OnClose = Box<dyn FnOnce(Option<io::Error>) + Send + 'static>;

/// One worker of an instance: its identity and the driver API.
pub trait DriverLoop: Send + Sync {
    /// The worker's index.
    fn index(&self) -> usize;
    /// The pinned CPU, or -1.
    fn cpu_id(&self) -> i32;
    /// The worker thread's kernel thread id (in the instance's process).
    fn thread_id(&self) -> i32;
    /// `register_conn` with boxed callbacks (see [`register_conn`](#method.register_conn)).
    fn register_boxed(
        &self,
        fd: RawFd,
        on_recv: OnRecv,
        on_close: OnClose,
    ) -> Result<(), DriverError>;
    /// Removes fd; `on_close(None)` runs once at the worker's next iteration.
    fn unregister_conn(&self, fd: RawFd) -> Result<(), DriverError>;
    /// Queues data for fd (QueueFull at the cap).
    fn write(&self, fd: RawFd, data: &[u8]) -> Result<(), DriverError>;
    /// `write`, and how long the call took where it ran: a target in another process
    /// measures its own call (so the harness's transport is not counted). The default
    /// times the call here.
    fn write_timed(&self, fd: RawFd, data: &[u8]) -> (Result<(), DriverError>, Duration) {
        let t0 = Instant::now();
        let r = self.write(fd, data);
        (r, t0.elapsed())
    }
    /// Registers the engine's own fd of its HTTP connection `local` ← `peer` (which
    /// must fail with `HttpConn`): the fd number and the result, or `None` when the
    /// connection is not found. The default looks in this process's `/proc/self/fd`
    /// (an engine in the harness's process).
    fn register_engine_fd(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<(RawFd, Result<(), DriverError>)> {
        let fd = engine_fd_of(local, peer)?;
        Some((
            fd,
            self.register_boxed(fd, Box::new(|_| {}), Box::new(|_| {})),
        ))
    }
}

/// This process's fd of the TCP connection `local` ← `peer` (from `/proc/self/fd`).
pub fn engine_fd_of(local: SocketAddr, peer: SocketAddr) -> Option<RawFd> {
    use engine::sys::socket;
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|&fd| {
            socket::local_addr(fd).is_ok_and(|a| a == local)
                && socket::peer_addr(fd).is_ok_and(|a| a == peer)
        })
}

impl dyn DriverLoop + '_ {
    /// Adds a caller-owned non-blocking fd: `on_recv` gets its bytes in order,
    /// `on_close` runs exactly once.
    pub fn register_conn(
        &self,
        fd: RawFd,
        on_recv: impl FnMut(&[u8]) + Send + 'static,
        on_close: impl FnOnce(Option<io::Error>) + Send + 'static,
    ) -> Result<(), DriverError> {
        self.register_boxed(fd, Box::new(on_recv), Box::new(on_close))
    }
}

/// The error an operation the target does not have returns.
pub fn unsupported(op: &str) -> EngineError {
    EngineError::Io {
        what: format!("{op}: not supported by this target"),
        source: io::Error::from(io::ErrorKind::Unsupported),
    }
}

// A shared handle is an instance too (so `&Arc<dyn Instance>` passes where
// `&dyn Instance` is expected).
impl<T: Instance + ?Sized> Instance for Arc<T> {
    fn addr(&self) -> SocketAddr {
        (**self).addr()
    }
    fn effective_config(&self) -> Option<Config> {
        (**self).effective_config()
    }
    fn num_workers(&self) -> usize {
        (**self).num_workers()
    }
    fn pause_accept(&self) -> Result<(), EngineError> {
        (**self).pause_accept()
    }
    fn accept_paused(&self) -> bool {
        (**self).accept_paused()
    }
    fn resume_accept(&self) -> Result<(), EngineError> {
        (**self).resume_accept()
    }
    fn pause_worker(&self, index: usize) -> Result<(), EngineError> {
        (**self).pause_worker(index)
    }
    fn resume_worker(&self, index: usize) -> Result<(), EngineError> {
        (**self).resume_worker(index)
    }
    fn worker_state(&self, index: usize) -> Result<WorkerState, EngineError> {
        (**self).worker_state(index)
    }
    fn worker_loop(&self, n: i64) -> Option<Arc<dyn DriverLoop>> {
        (**self).worker_loop(n)
    }
    fn metrics(&self) -> Metrics {
        (**self).metrics()
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        (**self).shutdown(grace)
    }
    fn holds_entered(&self) -> u64 {
        (**self).holds_entered()
    }
    fn release_holds(&self) {
        (**self).release_holds()
    }
    fn sigpipes(&self) -> Option<Result<u64, String>> {
        (**self).sigpipes()
    }
    fn pid(&self) -> Option<u32> {
        (**self).pid()
    }
}

impl<T: DriverLoop + ?Sized> DriverLoop for Arc<T> {
    fn index(&self) -> usize {
        (**self).index()
    }
    fn cpu_id(&self) -> i32 {
        (**self).cpu_id()
    }
    fn thread_id(&self) -> i32 {
        (**self).thread_id()
    }
    fn register_boxed(
        &self,
        fd: RawFd,
        on_recv: OnRecv,
        on_close: OnClose,
    ) -> Result<(), DriverError> {
        (**self).register_boxed(fd, on_recv, on_close)
    }
    fn unregister_conn(&self, fd: RawFd) -> Result<(), DriverError> {
        (**self).unregister_conn(fd)
    }
    fn write(&self, fd: RawFd, data: &[u8]) -> Result<(), DriverError> {
        (**self).write(fd, data)
    }
    fn write_timed(&self, fd: RawFd, data: &[u8]) -> (Result<(), DriverError>, Duration) {
        (**self).write_timed(fd, data)
    }
    fn register_engine_fd(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<(RawFd, Result<(), DriverError>)> {
        (**self).register_engine_fd(local, peer)
    }
}
