//! Poison-tolerant locking, shared by the engine and the harness crates.
//!
//! A panic while a lock is held (a handler panic caught on a worker, a failed check in a
//! scenario thread) must not turn every later lock into a second panic: the data behind
//! these locks stays consistent between statements, so the guard is taken as it is.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, taking the guard even if another thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read-locks `m`, taking the guard even if a writer panicked.
pub fn read_lock<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// Write-locks `m`, taking the guard even if another thread panicked while holding it.
pub fn write_lock<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
