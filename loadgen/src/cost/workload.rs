//! The fixed workloads of `loadgen cost` and the deterministic client that drives
//! them: one request (or one pipelined batch, or one connection) in flight at a time,
//! each answer read before the next request, so that the server does the same work,
//! syscall for syscall, however fast or slow it runs (under valgrind or strace).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use scenarios::client::ResponseReader;

/// How long one read or write may take before the run fails (servers under valgrind
/// are slow, but not this slow).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The request of every GET workload: the yardsticks' floor client's, so that figures compare.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Pipelining depth of [`Workload::Pipelined`].
pub const DEPTH: usize = 16;

/// Size of [`Workload::Post4k`]'s body.
const POST_BODY: usize = 4096;

/// Requests the client sends before the counted ones, in both runs of a pair (they
/// cancel in the difference; they only make the first counted request a steady one).
const WARM_UP: u64 = 32;

/// One fixed workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// One connection, `GET /` one at a time.
    KeepAlive,
    /// One connection, batches of 16 `GET /` in one write each.
    Pipelined,
    /// A new connection per `GET /`, closed by the client with a half-close after the
    /// response and read to the server's FIN.
    NewConnection,
    /// One connection, `POST /echo` with a 4 KiB body, one at a time.
    Post4k,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 4] = [
        Workload::KeepAlive,
        Workload::Pipelined,
        Workload::NewConnection,
        Workload::Post4k,
    ];

    /// The workload's name on the command line and in the documents.
    pub fn name(self) -> &'static str {
        match self {
            Workload::KeepAlive => "keep-alive",
            Workload::Pipelined => "pipelined-16",
            Workload::NewConnection => "new-connection",
            Workload::Post4k => "post-4k",
        }
    }

    /// The workload named `name`.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Every workload's name, comma-separated.
    pub fn names() -> String {
        Workload::ALL.map(Workload::name).join(", ")
    }

    /// What the client does, in one sentence.
    pub fn description(self) -> &'static str {
        match self {
            Workload::KeepAlive => "one connection, GET / one at a time, each response read before the next request",
            Workload::Pipelined => "one connection, batches of 16 GET / in one write each, all 16 responses read before the next batch",
            Workload::NewConnection => "one GET / per connection; after the response the client half-closes and reads to the server's FIN before the next connection",
            Workload::Post4k => "one connection, POST /echo with a 4096-byte body one at a time (the server must echo it)",
        }
    }

    /// The two request counts of the difference (N1 < N2): per request is
    /// `(count(N2) - count(N1)) / (N2 - N1)`.
    pub fn requests(self) -> [u64; 2] {
        match self {
            Workload::KeepAlive => [1000, 3000],
            Workload::Pipelined => [1024, 3072],
            Workload::NewConnection => [200, 600],
            Workload::Post4k => [500, 1500],
        }
    }
}

/// The client of one run: its connection and its response buffer.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    reader: ResponseReader,
    post: Vec<u8>,
}

impl Client {
    /// A client of the server at `addr` whose first connection is `first` (the one
    /// that found the server listening).
    pub fn new(addr: SocketAddr, first: TcpStream) -> Result<Client, String> {
        let mut post = format!(
            "POST /echo HTTP/1.1\r\nHost: loadgen\r\nUser-Agent: loadgen-cost\r\nContent-Length: {POST_BODY}\r\n\r\n"
        )
        .into_bytes();
        post.resize(post.len() + POST_BODY, b'a');
        let mut c = Client {
            addr,
            stream: None,
            reader: ResponseReader::new(64 * 1024),
            post,
        };
        c.adopt(first)?;
        Ok(c)
    }

    fn adopt(&mut self, s: TcpStream) -> Result<(), String> {
        s.set_nodelay(true)
            .and_then(|()| s.set_read_timeout(Some(IO_TIMEOUT)))
            .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("socket options: {e}"))?;
        self.stream = Some(s);
        self.reader.reset();
        Ok(())
    }

    fn stream(&mut self) -> Result<&mut TcpStream, String> {
        self.stream.as_mut().ok_or_else(|| "not connected".into())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let addr = self.addr;
        self.stream()?
            .write_all(bytes)
            .map_err(|e| format!("sending to the server on {addr}: {e}"))
    }

    /// Reads one response; `body` is the length it must have (`None`: any).
    fn response(&mut self, what: &str, body: Option<usize>) -> Result<(), String> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        let (status, range) = self
            .reader
            .read(s)
            .map_err(|e| format!("reading the answer to {what}: {e}"))?;
        if status != 200 {
            return Err(format!(
                "the server answered {what} with {status}, not 200: it must serve it \
                 (leave the workload out with --workload)"
            ));
        }
        if let Some(len) = body.filter(|&l| l != range.len()) {
            return Err(format!(
                "the server answered {what} with a {}-byte body, not {len}: it must echo it \
                 (leave the workload out with --workload)",
                range.len()
            ));
        }
        Ok(())
    }

    /// Half-closes, reads to the server's FIN and drops the connection.
    fn close(&mut self) -> Result<(), String> {
        let Some(mut s) = self.stream.take() else {
            return Ok(());
        };
        let _ = s.shutdown(Shutdown::Write);
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => Ok(()),
            Ok(_) => Err(
                "the server sent bytes after the response to GET / on a closing connection".into(),
            ),
            Err(e) => Err(format!(
                "waiting for the server to close a connection after the client's FIN: {e}"
            )),
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        let s = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT)
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        self.adopt(s)
    }

    /// One unit of `w`: one request, one batch or one connection; returns how many
    /// requests it made.
    fn unit(&mut self, w: Workload) -> Result<u64, String> {
        match w {
            Workload::KeepAlive => {
                self.send(GET)?;
                self.response("GET /", None)?;
                Ok(1)
            }
            Workload::Pipelined => {
                let batch = GET.repeat(DEPTH);
                self.send(&batch)?;
                for _ in 0..DEPTH {
                    self.response("a pipelined GET /", None)?;
                }
                Ok(DEPTH as u64)
            }
            Workload::NewConnection => {
                if self.stream.is_none() {
                    self.connect()?;
                }
                self.send(GET)?;
                self.response("GET /", None)?;
                self.close()?;
                Ok(1)
            }
            Workload::Post4k => {
                let post = std::mem::take(&mut self.post);
                let sent = self.send(&post);
                self.post = post;
                sent?;
                self.response("POST /echo", Some(POST_BODY))?;
                Ok(1)
            }
        }
    }

    /// The warm-up: requests before the counted ones, the same in every run (they cancel
    /// in the difference; they only make the first counted request a steady one).
    pub fn warm_up(&mut self, w: Workload) -> Result<(), String> {
        self.requests(w, WARM_UP).map(|_| ())
    }

    /// Runs `n` requests of `w` (rounded up to whole units), leaving a keep-alive
    /// connection open; returns how many it made.
    pub fn requests(&mut self, w: Workload, n: u64) -> Result<u64, String> {
        let mut done = 0;
        while done < n {
            done += self.unit(w)?;
        }
        Ok(done)
    }
}
