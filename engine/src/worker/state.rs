//! What one worker thread owns: the [`Worker`] (its epoll events, listen socket,
//! connection table, reusable buffers and clock) and, per HTTP connection, a [`Conn`].
//! Plain state: the behaviour is in the sibling modules.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::http::date::DateCache;
use crate::http::handler::{BodySource, Handler, Response};
use crate::http::parse::{HeaderSpan, Limits, RequestProgress};
use crate::metrics::LocalCounts;
use crate::shared::{EngineShared, WorkerShared};
use crate::sys::{Events, Interest};

/// What the unfinished request at the start of a connection's input still lacks (set
/// by `serve`, read by the timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiting {
    /// The end of its header block: the header timer runs.
    Head,
    /// The rest of its body: the body timer runs.
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading and answering requests.
    Open,
    /// A response with `connection: close` is queued; once flushed, linger.
    Closing,
    /// FIN sent; input is read and discarded until EOF or `until`.
    Lingering { until: Instant },
}

/// One HTTP connection: its descriptor and its state. The state is boxed, so that the
/// worker can take a connection out of its table and put it back (as every event does)
/// by moving two words rather than the whole state; boxes of closed connections are
/// kept for the next ones ([`Worker::spare_states`]), so accepting allocates nothing in
/// steady state.
pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    pub(super) state: Box<ConnState>,
}

impl std::ops::Deref for Conn {
    type Target = ConnState;
    fn deref(&self) -> &ConnState {
        &self.state
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut ConnState {
        &mut self.state
    }
}

/// The state of one HTTP connection. Idle connections hold no heap memory: input is parsed from the
/// worker's read buffer and only an unfinished request is copied here; output is
/// written from the worker's buffer and only what the kernel refused is kept here.
pub(super) struct ConnState {
    pub(super) input: Vec<u8>,
    pub(super) output: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) phase: Phase,
    pub(super) interest: Interest,
    /// Answer the next complete request with `connection: close` (drain, shutdown).
    pub(super) close_next: bool,
    pub(super) continue_sent: bool,
    /// No read has completed yet (the `short-first-fragment` fault needs to know).
    pub(super) fresh: bool,
    /// Close without the graceful drain after this write (`error-close-without-drain`).
    pub(super) abort_after_write: bool,
    /// A streamed response body still being produced.
    pub(super) stream: Option<Box<BodyStream>>,
    pub(super) last_activity: Instant,
    /// When the first byte of the unfinished request's head arrived (header timer).
    pub(super) head_started: Option<Instant>,
    /// How far the unfinished request at the start of `input` was parsed.
    pub(super) progress: RequestProgress,
    /// What the unfinished request in `input` lacks.
    pub(super) waiting: Waiting,
    /// When the last bytes of the unfinished request arrived (body timer).
    pub(super) last_read: Instant,
    /// Bytes of `input` counted in the engine's input budget.
    pub(super) held: usize,
    /// Not read (out of the epoll set) until the input budget has room again.
    pub(super) budget_paused: bool,
}

impl ConnState {
    pub(super) fn has_output(&self) -> bool {
        self.out_pos < self.output.len()
    }

    /// A response is still going out (bytes queued or a body being streamed): the
    /// connection reads nothing new until it is done.
    pub(super) fn busy(&self) -> bool {
        self.has_output() || self.stream.is_some()
    }
}

/// A streamed body being sent: what is left, where it comes from, and whether the
/// connection closes after it.
pub(super) struct BodyStream {
    pub(super) remaining: u64,
    pub(super) source: BodySource,
    pub(super) close_after: bool,
}

/// How many closed connections' state boxes a worker keeps for reuse.
pub(super) const MAX_SPARE_STATES: usize = 1024;

/// The worker thread's state; one per worker, never shared.
pub(super) struct Worker {
    pub(super) engine: Arc<EngineShared>,
    pub(super) ws: Arc<WorkerShared>,
    pub(super) handler: Arc<dyn Handler>,
    pub(super) listener: Option<OwnedFd>,
    pub(super) conns: Vec<Option<Conn>>,
    /// States of closed connections, reset, for the next accepted ones (at most
    /// [`MAX_SPARE_STATES`]).
    // The boxes themselves are what is kept: each moves into a `Conn` as it is.
    #[allow(clippy::vec_box)]
    pub(super) spare_states: Vec<Box<ConnState>>,
    pub(super) n_conns: usize,
    pub(super) events: Events,
    pub(super) rbuf: Vec<u8>,
    pub(super) wbuf: Vec<u8>,
    pub(super) spans: Vec<HeaderSpan>,
    /// A chunked body decoded again from its start (the `chunked-redecode` fault).
    pub(super) body_buf: Vec<u8>,
    pub(super) response: Response,
    pub(super) date: DateCache,
    pub(super) local: LocalCounts,
    pub(super) now: Instant,
    pub(super) next_sweep: Instant,
    pub(super) sweep_every: Duration,
    pub(super) shutting: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) limits: Limits,
    pub(super) linger: Duration,
    pub(super) was_self_paused: bool,
    /// `max_buffered_input`.
    pub(super) budget: usize,
    /// Connections paused for the input budget, resumed once it has room.
    pub(super) budget_waiters: Vec<RawFd>,
    /// Large buffers were freed: hand free heap memory back to the system.
    pub(super) trim_pending: bool,
    /// Accept is backed off (descriptors exhausted) until this instant or a close.
    pub(super) accept_backoff: Option<Instant>,
}

impl Worker {
    pub(super) fn new(
        engine: Arc<EngineShared>,
        ws: Arc<WorkerShared>,
        listener: OwnedFd,
        cfg: &Config,
    ) -> Worker {
        let smallest = [
            cfg.idle_timeout,
            cfg.header_timeout,
            cfg.body_timeout,
            cfg.write_timeout,
            cfg.drain_linger,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1));
        let now = Instant::now();
        Worker {
            handler: Arc::clone(&engine.handler),
            engine,
            ws,
            listener: Some(listener),
            conns: Vec::new(),
            spare_states: Vec::new(),
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
                #[cfg(feature = "faults")]
                fault: cfg.fault,
                ..Limits::new(cfg.max_header_bytes, cfg.max_body_bytes)
            },
            linger: cfg.drain_linger,
            was_self_paused: false,
            budget: cfg.max_buffered_input,
            budget_waiters: Vec::new(),
            trim_pending: false,
            accept_backoff: None,
        }
    }

    pub(super) fn cfg(&self) -> &Config {
        self.engine.config()
    }
}
