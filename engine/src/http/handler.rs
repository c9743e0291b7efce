//! What a handler sees ([`Request`]) and writes ([`Response`]).

use super::parse::{Head, HeaderSpan};

/// The application's request handler. Runs on the worker thread that owns the
/// connection; a slow handler delays that worker only.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: &Request<'_>, res: &mut Response);
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, &mut Response) + Send + Sync + 'static,
{
    fn handle(&self, req: &Request<'_>, res: &mut Response) {
        self(req, res)
    }
}

/// A parsed request, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) head: &'a Head,
    pub(crate) headers: &'a [HeaderSpan],
    pub(crate) body: &'a [u8],
    pub(crate) worker: usize,
}

impl<'a> Request<'a> {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        std::str::from_utf8(self.head.method.of(self.buf)).unwrap_or("")
    }
    /// The request target in origin form, e.g. `/a?b=1`: for an absolute-form target
    /// (`http://host/a?b=1`) its path and query (`/` when it has no path); `*` for an
    /// asterisk-form `OPTIONS`.
    pub fn target(&self) -> &'a [u8] {
        match self.head.target.of(self.buf) {
            b"" => b"/",
            t => t,
        }
    }
    /// The target's path (before `?`).
    pub fn path(&self) -> &'a [u8] {
        let t = self.target();
        t.split(|&b| b == b'?').next().unwrap_or(t)
    }
    /// The target's query (after `?`), if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        let t = self.target();
        t.iter().position(|&b| b == b'?').map(|p| &t[p + 1..])
    }
    /// HTTP/1.x minor version.
    pub fn version_minor(&self) -> u8 {
        self.head.minor
    }
    /// The first header named `name` (case-insensitive). The authority of an
    /// absolute-form target replaces `host`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
            .or_else(|| {
                let authority = self.head.authority?;
                name.eq_ignore_ascii_case("host")
                    .then(|| authority.of(self.buf))
            })
    }
    /// Every header, in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let buf = self.buf;
        self.headers
            .iter()
            .map(move |h| (h.name.of(buf), h.value.of(buf)))
    }
    /// The body (empty when none).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// Index of the worker running the handler.
    pub fn worker(&self) -> usize {
        self.worker
    }
    /// Whether the connection stays open after this request.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }
}

/// Produces a streamed body piece by piece (see [`Response::stream`]).
pub type BodySource = Box<dyn FnMut(&mut Vec<u8>) + Send>;

/// The response a handler fills. Reused across requests (no allocation in steady
/// state); the engine adds `date`, `content-length` and `connection`.
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) close: bool,
    pub(crate) stream: Option<(u64, BodySource)>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("close", &self.close)
            .field("stream_len", &self.stream.as_ref().map(|(n, _)| *n))
            .finish_non_exhaustive()
    }
}

impl Default for Response {
    fn default() -> Self {
        Response {
            status: 200,
            headers: Vec::with_capacity(256),
            body: Vec::with_capacity(1024),
            close: false,
            stream: None,
        }
    }
}

impl Response {
    pub(crate) fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
        self.close = false;
        self.stream = None;
    }

    /// The body's length as announced in `content-length`.
    pub(crate) fn body_len(&self) -> u64 {
        match &self.stream {
            Some((len, _)) => *len,
            None => self.body.len() as u64,
        }
    }
    /// Sets the status code (default 200).
    pub fn status(&mut self, code: u16) -> &mut Self {
        self.status = code;
        self
    }
    /// Adds a header. CR and LF in either part are dropped (no response splitting).
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        // CR and LF are dropped; the common case has none and is copied whole.
        fn push_clean(out: &mut Vec<u8>, bytes: &[u8]) {
            if super::scan::has_cr_or_lf(bytes) {
                out.extend(bytes.iter().filter(|b| **b != b'\r' && **b != b'\n'));
            } else {
                out.extend_from_slice(bytes);
            }
        }
        push_clean(&mut self.headers, name.as_bytes());
        self.headers.extend_from_slice(b": ");
        push_clean(&mut self.headers, value);
        self.headers.extend_from_slice(b"\r\n");
        self
    }
    /// Replaces the body.
    pub fn body(&mut self, bytes: &[u8]) -> &mut Self {
        self.body.clear();
        self.body.extend_from_slice(bytes);
        self
    }
    /// The body buffer, to write into.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }
    /// Streams a body of exactly `len` bytes instead of a whole one: the worker calls
    /// `source` whenever the connection can take more, and `source` appends the next
    /// piece to the buffer it is given (any size; bytes past `len` are dropped). A call
    /// that appends nothing before `len` bytes were produced ends the connection, as the
    /// response cannot be completed. Requests pipelined behind a streamed response wait
    /// until it is sent. Replaces any body set with [`body`](Response::body).
    pub fn stream(
        &mut self,
        len: u64,
        source: impl FnMut(&mut Vec<u8>) + Send + 'static,
    ) -> &mut Self {
        self.body.clear();
        self.stream = Some((len, Box::new(source)));
        self
    }

    /// Closes the connection after this response.
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }
}
