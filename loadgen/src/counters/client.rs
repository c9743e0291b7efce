//! The counters' client: blocking HTTP/1.1 over one connection at a time, reading
//! responses into one fixed buffer, so that after construction it does not allocate.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use engine::sys::count::KINDS;

use scenarios::client::{parse_u64, ResponseReader};

/// Allocations and syscalls by kind, as the snapshot route reports them.
pub type Snapshot = [u64; KINDS + 1];

/// A blocking HTTP/1.1 client that reads responses into one fixed buffer: after
/// construction it does not allocate.
#[derive(Debug)]
pub struct Client {
    stream: Option<TcpStream>,
    reader: ResponseReader,
}

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: counters\r\nUser-Agent: loadgen\r\n\r\n";
const GET_SNAPSHOT: &[u8] = b"GET /__counters HTTP/1.1\r\nHost: counters\r\n\r\n";

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client {
            stream: None,
            reader: ResponseReader::new(64 * 1024),
        }
    }

    pub fn connect(&mut self, addr: SocketAddr) -> Result<(), String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
        s.set_nodelay(true)
            .and_then(|()| s.set_read_timeout(Some(IO_TIMEOUT)))
            .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("socket options: {e}"))?;
        self.stream = Some(s);
        self.reader.reset();
        Ok(())
    }

    pub fn close(&mut self) {
        self.stream = None;
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        s.write_all(bytes)
            .map_err(|e| format!("sending to the engine: {e}"))
    }

    /// Reads one whole response (status 200, `content-length` framing); returns the
    /// body's range in the reader's buffer, valid until the next call.
    pub fn response(&mut self) -> Result<std::ops::Range<usize>, String> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        let (status, body) = self.reader.read(s).map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("the engine answered {status}, expected 200"));
        }
        Ok(body)
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.send(GET_SNAPSHOT)?;
        let body = self.response()?;
        let mut out = [0u64; KINDS + 1];
        let mut fields = self.reader.bytes(body).split(|&b| b == b' ');
        for slot in &mut out {
            *slot = fields.next().and_then(parse_u64).ok_or(
                "the snapshot response is not a list of counters (is another engine answering?)",
            )?;
        }
        Ok(out)
    }
}
