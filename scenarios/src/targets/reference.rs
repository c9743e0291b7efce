//! The reference engine (`engine` crate) as a target, in this process: every
//! capability. Also the pieces the protocol's server end (`remote::server`) reuses:
//! building an engine that tells whether it still holds its handler, and `listen` on a
//! thread of its own; and [`Running`], the one "an engine on a thread, shut down on
//! drop" type every in-process user (tests, `loadgen counters`) shares.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use engine::sync::lock;
use engine::{Config, DriverError, Engine, EngineError, Handler, Metrics, WorkerState};

use super::{
    BuildError, Built, Capability, DriverLoop, Host, Instance, ListenState, OnClose, OnRecv,
    Rejected, Selected, Status, Target, TypeReport,
};
use crate::test_handler::TestHandler;
use crate::wait::wait_until;

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

    /// Waits up to `limit` for `listen` to return: `None` when it has not (the thread
    /// is left running: an engine whose worker never stops, e.g. one spinning on a failed
    /// send, must not hang the suite after its scenario has judged it).
    pub fn join_within(&mut self, limit: Duration) -> Option<Result<(), Arc<EngineError>>> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            match self {
                ListenThread::Running(t) if !t.is_finished() => {
                    if std::time::Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return Some(self.join()),
            }
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

/// An engine with any handler, listening on a thread of its own; shut down (1 s
/// grace) and joined on drop. Tests, `loadgen counters` and [`ReferenceInstance`] run
/// engines in this process through it.
pub struct Running {
    engine: Arc<Engine>,
    listen: Mutex<ListenThread>,
    addr: SocketAddr,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Starts an engine with `handler` and waits (up to 5 s) until it listens.
    pub fn start(cfg: Config, handler: impl Handler) -> Result<Running, String> {
        let engine = Arc::new(Engine::new(cfg, handler).map_err(|e| format!("Engine::new: {e}"))?);
        let mut listen = ListenThread::Idle;
        listen.start(&engine).map_err(|e| e.to_string())?;
        let mut addr = None;
        wait_until(Duration::from_secs(5), || {
            addr = engine.addr();
            addr.is_some() || listen.returned().is_some()
        });
        match addr {
            Some(addr) => Ok(Running {
                engine,
                listen: Mutex::new(listen),
                addr,
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

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether `listen` has returned (the engine stopped serving).
    pub fn returned(&self) -> bool {
        lock(&self.listen).returned().is_some()
    }

    /// Waits for `listen` to return; its error, as the engine's own when nothing else
    /// holds it.
    pub fn join(&self) -> Result<(), EngineError> {
        lock(&self.listen).join().map_err(|e| {
            Arc::try_unwrap(e).unwrap_or_else(|e| EngineError::Io {
                what: format!("listen: {e}"),
                source: io::Error::other(e.to_string()),
            })
        })
    }

    /// Shuts the engine down with `grace`, then waits for `listen` to return.
    pub fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.engine.shutdown(grace)?;
        self.join()
    }
}

/// How long dropping an instance waits for its engine to stop (1 s of grace included).
const DROP_JOIN_LIMIT: Duration = Duration::from_secs(10);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.engine.shutdown(Duration::from_secs(1));
        if lock(&self.listen).join_within(DROP_JOIN_LIMIT).is_none() {
            eprintln!(
                "warning: the engine did not stop within {} s of its shutdown; its threads are left running",
                DROP_JOIN_LIMIT.as_secs()
            );
        }
    }
}

/// A reference engine with the test routes, listening on its own thread; its gate
/// released and the engine shut down (1 s grace) on drop.
#[derive(Debug)]
pub struct ReferenceInstance {
    handler: TestHandler,
    /// Dropped after `Drop::drop` has released the gate.
    running: Running,
}

impl ReferenceInstance {
    /// Starts an engine with `handler` and waits (up to 5 s) until it listens.
    pub fn start(cfg: Config, handler: TestHandler) -> Result<ReferenceInstance, String> {
        let running = Running::start(cfg, handler.clone())?;
        Ok(ReferenceInstance { handler, running })
    }

    /// The engine itself.
    pub fn engine(&self) -> &Arc<Engine> {
        self.running.engine()
    }
}

impl Drop for ReferenceInstance {
    fn drop(&mut self) {
        self.handler.gate.release();
    }
}

impl Instance for ReferenceInstance {
    fn addr(&self) -> SocketAddr {
        self.running.addr()
    }
    fn effective_config(&self) -> Option<Config> {
        Some(self.running.engine().config().clone())
    }
    fn num_workers(&self) -> usize {
        self.running.engine().num_workers()
    }
    fn pause_accept(&self) -> Result<(), EngineError> {
        self.running.engine().pause_accept()
    }
    fn accept_paused(&self) -> bool {
        self.running.engine().accept_paused()
    }
    fn resume_accept(&self) -> Result<(), EngineError> {
        self.running.engine().resume_accept()
    }
    fn pause_worker(&self, index: usize) -> Result<(), EngineError> {
        self.running.engine().pause_worker(index)
    }
    fn resume_worker(&self, index: usize) -> Result<(), EngineError> {
        self.running.engine().resume_worker(index)
    }
    fn worker_state(&self, index: usize) -> Result<WorkerState, EngineError> {
        self.running.engine().worker_state(index)
    }
    fn worker_loop(&self, n: i64) -> Option<Arc<dyn DriverLoop>> {
        self.running
            .engine()
            .try_worker_loop(n)
            .map(|w| Arc::new(w) as Arc<dyn DriverLoop>)
    }
    fn metrics(&self) -> Metrics {
        self.running.engine().metrics()
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.handler.gate.release();
        self.running.shutdown(grace)
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
