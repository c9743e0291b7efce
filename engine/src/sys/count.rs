//! Per-thread syscall counters, bumped by the `syscall!` macro (the gate's
//! syscalls-per-request counter, `loadgen counters`).
//!
//! Every call made through `syscall!` is counted on the calling thread, by kind: the
//! kinds in [`NAMES`] have their own counter, every other function counts as `other`.
//! `epoll_wait` and `epoll_pwait2` calls that return no event (a timeout or `EINTR`)
//! are counted apart, as `epoll_wait_empty` / `epoll_pwait2_empty`: they come from
//! timers, not from traffic, so their number depends on time.
//!
//! Not counted: what does not go through the macro, i.e. `close(2)` (done by
//! `OwnedFd`'s `Drop` in std), `clock_gettime` through the vDSO (`Instant::now`,
//! `SystemTime::now`) and anything std or libc call on their own.
//!
//! The counters are `const`-initialised thread-locals without a destructor: reading or
//! bumping them never allocates and costs a few instructions.
//!
//! ```
//! let before = engine::sys::count::snapshot();
//! // ... work on this thread ...
//! let delta = engine::sys::count::snapshot().since(&before);
//! assert_eq!(delta.get("read"), Some(0));
//! ```

use std::cell::Cell;

/// The counted kinds, in a fixed order (the order of [`SyscallCounts::iter`]).
pub const NAMES: [&str; KINDS] = [
    "epoll_wait",
    "epoll_wait_empty",
    "epoll_pwait2",
    "epoll_pwait2_empty",
    "epoll_ctl",
    "accept4",
    "read",
    "write",
    "send",
    "shutdown",
    "setsockopt",
    "other",
];

/// How many kinds there are.
pub const KINDS: usize = 12;

const EPOLL_WAIT: usize = 0;
const EPOLL_PWAIT2: usize = 2;
const OTHER: usize = KINDS - 1;

thread_local! {
    static COUNTS: [Cell<u64>; KINDS] = const { [const { Cell::new(0) }; KINDS] };
}

/// The counter index of a libc function name (`other` when it has none). A `const fn`
/// so that the macro resolves it at compile time.
#[doc(hidden)]
pub const fn kind(name: &str) -> usize {
    let mut i = 0;
    while i < KINDS {
        if i != OTHER && eq(NAMES[i].as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    OTHER
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Counts one call of kind `kind` (from [`kind`]); `nothing` says it returned 0 or
/// -1, which for the epoll waits means no event (a timeout, `EINTR`).
#[doc(hidden)]
#[inline]
pub fn record(kind: usize, nothing: bool) {
    let kind = if nothing && (kind == EPOLL_WAIT || kind == EPOLL_PWAIT2) {
        kind + 1
    } else {
        kind
    };
    COUNTS.with(|c| {
        if let Some(c) = c.get(kind) {
            c.set(c.get().wrapping_add(1));
        }
    });
}

/// The calling thread's counters since it started.
pub fn snapshot() -> SyscallCounts {
    COUNTS.with(|c| SyscallCounts(std::array::from_fn(|i| c[i].get())))
}

/// Syscall counts by kind (see [`NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyscallCounts(pub [u64; KINDS]);

impl SyscallCounts {
    /// The count of one kind, by name.
    pub fn get(&self, name: &str) -> Option<u64> {
        NAMES.iter().position(|n| *n == name).map(|i| self.0[i])
    }

    /// (name, count) for every kind, in [`NAMES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        NAMES.iter().copied().zip(self.0.iter().copied())
    }

    /// The calls made since `earlier` (a snapshot of the same thread).
    pub fn since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        SyscallCounts(std::array::from_fn(|i| {
            self.0[i].wrapping_sub(earlier.0[i])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_their_own_counter_and_the_rest_to_other() {
        assert_eq!(NAMES.len(), KINDS);
        assert_eq!(NAMES[OTHER], "other");
        for (i, n) in NAMES.iter().enumerate() {
            if i != OTHER {
                assert_eq!(kind(n), i, "{n}");
            }
        }
        assert_eq!(kind("fcntl"), OTHER);
        assert_eq!(kind("other"), OTHER);
        assert_eq!(kind("epoll_wai"), OTHER);
    }

    #[test]
    fn counts_are_per_thread_and_empty_waits_are_apart() {
        let before = snapshot();
        record(kind("read"), false);
        record(kind("read"), true);
        record(kind("epoll_wait"), false);
        record(kind("epoll_wait"), true);
        record(kind("epoll_pwait2"), true);
        record(kind("bind"), false);
        let d = snapshot().since(&before);
        assert_eq!(d.get("read"), Some(2));
        assert_eq!(d.get("epoll_wait"), Some(1));
        assert_eq!(d.get("epoll_wait_empty"), Some(1));
        assert_eq!(d.get("epoll_pwait2"), Some(0));
        assert_eq!(d.get("epoll_pwait2_empty"), Some(1));
        assert_eq!(d.get("other"), Some(1));
        assert_eq!(d.get("nope"), None);
        let other = std::thread::spawn(|| snapshot().get("read"))
            .join()
            .unwrap();
        assert_eq!(other, Some(0));
    }

    #[test]
    fn real_syscalls_are_counted() {
        let before = snapshot();
        let e = crate::sys::EventFd::new().unwrap();
        e.wake().unwrap();
        let d = snapshot().since(&before);
        assert_eq!(d.get("write"), Some(1));
        assert_eq!(d.get("other"), Some(1), "eventfd(2)");
        drop(e);
    }
}
