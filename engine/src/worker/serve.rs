//! Requests to responses: every complete request at the start of the input is parsed,
//! handed to the handler and its response framed into the worker's write buffer.
//! No I/O here: `conn.rs` reads the input and sends what this produced.

use std::time::Instant;

use crate::http::handler::Request;
use crate::http::parse::{decode_chunked, parse_head, BodyKind, ParseError};
use crate::http::response::{write_error, write_response};

use super::state::{BodyStream, Conn, Phase, Worker};

impl Worker {
    /// Answers every complete request at the start of `data` into `self.wbuf`; returns
    /// how many bytes were consumed. The worker's clock is refreshed afterwards: handlers
    /// may take long, and write/idle timeouts count from when the response is ready.
    pub(super) fn serve(&mut self, c: &mut Conn, data: &[u8]) -> usize {
        let requests_before = self.local.requests;
        let used = self.serve_inner(c, data);
        if self.local.requests != requests_before {
            self.now = Instant::now();
        }
        used
    }

    fn serve_inner(&mut self, c: &mut Conn, data: &[u8]) -> usize {
        let mut pos = 0;
        let date = *self.date.get();
        let worker = self.ws.index;
        while c.phase == Phase::Open && pos < data.len() {
            let rest = &data[pos..];
            match parse_head(rest, &mut self.spans, self.limits) {
                Ok(None) => break,
                Err(e) => {
                    self.refuse(c, e, &date);
                    return data.len();
                }
                Ok(Some(head)) => {
                    let framed = match head.body {
                        BodyKind::Length(n) => {
                            let total = head.len + n as usize;
                            (rest.len() >= total).then_some(Ok(total))
                        }
                        BodyKind::Chunked => match decode_chunked(
                            &rest[head.len..],
                            &mut self.body_buf,
                            self.limits.max_body_bytes,
                        ) {
                            Ok(Some(used)) => Some(Ok(head.len + used)),
                            Ok(None) if fault!(self.cfg(), ChunkedSplitRejected) => {
                                Some(Err(ParseError::BadRequest))
                            }
                            Ok(None) => None,
                            Err(e) => Some(Err(e)),
                        },
                    };
                    let total = match framed {
                        None => {
                            if head.expect_continue
                                && !c.continue_sent
                                && !fault!(self.cfg(), NoContinue)
                            {
                                self.wbuf
                                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                                c.continue_sent = true;
                            }
                            break;
                        }
                        Some(Err(e)) => {
                            self.refuse(c, e, &date);
                            return data.len();
                        }
                        Some(Ok(total)) => total,
                    };
                    c.continue_sent = false;
                    let body = match head.body {
                        BodyKind::Length(_) => &rest[head.len..total],
                        BodyKind::Chunked => &self.body_buf[..],
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
                    let head_only =
                        head.method.of(rest) == b"HEAD" && !fault!(self.cfg(), HeadWithBody);
                    let date_value: &[u8] = if fault!(self.cfg(), NoDateHeader) {
                        b""
                    } else {
                        &date
                    };
                    let before = self.wbuf.len();
                    write_response(&mut self.wbuf, &self.response, date_value, close, head_only);
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
            }
        }
        pos
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
