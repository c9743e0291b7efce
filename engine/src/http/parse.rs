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
    /// How the body is framed.
    pub body: BodyKind,
    /// Whether the connection stays open after this request.
    pub keep_alive: bool,
    /// The request carried `Connection: close`.
    pub connection_close: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `Content-Length` bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
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
    /// The `content-length-wins` fault: frame by Content-Length when
    /// Transfer-Encoding is present too (request smuggling).
    #[cfg(feature = "faults")]
    pub content_length_wins: bool,
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
            // The final coding must be chunked (RFC 9112 6.3); codings before it would
            // need decoding this engine does not do.
            let mut codings = value.split(|&b| b == b',').map(<[u8]>::trim_ascii);
            let last = codings.next_back().unwrap_or(b"");
            if chunked || !last.eq_ignore_ascii_case(b"chunked") {
                return Err(ParseError::BadRequest);
            }
            if codings.any(|c| !c.is_empty()) {
                return Err(ParseError::NotImplemented);
            }
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
    #[cfg(feature = "faults")]
    if limits.content_length_wins && content_length.is_some() {
        chunked = false;
    }
    let body = if chunked {
        // Transfer-Encoding with Content-Length is refused outright: no smuggling.
        if content_length.is_some() {
            return Err(ParseError::BadRequest);
        }
        BodyKind::Chunked
    } else {
        let n = content_length.unwrap_or(0);
        if n > limits.max_body_bytes as u64 {
            return Err(ParseError::BodyTooLarge);
        }
        BodyKind::Length(n)
    };
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
        body,
        keep_alive,
        connection_close: conn_close,
        expect_continue,
    }))
}

/// Longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Decodes a chunked body at the start of `buf` into `out` (cleared first).
/// `Ok(Some(n))`: complete, `n` bytes of `buf` used (last chunk and trailers included);
/// `Ok(None)`: incomplete, call again with more bytes. Chunk extensions are ignored and
/// trailers skipped. Like [`parse_head`] it is a function of the bytes alone, so any
/// split of the input decodes the same.
pub fn decode_chunked(
    buf: &[u8],
    out: &mut Vec<u8>,
    max_body: usize,
) -> Result<Option<usize>, ParseError> {
    out.clear();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..], MAX_CHUNK_LINE)? else {
            return Ok(None);
        };
        let line = &buf[pos..pos + line_end];
        let size_field = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        if size_field.is_empty() || size_field.len() > 15 {
            return Err(ParseError::BadRequest);
        }
        let mut size: usize = 0;
        for &b in size_field {
            let d = (b as char).to_digit(16).ok_or(ParseError::BadRequest)?;
            size = size * 16 + d as usize;
        }
        pos += line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(t_end) = find_crlf(&buf[pos..], MAX_CHUNK_LINE)? else {
                    return Ok(None);
                };
                pos += t_end + 2;
                if t_end == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if out.len() + size > max_body {
            return Err(ParseError::BodyTooLarge);
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Err(ParseError::BadRequest);
        }
        pos += 2;
    }
}

/// Position of the first CRLF in `buf`, refusing lines longer than `max`.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, ParseError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(p) if p > max => Err(ParseError::BadRequest),
        Some(p) => Ok(Some(p)),
        // `max + 1` bytes may still end in the CR of a line of exactly `max`: wait.
        None if buf.len() > max + 1 => Err(ParseError::BadRequest),
        None => Ok(None),
    }
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
        #[cfg(feature = "faults")]
        content_length_wins: false,
    };

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = parse(req).unwrap().unwrap();
        assert_eq!(head.body, BodyKind::Chunked);
        let body =
            b"5;name=val\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let mut out = Vec::new();
        for cut in 0..body.len() - 4 {
            assert_eq!(
                decode_chunked(&body[..cut], &mut out, 100),
                Ok(None),
                "cut {cut}"
            );
        }
        assert_eq!(
            decode_chunked(body, &mut out, 100),
            Ok(Some(body.len() - 4))
        );
        assert_eq!(out, b"hello 0123456789");
        assert_eq!(
            decode_chunked(body, &mut out, 10),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            decode_chunked(b"zz\r\n", &mut out, 10),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            decode_chunked(b"1\r\nab\r\n", &mut out, 10),
            Err(ParseError::BadRequest)
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |v: &str| {
            parse(
                format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n\r\n").as_bytes(),
            )
        };
        assert_eq!(te("Chunked").unwrap().unwrap().body, BodyKind::Chunked);
        assert_eq!(te("gzip, chunked"), Err(ParseError::NotImplemented));
        assert_eq!(te("chunked, gzip"), Err(ParseError::BadRequest));
        assert_eq!(te("identity"), Err(ParseError::BadRequest));
    }

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
