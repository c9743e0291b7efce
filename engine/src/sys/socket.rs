//! TCP sockets: listen, accept, connect, read/send, shutdown and socket options.
//!
//! Functions that take a `RawFd` borrow it for the duration of the call; the kernel
//! validates the number (`EBADF`), so a wrong fd is an error, never memory unsafety.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid (AF_UNSPEC) value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket address of an unsupported family",
        )),
    }
}

fn new_tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let fd = syscall!(socket(
        family,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0
    ))?;
    // SAFETY: socket returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a live c_int and its size; the kernel validates fd and option.
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const libc::c_int).cast(),
        size_of::<libc::c_int>() as libc::socklen_t
    ))?;
    Ok(())
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a writable c_int and its size; the kernel validates fd and option.
    syscall!(getsockopt(
        fd,
        level,
        name,
        (&mut value as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// Options of a listening socket.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// `listen(2)` backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: i32,
    /// Join the port's `SO_REUSEPORT` group.
    pub reuse_port: bool,
    /// `TCP_DEFER_ACCEPT` seconds; 0 leaves it off.
    pub defer_accept_secs: i32,
}

/// A non-blocking listening TCP socket bound to `addr` (`SO_REUSEADDR` always).
pub fn tcp_listen(addr: SocketAddr, opts: ListenOptions) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let sock = new_tcp_socket(&addr)?;
    let fd = sock.as_raw_fd();
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if opts.reuse_port {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    if opts.defer_accept_secs > 0 {
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            opts.defer_accept_secs,
        )?;
    }
    let (storage, len) = to_sockaddr(&addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    syscall!(bind(
        fd,
        (&storage as *const libc::sockaddr_storage).cast(),
        len
    ))?;
    syscall!(listen(fd, opts.backlog))?;
    Ok(sock)
}

/// Accepts one queued connection as a non-blocking, close-on-exec socket.
/// `Ok(None)` when the queue is empty.
pub fn accept(listener: RawFd) -> io::Result<Option<OwnedFd>> {
    loop {
        // SAFETY: null address pointers are allowed by accept4 (peer address not wanted).
        let res = syscall!(accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
        ));
        return match res {
            // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
            Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The connection died in the queue: not ours to report, try the next one.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            Err(e) => Err(e),
        };
    }
}

/// `accept` failed for lack of descriptors or kernel memory (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, `ENOMEM`): the connection stays queued and an immediate retry fails again.
pub fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Starts a non-blocking connect; the socket becomes writable when it completes
/// (check [`take_error`] then).
pub fn tcp_connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let sock = new_tcp_socket(&addr)?;
    let (storage, len) = to_sockaddr(&addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    match syscall!(connect(
        sock.as_raw_fd(),
        (&storage as *const libc::sockaddr_storage).cast(),
        len
    )) {
        Ok(_) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        Err(e) => Err(e),
    }
}

/// The socket's local address.
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the storage is writable and `len` is its size.
    syscall!(getsockname(fd, storage.as_mut_ptr().cast(), &mut len))?;
    // SAFETY: zero-initialised, then filled by getsockname.
    from_sockaddr(unsafe { storage.assume_init_ref() })
}

/// The connected peer's address.
pub fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the storage is writable and `len` is its size.
    syscall!(getpeername(fd, storage.as_mut_ptr().cast(), &mut len))?;
    // SAFETY: zero-initialised, then filled by getpeername.
    from_sockaddr(unsafe { storage.assume_init_ref() })
}

/// Reads into `buf`; `Ok(0)` is EOF. `WouldBlock` when nothing is there.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its whole length.
    let n = raw_syscall!(read = libc::SYS_read; fd, buf.as_mut_ptr(), buf.len())?;
    Ok(n as usize)
}

/// Sends `buf` without ever raising SIGPIPE (`MSG_NOSIGNAL`); falls back to `write(2)`
/// for descriptors that are not sockets.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its whole length.
    // (`send` is `sendto` without an address, which is what glibc's `send` calls.)
    let null = std::ptr::null::<libc::sockaddr>();
    match raw_syscall!(send = libc::SYS_sendto; fd, buf.as_ptr(), buf.len(), libc::MSG_NOSIGNAL, null, 0 as libc::socklen_t)
    {
        Ok(n) => Ok(n as usize),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
            // SAFETY: `buf` is readable for its whole length.
            let n = syscall!(write(fd, buf.as_ptr().cast(), buf.len()))?;
            Ok(n as usize)
        }
        Err(e) => Err(e),
    }
}

/// Plain `write(2)`: unlike [`send`], it raises SIGPIPE on a gone peer. Only for
/// non-socket fds and the `sigpipe-write` fault.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its whole length.
    let n = syscall!(write(fd, buf.as_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// What `fd` refers to: its device and inode (`fstat`). Two numbers name the same open
/// file iff these are equal; a number that was closed and reused names another.
pub fn identity(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: passes a writable stat; the kernel validates fd.
    syscall!(fstat(fd, &mut st))?;
    Ok((st.st_dev, st.st_ino))
}

/// Closes a borrowed fd behind its owner's back: only the `unregister-closes-fd` fault
/// does this.
#[cfg(feature = "faults")]
pub(crate) fn close_fault(fd: RawFd) {
    // SAFETY: deliberately wrong (a fault imitating a real bug); closing a number the
    // caller still owns cannot corrupt memory, only make its later calls fail.
    let _ = unsafe { libc::close(fd) };
}

/// Which half of a connection to shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// No more reads.
    Read,
    /// No more writes: the peer reads EOF (FIN).
    Write,
    /// Both.
    Both,
}

/// `shutdown(2)`.
pub fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    syscall!(shutdown(fd, how))?;
    Ok(())
}

/// Takes the pending socket error (`SO_ERROR`), clearing it.
pub fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let err = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// Whether `O_NONBLOCK` is set on the descriptor.
pub fn is_nonblocking(fd: RawFd) -> io::Result<bool> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    syscall!(fcntl(fd, libc::F_SETFL, flags))?;
    Ok(())
}

/// `TCP_NODELAY`.
pub fn set_nodelay(fd: RawFd, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as libc::c_int)
}

/// `TCP_DEFER_ACCEPT` seconds (0 = off).
pub fn defer_accept_secs(fd: RawFd) -> io::Result<i32> {
    getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT)
}

/// `SO_LINGER`: `Some(Duration::ZERO)` makes `close()` send RST (used by tests that
/// need a peer reset).
pub fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| d.as_secs().min(i32::MAX as u64) as libc::c_int),
    };
    // SAFETY: passes a live linger struct and its size.
    syscall!(setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        (&value as *const libc::linger).cast(),
        size_of::<libc::linger>() as libc::socklen_t
    ))?;
    Ok(())
}

/// Attaches a classic BPF socket filter to a listening TCP socket that drops pure SYNs
/// (SYN set, ACK clear) and passes everything else. A listener about to close uses it
/// to stop taking new handshakes while the ones already under way complete: the
/// dropped SYN is retransmitted by the client (after its initial RTO, 1 s on Linux)
/// and lands on another listener of the port. Children accepted afterwards inherit
/// the filter, which never sees a pure SYN on an established connection that matters.
pub fn drop_new_handshakes(fd: RawFd) -> io::Result<()> {
    // For a TCP socket the filter's offset 0 is the TCP header; byte 13 holds the
    // flags (CWR ECE URG ACK PSH RST SYN FIN).
    const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut program = [
        op(LDB_ABS, 0, 0, 13),
        op(AND_K, 0, 0, 0x12),
        // SYN without ACK: fall through to "drop", else skip to "keep".
        op(JEQ_K, 0, 1, 0x02),
        op(RET_K, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: passes a live sock_fprog and its size; the kernel copies the program
    // (which `fprog` points to and which outlives the call) before returning.
    syscall!(setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        (&fprog as *const libc::sock_fprog).cast(),
        size_of::<libc::sock_fprog>() as libc::socklen_t
    ))?;
    Ok(())
}

/// `SO_SNDBUF` / `SO_RCVBUF` (the kernel doubles the value it stores).
pub fn set_buffer_sizes(fd: RawFd, send: Option<usize>, recv: Option<usize>) -> io::Result<()> {
    for (option, size) in [(libc::SO_SNDBUF, send), (libc::SO_RCVBUF, recv)] {
        if let Some(n) = size {
            setsockopt_int(
                fd,
                libc::SOL_SOCKET,
                option,
                n.min(i32::MAX as usize) as i32,
            )?;
        }
    }
    Ok(())
}

/// Bytes in the socket's send queue not yet acknowledged by the peer (`SIOCOUTQ`).
pub fn send_queue_len(fd: RawFd) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one c_int to the pointer given.
    syscall!(ioctl(fd, libc::TIOCOUTQ, &mut value as *mut libc::c_int))?;
    Ok(value.max(0) as usize)
}

/// Bytes readable on the socket now (`FIONREAD`).
pub fn recv_queue_len(fd: RawFd) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int to the pointer given.
    syscall!(ioctl(fd, libc::FIONREAD, &mut value as *mut libc::c_int))?;
    Ok(value.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn listen_reports_its_address_and_option_round_trips() {
        let opts = ListenOptions {
            backlog: 16,
            reuse_port: true,
            defer_accept_secs: 0,
        };
        let l = tcp_listen("127.0.0.1:0".parse().unwrap(), opts).unwrap();
        let addr = local_addr(l.as_raw_fd()).unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(defer_accept_secs(l.as_raw_fd()).unwrap(), 0);
        assert!(is_nonblocking(l.as_raw_fd()).unwrap());
        assert!(accept(l.as_raw_fd()).unwrap().is_none());
        let c = tcp_connect(addr).unwrap();
        set_nodelay(c.as_raw_fd(), true).unwrap();
        set_nonblocking(c.as_raw_fd(), false).unwrap();
        assert!(!is_nonblocking(c.as_raw_fd()).unwrap());
        assert!(take_error(c.as_raw_fd()).unwrap().is_none());
    }

    #[test]
    fn a_listener_that_drops_new_handshakes_still_finishes_the_earlier_ones() {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        let opts = ListenOptions {
            backlog: 16,
            reuse_port: false,
            defer_accept_secs: 0,
        };
        let l = tcp_listen("127.0.0.1:0".parse().unwrap(), opts).unwrap();
        let addr = local_addr(l.as_raw_fd()).unwrap();
        let mut before = TcpStream::connect(addr).unwrap();
        drop_new_handshakes(l.as_raw_fd()).unwrap();
        // The SYN is dropped: no SYN-ACK within a fraction of the 1 s retransmission.
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert_eq!(
            late.map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::TimedOut)
        );
        // The connection queued before is accepted and carries data both ways, also
        // through the filter (a child accepted later inherits it: only SYNs drop).
        let server = accept(l.as_raw_fd())
            .unwrap()
            .expect("the earlier connection is queued");
        drop_new_handshakes(server.as_raw_fd()).unwrap();
        let mut server = TcpStream::from(server);
        server.set_nonblocking(false).unwrap();
        for s in [&server, &before] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        let mut got = [0u8; 4];
        before.write_all(b"ping").unwrap();
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        server.write_all(b"pong").unwrap();
        before.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let opts = ListenOptions {
            backlog: 4,
            reuse_port: false,
            defer_accept_secs: 0,
        };
        match tcp_listen("[::1]:0".parse().unwrap(), opts) {
            Ok(l) => assert!(local_addr(l.as_raw_fd()).unwrap().is_ipv6()),
            // No IPv6 loopback on this host: nothing to check.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e}"),
        }
    }
}
