//! Starting engines for scenarios, the test handler, and small polling helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::{Config, Engine, EngineError, Handler, Request, Response};

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

/// Open fds of this process (`/proc/self/fd`).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// CPU time a thread of this process has used (`/proc/self/task/<tid>/schedstat`,
/// nanoseconds; falls back to `stat` ticks).
pub fn thread_cpu_time(tid: i32) -> Option<Duration> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return Some(Duration::from_nanos(ns));
        }
    }
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Voluntary + involuntary context switches of a thread (each wakeup counts one).
pub fn thread_switches(tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
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
/// `/big?bytes=N` → N bytes of `a`; `/inspect` → what the handler saw (see
/// [`inspect_body`]).
#[derive(Debug, Clone, Default)]
pub struct TestHandler {
    /// The gate `/hold` waits on.
    pub gate: Gate,
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

/// An engine listening on its own thread; shut down (1 s grace) on drop.
#[derive(Debug)]
pub struct Server {
    engine: Arc<Engine>,
    thread: Option<JoinHandle<Result<(), EngineError>>>,
    addr: SocketAddr,
    /// The handler's gate.
    pub gate: Gate,
}

impl Server {
    /// Starts an engine with the [`TestHandler`] and waits (up to 5 s) until it listens.
    pub fn start(cfg: Config) -> Result<Server, String> {
        let handler = TestHandler::default();
        let gate = handler.gate.clone();
        let mut s = Server::start_with(cfg, handler)?;
        s.gate = gate;
        Ok(s)
    }

    /// Starts an engine with the [`TestHandler`], `workers` workers and otherwise the
    /// scenario's configuration (`ctx.config()`, faults included).
    pub fn with_workers(ctx: &crate::Ctx, workers: usize) -> Result<Server, String> {
        Server::start(engine::Config {
            workers,
            ..ctx.config()
        })
    }

    /// Starts an engine with `handler` and waits (up to 5 s) until it listens.
    pub fn start_with(cfg: Config, handler: impl Handler) -> Result<Server, String> {
        let engine = Arc::new(Engine::new(cfg, handler).map_err(|e| format!("Engine::new: {e}"))?);
        let runner = Arc::clone(&engine);
        let thread = std::thread::Builder::new()
            .name("engine-listen".into())
            .spawn(move || runner.listen())
            .map_err(|e| format!("spawning the listen thread: {e}"))?;
        let mut addr = None;
        let ok = wait_until(Duration::from_secs(5), || {
            addr = engine.addr();
            addr.is_some() || thread.is_finished()
        });
        match addr {
            Some(addr) if ok => Ok(Server {
                engine,
                thread: Some(thread),
                addr,
                gate: Gate::default(),
            }),
            _ => {
                let _ = engine.shutdown(Duration::ZERO);
                match thread.join() {
                    Ok(Err(e)) => Err(format!("listen failed: {e}")),
                    _ => Err("the engine did not listen within 5 s".into()),
                }
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts down with `grace` and waits for `listen` to return; its result.
    pub fn stop(mut self, grace: Duration) -> Result<(), String> {
        self.gate.release();
        self.engine
            .shutdown(grace)
            .map_err(|e| format!("shutdown: {e}"))?;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(format!("listen returned an error: {e}")),
            Some(Err(_)) => Err("the listen thread panicked".into()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.gate.release();
        let _ = self.engine.shutdown(Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
