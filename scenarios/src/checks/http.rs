//! Section 6: HTTP/1.1 serving, observed from raw client sockets.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{nothing_yet, with_workers};
use crate::client::{self, parse_response, Class, Resp, Watch};
use crate::ctx::Ctx;
use crate::harness::{thread_cpu_time, Server};
use crate::outcome::{Checked, OrError, Outcome};
use crate::targets::Capability;
use crate::test_handler::fnv1a;
use crate::wait::wait_until;

// ---- helpers ----

pub(super) fn connect(ctx: &Ctx, addr: SocketAddr) -> Result<TcpStream, String> {
    let s = client::connect(addr, ctx.ms(2000)).map_err(|obs| format!("connect: {obs}"))?;
    let _ = s.set_write_timeout(Some(ctx.ms(5000)));
    Ok(s)
}

/// Connects and sends `req` in one write.
pub(super) fn send(ctx: &Ctx, addr: SocketAddr, req: &[u8]) -> Result<TcpStream, String> {
    let mut s = connect(ctx, addr)?;
    s.write_all(req).map_err(|e| format!("send: {e}"))?;
    Ok(s)
}

/// A response without its `date` (which changes every second), for comparisons.
fn norm(r: &Resp) -> String {
    let mut out = format!("{}", r.status);
    for (n, v) in r.headers.iter().filter(|(n, _)| n != "date") {
        out.push_str(&format!(" | {n}: {v}"));
    }
    out.push_str(&format!(" | body {:?}", String::from_utf8_lossy(&r.body)));
    out
}

fn norms(rs: &[Resp]) -> Vec<String> {
    rs.iter().map(norm).collect()
}

/// A one-line summary of a response (status, close, body start).
fn brief(r: &Resp) -> String {
    let body = String::from_utf8_lossy(&r.body[..r.body.len().min(48)]).replace('\n', "⏎");
    format!(
        "{}{} {:?}",
        r.status,
        if r.closes() { " (close)" } else { "" },
        body
    )
}

pub(super) fn briefs(rs: &[Resp]) -> String {
    rs.iter().map(brief).collect::<Vec<_>>().join(", ")
}

/// What `/inspect` prints as its second line for `body`.
fn body_line(body: &[u8]) -> String {
    format!("body {} {:016x}", body.len(), fnv1a(body))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Engine-wide bytes read so far.
fn bytes_read(server: &Server) -> u64 {
    server.engine().metrics().bytes_read
}

/// Writes each piece in its own write and, after each, waits (up to 100 ms) until the
/// engine has read it, so that the engine sees each piece in a separate read. Once a
/// wait times out (the engine stopped reading: an error, a close), the rest is written
/// without waiting. Returns whether every piece was seen separately.
fn write_pieces(server: &Server, ctx: &Ctx, s: &mut TcpStream, pieces: &[&[u8]]) -> bool {
    let mut separate = true;
    for p in pieces {
        let before = bytes_read(server);
        if s.write_all(p).is_err() {
            return false;
        }
        if separate {
            separate = wait_until(ctx.ms(100), || {
                bytes_read(server) >= before + p.len() as u64
            });
        }
    }
    separate
}

/// A tiny deterministic PRNG (xorshift64*), seeded per run and reported.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn start(ctx: &Ctx, cfg: engine::Config) -> Result<Server, String> {
    Server::start(ctx, cfg)
}

// ---- http.keepalive ----

/// Six connections: HTTP/1.1 without `Connection` (two requests on one connection),
/// HTTP/1.0 without it (response, then FIN), HTTP/1.0 with `Connection: Keep-Alive`
/// (two requests answered on one connection, each response carrying
/// `connection: keep-alive`), and HTTP/1.1 with `Connection: close`, `Connection: Close`
/// and `Connection: foo, Close` (connection options are case-insensitive tokens: a
/// complete response carrying `connection: close`, then FIN; a write after EOF draws no
/// RST).
pub fn keepalive(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("HTTP/1.1: two requests answered on one connection, no connection: close");
    o.expect("HTTP/1.0 without Connection: one response, then FIN (no RST on a later write)");
    o.expect("HTTP/1.0 with Connection: Keep-Alive: two requests answered on one connection, each response with connection: keep-alive");
    o.expect("Connection: close, Close, foo, Close: one complete response with connection: close, then FIN (no RST on a later write)");
    let server = start(ctx, ctx.config())?;
    let addr = server.addr();
    let v10 = b"GET / HTTP/1.0\r\nHost: test\r\n\r\n";
    let v10ka = b"GET / HTTP/1.0\r\nHost: test\r\nConnection: Keep-Alive\r\n\r\n";
    let closes: [(&str, &[u8]); 3] = [
        (
            "Connection: close",
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        ),
        (
            "Connection: Close",
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: Close\r\n\r\n",
        ),
        (
            "Connection: foo, Close",
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: foo, Close\r\n\r\n",
        ),
    ];

    // The closing cases are watched at once (each probe right after its own EOF).
    let mut closing = vec![send(ctx, addr, v10)?];
    for (_, req) in closes {
        closing.push(send(ctx, addr, req)?);
    }
    let watch = Watch::until_end(ctx.ms(1500)).probe(Duration::from_millis(200));
    let obs = client::observe_all(closing, watch);
    let names = std::iter::once("HTTP/1.0 without Connection").chain(closes.iter().map(|c| c.0));
    for (i, (name, obs)) in names.zip(&obs).enumerate() {
        o.saw(format!("{name}: {obs}"));
        o.check(
            obs.responses.len() == 1 && obs.responses[0].status == 200,
            || {
                format!(
                    "{name}: {} responses (expected one 200)",
                    obs.responses.len()
                )
            },
        );
        o.check(obs.class == Class::Fin, || {
            format!("{name}: ended {} (expected fin)", obs.class)
        });
        o.check(obs.trailing_bytes == 0, || {
            format!(
                "{name}: {} bytes of an incomplete response",
                obs.trailing_bytes
            )
        });
        if let (true, Some(r)) = (i > 0, obs.responses.first()) {
            o.check(r.closes(), || {
                format!("{name}: the response lacks connection: close")
            });
        }
    }

    for (name, req) in [
        ("HTTP/1.1 default", &client::get("/")[..]),
        ("HTTP/1.0 with Connection: Keep-Alive", &v10ka[..]),
    ] {
        let mut s = send(ctx, addr, req)?;
        let first = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1));
        let second = if first.class == Class::Response {
            match s.write_all(req) {
                Ok(()) => client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1)),
                Err(e) => {
                    o.fail(format!("{name}: the second request could not be sent: {e}"));
                    continue;
                }
            }
        } else {
            first.clone()
        };
        o.saw(format!("{name}: first {first}; second {second}"));
        for (i, obs) in [&first, &second].into_iter().enumerate() {
            o.check(
                obs.class == Class::Response && obs.responses.first().is_some_and(|r| r.status == 200 && !r.closes()),
                || format!("{name}: request {} on the connection: {obs} (expected a 200 without connection: close, connection open)", i + 1),
            );
            let announced = obs.responses.first().and_then(|r| r.header("connection"));
            if req == &v10ka[..] && obs.class == Class::Response {
                o.check(announced.is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")), || {
                    format!("{name}: response {} carries connection {announced:?} (expected keep-alive: a 1.0 client closes otherwise)", i + 1)
                });
            }
        }
    }
    Ok(())
}

// ---- http.pipelining ----

/// N requests (GET /inspect and POST /echo with bodies of several sizes) followed by a
/// marker request, sent once in one write and then several times split at random
/// points over several writes (each piece read separately by the engine): the
/// responses must be exactly the N + 1 expected, in order. Then three requests whose
/// second says `Connection: close`: two responses, the second with `connection:
/// close`, then EOF, and nothing for the third.
pub fn pipelining(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const N: usize = 12;
    const ROUNDS: usize = 8;
    o.expect(format!(
        "{N} pipelined requests + a marker, in one write and split at random points: exactly {} responses, in request order, each once",
        N + 1
    ));
    o.expect(
        "requests after a Connection: close request: not answered; the close response, then EOF",
    );
    let cfg = with_workers(ctx, 1);
    let server = start(ctx, cfg)?;
    let addr = server.addr();
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..N {
        if i % 3 == 1 {
            let body = format!("body-{i}-{}", "x".repeat(i * 37));
            batch.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            want.push(body);
        } else {
            batch.extend_from_slice(&client::get(&format!("/inspect?i={i}")));
            want.push(format!("GET /inspect?i={i} 1\n"));
        }
    }
    batch.extend_from_slice(&client::get("/inspect?marker"));
    want.push("GET /inspect?marker 1\n".into());
    let matches = |rs: &[Resp]| {
        rs.len() == want.len()
            && rs.iter().zip(&want).all(|(r, w)| {
                r.status == 200
                    && (r.body == w.as_bytes()
                        || (w.starts_with("GET") && r.body.starts_with(w.as_bytes())))
            })
    };

    let mut rng = Rng::seeded();
    o.saw(format!("split seed {:#x}", rng.0));
    for round in 0..=ROUNDS {
        let mut s = connect(ctx, addr)?;
        let mut cuts: Vec<usize> = if round == 0 {
            Vec::new()
        } else {
            (0..1 + rng.below(5))
                .map(|_| 1 + rng.below(batch.len() - 1))
                .collect()
        };
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain(std::iter::once(&batch.len())) {
            pieces.push(&batch[at..c]);
            at = c;
        }
        let separate = write_pieces(&server, ctx, &mut s, &pieces);
        let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(N + 1));
        let ok = matches(&obs.responses);
        if !ok || round < 2 {
            o.saw(format!(
                "round {round}: cuts {cuts:?}{}: {} responses [{}], {obs}",
                if separate {
                    ""
                } else {
                    " (pieces not all read separately)"
                },
                obs.responses.len(),
                briefs(&obs.responses)
            ));
        }
        o.check(ok, || {
            format!(
                "round {round} (cuts {cuts:?}): {} responses, not the {} expected in order",
                obs.responses.len(),
                N + 1
            )
        });
        // Nothing more may follow (a duplicate would).
        let extra = client::observe(&mut s, Watch::until_end(ctx.ms(30)));
        o.check(
            extra.responses.is_empty() && extra.trailing_bytes == 0,
            || format!("round {round}: more after the marker: {extra}"),
        );
    }

    let mut req = client::get("/inspect?c=0");
    req.extend_from_slice(b"GET /inspect?c=1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    req.extend_from_slice(&client::get("/inspect?c=2"));
    let mut s = send(ctx, addr, &req)?;
    let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)));
    o.saw(format!(
        "close in the middle: [{}], {obs}",
        briefs(&obs.responses)
    ));
    let targets: Vec<bool> = obs
        .responses
        .iter()
        .zip(["GET /inspect?c=0 ", "GET /inspect?c=1 "])
        .map(|(r, t)| r.body.starts_with(t.as_bytes()))
        .collect();
    o.check(
        obs.responses.len() == 2 && targets == [true, true] && obs.responses[1].closes(),
        || format!("close in the middle: responses [{}] (expected c=0, then c=1 with connection: close, nothing for c=2)", briefs(&obs.responses)),
    );
    o.check(matches!(obs.class, Class::Fin | Class::FinThenRst), || {
        format!("close in the middle: ended {} (expected EOF)", obs.class)
    });
    Ok(())
}

// ---- http.split-anywhere ----

/// The split corpus: (name, request bytes, body lines the unsplit responses must show).
fn split_corpus() -> Vec<(&'static str, Vec<u8>, Vec<String>)> {
    vec![
        (
            "GET with headers",
            b"GET /inspect?x=1&y=2 HTTP/1.1\r\nHost: test\r\nX-Alpha: alpha\r\nX-Beta:  beta beta \r\nAccept: */*\r\n\r\n".to_vec(),
            vec![body_line(b"")],
        ),
        (
            "POST with Content-Length",
            b"POST /inspect HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n\r\nhello world, split me now!".to_vec(),
            vec![body_line(b"hello world, split me now!")],
        ),
        (
            "POST chunked with extensions and trailers",
            b"POST /inspect HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7;a=\"b c\";d\r\n, split\r\nA\r\n body!\r\n\r\n\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec(),
            vec![body_line(b"hello, split body!\r\n\r\n")],
        ),
        (
            "pipelined pair",
            b"GET /inspect?p=1 HTTP/1.1\r\nHost: test\r\n\r\nPOST /inspect?p=2 HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            vec![body_line(b""), body_line(b"abc")],
        ),
    ]
}

/// Each request of a small corpus (GET with headers, POST with Content-Length, POST
/// chunked with extensions and trailers, a pipelined pair) is sent whole (its responses,
/// minus `date`, are the reference and must show the right body), then split in two at
/// every byte (the engine reads the first piece before the second is sent: waited for
/// on its bytes-read counter), then one byte per write. Every response must equal the
/// reference.
pub fn split_anywhere(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const BATCH: usize = 16;
    o.expect("each corpus request sent whole: 200 responses whose /inspect body shows the right body length and hash");
    o.expect("the same request split in two at every byte, and one byte per write: responses identical (minus date) to the whole request's");
    let cfg = with_workers(ctx, 1);
    let server = start(ctx, cfg)?;
    let addr = server.addr();
    let corpus = split_corpus();
    let watch_n = |n| Watch::until_end(ctx.ms(1500)).responses(n);
    let mut references = Vec::new();
    for (name, req, lines) in &corpus {
        let mut s = send(ctx, addr, req)?;
        let obs = client::observe(&mut s, watch_n(lines.len()));
        o.saw(format!("{name}, whole: [{}]", briefs(&obs.responses)));
        let ok = obs.responses.len() == lines.len()
            && obs.responses.iter().zip(lines).all(|(r, l)| {
                r.status == 200 && String::from_utf8_lossy(&r.body).lines().nth(1) == Some(l)
            });
        o.check(ok, || {
            format!(
                "{name}, sent whole: [{}] (expected 200s showing {lines:?})",
                briefs(&obs.responses)
            )
        });
        references.push(norms(&obs.responses));
    }

    let mut separate_all = true;
    for ((name, req, lines), reference) in corpus.iter().zip(&references) {
        let cuts: Vec<usize> = (1..req.len()).collect();
        let mut bad = Vec::new();
        for group in cuts.chunks(BATCH) {
            let mut streams = Vec::new();
            for _ in group {
                streams.push(connect(ctx, addr)?);
            }
            let before = bytes_read(&server);
            for (s, &c) in streams.iter_mut().zip(group) {
                if s.write_all(&req[..c]).is_err() {
                    bad.push(format!("cut {c}: first piece refused"));
                }
            }
            let firsts: u64 = group.iter().map(|&c| c as u64).sum();
            separate_all &= wait_until(ctx.ms(200), || bytes_read(&server) >= before + firsts);
            for (s, &c) in streams.iter_mut().zip(group) {
                let _ = s.write_all(&req[c..]);
            }
            for (obs, &c) in client::observe_all(streams, watch_n(lines.len()))
                .iter()
                .zip(group)
            {
                if &norms(&obs.responses) != reference {
                    bad.push(format!("cut {c}: [{}], {obs}", briefs(&obs.responses)));
                }
            }
        }
        o.saw(format!(
            "{name}: split at each of {} points: {} differ{}",
            cuts.len(),
            bad.len(),
            bad.first()
                .map(|b| format!(", first: {b}"))
                .unwrap_or_default()
        ));
        o.check(bad.is_empty(), || {
            format!(
                "{name}: {} of {} split points answered differently, e.g. {}",
                bad.len(),
                cuts.len(),
                bad[0]
            )
        });
    }

    // One byte per write, every corpus request at once in lockstep.
    let mut streams = Vec::new();
    for _ in &corpus {
        streams.push(connect(ctx, addr)?);
    }
    let longest = corpus.iter().map(|(_, r, _)| r.len()).max().unwrap_or(0);
    let mut lockstep = true;
    for i in 0..longest {
        let before = bytes_read(&server);
        let mut sent = 0;
        for (s, (_, req, _)) in streams.iter_mut().zip(&corpus) {
            if i < req.len() && s.write_all(&req[i..i + 1]).is_ok() {
                sent += 1;
            }
        }
        if lockstep {
            lockstep = wait_until(ctx.ms(100), || bytes_read(&server) >= before + sent);
        }
    }
    separate_all &= lockstep;
    let max_n = corpus.iter().map(|(_, _, l)| l.len()).max().unwrap_or(1);
    let mut observed = Vec::new();
    for (mut s, (_, _, lines)) in streams.into_iter().zip(&corpus) {
        observed.push(client::observe(&mut s, watch_n(lines.len().min(max_n))));
    }
    for ((obs, (name, _, _)), reference) in observed.iter().zip(&corpus).zip(&references) {
        o.saw(format!(
            "{name}, one byte per write: [{}]",
            briefs(&obs.responses)
        ));
        o.check(&norms(&obs.responses) == reference, || {
            format!(
                "{name}, one byte per write: [{}] differs from the whole request's",
                briefs(&obs.responses)
            )
        });
    }
    if !separate_all {
        o.saw("some pieces were not read separately (the engine stopped reading or was slow)");
    }
    Ok(())
}

// ---- http.framing ----

/// A request that must be refused: name, head, body, the acceptable statuses.
type RefusalCase<'a> = (&'a str, &'a [u8], &'a [u8], &'a [u16]);

/// POST /echo with a Content-Length body followed by a pipelined request (the body is
/// echoed exactly and the next request answered); a chunked body with extensions and
/// trailers, sent whole and with its body arriving in later reads than its head
/// (decoded exactly, the next request answered); conflicting Content-Lengths (400 with
/// `connection: close`, then EOF); and Transfer-Encoding with Content-Length arranged so
/// that Content-Length framing would reveal a smuggled request: either 400, or chunked
/// framing (the body has the chunked length and the following request is answered),
/// never a response to the smuggled request. Then the chunk-size grammar (`+5`, `-5`,
/// ` 5`, and 17 hex digits that wrap to 5 with a request behind) and a final coding
/// that is not chunked: each refused with `connection: close`, nothing after answered.
pub fn framing(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("Content-Length body echoed exactly; the pipelined request after it answered");
    o.expect("chunked body (extensions, trailers) decoded exactly, whole or split across reads; the next request answered");
    o.expect("conflicting Content-Length: 400 with connection: close, then EOF");
    o.expect("Transfer-Encoding + Content-Length: 400 (close), or chunked framing; never an answer to the request hidden in the body");
    o.expect("chunk sizes are 1*HEXDIG: +5, -5, leading space → 400; 17 hex digits (over 64 bits) → 400 or 413, never wrapped (the request behind it never answered); Transfer-Encoding: chunked, identity or gzip alone → 400 or 501; each with connection: close, nothing after it answered");
    let server = start(ctx, ctx.config())?;
    let addr = server.addr();
    let after = client::get("/inspect?after");
    let is_after = |r: &Resp| r.status == 200 && r.body.starts_with(b"GET /inspect?after 1\n");
    // The body echoed (200), then the request after it answered: framed right.
    let echo_then_after = |rs: &[Resp], body: &[u8]| {
        rs.len() == 2 && rs[0].status == 200 && rs[0].body == body && is_after(&rs[1])
    };

    // Content-Length.
    let body = b"0123456789\r\n\r\nGET / HTTP/1.1\r\n";
    let mut req = client::post("/echo", body);
    req.extend_from_slice(&after);
    let obs = client::observe(
        &mut send(ctx, addr, &req)?,
        Watch::until_end(ctx.ms(1500)).responses(2),
    );
    o.saw(format!("Content-Length: [{}]", briefs(&obs.responses)));
    o.check(echo_then_after(&obs.responses, body), || {
        format!(
            "Content-Length body: [{}] (expected the exact echo, then the next request)",
            briefs(&obs.responses)
        )
    });

    // Chunked, whole and split after the head and inside the chunks.
    let head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunks = b"4;name=value\r\nWiki\r\n5;a;b=\"c d\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-T: 1\r\n\r\n";
    let decoded = b"Wikipedia in\r\n\r\nchunks.";
    let mut whole = head.to_vec();
    whole.extend_from_slice(chunks);
    whole.extend_from_slice(&after);
    let splits: [&[usize]; 3] = [
        &[],
        &[head.len()],
        &[head.len(), head.len() + 10, head.len() + 30],
    ];
    for cuts in splits {
        let mut s = connect(ctx, addr)?;
        let mut pieces = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain(std::iter::once(&whole.len())) {
            pieces.push(&whole[at..c]);
            at = c;
        }
        write_pieces(&server, ctx, &mut s, &pieces);
        let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(2));
        o.saw(format!(
            "chunked, cuts {cuts:?}: [{}]",
            briefs(&obs.responses)
        ));
        o.check(echo_then_after(&obs.responses, decoded), || {
            format!(
                "chunked body, cuts {cuts:?}: [{}] (expected {:?}, then the next request)",
                briefs(&obs.responses),
                String::from_utf8_lossy(decoded)
            )
        });
    }

    // Conflicting Content-Length.
    let mut req =
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nContent-Length: 13\r\n\r\nabcdefghijklm"
            .to_vec();
    req.extend_from_slice(&after);
    let obs = client::observe(&mut send(ctx, addr, &req)?, Watch::until_end(ctx.ms(1500)));
    o.saw(format!(
        "conflicting Content-Length: [{}], {obs}",
        briefs(&obs.responses)
    ));
    o.check(
        obs.responses.len() == 1 && obs.responses[0].status == 400 && obs.responses[0].closes(),
        || {
            format!(
                "conflicting Content-Length: [{}] (expected one 400 with connection: close)",
                briefs(&obs.responses)
            )
        },
    );
    o.check(matches!(obs.class, Class::Fin | Class::FinThenRst), || {
        format!(
            "conflicting Content-Length: ended {} (expected EOF)",
            obs.class
        )
    });

    // Transfer-Encoding + Content-Length: Content-Length framing would take "3c\r\n" as
    // the body and answer the hidden GET.
    let hidden = b"GET /inspect?smuggled HTTP/1.1\r\nHost: test\r\nX-Pad: 0123456\r\n\r\n";
    let mut req = b"POST /inspect HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{:x}\r\n", hidden.len()).as_bytes());
    req.extend_from_slice(hidden);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    req.extend_from_slice(&after);
    let obs = client::observe(&mut send(ctx, addr, &req)?, Watch::until_end(ctx.ms(1000)));
    o.saw(format!(
        "Transfer-Encoding + Content-Length: [{}], {obs}",
        briefs(&obs.responses)
    ));
    let smuggled = obs
        .responses
        .iter()
        .any(|r| r.body.starts_with(b"GET /inspect?smuggled"));
    o.check(!smuggled, || {
        "Transfer-Encoding + Content-Length: the request hidden in the chunked body was answered (Content-Length framing: smuggling)".into()
    });
    let refused =
        obs.responses.len() == 1 && obs.responses[0].status == 400 && obs.responses[0].closes();
    let chunked_wins = obs.responses.len() == 2
        && obs.responses[0].status == 200
        && String::from_utf8_lossy(&obs.responses[0].body)
            .lines()
            .nth(1)
            == Some(&body_line(hidden))
        && is_after(&obs.responses[1]);
    o.check(refused || chunked_wins, || {
        format!("Transfer-Encoding + Content-Length: [{}] (expected one 400 with close, or the chunked body then the next request)", briefs(&obs.responses))
    });

    // Chunk-size grammar and the final coding: each refused, nothing after it answered.
    let chunked_head =
        b"POST /inspect HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut wrapped = b"10000000000000005\r\nhello\r\n0\r\n\r\n".to_vec();
    wrapped.extend_from_slice(hidden);
    let grammar: [RefusalCase; 6] = [
        (
            "chunk size +5",
            chunked_head,
            b"+5\r\nhello\r\n0\r\n\r\n",
            &[400],
        ),
        (
            "chunk size -5",
            chunked_head,
            b"-5\r\nhello\r\n0\r\n\r\n",
            &[400],
        ),
        (
            "chunk size with leading space",
            chunked_head,
            b" 5\r\nhello\r\n0\r\n\r\n",
            &[400],
        ),
        (
            "chunk size of 17 hex digits (2^64 + 5) with a request behind",
            chunked_head,
            &wrapped,
            &[400, 413],
        ),
        (
            "Transfer-Encoding: chunked, identity",
            b"POST /inspect HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            &[400, 501],
        ),
        (
            "Transfer-Encoding: gzip (no chunked at all)",
            b"POST /inspect HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            &[400, 501],
        ),
    ];
    let mut streams = Vec::new();
    for (_, head, body, _) in &grammar {
        let mut req = head.to_vec();
        req.extend_from_slice(body);
        req.extend_from_slice(&after);
        streams.push(send(ctx, addr, &req)?);
    }
    let watch = Watch::until_end(ctx.ms(1500));
    for (obs, (name, _, _, statuses)) in client::observe_all(streams, watch).iter().zip(&grammar) {
        o.saw(format!("{name}: [{}], {obs}", briefs(&obs.responses)));
        let rs = &obs.responses;
        o.check(!rs.iter().any(|r| r.body.starts_with(b"GET /inspect?smuggled")), || {
            format!("{name}: the request hidden behind the chunk was answered (the size wrapped: smuggling)")
        });
        o.check(
            rs.len() == 1 && statuses.contains(&rs[0].status) && rs[0].closes(),
            || format!("{name}: [{}] (expected exactly one of {statuses:?} with connection: close, nothing after it answered)", briefs(rs)),
        );
    }
    Ok(())
}

// ---- http.errors ----

/// Thirteen connections, each sending one bad request (malformed request line ×2, bad
/// header ×2, missing Host, a header block over `max_header_bytes` = 4 KiB, a declared
/// body over `max_body_bytes` = 1 KiB with the body sent, a request line over 4 KiB),
/// alone or followed by a valid
/// request and 256 KiB more: each gets exactly one response with the right status and
/// `connection: close`, then EOF, and a write 200 ms after EOF draws no RST (the engine
/// reads what the client sent before closing). One more connection checks the 413
/// status line reads `Payload Too Large`, and four more send bodies of exactly the limit
/// and one byte over, by Content-Length and chunked (served; 413).
pub fn errors(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("malformed request line, bad header, missing Host → 400; request line over the limit → 414; header block over the limit → 431; declared body over the limit → 413 Payload Too Large");
    o.expect("bodies of exactly max_body_bytes (1 KiB), by Content-Length and chunked, are served; one byte more → 413 with connection: close");
    o.expect("each: exactly one complete response with connection: close, then FIN; a write 200 ms after EOF draws no RST (class fin), also with extra bytes sent after the bad request");
    let cfg = engine::Config {
        max_header_bytes: 4096,
        max_body_bytes: 1024,
        ..ctx.config()
    };
    let server = start(ctx, cfg)?;
    let addr = server.addr();
    let mut big_header = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
    big_header.extend(std::iter::repeat_n(b'a', 6000));
    big_header.extend_from_slice(b"\r\n\r\n");
    let mut big_body =
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4096\r\n\r\n".to_vec();
    big_body.extend(std::iter::repeat_n(b'b', 4096));
    let mut long_line = b"GET /".to_vec();
    long_line.extend(std::iter::repeat_n(b'u', 6000));
    long_line.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "request line without version",
            b"GET /\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
        (
            "garbage request line",
            b"NOT-HTTP\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nHost: test\r\nNo colon here\r\n\r\n".to_vec(),
            400,
        ),
        (
            "space in header name",
            b"GET / HTTP/1.1\r\nHost: test\r\nBad Name: v\r\n\r\n".to_vec(),
            400,
        ),
        (
            "missing Host on 1.1",
            b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n".to_vec(),
            400,
        ),
        ("header block over 4 KiB", big_header, 431),
        ("body over 1 KiB", big_body.clone(), 413),
        ("request line over 4 KiB", long_line, 414),
    ];
    let mut extra = client::get("/");
    extra.extend(std::iter::repeat_n(b'z', 256 * 1024));
    let mut streams = Vec::new();
    let mut labels = Vec::new();
    for (with_extra, (name, req, status)) in cases
        .iter()
        .map(|c| (false, c))
        .chain(cases.iter().skip(2).step_by(2).map(|c| (true, c)))
        .chain(cases.iter().skip(5).map(|c| (true, c)))
    {
        let mut s = send(ctx, addr, req)?;
        if with_extra {
            // The engine may reset us if it closes with this unread: that is the bug.
            let _ = s.write_all(&extra);
        }
        streams.push(s);
        labels.push((
            format!("{name}{}", if with_extra { " + 256 KiB more" } else { "" }),
            *status,
        ));
    }
    let watch = Watch::until_end(ctx.ms(2000)).probe(Duration::from_millis(200));
    for (obs, (name, status)) in client::observe_all(streams, watch).iter().zip(&labels) {
        o.saw(format!("{name}: {obs}"));
        o.check(
            obs.responses.len() == 1
                && obs.responses[0].status == *status
                && obs.responses[0].closes(),
            || {
                format!(
                    "{name}: [{}] (expected exactly one {status} with connection: close)",
                    briefs(&obs.responses)
                )
            },
        );
        o.check(obs.class == Class::Fin && obs.trailing_bytes == 0, || {
            format!(
                "{name}: ended {} with {} stray bytes (expected fin after the complete response)",
                obs.class, obs.trailing_bytes
            )
        });
    }
    let mut s = send(ctx, addr, &big_body)?;
    let (raw, how) = client::read_raw(&mut s, ctx.ms(2000), |b| contains(b, b"\r\n"));
    let line = raw.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    o.saw(format!("413 status line: {line:?} ({how})"));
    o.check(line == "HTTP/1.1 413 Payload Too Large", || {
        format!("413 status line {line:?} (expected \"HTTP/1.1 413 Payload Too Large\")")
    });

    // Bodies of exactly the limit are served; one byte more is refused.
    let echoes = ctx.target.capabilities().contains(&Capability::TestRoutes);
    let by_length = |n: usize| {
        let mut req = format!("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {n}\r\n\r\n")
            .into_bytes();
        req.extend(std::iter::repeat_n(b'e', n));
        req
    };
    let by_chunks = |n: usize| {
        let mut req =
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in [n / 2, n - n / 2] {
            req.extend_from_slice(format!("{part:x}\r\n").as_bytes());
            req.extend(std::iter::repeat_n(b'e', part));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        req
    };
    let limit_cases = [
        ("Content-Length body of exactly 1 KiB", by_length(1024), 200),
        ("Content-Length body of 1 KiB + 1", by_length(1025), 413),
        ("chunked body of exactly 1 KiB", by_chunks(1024), 200),
        ("chunked body of 1 KiB + 1", by_chunks(1025), 413),
    ];
    let mut streams = Vec::new();
    for (_, req, _) in &limit_cases {
        streams.push(send(ctx, addr, req)?);
    }
    let watch = Watch::until_end(ctx.ms(1500)).responses(1);
    for (obs, (name, _, status)) in client::observe_all(streams, watch).iter().zip(&limit_cases) {
        o.saw(format!("{name}: [{}]", briefs(&obs.responses)));
        let r = obs.responses.first();
        let ok = match status {
            // Without the test routes there is no /echo to show the body was read.
            200 => r.is_some_and(|r| r.status == 200 && (r.body.len() == 1024 || !echoes)),
            _ => r.is_some_and(|r| r.status == *status && r.closes()),
        };
        o.check(ok, || {
            format!(
                "{name}: [{}] (expected {})",
                briefs(&obs.responses),
                if *status == 200 {
                    "200 with the 1024-byte body echoed: a body of exactly the limit is served"
                } else {
                    "413 with connection: close"
                }
            )
        });
    }
    Ok(())
}

// ---- http.expect-continue ----

/// Sends a head with `Expect: 100-continue` and Content-Length, no body; waits (1 s) for
/// `HTTP/1.1 100 Continue`, then sends the body and expects the echo. With a declared
/// body over `max_body_bytes` (1 KiB): 413 (with `connection: close`) and no 100 first.
pub fn expect_continue(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("body within the limit: HTTP/1.1 100 Continue before the body is sent, then the final 200 echoing the body");
    o.expect("declared body over the limit: 413 with connection: close, no 100 Continue");
    let cfg = engine::Config {
        max_body_bytes: 1024,
        ..ctx.config()
    };
    let server = start(ctx, cfg)?;
    let addr = server.addr();
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    let body = b"the body, sent after 100";
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    let mut s = send(ctx, addr, head.as_bytes())?;
    let t = Instant::now();
    let (raw, how) = client::read_raw(&mut s, ctx.ms(1000), |b| b.len() >= cont.len());
    o.saw(format!(
        "within the limit: {:?} after {} ms ({how})",
        String::from_utf8_lossy(&raw),
        t.elapsed().as_millis()
    ));
    o.check(raw.starts_with(cont), || {
        format!(
            "within the limit: got {:?} instead of HTTP/1.1 100 Continue within 1 s",
            String::from_utf8_lossy(&raw)
        )
    });
    if raw.starts_with(cont) && raw.len() > cont.len() {
        o.fail("bytes beyond 100 Continue arrived before the body was sent");
    }
    if s.write_all(body).is_err() {
        o.fail("within the limit: sending the body failed");
    }
    let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1));
    o.saw(format!(
        "within the limit, final: [{}]",
        briefs(&obs.responses)
    ));
    o.check(
        obs.responses.len() == 1 && obs.responses[0].status == 200 && obs.responses[0].body == body,
        || {
            format!(
                "within the limit: final [{}] (expected 200 echoing the body)",
                briefs(&obs.responses)
            )
        },
    );

    let head = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n";
    let mut s = send(ctx, addr, head)?;
    let (raw, how) = client::read_raw(&mut s, ctx.ms(1500), |b| {
        parse_response(b).is_some_and(|(r, _)| r.status >= 200)
            || (contains(b, b"\r\n\r\n") && !b.starts_with(b"HTTP/1.1 1"))
    });
    let text = String::from_utf8_lossy(&raw);
    o.saw(format!(
        "over the limit: {:?} ({how})",
        text.lines().next().unwrap_or("")
    ));
    o.check(
        raw.starts_with(b"HTTP/1.1 413 ") && contains(&raw, b"connection: close"),
        || {
            format!(
                "over the limit: got {:?} (expected 413 with connection: close, no 100 first)",
                text.lines().next().unwrap_or("")
            )
        },
    );
    Ok(())
}

// ---- http.head ----

/// GET / on one connection; on another, HEAD / pipelined with a GET /inspect: the HEAD
/// response must have GET's status and headers (date aside, content-length equal) and
/// no body: the next response's status line follows its blank line at once.
pub fn head(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("HEAD /: GET /'s status and headers (content-length included, date aside), no body bytes; the next pipelined response follows right after the head");
    let server = start(ctx, ctx.config())?;
    let addr = server.addr();
    let get = client::observe(
        &mut send(ctx, addr, &client::get("/"))?,
        Watch::until_end(ctx.ms(1500)).responses(1),
    );
    let Some(get) = get.responses.first().cloned() else {
        return Err(format!("GET / got no response: {get}").into());
    };
    let mut req = b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n".to_vec();
    req.extend_from_slice(&client::get("/inspect?next"));
    let mut s = send(ctx, addr, &req)?;
    let complete = |b: &[u8]| {
        let Some(end) = client::head_end(b) else {
            return false;
        };
        // Whatever follows the HEAD head: complete once the next response is.
        let rest = &b[end..];
        match client::head_end(rest) {
            Some(_) => parse_response(rest).is_some() || !rest.starts_with(b"HTTP/"),
            None => false,
        }
    };
    let (raw, how) = client::read_raw(&mut s, ctx.ms(1500), complete);
    let Some(end) = client::head_end(&raw) else {
        o.saw(format!("HEAD: {:?} ({how})", String::from_utf8_lossy(&raw)));
        o.fail("HEAD / got no complete response head");
        return Ok(());
    };
    let head_resp = parse_response(&raw[..end]).map(|(mut r, _)| {
        r.body.clear();
        r
    });
    // parse_response wants the body: rebuild the head-only response by hand.
    let head_resp = head_resp.or_else(|| {
        let mut fake = raw[..end].to_vec();
        let len = get.body.len();
        fake.extend(std::iter::repeat_n(b'-', len));
        parse_response(&fake).map(|(mut r, _)| {
            r.body.clear();
            r
        })
    });
    let rest = &raw[end..];
    o.saw(format!(
        "GET /: {}; HEAD / head: {:?}; then {} bytes starting {:?} ({how})",
        norm(&get),
        String::from_utf8_lossy(&raw[..end - 4]),
        rest.len(),
        String::from_utf8_lossy(&rest[..rest.len().min(24)])
    ));
    match head_resp {
        Some(h) => {
            let mut g = get.clone();
            g.body.clear();
            o.check(norm(&h) == norm(&g), || {
                format!("HEAD headers {} differ from GET's {}", norm(&h), norm(&g))
            });
        }
        None => o.fail("the HEAD response head does not parse"),
    }
    let next_ok = parse_response(rest)
        .is_some_and(|(r, _)| r.status == 200 && r.body.starts_with(b"GET /inspect?next 1\n"));
    o.check(next_ok, || {
        format!(
            "after the HEAD head came {:?}, not the next response (body bytes sent?)",
            String::from_utf8_lossy(&rest[..rest.len().min(40)])
        )
    });
    Ok(())
}

// ---- http.large-response ----

const BIG: usize = 64 << 20;

/// Reads one `/big` response of `want` bytes, slowly at first (256 KiB then a 4 ms
/// pause, 16 times), checking every byte; gives up after 2 s without progress.
/// Returns (content-length, body bytes that were right, how it stopped).
fn read_big(ctx: &Ctx, s: &mut TcpStream, want: usize) -> (Option<usize>, usize, String) {
    let (raw, how) = client::read_raw(s, ctx.ms(3000), |b| contains(b, b"\r\n\r\n"));
    let Some(end) = client::head_end(&raw) else {
        return (None, 0, format!("no response head ({how})"));
    };
    let head = String::from_utf8_lossy(&raw[..end - 4]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return (None, 0, format!("head {head:?}"));
    }
    let cl = client::parse_head(&raw[..end - 4])
        .and_then(|h| h.content_length())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let aaa = vec![b'a'; 256 * 1024];
    let mut got = raw.len() - end;
    if raw[end..] != aaa[..got.min(aaa.len())][..got] {
        return (cl, 0, "body bytes are not all 'a'".into());
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut reads = 0;
    let mut last = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    while got < want {
        if last.elapsed() > ctx.ms(2000) {
            return (cl, got, "no progress for 2 s".into());
        }
        let room = (want - got).min(buf.len());
        match s.read(&mut buf[..room]) {
            Ok(0) => return (cl, got, "EOF before the end of the body".into()),
            Ok(n) => {
                if buf[..n] != aaa[..n] {
                    return (cl, got, format!("wrong bytes near offset {got}"));
                }
                got += n;
                last = Instant::now();
                reads += 1;
                if reads <= 16 {
                    std::thread::sleep(Duration::from_millis(4));
                }
            }
            Err(e) if nothing_yet(&e) => {}
            Err(e) => return (cl, got, format!("error: {e}")),
        }
    }
    (cl, got, "whole".into())
}

/// GET /big?bytes=64 MiB read slowly at first: keep-alive (the whole body, then a
/// second request on the same connection is answered) and with `Connection: close`
/// (the whole body, then FIN).
pub fn large_response(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("64 MiB body, read slowly: content-length 67108864 and every byte delivered; keep-alive: the next request is answered; Connection: close: FIN after the body");
    let server = start(ctx, ctx.config())?;
    let addr = server.addr();
    let run = |close: bool| -> (Vec<String>, Vec<String>) {
        let (mut saw, mut bad) = (Vec::new(), Vec::new());
        let name = if close {
            "Connection: close"
        } else {
            "keep-alive"
        };
        let req = format!(
            "GET /big?bytes={BIG} HTTP/1.1\r\nHost: test\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        let mut s = match send(ctx, addr, req.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{name}: {e}"));
                return (saw, bad);
            }
        };
        let t = Instant::now();
        let (cl, got, how) = read_big(ctx, &mut s, BIG);
        saw.push(format!(
            "{name}: content-length {cl:?}, {got} body bytes in {} ms ({how})",
            t.elapsed().as_millis()
        ));
        if cl != Some(BIG) || got != BIG {
            bad.push(format!(
                "{name}: content-length {cl:?}, {got} of {BIG} bytes delivered ({how})"
            ));
            return (saw, bad);
        }
        if close {
            let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)));
            saw.push(format!("{name}: after the body: {obs}"));
            if obs.class != Class::Fin || obs.trailing_bytes != 0 {
                bad.push(format!("{name}: after the body: {obs} (expected fin)"));
            }
        } else {
            let sent = s.write_all(&client::get("/"));
            let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1));
            saw.push(format!("{name}: next request: {obs}"));
            if sent.is_err() || obs.class != Class::Response || obs.responses[0].status != 200 {
                bad.push(format!("{name}: the next request on the connection: {obs}"));
            }
        }
        (saw, bad)
    };
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = [false, true]
            .map(|close| scope.spawn(move || run(close)))
            .into_iter()
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), vec!["a reader thread panicked".to_string()]))
            })
            .collect::<Vec<_>>()
    });
    for (saw, bad) in results {
        saw.into_iter().for_each(|x| o.saw(x));
        bad.into_iter().for_each(|x| o.fail(x));
    }
    Ok(())
}

// ---- http.slow-reader ----

/// One worker with `write_timeout` 1 s: a client requests 32 MiB, reads 4 MiB and
/// stops reading.
/// Once the engine's bytes-written counter stops (its writes stall), the worker
/// thread's CPU time over 500 ms must stay under 50 ms, and the engine must close the
/// connection once the write timeout has passed since that last progress, within a
/// tolerance (active connections back to 0); the client then reads to EOF or RST.
/// Then a client that resets (`SO_LINGER` 0) after 1 MiB of a 32 MiB response: the
/// worker answers the next request within 1 s and does not spin on the failed send.
pub fn slow_reader(ctx: &Ctx, o: &mut Outcome) -> Checked {
    let write_timeout = Duration::from_millis(1000);
    o.expect("worker thread CPU < 50 ms over a 500 ms window while the response waits on a client that does not read");
    o.expect("the connection is closed between write_timeout - 100 ms and write_timeout + 600 ms (write_timeout 1 s) after the engine's last write progress; the client then sees EOF or RST");
    o.expect("a client that resets with 31 MiB of its response queued: the worker answers GET / within 1 s and uses < 150 ms of CPU over the next 300 ms");
    let cfg = engine::Config {
        workers: 1,
        write_timeout,
        ..ctx.config()
    };
    let server = start(ctx, cfg)?;
    let addr = server.addr();
    let tid = server.worker_loop(0).thread_id();
    let mut s = send(ctx, addr, &client::get("/big?bytes=33554432"))?;
    // Read 4 MiB first, so that the last progress is a flush on EPOLLOUT rather than
    // the write right after the handler; then stop reading.
    let mut first = vec![0u8; 4 << 20];
    let _ = s.set_read_timeout(Some(ctx.ms(3000)));
    s.read_exact(&mut first)
        .or_error("reading the first 4 MiB")?;
    // The last progress: the engine's bytes-written counter has stopped for 100 ms.
    let written = || server.engine().metrics().bytes_written;
    let mut last = (written(), Instant::now());
    let stalled = wait_until(ctx.ms(3000), || {
        let w = written();
        if w != last.0 {
            last = (w, Instant::now());
        }
        last.0 > 0 && last.1.elapsed() >= Duration::from_millis(100)
    });
    let stall_at = last.1;
    if !stalled {
        return Err("the engine's writes never stalled".into());
    }
    let queued = engine::sys::socket::recv_queue_len(std::os::fd::AsRawFd::as_raw_fd(&s));
    let (Some(c0), w0) = (thread_cpu_time(tid), Instant::now()) else {
        return Err("cannot read the worker thread's CPU time".into());
    };
    std::thread::sleep(Duration::from_millis(500));
    let used = thread_cpu_time(tid).unwrap_or(c0).saturating_sub(c0);
    let window = w0.elapsed();
    o.saw(format!(
        "writes stalled after {} bytes (client receive queue {queued:?}); worker CPU {} ms over {} ms",
        last.0,
        used.as_millis(),
        window.as_millis()
    ));
    o.check(used < Duration::from_millis(50), || {
        format!(
            "the worker used {} ms of CPU over {} ms while the response waited (allowed < 50 ms)",
            used.as_millis(),
            window.as_millis()
        )
    });
    let limit = write_timeout + ctx.ms(600);
    let closed = wait_until(
        limit.saturating_sub(stall_at.elapsed()) + ctx.ms(100),
        || server.engine().metrics().active_connections == 0,
    );
    let at = stall_at.elapsed();
    o.saw(format!(
        "engine connection {} {} ms after the last write progress",
        if closed { "closed" } else { "still open" },
        at.as_millis()
    ));
    let early = write_timeout - Duration::from_millis(100);
    o.check(closed && at >= early, || {
        format!(
            "the connection was {} {} ms after the last write progress (expected closed within {}..{} ms)",
            if closed { "closed" } else { "still open" },
            at.as_millis(),
            early.as_millis(),
            limit.as_millis()
        )
    });
    // The client sees the end once it reads what was buffered.
    let mut buf = vec![0u8; 1 << 20];
    let _ = s.set_read_timeout(Some(ctx.ms(500)));
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break "fin".to_string(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break "rst".into(),
            Err(e) => break format!("{e}"),
        }
    };
    o.saw(format!("client, reading what was buffered: {end}"));
    o.check(end == "fin" || end == "rst", || {
        format!("the client did not see the connection end: {end}")
    });

    // A client that resets while its response is still queued: the failed send ends
    // that connection, and the worker goes on serving.
    let mut s = send(ctx, addr, &client::get("/big?bytes=33554432"))?;
    let mut first = vec![0u8; 1 << 20];
    let _ = s.set_read_timeout(Some(ctx.ms(3000)));
    s.read_exact(&mut first)
        .or_error("reading the first 1 MiB")?;
    let _ =
        engine::sys::socket::set_linger(std::os::fd::AsRawFd::as_raw_fd(&s), Some(Duration::ZERO));
    drop(s);
    let obs = client::request(addr, &client::get("/"), ctx.ms(1000));
    let served = obs.responses.first().is_some_and(|r| r.status == 200);
    let c0 = thread_cpu_time(tid);
    std::thread::sleep(Duration::from_millis(300));
    let used = c0.and_then(|c0| Some(thread_cpu_time(tid)?.saturating_sub(c0)));
    o.saw(format!(
        "after a client reset with 31 MiB of its response queued: GET / {obs}; worker CPU {:?} ms over the next 300 ms",
        used.map(|u| u.as_millis())
    ));
    o.check(served, || {
        format!("after a client reset with its response queued, the worker did not answer GET / within 1 s: {obs}")
    });
    o.check(used.is_some_and(|u| u < Duration::from_millis(150)), || {
        format!(
            "after a client reset with its response queued, the worker used {:?} ms of CPU in 300 ms (allowed < 150 ms: it must not spin on the failed send)",
            used.map(|u| u.as_millis())
        )
    });
    Ok(())
}

// ---- http.timeouts ----

/// idle_timeout = header_timeout = 300 ms, three connections at once: one idle after a
/// response (closed with FIN, not before 280 ms nor after 300 ms + sweep + 250 ms), one
/// sending its head one byte every 50 ms (closed within 300 ms + tolerance of the head's
/// first byte), and one sending a request every 100 ms for 1 s (never closed).
pub fn timeouts(ctx: &Ctx, o: &mut Outcome) -> Checked {
    let asked = Duration::from_millis(300);
    let cfg = engine::Config {
        idle_timeout: asked,
        header_timeout: asked,
        ..ctx.config()
    };
    let server = start(ctx, cfg)?;
    // A target whose timeouts have a coarser unit (nginx: seconds) says what it runs
    // with; the windows follow its timeouts, not the ones asked for.
    let eff = server.engine().effective_config();
    let idle_to = eff.as_ref().map_or(asked, |c| c.idle_timeout);
    let header_to = eff.as_ref().map_or(asked, |c| c.header_timeout);
    // Below: the timeout less a margin; above: the timeout plus one timer sweep (the
    // reference engine sweeps every timeout / 4, at most 250 ms), both scaled.
    let window = |t: Duration| (t.saturating_sub(ctx.ms(20)), t + ctx.ms(150));
    let (low, high) = window(idle_to);
    let (h_low, h_high) = window(header_to);
    o.expect(format!("idle keep-alive connection: FIN between {} ms and {} ms (scaled) after its response; no RST on a later write", low.as_millis(), high.as_millis()));
    o.expect(format!("slowloris head (one byte per 50 ms): closed between {} ms and {} ms (scaled) after its first byte", h_low.as_millis(), h_high.as_millis()));
    o.expect("an active connection for 1 s: each request split across two writes 50 ms apart, every one answered, never closed (the header timer restarts per request)");
    let addr = server.addr();

    let idle = {
        let mut s = send(ctx, addr, &client::get("/"))?;
        let probe = Duration::from_millis(100);
        std::thread::spawn(move || {
            let first = client::observe(
                &mut s,
                Watch::until_end(Duration::from_millis(2000)).responses(1),
            );
            // Timed without the probe (whose wait would count); the probe comes after.
            let end = client::observe(&mut s, Watch::until_end(Duration::from_millis(3000)));
            let probed = if end.class == Class::Fin {
                client::observe(
                    &mut s,
                    Watch::until_end(Duration::from_millis(1000)).probe(probe),
                )
            } else {
                end.clone()
            };
            (first, end, probed)
        })
    };
    let slowloris = {
        let mut s = connect(ctx, addr)?;
        std::thread::spawn(move || -> (Option<Duration>, String) {
            let head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: 0123456789012345678901234567890123456789\r\n\r\n";
            let start = Instant::now();
            let mut one = [0u8; 64];
            for &b in head.iter() {
                if let Err(e) = s.write_all(&[b]) {
                    return (Some(start.elapsed()), format!("write failed: {e}"));
                }
                let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                let until = Instant::now() + Duration::from_millis(50);
                while Instant::now() < until {
                    match s.read(&mut one) {
                        Ok(0) => return (Some(start.elapsed()), "EOF".into()),
                        Ok(n) => {
                            return (
                                Some(start.elapsed()),
                                format!("{n} bytes: {:?}", String::from_utf8_lossy(&one[..n])),
                            )
                        }
                        Err(e) if nothing_yet(&e) => {}
                        Err(e) => return (Some(start.elapsed()), format!("read error: {e}")),
                    }
                }
            }
            (None, format!("the whole {}-byte head went out, one byte per 50 ms, and the connection stayed open", head.len()))
        })
    };
    let busy = {
        let mut s = connect(ctx, addr)?;
        std::thread::spawn(move || -> Result<usize, String> {
            let req = client::get("/");
            let (a, b) = req.split_at(req.len() / 2);
            for i in 0..10 {
                let t = Instant::now();
                s.write_all(a).map_err(|e| format!("request {i}: {e}"))?;
                std::thread::sleep(Duration::from_millis(50));
                s.write_all(b).map_err(|e| format!("request {i}: {e}"))?;
                let obs = client::observe(
                    &mut s,
                    Watch::until_end(Duration::from_millis(1000)).responses(1),
                );
                if obs.class != Class::Response {
                    return Err(format!("request {i}: {obs}"));
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
            }
            Ok(10)
        })
    };

    match idle.join() {
        Ok((first, end, probed)) => {
            o.saw(format!("idle: {first}; then {end}; probe: {probed}"));
            if first.class != Class::Response {
                o.fail(format!("idle: the first request was not answered: {first}"));
            } else {
                o.check(probed.class == Class::Fin, || {
                    format!("idle: a write 100 ms after EOF: {probed} (expected no reset)")
                });
                o.check(end.class == Class::Fin && end.at >= low && end.at <= high, || {
                    format!("idle: ended {} at {} ms after the response (expected fin within {}..{} ms)", end.class, end.at.as_millis(), low.as_millis(), high.as_millis())
                });
            }
        }
        Err(_) => return Err("the idle observer panicked".into()),
    }
    match slowloris.join() {
        Ok((at, what)) => {
            o.saw(format!(
                "slowloris: {what} at {:?} ms",
                at.map(|d| d.as_millis())
            ));
            o.check(at.is_some_and(|at| at >= h_low && at <= h_high + Duration::from_millis(50)), || {
                format!("slowloris: {what} at {:?} ms after the first byte (expected closed within {}..{} ms)", at.map(|d| d.as_millis()), h_low.as_millis(), (h_high + Duration::from_millis(50)).as_millis())
            });
        }
        Err(_) => return Err("the slowloris thread panicked".into()),
    }
    match busy.join() {
        Ok(r) => {
            o.saw(format!("busy connection: {r:?}"));
            o.check(r.is_ok(), || {
                format!("busy connection: {}", r.clone().err().unwrap_or_default())
            });
        }
        Err(_) => return Err("the busy client panicked".into()),
    }
    Ok(())
}

// ---- http.date ----

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), with
/// the weekday checked; `None` if it is not one.
pub(crate) fn parse_imf_fixdate(v: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = v.as_bytes();
    if b.len() != 29
        || &v[3..5] != ", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || &v[25..] != " GMT"
        || b[19] != b':'
        || b[22] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        v.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &v[8..11])? as i64 + 1;
    let year = num(12..16)?;
    let (h, mi, s) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if DAYS[days.rem_euclid(7) as usize] != &v[..3] {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Responses of several kinds (POST /echo, an HTTP/1.0 GET, a 400 error) and a
/// keep-alive connection asking GET / every 300 ms for 1.2 s: every response
/// carries a `date` in IMF-fixdate, within 2 s of the client's clock, and the value
/// moves on as seconds pass.
pub fn date(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("every response: a date header in IMF-fixdate format, between now - 2 s and now + 1 s by the client's clock; it advances over 1.2 s");
    let server = start(ctx, ctx.config())?;
    let addr = server.addr();
    let mut responses: Vec<(String, Resp, i64)> = Vec::new();
    let now_secs = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let kinds: [(&str, &[u8]); 3] = [
        (
            "POST /echo",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi",
        ),
        ("HTTP/1.0 GET", b"GET / HTTP/1.0\r\n\r\n"),
        ("400 error", b"GET / HTTP/1.1\r\n\r\n"),
    ];
    for (name, req) in kinds {
        match send(ctx, addr, req) {
            Ok(mut s) => {
                let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1));
                match obs.responses.first() {
                    Some(r) => responses.push((name.to_string(), r.clone(), now_secs())),
                    None => o.fail(format!("{name}: no response: {obs}")),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut s = connect(ctx, addr)?;
    for i in 0..5 {
        let t = Instant::now();
        let _ = s.write_all(&client::get("/"));
        let obs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1));
        match obs.responses.first() {
            Some(r) => responses.push((format!("keep-alive GET {i}"), r.clone(), now_secs())),
            None => o.fail(format!("keep-alive GET {i}: no response: {obs}")),
        }
        if i < 4 {
            std::thread::sleep(Duration::from_millis(300).saturating_sub(t.elapsed()));
        }
    }
    let mut seen = Vec::new();
    for (name, r, now) in &responses {
        let d = r.header("date");
        let parsed = d.and_then(parse_imf_fixdate);
        o.saw(format!("{name}: date {d:?} (client clock {now})"));
        match parsed {
            Some(t) => {
                seen.push(t);
                o.check(t >= now - 2 && t <= now + 1, || {
                    format!(
                        "{name}: date {:?} is {} s from the client's clock",
                        d.unwrap_or(""),
                        t - now
                    )
                });
            }
            None => o.fail(format!(
                "{name}: date header {d:?} is missing or not IMF-fixdate"
            )),
        }
    }
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        o.check(last > first, || {
            "the date did not advance over 1.2 s".into()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate_round_trip() {
        assert_eq!(
            parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    }
}
