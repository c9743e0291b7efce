//! Requests to responses: every complete request at the start of the input is parsed,
//! handed to the handler and its response framed into the worker's write buffer.
//! No I/O here: `conn.rs` reads the input and sends what this produced.

use std::time::Instant;

use crate::http::handler::Request;
use crate::http::parse::{
    parse_head, parse_head_resume, BodyKind, ChunkedDecoder, Head, ParseError, RequestProgress,
};
use crate::http::response::{write_error, write_response, ConnectionHeader};

use super::state::{BodyStream, Conn, Phase, Waiting, Worker};

impl Worker {
    /// Answers every complete request at the start of `data` into `self.wbuf`; returns
    /// how many bytes were consumed. The worker's clock is refreshed afterwards: handlers
    /// may take long, and write/idle timeouts count from when the response is ready.
    /// `data` starts with the request `c.progress` describes; a chunked body is decoded
    /// in place, so `data` is changed past the head of an unfinished request.
    pub(super) fn serve(&mut self, c: &mut Conn, data: &mut [u8]) -> usize {
        let requests_before = self.local.requests;
        let used = self.serve_inner(c, data);
        if self.local.requests != requests_before {
            self.now = Instant::now();
        }
        used
    }

    fn serve_inner(&mut self, c: &mut Conn, data: &mut [u8]) -> usize {
        let mut pos = 0;
        let date = *self.date.get(self.now);
        let worker = self.ws.index;
        while c.phase == Phase::Open && pos < data.len() {
            let rest = &mut data[pos..];
            let (head, total, body_len) = match self.frame(c, rest) {
                Ok(Some(framed)) => framed,
                Ok(None) => {
                    // `frame` keeps the head once it is complete: what is missing then
                    // is body (body timer), else head (header timer).
                    c.waiting = if c.progress.head.is_some() {
                        Waiting::Body
                    } else {
                        Waiting::Head
                    };
                    break;
                }
                Err(e) => {
                    c.progress = RequestProgress::default();
                    self.refuse(c, e, &date);
                    return data.len();
                }
            };
            c.progress = RequestProgress::default();
            let rest = &*rest;
            c.continue_sent = false;
            let body = match head.body {
                BodyKind::Length(_) => &rest[head.len..total],
                BodyKind::Chunked if fault!(self.cfg(), ChunkedRedecode) => &self.body_buf[..],
                BodyKind::Chunked => &rest[head.len..head.len + body_len],
            };
            let req = Request {
                buf: rest,
                head: &head,
                headers: &self.spans,
                body,
                worker,
            };
            self.response.reset();
            self.handler.handle(&req, &mut self.response);
            #[cfg(feature = "faults")]
            if fault!(self.cfg(), BurnCpu) {
                crate::faults::burn_cpu();
            }
            #[cfg(feature = "faults")]
            if fault!(self.cfg(), BurnInstr) {
                crate::faults::burn_instructions();
            }
            let keep_alive = if fault!(self.cfg(), KeepAliveHttp10) {
                !head.connection_close
            } else {
                head.keep_alive
            };
            let close = !keep_alive || self.response.close || c.close_next;
            let head_only = head.method.of(rest) == b"HEAD" && !fault!(self.cfg(), HeadWithBody);
            let date_value: &[u8] = if fault!(self.cfg(), NoDateHeader) {
                b""
            } else {
                &date
            };
            let before = self.wbuf.len();
            let connection = if close {
                ConnectionHeader::Close
            } else if head.minor == 0 && !fault!(self.cfg(), NoKeepAliveHeader) {
                // A 1.0 client keeps the connection only when told (RFC 9112 §9.3).
                ConnectionHeader::KeepAlive
            } else {
                ConnectionHeader::None
            };
            write_response(
                &mut self.wbuf,
                &self.response,
                date_value,
                connection,
                head_only,
            );
            if let Some((len, source)) = self.response.stream.take() {
                if !head_only && len > 0 {
                    // Later requests wait in `input` until the body is out.
                    c.stream = Some(Box::new(BodyStream {
                        remaining: len,
                        source,
                        close_after: close,
                    }));
                    if pos == 0 || !fault!(self.cfg(), MetricsMissPipelined) {
                        self.local.requests += 1;
                    }
                    return pos + total;
                }
            }
            if fault!(self.cfg(), TruncateLargeResponse) {
                let cut = (4 << 20).min(self.wbuf.len() - before);
                self.wbuf.truncate(before + cut);
            }
            if pos == 0 || !fault!(self.cfg(), MetricsMissPipelined) {
                self.local.requests += 1;
            }
            pos += total;
            if close {
                c.phase = Phase::Closing;
                return data.len();
            }
            if fault!(self.cfg(), PipelineDropsRest) {
                return data.len();
            }
        }
        pos
    }

    /// Frames the request at the start of `rest`, resuming from `c.progress`: once it is
    /// complete, its head, its length in `rest` and its body's length (a chunked body is
    /// decoded in place, after the head), with `self.spans` holding its headers.
    /// `Ok(None)`: more bytes are needed, `c.progress` says how far it got.
    fn frame(
        &mut self,
        c: &mut Conn,
        rest: &mut [u8],
    ) -> Result<Option<(Head, usize, usize)>, ParseError> {
        let cached = c.progress.head;
        let head = match cached {
            Some(head) => head,
            None => {
                match parse_head_resume(rest, &mut self.spans, self.limits, &mut c.progress.scan)? {
                    Some(head) => head,
                    None => return Ok(None),
                }
            }
        };
        let framed = match head.body {
            BodyKind::Length(n) => {
                let total = head.len + n as usize;
                (rest.len() >= total).then_some((total, n as usize))
            }
            BodyKind::Chunked => {
                let body = &mut rest[head.len..];
                let used = if fault!(self.cfg(), ChunkedRedecode) {
                    self.body_buf.clear();
                    ChunkedDecoder::default().decode_into(
                        body,
                        &mut self.body_buf,
                        &self.limits,
                        head.len,
                    )?
                } else {
                    c.progress
                        .chunked
                        .decode_in_place(body, &self.limits, head.len)?
                };
                match used {
                    Some(used) if fault!(self.cfg(), ChunkedRedecode) => {
                        Some((head.len + used, self.body_buf.len()))
                    }
                    Some(used) => Some((head.len + used, c.progress.chunked.decoded())),
                    None if fault!(self.cfg(), ChunkedSplitRejected) => {
                        return Err(ParseError::BadRequest)
                    }
                    None => None,
                }
            }
        };
        let Some((total, body_len)) = framed else {
            c.progress.head = Some(head);
            if head.expect_continue && !c.continue_sent && !fault!(self.cfg(), NoContinue) {
                self.wbuf
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                c.continue_sent = true;
            }
            return Ok(None);
        };
        if cached.is_some() {
            // Parsed on an earlier read: the header spans are needed again (once per
            // request; the head bytes are untouched by the in-place decoding).
            parse_head(rest, &mut self.spans, self.limits)?;
        }
        Ok(Some((head, total, body_len)))
    }

    /// Answers a request the parser refused: a complete error response with
    /// `connection: close`, then the graceful close (input read until the peer closes).
    fn refuse(&mut self, c: &mut Conn, e: ParseError, date: &[u8]) {
        let mut status = e.status();
        if status == 431 && fault!(self.cfg(), HeaderTooLargeIs400) {
            status = 400;
        }
        write_error(&mut self.wbuf, status, date);
        self.ws.counters.count_error();
        c.phase = Phase::Closing;
        c.abort_after_write = fault!(self.cfg(), ErrorCloseWithoutDrain);
    }
}
