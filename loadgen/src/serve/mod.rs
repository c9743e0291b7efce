//! `loadgen serve`: the reference engine with the public routes of
//! `scenarios::test_handler` (plaintext, echo, worker, a streamed large response).

use std::sync::Arc;
use std::time::Duration;

use engine::{Config, Engine};
use scenarios::test_handler::TestHandler;

/// Serves `cfg` until SIGTERM or SIGINT (or for `duration`), announcing the address on
/// stderr (`serving on http://ADDR/ with N workers`: `loadgen bench` reads it), then
/// whether the host migrates a closing listener's queue ([`migration_line`]).
///
/// The first SIGTERM or SIGINT shuts the engine down gracefully: it stops accepting,
/// responses in flight complete (for up to `grace`), idle connections get FIN, and
/// `serve` returns. A second signal exits at once with 130.
pub fn serve(cfg: Config, duration: Option<Duration>, grace: Duration) -> Result<(), String> {
    let addr = cfg.address.clone();
    let engine = Arc::new(Engine::new(cfg, TestHandler::public()).map_err(|e| e.to_string())?);
    if let Some(d) = duration {
        let e = Arc::clone(&engine);
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let _ = e.shutdown(grace);
        });
    }
    on_signals(Arc::clone(&engine), grace)?;
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

/// Shuts `engine` down gracefully on the first SIGTERM or SIGINT; exits 130 on the
/// second. The signals arrive through a socket pair and the thread waiting on it
/// sleeps until then: a server that wakes on a timer would add instructions in
/// proportion to wall time, which `loadgen cost` would count.
fn on_signals(engine: Arc<Engine>, grace: Duration) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let (mut rx, tx) =
        UnixStream::pair().map_err(|e| format!("serve: cannot create the signal pipe: {e}"))?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let tx = tx
            .try_clone()
            .map_err(|e| format!("serve: cannot create the signal pipe: {e}"))?;
        signal_hook::low_level::pipe::register(sig, tx)
            .map_err(|e| format!("serve: cannot handle signal {sig}: {e}"))?;
    }
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        if rx.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        eprintln!(
            "serve: stopping: no new connections, responses in flight get up to {} ms, idle connections get FIN (a second signal exits at once)",
            grace.as_millis()
        );
        std::thread::spawn(move || {
            if let Err(e) = engine.shutdown(grace) {
                eprintln!("serve: shutdown: {e}");
            }
        });
        if rx.read(&mut byte).unwrap_or(0) > 0 {
            eprintln!("serve: second signal: exiting now");
            std::process::exit(130);
        }
    });
    Ok(())
}

/// The start-up line saying whether the kernel hands a pausing engine's queue to
/// another engine on the port (`Metrics::migrates_listener_queue`).
pub fn migration_line(migrates: Option<bool>) -> &'static str {
    match migrates {
        Some(true) => "listener migration: on (net.ipv4.tcp_migrate_req = 1): connections queued on a closing listen socket move to another engine on the port",
        Some(false) => "listener migration: off (net.ipv4.tcp_migrate_req = 0 or absent): a pausing engine drains its own queue; a client dialing in the instant of a pause connects on its SYN retry, 1 s later (see the README)",
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
