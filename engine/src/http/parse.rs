//! Request head parsing. The parser is a pure function of the bytes buffered so far, so
//! a request split at any byte parses exactly as the same request sent at once: the
//! caller keeps unparsed bytes and calls again when more arrive.

/// A byte range into the connection's input buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    /// The bytes of this span in `buf`.
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// A header's name and value spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSpan {
    /// Name (as sent).
    pub name: Span,
    /// Value, without surrounding whitespace.
    pub value: Span,
}

/// A parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Method.
    pub method: Span,
    /// Request target.
    pub target: Span,
    /// HTTP/1.x minor version.
    pub minor: u8,
    /// Bytes of the head, final CRLF CRLF included.
    pub len: usize,
    /// Declared body length (0 when none).
    pub content_length: u64,
    /// Whether the connection stays open after this request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// 400: malformed request line or header, bad or conflicting framing, no Host.
    BadRequest,
    /// 431: header block over the limit.
    HeaderTooLarge,
    /// 413: declared body over the limit.
    BodyTooLarge,
    /// 501: a transfer coding this engine does not decode.
    NotImplemented,
}

impl ParseError {
    /// The status code that answers it.
    pub fn status(self) -> u16 {
        match self {
            ParseError::BadRequest => 400,
            ParseError::HeaderTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::NotImplemented => 501,
        }
    }
}

/// Limits the parser enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest head.
    pub max_header_bytes: usize,
    /// Largest body.
    pub max_body_bytes: usize,
}

fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, call again with more
/// bytes. On success `headers` holds the header spans (cleared first; reused across
/// calls so steady-state parsing does not allocate).
pub fn parse_head(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
    limits: Limits,
) -> Result<Option<Head>, ParseError> {
    headers.clear();
    let Some(len) = find_head_end(buf) else {
        if buf.len() > limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge);
        }
        return Ok(None);
    };
    if len > limits.max_header_bytes {
        return Err(ParseError::HeaderTooLarge);
    }
    let head = &buf[..len - 2];
    let mut lines = LineIter { buf: head, pos: 0 };
    let (ls, le) = lines.next().ok_or(ParseError::BadRequest)?;
    let line = &buf[ls..le];

    // method SP target SP HTTP/1.x
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadRequest)?;
    let rest = &line[sp1 + 1..];
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadRequest)?;
    let method = &line[..sp1];
    let target = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadRequest);
    }
    if target.is_empty() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadRequest);
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return Err(ParseError::BadRequest),
    };
    let method_span = Span::new(ls, ls + sp1);
    let target_span = Span::new(ls + sp1 + 1, ls + sp1 + 1 + sp2);

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut host = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    for (s, e) in lines {
        let l = &buf[s..e];
        let colon = l
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadRequest)?;
        let name = &l[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ParseError::BadRequest);
        }
        let raw = &l[colon + 1..];
        let lead = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let trail = raw[lead..]
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let value = &raw[lead..raw.len() - trail];
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(ParseError::BadRequest);
        }
        let vs = s + colon + 1 + lead;
        headers.push(HeaderSpan {
            name: Span::new(s, s + colon),
            value: Span::new(vs, vs + value.len()),
        });
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 19 {
                return Err(ParseError::BadRequest);
            }
            let n: u64 = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(ParseError::BadRequest)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(ParseError::BadRequest);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            if host {
                return Err(ParseError::BadRequest);
            }
            host = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= has_token(value, b"close");
            conn_keep_alive |= has_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if minor == 1 && !host {
        return Err(ParseError::BadRequest);
    }
    if chunked {
        // Transfer-Encoding with Content-Length is refused outright: no smuggling.
        if content_length.is_some() {
            return Err(ParseError::BadRequest);
        }
        return Err(ParseError::NotImplemented);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > limits.max_body_bytes as u64 {
        return Err(ParseError::BodyTooLarge);
    }
    let keep_alive = if minor == 1 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    Ok(Some(Head {
        method: method_span,
        target: target_span,
        minor,
        len,
        content_length,
        keep_alive,
        expect_continue,
    }))
}

/// CRLF-separated lines of a head (without the final empty line).
struct LineIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for LineIter<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let rel = self.buf[start..].windows(2).position(|w| w == b"\r\n")?;
        self.pos = start + rel + 2;
        Some((start, start + rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 1024,
        max_body_bytes: 100,
    };

    fn parse(s: &[u8]) -> Result<Option<Head>, ParseError> {
        parse_head(s, &mut Vec::new(), LIMITS)
    }

    #[test]
    fn simple_get_at_every_split_is_partial_then_complete() {
        let req = b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse(&req[..cut]), Ok(None), "cut {cut}");
        }
        let mut hs = Vec::new();
        let h = parse_head(req, &mut hs, LIMITS).unwrap().unwrap();
        assert_eq!(h.method.of(req), b"GET");
        assert_eq!(h.target.of(req), b"/a?b");
        assert_eq!(h.len, req.len());
        assert!(h.keep_alive);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].value.of(req), b"z");
    }

    #[test]
    fn keep_alive_rules() {
        let close = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(!close.unwrap().unwrap().keep_alive);
        let old = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!old.keep_alive);
        let old_ka = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(old_ka.unwrap().unwrap().keep_alive);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            parse(b"GET /\r\nHost: x\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        assert_eq!(parse(&[b'a'; 2000]), Err(ParseError::HeaderTooLarge));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
    }
}
