//! Handing freed heap memory back to the system.

/// Returns the free memory of every malloc arena to the system (glibc's
/// `malloc_trim(0)`), so that a process's RSS falls back after large buffers are freed;
/// glibc keeps freed chunks of its arenas otherwise. A no-op on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
