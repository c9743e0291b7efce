//! Counting SIGPIPE deliveries, so a scenario can prove that no write raised one
//! (Rust programs ignore SIGPIPE, which would hide a `write(2)` without `MSG_NOSIGNAL`).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};

static SIGPIPES: AtomicU64 = AtomicU64::new(0);
/// One counter installed at a time, so that each restores what it replaced.
static INSTALLED: Mutex<()> = Mutex::new(());

extern "C" fn count_sigpipe(_signal: libc::c_int) {
    // An atomic increment is async-signal-safe.
    SIGPIPES.fetch_add(1, SeqCst);
}

/// SIGPIPEs counted so far by every [`SigpipeCounter`] this process installed.
pub fn delivered() -> u64 {
    SIGPIPES.load(SeqCst)
}

/// While alive, SIGPIPE is caught by a handler that counts it (the process survives);
/// the previous disposition is restored on drop.
pub struct SigpipeCounter {
    old: libc::sigaction,
    start: u64,
    _one: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for SigpipeCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigpipeCounter")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl SigpipeCounter {
    /// Installs the counting handler (waits while another counter is installed).
    pub fn install() -> io::Result<SigpipeCounter> {
        let one = crate::sync::lock(&INSTALLED);
        // SAFETY: sigaction is plain data; all-zero is a valid value (empty mask, no flags).
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = count_sigpipe as extern "C" fn(libc::c_int) as libc::sighandler_t;
        new.sa_flags = libc::SA_RESTART;
        // SAFETY: sigaction is plain data; all-zero is a valid value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid sigaction structs; the handler only does an
        // atomic increment, which is async-signal-safe.
        syscall!(sigaction(libc::SIGPIPE, &new, &mut old))?;
        Ok(SigpipeCounter {
            old,
            start: SIGPIPES.load(SeqCst),
            _one: one,
        })
    }

    /// SIGPIPEs delivered to this process since `install`.
    pub fn count(&self) -> u64 {
        SIGPIPES.load(SeqCst) - self.start
    }
}

impl Drop for SigpipeCounter {
    fn drop(&mut self) {
        // SAFETY: `old` is the disposition sigaction returned at install; a null old
        // pointer is allowed.
        let _ = syscall!(sigaction(libc::SIGPIPE, &self.old, std::ptr::null_mut()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_raised_sigpipe_and_survives() {
        let c = SigpipeCounter::install().unwrap();
        // SAFETY: raising a signal that has a handler installed is harmless.
        unsafe { libc::raise(libc::SIGPIPE) };
        assert_eq!(c.count(), 1);
    }
}
