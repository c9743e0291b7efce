//! Polling instead of sleeping: every wait in the harness has a deadline.

use std::time::{Duration, Instant};

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
