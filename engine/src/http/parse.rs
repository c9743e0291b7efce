//! Request parsing: the head ([`parse_head`], resumable with [`HeadScan`]) and chunked
//! bodies ([`ChunkedDecoder`]). Both keep their position between reads, so a request
//! arriving in many pieces costs a constant number of passes over each buffered byte
//! (`hostile.head-linear`, `hostile.chunked-linear`), and any split of the input parses
//! as the same request sent at once: the caller keeps the unparsed bytes, and the
//! state, and calls again when more arrive.

#[cfg(feature = "faults")]
use crate::faults::Fault;

use super::scan::{find_byte, has_ctl};

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
    /// Request target in origin form: the path and query (for an absolute-form target
    /// `http://host/p?q`, the `/p?q` part; empty when the URI has no path), or `*`.
    pub target: Span,
    /// The authority of an absolute-form target (it replaces Host, RFC 9112 §3.2.2).
    pub authority: Option<Span>,
    /// HTTP/1.x minor version.
    pub minor: u8,
    /// Bytes of the head, empty lines before the request line and the final CRLF CRLF
    /// included.
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
    /// 400: malformed request line, header or trailer, bad or conflicting framing, no
    /// Host.
    BadRequest,
    /// 414: request line over the header limit.
    UriTooLong,
    /// 431: header block (or head and trailers together) over the limit.
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
            ParseError::UriTooLong => 414,
            ParseError::HeaderTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::NotImplemented => 501,
        }
    }
}

/// Limits the parser enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest head (and the largest request line); a chunked body's trailers count
    /// against it together with the head.
    pub max_header_bytes: usize,
    /// Largest body.
    pub max_body_bytes: usize,
    /// The parser fault to imitate (negative controls), if any.
    #[cfg(feature = "faults")]
    pub fault: Option<Fault>,
}

impl Limits {
    /// Limits without a fault.
    pub fn new(max_header_bytes: usize, max_body_bytes: usize) -> Limits {
        Limits {
            max_header_bytes,
            max_body_bytes,
            #[cfg(feature = "faults")]
            fault: None,
        }
    }

    #[cfg(feature = "faults")]
    pub(crate) fn fault(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }

    /// Whether a body of `n` bytes is over the limit.
    fn body_over(&self, n: u64) -> bool {
        if fault!(self, BodyLimitOffByOne) {
            return n >= self.max_body_bytes as u64;
        }
        n > self.max_body_bytes as u64
    }
}

/// `TCHAR[b]`: whether `b` may appear in a token (RFC 9110 §5.6.2): a method, a field
/// name. A table, as it is asked for every byte of every name.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
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
            );
        i += 1;
    }
    t
};

fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Whether every byte of `bytes` is a [`is_tchar`] (no early exit: names are short,
/// and a loop without branches is cheaper than one that stops).
fn is_token(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & is_tchar(b))
}

/// A byte a field value or a chunk extension may not hold: a control other than HTAB
/// (NUL and a bare CR included), or DEL.
fn is_ctl(b: u8) -> bool {
    (b < b' ' && b != b'\t') || b == 0x7f
}

fn has_token(value: &[u8], token: &[u8], case_sensitive: bool) -> bool {
    value.split(|&b| b == b',').any(|t| {
        let t = t.trim_ascii();
        if case_sensitive {
            t == token
        } else {
            t.eq_ignore_ascii_case(token)
        }
    })
}

/// Where the search for the end of a head stopped: kept between reads of one request
/// (per connection), reset for the next. With it each buffered byte of a head is
/// searched once, however the head is split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadScan {
    /// Bytes of empty lines before the request line.
    skip: usize,
    /// Bytes searched without finding the end of the head.
    scanned: usize,
    /// Where the request line ends (its CR), once seen.
    line_end: Option<usize>,
}

/// Largest run of empty lines accepted before a request line.
const MAX_LEADING_EMPTY: usize = 1024;

impl HeadScan {
    /// Finds the end of the head in `buf` (one past its final CRLF CRLF), resuming
    /// where the last call on the same request stopped.
    fn find_end(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
        if self.scanned == 0 {
            while buf[self.skip..].starts_with(b"\r\n") {
                self.skip += 2;
                if self.skip > MAX_LEADING_EMPTY {
                    return Err(ParseError::BadRequest);
                }
            }
            if buf.len() - self.skip < 2 && buf[self.skip..].iter().all(|&b| b == b'\r') {
                return Ok(None);
            }
        }
        if fault!(limits, HeadRescan) {
            self.scanned = 0;
            self.line_end = None;
        }
        let mut i = self.scanned.max(self.skip);
        while let Some(off) = find_byte(&buf[i..], b'\n') {
            let p = i + off;
            if p > self.skip && buf[p - 1] == b'\r' {
                if self.line_end.is_none() {
                    self.line_end = Some(p - 1);
                }
                if p >= self.skip + 3 && &buf[p - 3..p - 1] == b"\r\n" {
                    return Ok(Some(p + 1));
                }
            }
            i = p + 1;
        }
        // Every LF before here was looked at (with the 3 bytes before it).
        self.scanned = buf.len();
        let line = match self.line_end {
            Some(e) => e - self.skip,
            // A last CR may end a line of exactly the limit.
            None => buf.len() - self.skip - usize::from(buf.ends_with(b"\r")),
        };
        if line > limits.max_header_bytes && !fault!(limits, RequestLineTooLongIs431) {
            return Err(ParseError::UriTooLong);
        }
        if buf.len() - self.skip > limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge);
        }
        Ok(None)
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, call again with more
/// bytes. On success `headers` holds the header spans (cleared first; reused across
/// calls so steady-state parsing does not allocate). A pure function of `buf`: the
/// engine calls [`parse_head_resume`] instead, which gives the same results.
pub fn parse_head(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
    limits: Limits,
) -> Result<Option<Head>, ParseError> {
    parse_head_resume(buf, headers, limits, &mut HeadScan::default())
}

/// [`parse_head`] resuming the search for the end of the head where `scan` says the
/// last call on the same request stopped (`scan` starts as `HeadScan::default()` for
/// each request, and `buf` starts with the request each time).
pub fn parse_head_resume(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
    limits: Limits,
    scan: &mut HeadScan,
) -> Result<Option<Head>, ParseError> {
    headers.clear();
    let Some(len) = scan.find_end(buf, &limits)? else {
        return Ok(None);
    };
    let skip = scan.skip;
    let line_end = scan.line_end.unwrap_or(len - 4);
    if line_end - skip > limits.max_header_bytes && !fault!(limits, RequestLineTooLongIs431) {
        return Err(ParseError::UriTooLong);
    }
    if len - skip > limits.max_header_bytes {
        return Err(ParseError::HeaderTooLarge);
    }
    let head = &buf[..len - 2];
    let (ls, le) = (skip, line_end);
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
    if method.is_empty() || !is_token(method) {
        return Err(ParseError::BadRequest);
    }
    if target.is_empty()
        || target
            .iter()
            .fold(false, |a, &b| a | (b <= b' ') | (b == 0x7f))
    {
        return Err(ParseError::BadRequest);
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return Err(ParseError::BadRequest),
    };
    let method_span = Span::new(ls, ls + sp1);
    let target_start = ls + sp1 + 1;
    let (target_span, authority) = request_target(target, target_start, method, &limits)?;

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut host = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let case_sensitive = fault!(limits, ConnectionCaseSensitive);
    let mut lines = LineIter {
        buf: head,
        pos: le + 2,
    };
    for (s, e) in &mut lines {
        let (name, value) = field_line(buf, s, e)?;
        let mut span = HeaderSpan {
            name: Span::new(s, s + name.len()),
            value,
        };
        let value = value.of(buf);
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
            if fault!(limits, ChunkedNotFinal) && has_token(value, b"chunked", false) {
                // The bug: any `chunked` token frames the body as chunked.
            } else if chunked
                || (!last.eq_ignore_ascii_case(b"chunked")
                    && !fault!(limits, UnknownCodingAsChunked))
            {
                return Err(ParseError::BadRequest);
            } else if codings.any(|c| !c.is_empty()) {
                return Err(ParseError::NotImplemented);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            if host {
                return Err(ParseError::BadRequest);
            }
            host = true;
            if let Some(a) = authority {
                span.value = a;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= has_token(value, b"close", case_sensitive);
            conn_keep_alive |= has_token(value, b"keep-alive", case_sensitive);
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
        headers.push(span);
    }
    if minor == 1 && !host {
        return Err(ParseError::BadRequest);
    }
    #[cfg(feature = "faults")]
    if limits.fault(Fault::ContentLengthWins) && content_length.is_some() {
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
        if limits.body_over(n) {
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
        authority,
        minor,
        len,
        body,
        keep_alive,
        connection_close: conn_close,
        expect_continue,
    }))
}

/// The origin-form part of a request target starting at `start`, and the authority of
/// an absolute-form one (RFC 9112 §3.2): `*` only with OPTIONS.
fn request_target(
    target: &[u8],
    start: usize,
    method: &[u8],
    limits: &Limits,
) -> Result<(Span, Option<Span>), ParseError> {
    let whole = Span::new(start, start + target.len());
    if fault!(limits, WholeUriRouting) {
        return Ok((whole, None));
    }
    if target == b"*" {
        if method != b"OPTIONS" {
            return Err(ParseError::BadRequest);
        }
        return Ok((whole, None));
    }
    let scheme_len = target
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .unwrap_or(target.len());
    if target.first().is_some_and(u8::is_ascii_alphabetic)
        && target[scheme_len..].starts_with(b"://")
    {
        let auth_start = scheme_len + 3;
        let auth_len = target[auth_start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?' || b == b'#')
            .unwrap_or(target.len() - auth_start);
        if auth_len == 0 {
            return Err(ParseError::BadRequest);
        }
        let path_start = start + auth_start + auth_len;
        let authority = Span::new(start + auth_start, path_start);
        return Ok((Span::new(path_start, start + target.len()), Some(authority)));
    }
    Ok((whole, None))
}

/// One `name: value` field line of a head or a trailer section (`buf[s..e]`, without
/// its CRLF): the name, and the value's span without surrounding whitespace.
#[inline]
fn field_line(buf: &[u8], s: usize, e: usize) -> Result<(&[u8], Span), ParseError> {
    let l = &buf[s..e];
    let colon = find_byte(l, b':').ok_or(ParseError::BadRequest)?;
    let name = &l[..colon];
    if name.is_empty() || !is_token(name) {
        return Err(ParseError::BadRequest);
    }
    let raw = &l[colon + 1..];
    let (mut a, mut b) = (0, raw.len());
    while a < b && matches!(raw[a], b' ' | b'\t') {
        a += 1;
    }
    while b > a && matches!(raw[b - 1], b' ' | b'\t') {
        b -= 1;
    }
    let (lead, value) = (a, &raw[a..b]);
    if has_ctl(value) {
        return Err(ParseError::BadRequest);
    }
    let vs = s + colon + 1 + lead;
    Ok((name, Span::new(vs, vs + value.len())))
}

/// Longest chunk-size line accepted (extensions included).
const MAX_CHUNK_LINE: usize = 4096;

/// Where decoding a chunked body stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty line.
    Trailers,
}

/// The body being decoded, and where the decoded bytes go.
enum Body<'a> {
    /// Decoded bytes are moved to the front of the body buffer (they never overtake
    /// the input: every chunk is preceded by its size line).
    InPlace(&'a mut [u8]),
    /// Decoded bytes are appended to the vector; the input is left as it is.
    Append(&'a [u8], &'a mut Vec<u8>),
}

impl Body<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::InPlace(b) => b,
            Body::Append(b, _) => b,
        }
    }
}

/// A chunked body decoder that keeps its state between reads (per connection, reset
/// per request), so each buffered byte is examined once whatever the chunk sizes and
/// read boundaries. Chunk extensions are checked for control bytes and ignored;
/// trailers are held to the header grammar, counted against the header limit
/// together with the head, and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Next input byte to examine, from the start of the body.
    pos: usize,
    /// Where the current size or trailer line starts.
    line_start: usize,
    /// Decoded bytes so far.
    decoded: usize,
    /// Bytes of trailer lines so far (CRLFs included).
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// Decoded bytes so far (with [`decode_in_place`](Self::decode_in_place) they are
    /// the first bytes of the body buffer).
    pub fn decoded(&self) -> usize {
        self.decoded
    }

    /// Decodes more of the chunked body at the start of `body` (the same body as the
    /// last call, with more bytes after), moving the decoded bytes to its front:
    /// `Ok(Some(n))`: complete, `n` input bytes used (last chunk and trailers included)
    /// and `body[..self.decoded()]` is the body; `Ok(None)`: call again with more.
    /// `head_len` is the head's size: trailers and head together must fit
    /// `max_header_bytes`.
    pub fn decode_in_place(
        &mut self,
        body: &mut [u8],
        limits: &Limits,
        head_len: usize,
    ) -> Result<Option<usize>, ParseError> {
        self.run(Body::InPlace(body), limits, head_len)
    }

    /// Like [`decode_in_place`](Self::decode_in_place), appending the decoded bytes to
    /// `out` and leaving `body` as it is.
    pub fn decode_into(
        &mut self,
        body: &[u8],
        out: &mut Vec<u8>,
        limits: &Limits,
        head_len: usize,
    ) -> Result<Option<usize>, ParseError> {
        self.run(Body::Append(body, out), limits, head_len)
    }

    fn run(
        &mut self,
        mut body: Body<'_>,
        limits: &Limits,
        head_len: usize,
    ) -> Result<Option<usize>, ParseError> {
        let unlimited_trailers = fault!(limits, UnlimitedTrailers);
        loop {
            let buf = body.bytes();
            match self.state {
                ChunkState::Data(left) => {
                    let take = (left.min((buf.len() - self.pos) as u64)) as usize;
                    if take == 0 {
                        return Ok(None);
                    }
                    let from = self.pos..self.pos + take;
                    match &mut body {
                        Body::InPlace(b) => b.copy_within(from, self.decoded),
                        Body::Append(b, out) => out.extend_from_slice(&b[from]),
                    }
                    self.pos += take;
                    self.decoded += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    let have = &buf[self.pos..buf.len().min(self.pos + 2)];
                    if !b"\r\n".starts_with(have) {
                        return Err(ParseError::BadRequest);
                    }
                    if have.len() < 2 {
                        return Ok(None);
                    }
                    self.pos += 2;
                    self.line_start = self.pos;
                    self.state = ChunkState::Size;
                }
                ChunkState::Size | ChunkState::Trailers => {
                    let trailers = self.state == ChunkState::Trailers;
                    let found = buf[self.pos..].iter().position(|&b| b == b'\n');
                    let Some(off) = found else {
                        self.pos = buf.len();
                        let partial = buf.len() - self.line_start;
                        if !trailers && partial > MAX_CHUNK_LINE + 1 {
                            return Err(ParseError::BadRequest);
                        }
                        if trailers
                            && !unlimited_trailers
                            && head_len + self.trailer_bytes + partial > limits.max_header_bytes
                        {
                            return Err(ParseError::HeaderTooLarge);
                        }
                        return Ok(None);
                    };
                    let lf = self.pos + off;
                    let start = self.line_start;
                    if lf == start || buf[lf - 1] != b'\r' {
                        // A bare LF ends no line.
                        return Err(ParseError::BadRequest);
                    }
                    let end = lf - 1;
                    self.pos = lf + 1;
                    self.line_start = self.pos;
                    if !trailers {
                        if end - start > MAX_CHUNK_LINE {
                            return Err(ParseError::BadRequest);
                        }
                        let size = chunk_size(&buf[start..end], limits)?;
                        if size == 0 {
                            self.state = ChunkState::Trailers;
                            continue;
                        }
                        if limits.body_over((self.decoded as u64).saturating_add(size)) {
                            return Err(ParseError::BodyTooLarge);
                        }
                        self.state = ChunkState::Data(size);
                        continue;
                    }
                    if end == start {
                        return Ok(Some(self.pos));
                    }
                    self.trailer_bytes += end - start + 2;
                    if unlimited_trailers {
                        continue;
                    }
                    if head_len + self.trailer_bytes > limits.max_header_bytes {
                        return Err(ParseError::HeaderTooLarge);
                    }
                    field_line(buf, start, end)?;
                }
            }
        }
    }
}

/// The size of a chunk-size line: `1*HEXDIG`, optional whitespace, then nothing or
/// `;` and extensions without control bytes. A size that does not fit in 64 bits is
/// refused, never wrapped.
fn chunk_size(line: &[u8], limits: &Limits) -> Result<u64, ParseError> {
    if line.iter().any(|&b| is_ctl(b)) {
        return Err(ParseError::BadRequest);
    }
    let mut line = line;
    if fault!(limits, ChunkSizeSign) {
        // The bug: a number parse that takes an optional sign (`from_str_radix`).
        line = line.strip_prefix(b"+").unwrap_or(line);
    }
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    if digits == 0 || !(rest.is_empty() || rest[0] == b';') {
        return Err(ParseError::BadRequest);
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0);
        size = if fault!(limits, ChunkSizeWraps) {
            size.wrapping_mul(16).wrapping_add(u64::from(d))
        } else {
            size.checked_mul(16)
                .and_then(|s| s.checked_add(u64::from(d)))
                .ok_or(ParseError::BadRequest)?
        };
    }
    Ok(size)
}

/// Decodes a whole chunked body at the start of `buf` into `out` (cleared first), the
/// trailers alone held to `max_header_bytes`. `Ok(Some(n))`: complete, `n` bytes of
/// `buf` used (last chunk and trailers included); `Ok(None)`: incomplete. A pure
/// function of `buf`: any split of the input decodes the same (the engine resumes
/// with a [`ChunkedDecoder`] instead).
pub fn decode_chunked(
    buf: &[u8],
    out: &mut Vec<u8>,
    limits: Limits,
) -> Result<Option<usize>, ParseError> {
    out.clear();
    ChunkedDecoder::default().decode_into(buf, out, &limits, 0)
}

/// How far an unfinished request was parsed: kept per connection between reads and
/// reset for each request, so neither its head nor its body is parsed again from its
/// start when more bytes arrive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestProgress {
    /// The search for the end of the head.
    pub scan: HeadScan,
    /// The head, once parsed (its body is still arriving).
    pub head: Option<Head>,
    /// The chunked body decoder.
    pub chunked: ChunkedDecoder,
}

/// CRLF-separated lines of a head (without the final empty line).
struct LineIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for LineIter<'_> {
    type Item = (usize, usize);
    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        // The first CRLF: an LF with a CR before it, both in this line.
        let mut i = start;
        let end = loop {
            let p = i + find_byte(&self.buf[i..], b'\n')?;
            if p > start && self.buf[p - 1] == b'\r' {
                break p - 1;
            }
            i = p + 1;
        };
        self.pos = end + 2;
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 1024,
        max_body_bytes: 100,
        #[cfg(feature = "faults")]
        fault: None,
    };

    fn body_limit(max_body_bytes: usize) -> Limits {
        Limits {
            max_body_bytes,
            ..LIMITS
        }
    }

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
                decode_chunked(&body[..cut], &mut out, LIMITS),
                Ok(None),
                "cut {cut}"
            );
        }
        assert_eq!(
            decode_chunked(body, &mut out, LIMITS),
            Ok(Some(body.len() - 4))
        );
        assert_eq!(out, b"hello 0123456789");
        assert_eq!(
            decode_chunked(body, &mut out, body_limit(10)),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            decode_chunked(b"zz\r\n", &mut out, body_limit(10)),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            decode_chunked(b"1\r\nab\r\n", &mut out, body_limit(10)),
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
        assert_eq!(parse(&[b'a'; 2000]), Err(ParseError::UriTooLong));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
    }

    #[test]
    fn chunk_size_grammar() {
        let dec = |b: &[u8]| decode_chunked(b, &mut Vec::new(), LIMITS);
        assert_eq!(dec(b"5\r\nhello\r\n0\r\n\r\n"), Ok(Some(15)));
        assert_eq!(dec(b"5 ;x=y\r\nhello\r\n0\r\n\r\n"), Ok(Some(20)));
        assert_eq!(dec(b"0005\r\nhello\r\n0\r\n\r\n"), Ok(Some(18)));
        for bad in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5;a\0b\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            // 17 hex digits: over 64 bits, never wrapped to 5.
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                dec(bad),
                Err(ParseError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // 16 hex digits fit in 64 bits and are over the limit.
        assert_eq!(dec(b"fffffffffffffff0\r\n"), Err(ParseError::BodyTooLarge));
    }

    #[test]
    fn bodies_of_exactly_the_limit_are_taken() {
        let cl = |n: usize| {
            parse(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n").as_bytes())
        };
        assert!(matches!(cl(100), Ok(Some(_))));
        assert_eq!(cl(101), Err(ParseError::BodyTooLarge));
        let chunked = |n: usize| {
            let mut b = format!("{n:x}\r\n").into_bytes();
            b.extend(std::iter::repeat_n(b'a', n));
            b.extend_from_slice(b"\r\n0\r\n\r\n");
            decode_chunked(&b, &mut Vec::new(), LIMITS).map(|r| r.is_some())
        };
        assert_eq!(chunked(100), Ok(true));
        assert_eq!(chunked(101), Err(ParseError::BodyTooLarge));
    }

    #[test]
    fn trailers_follow_the_header_grammar_and_limit() {
        let dec = |t: &[u8]| {
            let mut b = b"1\r\na\r\n0\r\n".to_vec();
            b.extend_from_slice(t);
            decode_chunked(&b, &mut Vec::new(), LIMITS)
        };
        assert_eq!(dec(b"X-T: 1\r\nY: \r\n\r\n"), Ok(Some(24)));
        for bad in [
            &b"no colon\r\n\r\n"[..],
            b"X: a\0b\r\n\r\n",
            b"X: a\rb\r\n\r\n",
            b" X: a\r\n\r\n",
            b"X\n\r\n",
        ] {
            assert_eq!(
                dec(bad),
                Err(ParseError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!("X: {}\r\n\r\n", "a".repeat(1100));
        assert_eq!(dec(big.as_bytes()), Err(ParseError::HeaderTooLarge));
        // Without the end of the line yet: refused as soon as it is over the limit.
        assert_eq!(
            dec(&big.as_bytes()[..1050]),
            Err(ParseError::HeaderTooLarge)
        );
        // The head counts too.
        let mut d = ChunkedDecoder::default();
        let mut b = b"1\r\na\r\n0\r\nX: 12345678\r\n\r\n".to_vec();
        assert_eq!(
            d.decode_in_place(&mut b, &LIMITS, 1015),
            Err(ParseError::HeaderTooLarge)
        );
    }

    #[test]
    fn in_place_decoding_resumes_at_every_split() {
        let body = b"5;e=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..body.len() {
            let mut d = ChunkedDecoder::default();
            let mut buf = body[..cut].to_vec();
            assert_eq!(
                d.decode_in_place(&mut buf, &LIMITS, 0),
                Ok(None),
                "cut {cut}"
            );
            buf.extend_from_slice(&body[cut..]);
            assert_eq!(
                d.decode_in_place(&mut buf, &LIMITS, 0),
                Ok(Some(body.len())),
                "cut {cut}"
            );
            assert_eq!(&buf[..d.decoded()], b"hello 0123456789", "cut {cut}");
        }
    }

    #[test]
    fn head_search_resumes() {
        let req = b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut scan = HeadScan::default();
        let mut hs = Vec::new();
        for k in 0..req.len() {
            assert_eq!(
                parse_head_resume(&req[..k], &mut hs, LIMITS, &mut scan),
                Ok(None),
                "{k}"
            );
        }
        let h = parse_head_resume(req, &mut hs, LIMITS, &mut scan)
            .unwrap()
            .unwrap();
        assert_eq!(h.len, req.len());
        assert_eq!(h.target.of(req), b"/a");
        assert_eq!(hs.len(), 1);
    }

    #[test]
    fn request_targets() {
        let req = b"GET http://other:81/worker?x HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut hs = Vec::new();
        let h = parse_head(req, &mut hs, LIMITS).unwrap().unwrap();
        assert_eq!(h.target.of(req), b"/worker?x");
        assert_eq!(h.authority.map(|a| a.of(req)), Some(&b"other:81"[..]));
        assert_eq!(hs[0].value.of(req), b"other:81");
        assert!(parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .is_some());
        assert_eq!(
            parse(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        assert_eq!(
            parse(b"GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(ParseError::BadRequest)
        );
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(1100));
        assert_eq!(parse(long.as_bytes()), Err(ParseError::UriTooLong));
        assert_eq!(parse(&long.as_bytes()[..1050]), Err(ParseError::UriTooLong));
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(1100)
        );
        assert_eq!(parse(big.as_bytes()), Err(ParseError::HeaderTooLarge));
    }

    #[test]
    fn connection_options_are_case_insensitive() {
        let h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n");
        assert!(!h.unwrap().unwrap().keep_alive);
        let h = parse(b"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n");
        assert!(h.unwrap().unwrap().keep_alive);
    }
}
