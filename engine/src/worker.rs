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

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::driver::DriverConn;
use crate::error::EngineError;
use crate::http::date::DateCache;
use crate::http::handler::{Handler, Request, Response};
use crate::http::parse::{decode_chunked, parse_head, BodyKind, HeaderSpan, Limits, ParseError};
use crate::http::response::{write_error, write_response};
use crate::metrics::LocalCounts;
use crate::shared::{Command, EngineShared, WorkerShared};
use crate::sync::lock;
use crate::sys::socket::{self, Shutdown};
use crate::sys::{EventFd, Events, Interest};
use crate::token::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Open,
    /// A response with `connection: close` is queued; once flushed, linger.
    Closing,
    /// FIN sent; input is read and discarded until EOF or `until`.
    Lingering { until: Instant },
}

/// One HTTP connection. Idle connections hold no heap memory: input is parsed from the
/// worker's read buffer and only an unfinished request is copied here; output is
/// written from the worker's buffer and only what the kernel refused is kept here.
struct Conn {
    fd: OwnedFd,
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    phase: Phase,
    interest: Interest,
    /// Answer the next complete request with `connection: close` (drain, shutdown).
    close_next: bool,
    continue_sent: bool,
    /// No read has completed yet (the `short-first-fragment` fault needs to know).
    fresh: bool,
    /// Close without the graceful drain after this write (`error-close-without-drain`).
    abort_after_write: bool,
    /// A streamed response body still being produced.
    stream: Option<Box<BodyStream>>,
    last_activity: Instant,
    head_started: Option<Instant>,
}

impl Conn {
    fn has_output(&self) -> bool {
        self.out_pos < self.output.len()
    }

    /// A response is still going out (bytes queued or a body being streamed): the
    /// connection reads nothing new until it is done.
    fn busy(&self) -> bool {
        self.has_output() || self.stream.is_some()
    }
}

/// A streamed body being sent: what is left, where it comes from, and whether the
/// connection closes after it.
struct BodyStream {
    remaining: u64,
    source: crate::http::handler::BodySource,
    close_after: bool,
}

/// The most a streamed body's source is asked for before the next send.
const STREAM_CHUNK: usize = 256 * 1024;

/// Buffers above this are released when they empty, so one large request or response
/// does not pin memory on an idle connection.
const KEEP_CAPACITY: usize = 64 * 1024;

struct Worker {
    engine: Arc<EngineShared>,
    ws: Arc<WorkerShared>,
    handler: Arc<dyn Handler>,
    listener: Option<OwnedFd>,
    conns: Vec<Option<Conn>>,
    n_conns: usize,
    events: Events,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    spans: Vec<HeaderSpan>,
    /// Decoded chunked request body (reused).
    body_buf: Vec<u8>,
    response: Response,
    date: DateCache,
    local: LocalCounts,
    now: Instant,
    next_sweep: Instant,
    sweep_every: Duration,
    shutting: bool,
    deadline: Option<Instant>,
    limits: Limits,
    linger: Duration,
    was_self_paused: bool,
}

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

    let smallest = [
        cfg.idle_timeout,
        cfg.header_timeout,
        cfg.write_timeout,
        cfg.drain_linger,
    ]
    .into_iter()
    .min()
    .unwrap_or(Duration::from_secs(1));
    let now = Instant::now();
    let mut w = Worker {
        handler: Arc::clone(&engine.handler),
        engine,
        ws,
        listener: Some(listener),
        conns: Vec::new(),
        n_conns: 0,
        events: Events::with_capacity(256),
        rbuf: vec![0; cfg.read_buffer_size],
        wbuf: Vec::with_capacity(64 * 1024),
        spans: Vec::with_capacity(32),
        body_buf: Vec::new(),
        response: Response::default(),
        date: DateCache::default(),
        local: LocalCounts::default(),
        now,
        next_sweep: now,
        sweep_every: (smallest / 4).clamp(Duration::from_millis(5), Duration::from_millis(250)),
        shutting: false,
        deadline: None,
        limits: Limits {
            max_header_bytes: cfg.max_header_bytes,
            max_body_bytes: cfg.max_body_bytes,
            #[cfg(feature = "faults")]
            content_length_wins: cfg.fault(crate::faults::Fault::ContentLengthWins),
        },
        linger: cfg.drain_linger,
        was_self_paused: false,
    };
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
    fn cfg(&self) -> &crate::Config {
        self.engine.config()
    }

    fn run_loop(&mut self) {
        loop {
            let spinning = self.spin_on_pending_output();
            let timeout = if spinning {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if self.ws.epoll.wait(&mut self.events, timeout).is_err() {
                self.ws.counters.errors.fetch_add(1, SeqCst);
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
            if self.now >= self.next_sweep {
                self.sweep();
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
            if self.conns[raw].as_ref().is_some_and(Conn::has_output) {
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
        let idle = self.n_conns == 0 && !self.shutting;
        if idle {
            if fault!(self.cfg(), SpinWhileSuspended) && self.listener.is_none() {
                return Some(Duration::ZERO);
            }
            return None;
        }
        let mut t = self.next_sweep.saturating_duration_since(Instant::now());
        if let Some(d) = self.deadline {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        Some(t)
    }

    fn publish(&mut self) {
        self.ws.counters.publish(&mut self.local);
        self.ws.set_http_conns(self.n_conns);
    }

    // ---- control ----

    fn process_commands(&mut self) {
        for cmd in self.ws.take_commands() {
            match cmd {
                Command::Reconcile(ack) => self.reconcile(ack),
            }
        }
    }

    fn reconcile(&mut self, ack: Option<mpsc::Sender<io::Result<()>>>) {
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
        if fault!(self.cfg(), CloseWithoutDrain) {
            drop(listener);
            self.ws.listening.store(false, SeqCst);
            return;
        }
        let mut drained = Vec::new();
        while let Ok(Some(fd)) = socket::accept(listener.as_raw_fd()) {
            if let Some(raw) = self.add_conn(fd) {
                drained.push(raw);
            }
        }
        drop(listener);
        self.ws.listening.store(false, SeqCst);
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

    fn begin_shutdown(&mut self) {
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

    fn close_all(&mut self) {
        for raw in 0..self.conns.len() {
            if let Some(c) = self.take_conn(raw as RawFd) {
                self.close_conn(c);
            }
        }
    }

    fn finish(&mut self) {
        self.close_listener_quietly();
        self.close_all();
        let drivers: Vec<_> = lock(&self.ws.drivers).drain().map(|(_, d)| d).collect();
        for d in drivers {
            let _ = self.ws.epoll.delete(d.fd);
            d.mark_unregistered();
            d.fire_close(None);
        }
        self.run_driver_closes();
        self.publish();
        self.ws.listening.store(false, SeqCst);
        self.ws.mark_exited();
    }

    fn close_listener_quietly(&mut self) {
        if self.listener.is_some() {
            self.close_listener();
        }
    }

    // ---- connections ----

    fn take_conn(&mut self, fd: RawFd) -> Option<Conn> {
        self.conns.get_mut(fd as usize).and_then(Option::take)
    }

    fn put_back(&mut self, fd: RawFd, c: Conn, keep: bool) {
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

    fn add_conn(&mut self, fd: OwnedFd) -> Option<RawFd> {
        let raw = fd.as_raw_fd();
        let _ = socket::set_nodelay(raw, true);
        let token = Token::Conn(raw).to_u64();
        if self.ws.epoll.add(raw, token, Interest::READ).is_err() {
            self.ws.counters.errors.fetch_add(1, SeqCst);
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
        });
        if self.n_conns == 0 {
            self.next_sweep = self.now + self.sweep_every;
        }
        self.n_conns += 1;
        self.ws.counters.accepted.fetch_add(1, SeqCst);
        Some(raw)
    }

    /// Whether the flags ask this worker to listen.
    fn should_listen(&self) -> bool {
        !self.engine.shutting_down.load(SeqCst)
            && !self.engine.accept_paused.load(SeqCst)
            && !self.ws.paused.load(SeqCst)
    }

    fn accept_ready(&mut self) {
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
                Err(_) => {
                    self.ws.counters.errors.fetch_add(1, SeqCst);
                    break;
                }
            }
        }
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

    fn conn_event(&mut self, fd: RawFd, ev: crate::sys::epoll::Event) {
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
    fn read_and_serve(&mut self, c: &mut Conn) -> bool {
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
                self.ws.counters.errors.fetch_add(1, SeqCst);
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
            let consumed = self.serve(c, &rbuf[..n]);
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
        let input = mem::take(&mut c.input);
        let consumed = self.serve(c, &input);
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

    /// Answers every complete request at the start of `data` into `self.wbuf`; returns
    /// how many bytes were consumed. The worker's clock is refreshed afterwards: handlers
    /// may take long, and write/idle timeouts count from when the response is ready.
    fn serve(&mut self, c: &mut Conn, data: &[u8]) -> usize {
        let requests_before = self.local.requests;
        let used = self.serve_inner(c, data);
        if self.local.requests != requests_before {
            self.now = Instant::now();
        }
        used
    }

    fn serve_inner(&mut self, c: &mut Conn, data: &[u8]) -> usize {
        let mut pos = 0;
        let date = *self.date.get();
        let worker = self.ws.index;
        while c.phase == Phase::Open && pos < data.len() {
            let rest = &data[pos..];
            match parse_head(rest, &mut self.spans, self.limits) {
                Ok(None) => break,
                Err(e) => {
                    self.refuse(c, e, &date);
                    return data.len();
                }
                Ok(Some(head)) => {
                    let framed = match head.body {
                        BodyKind::Length(n) => {
                            let total = head.len + n as usize;
                            (rest.len() >= total).then_some(Ok(total))
                        }
                        BodyKind::Chunked => match decode_chunked(
                            &rest[head.len..],
                            &mut self.body_buf,
                            self.limits.max_body_bytes,
                        ) {
                            Ok(Some(used)) => Some(Ok(head.len + used)),
                            Ok(None) if fault!(self.cfg(), ChunkedSplitRejected) => {
                                Some(Err(ParseError::BadRequest))
                            }
                            Ok(None) => None,
                            Err(e) => Some(Err(e)),
                        },
                    };
                    let total = match framed {
                        None => {
                            if head.expect_continue
                                && !c.continue_sent
                                && !fault!(self.cfg(), NoContinue)
                            {
                                self.wbuf
                                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                                c.continue_sent = true;
                            }
                            break;
                        }
                        Some(Err(e)) => {
                            self.refuse(c, e, &date);
                            return data.len();
                        }
                        Some(Ok(total)) => total,
                    };
                    c.continue_sent = false;
                    let body = match head.body {
                        BodyKind::Length(_) => &rest[head.len..total],
                        BodyKind::Chunked => &self.body_buf[..],
                    };
                    let req = Request {
                        buf: rest,
                        head: &head,
                        headers: &self.spans,
                        body,
                        worker,
                    };
                    self.response.reset();
                    self.handler.handle(&req, &mut self.response);
                    #[cfg(feature = "faults")]
                    if fault!(self.cfg(), BurnCpu) {
                        crate::faults::burn_cpu();
                    }
                    let keep_alive = if fault!(self.cfg(), KeepAliveHttp10) {
                        !head.connection_close
                    } else {
                        head.keep_alive
                    };
                    let close = !keep_alive || self.response.close || c.close_next;
                    let head_only =
                        head.method.of(rest) == b"HEAD" && !fault!(self.cfg(), HeadWithBody);
                    let date_value: &[u8] = if fault!(self.cfg(), NoDateHeader) {
                        b""
                    } else {
                        &date
                    };
                    let before = self.wbuf.len();
                    write_response(&mut self.wbuf, &self.response, date_value, close, head_only);
                    if let Some((len, source)) = self.response.stream.take() {
                        if !head_only && len > 0 {
                            // Later requests wait in `input` until the body is out.
                            c.stream = Some(Box::new(BodyStream {
                                remaining: len,
                                source,
                                close_after: close,
                            }));
                            if pos == 0 || !fault!(self.cfg(), MetricsMissPipelined) {
                                self.local.requests += 1;
                            }
                            return pos + total;
                        }
                    }
                    if fault!(self.cfg(), TruncateLargeResponse) {
                        let cut = (4 << 20).min(self.wbuf.len() - before);
                        self.wbuf.truncate(before + cut);
                    }
                    if pos == 0 || !fault!(self.cfg(), MetricsMissPipelined) {
                        self.local.requests += 1;
                    }
                    pos += total;
                    if close {
                        c.phase = Phase::Closing;
                        return data.len();
                    }
                    if fault!(self.cfg(), PipelineDropsRest) {
                        return data.len();
                    }
                }
            }
        }
        pos
    }

    /// Answers a request the parser refused: a complete error response with
    /// `connection: close`, then the graceful close (input read until the peer closes).
    fn refuse(&mut self, c: &mut Conn, e: ParseError, date: &[u8]) {
        let mut status = e.status();
        if status == 431 && fault!(self.cfg(), HeaderTooLargeIs400) {
            status = 400;
        }
        write_error(&mut self.wbuf, status, date);
        self.ws.counters.errors.fetch_add(1, SeqCst);
        c.phase = Phase::Closing;
        c.abort_after_write = fault!(self.cfg(), ErrorCloseWithoutDrain);
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
                        self.ws.counters.errors.fetch_add(1, SeqCst);
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
    fn after_output(&mut self, c: &mut Conn) -> bool {
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
            self.ws.counters.errors.fetch_add(1, SeqCst);
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

    fn flush(&mut self, c: &mut Conn) -> io::Result<()> {
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
                    self.ws.counters.errors.fetch_add(1, SeqCst);
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

    fn sweep(&mut self) {
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

    // ---- driver connections ----

    fn driver_event(&mut self, fd: RawFd, ev: crate::sys::epoll::Event) {
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
            if !d.is_registered() {
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

    fn run_driver_closes(&mut self) {
        let closes = mem::take(&mut *lock(&self.ws.driver_closes));
        for d in closes {
            d.fire_close(None);
        }
    }
}
