//! What an epoll event is about: the [`Token`] a worker registers each fd with, and
//! the one place that turns it into the `u64` epoll carries and back.

use std::os::fd::RawFd;

/// The identity of a worker's epoll event.
///
/// An HTTP connection's fd is also its slot in the worker's connection table, so
/// `Conn` carries nothing else. A driver fd is a number the caller owns; its own bit
/// in the encoding keeps it apart from the connection slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// The worker's eventfd: commands or driver closes are waiting.
    Wake,
    /// The worker's listen socket.
    Listener,
    /// An HTTP connection, by its fd (= its slot).
    Conn(RawFd),
    /// A registered driver fd.
    Driver(RawFd),
}

/// The encoding: the two top values for the worker's own fds, bit 32 for driver fds,
/// the fd itself (below 2^31) for HTTP connections.
const WAKE: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;
const DRIVER_BIT: u64 = 1 << 32;

impl Token {
    /// The value registered with epoll.
    #[inline]
    pub(crate) const fn to_u64(self) -> u64 {
        match self {
            Token::Wake => WAKE,
            Token::Listener => LISTENER,
            Token::Conn(fd) => fd as u64,
            Token::Driver(fd) => DRIVER_BIT | fd as u32 as u64,
        }
    }

    /// The token an event carries back. Every `u64` decodes to some token; values the
    /// worker never registered decode to a slot or fd it does not hold, which the
    /// worker ignores as it ignores a spurious event.
    #[inline]
    pub(crate) const fn from_u64(value: u64) -> Token {
        match value {
            WAKE => Token::Wake,
            LISTENER => Token::Listener,
            v if v & DRIVER_BIT != 0 => Token::Driver(v as u32 as RawFd),
            v => Token::Conn(v as RawFd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_survives_the_round_trip() {
        let fds = [0, 1, 2, 3, 1023, 65_536, i32::MAX - 1, i32::MAX];
        let tokens = [Token::Wake, Token::Listener]
            .into_iter()
            .chain(fds.iter().map(|&fd| Token::Conn(fd)))
            .chain(fds.iter().map(|&fd| Token::Driver(fd)));
        for t in tokens {
            assert_eq!(Token::from_u64(t.to_u64()), t, "{t:?} = {:#x}", t.to_u64());
        }
    }

    #[test]
    fn kinds_never_share_a_value() {
        for fd in [0, 7, i32::MAX] {
            let values = [
                Token::Wake.to_u64(),
                Token::Listener.to_u64(),
                Token::Conn(fd).to_u64(),
                Token::Driver(fd).to_u64(),
            ];
            for (i, a) in values.iter().enumerate() {
                assert!(!values[i + 1..].contains(a), "fd {fd}: {values:x?}");
            }
        }
    }

    #[test]
    fn a_connection_token_is_its_fd() {
        // The hot path registers connections by fd; the encoding must stay the fd.
        assert_eq!(Token::Conn(42).to_u64(), 42);
        assert_eq!(Token::from_u64(42), Token::Conn(42));
    }
}
