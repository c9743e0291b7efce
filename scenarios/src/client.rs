//! Client-side observation: what a client saw on a connection and how it ended.
//!
//! Every connection's end is classified as one of [`Class`]; FIN and RST are never
//! merged: EOF is `fin` unless the socket then reports an error (`SO_ERROR`) or a
//! later send fails, which makes it `fin-then-rst`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use engine::sys::socket;

/// How a connection ended (or stood) when observation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The expected responses arrived and the connection is still open.
    Response,
    /// EOF, `SO_ERROR` 0, no reset afterwards.
    Fin,
    /// EOF, then `SO_ERROR` `EPIPE`/`ECONNRESET` or a failing send.
    FinThenRst,
    /// `ECONNRESET` before any EOF.
    Rst,
    /// `ECONNREFUSED` on connect.
    Refused,
    /// Nothing conclusive before the deadline.
    Timeout,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Response => "response",
            Class::Fin => "fin",
            Class::FinThenRst => "fin-then-rst",
            Class::Rst => "rst",
            Class::Refused => "refused",
            Class::Timeout => "timeout",
        })
    }
}

/// One parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// Whether it carries `connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// What one connection showed.
#[derive(Debug, Clone)]
pub struct Observation {
    /// How it ended.
    pub class: Class,
    /// Complete responses received, in order.
    pub responses: Vec<Resp>,
    /// Bytes received that did not form a complete response.
    pub trailing_bytes: usize,
    /// When the end was seen, from the start of observation.
    pub at: Duration,
    /// Extra detail (errno, probe result).
    pub detail: String,
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.responses {
            write!(
                f,
                "response {}{} + ",
                r.status,
                if r.closes() { " (close)" } else { "" }
            )?;
        }
        write!(f, "{} at {} ms", self.class, self.at.as_millis())?;
        if self.trailing_bytes > 0 {
            write!(f, " (+{} stray bytes)", self.trailing_bytes)?;
        }
        if !self.detail.is_empty() {
            write!(f, " [{}]", self.detail)?;
        }
        Ok(())
    }
}

/// A request for `path` (HTTP/1.1, keep-alive).
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A POST of `body` to `path`, framed by Content-Length (HTTP/1.1, keep-alive).
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Connects with a deadline. `Err` is the observation of a failed connect
/// (`refused` or `timeout`, or `rst`).
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Observation> {
    let start = Instant::now();
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(e) => {
            let class = match e.kind() {
                io::ErrorKind::ConnectionRefused => Class::Refused,
                io::ErrorKind::ConnectionReset => Class::Rst,
                _ => Class::Timeout,
            };
            Err(Observation {
                class,
                responses: Vec::new(),
                trailing_bytes: 0,
                at: start.elapsed(),
                detail: e.to_string(),
            })
        }
    }
}

/// How to watch a connection.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// Give up (class `timeout`, or `response` if enough responses came) after this.
    pub deadline: Duration,
    /// Stop, class `response`, once this many complete responses arrived.
    pub responses: Option<usize>,
    /// After EOF, wait this long, send a byte and watch for a reset for `probe_window`.
    pub probe_after_eof: Option<Duration>,
    /// How long to watch for a reset after the probe.
    pub probe_window: Duration,
}

impl Watch {
    /// Watch until the end, for at most `deadline`.
    pub fn until_end(deadline: Duration) -> Watch {
        Watch {
            deadline,
            responses: None,
            probe_after_eof: None,
            probe_window: Duration::from_millis(200),
        }
    }
    /// Stop after `n` responses.
    pub fn responses(mut self, n: usize) -> Watch {
        self.responses = Some(n);
        self
    }
    /// Probe for RST `after` the EOF (a client write must not draw a reset).
    pub fn probe(mut self, after: Duration) -> Watch {
        self.probe_after_eof = Some(after);
        self
    }
}

/// Where the head at the start of `buf` ends: the index after its blank line.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// A response head borrowed from the bytes it was read into; parsing it allocates
/// nothing (the fixed-buffer [`ResponseReader`] relies on that).
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The status code: the second space-separated word of the status line.
    pub status: u16,
    /// The header lines after the status line.
    fields: &'a str,
}

impl<'a> Head<'a> {
    /// Every `name: value` line, both trimmed (lines without a colon are skipped).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.fields
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
    }

    /// The value of the first `content-length` field (any case), unparsed.
    pub fn content_length(&self) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v)
    }
}

/// Parses a response head (without its blank line); `None` unless it is UTF-8 with a
/// numeric status.
pub fn parse_head(head: &[u8]) -> Option<Head<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let (status_line, fields) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    Some(Head { status, fields })
}

/// Parses one complete response at the start of `buf`; `None` if incomplete. A
/// missing or unparsable `content-length` means an empty body; a 1xx has none.
pub fn parse_response(buf: &[u8]) -> Option<(Resp, usize)> {
    let end = head_end(buf)?;
    let head = parse_head(&buf[..end - 4])?;
    let headers: Vec<(String, String)> = head
        .headers()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    let status = head.status;
    if (100..200).contains(&status) {
        return Some((
            Resp {
                status,
                headers,
                body: Vec::new(),
            },
            end,
        ));
    }
    let len: usize = head
        .content_length()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    Some((
        Resp {
            status,
            headers,
            body: buf[end..end + len].to_vec(),
        },
        end + len,
    ))
}

/// Why [`ResponseReader::read`] could not read a response.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The head has no status line [`parse_head`] accepts.
    #[error("a response without a status line")]
    NoStatus,
    /// No `content-length` (the only framing this reader knows).
    #[error("a response without content-length")]
    NoLength,
    /// The response does not fit the buffer.
    #[error("response of {0} bytes: too large")]
    TooLarge(usize),
    /// Reading failed (a timeout included).
    #[error("reading a response: {0}")]
    Read(io::Error),
    /// The peer closed before a whole response.
    #[error("the engine closed the connection before a whole response")]
    Closed,
}

/// Reads whole responses (`content-length` framing) into one fixed buffer: after
/// construction it does not allocate, except to build an error (`loadgen counters`
/// measures allocations around it).
#[derive(Debug)]
pub struct ResponseReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ResponseReader {
    /// A reader for responses up to `capacity` bytes.
    pub fn new(capacity: usize) -> ResponseReader {
        ResponseReader {
            buf: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// Forgets buffered bytes (a new connection).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads one whole response from `stream`; returns its status and its body's range,
    /// valid in [`ResponseReader::bytes`] until the next call. Bytes after it (a
    /// pipelined response) stay buffered for the next call.
    pub fn read(&mut self, stream: &mut impl Read) -> Result<(u16, Range<usize>), ResponseError> {
        loop {
            let data = &self.buf[self.start..self.end];
            if let Some(end) = head_end(data) {
                let head = parse_head(&data[..end - 4]).ok_or(ResponseError::NoStatus)?;
                let len = head
                    .content_length()
                    .and_then(|v| parse_u64(v.as_bytes()))
                    .ok_or(ResponseError::NoLength)? as usize;
                let total = end + len;
                if data.len() >= total {
                    let body = self.start + end..self.start + total;
                    self.start += total;
                    return Ok((head.status, body));
                }
                if total > self.buf.len() {
                    return Err(ResponseError::TooLarge(total));
                }
            }
            if self.start == self.end {
                self.reset();
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = stream
                .read(&mut self.buf[self.end..])
                .map_err(ResponseError::Read)?;
            if n == 0 {
                return Err(ResponseError::Closed);
            }
            self.end += n;
        }
    }

    /// Bytes of a range [`ResponseReader::read`] returned.
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }
}

/// A stream whose reads all end by one deadline (each read's timeout is what is left).
#[derive(Debug)]
pub struct Deadline<'a> {
    /// The stream.
    pub stream: &'a mut TcpStream,
    /// When reading gives up.
    pub end: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// A decimal of at most 19 digits (no sign, no spaces).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Reads from `stream` until it ends or the watch says stop, and classifies the end.
pub fn observe(stream: &mut TcpStream, watch: Watch) -> Observation {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let finish = |class, responses, buf: &Vec<u8>, detail: String| Observation {
        class,
        responses,
        trailing_bytes: buf.len(),
        at: start.elapsed(),
        detail,
    };
    loop {
        let left = watch.deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            let class = if !responses.is_empty() && watch.responses.is_none() {
                Class::Response
            } else {
                Class::Timeout
            };
            return finish(class, responses, &buf, String::new());
        }
        let _ = stream.set_read_timeout(Some(left.min(Duration::from_millis(50))));
        match stream.read(&mut chunk) {
            Ok(0) => {
                let (class, detail) = after_eof(stream, watch);
                return finish(class, responses, &buf, detail);
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Some((r, used)) = parse_response(&buf) {
                    buf.drain(..used);
                    if r.status >= 200 {
                        responses.push(r);
                    }
                }
                if watch.responses.is_some_and(|want| responses.len() >= want) {
                    return finish(Class::Response, responses, &buf, String::new());
                }
            }
            Err(e) if read_again(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return finish(Class::Rst, responses, &buf, e.to_string());
            }
            Err(e) => return finish(Class::Rst, responses, &buf, e.to_string()),
        }
    }
}

/// Whether a read on a socket with a read timeout failed only because nothing came
/// yet (would block, timed out, interrupted): not the end of the connection, the
/// caller reads again.
pub fn read_again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Reads raw bytes until `done(buf)`, EOF, an error or `deadline`. Returns the bytes
/// and how reading stopped (`done`, `eof`, `timeout` or the error).
pub fn read_raw(
    s: &mut TcpStream,
    deadline: Duration,
    mut done: impl FnMut(&[u8]) -> bool,
) -> (Vec<u8>, String) {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if done(&buf) {
            return (buf, "done".into());
        }
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (buf, "timeout".into());
        }
        let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(20))));
        match s.read(&mut chunk) {
            Ok(0) => return (buf, "eof".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if read_again(&e) => {}
            Err(e) => return (buf, format!("error: {e}")),
        }
    }
}

/// Reads a response's bytes off `s` until `n` complete responses arrived; the raw
/// byte count (`None` on error or after `within`).
pub fn read_responses(s: &mut TcpStream, n: usize, within: Duration) -> Option<(usize, Vec<Resp>)> {
    let end = Instant::now() + within;
    let mut buf = Vec::new();
    let mut total = 0;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while out.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => {
                total += k;
                buf.extend_from_slice(&chunk[..k]);
                while let Some((r, used)) = parse_response(&buf) {
                    buf.drain(..used);
                    out.push(r);
                }
            }
        }
    }
    Some((total, out))
}

fn after_eof(stream: &mut TcpStream, watch: Watch) -> (Class, String) {
    let fd = stream.as_raw_fd();
    if let Ok(Some(e)) = socket::take_error(fd) {
        return (Class::FinThenRst, format!("SO_ERROR {e}"));
    }
    let Some(after) = watch.probe_after_eof else {
        return (Class::Fin, String::new());
    };
    std::thread::sleep(after);
    if let Err(e) = stream.write_all(b"x") {
        return (Class::FinThenRst, format!("probe send failed: {e}"));
    }
    let until = Instant::now() + watch.probe_window;
    while Instant::now() < until {
        if let Ok(Some(e)) = socket::take_error(fd) {
            return (Class::FinThenRst, format!("SO_ERROR after probe: {e}"));
        }
        // A reset makes the next send fail (EPIPE / ECONNRESET).
        match socket::send(fd, b"") {
            Err(e) => return (Class::FinThenRst, format!("send after probe: {e}")),
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    if let Err(e) = stream.write_all(b"y") {
        return (Class::FinThenRst, format!("second probe send failed: {e}"));
    }
    if let Ok(Some(e)) = socket::take_error(fd) {
        return (Class::FinThenRst, format!("SO_ERROR after probe: {e}"));
    }
    (
        Class::Fin,
        format!("probe {} ms after EOF drew no reset", after.as_millis()),
    )
}

/// Watches every stream at once (one thread each), so that every probe happens at the
/// same delay after its own EOF; observations come back in stream order.
pub fn observe_all(streams: Vec<TcpStream>, watch: Watch) -> Vec<Observation> {
    let handles: Vec<_> = streams
        .into_iter()
        .map(|mut s| std::thread::spawn(move || observe(&mut s, watch)))
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| Observation {
                class: Class::Timeout,
                responses: Vec::new(),
                trailing_bytes: 0,
                at: Duration::ZERO,
                detail: "observer thread panicked".into(),
            })
        })
        .collect()
}

/// Sends `req` and watches for one response.
pub fn request(addr: SocketAddr, req: &[u8], deadline: Duration) -> Observation {
    let mut s = match connect(addr, deadline) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(e) = s.write_all(req) {
        return Observation {
            class: Class::Rst,
            responses: Vec::new(),
            trailing_bytes: 0,
            at: Duration::ZERO,
            detail: format!("send failed: {e}"),
        };
    }
    observe(&mut s, Watch::until_end(deadline).responses(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_framed_responses() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: close\r\n\r\nhiHTTP/1.1";
        let (r, used) = parse_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hi");
        assert!(r.closes());
        assert_eq!(used, raw.len() - 8);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab").is_none());
    }

    #[test]
    fn heads_parse_without_allocating_their_fields() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ndate: x").unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length(), Some("13"));
        assert_eq!(
            head.headers().collect::<Vec<_>>(),
            [("Content-Length", "13"), ("date", "x")]
        );
        assert!(parse_head(b"HTTP/1.1 200 OK")
            .unwrap()
            .content_length()
            .is_none());
        assert!(parse_head(b"HTTP/1.1\r\n").is_none());
        assert_eq!(parse_u64(b"18446744073709551615"), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"0042"), Some(42));
    }

    #[test]
    fn without_content_length_parse_response_reads_no_body_and_the_reader_refuses() {
        let raw = b"HTTP/1.1 200 OK\r\ndate: x\r\n\r\nHTTP/1.1";
        let (r, used) = parse_response(raw).unwrap();
        assert_eq!((r.status, r.body.len(), used), (200, 0, raw.len() - 8));
        let mut input = &raw[..];
        let err = ResponseReader::new(64).read(&mut input).unwrap_err();
        assert!(matches!(err, ResponseError::NoLength), "{err}");
    }

    #[test]
    fn pipelined_responses_come_one_at_a_time() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 No\r\ncontent-length: 0\r\n\r\n";
        let mut r = ResponseReader::new(64);
        let mut input = &two[..];
        let (status, body) = r.read(&mut input).unwrap();
        assert_eq!((status, r.bytes(body)), (200, &b"hi"[..]));
        assert_eq!(r.read(&mut input).unwrap().0, 404);
        assert!(matches!(r.read(&mut input), Err(ResponseError::Closed)));
    }

    #[test]
    fn refused_is_classified() {
        // Bind then drop to find a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let o = connect(port, Duration::from_secs(1)).unwrap_err();
        assert_eq!(o.class, Class::Refused);
    }

    #[test]
    fn fin_and_rst_are_told_apart() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // FIN: the server closes with nothing unread.
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        let o = observe(&mut c, Watch::until_end(Duration::from_secs(2)));
        assert_eq!(o.class, Class::Fin, "{o}");
        // RST: linger 0.
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        socket::set_linger(s.as_raw_fd(), Some(Duration::ZERO)).unwrap();
        drop(s);
        let o = observe(&mut c, Watch::until_end(Duration::from_secs(2)));
        assert_eq!(o.class, Class::Rst, "{o}");
        // FIN then RST: the server closes, the client writes, the closed socket resets.
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        let o = observe(
            &mut c,
            Watch::until_end(Duration::from_secs(2)).probe(Duration::from_millis(10)),
        );
        assert_eq!(o.class, Class::FinThenRst, "{o}");
    }
}
