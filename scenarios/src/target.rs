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
//! use scenarios::target::{Capability, Instance, Target};
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
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use engine::sync::lock;
use engine::{Config, DriverError, Engine, EngineError, EngineType, Metrics, WorkerState};

use crate::harness::{wait_until, TestHandler};

/// Something a scenario may need from a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Serves HTTP/1.1 on an address (every target has it).
    Http,
    /// Starts instances with the limits and timeouts a scenario asks for
    /// (`max_header_bytes`, `idle_timeout`, ...), and with the number of workers.
    Config,
    /// Serves the test routes: `/worker`, `/echo`, `/slow`, `/hold`, `/big`,
    /// `/inspect`, `/id` (see [`TestHandler`]).
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
#[derive(Debug)]
pub enum BuildError {
    /// The engine refused the configuration (its answer).
    Rejected(Rejected),
    /// The host could not ask the engine (the target went away, does not know `new`,
    /// ...): not the engine's verdict on the configuration.
    Host(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Rejected(r) => write!(f, "new: {}", r.message),
            BuildError::Host(e) => write!(f, "new: {e}"),
        }
    }
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

// ---------------------------------------------------------------------------------
// The reference engine, in this process.

/// The reference engine (`engine` crate), started in this process: every capability.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reference;

impl Target for Reference {
    fn name(&self) -> String {
        "reference".into()
    }
    fn capabilities(&self) -> &[Capability] {
        &Capability::ALL
    }
    fn start(&self, cfg: &Config, tag: &str) -> Result<Arc<dyn Instance>, String> {
        let handler = TestHandler::tagged(tag);
        Ok(Arc::new(ReferenceInstance::start(cfg.clone(), handler)?))
    }
    fn host(&self) -> Result<Box<dyn Host>, String> {
        Ok(Box::new(ReferenceHost))
    }
}

/// This process, as the host of reference engines.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReferenceHost;

impl Host for ReferenceHost {
    fn pid(&self) -> u32 {
        std::process::id()
    }
    fn build(&self, cfg: &Config, tag: &str) -> Result<Box<dyn Built>, BuildError> {
        let (engine, released) = new_reference(cfg, TestHandler::tagged(tag));
        match engine {
            Ok(engine) => Ok(Box::new(ReferenceBuilt {
                engine: Arc::new(engine),
                listen: Mutex::new(ListenThread::Idle),
            })),
            Err(error) => Err(BuildError::Rejected(Rejected {
                message: error.to_string(),
                error,
                handler_released: Some(released()),
            })),
        }
    }
}

/// `Engine::new(cfg, routes)`, and a probe that tells whether the engine still holds
/// the handler it was given (a marker travels with it).
pub fn new_reference(
    cfg: &Config,
    routes: TestHandler,
) -> (Result<Engine, EngineError>, impl Fn() -> bool) {
    use engine::Handler;
    let marker = Arc::new(());
    let held = Arc::clone(&marker);
    let handler = move |req: &engine::Request<'_>, res: &mut engine::Response| {
        let _ = &held;
        routes.handle(req, res);
    };
    let engine = Engine::new(cfg.clone(), handler);
    (engine, move || Arc::strong_count(&marker) == 1)
}

/// A reference engine's `listen`, on a thread of its own.
#[derive(Debug)]
pub enum ListenThread {
    /// Not started.
    Idle,
    /// Running on this thread.
    Running(JoinHandle<Result<(), EngineError>>),
    /// Returned this.
    Returned(Result<(), Arc<EngineError>>),
}

impl ListenThread {
    /// Starts `engine.listen()` on a thread of its own (`AlreadyListening` if it was
    /// started before).
    pub fn start(&mut self, engine: &Arc<Engine>) -> Result<(), EngineError> {
        if !matches!(self, ListenThread::Idle) {
            return Err(EngineError::AlreadyListening);
        }
        let runner = Arc::clone(engine);
        let thread = std::thread::Builder::new()
            .name("engine-listen".into())
            .spawn(move || runner.listen())
            .map_err(|source| EngineError::Io {
                what: "spawning the listen thread".into(),
                source,
            })?;
        *self = ListenThread::Running(thread);
        Ok(())
    }

    /// Joins the thread if it has finished: `None` while `listen` runs or before it
    /// started.
    pub fn returned(&mut self) -> Option<Result<(), Arc<EngineError>>> {
        match self {
            ListenThread::Idle => None,
            ListenThread::Running(t) if !t.is_finished() => None,
            _ => Some(self.join()),
        }
    }

    /// Waits until `listen` has returned, and what it returned (`Ok` if it was never
    /// started).
    pub fn join(&mut self) -> Result<(), Arc<EngineError>> {
        if matches!(self, ListenThread::Running(_)) {
            let ListenThread::Running(t) = std::mem::replace(self, ListenThread::Idle) else {
                unreachable!("matched above");
            };
            *self = ListenThread::Returned(match t.join() {
                Ok(r) => r.map_err(Arc::new),
                Err(_) => Err(Arc::new(EngineError::Io {
                    what: "the listen thread panicked".into(),
                    source: io::Error::other("panic"),
                })),
            });
        }
        match self {
            ListenThread::Returned(r) => r.clone(),
            _ => Ok(()),
        }
    }

    /// Where `listen` is, for [`Status`].
    pub fn state(&mut self) -> ListenState {
        match self.returned() {
            Some(r) => ListenState::Returned(r.map_err(|e| e.to_string())),
            None if matches!(self, ListenThread::Idle) => ListenState::Idle,
            None => ListenState::Running,
        }
    }
}

/// A reference engine built in this process ([`ReferenceHost::build`]).
struct ReferenceBuilt {
    engine: Arc<Engine>,
    listen: Mutex<ListenThread>,
}

impl Built for ReferenceBuilt {
    fn status(&self) -> Result<Status, String> {
        let t = self.engine.engine_type();
        Ok(Status {
            addr: self.engine.addr(),
            workers: self.engine.num_workers(),
            engine_type: TypeReport {
                typed: Some(t),
                shown: t.to_string(),
            },
            listen: lock(&self.listen).state(),
        })
    }
    fn select(&self, n: i64, strict: bool) -> Result<Option<Selected>, String> {
        reference_select(&self.engine, n, strict)
    }
    fn listen(&self) -> Result<(), String> {
        lock(&self.listen)
            .start(&self.engine)
            .map_err(|e| e.to_string())
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.engine.shutdown(grace)
    }
}

impl Drop for ReferenceBuilt {
    fn drop(&mut self) {
        let _ = self.engine.shutdown(Duration::from_secs(1));
        let _ = lock(&self.listen).join();
    }
}

/// `worker_loop(n)` (strict: a panic is caught and its message returned) or
/// `try_worker_loop(n)` (a panic there is an error too).
pub fn reference_select(engine: &Engine, n: i64, strict: bool) -> Result<Option<Selected>, String> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let picked = catch_unwind(AssertUnwindSafe(|| {
        if strict {
            Some(engine.worker_loop(n))
        } else {
            engine.try_worker_loop(n)
        }
    }))
    .map_err(|p| panic_text(&*p))?;
    Ok(picked.map(|w| Selected {
        index: w.index(),
        thread_id: w.thread_id(),
    }))
}

/// A caught panic's message.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A reference engine listening on its own thread; shut down (1 s grace) on drop.
pub struct ReferenceInstance {
    engine: Arc<Engine>,
    listen: Mutex<ListenThread>,
    addr: SocketAddr,
    handler: TestHandler,
}

impl fmt::Debug for ReferenceInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceInstance")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ReferenceInstance {
    /// Starts an engine with `handler` and waits (up to 5 s) until it listens.
    pub fn start(cfg: Config, handler: TestHandler) -> Result<ReferenceInstance, String> {
        let engine =
            Arc::new(Engine::new(cfg, handler.clone()).map_err(|e| format!("Engine::new: {e}"))?);
        let mut listen = ListenThread::Idle;
        listen.start(&engine).map_err(|e| e.to_string())?;
        let mut addr = None;
        wait_until(Duration::from_secs(5), || {
            addr = engine.addr();
            addr.is_some() || listen.returned().is_some()
        });
        match addr {
            Some(addr) => Ok(ReferenceInstance {
                engine,
                listen: Mutex::new(listen),
                addr,
                handler,
            }),
            None => {
                let _ = engine.shutdown(Duration::ZERO);
                match listen.join() {
                    Err(e) => Err(format!("listen failed: {e}")),
                    Ok(()) => Err("the engine did not listen within 5 s".into()),
                }
            }
        }
    }

    /// The engine itself.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Waits for `listen` to return; its error, as the engine's own when nothing else
    /// holds it.
    fn join(&self) -> Result<(), EngineError> {
        lock(&self.listen).join().map_err(|e| {
            Arc::try_unwrap(e).unwrap_or_else(|e| EngineError::Io {
                what: format!("listen: {e}"),
                source: io::Error::other(e.to_string()),
            })
        })
    }
}

impl Drop for ReferenceInstance {
    fn drop(&mut self) {
        self.handler.gate.release();
        let _ = self.engine.shutdown(Duration::from_secs(1));
        let _ = self.join();
    }
}

impl Instance for ReferenceInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn effective_config(&self) -> Option<Config> {
        Some(self.engine.config().clone())
    }
    fn num_workers(&self) -> usize {
        self.engine.num_workers()
    }
    fn pause_accept(&self) -> Result<(), EngineError> {
        self.engine.pause_accept()
    }
    fn accept_paused(&self) -> bool {
        self.engine.accept_paused()
    }
    fn resume_accept(&self) -> Result<(), EngineError> {
        self.engine.resume_accept()
    }
    fn pause_worker(&self, index: usize) -> Result<(), EngineError> {
        self.engine.pause_worker(index)
    }
    fn resume_worker(&self, index: usize) -> Result<(), EngineError> {
        self.engine.resume_worker(index)
    }
    fn worker_state(&self, index: usize) -> Result<WorkerState, EngineError> {
        self.engine.worker_state(index)
    }
    fn worker_loop(&self, n: i64) -> Option<Arc<dyn DriverLoop>> {
        self.engine
            .try_worker_loop(n)
            .map(|w| Arc::new(w) as Arc<dyn DriverLoop>)
    }
    fn metrics(&self) -> Metrics {
        self.engine.metrics()
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.handler.gate.release();
        self.engine.shutdown(grace)?;
        self.join()
    }
    fn holds_entered(&self) -> u64 {
        self.handler.gate.entered()
    }
    fn release_holds(&self) {
        self.handler.gate.release();
    }
    fn pid(&self) -> Option<u32> {
        Some(std::process::id())
    }
}

impl DriverLoop for engine::WorkerLoop {
    fn index(&self) -> usize {
        engine::WorkerLoop::index(self)
    }
    fn cpu_id(&self) -> i32 {
        engine::WorkerLoop::cpu_id(self)
    }
    fn thread_id(&self) -> i32 {
        engine::WorkerLoop::thread_id(self)
    }
    fn register_boxed(
        &self,
        fd: RawFd,
        mut on_recv: OnRecv,
        on_close: OnClose,
    ) -> Result<(), DriverError> {
        engine::WorkerLoop::register_conn(self, fd, move |d: &[u8]| on_recv(d), on_close)
    }
    fn unregister_conn(&self, fd: RawFd) -> Result<(), DriverError> {
        engine::WorkerLoop::unregister_conn(self, fd)
    }
    fn write(&self, fd: RawFd, data: &[u8]) -> Result<(), DriverError> {
        engine::WorkerLoop::write(self, fd, data)
    }
}

// ---------------------------------------------------------------------------------
// Any running HTTP/1.1 server.

/// A server someone else started, reached by URL: HTTP only, with its own (unknown)
/// limits and timeouts. `start` does not start anything; it checks that the address
/// accepts connections.
#[derive(Debug, Clone)]
pub struct UrlTarget {
    url: String,
    addr: SocketAddr,
}

impl UrlTarget {
    /// `http://host:port/` (the path is ignored: scenarios choose their own).
    pub fn parse(url: &str) -> Result<UrlTarget, String> {
        use std::net::ToSocketAddrs;
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--target-url {url:?}: not an http:// URL; use e.g. http://127.0.0.1:8080/")
        })?;
        let authority = rest.split('/').next().unwrap_or("");
        let with_port = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("--target-url {url}: cannot resolve {authority:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target-url {url}: {authority:?} resolves to nothing"))?;
        Ok(UrlTarget {
            url: url.to_string(),
            addr,
        })
    }
}

impl Target for UrlTarget {
    fn name(&self) -> String {
        self.url.clone()
    }
    fn capabilities(&self) -> &[Capability] {
        &[Capability::Http]
    }
    fn can_isolate(&self) -> bool {
        false
    }
    fn start(&self, _cfg: &Config, _tag: &str) -> Result<Arc<dyn Instance>, String> {
        std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .map_err(|e| format!("{}: cannot connect: {e}: is the server running?", self.url))?;
        Ok(Arc::new(External {
            addr: self.addr,
            config: None,
        }))
    }
}

/// A server the scenarios do not control: only its address (and, when the harness
/// generated its configuration, the limits it runs with).
#[derive(Debug)]
pub struct External {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its limits and timeouts, when known.
    pub config: Option<Config>,
}

impl Instance for External {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn effective_config(&self) -> Option<Config> {
        self.config.clone()
    }
    fn num_workers(&self) -> usize {
        self.config.as_ref().map_or(1, |c| c.workers)
    }
    fn shutdown(&self, _grace: Duration) -> Result<(), EngineError> {
        Ok(())
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
    fn register_engine_fd(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<(RawFd, Result<(), DriverError>)> {
        (**self).register_engine_fd(local, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_listen_stays_returned() {
        let engine = Arc::new(
            Engine::new(
                Config {
                    workers: 1,
                    address: "127.0.0.1:0".into(),
                    ..Config::default()
                },
                TestHandler::default(),
            )
            .unwrap(),
        );
        let mut listen = ListenThread::Idle;
        assert!(listen.returned().is_none());
        assert_eq!(listen.state(), ListenState::Idle);
        listen.start(&engine).unwrap();
        assert!(matches!(
            listen.start(&engine),
            Err(EngineError::AlreadyListening)
        ));
        assert!(wait_until(Duration::from_secs(5), || engine
            .addr()
            .is_some()));
        assert_eq!(listen.state(), ListenState::Running);
        engine.shutdown(Duration::from_secs(1)).unwrap();
        assert!(listen.join().is_ok());
        // Asked again and again, it keeps its answer.
        for _ in 0..3 {
            assert!(matches!(listen.returned(), Some(Ok(()))));
            assert_eq!(listen.state(), ListenState::Returned(Ok(())));
        }
    }
}
