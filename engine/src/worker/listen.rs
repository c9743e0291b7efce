//! The worker's listen socket: reconciling it with the flags (engine accept pause,
//! worker pause, shutdown), accepting, and the drain when it closes: every queued
//! connection is accepted, what it already sent is answered with `connection: close`,
//! and it is closed with FIN.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sync::lock;
use crate::sys::socket;
use crate::sys::Interest;
use crate::token::Token;

use super::state::{Phase, Worker};

/// How long a closing listener keeps accepting after it stops taking new handshakes:
/// at least `SETTLE_MIN`, until nothing new arrived for `SETTLE_QUIET`, at most
/// `SETTLE_MAX`. On loopback a handshake completes in microseconds; the margin covers
/// a softirq deferred to a busy `ksoftirqd`.
const SETTLE_MIN: Duration = Duration::from_micros(500);
const SETTLE_QUIET: Duration = Duration::from_micros(250);
const SETTLE_MAX: Duration = Duration::from_millis(10);
const SETTLE_POLL: Duration = Duration::from_micros(100);

impl Worker {
    pub(super) fn reconcile(&mut self, ack: Option<mpsc::Sender<io::Result<()>>>) {
        let shutting = self.engine.shutting_down.load(SeqCst);
        let engine_paused = self.engine.accept_paused.load(SeqCst);
        let self_paused = self.ws.paused.load(SeqCst);
        let mut want = self.should_listen();
        if fault!(self.cfg(), ResumeIgnoresEnginePause)
            && self.was_self_paused
            && !self_paused
            && !shutting
        {
            want = true;
        }
        self.was_self_paused = self_paused;
        let mut result = Ok(());
        if want && self.listener.is_none() {
            if !fault!(self.cfg(), ResumeWithoutRelisten) {
                result = self.open_listener();
            }
        } else if !want && self.listener.is_some() {
            let keep = fault!(self.cfg(), PausedWorkerKeepsListening)
                && self_paused
                && !engine_paused
                && !shutting;
            if !keep {
                self.close_listener();
            }
            if fault!(self.cfg(), PausedIgnoresDrivers) {
                for fd in lock(&self.ws.drivers).keys() {
                    let _ = self.ws.epoll.delete(*fd);
                }
            }
        }
        if fault!(self.cfg(), PauseClosesConnections) && engine_paused {
            self.close_all();
        }
        if shutting && !self.shutting {
            self.begin_shutdown();
        }
        if let Some(ack) = ack {
            let _ = ack.send(result);
        }
    }

    fn open_listener(&mut self) -> io::Result<()> {
        let l = socket::tcp_listen(self.ws.addr, self.engine.listen_options())?;
        self.ws
            .epoll
            .add(l.as_raw_fd(), Token::Listener.to_u64(), Interest::READ)?;
        self.listener = Some(l);
        self.ws.listening.store(true, SeqCst);
        Ok(())
    }

    /// Accepts every queued connection, closes the listen socket, then answers what
    /// the drained connections already sent and closes them with FIN.
    fn close_listener(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.accept_backoff = None;
        let trust_migration = fault!(self.cfg(), SkipDrainWhenMigrating)
            && self.engine.migrates_listener_queue() == Some(true);
        if fault!(self.cfg(), CloseWithoutDrain) || trust_migration {
            drop(listener);
            self.ws.listening.store(false, SeqCst);
            return;
        }
        let lfd = listener.as_raw_fd();
        let mut drained = Vec::new();
        // Handshakes still under way when a listener closes are lost with RST: the
        // kernel either resets the child it was about to queue (the ACK races the
        // close) or, without queue migration, answers the late ACK from another
        // listener of the port. So the listener first stops taking new handshakes
        // (their SYNs are dropped and retried by the client on another listener),
        // waits until the ones under way have settled into its queue, then drains.
        let settle = socket::drop_new_handshakes(lfd).is_ok();
        let start = Instant::now();
        let mut last_new = start;
        loop {
            while let Ok(Some(fd)) = socket::accept(lfd) {
                last_new = Instant::now();
                if let Some(raw) = self.add_conn(fd) {
                    if fault!(self.cfg(), DrainNotCounted) {
                        self.ws.counters.accepted.fetch_sub(1, SeqCst);
                    }
                    drained.push(raw);
                }
            }
            let now = Instant::now();
            let settled = now - start >= SETTLE_MIN && now - last_new >= SETTLE_QUIET;
            if !settle || settled || now - start >= SETTLE_MAX {
                break;
            }
            std::thread::sleep(SETTLE_POLL);
        }
        drop(listener);
        self.ws.listening.store(false, SeqCst);
        if fault!(self.cfg(), AcceptedResetOnPause) {
            self.ws.counters.accepted.store(0, SeqCst);
        }
        for raw in drained {
            self.finish_drained(raw);
        }
    }

    fn finish_drained(&mut self, raw: RawFd) {
        let Some(mut c) = self.take_conn(raw) else {
            return;
        };
        c.close_next = true;
        let mut keep = true;
        if !fault!(self.cfg(), DrainDropsRequests) {
            keep = self.read_and_serve(&mut c);
        }
        if keep && c.phase == Phase::Open {
            c.phase = Phase::Closing;
            keep = self.after_output(&mut c);
        }
        self.put_back(raw, c, keep);
    }

    pub(super) fn close_listener_quietly(&mut self) {
        if self.listener.is_some() {
            self.close_listener();
        }
    }

    /// Whether the flags ask this worker to listen.
    fn should_listen(&self) -> bool {
        !self.engine.shutting_down.load(SeqCst)
            && !self.engine.accept_paused.load(SeqCst)
            && !self.ws.paused.load(SeqCst)
    }

    pub(super) fn accept_ready(&mut self) {
        // A pause requested while this worker was busy: what is queued now is drained,
        // not served (the command may sit later in this same batch).
        if !self.should_listen() {
            self.reconcile(None);
            return;
        }
        let Some(l) = &self.listener else { return };
        let lfd = l.as_raw_fd();
        let batch = if fault!(self.cfg(), StrandBacklog) {
            64
        } else {
            1024
        };
        for _ in 0..batch {
            match socket::accept(lfd) {
                Ok(Some(fd)) => {
                    self.add_conn(fd);
                }
                Ok(None) => break,
                Err(e) if socket::out_of_resources(&e) => {
                    self.ws.counters.accept_backoffs.fetch_add(1, SeqCst);
                    if !fault!(self.cfg(), SpinOnEmfile) {
                        self.begin_accept_backoff(lfd);
                    }
                    break;
                }
                Err(_) => {
                    self.ws.counters.count_error();
                    break;
                }
            }
        }
    }

    /// `accept` ran out of descriptors or memory: the queued connection stays queued
    /// and the listen socket stays readable, so watching it would spin. Stop watching
    /// it until a connection of this worker closes or [`ACCEPT_BACKOFF`] passes.
    fn begin_accept_backoff(&mut self, lfd: RawFd) {
        if self.ws.epoll.delete(lfd).is_ok() {
            self.accept_backoff = Some(self.now + ACCEPT_BACKOFF);
        }
    }

    /// Watches the listen socket again after a back-off (no-op without one).
    pub(super) fn end_accept_backoff(&mut self) {
        if self.accept_backoff.take().is_none() {
            return;
        }
        if let Some(l) = &self.listener {
            let _ = self
                .ws
                .epoll
                .add(l.as_raw_fd(), Token::Listener.to_u64(), Interest::READ);
        }
    }
}

/// How long a worker stops accepting after `EMFILE` and the like, unless one of its
/// connections closes first.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
