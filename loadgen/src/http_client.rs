//! The blocking client side of HTTP/1.1 for `bench` (idle connections) and `counters`:
//! one response reader over a fixed buffer. After construction it does not allocate
//! (counters measures allocations around it), except to build an error.

use std::io::{self, Read};
use std::net::TcpStream;
use std::ops::Range;
use std::time::Instant;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The first line is not `HTTP/1.x NNN ...`.
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

/// Reads whole responses (`content-length` framing) into one fixed buffer.
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
            if let Some(head) = memchr::memmem::find(data, b"\r\n\r\n") {
                let (status, len) = parse_head(&data[..head])?;
                let total = head + 4 + len;
                if data.len() >= total {
                    let body = self.start + head + 4..self.start + total;
                    self.start += total;
                    return Ok((status, body));
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

/// A decimal of at most 19 digits.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// The status and `content-length` of a response head (without the blank line).
pub fn parse_head(head: &[u8]) -> Result<(u16, usize), ResponseError> {
    let mut lines = head.split(|&b| b == b'\n');
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(parse_u64)
        .ok_or(ResponseError::NoStatus)?;
    let mut len = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon].eq_ignore_ascii_case(b"content-length") {
                len = parse_u64(line[colon + 1..].trim_ascii());
            }
        }
    }
    let len = len.ok_or(ResponseError::NoLength)?;
    Ok((status as u16, len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_parse_without_surprises() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ndate: x").unwrap(),
            (200, 13)
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").is_err());
        assert_eq!(parse_u64(b"18446744073709551615"), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"0042"), Some(42));
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
}
