//! Errors of the engine's operations.

use std::io;

/// Errors of engine-level operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// `listen` was called on an engine that listens or has listened.
    #[error("the engine is already listening (or has shut down): create a new Engine")]
    AlreadyListening,
    /// The operation needs a listening engine.
    #[error("the engine is not listening: call listen() first")]
    NotListening,
    /// A worker index beyond `num_workers()`.
    #[error("no worker {index}: the engine has {count} workers")]
    NoSuchWorker {
        /// The index asked for.
        index: usize,
        /// The number of workers.
        count: usize,
    },
    /// A worker thread exited before answering.
    #[error("worker {0} has exited")]
    WorkerGone(usize),
    /// A syscall failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl EngineError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> EngineError {
        EngineError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Errors of the driver API (`register_conn`, `unregister_conn`, `write`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The fd is not registered on this worker.
    #[error("fd {0} is not registered on this worker")]
    UnknownFd(i32),
    /// Queuing the data would exceed the write cap; nothing was queued.
    #[error("write queue of fd {fd} is full: {pending} bytes pending + {len} > cap {cap}")]
    QueueFull {
        /// The fd.
        fd: i32,
        /// Bytes pending before this write.
        pending: usize,
        /// Bytes of this write.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// A negative fd.
    #[error("fd {0} is negative")]
    NegativeFd(i32),
    /// The fd is registered on this worker already.
    #[error("fd {0} is already registered on this worker: unregister it first")]
    AlreadyRegistered(i32),
    /// The fd is one of this worker's HTTP connections (or the engine's own fd).
    #[error("fd {0} belongs to this worker's HTTP connections")]
    HttpConn(i32),
    /// The fd is in blocking mode.
    #[error("fd {0} is blocking: set O_NONBLOCK before registering it")]
    Blocking(i32),
    /// The worker has exited (the engine shut down).
    #[error("the worker has exited")]
    WorkerGone,
    /// A syscall failed (epoll refused the fd, the peer is gone, ...).
    #[error("fd {fd}: {source}")]
    Io {
        /// The fd.
        fd: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl DriverError {
    /// The OS error number, when the error came from a syscall.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            DriverError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
