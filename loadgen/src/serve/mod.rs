//! `loadgen serve`: the reference engine with the public routes of
//! `scenarios::test_handler` (plaintext, echo, worker, a streamed large response).

use std::sync::Arc;
use std::time::Duration;

use engine::{Config, Engine};
use scenarios::test_handler::TestHandler;

/// Serves `cfg` until interrupted (or for `duration`), announcing the address on
/// stderr (`serving on http://ADDR/ with N workers`: `loadgen bench` reads it).
pub fn serve(cfg: Config, duration: Option<Duration>) -> Result<(), String> {
    let addr = cfg.address.clone();
    let engine = Arc::new(Engine::new(cfg, TestHandler::public()).map_err(|e| e.to_string())?);
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
