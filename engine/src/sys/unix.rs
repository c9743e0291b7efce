//! Passing file descriptors over a Unix stream socket (`SCM_RIGHTS`), for the
//! scenarios' out-of-process control protocol: the harness hands a socket it owns to
//! the engine under test, which registers its copy as a driver connection. And the
//! peer's process id (`SO_PEERCRED`): which process the harness is talking to.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Most descriptors one message carries.
pub const MAX_FDS: usize = 4;

/// Sends all of `data` on `sock`, with `fds` attached to its first byte. Blocking.
pub fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_FDS} fds per message"),
        ));
    }
    let mut sent = 0;
    let mut first = true;
    while sent < data.len() || first {
        let chunk = &data[sent..];
        let mut iov = libc::iovec {
            iov_base: chunk.as_ptr() as *mut libc::c_void,
            iov_len: chunk.len(),
        };
        // Room for MAX_FDS descriptors, aligned as cmsghdr wants.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if first && !fds.is_empty() {
            let payload = std::mem::size_of_val(fds);
            // SAFETY: CMSG_SPACE only computes a size.
            let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            // SAFETY: msg_control points at `control` (64 bytes, 8-aligned), which holds
            // one cmsghdr with MAX_FDS ints (CMSG_SPACE(16) = 32 bytes); CMSG_FIRSTHDR
            // returns a pointer inside it, and CMSG_DATA points at its payload, which
            // has room for `payload` bytes.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr().cast::<u8>(),
                    libc::CMSG_DATA(cmsg),
                    payload,
                );
            }
        }
        // SAFETY: msg points at a live iovec over `chunk` and (maybe) at `control`;
        // both outlive the call.
        let n = syscall!(sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL));
        match n {
            Ok(n) => {
                sent += n as usize;
                first = false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if data.is_empty() {
            break;
        }
    }
    Ok(())
}

/// Reads into `buf` from `sock` (blocking); descriptors that arrived with the bytes
/// are appended to `fds` (owned: closed when dropped). Returns the byte count (0 at
/// EOF).
pub fn recv_with_fds(
    sock: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at a live iovec over `buf` and at `control`, both
        // writable and outliving the call; MSG_CMSG_CLOEXEC marks received fds
        // close-on-exec.
        let n = match syscall!(recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC)) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: the kernel filled msg_control with msg_controllen bytes of cmsghdrs;
        // CMSG_FIRSTHDR/NXTHDR walk them within that length, and each SCM_RIGHTS
        // payload holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors now owned by this
        // process, read unaligned and wrapped in OwnedFd exactly once.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::other(
                "control data truncated: too many fds in one message",
            ));
        }
        return Ok(n);
    }
}

/// The process id of the peer of `sock` (`SO_PEERCRED`: the process that connected,
/// as of the connect).
pub fn peer_pid(sock: &UnixStream) -> io::Result<u32> {
    // SAFETY: ucred is plain data; all-zero is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: passes a writable ucred and its size; the kernel validates fd and option.
    syscall!(getsockopt(
        sock.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        (&mut cred as *mut libc::ucred).cast(),
        &mut len
    ))?;
    Ok(cred.pid as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_peer_of_a_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_pid(&a).unwrap(), std::process::id());
    }

    #[test]
    fn an_fd_crosses_and_stays_usable() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut x, y) = UnixStream::pair().unwrap();
        send_with_fds(&a, b"register\n", &[y.as_raw_fd()]).unwrap();
        send_with_fds(&a, b"plain\n", &[]).unwrap();
        drop(y);
        let mut got = Vec::new();
        let mut fds = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"plain\n") {
            let n = recv_with_fds(&b, &mut buf, &mut fds).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"register\nplain\n");
        assert_eq!(fds.len(), 1);
        // The received copy is the other end of `x`.
        let mut y2 = UnixStream::from(fds.pop().unwrap());
        y2.write_all(b"hi").unwrap();
        let mut two = [0u8; 2];
        x.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"hi");
    }
}
