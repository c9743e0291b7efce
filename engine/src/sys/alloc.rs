//! A counting global allocator, for proving that hot paths do not allocate
//! (perf.alloc-free) and for the gate's allocations-per-request counter.
//!
//! ```text
//! #[global_allocator]
//! static GLOBAL: engine::sys::alloc::Counting = engine::sys::alloc::Counting;
//! let before = engine::sys::alloc::allocations();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Forwards to the system allocator and counts allocations and reallocations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

/// Allocations (and reallocations) made so far through [`Counting`], process-wide.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds
// the GlobalAlloc contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds alloc's contract; passed through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds alloc_zeroed's contract; passed through unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds dealloc's contract; passed through unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds realloc's contract; passed through unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
