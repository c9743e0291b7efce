//! Incremental HTTP/1.1 response framing: Content-Length, chunked (extensions and
//! trailers), close-delimited, bodiless statuses and HEAD. Bodies are counted, not
//! stored, unless capture is on (`--expect-body`).

/// A completed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Status code.
    pub status: u16,
    /// The body when capturing, else empty.
    pub body: Vec<u8>,
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
    capture: bool,
    body: Vec<u8>,
    /// The request was HEAD: responses carry no body.
    pub head_request: bool,
}

const MAX_LINE: usize = 64 * 1024;

impl ResponseParser {
    /// A parser; `capture` keeps bodies.
    pub fn new(capture: bool) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            carry: Vec::new(),
            status: 0,
            close: false,
            capture,
            body: Vec::new(),
            head_request: false,
        }
    }

    /// Forgets any partial response (after a reconnect).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.carry.clear();
        self.body.clear();
    }

    /// Whether a response is partly received.
    pub fn in_progress(&self) -> bool {
        self.state != State::Head || !self.carry.is_empty()
    }

    fn finish(&mut self, out: &mut impl FnMut(Done)) {
        let body = if self.capture {
            std::mem::take(&mut self.body)
        } else {
            Vec::new()
        };
        out(Done {
            status: self.status,
            body,
            close: self.close,
        });
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
                    let k = (n as usize).min(data.len());
                    if self.capture {
                        self.body.extend_from_slice(&data[..k]);
                    }
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
                    let k = (n as usize).min(data.len());
                    if self.capture {
                        self.body.extend_from_slice(&data[..k]);
                    }
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
                    if self.capture {
                        self.body.extend_from_slice(data);
                    }
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
        let text = std::str::from_utf8(head)
            .map_err(|_| ParseError("response head is not UTF-8".into()))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(ParseError(format!(
                "not an HTTP/1.x status line: {status_line:?}"
            )));
        }
        self.status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError(format!("bad status line {status_line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        for l in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = l.split_once(':') else {
                return Err(ParseError(format!("bad header line {l:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| ParseError(format!("bad content-length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
        }
        self.close = close;
        self.body.clear();
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
            let mut p = ResponseParser::new(true);
            let got = all(&mut p, stream, step);
            let summary: Vec<_> = got
                .iter()
                .map(|d| (d.status, d.body.clone(), d.close))
                .collect();
            assert_eq!(
                summary,
                vec![
                    (200, b"hello".to_vec(), false),
                    (200, b"abcde".to_vec(), false),
                    (204, vec![], false),
                    (404, vec![], true)
                ],
                "step {step}"
            );
            assert!(!p.in_progress());
        }
    }

    #[test]
    fn close_delimited_and_cut_responses() {
        let mut p = ResponseParser::new(true);
        let mut got = Vec::new();
        p.feed(b"HTTP/1.0 200 OK\r\n\r\nbody", &mut |d| got.push(d))
            .unwrap();
        assert!(got.is_empty());
        p.eof(&mut |d| got.push(d)).unwrap();
        assert_eq!(got[0].body, b"body");
        let mut p = ResponseParser::new(false);
        p.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            &mut |_| {},
        )
        .unwrap();
        assert!(p.eof(&mut |_| {}).is_err());
        assert!(ResponseParser::new(false)
            .feed(b"SSH-2.0\r\n\r\n", &mut |_| {})
            .is_err());
    }
}
