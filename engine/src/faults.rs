//! Named, deliberate bugs for negative controls (feature `faults`, never in normal
//! builds). Each imitates a real bug and must make the scenario of its clause fail.

/// A deliberate bug. Set [`Config::fault`](crate::Config) to inject it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Config validation accepts `workers = 0` (engine.new.validate).
    NoValidation,
    /// Each worker binds port 0 on its own, so each gets its own port (engine.listen.bind).
    EphemeralPortPerWorker,
    /// The eventfd of each worker is leaked on exit (engine.listen.blocks).
    LeakEventFd,
    /// `engine_type()` reports `Unknown` until the engine listens (engine.type).
    TypeUnknownBeforeListen,
    /// `num_workers()` reads the configured count, also before listening
    /// (engine.workers.count).
    WorkerCountFromConfig,
    /// Pipelined requests after the first of a read are not counted (engine.metrics).
    MetricsMissPipelined,
    /// `shutdown` closes every connection at once, mid-response (engine.shutdown.graceful).
    ShutdownAborts,
    /// The listen socket is closed without accepting its queue: queued clients get RST
    /// (accept.pause.drain-fin).
    CloseWithoutDrain,
    /// `pause_accept` returns before the workers closed their sockets (accept.pause.sync).
    AsyncPause,
    /// Where the kernel migrates listener queues (`tcp_migrate_req = 1`), the listen
    /// socket is closed without the drain, trusting the kernel to hand its queue to
    /// another engine: with no other listener on the port, the queue is reset
    /// (accept.pause.migrate).
    SkipDrainWhenMigrating,
    /// Drained connections are closed at once, unread requests dropped (accept.pause.zero-loss).
    DrainDropsRequests,
    /// `TCP_DEFER_ACCEPT` is on (accept.no-deferred).
    DeferAccept,
    /// `resume_accept` / `resume_worker` do not re-create listen sockets (accept.resume).
    ResumeWithoutRelisten,
    /// The listener is edge-triggered and accepts at most 64 per wakeup (accept.backlog-drain).
    StrandBacklog,
    /// Already-accepted connections are closed when accept pauses (accept.pause.keep-serving).
    PauseClosesConnections,
    /// A second `pause_accept` re-runs the pause and blocks (accept.pause.idempotent).
    PauseNotIdempotent,
    /// `pause_worker` waits until the worker has drained (worker.pause.async).
    SyncWorkerPause,
    /// `pause_worker` marks the worker paused but leaves its listen socket open
    /// (worker.pause.routing).
    PausedWorkerKeepsListening,
    /// A suspended worker polls with a zero timeout (worker.suspended.idle).
    SpinWhileSuspended,
    /// A suspended worker wakes on a 600 ms timer, a "cheap" housekeeping tick
    /// (worker.suspended.idle: a watch shorter than the period never sees it).
    SuspendedTimerWakeup,
    /// `resume_accept` asks the workers to listen again and returns without waiting for
    /// them (accept.resume: the window is as short as a thread wake-up).
    AsyncResume,
    /// `resume_accept` also clears each worker's own pause, so a worker paused with
    /// `pause_worker` listens again (accept.resume, worker.resume).
    ResumeClearsWorkerPause,
    /// A worker's `accepted` counter is reset when its listen socket closes
    /// (engine.metrics: counters must be monotonic across pause).
    AcceptedResetOnPause,
    /// Connections accepted by a drain are not counted as accepted (engine.metrics).
    DrainNotCounted,
    /// `resume_worker` listens again even while accept is paused engine-wide (worker.resume).
    ResumeIgnoresEnginePause,
    /// Out-of-range worker indexes are silently ignored (worker.index).
    IgnoreBadWorkerIndex,
    /// A paused worker stops servicing driver connections (worker.drivers-serviced).
    PausedIgnoresDrivers,
    /// Euclidean remainder instead of mirroring negative n (select.mirror).
    EuclideanSelect,
    /// Selection uses `n % N` on the current worker count snapshot plus a rotating
    /// offset, so the same n moves (select.stable, select.modulo).
    RotatingSelect,
    /// `try_worker_loop` panics before listen instead of returning None (select.before-listen).
    TryWorkerLoopPanics,
    /// `cpu_id()` reports the assigned CPU even when pinning failed (loop.cpuid).
    CpuIdWhenPinFailed,
    /// Registering a blocking fd is accepted (driver.register).
    AcceptBlockingFd,
    /// `on_recv` is handed at most 4 KiB of each read (driver.recv).
    TruncateRecv,
    /// `unregister_conn` closes the fd (driver.unregister).
    UnregisterClosesFd,
    /// A driver connection unregistered from inside its `on_recv` is read on until its
    /// input runs dry, calling `on_recv` after the unregister (driver.unregister; found by
    /// cargo-mutants).
    RecvAfterUnregister,
    /// A peer reset is reported as `on_close(None)` (driver.close-callback).
    ResetAsClean,
    /// `write` to an fd registered on another worker is accepted (driver.write.unknown).
    WriteAnyWorker,
    /// `QueueFull` when pending + len >= cap: off by one (driver.write.queue-full).
    CapOffByOne,
    /// `QueueFull` also throws away what was queued before (driver.write.no-loss).
    QueueFullDropsQueue,
    /// `write` loops on write(2) until the kernel refuses (driver.write.inline-once).
    InlineWriteLoop,
    /// Large writes are queued in two halves under separate locks (driver.write.concurrent).
    SplitLockedWrite,
    /// Driver writes use write(2), which raises SIGPIPE on a gone peer (driver.no-sigpipe).
    SigpipeWrite,
    /// HTTP/1.0 requests without `Connection: keep-alive` are kept alive (http.keepalive).
    KeepAliveHttp10,
    /// Only the first request of each read is answered; the rest of the read is dropped
    /// (http.pipelining).
    PipelineDropsRest,
    /// A connection's first read of under 4 bytes is discarded, as the original engine
    /// does (http.split-anywhere).
    ShortFirstFragment,
    /// A chunked body not complete in the same read as its head is refused with 400, as
    /// the original engine does (http.split-anywhere, http.framing).
    ChunkedSplitRejected,
    /// Transfer-Encoding with Content-Length frames by Content-Length: smuggling
    /// (http.framing).
    ContentLengthWins,
    /// An oversized header block gets 400 instead of 431 (http.errors).
    HeaderTooLargeIs400,
    /// Error responses close the connection at once with input unread: RST (http.errors).
    ErrorCloseWithoutDrain,
    /// `Expect: 100-continue` never gets `100 Continue` (http.expect-continue).
    NoContinue,
    /// HEAD responses carry the body (http.head).
    HeadWithBody,
    /// Responses are cut at 4 MiB, as the original engine does (http.large-response).
    TruncateLargeResponse,
    /// A full socket buffer is retried in a busy loop instead of waiting for EPOLLOUT,
    /// as the original engine does (http.slow-reader).
    SlowReaderSpin,
    /// A send that fails (the peer reset) is retried at once, in a loop, for 2 s
    /// before the connection is given up: the worker spins and serves nobody meanwhile
    /// (http.slow-reader; found by cargo-mutants).
    SendErrorRetried,
    /// Idle connections are never closed (http.timeouts).
    NoIdleTimeout,
    /// Responses carry no `date` header (http.date).
    NoDateHeader,
    /// Every HTTP request burns [`burn_ns`] nanoseconds of CPU in a spin loop, like a
    /// slow code path slipped into the request path (performance only: no conformance
    /// clause catches it; `loadgen gate` must, from a `loadgen bench --ab` run).
    BurnCpu,
    /// A chunked body is decoded again from its start on every read, as before the
    /// incremental decoder: CPU grows with the square of the chunk count
    /// (hostile.chunked-linear).
    ChunkedRedecode,
    /// The end of a head is searched for from its start on every read: a head sent a
    /// byte at a time costs the square of its size (hostile.head-linear).
    HeadRescan,
    /// Trailers are neither limited nor checked: any bytes up to the empty line
    /// (hostile.trailers).
    UnlimitedTrailers,
    /// The handler sees the whole absolute-form URI as the target and `*` is taken with
    /// any method (hostile.request-target).
    WholeUriRouting,
    /// A request line over the limit gets 431 instead of 414 (http.errors).
    RequestLineTooLongIs431,
    /// A chunk size may start with `+`, as a `from_str_radix` parse takes (http.framing).
    ChunkSizeSign,
    /// Chunk sizes are accumulated with wrapping arithmetic and no length limit: 17 hex
    /// digits wrap to a small size, smuggling what follows (http.framing).
    ChunkSizeWraps,
    /// Any `chunked` token in Transfer-Encoding frames the body as chunked, also when
    /// it is not the final coding (`chunked, identity`) (http.framing).
    ChunkedNotFinal,
    /// A Transfer-Encoding without `chunked` (`gzip`) frames the body as chunked
    /// instead of being refused (http.framing; found by cargo-mutants).
    UnknownCodingAsChunked,
    /// Connection options are compared case-sensitively: `Close` and `Keep-Alive` are
    /// not seen (http.keepalive).
    ConnectionCaseSensitive,
    /// HTTP/1.0 keep-alive responses carry no `connection: keep-alive` (http.keepalive).
    NoKeepAliveHeader,
    /// A body of exactly the limit is refused with 413, by Content-Length and chunked
    /// alike (http.errors).
    BodyLimitOffByOne,
    /// Every HTTP request burns about [`burn_instr`] user-space instructions in a
    /// `black_box` loop: a regression sized in instructions, which `loadgen cost --ab`
    /// must see exactly (performance only: no conformance clause catches it).
    BurnInstr,
    /// No input budget: every connection is read whatever the engine holds
    /// (hostile.memory-budget).
    NoInputBudget,
    /// Input consumed from a connection's buffer is not given back to the input
    /// budget: the budget fills up for good after enough requests (hostile.memory-budget;
    /// found by cargo-mutants).
    BudgetNotReturned,
    /// `accept` failing with `EMFILE` is retried on the next wakeup, at once: the
    /// worker spins (hostile.emfile).
    SpinOnEmfile,
    /// A body that stops arriving is never timed out (hostile.slow-body).
    NoBodyTimeout,
    /// Idle connections are closed after twice the idle timeout (http.timeouts).
    IdleTimeoutDoubled,
    /// The header timer starts at a connection's first unfinished head and is never
    /// restarted for later keep-alive requests (http.timeouts).
    HeaderTimerNotRestarted,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: &'static [Fault] = &[
        Fault::NoValidation,
        Fault::EphemeralPortPerWorker,
        Fault::LeakEventFd,
        Fault::TypeUnknownBeforeListen,
        Fault::WorkerCountFromConfig,
        Fault::MetricsMissPipelined,
        Fault::ShutdownAborts,
        Fault::CloseWithoutDrain,
        Fault::AsyncPause,
        Fault::SkipDrainWhenMigrating,
        Fault::DrainDropsRequests,
        Fault::DeferAccept,
        Fault::ResumeWithoutRelisten,
        Fault::StrandBacklog,
        Fault::PauseClosesConnections,
        Fault::PauseNotIdempotent,
        Fault::SyncWorkerPause,
        Fault::PausedWorkerKeepsListening,
        Fault::SpinWhileSuspended,
        Fault::SuspendedTimerWakeup,
        Fault::AsyncResume,
        Fault::ResumeClearsWorkerPause,
        Fault::AcceptedResetOnPause,
        Fault::DrainNotCounted,
        Fault::ResumeIgnoresEnginePause,
        Fault::IgnoreBadWorkerIndex,
        Fault::PausedIgnoresDrivers,
        Fault::EuclideanSelect,
        Fault::RotatingSelect,
        Fault::TryWorkerLoopPanics,
        Fault::CpuIdWhenPinFailed,
        Fault::AcceptBlockingFd,
        Fault::TruncateRecv,
        Fault::UnregisterClosesFd,
        Fault::RecvAfterUnregister,
        Fault::ResetAsClean,
        Fault::WriteAnyWorker,
        Fault::CapOffByOne,
        Fault::QueueFullDropsQueue,
        Fault::InlineWriteLoop,
        Fault::SplitLockedWrite,
        Fault::SigpipeWrite,
        Fault::KeepAliveHttp10,
        Fault::PipelineDropsRest,
        Fault::ShortFirstFragment,
        Fault::ChunkedSplitRejected,
        Fault::ContentLengthWins,
        Fault::HeaderTooLargeIs400,
        Fault::ErrorCloseWithoutDrain,
        Fault::NoContinue,
        Fault::HeadWithBody,
        Fault::TruncateLargeResponse,
        Fault::SlowReaderSpin,
        Fault::SendErrorRetried,
        Fault::NoIdleTimeout,
        Fault::NoDateHeader,
        Fault::BurnCpu,
        Fault::ChunkedRedecode,
        Fault::HeadRescan,
        Fault::UnlimitedTrailers,
        Fault::WholeUriRouting,
        Fault::RequestLineTooLongIs431,
        Fault::ChunkSizeSign,
        Fault::ChunkSizeWraps,
        Fault::ChunkedNotFinal,
        Fault::UnknownCodingAsChunked,
        Fault::ConnectionCaseSensitive,
        Fault::NoKeepAliveHeader,
        Fault::BodyLimitOffByOne,
        Fault::BurnInstr,
        Fault::NoInputBudget,
        Fault::BudgetNotReturned,
        Fault::SpinOnEmfile,
        Fault::NoBodyTimeout,
        Fault::IdleTimeoutDoubled,
        Fault::HeaderTimerNotRestarted,
    ];

    /// The fault's kebab-case name, e.g. `close-without-drain`.
    pub fn name(self) -> String {
        let dbg = format!("{self:?}");
        let mut out = String::new();
        for (i, c) in dbg.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The fault named `name` (kebab-case).
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Every fault's name, comma-separated: for a message that lists the choices.
    pub fn names() -> String {
        let names: Vec<String> = Fault::ALL.iter().map(|f| f.name()).collect();
        names.join(", ")
    }

    /// Whether the fault only makes the engine slower, breaking no clause: such faults
    /// are marked `-` in `ci/fault-matrix.tsv` and caught by the performance gate.
    pub fn is_performance_only(self) -> bool {
        matches!(self, Fault::BurnCpu | Fault::BurnInstr)
    }
}

/// CPU time [`Fault::BurnCpu`] burns per request by default: about 10 % of the
/// reference engine's CPU per plaintext request (~7.6 µs on the 2-core CI machine).
pub const DEFAULT_BURN_NS: u64 = 800;

/// Nanoseconds [`Fault::BurnCpu`] burns per request: `LOADGEN_BURN_NS` when set to a
/// number, else [`DEFAULT_BURN_NS`]; read once.
pub fn burn_ns() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        std::env::var("LOADGEN_BURN_NS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_BURN_NS)
    })
}

/// Spins on the clock for [`burn_ns`] nanoseconds.
pub(crate) fn burn_cpu() {
    let end = std::time::Instant::now() + std::time::Duration::from_nanos(burn_ns());
    while std::time::Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// Instructions [`Fault::BurnInstr`] burns per request by default: with the call and
/// the fault's check, +35 on the reference engine's 3,132 per keep-alive request (faults
/// build, cachegrind): +1.1 %, just beyond `loadgen cost --ab`'s default threshold.
pub const DEFAULT_BURN_INSTR: u64 = 16;

/// Instructions [`Fault::BurnInstr`] burns per request: `LOADGEN_BURN_INSTR` when set to
/// a number, else [`DEFAULT_BURN_INSTR`]; read once.
pub fn burn_instr() -> u64 {
    static N: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("LOADGEN_BURN_INSTR")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_BURN_INSTR)
    })
}

/// Instructions one turn of [`burn_instructions`]'s loop takes (x86-64 release build,
/// counted with cachegrind: `LOADGEN_BURN_INSTR=40000` costs 40,016 in the function).
const INSTR_PER_TURN: u64 = 4;

/// Burns about [`burn_instr`] instructions: a loop the optimiser cannot remove.
#[inline(never)]
pub(crate) fn burn_instructions() {
    let mut x = 0u64;
    for i in 0..burn_instr() / INSTR_PER_TURN {
        x = std::hint::black_box(x.wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// The `send-error-retried` fault's loop: true (retry the failed send again) until the
/// calling thread has been retrying for 2 s, then false once (give up), and the next
/// failure starts a new 2 s.
pub(crate) fn retry_for_2s() -> bool {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! {
        static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    SINCE.with(|since| {
        let start = *since.get().get_or_insert_with(Instant::now);
        since.set(Some(start));
        if start.elapsed() < Duration::from_secs(2) {
            true
        } else {
            since.set(None);
            false
        }
    })
}
