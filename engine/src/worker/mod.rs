//! The worker event loop: one thread, one epoll instance, one listen socket.
//!
//! Triggering is level-triggered for every fd (listener, HTTP connections, driver
//! fds, eventfd), a deliberate choice: the drain rule is then "one `read(2)` per
//! readiness" for HTTP connections (a short read leaves nothing behind; if it does, epoll
//! reports the fd again), "accept until `EAGAIN` or 1,024 per wakeup" for the
//! listener, and "read until a short read" for driver fds. An HTTP connection is
//! interested in reading while it has no output pending and in writing while it has:
//! a client that does not read its responses stops being read (backpressure).
//!
//! Closing is always graceful: pending output is flushed, then `shutdown(SHUT_WR)` sends
//! FIN and the input is read and discarded until the peer closes or `drain_linger`
//! passes. `close()` with unread input (which makes the kernel send RST) is never the
//! plan, only the outcome of a peer that keeps sending past the linger deadline.
//!
//! The loop is in this file; the rest of the worker, by concern:
//!
//! - `state.rs`: what the thread owns (`Worker`: epoll events, listen socket,
//!   connection table, reusable buffers, clock) and per connection (`Conn`).
//! - `listen.rs`: the listen socket: reconciling it with the pause and shutdown flags,
//!   accepting, and the drain when it closes.
//! - `conn.rs`: HTTP connection I/O: read, write, flush, linger, timeouts, close.
//! - `serve.rs`: requests to responses: parse, call the handler, frame the response.
//! - `drivers.rs`: driver fds on the worker thread: reading, flushing, `on_close`.
//!
//! They depend downward only: this loop on the others, `listen` on `conn`, `conn` on
//! `serve`, all on `state`.

mod conn;
mod drivers;
mod listen;
mod serve;
mod state;

use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::error::EngineError;
use crate::shared::{Command, EngineShared, WorkerShared};
use crate::sys::{EventFd, Interest};
use crate::token::Token;

use state::Worker;

/// The worker thread's body.
pub(crate) fn run(
    engine: Arc<EngineShared>,
    ws: Arc<WorkerShared>,
    listener: OwnedFd,
    pin: Option<usize>,
    ready: mpsc::Sender<Result<(), EngineError>>,
) {
    ws.tid.store(crate::sys::thread::gettid(), SeqCst);
    let cfg = engine.config().clone();
    let cpu = match pin {
        Some(cpu) => match crate::sys::thread::pin_current_thread(cpu) {
            Ok(()) => cpu as i32,
            Err(_) if fault!(cfg, CpuIdWhenPinFailed) => cpu as i32,
            Err(_) => -1,
        },
        None => -1,
    };
    ws.cpu_id.store(cpu, SeqCst);
    let setup = ws
        .epoll
        .add(ws.wake_fd(), Token::Wake.to_u64(), Interest::READ)
        .and_then(|()| {
            let interest = if fault!(cfg, StrandBacklog) {
                Interest::READ.with(Interest::EDGE)
            } else {
                Interest::READ
            };
            ws.epoll
                .add(listener.as_raw_fd(), Token::Listener.to_u64(), interest)
        });
    if let Err(e) = setup {
        ws.mark_exited();
        let _ = ready.send(Err(EngineError::io("registering the listen socket", e)));
        return;
    }
    ws.listening.store(true, SeqCst);
    let _ = ready.send(Ok(()));
    drop(ready);

    let mut w = Worker::new(engine, ws, listener, &cfg);
    w.reconcile(None);
    w.run_loop();
    w.finish();
    if fault!(cfg, LeakEventFd) {
        if let Ok(e) = EventFd::new() {
            mem::forget(e);
        }
    }
}

impl Worker {
    fn run_loop(&mut self) {
        loop {
            let spinning = self.spin_on_pending_output();
            let timeout = if spinning {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if self.ws.epoll.wait(&mut self.events, timeout).is_err() {
                self.ws.counters.count_error();
                break;
            }
            self.now = Instant::now();
            // Commands first: a pause that arrived with a ready listener drains it.
            let woke = (0..self.events.len()).any(|i| {
                self.events
                    .get(i)
                    .is_some_and(|e| Token::from_u64(e.token) == Token::Wake)
            });
            if woke {
                self.ws.clear_wake();
                self.process_commands();
                self.run_driver_closes();
            }
            for i in 0..self.events.len() {
                let Some(ev) = self.events.get(i) else { break };
                match Token::from_u64(ev.token) {
                    Token::Wake => {}
                    Token::Listener => self.accept_ready(),
                    Token::Driver(fd) => self.driver_event(fd, ev),
                    Token::Conn(fd) => self.conn_event(fd, ev),
                }
            }
            let swept = self.now >= self.next_sweep;
            if swept {
                self.sweep();
            }
            if self.accept_backoff.is_some_and(|until| self.now >= until) {
                self.end_accept_backoff();
            }
            self.resume_budget_waiters();
            if self.trim_pending && (swept || self.n_conns == 0) {
                self.trim_pending = false;
                crate::sys::heap::release_free_memory();
            }
            self.publish();
            if self.shutting && (self.n_conns == 0 || self.deadline.is_some_and(|d| self.now >= d))
            {
                break;
            }
        }
    }

    /// The `slow-reader-spin` fault: retry every pending write at once, every loop,
    /// instead of waiting for EPOLLOUT.
    fn spin_on_pending_output(&mut self) -> bool {
        if !fault!(self.cfg(), SlowReaderSpin) {
            return false;
        }
        let mut any = false;
        for raw in 0..self.conns.len() {
            if self.conns[raw].as_ref().is_some_and(|c| c.has_output()) {
                any = true;
                if let Some(mut c) = self.take_conn(raw as RawFd) {
                    let mut keep = self.flush(&mut c).is_ok();
                    if keep && !c.has_output() {
                        keep = self.after_output(&mut c);
                    }
                    self.put_back(raw as RawFd, c, keep);
                }
            }
        }
        any
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let backoff = self
            .accept_backoff
            .map(|until| until.saturating_duration_since(Instant::now()));
        let idle = self.n_conns == 0 && !self.shutting;
        if idle {
            if fault!(self.cfg(), SpinWhileSuspended) && self.listener.is_none() {
                return Some(Duration::ZERO);
            }
            if fault!(self.cfg(), SuspendedTimerWakeup) && self.listener.is_none() {
                return Some(Duration::from_millis(600));
            }
            return backoff;
        }
        let mut t = self.next_sweep.saturating_duration_since(Instant::now());
        if let Some(b) = backoff {
            t = t.min(b);
        }
        if let Some(d) = self.deadline {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        Some(t)
    }

    fn publish(&mut self) {
        self.ws.counters.publish(&mut self.local);
        self.ws.set_http_conns(self.n_conns);
    }

    fn process_commands(&mut self) {
        for cmd in self.ws.take_commands() {
            match cmd {
                Command::Reconcile(ack) => self.reconcile(ack),
            }
        }
    }

    fn finish(&mut self) {
        self.close_listener_quietly();
        self.close_all();
        self.drop_drivers();
        self.publish();
        self.ws.listening.store(false, SeqCst);
        self.ws.mark_exited();
    }
}
