//! Engine counters: per-worker atomics written by their worker, summed on read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

/// Counters of one worker. Each is written by the worker thread (driver writes from
/// other threads add to `bytes_written` too), read by `Engine::metrics`.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    pub requests: AtomicU64,
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub accept_backoffs: AtomicU64,
}

/// Counts a worker gathers during one loop iteration and publishes at its end, so the
/// hot path touches no shared cache line per request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LocalCounts {
    pub requests: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl WorkerCounters {
    /// One more error (a refused request, a failed syscall on a connection).
    pub fn count_error(&self) {
        self.errors.fetch_add(1, SeqCst);
    }

    pub fn publish(&self, local: &mut LocalCounts) {
        if local.requests != 0 {
            self.requests.fetch_add(local.requests, Relaxed);
        }
        if local.bytes_read != 0 {
            self.bytes_read.fetch_add(local.bytes_read, Relaxed);
        }
        if local.bytes_written != 0 {
            self.bytes_written.fetch_add(local.bytes_written, Relaxed);
        }
        *local = LocalCounts::default();
    }
}

/// The state of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// Listening and serving.
    Active,
    /// Not listening, still serving connections it has.
    Draining,
    /// Not listening, no connections: blocked on its eventfd, costing no CPU.
    Suspended,
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkerState::Active => "active",
            WorkerState::Draining => "draining",
            WorkerState::Suspended => "suspended",
        })
    }
}

/// One worker's part of a [`Metrics`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Worker index.
    pub index: usize,
    /// Its state.
    pub state: WorkerState,
    /// Open HTTP and driver connections.
    pub active_connections: u64,
    /// Connections it accepted (drained ones included).
    pub accepted: u64,
}

impl WorkerMetrics {
    /// A worker's metrics (for engines other than this one, e.g. a target reporting
    /// over the scenarios' control protocol).
    pub fn new(index: usize, state: WorkerState, active_connections: u64, accepted: u64) -> Self {
        WorkerMetrics {
            index,
            state,
            active_connections,
            accepted,
        }
    }
}

/// A snapshot of the engine's counters. Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// HTTP responses written (one per request, pipelined ones included).
    pub requests_served: u64,
    /// Open connections now.
    pub active_connections: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed.
    pub closed: u64,
    /// Errors (bad requests, failed syscalls on connections).
    pub errors: u64,
    /// Bytes read from HTTP connections.
    pub bytes_read: u64,
    /// Bytes written to HTTP and driver connections.
    pub bytes_written: u64,
    /// Times a worker stopped watching its listen socket because `accept` ran out of
    /// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`).
    pub accept_backoffs: u64,
    /// Bytes of request input held now, across all connections (a gauge, bounded by
    /// `max_buffered_input` plus one read buffer per worker).
    pub buffered_input_bytes: u64,
    /// Per worker.
    pub workers: Vec<WorkerMetrics>,
    /// Whether the kernel moves a closing listen socket's queued connections to
    /// another listen socket of its `SO_REUSEPORT` group instead of resetting them
    /// (`net.ipv4.tcp_migrate_req = 1`, Linux 5.14+). Read when the engine starts
    /// listening, in the network namespace of the thread that calls `listen`; the
    /// engine never changes the setting. `Some(false)`: the setting is 0, or the kernel
    /// has none. `None`: not listening yet, or the setting could not be read.
    pub migrates_listener_queue: Option<bool>,
}

/// Reads `net.ipv4.tcp_migrate_req` in the calling thread's network namespace. A
/// kernel without the setting (before 5.14) does not migrate: `Some(false)`.
pub(crate) fn host_migrates_listener_queue() -> Option<bool> {
    crate::sys::netns::tcp_migrate_req()
        .ok()
        .map(|setting| setting.unwrap_or(false))
}
