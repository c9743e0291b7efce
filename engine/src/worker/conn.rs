//! HTTP connection I/O on the worker thread: the connection table, readiness events,
//! the one read per readiness, writing and flushing responses, the graceful close
//! (FIN, then linger), timeouts, and closing everything at shutdown.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;

use crate::sync::lock;
use crate::sys::epoll::Event;
use crate::sys::socket::{self, Shutdown};
use crate::sys::Interest;
use crate::token::Token;

use super::state::{Conn, Phase, Worker};

/// The most a streamed body's source is asked for before the next send.
const STREAM_CHUNK: usize = 256 * 1024;

/// Buffers above this are released when they empty, so one large request or response
/// does not pin memory on an idle connection.
const KEEP_CAPACITY: usize = 64 * 1024;

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
        drop(c);
        self.n_conns -= 1;
        self.ws.counters.closed.fetch_add(1, SeqCst);
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
        self.conns[idx] = Some(Conn {
            fd,
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
        });
        if self.n_conns == 0 {
            self.next_sweep = self.now + self.sweep_every;
        }
        self.n_conns += 1;
        self.ws.counters.accepted.fetch_add(1, SeqCst);
        Some(raw)
    }

    fn set_interest(&self, c: &mut Conn, want: Interest) {
        if c.interest != want {
            let raw = c.fd.as_raw_fd();
            if self
                .ws
                .epoll
                .modify(raw, Token::Conn(raw).to_u64(), want)
                .is_ok()
            {
                c.interest = want;
            }
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
        let mut rbuf = mem::take(&mut self.rbuf);
        let n = match socket::read(c.fd.as_raw_fd(), &mut rbuf) {
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
        let fresh = std::mem::replace(&mut c.fresh, false);
        if fresh && n < 4 && fault!(self.cfg(), ShortFirstFragment) {
            self.rbuf = rbuf;
            return true;
        }
        if c.input.is_empty() {
            let consumed = self.serve(c, &mut rbuf[..n]);
            if consumed < n {
                c.input.extend_from_slice(&rbuf[consumed..n]);
                c.head_started = Some(self.now);
            }
            self.rbuf = rbuf;
            self.write_out(c)
        } else {
            c.input.extend_from_slice(&rbuf[..n]);
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
            c.head_started = None;
            if c.input.capacity() > KEEP_CAPACITY {
                c.input = Vec::new();
            }
        }
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
        }
        self.set_interest(c, Interest::READ);
        true
    }

    /// Takes the next piece of a streamed body into the connection's output and sends
    /// what the kernel takes. False when the connection must close (source stalled,
    /// send failed).
    fn pump(&mut self, c: &mut Conn) -> bool {
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
        self.flush(c).is_ok()
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
        let (idle, header, write) = {
            let cfg = self.cfg();
            (cfg.idle_timeout, cfg.header_timeout, cfg.write_timeout)
        };
        let now = self.now;
        let no_idle_timeout = fault!(self.cfg(), NoIdleTimeout);
        for raw in 0..self.conns.len() {
            let Some(c) = &self.conns[raw] else { continue };
            let close_now = match c.phase {
                Phase::Lingering { until } => now >= until,
                _ if c.has_output() => now.duration_since(c.last_activity) > write,
                _ => false,
            };
            let graceful = c.phase == Phase::Open
                && !c.has_output()
                && match c.head_started {
                    Some(t) => now.duration_since(t) > header,
                    None => now.duration_since(c.last_activity) > idle && !no_idle_timeout,
                };
            if close_now {
                if let Some(c) = self.take_conn(raw as RawFd) {
                    self.close_conn(c);
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
}
