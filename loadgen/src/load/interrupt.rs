//! Ctrl-C (SIGINT) and SIGTERM end a run early instead of killing the process: the
//! run stops, prints its summary and writes its results marked `interrupted`. A
//! second signal while the first is being handled ends the process at once (exit 130).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A flag set by the first SIGINT or SIGTERM; a second one exits with 130.
pub fn on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        flag::register_conditional_shutdown(sig, i32::from(EXIT_INTERRUPTED), Arc::clone(&stop))
            .and_then(|_| flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("cannot install the handler of signal {sig}: {e}"))?;
    }
    Ok(stop)
}
