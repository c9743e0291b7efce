//! The engine: lifecycle (`listen`, `shutdown`), accept control, worker control and
//! worker selection. The event loop itself is in `worker/`; what the handle shares
//! with the workers is in `shared.rs`.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Config, ValidConfig};
use crate::error::EngineError;
use crate::http::handler::Handler;
use crate::metrics::{Metrics, WorkerCounters, WorkerMetrics, WorkerState};
use crate::shared::{Command, EngineShared, WorkerShared};
use crate::sync::{lock, read_lock, wait_timeout, write_lock};
use crate::sys::socket;
use crate::worker_loop::WorkerLoop;

/// Which kind of engine this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineType {
    /// Linux epoll.
    Epoll,
    /// Only the `type-unknown-before-listen` fault reports this.
    #[cfg(feature = "faults")]
    #[doc(hidden)]
    Unknown,
}

impl std::fmt::Display for EngineType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineType::Epoll => f.write_str("epoll"),
            #[cfg(feature = "faults")]
            EngineType::Unknown => f.write_str("unknown"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    New,
    Listening,
    Stopped,
}

/// The engine. Share it with `Arc`: one thread blocks in [`Engine::listen`], others
/// control it.
pub struct Engine {
    /// What the workers and the [`WorkerLoop`] handles see too.
    shared: Arc<EngineShared>,
    lifecycle: Mutex<Lifecycle>,
    lifecycle_changed: Condvar,
    counters: Mutex<Vec<Arc<WorkerCounters>>>,
    addr: Mutex<Option<SocketAddr>>,
    /// Serialises pause/resume of accept so that each call sees the previous one done.
    accept_control: Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Engine {
    /// Validates `config` (nothing is bound or spawned on error) and builds an engine
    /// that will answer requests with `handler`.
    pub fn new(config: Config, handler: impl Handler) -> Result<Engine, EngineError> {
        let cfg = if fault!(config, NoValidation) && config.workers == 0 {
            ValidConfig {
                addr: config.address.parse().unwrap_or(([127, 0, 0, 1], 0).into()),
                config,
            }
        } else {
            config.validate()?
        };
        Ok(Engine {
            shared: Arc::new(EngineShared::new(cfg, Arc::new(handler))),
            lifecycle: Mutex::new(Lifecycle::New),
            lifecycle_changed: Condvar::new(),
            counters: Mutex::new(Vec::new()),
            addr: Mutex::new(None),
            accept_control: Mutex::new(()),
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        self.shared.config()
    }

    /// Binds one `SO_REUSEPORT` socket per worker on one port, starts the workers and
    /// blocks until [`shutdown`](Engine::shutdown); returns when every worker thread has
    /// exited and every fd the engine opened is closed.
    pub fn listen(&self) -> Result<(), EngineError> {
        {
            let mut lc = lock(&self.lifecycle);
            if *lc != Lifecycle::New {
                return Err(EngineError::AlreadyListening);
            }
            *lc = Lifecycle::Listening;
        }
        let result = self.run();
        *lock(&self.addr) = None;
        write_lock(&self.shared.workers).clear();
        *lock(&self.lifecycle) = Lifecycle::Stopped;
        self.lifecycle_changed.notify_all();
        result
    }

    fn bind_all(&self) -> Result<(Vec<OwnedFd>, SocketAddr), EngineError> {
        let cfg = self.config();
        let opts = self.shared.listen_options();
        let want = self.shared.cfg.addr;
        let first = socket::tcp_listen(want, opts)
            .map_err(|e| EngineError::io(format!("binding {want}"), e))?;
        let addr = socket::local_addr(first.as_raw_fd())
            .map_err(|e| EngineError::io("reading the bound address", e))?;
        let mut listeners = vec![first];
        for _ in 1..cfg.workers {
            let target = if fault!(cfg, EphemeralPortPerWorker) {
                want
            } else {
                addr
            };
            let l = socket::tcp_listen(target, opts)
                .map_err(|e| EngineError::io(format!("binding {target} (SO_REUSEPORT)"), e))?;
            listeners.push(l);
        }
        Ok((listeners, addr))
    }

    fn run(&self) -> Result<(), EngineError> {
        let cfg = self.config();
        // Read from this thread: the workers it spawns share its network namespace.
        let _ = self
            .shared
            .migrates_listener_queue
            .set(crate::metrics::host_migrates_listener_queue());
        let (listeners, addr) = self.bind_all()?;
        let cpus: Vec<usize> = if cfg.cpus.is_empty() {
            crate::sys::thread::allowed_cpus().unwrap_or_default()
        } else {
            cfg.cpus.clone()
        };

        let mut shared_workers = Vec::with_capacity(cfg.workers);
        let mut handles = Vec::with_capacity(cfg.workers);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), EngineError>>();
        let mut spawn_error = None;
        for (index, listener) in listeners.into_iter().enumerate() {
            let counters = Arc::new(WorkerCounters::default());
            let ws = match WorkerShared::new(index, addr, Arc::clone(&counters)) {
                Ok(ws) => Arc::new(ws),
                Err(e) => {
                    spawn_error = Some(EngineError::io("creating a worker's epoll/eventfd", e));
                    break;
                }
            };
            let pin = cfg
                .pin_workers
                .then(|| cpus.get(index % cpus.len().max(1)).copied())
                .flatten();
            let engine = Arc::clone(&self.shared);
            let ws2 = Arc::clone(&ws);
            let tx = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("engine-worker-{index}"))
                .spawn(move || crate::worker::run(engine, ws2, listener, pin, tx));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(EngineError::io("spawning a worker thread", e));
                    break;
                }
            }
            lock(&self.counters).push(counters);
            shared_workers.push(ws);
        }
        drop(ready_tx);
        // Wait until every spawned worker has registered its listener.
        let mut first_error = spawn_error;
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => break,
            }
        }
        if first_error.is_some() {
            self.shared.shutting_down.store(true, SeqCst);
        } else {
            *write_lock(&self.shared.workers) = shared_workers.clone();
            *lock(&self.addr) = Some(addr);
        }
        // A shutdown requested while we were starting: make sure every worker sees it.
        if self.shared.shutting_down.load(SeqCst) {
            for w in &shared_workers {
                w.send(Command::Reconcile(None));
            }
        }
        drop(shared_workers);
        for h in handles {
            if h.join().is_err() {
                first_error.get_or_insert(EngineError::WorkerGone(usize::MAX));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The bound address: `None` before every worker listens (and after shutdown).
    pub fn addr(&self) -> Option<SocketAddr> {
        *lock(&self.addr)
    }

    /// Number of workers: 0 before listening, N once listening.
    pub fn num_workers(&self) -> usize {
        if fault!(self.config(), WorkerCountFromConfig) {
            return self.config().workers;
        }
        read_lock(&self.shared.workers).len()
    }

    /// `EngineType::Epoll`.
    pub fn engine_type(&self) -> EngineType {
        #[cfg(feature = "faults")]
        if fault!(self.config(), TypeUnknownBeforeListen) && self.addr().is_none() {
            return EngineType::Unknown;
        }
        EngineType::Epoll
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::default();
        let workers = read_lock(&self.shared.workers).clone();
        for c in lock(&self.counters).iter() {
            m.requests_served += c.requests.load(SeqCst);
            m.accepted += c.accepted.load(SeqCst);
            m.closed += c.closed.load(SeqCst);
            m.errors += c.errors.load(SeqCst);
            m.bytes_read += c.bytes_read.load(SeqCst);
            m.bytes_written += c.bytes_written.load(SeqCst);
            m.accept_backoffs += c.accept_backoffs.load(SeqCst);
        }
        m.buffered_input_bytes = self.shared.buffered_input.load(SeqCst) as u64;
        for w in &workers {
            let active = w.active_connections();
            m.active_connections += active;
            m.workers.push(WorkerMetrics {
                index: w.index,
                state: w.state(),
                active_connections: active,
                accepted: w.counters.accepted.load(SeqCst),
            });
        }
        m.migrates_listener_queue = self.shared.migrates_listener_queue();
        m
    }

    /// Graceful shutdown: stops accepting (draining queues with FIN), lets in-flight
    /// requests finish and flush, closes idle keep-alive connections with FIN, and
    /// returns when all are closed or `grace` has passed (the rest are then closed) and
    /// `listen` has returned. Before `listen`, it makes a later `listen` fail.
    pub fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        let deadline = Instant::now() + grace;
        *lock(&self.shared.shutdown_deadline) = Some(deadline);
        self.shared.shutting_down.store(true, SeqCst);
        {
            let mut lc = lock(&self.lifecycle);
            if *lc == Lifecycle::New {
                *lc = Lifecycle::Stopped;
                return Ok(());
            }
        }
        for w in read_lock(&self.shared.workers).iter() {
            w.send(Command::Reconcile(None));
        }
        // Workers close what is left at the deadline; allow them a moment past it.
        let limit = deadline + Duration::from_secs(5);
        let mut lc = lock(&self.lifecycle);
        while *lc != Lifecycle::Stopped {
            let now = Instant::now();
            if now >= limit {
                return Err(EngineError::io(
                    "shutdown",
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "workers did not exit within 5 s of the deadline (a handler is stuck?)",
                    ),
                ));
            }
            lc = wait_timeout(&self.lifecycle_changed, lc, limit - now);
        }
        Ok(())
    }

    fn workers(&self) -> Result<Vec<Arc<WorkerShared>>, EngineError> {
        let w = read_lock(&self.shared.workers).clone();
        if w.is_empty() {
            return Err(EngineError::NotListening);
        }
        Ok(w)
    }

    fn reconcile_all(&self, workers: &[Arc<WorkerShared>]) -> Result<(), EngineError> {
        let mut acks = Vec::with_capacity(workers.len());
        for w in workers {
            let (tx, rx) = mpsc::channel();
            w.send(Command::Reconcile(Some(tx)));
            acks.push((w.index, rx));
        }
        if fault!(self.config(), AsyncPause) && self.shared.accept_paused.load(SeqCst) {
            return Ok(());
        }
        if fault!(self.config(), AsyncResume) && !self.shared.accept_paused.load(SeqCst) {
            return Ok(());
        }
        let mut result = Ok(());
        for (index, rx) in acks {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if result.is_ok() {
                        result = Err(EngineError::io(format!("worker {index} listen socket"), e));
                    }
                }
                Err(_) => {
                    if result.is_ok() {
                        result = Err(EngineError::WorkerGone(index));
                    }
                }
            }
        }
        result
    }

    /// Stops accepting: returns only after every worker has closed its listen socket,
    /// having accepted every queued connection and closed it with FIN (a complete
    /// buffered request is answered first, with `connection: close`). Connections
    /// already accepted keep being served. Idempotent.
    pub fn pause_accept(&self) -> Result<(), EngineError> {
        let workers = self.workers()?;
        let _serial = lock(&self.accept_control);
        if self.shared.accept_paused.swap(true, SeqCst)
            && !fault!(self.config(), PauseNotIdempotent)
        {
            return Ok(());
        }
        if fault!(self.config(), PauseNotIdempotent) {
            std::thread::sleep(Duration::from_millis(300));
        }
        self.reconcile_all(&workers)
    }

    /// Whether accept is paused engine-wide (as requested by `pause_accept`; the
    /// workers may still be closing their sockets while a pause is under way).
    pub fn accept_paused(&self) -> bool {
        self.shared.accept_paused.load(SeqCst)
    }

    /// Accepts again: returns after every worker that is not paused on its own listens
    /// again (suspended workers are woken and re-create their sockets).
    pub fn resume_accept(&self) -> Result<(), EngineError> {
        let workers = self.workers()?;
        let _serial = lock(&self.accept_control);
        self.shared.accept_paused.store(false, SeqCst);
        if fault!(self.config(), ResumeClearsWorkerPause) {
            for w in workers.iter() {
                w.paused.store(false, SeqCst);
            }
        }
        self.reconcile_all(&workers)
    }

    fn worker(&self, i: usize) -> Result<Arc<WorkerShared>, EngineError> {
        let workers = read_lock(&self.shared.workers);
        workers.get(i).cloned().ok_or(EngineError::NoSuchWorker {
            index: i,
            count: workers.len(),
        })
    }

    /// Pauses worker i without waiting: it drains and closes its listen socket, keeps
    /// serving its connections (`Draining`) and is `Suspended` once it has none.
    pub fn pause_worker(&self, i: usize) -> Result<(), EngineError> {
        let w = match self.worker(i) {
            Err(_) if fault!(self.config(), IgnoreBadWorkerIndex) => return Ok(()),
            r => r?,
        };
        w.paused.store(true, SeqCst);
        if fault!(self.config(), SyncWorkerPause) {
            let (tx, rx) = mpsc::channel();
            w.send(Command::Reconcile(Some(tx)));
            let _ = rx.recv();
            while w.state() != WorkerState::Suspended && w.alive() {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        w.send(Command::Reconcile(None));
        Ok(())
    }

    /// Resumes worker i: a suspended worker wakes and listens again (unless accept is
    /// paused engine-wide; then it listens at `resume_accept`). Resuming an active
    /// worker changes nothing.
    pub fn resume_worker(&self, i: usize) -> Result<(), EngineError> {
        let w = match self.worker(i) {
            Err(_) if fault!(self.config(), IgnoreBadWorkerIndex) => return Ok(()),
            r => r?,
        };
        w.paused.store(false, SeqCst);
        w.send(Command::Reconcile(None));
        Ok(())
    }

    /// The state of worker i.
    pub fn worker_state(&self, i: usize) -> Result<WorkerState, EngineError> {
        match self.worker(i) {
            Err(_) if fault!(self.config(), IgnoreBadWorkerIndex) => Ok(WorkerState::Active),
            r => Ok(r?.state()),
        }
    }

    /// The worker for `n`: `n mod N`, negative `n` mirrored (`-n` selects as `n`).
    ///
    /// # Panics
    /// When the engine is not listening (it has no workers yet).
    pub fn worker_loop(&self, n: i64) -> WorkerLoop {
        match self.try_worker_loop(n) {
            Some(w) => w,
            None => panic!("worker_loop({n}): the engine is not listening (no workers yet); call listen() first or use try_worker_loop"),
        }
    }

    /// The worker for `n`, or `None` when the engine is not listening.
    pub fn try_worker_loop(&self, n: i64) -> Option<WorkerLoop> {
        let workers = read_lock(&self.shared.workers);
        if workers.is_empty() {
            if fault!(self.config(), TryWorkerLoopPanics) {
                panic!("no workers");
            }
            return None;
        }
        let count = workers.len() as u64;
        let index = select_index(n, count, self.config());
        Some(WorkerLoop::new(&workers[index], &self.shared))
    }
}

fn select_index(n: i64, count: u64, cfg: &Config) -> usize {
    let _ = cfg;
    if fault!(cfg, EuclideanSelect) {
        return n.rem_euclid(count as i64) as usize;
    }
    if fault!(cfg, RotatingSelect) {
        use std::sync::atomic::AtomicU64;
        static ROTATE: AtomicU64 = AtomicU64::new(0);
        return ((n.unsigned_abs() + ROTATE.fetch_add(1, SeqCst)) % count) as usize;
    }
    (n.unsigned_abs() % count) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_modulo_and_mirrored() {
        let cfg = Config::default();
        assert_eq!(select_index(7, 3, &cfg), 1);
        assert_eq!(select_index(-7, 3, &cfg), 1);
        assert_eq!(
            select_index(i64::MAX, 3, &cfg),
            (i64::MAX as u64 % 3) as usize
        );
        assert_eq!(select_index(i64::MIN, 3, &cfg), ((1u64 << 63) % 3) as usize);
    }
}
