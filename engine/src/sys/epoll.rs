//! An owned epoll instance.
//!
//! Rules the engine relies on (see `worker/mod.rs` for the drain rule): events may be
//! spurious; `EPOLLHUP`/`EPOLLRDHUP` are hints and the read result is the truth; an fd
//! closed while registered silently leaves the interest set.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Interest flags for [`Epoll::add`] / [`Epoll::modify`]. Level-triggered unless
/// `EDGE` is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(u32);

impl Interest {
    /// Readable (and peer half-close, `EPOLLRDHUP`).
    pub const READ: Interest = Interest((libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
    /// Writable.
    pub const WRITE: Interest = Interest(libc::EPOLLOUT as u32);
    /// Readable and writable.
    pub const READ_WRITE: Interest = Interest(Self::READ.0 | Self::WRITE.0);
    /// Nothing but what epoll always reports (`EPOLLHUP`, `EPOLLERR`): a peer that
    /// resets is still noticed.
    pub const NONE: Interest = Interest(0);
    /// Edge-triggered modifier.
    pub const EDGE: Interest = Interest(libc::EPOLLET as u32);

    /// Both sets of flags.
    pub const fn with(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

/// One readiness event.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    flags: u32,
}

impl Event {
    #[inline]
    fn from_raw(e: &libc::epoll_event) -> Event {
        Event {
            token: e.u64,
            flags: e.events,
        }
    }

    /// Data may be read (or EOF / error is pending: reading tells).
    pub fn is_readable(&self) -> bool {
        self.flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
            != 0
    }
    /// The socket can take more output.
    pub fn is_writable(&self) -> bool {
        self.flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }
    /// An error is pending on the socket.
    pub fn is_error(&self) -> bool {
        self.flags & libc::EPOLLERR as u32 != 0
    }
}

/// A reusable buffer of events for [`Epoll::wait`].
#[derive(Debug)]
pub struct Events {
    buf: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    /// Room for `capacity` events per wait.
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.max(1);
        Events {
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; capacity],
            len: 0,
        }
    }
    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf[..self.len].iter().map(Event::from_raw)
    }
    /// Event `i` of the last wait.
    pub fn get(&self, i: usize) -> Option<Event> {
        self.buf[..self.len].get(i).map(Event::from_raw)
    }
    /// Records a wait's result: `n` events, or none after `EINTR`.
    fn settle(&mut self, res: io::Result<libc::c_int>) -> io::Result<()> {
        match res {
            Ok(n) => {
                self.len = n as usize;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.len = 0;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Number of events of the last wait.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the last wait returned no event.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An epoll instance, closed on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new epoll instance (`EPOLL_CLOEXEC`).
    pub fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest.0,
            u64: token,
        };
        // SAFETY: `self.fd` is a live epoll fd; `ev` is a valid epoll_event that outlives
        // the call; an invalid `fd` is reported by the kernel as an error, not UB.
        syscall!(epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev))?;
        Ok(())
    }

    /// Adds `fd` with `token`. `EEXIST` when it is already in this set.
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes the interest of a registered `fd`.
    pub fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Removes `fd` from the set.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Interest(0))
    }

    /// Waits for events; `None` waits forever. `EINTR` is returned as zero events.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let timeout_ms = match timeout {
            None => -1,
            // Round up so that a 100 µs deadline does not become a busy 0 ms poll
            // (whole seconds are whole milliseconds: only the fraction is rounded; no
            // 128-bit division on every wait).
            Some(d) => d
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
                .min(libc::c_int::MAX as u64) as libc::c_int,
        };
        let cap = events.buf.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: the buffer holds `cap` initialised epoll_event slots that the kernel may
        // overwrite; it is not aliased during the call.
        let res = raw_syscall!(epoll_wait = libc::SYS_epoll_wait;
            self.fd.as_raw_fd(),
            events.buf.as_mut_ptr(),
            cap,
            timeout_ms
        );
        events.settle(res.map(|n| n as libc::c_int))
    }

    /// Like [`wait`](Epoll::wait) but with a nanosecond timeout (`epoll_pwait2`, Linux
    /// 5.11+), for callers that must wake on time (the load generator's schedule);
    /// falls back to millisecond rounding where the kernel lacks it.
    pub fn wait_precise(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        let Some(t) = timeout else {
            return self.wait(events, None);
        };
        if UNSUPPORTED.load(Relaxed) {
            return self.wait(events, Some(t));
        }
        let ts = libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        };
        let cap = events.buf.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: the buffer holds `cap` initialised epoll_event slots the kernel may
        // overwrite; `ts` outlives the call; a null sigmask means "no change".
        let res = syscall!(epoll_pwait2(
            self.fd.as_raw_fd(),
            events.buf.as_mut_ptr(),
            cap,
            &ts,
            std::ptr::null()
        ));
        match res {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                UNSUPPORTED.store(true, Relaxed);
                self.wait(events, Some(t))
            }
            other => events.settle(other),
        }
    }

    /// The epoll descriptor itself.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}
