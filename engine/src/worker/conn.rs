//! HTTP connection I/O on the worker thread: the connection table, readiness events,
//! the one read per readiness, writing and flushing responses, the graceful close
//! (FIN, then linger), timeouts, and closing everything at shutdown.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use crate::http::response::write_error;
use crate::sync::lock;
use crate::sys::epoll::Event;
use crate::sys::socket::{self, Shutdown};
use crate::sys::Interest;
use crate::token::Token;

use super::state::{Conn, ConnState, Phase, Waiting, Worker, MAX_SPARE_STATES};

/// The most a streamed body's source is asked for before the next send.
const STREAM_CHUNK: usize = 256 * 1024;

/// Buffers above this are released when they empty, so one large request or response
/// does not pin memory on an idle connection.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The worker's own buffers (write buffer, response body, decoded body) above this are
/// replaced by small ones after the request that grew them.
const WORKER_KEEP_CAPACITY: usize = 1024 * 1024;

impl Worker {
    pub(super) fn begin_shutdown(&mut self) {
        self.shutting = true;
        self.deadline = *lock(&self.engine.shutdown_deadline);
        if fault!(self.cfg(), ShutdownAborts) {
            self.close_all();
            return;
        }
        for raw in 0..self.conns.len() {
            let Some(mut c) = self.take_conn(raw as RawFd) else {
                continue;
            };
            c.close_next = true;
            let mut keep = true;
            if c.phase == Phase::Open && c.input.is_empty() {
                c.phase = Phase::Closing;
                keep = self.after_output(&mut c);
            }
            self.put_back(raw as RawFd, c, keep);
        }
    }

    pub(super) fn close_all(&mut self) {
        for raw in 0..self.conns.len() {
            if let Some(c) = self.take_conn(raw as RawFd) {
                self.close_conn(c);
            }
        }
    }

    pub(super) fn take_conn(&mut self, fd: RawFd) -> Option<Conn> {
        self.conns.get_mut(fd as usize).and_then(Option::take)
    }

    pub(super) fn put_back(&mut self, fd: RawFd, c: Conn, keep: bool) {
        if keep {
            self.conns[fd as usize] = Some(c);
        } else {
            self.close_conn(c);
        }
    }

    fn close_conn(&mut self, c: Conn) {
        if c.held > 0 {
            self.engine.buffered_input.fetch_sub(c.held, Relaxed);
        }
        if c.input.capacity() > KEEP_CAPACITY || c.output.capacity() > KEEP_CAPACITY {
            self.trim_pending = true;
        }
        let Conn { fd, mut state } = c;
        drop(fd);
        // Nothing of the connection is kept but the box: its buffers and a streamed
        // body go now, as they would with the box.
        state.input = Vec::new();
        state.output = Vec::new();
        state.stream = None;
        if self.spare_states.len() < MAX_SPARE_STATES {
            self.spare_states.push(state);
        }
        self.n_conns -= 1;
        self.ws.counters.closed.fetch_add(1, SeqCst);
        // A descriptor is free again: accept may succeed now.
        self.end_accept_backoff();
    }

    /// Brings the engine's input budget in line with what `c.input` holds now.
    fn account(&self, c: &mut Conn) {
        let now = c.input.len();
        if now > c.held {
            self.engine.buffered_input.fetch_add(now - c.held, Relaxed);
        } else if now < c.held && !fault!(self.cfg(), BudgetNotReturned) {
            self.engine.buffered_input.fetch_sub(c.held - now, Relaxed);
        }
        c.held = now;
    }

    /// How many bytes `c` may read now under the input budget; `None`: none, stop
    /// reading it until the budget has room. A connection that holds input stops once
    /// the budget is reached; one that holds nothing may still read what is left of one
    /// read buffer beyond it (a small request is answered from the read buffer and
    /// holds nothing), so the total stays under budget + one read buffer per worker.
    fn read_room(&self, c: &Conn) -> Option<usize> {
        if fault!(self.cfg(), NoInputBudget) {
            return Some(self.rbuf.len());
        }
        let held = self.engine.buffered_input.load(Relaxed);
        if held >= self.budget && !c.input.is_empty() {
            return None;
        }
        let room = (self.budget + self.rbuf.len()).saturating_sub(held);
        (room > 0).then_some(room.min(self.rbuf.len()))
    }

    /// Stops watching `c` for input: TCP backpressure instead of more memory. A reset
    /// or hang-up is still reported, so a peer that goes away releases its input.
    fn pause_for_budget(&mut self, c: &mut Conn) {
        if c.budget_paused {
            return;
        }
        let raw = c.fd.as_raw_fd();
        let token = Token::Conn(raw).to_u64();
        if self.ws.epoll.modify(raw, token, Interest::NONE).is_ok() {
            c.budget_paused = true;
            self.budget_waiters.push(raw);
        }
    }

    /// Watches the connections paused for the budget again once it has room (each then
    /// reads at most once before it is checked again).
    pub(super) fn resume_budget_waiters(&mut self) {
        if self.budget_waiters.is_empty() || self.engine.buffered_input.load(Relaxed) >= self.budget
        {
            return;
        }
        for raw in mem::take(&mut self.budget_waiters) {
            let Some(Some(c)) = self.conns.get_mut(raw as usize) else {
                continue;
            };
            if c.budget_paused {
                let token = Token::Conn(raw).to_u64();
                if self.ws.epoll.modify(raw, token, c.interest).is_ok() {
                    c.budget_paused = false;
                }
            }
        }
    }

    /// After a request's bytes were consumed or more arrived: the timers of the
    /// unfinished request left in `input` (`new_request`: it started after the last
    /// consumed one, so its header timer starts now).
    fn start_timers(&mut self, c: &mut Conn, new_request: bool) {
        if fault!(self.cfg(), HeaderTimerNotRestarted) {
            if c.head_started.is_none() {
                c.head_started = Some(self.now);
            }
            return;
        }
        match c.waiting {
            Waiting::Head if new_request || c.head_started.is_none() => {
                c.head_started = Some(self.now);
            }
            Waiting::Head => {}
            Waiting::Body => c.head_started = None,
        }
    }

    /// Replaces the worker's buffers that a large request or response grew.
    fn release_worker_buffers(&mut self) {
        if self.wbuf.capacity() > WORKER_KEEP_CAPACITY {
            self.wbuf = Vec::with_capacity(64 * 1024);
            self.trim_pending = true;
        }
        if self.response.body.capacity() > WORKER_KEEP_CAPACITY {
            self.response.body = Vec::with_capacity(1024);
            self.trim_pending = true;
        }
        if self.body_buf.capacity() > WORKER_KEEP_CAPACITY {
            self.body_buf = Vec::new();
            self.trim_pending = true;
        }
    }

    pub(super) fn add_conn(&mut self, fd: OwnedFd) -> Option<RawFd> {
        let raw = fd.as_raw_fd();
        let _ = socket::set_nodelay(raw, true);
        let token = Token::Conn(raw).to_u64();
        if self.ws.epoll.add(raw, token, Interest::READ).is_err() {
            self.ws.counters.count_error();
            return None;
        }
        let idx = raw as usize;
        if self.conns.len() <= idx {
            self.conns.resize_with(idx + 1, || None);
        }
        let state = ConnState {
            input: Vec::new(),
            output: Vec::new(),
            out_pos: 0,
            phase: Phase::Open,
            interest: Interest::READ,
            close_next: self.shutting,
            continue_sent: false,
            fresh: true,
            abort_after_write: false,
            stream: None,
            last_activity: self.now,
            head_started: None,
            progress: Default::default(),
            waiting: Waiting::Head,
            last_read: self.now,
            held: 0,
            budget_paused: false,
        };
        let state = match self.spare_states.pop() {
            Some(mut spare) => {
                *spare = state;
                spare
            }
            None => Box::new(state),
        };
        self.conns[idx] = Some(Conn { fd, state });
        if self.n_conns == 0 {
            self.next_sweep = self.now + self.sweep_every;
        }
        self.n_conns += 1;
        self.ws.counters.accepted.fetch_add(1, SeqCst);
        Some(raw)
    }

    fn set_interest(&mut self, c: &mut Conn, want: Interest) {
        if c.budget_paused {
            // Reading waits for the budget; writing, or the linger's reads, do not.
            if want == Interest::READ && c.phase == Phase::Open {
                return;
            }
        } else if c.interest == want {
            return;
        }
        let raw = c.fd.as_raw_fd();
        if self
            .ws
            .epoll
            .modify(raw, Token::Conn(raw).to_u64(), want)
            .is_ok()
        {
            c.budget_paused = false;
            c.interest = want;
        }
    }

    pub(super) fn conn_event(&mut self, fd: RawFd, ev: Event) {
        let Some(mut c) = self.take_conn(fd) else {
            return;
        };
        let mut keep = true;
        if ev.is_writable() && c.busy() {
            keep = self.flush(&mut c).is_ok();
            if keep && !c.has_output() {
                keep = self.after_output(&mut c);
                // Requests that arrived while we were writing wait in `input`.
                if keep && c.phase == Phase::Open && !c.input.is_empty() && !c.busy() {
                    keep = self.serve_buffered(&mut c);
                }
            }
        }
        if keep && ev.is_readable() && !c.busy() {
            keep = match c.phase {
                Phase::Open => self.read_and_serve(&mut c),
                Phase::Closing | Phase::Lingering { .. } => self.discard_input(&mut c),
            };
        }
        // Requests held behind a streamed response that has just finished.
        while keep && c.phase == Phase::Open && !c.busy() && !c.input.is_empty() {
            let held = c.input.len();
            keep = self.serve_buffered(&mut c);
            if c.input.len() == held {
                break;
            }
        }
        self.put_back(fd, c, keep);
    }

    /// One read, then every complete request in it is answered, all responses written
    /// together. Returns false when the connection is to be closed now.
    pub(super) fn read_and_serve(&mut self, c: &mut Conn) -> bool {
        // Paused, a connection is reported only on hang-up or error: the read tells
        // which (and it must happen, or the level-triggered report would repeat).
        let room = if c.budget_paused {
            Some(self.rbuf.len())
        } else {
            self.read_room(c)
        };
        let Some(room) = room else {
            self.pause_for_budget(c);
            return true;
        };
        let mut rbuf = mem::take(&mut self.rbuf);
        let n = match socket::read(c.fd.as_raw_fd(), &mut rbuf[..room]) {
            Ok(0) => {
                self.rbuf = rbuf;
                // Peer closed its side: finish what is queued, then close.
                if c.has_output() {
                    c.phase = Phase::Closing;
                    return true;
                }
                return false;
            }
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                self.rbuf = rbuf;
                return true;
            }
            Err(_) => {
                self.rbuf = rbuf;
                self.ws.counters.count_error();
                return false;
            }
        };
        self.local.bytes_read += n as u64;
        c.last_activity = self.now;
        c.last_read = self.now;
        let fresh = std::mem::replace(&mut c.fresh, false);
        if fresh && n < 4 && fault!(self.cfg(), ShortFirstFragment) {
            self.rbuf = rbuf;
            return true;
        }
        if c.input.is_empty() {
            let consumed = self.serve(c, &mut rbuf[..n]);
            if consumed < n && c.phase == Phase::Open {
                c.input.extend_from_slice(&rbuf[consumed..n]);
                self.account(c);
                self.start_timers(c, true);
            }
            self.rbuf = rbuf;
            self.write_out(c)
        } else {
            c.input.extend_from_slice(&rbuf[..n]);
            self.account(c);
            self.rbuf = rbuf;
            self.serve_buffered(c)
        }
    }

    fn serve_buffered(&mut self, c: &mut Conn) -> bool {
        let mut input = mem::take(&mut c.input);
        let consumed = self.serve(c, &mut input);
        c.input = input;
        c.input.drain(..consumed);
        if c.input.is_empty() {
            if !fault!(self.cfg(), HeaderTimerNotRestarted) {
                c.head_started = None;
            }
            if c.input.capacity() > KEEP_CAPACITY {
                c.input = Vec::new();
                self.trim_pending = true;
            }
        } else {
            if consumed > 0 && c.input.capacity() > KEEP_CAPACITY.max(4 * c.input.len()) {
                let keep = KEEP_CAPACITY.max(c.input.len());
                c.input.shrink_to(keep);
            }
            self.start_timers(c, consumed > 0);
        }
        self.account(c);
        self.write_out(c)
    }

    /// Sends what `serve` produced (one write), keeps the rest, and moves the connection
    /// on. Returns false when it is to be closed now.
    fn write_out(&mut self, c: &mut Conn) -> bool {
        if !self.wbuf.is_empty() {
            if c.has_output() {
                c.output.extend_from_slice(&self.wbuf);
            } else {
                c.output.clear();
                c.out_pos = 0;
                match socket::send(c.fd.as_raw_fd(), &self.wbuf) {
                    Ok(k) => {
                        self.local.bytes_written += k as u64;
                        if k < self.wbuf.len() {
                            c.output.extend_from_slice(&self.wbuf[k..]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.output.extend_from_slice(&self.wbuf);
                    }
                    Err(_) => {
                        self.wbuf.clear();
                        self.ws.counters.count_error();
                        return false;
                    }
                }
            }
            self.wbuf.clear();
            self.release_worker_buffers();
            c.last_activity = self.now;
        }
        if c.abort_after_write {
            return false;
        }
        self.after_output(c)
    }

    /// Chooses the interest (and the next phase) from what is pending.
    pub(super) fn after_output(&mut self, c: &mut Conn) -> bool {
        // A streamed body: refill from its source while the kernel takes it all.
        while !c.has_output() && c.stream.is_some() {
            if !self.pump(c) {
                return false;
            }
        }
        if c.has_output() {
            self.set_interest(c, Interest::WRITE);
            return true;
        }
        if c.output.capacity() > KEEP_CAPACITY {
            c.output = Vec::new();
            self.trim_pending = true;
        } else {
            c.output.clear();
        }
        c.out_pos = 0;
        if c.phase == Phase::Closing {
            let _ = socket::shutdown(c.fd.as_raw_fd(), Shutdown::Write);
            let mut until = self.now + self.linger;
            if let Some(d) = self.deadline {
                until = until.min(d);
            }
            c.phase = Phase::Lingering { until };
            c.input = Vec::new();
            self.account(c);
        }
        self.set_interest(c, Interest::READ);
        true
    }

    /// Takes the next piece of a streamed body into the connection's output and sends
    /// what the kernel takes. False when the connection must close (source stalled,
    /// send failed).
    fn pump(&mut self, conn: &mut Conn) -> bool {
        let c = &mut *conn.state;
        let Some(s) = c.stream.as_mut() else {
            return true;
        };
        c.output.clear();
        c.out_pos = 0;
        c.output.reserve(STREAM_CHUNK.min(s.remaining as usize));
        (s.source)(&mut c.output);
        let got = (c.output.len() as u64).min(s.remaining);
        if got == 0 {
            self.ws.counters.count_error();
            return false;
        }
        c.output.truncate(got as usize);
        s.remaining -= got;
        if s.remaining == 0 {
            if s.close_after {
                c.phase = Phase::Closing;
            }
            c.stream = None;
        }
        self.flush(conn).is_ok()
    }

    pub(super) fn flush(&mut self, c: &mut Conn) -> io::Result<()> {
        while c.has_output() {
            match socket::send(c.fd.as_raw_fd(), &c.output[c.out_pos..]) {
                Ok(k) => {
                    c.out_pos += k;
                    self.local.bytes_written += k as u64;
                    c.last_activity = self.now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                #[cfg(feature = "faults")]
                Err(_) if fault!(self.cfg(), SendErrorRetried) && crate::faults::retry_for_2s() => {
                }
                Err(e) => {
                    self.ws.counters.count_error();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads and drops input of a closing connection; false at EOF or error (close).
    fn discard_input(&mut self, c: &mut Conn) -> bool {
        let mut rbuf = mem::take(&mut self.rbuf);
        let keep = loop {
            match socket::read(c.fd.as_raw_fd(), &mut rbuf) {
                Ok(0) => break false,
                Ok(n) if n < rbuf.len() => break true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        self.rbuf = rbuf;
        keep
    }

    pub(super) fn sweep(&mut self) {
        self.next_sweep = self.now + self.sweep_every;
        let (mut idle, header, body, write) = {
            let cfg = self.cfg();
            (
                cfg.idle_timeout,
                cfg.header_timeout,
                cfg.body_timeout,
                cfg.write_timeout,
            )
        };
        if fault!(self.cfg(), IdleTimeoutDoubled) {
            idle *= 2;
        }
        let now = self.now;
        let no_idle_timeout = fault!(self.cfg(), NoIdleTimeout);
        let no_body_timeout = fault!(self.cfg(), NoBodyTimeout);
        for raw in 0..self.conns.len() {
            let Some(c) = &self.conns[raw] else { continue };
            let close_now = match c.phase {
                Phase::Lingering { until } => now >= until,
                _ if c.has_output() => now.duration_since(c.last_activity) > write,
                _ => false,
            };
            let waiting = c.phase == Phase::Open && !c.busy();
            // Each timer covers one wait: a request's head (from its first byte), a
            // body's next bytes, or the next request. Progress restarts it.
            let (graceful, body_stalled) = if !waiting {
                (false, false)
            } else if c.input.is_empty() {
                match c.head_started {
                    // Only the `header-timer-not-restarted` fault keeps a start here.
                    Some(t) => (now.duration_since(t) > header, false),
                    None => (
                        now.duration_since(c.last_activity) > idle && !no_idle_timeout,
                        false,
                    ),
                }
            } else if c.waiting == Waiting::Body {
                let stalled = now.duration_since(c.last_read) > body;
                (false, stalled && !no_body_timeout)
            } else {
                let late = c
                    .head_started
                    .is_some_and(|t| now.duration_since(t) > header);
                (late, false)
            };
            if close_now {
                if let Some(c) = self.take_conn(raw as RawFd) {
                    self.close_conn(c);
                }
            } else if body_stalled {
                if let Some(mut c) = self.take_conn(raw as RawFd) {
                    let keep = self.time_out_body(&mut c);
                    self.put_back(raw as RawFd, c, keep);
                }
            } else if graceful {
                if let Some(mut c) = self.take_conn(raw as RawFd) {
                    c.phase = Phase::Closing;
                    let keep = self.after_output(&mut c);
                    self.put_back(raw as RawFd, c, keep);
                }
            }
        }
        if self.shutting && self.deadline.is_some_and(|d| now >= d) {
            self.close_all();
        }
    }

    /// A body that stopped arriving: 408 (no response to it has started), then the
    /// graceful close.
    fn time_out_body(&mut self, c: &mut Conn) -> bool {
        let date = *self.date.get(self.now);
        write_error(&mut self.wbuf, 408, &date);
        self.ws.counters.count_error();
        c.phase = Phase::Closing;
        c.input = Vec::new();
        self.account(c);
        self.write_out(c)
    }
}
