//! Idle keep-alive connections for the idle-active workload, and the open-files limit
//! they need.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use scenarios::client::{Deadline, ResponseReader};

/// Descriptors kept free for everything but the idle connections (client threads,
/// active connections, pipes, files).
const FD_RESERVE: u64 = 256;

/// The largest response an idle connection's request may get.
const RESPONSE_BUFFER: usize = 64 * 1024;

/// Idle keep-alive connections: each has had one request answered and then waits.
#[derive(Debug)]
pub struct IdleConns {
    conns: Vec<TcpStream>,
}

impl IdleConns {
    /// Opens `n` connections to `addr` and has each answer one `GET path`; keeps those
    /// that did.
    pub fn open(
        addr: SocketAddr,
        host: &str,
        path: &str,
        n: usize,
        note: &mut dyn FnMut(String),
    ) -> Result<IdleConns, String> {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => conns.push(s),
                Err(e) if i == 0 => {
                    return Err(format!("idle-active: cannot connect to {addr}: {e}"))
                }
                Err(e) => {
                    note(format!("bench: idle-active: connection {} of {n} failed ({e}): holding {i} idle connections", i + 1));
                    break;
                }
            }
        }
        let mut idle = IdleConns { conns };
        idle.conns = idle.answering(host, path);
        Ok(idle)
    }

    /// Sends `GET path` on every connection, then reads every response; returns the
    /// connections that answered 2xx (bounded: about 5 s in all).
    fn answering(&mut self, host: &str, path: &str) -> Vec<TcpStream> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let sent: Vec<TcpStream> = std::mem::take(&mut self.conns)
            .into_iter()
            .filter_map(|mut s| s.write_all(req.as_bytes()).ok().map(|()| s))
            .collect();
        let end = Instant::now() + Duration::from_secs(5);
        let mut reader = ResponseReader::new(RESPONSE_BUFFER);
        sent.into_iter()
            .filter_map(|mut s| answered(&mut reader, &mut s, end).then_some(s))
            .collect()
    }

    /// How many connections are held.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// How many of the held connections still answer a request now.
    pub fn probe(&mut self, host: &str, path: &str) -> usize {
        self.conns = self.answering(host, path);
        self.conns.len()
    }
}

/// Reads one response; true when it is complete and 2xx before `end`.
fn answered(reader: &mut ResponseReader, s: &mut TcpStream, end: Instant) -> bool {
    reader.reset();
    let mut stream = Deadline { stream: s, end };
    matches!(reader.read(&mut stream), Ok((200..=299, _)))
}

/// Raises the open-files limit for `idle` idle connections (children started later
/// inherit it) and returns how many idle connections fit.
pub fn idle_capacity(idle: usize, max_conns: usize, note: &mut dyn FnMut(String)) -> usize {
    let want = 2 * idle as u64 + FD_RESERVE + max_conns as u64;
    let limit = match engine::sys::rlimit::raise_nofile_limit(want) {
        Ok(l) => l,
        Err(e) => {
            note(format!(
                "bench: cannot read the open-files limit ({e}); assuming 1024"
            ));
            1024
        }
    };
    let fit = limit.saturating_sub(FD_RESERVE + max_conns as u64) as usize;
    if fit < idle {
        note(format!(
            "bench: open-files limit {limit} (hard limit reached): idle-active holds {fit} idle connections instead of {idle}; raise `ulimit -Hn` for more"
        ));
    }
    fit.min(idle)
}
