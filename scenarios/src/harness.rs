//! Starting an instance of the context's target for one scenario, and reading a
//! process's fds, CPU time and context switches from `/proc`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::Config;

use crate::ctx::Ctx;
use crate::targets::{DriverLoop, Instance};
use crate::wait::wait_until;

/// Open fds of this process (`/proc/self/fd`).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// CPU time a thread has used (`/proc/<tid>/schedstat`: any process's thread,
/// nanoseconds; falls back to `stat` ticks).
pub fn thread_cpu_time(tid: i32) -> Option<Duration> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{tid}/schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return Some(Duration::from_nanos(ns));
        }
    }
    let s = std::fs::read_to_string(format!("/proc/{tid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Voluntary + involuntary context switches of a thread (each wakeup counts one).
pub fn thread_switches(tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let mut total = 0;
    for line in s.lines() {
        if let Some(v) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            total += v.trim().parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// An instance of the context's target, started for one scenario; stopped when the
/// last handle is dropped.
pub struct Server {
    inst: Arc<dyn Instance>,
    addr: SocketAddr,
    /// The `/hold` requests held in the handler.
    pub gate: Holds,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The `/hold` requests of an instance: how many entered, and releasing them.
pub struct Holds {
    inst: Arc<dyn Instance>,
}

impl std::fmt::Debug for Holds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holds")
            .field("entered", &self.entered())
            .finish()
    }
}

impl Holds {
    /// How many handlers have entered the gate so far.
    pub fn entered(&self) -> u64 {
        self.inst.holds_entered()
    }
    /// Waits until `n` handlers have entered, for at most `within`.
    pub fn wait_entered(&self, n: u64, within: Duration) -> bool {
        wait_until(within, || self.entered() >= n)
    }
    /// Lets every held and future handler through.
    pub fn release(&self) {
        self.inst.release_holds();
    }
}

impl Server {
    /// Starts an instance of the context's target with `cfg` (the test routes, `/id`
    /// empty) and returns once it listens.
    pub fn start(ctx: &Ctx, cfg: Config) -> Result<Server, String> {
        Server::start_tagged(ctx, cfg, "")
    }

    /// As [`Server::start`], answering `tag` on `/id`.
    pub fn start_tagged(ctx: &Ctx, cfg: Config, tag: &str) -> Result<Server, String> {
        let inst = ctx.target.start(&cfg, tag)?;
        Ok(Server::from_instance(inst))
    }

    /// Wraps a running instance.
    pub fn from_instance(inst: Arc<dyn Instance>) -> Server {
        Server {
            addr: inst.addr(),
            gate: Holds {
                inst: Arc::clone(&inst),
            },
            inst,
        }
    }

    /// Starts an instance with `workers` workers and otherwise the scenario's
    /// configuration (`ctx.config()`, faults included).
    pub fn with_workers(ctx: &Ctx, workers: usize) -> Result<Server, String> {
        Server::start(
            ctx,
            engine::Config {
                workers,
                ..ctx.config()
            },
        )
    }

    /// The running instance (accept and worker control, metrics, shutdown).
    pub fn engine(&self) -> &Arc<dyn Instance> {
        &self.inst
    }

    /// The worker `n` selects. Panics (an `error` verdict) when the target has no
    /// selection: scenarios that call it declare [`Capability::Selection`].
    ///
    /// [`Capability::Selection`]: crate::targets::Capability::Selection
    pub fn worker_loop(&self, n: i64) -> Arc<dyn DriverLoop> {
        self.inst
            .worker_loop(n)
            .expect("the target has no worker selection (worker_loop)")
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts down with `grace` and waits until the instance has stopped.
    pub fn stop(self, grace: Duration) -> Result<(), String> {
        self.gate.release();
        self.inst
            .shutdown(grace)
            .map_err(|e| format!("shutdown: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// CPU time of every thread of process `pid` (`/proc/<pid>/task/*/schedstat`,
/// nanoseconds), or `None` when it cannot be read.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = Duration::ZERO;
    for task in tasks {
        let tid: i32 = task.ok()?.file_name().to_str()?.parse().ok()?;
        // A thread that exited since the listing has no time left to count.
        total += thread_cpu_time(tid).unwrap_or_default();
    }
    Some(total)
}
