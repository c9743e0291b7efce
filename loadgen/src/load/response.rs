//! Incremental HTTP/1.1 response framing: Content-Length, chunked (extensions and
//! trailers), close-delimited, bodiless statuses and HEAD. Bodies are never stored:
//! they are read through, and `--expect-body` compares them as they arrive. Memory is
//! bounded whatever the server sends: a head or a chunk line over 64 KiB is an error,
//! and a stream whose first bytes are not `HTTP/1.` is an error as soon as they differ.

/// A completed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Status code.
    pub status: u16,
    /// The body was the expected one (always true without an expectation).
    pub body_ok: bool,
    /// The server said `connection: close` (or spoke HTTP/1.0 without keep-alive).
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkCrlf(u8),
    Trailers,
    UntilClose,
}

/// Why a response could not be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// The parser of one connection's response stream.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    carry: Vec<u8>,
    status: u16,
    close: bool,
    /// The expected body (`--expect-body`).
    expect: Option<Box<[u8]>>,
    /// Bytes of the current body that matched `expect`.
    matched: usize,
    /// The current body differs from `expect`.
    mismatch: bool,
    /// The request was HEAD: responses carry no body.
    pub head_request: bool,
}

const MAX_LINE: usize = 64 * 1024;

/// What every response starts with.
const STATUS_PREFIX: &[u8] = b"HTTP/1.";

/// Offset of the first `\r\n\r\n` in `data` (memchr on `\n`, then a look-behind:
/// cheaper than a substring searcher for heads of a hundred bytes).
fn find_head_end(data: &[u8]) -> Option<usize> {
    let mut from = 3;
    while from < data.len() {
        let p = from + memchr::memchr(b'\n', &data[from..])?;
        if &data[p - 3..p] == b"\r\n\r" {
            return Some(p - 3);
        }
        from = p + 1;
    }
    None
}

/// Offset of the first `\r\n` in `data`.
fn find_crlf(data: &[u8]) -> Option<usize> {
    let mut from = 1;
    while from < data.len() {
        let p = from + memchr::memchr(b'\n', &data[from..])?;
        if data[p - 1] == b'\r' {
            return Some(p - 1);
        }
        from = p + 1;
    }
    None
}

impl ResponseParser {
    /// A parser; with `expect`, each body is compared with it as it arrives.
    pub fn new(expect: Option<&[u8]>) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            carry: Vec::new(),
            status: 0,
            close: false,
            expect: expect.map(Box::from),
            matched: 0,
            mismatch: false,
            head_request: false,
        }
    }

    /// Forgets any partial response (after a reconnect).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.carry.clear();
        self.matched = 0;
        self.mismatch = false;
    }

    /// Compares the next body bytes with the expectation; stores nothing.
    fn body_bytes(&mut self, data: &[u8]) {
        let Some(want) = self.expect.as_deref() else {
            return;
        };
        if self.mismatch {
            return;
        }
        let end = self.matched + data.len();
        if end > want.len() || want[self.matched..end] != *data {
            self.mismatch = true;
        } else {
            self.matched = end;
        }
    }

    /// Error unless the bytes of a head seen so far (`carry`, then `data`) can still
    /// begin `HTTP/1.`: garbage is refused at its first byte, not after 64 KiB.
    fn check_prefix(&self, data: &[u8]) -> Result<(), ParseError> {
        let seen = self.carry.len();
        if seen >= STATUS_PREFIX.len() {
            return Ok(());
        }
        let k = (STATUS_PREFIX.len() - seen).min(data.len());
        if data[..k] == STATUS_PREFIX[seen..seen + k] {
            return Ok(());
        }
        let end = data.len().min(32);
        Err(ParseError(format!(
            "not an HTTP/1.x response: {:?}",
            String::from_utf8_lossy(&data[..end])
        )))
    }

    /// Whether a response is partly received.
    pub fn in_progress(&self) -> bool {
        self.state != State::Head || !self.carry.is_empty()
    }

    fn finish(&mut self, out: &mut impl FnMut(Done)) {
        let body_ok = match self.expect.as_deref() {
            Some(want) => !self.mismatch && self.matched == want.len(),
            None => true,
        };
        out(Done {
            status: self.status,
            body_ok,
            close: self.close,
        });
        self.matched = 0;
        self.mismatch = false;
        self.state = State::Head;
    }

    /// The peer closed: a close-delimited body ends here. Error if a response was cut.
    pub fn eof(&mut self, out: &mut impl FnMut(Done)) -> Result<(), ParseError> {
        match self.state {
            State::UntilClose => {
                self.finish(out);
                Ok(())
            }
            State::Head if self.carry.is_empty() => Ok(()),
            _ => Err(ParseError(
                "connection closed in the middle of a response".into(),
            )),
        }
    }

    /// Consumes `data`, calling `out` for each completed response.
    pub fn feed(&mut self, mut data: &[u8], out: &mut impl FnMut(Done)) -> Result<(), ParseError> {
        while !data.is_empty() {
            match self.state {
                State::Head => {
                    self.check_prefix(data)?;
                    // Fast path: the whole head is in `data`; parse it in place.
                    if self.carry.is_empty() {
                        if let Some(p) = find_head_end(data) {
                            self.start_response(&data[..p + 4])?;
                            data = &data[p + 4..];
                            if self.state == State::Head && self.status >= 200 {
                                self.finish(out);
                            }
                            continue;
                        }
                    }
                    let Some(used) = self.take_line_block(data, b"\r\n\r\n")? else {
                        return Ok(());
                    };
                    data = &data[used..];
                    let head = std::mem::take(&mut self.carry);
                    self.start_response(&head)?;
                    if self.state == State::Head {
                        // 1xx: nothing to count; bodiless responses finish at once.
                        if self.status >= 200 {
                            self.finish(out);
                        }
                    }
                }
                State::Length(n) => {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                    self.body_bytes(&data[..k]);
                    data = &data[k..];
                    let left = n - k as u64;
                    if left == 0 {
                        self.finish(out);
                    } else {
                        self.state = State::Length(left);
                    }
                }
                State::ChunkSize => {
                    let Some(used) = self.take_line_block(data, b"\r\n")? else {
                        return Ok(());
                    };
                    data = &data[used..];
                    let line = std::mem::take(&mut self.carry);
                    let line = &line[..line.len() - 2];
                    let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| ParseError("bad chunk size".into()))?;
                    let size = u64::from_str_radix(hex.trim(), 16)
                        .map_err(|_| ParseError(format!("bad chunk size {hex:?}")))?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(n) => {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                    self.body_bytes(&data[..k]);
                    data = &data[k..];
                    let left = n - k as u64;
                    self.state = if left == 0 {
                        State::ChunkCrlf(2)
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::ChunkCrlf(n) => {
                    let want: &[u8] = if n == 2 { b"\r\n" } else { b"\n" };
                    let k = (n as usize).min(data.len());
                    if data[..k] != want[..k] {
                        return Err(ParseError("chunk data not followed by CRLF".into()));
                    }
                    data = &data[k..];
                    let left = n - k as u8;
                    self.state = if left == 0 {
                        State::ChunkSize
                    } else {
                        State::ChunkCrlf(left)
                    };
                }
                State::Trailers => {
                    let Some(used) = self.take_line_block(data, b"\r\n")? else {
                        return Ok(());
                    };
                    data = &data[used..];
                    let line = std::mem::take(&mut self.carry);
                    if line.len() == 2 {
                        self.finish(out);
                    }
                }
                State::UntilClose => {
                    self.body_bytes(data);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Appends to `carry` until it ends with `end`; returns how much of `data` was used
    /// once it does.
    fn take_line_block(&mut self, data: &[u8], end: &[u8]) -> Result<Option<usize>, ParseError> {
        let before = self.carry.len();
        let search_from = before.saturating_sub(end.len() - 1);
        self.carry.extend_from_slice(data);
        match self.carry[search_from..]
            .windows(end.len())
            .position(|w| w == end)
        {
            Some(p) => {
                let stop = search_from + p + end.len();
                self.carry.truncate(stop);
                Ok(Some(stop - before))
            }
            None if self.carry.len() > MAX_LINE => {
                Err(ParseError("response head or chunk line over 64 KiB".into()))
            }
            None => Ok(None),
        }
    }

    fn start_response(&mut self, head: &[u8]) -> Result<(), ParseError> {
        // Status line: HTTP/1.x SP NNN ...; headers as bytes, no allocation.
        let bad_status = || {
            let end = head.len().min(64);
            ParseError(format!(
                "not an HTTP/1.x status line: {:?}",
                String::from_utf8_lossy(&head[..end])
            ))
        };
        if head.len() < 12 || !head.starts_with(b"HTTP/1.") || head[8] != b' ' {
            return Err(bad_status());
        }
        let digits = &head[9..12];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad_status());
        }
        self.status = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        let mut length = None;
        let mut chunked = false;
        let mut close = head[7] == b'0';
        let first_end = find_crlf(head).unwrap_or(head.len());
        let mut rest = &head[(first_end + 2).min(head.len())..];
        while !rest.is_empty() {
            let end = find_crlf(rest).unwrap_or(rest.len());
            let line = &rest[..end];
            rest = &rest[(end + 2).min(rest.len())..];
            if line.is_empty() {
                continue;
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                return Err(ParseError(format!(
                    "bad header line {:?}",
                    String::from_utf8_lossy(line)
                )));
            };
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                    return Err(ParseError(format!(
                        "bad content-length {:?}",
                        String::from_utf8_lossy(value)
                    )));
                }
                length = Some(
                    value
                        .iter()
                        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
                );
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked =
                    value.len() >= 7 && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                let has = |token: &[u8]| {
                    value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
                };
                if has(b"close") {
                    close = true;
                } else if has(b"keep-alive") {
                    close = false;
                }
            }
        }
        self.close = close;
        self.matched = 0;
        self.mismatch = false;
        let bodiless =
            self.head_request || self.status < 200 || self.status == 204 || self.status == 304;
        self.state = if bodiless {
            State::Head
        } else if chunked {
            State::ChunkSize
        } else if let Some(n) = length {
            if n == 0 {
                State::Head
            } else {
                State::Length(n)
            }
        } else {
            self.close = true;
            State::UntilClose
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finders() {
        assert_eq!(find_head_end(b"ab\r\n\r\ncd"), Some(2));
        assert_eq!(find_head_end(b"\r\n\r\n"), Some(0));
        assert_eq!(find_head_end(b"\n\n\r\n\r"), None);
        assert_eq!(find_head_end(b"a\r\nb\r\n\r\n"), Some(4));
        assert_eq!(find_crlf(b"ab\ncd\r\n"), Some(5));
        assert_eq!(find_crlf(b"\r\n"), Some(0));
        assert_eq!(find_crlf(b"\n"), None);
    }

    fn all(parser: &mut ResponseParser, input: &[u8], step: usize) -> Vec<Done> {
        let mut got = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            parser.feed(chunk, &mut |d| got.push(d)).unwrap();
        }
        got
    }

    #[test]
    fn framing_at_every_split() {
        let stream = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        for step in [1, 2, 3, 7, 64, stream.len()] {
            let mut p = ResponseParser::new(None);
            let got = all(&mut p, stream, step);
            let summary: Vec<_> = got.iter().map(|d| (d.status, d.body_ok, d.close)).collect();
            assert_eq!(
                summary,
                vec![
                    (200, true, false),
                    (200, true, false),
                    (204, true, false),
                    (404, true, true)
                ],
                "step {step}"
            );
            // Compared as they arrive: only the chunked "abcde" matches, and the empty
            // bodies do not.
            let mut p = ResponseParser::new(Some(b"abcde"));
            let got = all(&mut p, stream, step);
            let ok: Vec<_> = got.iter().map(|d| d.body_ok).collect();
            assert_eq!(ok, vec![false, true, false, false], "step {step}");
            assert!(!p.in_progress());
        }
    }

    #[test]
    fn close_delimited_and_cut_responses() {
        let mut p = ResponseParser::new(Some(b"body"));
        let mut got = Vec::new();
        p.feed(b"HTTP/1.0 200 OK\r\n\r\nbody", &mut |d| got.push(d))
            .unwrap();
        assert!(got.is_empty());
        p.eof(&mut |d| got.push(d)).unwrap();
        assert!(got[0].body_ok);
        let mut p = ResponseParser::new(Some(b"bod"));
        let mut got = Vec::new();
        p.feed(b"HTTP/1.0 200 OK\r\n\r\nbody", &mut |d| got.push(d))
            .unwrap();
        p.eof(&mut |d| got.push(d)).unwrap();
        assert!(!got[0].body_ok, "a longer body is not the expected one");
        let mut p = ResponseParser::new(None);
        p.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            &mut |_| {},
        )
        .unwrap();
        assert!(p.eof(&mut |_| {}).is_err());
        assert!(ResponseParser::new(None)
            .feed(b"SSH-2.0\r\n\r\n", &mut |_| {})
            .is_err());
    }

    #[test]
    fn garbage_is_refused_at_its_first_wrong_byte() {
        // One byte is enough, even before a line ends.
        assert!(ResponseParser::new(None).feed(b"x", &mut |_| {}).is_err());
        // Split across reads: "HTT" then "X".
        let mut p = ResponseParser::new(None);
        p.feed(b"HTT", &mut |_| {}).unwrap();
        assert!(p.feed(b"X", &mut |_| {}).is_err());
        // After a whole response, the next one is checked too.
        let mut p = ResponseParser::new(None);
        let mut n = 0;
        let r = p.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\0\0",
            &mut |_| n += 1,
        );
        assert!(r.is_err() && n == 1);
    }

    #[test]
    fn endless_heads_are_refused_past_the_limit() {
        let mut p = ResponseParser::new(None);
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        p.feed(b"HTTP/1.1 200 OK\r\n", &mut |_| {}).unwrap();
        let mut fed = 0;
        let err = loop {
            if let Err(e) = p.feed(line, &mut |_| {}) {
                break e;
            }
            fed += line.len();
            assert!(fed <= 2 * MAX_LINE, "no error after {fed} bytes of head");
        };
        assert!(err.0.contains("64 KiB"), "{err:?}");
    }
}
