//! Starting engines for scenarios, the test handler, and small polling helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use engine::{Config, Handler, Request, Response};

use crate::target::{DriverLoop, Instance};
use crate::Ctx;

/// Polls `f` every millisecond until it is true or `within` has passed.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `start` with a loopback address whose port was free a moment before (for a
/// server in another process, which binds it next). Another process may take the port
/// in between: when `start`'s error says so ("Address already in use"), it runs again
/// on a new port, 3 times in all.
pub fn on_free_port<T>(
    mut start: impl FnMut(SocketAddr) -> Result<T, String>,
) -> Result<T, String> {
    let mut tries = 1;
    loop {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
        match start(addr) {
            Err(e) if e.contains("Address already in use") && tries < 3 => tries += 1,
            r => return r,
        }
    }
}

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

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    entered: u64,
}

/// Holds handlers of `/hold` until released: keeps a worker busy on purpose.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    inner: Arc<(Mutex<GateState>, Condvar)>,
}

impl Gate {
    /// How many handlers have entered the gate so far.
    pub fn entered(&self) -> u64 {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entered
    }
    /// Waits until `n` handlers have entered, for at most `within`.
    pub fn wait_entered(&self, n: u64, within: Duration) -> bool {
        wait_until(within, || self.entered() >= n)
    }
    /// Lets every held and future handler through.
    pub fn release(&self) {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner()).open = true;
        self.inner.1.notify_all();
    }
    fn hold(&self, max: Duration) {
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        g.entered += 1;
        cv.notify_all();
        let end = Instant::now() + max;
        while !g.open {
            let now = Instant::now();
            if now >= end {
                break;
            }
            g = cv
                .wait_timeout(g, end - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// The scenarios' handler. Routes:
/// `/` → `Hello, World!`; `/worker` → the worker index; `/echo` → the body;
/// `/slow?ms=N` → sleeps N ms; `/hold` → waits for the [`Gate`] (at most 10 s);
/// `/big?bytes=N` → N bytes of `a`; `/id` → the instance's tag; `/inspect` → what the handler saw (see
/// [`inspect_body`]).
#[derive(Debug, Clone, Default)]
pub struct TestHandler {
    /// The gate `/hold` waits on.
    pub gate: Gate,
    /// What `/id` answers (tells two instances on one port apart).
    pub tag: Arc<str>,
}

impl TestHandler {
    /// A handler answering `tag` on `/id`.
    pub fn tagged(tag: &str) -> TestHandler {
        TestHandler {
            gate: Gate::default(),
            tag: Arc::from(tag),
        }
    }
}

fn query_num(req: &Request<'_>, key: &str) -> Option<u64> {
    let q = std::str::from_utf8(req.query()?).ok()?;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

impl Handler for TestHandler {
    fn handle(&self, req: &Request<'_>, res: &mut Response) {
        match req.path() {
            b"/worker" => {
                res.body(req.worker().to_string().as_bytes());
            }
            b"/id" => {
                res.body(self.tag.as_bytes());
            }
            b"/echo" => {
                res.body(req.body());
            }
            b"/slow" => {
                let ms = query_num(req, "ms").unwrap_or(100).min(10_000);
                std::thread::sleep(Duration::from_millis(ms));
                res.body(b"slow");
            }
            b"/hold" => {
                self.gate.hold(Duration::from_secs(10));
                res.body(b"held");
            }
            b"/inspect" => {
                let body = inspect_body(req);
                res.body(body.as_bytes());
            }
            b"/big" => {
                let n = query_num(req, "bytes").unwrap_or(0).min(256 << 20) as usize;
                // A memset, not `resize`'s per-byte loop: fast in debug builds too, so
                // that the handler's time does not blur the timings checks measure.
                let body = res.body_mut();
                body.clear();
                body.extend_from_slice(&vec![b'a'; n]);
            }
            _ => {
                res.header("content-type", b"text/plain")
                    .body(b"Hello, World!");
            }
        }
    }
}

/// FNV-1a (64 bit) of `bytes`: a cheap fingerprint of a request body.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `/inspect` body: `METHOD TARGET MINOR\n`, `body LEN FNV1A-HEX\n`, then one
/// `h NAME: VALUE\n` line per header as the handler saw it.
pub fn inspect_body(req: &Request<'_>) -> String {
    let target = String::from_utf8_lossy(req.target());
    let mut out = format!(
        "{} {} {}\nbody {} {:016x}\n",
        req.method(),
        target,
        req.version_minor(),
        req.body().len(),
        fnv1a(req.body())
    );
    for (n, v) in req.headers() {
        out.push_str(&format!(
            "h {}: {}\n",
            String::from_utf8_lossy(n),
            String::from_utf8_lossy(v)
        ));
    }
    out
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
    /// [`Capability::Selection`]: crate::target::Capability::Selection
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

#[cfg(test)]
mod free_port_tests {
    use super::on_free_port;

    #[test]
    fn a_lost_port_is_retried_on_a_new_one_three_times_in_all() {
        let mut ports = Vec::new();
        let r = on_free_port(|a| {
            ports.push(a.port());
            if ports.len() < 3 {
                Err("bind() failed (98: Address already in use)".to_string())
            } else {
                Ok(a.port())
            }
        });
        assert_eq!(r, Ok(ports[2]));
        assert!(ports.iter().all(|&p| p != 0), "{ports:?}");
        let mut tries = 0;
        let r: Result<(), String> = on_free_port(|_| {
            tries += 1;
            Err("Address already in use".into())
        });
        assert!(r.is_err());
        assert_eq!(tries, 3);
        // Any other failure is the answer at once.
        let mut tries = 0;
        let r: Result<(), String> = on_free_port(|_| {
            tries += 1;
            Err("no such command".into())
        });
        assert_eq!((r, tries), (Err("no such command".into()), 1));
    }
}
