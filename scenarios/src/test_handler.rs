//! The reference engine's one route table: the public routes `loadgen serve` serves,
//! the test routes every target with `Capability::TestRoutes` serves on top, and the
//! gate that holds `/hold` requests.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::{Handler, Request, Response};

use crate::wait::wait_until;

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
        lock(&self.inner.0).entered
    }
    /// Waits until `n` handlers have entered, for at most `within`.
    pub fn wait_entered(&self, n: u64, within: Duration) -> bool {
        wait_until(within, || self.entered() >= n)
    }
    /// Lets every held and future handler through.
    pub fn release(&self) {
        lock(&self.inner.0).open = true;
        self.inner.1.notify_all();
    }
    fn hold(&self, max: Duration) {
        let (m, cv) = &*self.inner;
        let mut g = lock(m);
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

/// The reference engine's route table, one for `loadgen serve` and the scenarios.
///
/// Public routes, always served: `/` → `Hello, World!`; `/worker` → the worker index;
/// `/echo` → the body; `/big?bytes=N` → N bytes of `a` (N <= 64 MiB, else 400),
/// streamed in 64 KiB pieces by the public table (a client cannot make the server
/// hold 64 MiB), written whole by the test table (see the route).
///
/// Test routes, only in a handler built for tests ([`TestHandler::tagged`],
/// `Default`), never in [`TestHandler::public`] (they hold a worker thread for seconds
/// or tell about the process): `/slow?ms=N` → sleeps N ms; `/hold` → waits for the
/// [`Gate`] (at most 10 s); `/id` → the instance's tag; `/inspect` → what the handler
/// saw (see [`inspect_body`]); `/count?bytes=N` → N bytes of the pattern
/// [`count_byte`], streamed 100,000 at a time; `/stall` → announces 10 bytes and
/// produces none.
#[derive(Debug, Clone)]
pub struct TestHandler {
    /// The gate `/hold` waits on.
    pub gate: Gate,
    /// What `/id` answers (tells two instances on one port apart).
    pub tag: Arc<str>,
    /// Whether the test routes are served.
    test_routes: bool,
}

impl Default for TestHandler {
    fn default() -> TestHandler {
        TestHandler::tagged("")
    }
}

impl TestHandler {
    /// A handler for tests, answering `tag` on `/id`.
    pub fn tagged(tag: &str) -> TestHandler {
        TestHandler {
            gate: Gate::default(),
            tag: Arc::from(tag),
            test_routes: true,
        }
    }

    /// The public routes alone (`loadgen serve`, which faces any client).
    pub fn public() -> TestHandler {
        TestHandler {
            test_routes: false,
            ..TestHandler::default()
        }
    }

    /// A test route; false if `req` is not one (or they are off).
    fn test_route(&self, req: &Request<'_>, res: &mut Response) -> bool {
        if !self.test_routes {
            return false;
        }
        match req.path() {
            b"/id" => {
                res.body(self.tag.as_bytes());
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
            b"/count" => {
                let mut next = 0u64;
                let n = query_num(req, "bytes").unwrap_or(0).min(BIG_MAX);
                res.stream(n, move |out: &mut Vec<u8>| {
                    for _ in 0..100_000 {
                        out.push(count_byte(next));
                        next += 1;
                    }
                });
            }
            b"/stall" => {
                res.stream(10, |_: &mut Vec<u8>| {});
            }
            _ => return false,
        }
        true
    }
}

/// Largest body `/big` serves: 64 MiB.
pub const BIG_MAX: u64 = 64 * 1024 * 1024;

/// Byte `i` of a `/count` body: a pattern whose period (251) is no power of two, so
/// that a lost, repeated or reordered piece shows.
pub fn count_byte(i: u64) -> u8 {
    (i % 251) as u8
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
        if self.test_route(req, res) {
            return;
        }
        match req.path() {
            b"/worker" => {
                res.body(req.worker().to_string().as_bytes());
            }
            b"/echo" => {
                res.body(req.body());
            }
            b"/big" => match query_num(req, "bytes").filter(|&n| n <= BIG_MAX) {
                Some(n) if self.test_routes => {
                    // Whole, not streamed: the engine's buffered write path is the one
                    // the `truncate-large-response` fault cuts (and http_path covers).
                    // A memset, not `resize`'s per-byte loop: fast in debug builds too,
                    // so that the handler's time does not blur the timings checks measure.
                    res.header("content-type", b"application/octet-stream");
                    let body = res.body_mut();
                    body.clear();
                    body.extend_from_slice(&vec![b'a'; n as usize]);
                }
                Some(n) => {
                    res.header("content-type", b"application/octet-stream")
                        .stream(n, |buf| buf.resize(buf.len() + 64 * 1024, b'a'));
                }
                None => {
                    res.status(400)
                        .body(b"use /big?bytes=N with N <= 67108864\n");
                }
            },
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
