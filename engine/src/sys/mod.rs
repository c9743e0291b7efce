//! The workspace's syscall layer for the harness crates, not the engine's API.
//!
//! Every `unsafe` block of the workspace lives in this module: the crate denies
//! `unsafe_code` everywhere else (`lib.rs`), and the `syscall!` macro is visible only
//! in here.
//!
//! Each wrapper turns `-1` into [`std::io::Error::last_os_error`] (the `syscall!`
//! macro), creates descriptors with `NONBLOCK | CLOEXEC` and returns them as
//! [`OwnedFd`](std::os::fd::OwnedFd) from the line that creates them. Descriptors passed
//! in are borrowed (`BorrowedFd` or a raw fd the caller vouches for) and never closed.
//!
//! The module is public, and hidden from the documentation, because the load generator
//! and the conformance scenarios use the same layer (one syscall layer for the whole
//! workspace, not a second one). Some of it is there only because the harness needs
//! unsafe code and this is where unsafe code lives: the counting allocator
//! ([`alloc`]), per-thread syscall counters ([`count`]), network namespaces
//! ([`netns`]), resource limits ([`rlimit`]), SIGPIPE counting ([`signal`]), fd passing
//! ([`unix`]), thread CPU time and placement ([`thread`]) and the client-side socket
//! options of [`socket`]. None of it is part of the engine's API, which never takes or
//! returns a type from here. The harness crates rely on its paths: they stay put.

/// Calls a libc function and turns a `-1` result into the thread's last OS error.
/// Every call is counted on the calling thread ([`count`]), by function name.
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        const KIND: usize = $crate::sys::count::kind(stringify!($fn));
        #[allow(unused_unsafe)]
        // SAFETY: the caller of the macro upholds the contract of the libc function;
        // every use site states it in its own `// SAFETY:` comment.
        let res = unsafe { libc::$fn($($arg, )*) };
        $crate::sys::count::record(KIND, res == 0 || res == -1);
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// [`syscall!`] for the calls a request makes (`read`, `sendto`, `epoll_wait`): enters
/// the kernel through `syscall(2)` with the call's number instead of glibc's wrapper,
/// which makes each of these a thread-cancellation point (two more calls, about 45
/// instructions per syscall, a sixth of what serving a keep-alive request costs). The
/// engine never cancels a thread, so nothing is lost; the kernel sees the same call.
macro_rules! raw_syscall {
    ($fn: ident = $nr: expr; $($arg: expr),* $(,)* ) => {{
        const KIND: usize = $crate::sys::count::kind(stringify!($fn));
        #[allow(unused_unsafe)]
        // SAFETY: the caller of the macro upholds the contract of the system call;
        // every use site states it in its own `// SAFETY:` comment.
        let res = unsafe { libc::syscall($nr, $($arg, )*) };
        $crate::sys::count::record(KIND, res == 0 || res == -1);
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub mod alloc;
pub mod count;
pub mod epoll;
pub mod eventfd;
pub mod heap;
pub mod netns;
pub mod rlimit;
pub mod signal;
pub mod socket;
pub mod thread;
pub mod unix;

pub use epoll::{Epoll, Events, Interest};
pub use eventfd::EventFd;
