//! The state the engine handle, its worker threads and the [`WorkerLoop`] handles
//! share: [`EngineShared`] (one per engine) and [`WorkerShared`] (one per worker), and
//! the [`Command`]s other threads send a worker.
//!
//! Architecture invariant: this module depends on no part of the engine above it
//! (`engine`, `worker`, `worker_loop`); they all depend on it.
//!
//! [`WorkerLoop`]: crate::WorkerLoop

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use crate::config::{Config, ValidConfig};
use crate::driver::DriverConn;
use crate::http::handler::Handler;
use crate::metrics::{WorkerCounters, WorkerState};
use crate::sync::lock;
use crate::sys::socket::ListenOptions;
use crate::sys::{Epoll, EventFd};

/// What the engine's workers and handles see of it: the configuration, the handler,
/// the flags workers reconcile with, and the workers once listening.
pub(crate) struct EngineShared {
    pub cfg: ValidConfig,
    pub handler: Arc<dyn Handler>,
    pub accept_paused: AtomicBool,
    pub shutting_down: AtomicBool,
    pub shutdown_deadline: Mutex<Option<Instant>>,
    /// Every worker while the engine listens; empty before and after.
    pub workers: RwLock<Vec<Arc<WorkerShared>>>,
    /// `Metrics::migrates_listener_queue`, read once when `listen` starts.
    pub migrates_listener_queue: OnceLock<Option<bool>>,
    /// Bytes of request input held across every connection (`max_buffered_input`).
    pub buffered_input: AtomicUsize,
}

impl std::fmt::Debug for EngineShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineShared")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl EngineShared {
    pub fn new(cfg: ValidConfig, handler: Arc<dyn Handler>) -> EngineShared {
        EngineShared {
            cfg,
            handler,
            accept_paused: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            shutdown_deadline: Mutex::new(None),
            workers: RwLock::new(Vec::new()),
            migrates_listener_queue: OnceLock::new(),
            buffered_input: AtomicUsize::new(0),
        }
    }

    #[cfg(feature = "faults")]
    pub fn all_workers(&self) -> Vec<Arc<WorkerShared>> {
        crate::sync::read_lock(&self.workers).clone()
    }

    pub fn config(&self) -> &Config {
        &self.cfg.config
    }

    /// Whether the kernel migrates a closing listener's queue (known once listening).
    pub fn migrates_listener_queue(&self) -> Option<bool> {
        self.migrates_listener_queue.get().copied().flatten()
    }

    /// Listen options for a worker's socket.
    pub fn listen_options(&self) -> ListenOptions {
        let cfg = self.config();
        let defer = cfg.tcp_defer_accept || fault!(cfg, DeferAccept);
        ListenOptions {
            backlog: cfg.listen_backlog as i32,
            reuse_port: true,
            defer_accept_secs: if defer { 5 } else { 0 },
        }
    }
}

/// A request to a worker, sent with [`WorkerShared::send`].
pub(crate) enum Command {
    /// Bring the listen socket and shutdown state in line with the flags (engine
    /// accept pause, worker pause, shutdown); answer on the channel when done.
    Reconcile(Option<mpsc::Sender<io::Result<()>>>),
}

/// The part of a worker other threads see.
pub(crate) struct WorkerShared {
    pub index: usize,
    pub addr: SocketAddr,
    pub epoll: Epoll,
    wake: EventFd,
    pub counters: Arc<WorkerCounters>,
    pub paused: AtomicBool,
    pub listening: AtomicBool,
    http_conns: AtomicU64,
    alive: AtomicBool,
    pub tid: AtomicI32,
    pub cpu_id: AtomicI32,
    commands: Mutex<Vec<Command>>,
    pub drivers: Mutex<HashMap<RawFd, Arc<DriverConn>>>,
    pub driver_closes: Mutex<Vec<Arc<DriverConn>>>,
}

impl WorkerShared {
    pub fn new(index: usize, addr: SocketAddr, counters: Arc<WorkerCounters>) -> io::Result<Self> {
        Ok(WorkerShared {
            index,
            addr,
            epoll: Epoll::new()?,
            wake: EventFd::new()?,
            counters,
            paused: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            http_conns: AtomicU64::new(0),
            alive: AtomicBool::new(true),
            tid: AtomicI32::new(0),
            cpu_id: AtomicI32::new(-1),
            commands: Mutex::new(Vec::new()),
            drivers: Mutex::new(HashMap::new()),
            driver_closes: Mutex::new(Vec::new()),
        })
    }

    pub fn send(&self, cmd: Command) {
        lock(&self.commands).push(cmd);
        self.wake();
    }

    pub fn wake(&self) {
        // Fails only if the eventfd is gone, i.e. the worker has exited.
        let _ = self.wake.wake();
    }

    // ---- for the worker thread ----

    /// The eventfd the worker registers (as `Token::Wake`).
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Resets the wake counter (the worker, once woken).
    pub fn clear_wake(&self) {
        let _ = self.wake.drain();
    }

    /// The commands sent since the last call, in order.
    pub fn take_commands(&self) -> Vec<Command> {
        mem::take(&mut *lock(&self.commands))
    }

    /// Publishes the worker's number of open HTTP connections.
    pub fn set_http_conns(&self, n: usize) {
        self.http_conns.store(n as u64, SeqCst);
    }

    /// The worker thread has exited (or never started its loop).
    pub fn mark_exited(&self) {
        self.alive.store(false, SeqCst);
    }

    // ---- for everyone ----

    pub fn alive(&self) -> bool {
        self.alive.load(SeqCst)
    }

    pub fn active_connections(&self) -> u64 {
        self.http_conns.load(SeqCst) + lock(&self.drivers).len() as u64
    }

    pub fn state(&self) -> WorkerState {
        if self.listening.load(SeqCst) {
            WorkerState::Active
        } else if self.active_connections() > 0 {
            WorkerState::Draining
        } else {
            WorkerState::Suspended
        }
    }
}
