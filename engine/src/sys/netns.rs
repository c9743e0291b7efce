//! Network namespaces for the conformance scenarios: a scenario that counts the RSTs
//! the host emits runs on a thread that moved into a fresh namespace, where only its
//! own traffic exists (needs CAP_SYS_ADMIN, i.e. root).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Whether the process runs as root (and so may create network namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread (and the threads it spawns afterwards) into a new network
/// namespace and brings its loopback interface up. The rest of the process stays
/// where it was. `/proc/thread-self/net/*` then shows the new namespace's counters.
pub fn enter_new_net_namespace() -> io::Result<()> {
    syscall!(unshare(libc::CLONE_NEWNET))?;
    let fd = syscall!(socket(
        libc::AF_INET,
        libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
        0
    ))?;
    // SAFETY: socket returned a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface named in `req` and writes its flags into
    // the union; `req` is valid and writable.
    syscall!(ioctl(
        sock.as_raw_fd(),
        libc::SIOCGIFFLAGS,
        &mut req as *mut libc::ifreq
    ))?;
    // SAFETY: after SIOCGIFFLAGS the flags member of the union is the initialised one.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req` (name and flags); it is valid.
    syscall!(ioctl(
        sock.as_raw_fd(),
        libc::SIOCSIFFLAGS,
        &mut req as *mut libc::ifreq
    ))?;
    Ok(())
}

/// RST counters of the calling thread's network namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RstCounters {
    /// `Tcp: OutRsts` (every RST sent).
    pub out_rsts: u64,
    /// `TcpExt: TCPAbortOnClose` (RSTs sent because a socket was closed with unread data).
    pub abort_on_close: u64,
}

fn counter(text: &str, section: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(section));
    let names = lines.next()?;
    let values = lines.next()?;
    let idx = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(idx)?.parse().ok()
}

/// `net.ipv4.tcp_migrate_req` of the calling thread's network namespace (`/proc/sys/net`
/// shows the namespace of the thread that opens it): `None` when the kernel has no such
/// setting (before Linux 5.14).
pub fn tcp_migrate_req() -> io::Result<Option<bool>> {
    match std::fs::read_to_string(TCP_MIGRATE_REQ) {
        Ok(text) => Ok(Some(text.trim() != "0")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets `net.ipv4.tcp_migrate_req` in the calling thread's network namespace. Meant for
/// a namespace the caller created: in the host's namespace it changes the host.
pub fn set_tcp_migrate_req(on: bool) -> io::Result<()> {
    std::fs::write(TCP_MIGRATE_REQ, if on { "1" } else { "0" })
}

const TCP_MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// A `TcpExt:` counter of the calling thread's namespace (`/proc/thread-self/net/netstat`),
/// `None` when this kernel has no counter of that name.
pub fn tcp_ext_counter(name: &str) -> io::Result<Option<u64>> {
    let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    Ok(counter(&netstat, "TcpExt:", name))
}

/// Reads the RST counters of the calling thread's namespace.
pub fn rst_counters() -> io::Result<RstCounters> {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")?;
    let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    let missing = |what| io::Error::new(io::ErrorKind::InvalidData, format!("no {what} counter"));
    Ok(RstCounters {
        out_rsts: counter(&snmp, "Tcp:", "OutRsts").ok_or_else(|| missing("Tcp OutRsts"))?,
        abort_on_close: counter(&netstat, "TcpExt:", "TCPAbortOnClose")
            .ok_or_else(|| missing("TcpExt TCPAbortOnClose"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_namespace_counts_a_reset_of_its_own() {
        if !is_root() {
            return; // Needs CAP_SYS_ADMIN: nothing to check without it.
        }
        std::thread::spawn(|| {
            enter_new_net_namespace().unwrap();
            let before = rst_counters().unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            crate::sys::socket::set_linger(s.as_raw_fd(), Some(std::time::Duration::ZERO)).unwrap();
            drop(s);
            drop(c);
            let after = rst_counters().unwrap();
            assert_eq!(after.out_rsts - before.out_rsts, 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn tcp_migrate_req_is_per_namespace() {
        if !is_root() || tcp_migrate_req().unwrap().is_none() {
            return; // Needs CAP_SYS_ADMIN and Linux 5.14+: nothing to check without them.
        }
        let host = tcp_migrate_req().unwrap();
        std::thread::spawn(move || {
            enter_new_net_namespace().unwrap();
            set_tcp_migrate_req(true).unwrap();
            assert_eq!(tcp_migrate_req().unwrap(), Some(true));
            set_tcp_migrate_req(false).unwrap();
            assert_eq!(tcp_migrate_req().unwrap(), Some(false));
            set_tcp_migrate_req(true).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(
            tcp_migrate_req().unwrap(),
            host,
            "the host's setting is untouched"
        );
    }
}
