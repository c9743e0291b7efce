//! One client thread: its own epoll loop over its share of the connections, raw
//! non-blocking sockets from the engine's `sys` layer, level-triggered.
//!
//! Per request the closed model costs one `send` (the next request is written right
//! after the response that frees its slot, with no EPOLLOUT re-arm) and one `read`,
//! plus an amortised `epoll_wait`. Latencies are recorded per request, pipelined ones
//! included: from the request's own send (uncorrected) and from its due time
//! (corrected; the same as the send in the closed model).
//!
//! Nothing is dropped at the end of the window: the thread stops sending (in the open
//! model it still sends what was due inside the window), gives what is in flight up to
//! `--timeout` to finish, then fails the rest as `timeout` with the latency they had
//! reached; open-model requests due inside the window that were never sent fail the
//! same way, their latency counted from their due time. An interrupt (`stop`) ends the
//! window at once and shortens that grace to [`STOP_GRACE`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::sys::socket;
use engine::sys::{Epoll, Events, Interest};
use reports::histogram::{new_histogram, record, LatencyHistogram};
use reports::ErrorCounts;

use super::config::{Arrivals, RunConfig};
use super::response::{Done, ResponseParser};

/// A send later than this behind its due time counts as late.
const LATE: Duration = Duration::from_millis(1);
/// Wait before reconnecting after a failed connect.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// After an interrupt, what is in flight gets at most this long to finish.
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// State shared by the client threads of one run.
#[derive(Debug)]
pub struct Shared {
    /// The run's configuration.
    pub cfg: Arc<RunConfig>,
    /// The request's bytes.
    pub request: Vec<u8>,
    /// Load starts.
    pub start: Instant,
    /// Recording starts (after warmup).
    pub measure_start: Instant,
    /// Load stops (duration mode).
    pub end: Option<Instant>,
    /// Requests left to send (requests mode).
    pub budget: AtomicI64,
    /// Requests that succeeded while measuring, all threads (for the progress line).
    pub succeeded: AtomicU64,
    /// Requests that failed while measuring, all threads (for the progress line).
    pub failed: AtomicU64,
    /// Set to stop every thread now (an interrupt).
    pub stop: Arc<AtomicBool>,
    /// The one-line message on the client's own exhaustion was printed.
    pub client_exhaustion_told: AtomicBool,
}

/// One second of one thread, shipped to the main thread.
#[derive(Debug)]
pub struct Interval {
    /// Seconds since measuring started.
    pub second: u64,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// How long the interval lasted (1 s but for the last one).
    pub length: Duration,
    /// Corrected latencies of the successful requests.
    pub hist: LatencyHistogram,
    /// Their uncorrected latencies (recorded only for `--hdr-log`, else empty).
    pub uncorrected: LatencyHistogram,
}

/// What a thread measured.
#[derive(Debug)]
pub struct ThreadOutcome {
    /// Corrected latencies.
    pub corrected: LatencyHistogram,
    /// Uncorrected latencies.
    pub uncorrected: LatencyHistogram,
    /// Failed requests' latencies.
    pub failed: LatencyHistogram,
    /// Failures by class.
    pub errors: ErrorCounts,
    /// Successful requests.
    pub requests: u64,
    /// Bytes received while measuring.
    pub bytes_read: u64,
    /// Bytes sent while measuring.
    pub bytes_written: u64,
    /// Open model: sends later than 1 ms.
    pub late: u64,
    /// Open model: due inside the window but never sent (also counted as `timeout`).
    pub never_sent: u64,
    /// Open model: sum of send lags, µs.
    pub lag_sum_us: u64,
    /// Open model: sends counted in `lag_sum_us`.
    pub lagged: u64,
    /// Open model: largest lag, µs.
    pub lag_max_us: u64,
    /// Thread CPU time while measuring.
    pub cpu: Duration,
    /// Wall time measured.
    pub wall: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    sent: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// No socket; reconnect at the instant given.
    Down(Instant),
    Connecting(Instant),
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    ConnectRefused,
    ConnectTimeout,
    Reset,
    Eof,
    Timeout,
    Parse,
    Status4xx,
    Status5xx,
    /// The client itself ran out of something (descriptors, ports, memory).
    Client,
}

fn count(errors: &mut ErrorCounts, f: Failure) {
    match f {
        Failure::ConnectRefused => errors.connect_refused += 1,
        Failure::ConnectTimeout => errors.connect_timeout += 1,
        Failure::Reset => errors.reset += 1,
        Failure::Eof => errors.eof += 1,
        Failure::Timeout => errors.timeout += 1,
        Failure::Parse => errors.parse += 1,
        Failure::Status4xx => errors.status_4xx += 1,
        Failure::Status5xx => errors.status_5xx += 1,
        Failure::Client => errors.client += 1,
    }
}

/// The class of a failed connect: refused, the client's own exhaustion, or a reset.
fn connect_failure(e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return Failure::ConnectRefused;
    }
    match exhaustion_hint(e) {
        Some(_) => Failure::Client,
        None => Failure::Reset,
    }
}

/// What to raise when `e` says the client ran out of something itself.
fn exhaustion_hint(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::EMFILE | libc::ENFILE => {
            Some("out of file descriptors: raise the limit (ulimit -n) or use fewer connections (-c)")
        }
        libc::ENOBUFS | libc::ENOMEM => {
            Some("out of socket memory: use fewer connections (-c) or raise net.core/net.ipv4.tcp_mem")
        }
        libc::EADDRNOTAVAIL => Some(
            "out of ephemeral ports: widen net.ipv4.ip_local_port_range, use fewer connections (-c) or reuse them (no --requests-per-conn)",
        ),
        _ => None,
    }
}

/// The first due time of an open-model connection `offset` into the schedule: from
/// the load's start, shifted by the shard's phase; with `--start-at`, anchored at the
/// measuring start instead (so that shards started at different moments keep their
/// interleaving) and moved back by whole gaps to the first one after the load starts.
fn first_due(sh: &Shared, cfg: &RunConfig, gap: Duration, offset: Duration) -> Instant {
    let phase = cfg.shard.as_ref().map_or(Duration::ZERO, |p| p.phase);
    if cfg.start_at.is_none() || gap.is_zero() {
        return sh.start + phase + offset;
    }
    let anchored = sh.measure_start + phase + offset;
    let before = anchored.saturating_duration_since(sh.start);
    let steps = (before.as_nanos() / gap.as_nanos()).min(u128::from(u32::MAX)) as u32;
    anchored - gap * steps
}

/// A connection's open-model schedule: the due time of its next request.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    next_due: Instant,
    /// Mean gap between its requests.
    gap: Duration,
    rng: u64,
}

impl Schedule {
    fn advance(&mut self, arrivals: Arrivals) {
        let gap = match arrivals {
            Arrivals::Fixed => self.gap,
            Arrivals::Poisson => {
                // xorshift64*; u in (0, 1]; exponential gap with mean `gap`.
                self.rng ^= self.rng >> 12;
                self.rng ^= self.rng << 25;
                self.rng ^= self.rng >> 27;
                let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
                let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                self.gap.mul_f64(-u.ln())
            }
        };
        self.next_due += gap;
    }

    /// Calls `each` with every due time in [from, end) not yet sent.
    fn unsent(
        mut self,
        from: Instant,
        end: Instant,
        arrivals: Arrivals,
        mut each: impl FnMut(Instant),
    ) {
        while self.next_due < end {
            if self.next_due >= from {
                each(self.next_due);
            }
            let before = self.next_due;
            self.advance(arrivals);
            if self.next_due <= before {
                break;
            }
        }
    }
}

struct Conn {
    fd: Option<OwnedFd>,
    state: ConnState,
    interest: Interest,
    inflight: VecDeque<Pending>,
    out: Vec<u8>,
    out_pos: usize,
    parser: ResponseParser,
    sent_on_conn: u64,
    done_on_conn: u64,
    schedule: Schedule,
}

struct Stats {
    corrected: LatencyHistogram,
    uncorrected: LatencyHistogram,
    failed: LatencyHistogram,
    errors: ErrorCounts,
    requests: u64,
    bytes_read: u64,
    bytes_written: u64,
    late: u64,
    lag_sum_us: u64,
    lagged: u64,
    lag_max_us: u64,
    never_sent: u64,
    interval: LatencyHistogram,
    interval_uncorrected: LatencyHistogram,
    interval_requests: u64,
    interval_errors: u64,
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The thread's body: runs its connections until the run ends.
pub fn run_thread(
    shared: Arc<Shared>,
    first_conn: usize,
    conns: usize,
    intervals: mpsc::Sender<Interval>,
) -> Result<ThreadOutcome, String> {
    let mut t = Thread::new(shared, first_conn, conns, intervals)?;
    t.run();
    Ok(t.finish())
}

struct Thread {
    sh: Arc<Shared>,
    epoll: Epoll,
    events: Events,
    conns: Vec<Conn>,
    rbuf: Vec<u8>,
    dones: Vec<Done>,
    stats: Stats,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    intervals: mpsc::Sender<Interval>,
    next_second: Instant,
    second: u64,
    next_scan: Instant,
    measuring: bool,
    cpu_at_measure: Duration,
    wall_at_measure: Instant,
    open_model: bool,
    /// Record uncorrected interval histograms (for `--hdr-log`).
    log_uncorrected: bool,
    /// When the window closed (the end, or the interrupt); set once.
    window_end: Option<Instant>,
    /// In-flight requests fail as `timeout` at this instant (the grace after the window).
    drain_until: Option<Instant>,
    /// Start of the interval being filled.
    interval_start: Instant,
}

impl Thread {
    fn new(
        sh: Arc<Shared>,
        first_conn: usize,
        n: usize,
        intervals: mpsc::Sender<Interval>,
    ) -> Result<Thread, String> {
        let epoll = Epoll::new().map_err(|e| format!("epoll_create: {e}"))?;
        let cfg = Arc::clone(&sh.cfg);
        let open_model = cfg.rate.is_some();
        let total = cfg.connections as f64;
        let conn_base = cfg.shard.as_ref().map_or(0, |p| p.conn_base as u64);
        let conns = (0..n)
            .map(|k| {
                let global = first_conn + k;
                let (gap, first_due) = match cfg.rate {
                    Some(r) => {
                        let per_conn = r / total;
                        let gap = Duration::from_secs_f64(1.0 / per_conn);
                        let offset = Duration::from_secs_f64(global as f64 / r);
                        (gap, first_due(&sh, &cfg, gap, offset))
                    }
                    None => (Duration::ZERO, sh.start),
                };
                let mut parser = ResponseParser::new(cfg.expect_body.as_deref());
                parser.head_request = cfg.method == "HEAD";
                Conn {
                    fd: None,
                    state: ConnState::Down(sh.start),
                    interest: Interest::WRITE,
                    inflight: VecDeque::with_capacity(cfg.pipeline),
                    out: Vec::with_capacity(sh.request.len() * cfg.pipeline),
                    out_pos: 0,
                    parser,
                    sent_on_conn: 0,
                    done_on_conn: 0,
                    schedule: Schedule {
                        next_due: first_due,
                        gap,
                        // Numbered across the shards of a split run, so that each
                        // connection of the whole run draws its own arrivals.
                        rng: cfg.seed
                            ^ (global as u64 + conn_base + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    },
                }
            })
            .collect();
        let now = Instant::now();
        Ok(Thread {
            epoll,
            events: Events::with_capacity(256),
            conns,
            rbuf: vec![0; 64 * 1024],
            dones: Vec::with_capacity(64),
            stats: Stats {
                corrected: new_histogram(),
                uncorrected: new_histogram(),
                failed: new_histogram(),
                errors: ErrorCounts::default(),
                requests: 0,
                bytes_read: 0,
                bytes_written: 0,
                late: 0,
                lag_sum_us: 0,
                lagged: 0,
                lag_max_us: 0,
                never_sent: 0,
                interval: new_histogram(),
                interval_uncorrected: new_histogram(),
                interval_requests: 0,
                interval_errors: 0,
            },
            timers: BinaryHeap::new(),
            intervals,
            next_second: sh.measure_start + Duration::from_secs(1),
            second: 0,
            next_scan: now,
            measuring: false,
            cpu_at_measure: Duration::ZERO,
            wall_at_measure: sh.measure_start,
            open_model,
            log_uncorrected: cfg.hdr_log.is_some(),
            window_end: None,
            drain_until: None,
            interval_start: sh.measure_start,
            sh,
        })
    }

    fn run(&mut self) {
        // Wake on time for the open-model schedule (best effort).
        let _ = engine::sys::thread::set_timer_slack(1);
        for i in 0..self.conns.len() {
            self.connect(i, Instant::now());
        }
        loop {
            let now = Instant::now();
            if !self.measuring && now >= self.sh.measure_start {
                self.measuring = true;
                self.cpu_at_measure = engine::sys::thread::thread_cpu_time();
                self.wall_at_measure = now;
            }
            if self.window_end.is_none() && self.window_closed(now) {
                self.close_window(now);
            }
            if let Some(mut until) = self.drain_until {
                if self.sh.stop.load(Relaxed) {
                    // Interrupted during the grace: shorten it.
                    until = until.min(now + STOP_GRACE);
                    self.drain_until = Some(until);
                }
                if now >= until || self.drained() {
                    break;
                }
            } else if self.requests_done() {
                break;
            }
            let timeout = self.next_wakeup(now);
            if self
                .epoll
                .wait_precise(&mut self.events, Some(timeout))
                .is_err()
            {
                break;
            }
            let now = Instant::now();
            for k in 0..self.events.len() {
                let Some(ev) = self.events.get(k) else { break };
                let i = ev.token as usize;
                if i >= self.conns.len() {
                    continue;
                }
                match self.conns[i].state {
                    ConnState::Connecting(_) if ev.is_writable() || ev.is_error() => {
                        self.connected(i, now)
                    }
                    ConnState::Open => {
                        if ev.is_readable() {
                            self.readable(i, now);
                        }
                        if self.conns[i].state == ConnState::Open && ev.is_writable() {
                            self.flush(i, now);
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            self.fire_timers(now);
            if now >= self.next_scan {
                self.scan(now);
            }
            if self.window_end.is_none() && now >= self.next_second {
                self.ship_interval(now);
            }
        }
        let now = Instant::now();
        self.window_end.get_or_insert(now);
        self.fail_what_is_left(now);
    }

    /// The measuring window is over: the end of a `-d` run, or an interrupt.
    fn window_closed(&self, now: Instant) -> bool {
        self.sh.stop.load(Relaxed) || self.sh.end.is_some_and(|e| now >= e)
    }

    /// Stops new work; what is in flight gets the grace to finish.
    fn close_window(&mut self, now: Instant) {
        if self.measuring && now >= self.next_second {
            // The last whole second, before the drain starts filling the final one.
            self.ship_interval(now);
        }
        let stopped = self.sh.stop.load(Relaxed);
        let end = match self.sh.end {
            Some(e) if !stopped => e,
            _ => now,
        };
        self.window_end = Some(end);
        let grace = if stopped {
            self.sh.cfg.timeout.min(STOP_GRACE)
        } else {
            self.sh.cfg.timeout
        };
        self.drain_until = Some(now + grace);
    }

    /// Nothing in flight, and (open model, not interrupted) nothing due inside the
    /// window left to send.
    fn drained(&self) -> bool {
        let end = self.window_end.unwrap_or_else(Instant::now);
        let sends_left = self.open_model && !self.sh.stop.load(Relaxed);
        self.conns
            .iter()
            .all(|c| c.inflight.is_empty() && !(sends_left && c.schedule.next_due < end))
    }

    /// Requests mode: the budget is spent and nothing is in flight.
    fn requests_done(&self) -> bool {
        self.sh.end.is_none()
            && self.sh.budget.load(Relaxed) <= 0
            && self.conns.iter().all(|c| c.inflight.is_empty())
    }

    /// At the end of the grace: what is still in flight fails as `timeout`, and so do
    /// the open model's requests due inside the window that were never sent.
    fn fail_what_is_left(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let inflight: Vec<Pending> = self.conns[i].inflight.drain(..).collect();
            for p in inflight {
                self.fail(p, Failure::Timeout, now);
            }
        }
        if !self.open_model || !self.measuring {
            return;
        }
        let (from, end) = (self.sh.measure_start, self.window_end.unwrap_or(now));
        let arrivals = self.sh.cfg.arrivals;
        let mut unsent = 0u64;
        for c in &self.conns {
            let failed = &mut self.stats.failed;
            c.schedule.unsent(from, end, arrivals, |due| {
                unsent += 1;
                record(failed, us(now.saturating_duration_since(due)));
            });
        }
        self.stats.never_sent += unsent;
        self.stats.errors.timeout += unsent;
        self.stats.interval_errors += unsent;
        self.sh.failed.fetch_add(unsent, Relaxed);
    }

    fn next_wakeup(&self, now: Instant) -> Duration {
        let mut at = self.next_scan.min(self.next_second);
        if let Some(Reverse((t, _))) = self.timers.peek() {
            at = at.min(*t);
        }
        if let Some(end) = self.sh.end {
            if self.window_end.is_none() {
                at = at.min(end);
            }
        }
        if let Some(until) = self.drain_until {
            at = at.min(until);
        }
        if !self.measuring {
            at = at.min(self.sh.measure_start);
        }
        at.saturating_duration_since(now)
            .min(Duration::from_millis(100))
    }

    // ---- connection lifecycle ----

    fn connect(&mut self, i: usize, now: Instant) {
        if let Some(end) = self.window_end {
            // After the window only the open model's sends due inside it need a socket.
            let due = self.conns[i].schedule.next_due;
            if !(self.open_model && !self.sh.stop.load(Relaxed) && due < end) {
                self.conns[i].fd = None;
                self.conns[i].state = ConnState::Down(now);
                return;
            }
        }
        let c = &mut self.conns[i];
        c.parser.reset();
        c.out.clear();
        c.out_pos = 0;
        c.sent_on_conn = 0;
        c.done_on_conn = 0;
        match socket::tcp_connect(self.sh.cfg.target.addr) {
            Ok(fd) => {
                if self
                    .epoll
                    .add(fd.as_raw_fd(), i as u64, Interest::WRITE)
                    .is_err()
                {
                    c.state = ConnState::Down(now + RECONNECT_BACKOFF);
                    self.timers.push(Reverse((now + RECONNECT_BACKOFF, i)));
                    return;
                }
                c.interest = Interest::WRITE;
                c.fd = Some(fd);
                c.state = ConnState::Connecting(now);
            }
            Err(e) => {
                let f = connect_failure(&e);
                if f == Failure::Client {
                    self.tell_exhaustion(&e);
                }
                self.connect_failed(i, f, now);
            }
        }
    }

    /// The one line (per run) that says the client itself ran out of something.
    fn tell_exhaustion(&self, e: &io::Error) {
        if self.sh.client_exhaustion_told.swap(true, Relaxed) {
            return;
        }
        let hint = exhaustion_hint(e).unwrap_or("");
        eprintln!("\r\x1b[2Kloadgen: cannot open a connection ({e}): {hint}; these failures are counted as `client`");
    }

    fn connect_failed(&mut self, i: usize, f: Failure, now: Instant) {
        // A failed connect is a failed request: in requests mode it spends the budget,
        // so a run against a server that refuses everything still ends.
        if self.sh.end.is_none() && self.measuring {
            self.sh.budget.fetch_sub(1, Relaxed);
        }
        if self.measuring {
            count(&mut self.stats.errors, f);
            self.stats.interval_errors += 1;
            self.sh.failed.fetch_add(1, Relaxed);
        }
        let c = &mut self.conns[i];
        c.fd = None;
        c.state = ConnState::Down(now + RECONNECT_BACKOFF);
        self.timers.push(Reverse((now + RECONNECT_BACKOFF, i)));
    }

    fn connected(&mut self, i: usize, now: Instant) {
        let Some(fd) = self.conns[i].fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        match socket::take_error(fd) {
            Ok(None) => {}
            Ok(Some(e)) => {
                let f = connect_failure(&e);
                if f == Failure::Client {
                    self.tell_exhaustion(&e);
                }
                return self.connect_failed(i, f, now);
            }
            Err(_) => return self.connect_failed(i, Failure::Reset, now),
        }
        let _ = socket::set_nodelay(fd, true);
        self.conns[i].state = ConnState::Open;
        self.refill(i, now);
        self.flush(i, now);
    }

    /// Drops the socket; in-flight requests fail with `f` (if given); reconnects.
    fn drop_conn(&mut self, i: usize, f: Option<Failure>, now: Instant) {
        let inflight: Vec<Pending> = self.conns[i].inflight.drain(..).collect();
        if let Some(f) = f {
            for p in inflight {
                self.fail(p, f, now);
            }
        }
        let c = &mut self.conns[i];
        c.fd = None;
        c.state = ConnState::Down(now);
        self.connect(i, now);
    }

    fn fail(&mut self, p: Pending, f: Failure, now: Instant) {
        if p.due < self.sh.measure_start || !self.measuring {
            return;
        }
        count(&mut self.stats.errors, f);
        record(
            &mut self.stats.failed,
            us(now.saturating_duration_since(p.due)),
        );
        self.stats.interval_errors += 1;
        self.sh.failed.fetch_add(1, Relaxed);
    }

    // ---- sending ----

    fn claim(&self, now: Instant) -> bool {
        if self.sh.end.is_some() || now < self.sh.measure_start {
            return true;
        }
        self.sh.budget.fetch_sub(1, Relaxed) > 0
    }

    /// Whether connection `i` may send a request due at `due` now: nothing after an
    /// interrupt; after the end, only (open model) what was due inside the window.
    fn may_send(&self, i: usize, now: Instant, due: Instant) -> bool {
        let c = &self.conns[i];
        if self.sh.stop.load(Relaxed) {
            return false;
        }
        if let Some(end) = self.sh.end {
            let last = if self.open_model { due } else { now };
            if last >= end {
                return false;
            }
        }
        if let Some(rpc) = self.sh.cfg.requests_per_conn {
            if c.sent_on_conn >= rpc {
                return false;
            }
        }
        true
    }

    fn refill(&mut self, i: usize, now: Instant) {
        if self.conns[i].state != ConnState::Open {
            return;
        }
        if self.open_model {
            if !self.conns[i].inflight.is_empty() {
                return;
            }
            let due = self.conns[i].schedule.next_due;
            if due > now {
                self.timers.push(Reverse((due, i)));
                return;
            }
            if !self.may_send(i, now, due) || !self.claim(now) {
                return;
            }
            let lag = now.saturating_duration_since(due);
            if due >= self.sh.measure_start && self.measuring {
                if lag > LATE {
                    self.stats.late += 1;
                }
                let l = us(lag);
                self.stats.lag_sum_us += l;
                self.stats.lagged += 1;
                self.stats.lag_max_us = self.stats.lag_max_us.max(l);
            }
            self.push_request(i, due, now);
            let arrivals = self.sh.cfg.arrivals;
            self.conns[i].schedule.advance(arrivals);
        } else {
            while self.conns[i].inflight.len() < self.sh.cfg.pipeline
                && self.may_send(i, now, now)
                && self.claim(now)
            {
                self.push_request(i, now, now);
            }
        }
    }

    fn push_request(&mut self, i: usize, due: Instant, sent: Instant) {
        let c = &mut self.conns[i];
        c.out.extend_from_slice(&self.sh.request);
        c.inflight.push_back(Pending { due, sent });
        c.sent_on_conn += 1;
    }

    fn flush(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let Some(fd) = c.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        while c.out_pos < c.out.len() {
            match socket::send(fd, &c.out[c.out_pos..]) {
                Ok(k) => {
                    c.out_pos += k;
                    if self.measuring {
                        self.stats.bytes_written += k as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(i, Some(Failure::Reset), now),
            }
        }
        let c = &mut self.conns[i];
        let want = if c.out_pos < c.out.len() {
            Interest::READ_WRITE
        } else {
            c.out.clear();
            c.out_pos = 0;
            Interest::READ
        };
        if c.interest != want && self.epoll.modify(fd, i as u64, want).is_ok() {
            c.interest = want;
        }
    }

    // ---- receiving ----

    fn readable(&mut self, i: usize, now: Instant) {
        let Some(fd) = self.conns[i].fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let mut outcome: Option<Option<Failure>> = None;
        loop {
            match socket::read(fd, &mut rbuf) {
                Ok(0) => {
                    let dones = &mut self.dones;
                    // A response cut by the close fails as `eof` with the rest in flight.
                    let _ = self.conns[i].parser.eof(&mut |d| dones.push(d));
                    outcome = Some(Some(Failure::Eof));
                    break;
                }
                Ok(n) => {
                    if self.measuring {
                        self.stats.bytes_read += n as u64;
                    }
                    let dones = &mut self.dones;
                    if self.conns[i]
                        .parser
                        .feed(&rbuf[..n], &mut |d| dones.push(d))
                        .is_err()
                    {
                        outcome = Some(Some(Failure::Parse));
                        break;
                    }
                    if n < rbuf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    outcome = Some(Some(Failure::Reset));
                    break;
                }
            }
        }
        self.rbuf = rbuf;
        let mut server_closes = false;
        let dones = std::mem::take(&mut self.dones);
        for d in &dones {
            server_closes |= d.close;
            self.completed(i, d, now);
        }
        self.dones = dones;
        self.dones.clear();
        if let Some(f) = outcome {
            // EOF with nothing outstanding is a clean close, not a failure.
            let f = if self.conns[i].inflight.is_empty() && f == Some(Failure::Eof) {
                None
            } else {
                f
            };
            return self.drop_conn(i, f, now);
        }
        let c = &self.conns[i];
        let churn = self
            .sh
            .cfg
            .requests_per_conn
            .is_some_and(|rpc| c.done_on_conn >= rpc);
        if server_closes || (churn && c.inflight.is_empty()) {
            // Requests sent after a `connection: close` response will not be answered.
            return self.drop_conn(i, Some(Failure::Eof), now);
        }
        self.refill(i, now);
        self.flush(i, now);
    }

    fn completed(&mut self, i: usize, d: &Done, now: Instant) {
        let Some(p) = self.conns[i].inflight.pop_front() else {
            return self.fail(
                Pending {
                    due: now,
                    sent: now,
                },
                Failure::Parse,
                now,
            );
        };
        self.conns[i].done_on_conn += 1;
        let cfg = &self.sh.cfg;
        let status_ok = match cfg.expect_status {
            Some(s) => d.status == s,
            None => d.status < 400,
        };
        let failure = if !status_ok {
            Some(if d.status >= 500 {
                Failure::Status5xx
            } else {
                Failure::Status4xx
            })
        } else if !d.body_ok {
            Some(Failure::Parse)
        } else {
            None
        };
        if let Some(f) = failure {
            return self.fail(p, f, now);
        }
        if p.due < self.sh.measure_start || !self.measuring {
            return;
        }
        let corrected = us(now.saturating_duration_since(p.due));
        let uncorrected = us(now.saturating_duration_since(p.sent));
        record(&mut self.stats.corrected, corrected);
        record(&mut self.stats.uncorrected, uncorrected);
        record(&mut self.stats.interval, corrected);
        if self.log_uncorrected {
            record(&mut self.stats.interval_uncorrected, uncorrected);
        }
        self.stats.requests += 1;
        self.stats.interval_requests += 1;
        self.sh.succeeded.fetch_add(1, Relaxed);
    }

    // ---- timers ----

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, i))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match self.conns[i].state {
                ConnState::Down(at) if at <= now => self.connect(i, now),
                ConnState::Open if self.conns[i].inflight.is_empty() => {
                    self.refill(i, now);
                    self.flush(i, now);
                }
                _ => {}
            }
        }
    }

    fn scan(&mut self, now: Instant) {
        self.next_scan = now + Duration::from_millis(20);
        let timeout = self.sh.cfg.timeout;
        for i in 0..self.conns.len() {
            match self.conns[i].state {
                ConnState::Connecting(since) if now.duration_since(since) > timeout => {
                    self.connect_failed(i, Failure::ConnectTimeout, now);
                }
                ConnState::Open => {
                    if let Some(p) = self.conns[i].inflight.front() {
                        if now.duration_since(p.sent) > timeout {
                            self.drop_conn(i, Some(Failure::Timeout), now);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Ships the interval being filled; a whole second unless it is the last.
    fn ship_interval(&mut self, now: Instant) {
        let length = if now >= self.next_second && self.window_end.is_none() {
            Duration::from_secs(1)
        } else {
            now.saturating_duration_since(self.interval_start)
        };
        let hist = std::mem::replace(&mut self.stats.interval, new_histogram());
        let uncorrected = if self.log_uncorrected {
            std::mem::replace(&mut self.stats.interval_uncorrected, new_histogram())
        } else {
            new_histogram()
        };
        let _ = self.intervals.send(Interval {
            second: self.second,
            requests: self.stats.interval_requests,
            errors: self.stats.interval_errors,
            length,
            hist,
            uncorrected,
        });
        self.stats.interval_requests = 0;
        self.stats.interval_errors = 0;
        self.second += 1;
        self.interval_start = self.next_second;
        self.next_second += Duration::from_secs(1);
    }

    fn finish(mut self) -> ThreadOutcome {
        let now = Instant::now();
        if self.measuring && (self.stats.interval_requests > 0 || self.stats.interval_errors > 0) {
            self.ship_interval(now);
        }
        let cpu = engine::sys::thread::thread_cpu_time().saturating_sub(self.cpu_at_measure);
        let wall = if self.measuring {
            self.window_end
                .unwrap_or(now)
                .min(now)
                .saturating_duration_since(self.wall_at_measure)
        } else {
            Duration::ZERO
        };
        ThreadOutcome {
            corrected: self.stats.corrected,
            uncorrected: self.stats.uncorrected,
            failed: self.stats.failed,
            errors: self.stats.errors,
            requests: self.stats.requests,
            bytes_read: self.stats.bytes_read,
            bytes_written: self.stats.bytes_written,
            late: self.stats.late,
            never_sent: self.stats.never_sent,
            lag_sum_us: self.stats.lag_sum_us,
            lagged: self.stats.lagged,
            lag_max_us: self.stats.lag_max_us,
            cpu: if self.measuring { cpu } else { Duration::ZERO },
            wall,
        }
    }
}
