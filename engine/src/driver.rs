//! Driver connections: foreign fds registered on a worker, their callbacks and their
//! capped write queue. The handle callers use is [`WorkerLoop`](crate::WorkerLoop);
//! this is what it and the worker thread share per fd.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Mutex;

use crate::config::Config;
use crate::error::DriverError;
use crate::metrics::WorkerCounters;
use crate::sync::lock;
use crate::sys::socket;
use crate::sys::{Epoll, Interest};
use crate::token::Token;

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
    /// A registration of `fd`, with nothing queued.
    pub fn new(
        fd: RawFd,
        on_recv: impl FnMut(&[u8]) + Send + 'static,
        on_close: impl FnOnce(Option<io::Error>) + Send + 'static,
    ) -> DriverConn {
        DriverConn {
            fd,
            registered: AtomicBool::new(true),
            on_recv: Mutex::new(Box::new(on_recv)),
            on_close: Mutex::new(Some(Box::new(on_close))),
            queue: Mutex::new(WriteQueue::default()),
        }
    }

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

    /// Queues `data` (`WorkerLoop::write`, any thread): `QueueFull` iff pending +
    /// `data.len()` exceeds the cap, one inline `send(2)` when nothing is pending, the
    /// rest queued with EPOLLOUT armed on `epoll` (the worker's) for [`flush`].
    ///
    /// [`flush`]: DriverConn::flush
    pub fn write(
        &self,
        data: &[u8],
        cfg: &Config,
        epoll: &Epoll,
        counters: &WorkerCounters,
    ) -> Result<(), DriverError> {
        let fd = self.fd;
        let cap = cfg.driver_write_cap;
        let mut q = lock(&self.queue);
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
                        counters.bytes_written.fetch_add(n as u64, SeqCst);
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
            q = lock(&self.queue);
            q.chunks.push_back(rest[half..].to_vec());
            q.pending += rest.len() - half;
        } else {
            q.chunks.push_back(rest.to_vec());
            q.pending += rest.len();
        }
        if !q.armed {
            epoll
                .modify(fd, Token::Driver(fd).to_u64(), Interest::READ_WRITE)
                .map_err(|source| DriverError::Io { fd, source })?;
            q.armed = true;
        }
        Ok(())
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
