//! Driver fds on the worker thread: reading until a short read and handing the bytes
//! to `on_recv`, flushing the write queue on EPOLLOUT, and running `on_close` exactly
//! once (peer close, error, `unregister_conn`, worker exit).

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::driver::DriverConn;
use crate::sync::lock;
use crate::sys::epoll::Event;
use crate::sys::socket;

use super::state::Worker;

impl Worker {
    pub(super) fn driver_event(&mut self, fd: RawFd, ev: Event) {
        let Some(d) = lock(&self.ws.drivers).get(&fd).cloned() else {
            return;
        };
        if ev.is_writable() {
            if let Err(e) = d.flush(&self.ws.epoll, &self.ws.counters) {
                self.close_driver(&d, Some(e));
                return;
            }
        }
        if !ev.is_readable() {
            return;
        }
        let truncate = fault!(self.cfg(), TruncateRecv);
        let reset_as_clean = fault!(self.cfg(), ResetAsClean);
        let mut rbuf = mem::take(&mut self.rbuf);
        loop {
            if !d.is_registered() && !fault!(self.cfg(), RecvAfterUnregister) {
                break;
            }
            match socket::read(fd, &mut rbuf) {
                Ok(0) => {
                    self.close_driver(&d, None);
                    break;
                }
                Ok(n) => {
                    let shown = if truncate { n.min(4096) } else { n };
                    d.recv(&rbuf[..shown]);
                    if n < rbuf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close_driver(&d, if reset_as_clean { None } else { Some(e) });
                    break;
                }
            }
        }
        self.rbuf = rbuf;
    }

    fn close_driver(&mut self, d: &Arc<DriverConn>, err: Option<io::Error>) {
        {
            let mut map = lock(&self.ws.drivers);
            if map.get(&d.fd).is_some_and(|x| Arc::ptr_eq(x, d)) {
                map.remove(&d.fd);
            }
        }
        if d.mark_unregistered() {
            let _ = self.ws.epoll.delete(d.fd);
        }
        d.fire_close(err);
    }

    pub(super) fn run_driver_closes(&mut self) {
        let closes = mem::take(&mut *lock(&self.ws.driver_closes));
        for d in closes {
            d.fire_close(None);
        }
    }

    /// At exit: every driver fd leaves the epoll set and gets its one `on_close(None)`,
    /// including those unregistered since the last wakeup.
    pub(super) fn drop_drivers(&mut self) {
        let drivers: Vec<_> = lock(&self.ws.drivers).drain().map(|(_, d)| d).collect();
        for d in drivers {
            let _ = self.ws.epoll.delete(d.fd);
            d.mark_unregistered();
            d.fire_close(None);
        }
        self.run_driver_closes();
    }
}
