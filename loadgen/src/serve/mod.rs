//! `loadgen serve`: the reference engine with the public routes of
//! `scenarios::test_handler` (plaintext, echo, worker, a streamed large response).

use std::sync::Arc;
use std::time::Duration;

use engine::{Config, Engine};
use scenarios::test_handler::TestHandler;

/// Serves `cfg` until interrupted (or for `duration`), announcing the address on
/// stderr (`serving on http://ADDR/ with N workers`: `loadgen bench` reads it), then
/// whether the host migrates a closing listener's queue ([`migration_line`]).
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
                eprintln!("{}", migration_line(e.metrics().migrates_listener_queue));
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let result = engine.listen();
    let _ = reporter.join();
    result.map_err(|e| format!("listen on {addr}: {e}"))
}

/// The start-up line saying whether the kernel hands a pausing engine's queue to
/// another engine on the port (`Metrics::migrates_listener_queue`).
pub fn migration_line(migrates: Option<bool>) -> &'static str {
    match migrates {
        Some(true) => "listener migration: on (net.ipv4.tcp_migrate_req = 1): connections queued on a closing listen socket move to another engine on the port",
        Some(false) => "listener migration: off (net.ipv4.tcp_migrate_req = 0 or absent): a handover to another engine on the port may reset the few connections that queue during a pause (see the README)",
        None => "listener migration: unknown (net.ipv4.tcp_migrate_req could not be read)",
    }
}

#[cfg(test)]
mod tests {
    use super::migration_line;

    #[test]
    fn the_migration_line_names_the_setting_and_its_state() {
        assert!(migration_line(Some(true)).contains("on (net.ipv4.tcp_migrate_req = 1)"));
        assert!(migration_line(Some(false)).contains("off"));
        assert!(migration_line(None).contains("unknown"));
    }
}
