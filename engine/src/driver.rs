//! Driver connections: foreign fds registered on a worker ([`WorkerLoop`]), their
//! callbacks and their capped write queue.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};

use crate::engine::EngineShared;
use crate::error::DriverError;
use crate::metrics::WorkerCounters;
use crate::sync::lock;
use crate::sys::socket;
use crate::sys::{Epoll, Interest};
use crate::token::Token;
use crate::worker::WorkerShared;

type OnRecv = Box<dyn FnMut(&[u8]) + Send>;
type OnClose = Box<dyn FnOnce(Option<io::Error>) + Send>;

/// Bytes accepted by `write` and not yet handed to the kernel.
#[derive(Default)]
struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already sent.
    front: usize,
    pending: usize,
    /// EPOLLOUT is in the interest set.
    armed: bool,
}

impl WriteQueue {
    fn clear(&mut self) {
        self.chunks.clear();
        self.front = 0;
        self.pending = 0;
    }
}

/// A registered driver fd. The fd is borrowed: the engine never closes it.
pub(crate) struct DriverConn {
    pub fd: RawFd,
    registered: AtomicBool,
    on_recv: Mutex<OnRecv>,
    on_close: Mutex<Option<OnClose>>,
    queue: Mutex<WriteQueue>,
}

impl DriverConn {
    pub fn is_registered(&self) -> bool {
        self.registered.load(SeqCst)
    }

    /// Marks it unregistered; true for the caller that did it.
    pub fn mark_unregistered(&self) -> bool {
        self.registered.swap(false, SeqCst)
    }

    pub fn recv(&self, data: &[u8]) {
        (lock(&self.on_recv))(data);
    }

    /// Runs `on_close` unless it ran already: exactly once per registration.
    pub fn fire_close(&self, err: Option<io::Error>) {
        let cb = lock(&self.on_close).take();
        if let Some(cb) = cb {
            cb(err);
        }
    }

    /// Sends what is queued (called by the worker on EPOLLOUT); drops EPOLLOUT once empty.
    pub fn flush(&self, epoll: &Epoll, counters: &WorkerCounters) -> io::Result<()> {
        let mut guard = lock(&self.queue);
        let q = &mut *guard;
        while let Some(chunk) = q.chunks.front() {
            match socket::send(self.fd, &chunk[q.front..]) {
                Ok(n) => {
                    counters.bytes_written.fetch_add(n as u64, SeqCst);
                    let chunk_len = chunk.len();
                    q.front += n;
                    q.pending -= n;
                    if q.front == chunk_len {
                        q.chunks.pop_front();
                        q.front = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    q.clear();
                    return Err(e);
                }
            }
        }
        if q.armed && self.is_registered() {
            epoll.modify(self.fd, Token::Driver(self.fd).to_u64(), Interest::READ)?;
            q.armed = false;
        }
        Ok(())
    }
}

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
        map.insert(
            fd,
            Arc::new(DriverConn {
                fd,
                registered: AtomicBool::new(true),
                on_recv: Mutex::new(Box::new(on_recv)),
                on_close: Mutex::new(Some(Box::new(on_close))),
                queue: Mutex::new(WriteQueue::default()),
            }),
        );
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
        let cap = cfg.driver_write_cap;
        let mut q = lock(&d.queue);
        let over = if fault!(cfg, CapOffByOne) {
            q.pending + data.len() >= cap
        } else {
            q.pending + data.len() > cap
        };
        if over {
            let pending = q.pending;
            if fault!(cfg, QueueFullDropsQueue) {
                q.clear();
            }
            return Err(DriverError::QueueFull {
                fd,
                pending,
                len: data.len(),
                cap,
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        if q.pending == 0 {
            let loop_writes = fault!(cfg, InlineWriteLoop);
            let sigpipe = fault!(cfg, SigpipeWrite);
            loop {
                let res = if sigpipe {
                    socket::write(fd, &data[sent..])
                } else {
                    socket::send(fd, &data[sent..])
                };
                match res {
                    Ok(n) => {
                        w.counters.bytes_written.fetch_add(n as u64, SeqCst);
                        sent += n;
                        if sent == data.len() {
                            return Ok(());
                        }
                        if !loop_writes {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => return Err(DriverError::Io { fd, source }),
                }
            }
        }
        let rest = &data[sent..];
        if fault!(cfg, SplitLockedWrite) && rest.len() > 1 {
            let half = rest.len() / 2;
            q.chunks.push_back(rest[..half].to_vec());
            q.pending += half;
            drop(q);
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_micros(200));
            q = lock(&d.queue);
            q.chunks.push_back(rest[half..].to_vec());
            q.pending += rest.len() - half;
        } else {
            q.chunks.push_back(rest.to_vec());
            q.pending += rest.len();
        }
        if !q.armed {
            w.epoll
                .modify(fd, Token::Driver(fd).to_u64(), Interest::READ_WRITE)
                .map_err(|source| DriverError::Io { fd, source })?;
            q.armed = true;
        }
        Ok(())
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
