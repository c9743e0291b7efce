//! [`WorkerLoop`]: the public handle on one worker, from
//! [`Engine::worker_loop`](crate::Engine::worker_loop), and the driver API on it. The
//! per-fd state it shares with the worker thread is in `driver.rs`.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Weak};

use crate::driver::DriverConn;
use crate::error::DriverError;
use crate::shared::{EngineShared, WorkerShared};
use crate::sync::lock;
use crate::sys::{socket, Interest};
use crate::token::Token;

/// A handle on one worker, from [`Engine::worker_loop`](crate::Engine::worker_loop):
/// its index, its CPU, and the driver API. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct WorkerLoop {
    index: usize,
    cpu_id: i32,
    tid: i32,
    worker: Weak<WorkerShared>,
    engine: Arc<EngineShared>,
}

impl std::fmt::Debug for WorkerLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLoop")
            .field("index", &self.index)
            .field("cpu_id", &self.cpu_id)
            .field("tid", &self.tid)
            .finish_non_exhaustive()
    }
}

impl WorkerLoop {
    pub(crate) fn new(ws: &Arc<WorkerShared>, engine: &Arc<EngineShared>) -> WorkerLoop {
        WorkerLoop {
            index: ws.index,
            cpu_id: ws.cpu_id.load(SeqCst),
            tid: ws.tid.load(SeqCst),
            worker: Arc::downgrade(ws),
            engine: Arc::clone(engine),
        }
    }

    /// The worker's index, `0..num_workers()`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The CPU the worker is pinned to, or -1 when pinning is off or failed.
    pub fn cpu_id(&self) -> i32 {
        self.cpu_id
    }

    /// The worker thread's kernel thread id (for `/proc/self/task/<tid>`).
    pub fn thread_id(&self) -> i32 {
        self.tid
    }

    fn worker(&self) -> Result<Arc<WorkerShared>, DriverError> {
        match self.worker.upgrade() {
            Some(w) if w.alive() => Ok(w),
            _ => Err(DriverError::WorkerGone),
        }
    }

    /// Adds a non-blocking fd the caller owns to this worker. `on_recv` gets the bytes
    /// that arrive, in order, on the worker thread; `on_close` runs exactly once: peer
    /// FIN → `None`, error (e.g. reset) → `Some(err)`, after `unregister_conn` → `None`.
    pub fn register_conn(
        &self,
        fd: RawFd,
        on_recv: impl FnMut(&[u8]) + Send + 'static,
        on_close: impl FnOnce(Option<io::Error>) + Send + 'static,
    ) -> Result<(), DriverError> {
        if fd < 0 {
            return Err(DriverError::NegativeFd(fd));
        }
        let w = self.worker()?;
        let mut map = lock(&w.drivers);
        if map.contains_key(&fd) {
            return Err(DriverError::AlreadyRegistered(fd));
        }
        match socket::is_nonblocking(fd) {
            Ok(true) => {}
            Ok(false) if fault!(self.engine.config(), AcceptBlockingFd) => {}
            Ok(false) => return Err(DriverError::Blocking(fd)),
            Err(source) => return Err(DriverError::Io { fd, source }),
        }
        match w.epoll.add(fd, Token::Driver(fd).to_u64(), Interest::READ) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return Err(DriverError::HttpConn(fd))
            }
            Err(source) => return Err(DriverError::Io { fd, source }),
        }
        map.insert(fd, Arc::new(DriverConn::new(fd, on_recv, on_close)));
        drop(map);
        // The worker may be suspended: wake it so its state reflects the new fd.
        w.wake();
        Ok(())
    }

    /// Removes fd from this worker and returns; `on_close(None)` then runs once on the
    /// worker thread at its next iteration. The fd is not closed.
    pub fn unregister_conn(&self, fd: RawFd) -> Result<(), DriverError> {
        let w = self.worker()?;
        let d = lock(&w.drivers)
            .remove(&fd)
            .ok_or(DriverError::UnknownFd(fd))?;
        if d.mark_unregistered() {
            let _ = w.epoll.delete(fd);
        }
        #[cfg(feature = "faults")]
        if fault!(self.engine.config(), UnregisterClosesFd) {
            socket::close_fault(fd);
        }
        lock(&w.driver_closes).push(d);
        w.wake();
        Ok(())
    }

    /// Queues `data` for fd: `Err(QueueFull)` iff pending + `data.len()` exceeds the
    /// cap (nothing queued then, earlier data untouched). When nothing is pending, one
    /// `write(2)` is tried inline and the rest flushed by the worker on EPOLLOUT. Never
    /// blocks; never raises SIGPIPE.
    pub fn write(&self, fd: RawFd, data: &[u8]) -> Result<(), DriverError> {
        let w = self.worker()?;
        let cfg = self.engine.config();
        let found = lock(&w.drivers).get(&fd).cloned();
        let (d, w) = match found {
            Some(d) => (d, w),
            None if fault!(cfg, WriteAnyWorker) => {
                self.find_anywhere(fd).ok_or(DriverError::UnknownFd(fd))?
            }
            None => return Err(DriverError::UnknownFd(fd)),
        };
        d.write(data, cfg, &w.epoll, &w.counters)
    }

    fn find_anywhere(&self, fd: RawFd) -> Option<(Arc<DriverConn>, Arc<WorkerShared>)> {
        let _ = fd;
        #[cfg(feature = "faults")]
        for w in self.engine.all_workers() {
            let found = lock(&w.drivers).get(&fd).cloned();
            if let Some(d) = found {
                return Some((d, w));
            }
        }
        None
    }
}
