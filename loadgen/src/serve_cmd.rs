//! `loadgen serve`: the reference engine with a plaintext, an echo, a worker and a
//! large-response route.

use std::sync::Arc;
use std::time::Duration;

use engine::{Config, Engine, Request, Response};

use crate::cli::ServeArgs;
use crate::EXIT_OK;

fn handle(req: &Request<'_>, res: &mut Response) {
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

/// Runs the subcommand; returns the exit code.
pub fn run(args: ServeArgs) -> Result<u8, String> {
    if args.control {
        return scenarios::targets::remote::serve_control().map(|()| EXIT_OK);
    }
    let mut cfg = Config {
        address: args.addr.clone(),
        pin_workers: args.pin,
        ..Config::default()
    };
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if let Some(name) = &args.fault {
        #[cfg(feature = "faults")]
        {
            cfg.fault = Some(engine::faults::Fault::from_name(name).ok_or_else(|| {
                let names: Vec<String> = engine::faults::Fault::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect();
                format!(
                    "--fault {name:?}: unknown fault; use one of {}",
                    names.join(", ")
                )
            })?);
            eprintln!("serve: fault {name} injected");
        }
        #[cfg(not(feature = "faults"))]
        return Err(format!(
            "--fault {name} needs the faults build: cargo build -p loadgen --features faults"
        ));
    }
    let engine = Arc::new(Engine::new(cfg, handle).map_err(|e| e.to_string())?);
    if let Some(secs) = args.duration {
        let e = Arc::clone(&engine);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
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
    result.map_err(|e| format!("listen on {}: {e}", args.addr))?;
    Ok(EXIT_OK)
}
