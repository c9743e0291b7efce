//! What `loadgen serve` serves: the reference engine with a plaintext, an echo, a
//! worker and a large-response route.

use std::sync::Arc;
use std::time::Duration;

use engine::{Config, Engine, Request, Response};

/// The routes: `/`, `/echo`, `/worker`, `/big?bytes=N`.
pub fn handle(req: &Request<'_>, res: &mut Response) {
    match req.path() {
        b"/echo" => {
            res.body(req.body());
        }
        b"/worker" => {
            res.body(req.worker().to_string().as_bytes());
        }
        b"/big" => match big_len(req.query()) {
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

/// Largest body `/big` serves: 64 MiB.
const BIG_MAX: u64 = 64 * 1024 * 1024;

/// `bytes=N` from the query of `/big` (N <= 64 MiB).
fn big_len(query: Option<&[u8]>) -> Option<u64> {
    let q = std::str::from_utf8(query?).ok()?;
    let n: u64 = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("bytes="))?
        .parse()
        .ok()?;
    (n <= BIG_MAX).then_some(n)
}

/// Serves `cfg` until interrupted (or for `duration`), announcing the address on
/// stderr (`serving on http://ADDR/ with N workers`: `loadgen bench` reads it).
pub fn serve(cfg: Config, duration: Option<Duration>) -> Result<(), String> {
    let addr = cfg.address.clone();
    let engine = Arc::new(Engine::new(cfg, handle).map_err(|e| e.to_string())?);
    if let Some(d) = duration {
        let e = Arc::clone(&engine);
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let _ = e.shutdown(Duration::from_secs(5));
        });
    }
    let e = Arc::clone(&engine);
    let reporter = std::thread::spawn(move || {
        for _ in 0..5000 {
            if let Some(addr) = e.addr() {
                eprintln!("serving on http://{addr}/ with {} workers", e.num_workers());
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let result = engine.listen();
    let _ = reporter.join();
    result.map_err(|e| format!("listen on {addr}: {e}"))
}
