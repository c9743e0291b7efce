//! Poison-tolerant locking, for the engine and the harness crates alike.
//!
//! A panic while a lock is held (a handler or a callback that panicked) poisons it.
//! The data behind every lock of the workspace stays consistent across such a panic
//! (each critical section is a push, a take or a swap), so the poison carries no
//! information worth failing on: these helpers take the guard either way.

use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Locks `m`, ignoring poison.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a read lock on `m`, ignoring poison.
pub fn read_lock<T: ?Sized>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// Takes a write lock on `m`, ignoring poison.
pub fn write_lock<T: ?Sized>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` for at most `timeout` and takes the lock back, ignoring poison.
/// Whether it timed out is for the caller to tell from the guarded state.
pub fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, timeout)
        .map(|(g, _)| g)
        .unwrap_or_else(|e| e.into_inner().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_yields_its_data() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let rw = std::sync::Arc::new(RwLock::new(2));
        let (m2, rw2) = (m.clone(), rw.clone());
        let _ = std::thread::spawn(move || {
            let _g = lock(&m2);
            let _w = write_lock(&rw2);
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && rw.is_poisoned());
        *lock(&m) += 1;
        *write_lock(&rw) += 1;
        assert_eq!((*lock(&m), *read_lock(&rw)), (2, 3));
    }
}
