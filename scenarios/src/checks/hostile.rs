//! Section 7: hostile input, observed from outside: the engine's CPU time from `/proc`
//! (a growth ratio, so each check takes a second or two rather than minutes of
//! attack) and what clients get.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::http::{briefs, connect, send};
use crate::client::{self, Class, Resp, Watch};
use crate::ctx::Ctx;
use crate::harness::{process_cpu_time, thread_cpu_time, Server};
use crate::outcome::{Abort, Checked, Outcome};
use crate::targets::Capability;

/// Where the engine's CPU time is read: its worker threads when the target names them
/// (`worker_loop(i).thread_id()`: the harness's own threads are not counted, also in
/// process), else its whole process when it runs in another one.
enum EngineCpu {
    Threads(Vec<i32>),
    Process(u32),
}

impl EngineCpu {
    fn of(server: &Server) -> Result<EngineCpu, Abort> {
        let inst = server.engine();
        let tids: Vec<i32> = (0..inst.num_workers())
            .filter_map(|i| inst.worker_loop(i as i64))
            .map(|l| l.thread_id())
            .collect();
        if !tids.is_empty() && tids.iter().all(|&t| thread_cpu_time(t).is_some()) {
            return Ok(EngineCpu::Threads(tids));
        }
        match inst.pid() {
            Some(pid) if pid != std::process::id() && process_cpu_time(pid).is_some() => {
                Ok(EngineCpu::Process(pid))
            }
            _ => Err(Abort::Skipped(
                "the target's CPU time cannot be read: it names no worker threads and runs in no process of this machine the harness can read in /proc (a URL or nginx)".into(),
            )),
        }
    }

    fn now(&self) -> Duration {
        match self {
            EngineCpu::Threads(tids) => tids
                .iter()
                .map(|&t| thread_cpu_time(t).unwrap_or_default())
                .sum(),
            EngineCpu::Process(pid) => process_cpu_time(*pid).unwrap_or_default(),
        }
    }

    fn describe(&self) -> String {
        match self {
            EngineCpu::Threads(t) => format!("CPU of the worker threads {t:?}"),
            EngineCpu::Process(p) => format!("CPU of process {p}"),
        }
    }
}

/// The allowed growth when the input doubles: 2 × within 30 % (SPEC §7).
const MAX_GROWTH: f64 = 2.0 * 1.3;

/// The engine's CPU for one request sent by `send_request` on a fresh connection and
/// a `GET /` after it, measured until the second response has arrived (so the first
/// request was framed to its end, also by an engine that answers before reading a
/// body); the first response's status (0 when the second is missing).
fn cpu_for(
    ctx: &Ctx,
    server: &Server,
    cpu: &EngineCpu,
    send_request: &mut dyn FnMut(&mut TcpStream) -> Result<(), String>,
) -> Result<(Duration, u16), Abort> {
    let mut s = connect(ctx, server.addr())?;
    let _ = s.set_nodelay(true);
    let c0 = cpu.now();
    send_request(&mut s)?;
    s.write_all(&client::get("/"))
        .map_err(|e| format!("send: {e}"))?;
    let got = client::read_responses(&mut s, 2, ctx.ms(20_000));
    let used = cpu.now().saturating_sub(c0);
    let statuses: Vec<u16> = got
        .map(|(_, rs)| rs.iter().map(|r| r.status).collect())
        .unwrap_or_default();
    match statuses[..] {
        [] => Err("no response to the request".into()),
        [first, _] => Ok((used, first)),
        _ => Ok((used, 0)),
    }
}

/// Measures `sizes.0` and `sizes.1` (twice the first) `runs` times each, in adjacent
/// pairs; records and checks the growth. The machine's state (another scenario on the
/// sibling core, frequency) can change between runs, so the growth is the smaller of
/// the ratio of the smallest CPU times and the median ratio within a pair: both are
/// about 2 for a linear parser and about 4 for a quadratic one.
fn growth(
    ctx: &Ctx,
    o: &mut Outcome,
    server: &Server,
    what: &str,
    sizes: (usize, usize),
    runs: usize,
    send_sized: &mut dyn FnMut(&mut TcpStream, usize) -> Result<(), String>,
) -> Checked {
    let cpu = EngineCpu::of(server)?;
    let mut pairs: Vec<[Duration; 2]> = Vec::new();
    for _ in 0..runs {
        let mut pair = [Duration::ZERO; 2];
        for (i, n) in [sizes.0, sizes.1].into_iter().enumerate() {
            let (used, status) = cpu_for(ctx, server, &cpu, &mut |s| send_sized(s, n))?;
            if status != 200 {
                o.fail(format!(
                    "{what} {n}: status {status} (expected 200, then the GET after it answered)"
                ));
                return Ok(());
            }
            pair[i] = used;
        }
        pairs.push(pair);
    }
    let secs = |d: Duration| d.as_secs_f64().max(1e-6);
    let smallest = |i: usize| pairs.iter().map(|p| p[i]).min().unwrap_or_default();
    let of_smallest = secs(smallest(1)) / secs(smallest(0));
    let mut within: Vec<f64> = pairs.iter().map(|p| secs(p[1]) / secs(p[0])).collect();
    within.sort_by(f64::total_cmp);
    let median = within.get(within.len() / 2).copied().unwrap_or(f64::MAX);
    let ratio = of_smallest.min(median);
    let micros = |i: usize| pairs.iter().map(|p| p[i].as_micros()).collect::<Vec<_>>();
    o.saw(format!(
        "{}: {what} {}: {:?} µs, {}: {:?} µs; ratio of the smallest {of_smallest:.2}, median ratio within a pair {median:.2}: growth {ratio:.2}",
        cpu.describe(),
        sizes.0,
        micros(0),
        sizes.1,
        micros(1),
    ));
    o.check(ratio <= MAX_GROWTH, || {
        format!(
            "{what}: doubling the input multiplied the engine's CPU by {ratio:.2} (allowed {MAX_GROWTH:.1}): parsing is not linear"
        )
    });
    Ok(())
}

// ---- hostile.chunked-linear ----

/// One 1-byte chunk, as a chunked body encodes it.
const ONE_BYTE_CHUNK: &[u8] = b"1\r\na\r\n";

/// One worker (`max_body_bytes` 4 MiB): `POST /` with a chunked body of N = 128 Ki
/// one-byte chunks and of 2N, sent in one stream (the engine reads it in its own
/// pieces), three times each; the engine's CPU until the response arrived must grow
/// at most 2.6× (2 × within 30 %). Decoding again from the start
/// on every read makes it about 4×.
pub fn chunked_linear(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect(format!("the engine's CPU for 2N one-byte chunks ≤ {MAX_GROWTH:.1} × its CPU for N (N = 128 Ki, 3 runs each: the smaller of the ratio of the smallest and the median ratio within a pair); every request answered 200"));
    let cfg = engine::Config {
        workers: 1,
        max_body_bytes: 4 << 20,
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    let n = 128 * 1024;
    growth(
        ctx,
        o,
        &server,
        "one-byte chunks",
        (n, 2 * n),
        3,
        &mut |s, chunks| {
            let mut req =
                b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            req.reserve(chunks * ONE_BYTE_CHUNK.len() + 5);
            for _ in 0..chunks {
                req.extend_from_slice(ONE_BYTE_CHUNK);
            }
            req.extend_from_slice(b"0\r\n\r\n");
            s.write_all(&req).map_err(|e| format!("send: {e}"))
        },
    )
}

// ---- hostile.head-linear ----

/// A request head of about `size` bytes: `GET /` with padding header lines.
fn padded_head(size: usize) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: test\r\n".to_vec();
    let mut i = 0;
    while head.len() + 2 < size {
        head.extend_from_slice(format!("X-Pad-{i:05}: {}\r\n", "p".repeat(240)).as_bytes());
        i += 1;
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes `data` in `piece`-byte writes; with the target's metrics, each write waits
/// (up to 100 ms) until the engine has read it, so each piece is one read.
fn drip(
    ctx: &Ctx,
    server: &Server,
    s: &mut TcpStream,
    data: &[u8],
    piece: usize,
) -> Result<(), String> {
    let paced = ctx.target.capabilities().contains(&Capability::Metrics);
    let read = || server.engine().metrics().bytes_read;
    for p in data.chunks(piece) {
        let before = if paced { read() } else { 0 };
        s.write_all(p).map_err(|e| format!("send: {e}"))?;
        if paced {
            let until = Instant::now() + Duration::from_millis(100);
            while read() < before + p.len() as u64 && Instant::now() < until {
                std::thread::yield_now();
            }
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// One worker (`max_header_bytes` 256 KiB): a head of 32 KiB and one of 64 KiB, each
/// sent in 64-byte writes that the engine reads one by one (paced by its bytes-read
/// counter), seven times each; the engine's CPU until the response arrived must grow
/// at most 2.6×. Searching the head again from its start on each read makes it about
/// 4×.
pub fn head_linear(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect(format!("the engine's CPU for a 64 KiB head sent in 64-byte pieces ≤ {MAX_GROWTH:.1} × its CPU for a 32 KiB head sent the same way (7 runs each: the smaller of the ratio of the smallest and the median ratio within a pair); all answered 200"));
    let cfg = engine::Config {
        workers: 1,
        max_header_bytes: 256 * 1024,
        header_timeout: Duration::from_secs(60),
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    let heads = (padded_head(32 * 1024), padded_head(64 * 1024));
    growth(
        ctx,
        o,
        &server,
        "head bytes",
        (heads.0.len(), heads.1.len()),
        7,
        &mut |s, len| {
            let head = if len == heads.0.len() {
                &heads.0
            } else {
                &heads.1
            };
            drip(ctx, &server, s, head, 64)
        },
    )
}

// ---- hostile.trailers ----

/// The trailer cases: name, trailer section (without the final empty line), and the
/// status it must get.
fn trailer_cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let many: Vec<u8> = (0..100)
        .flat_map(|i| format!("X-T-{i:03}: {}\r\n", "t".repeat(50)).into_bytes())
        .collect();
    let long = format!("X-Long: {}\r\n", "l".repeat(6000)).into_bytes();
    vec![
        (
            "small trailers",
            b"Expires: never\r\nX-T: 1\r\n".to_vec(),
            200,
        ),
        ("6 KiB of trailer lines (limit 4 KiB)", many, 431),
        ("one 6 KiB trailer line (limit 4 KiB)", long, 431),
        (
            "trailer line without colon",
            b"No colon here\r\n".to_vec(),
            400,
        ),
        ("NUL in a trailer value", b"X-T: a\0b\r\n".to_vec(), 400),
        ("bare CR in a trailer value", b"X-T: a\rb\r\n".to_vec(), 400),
    ]
}

/// `max_header_bytes` 4 KiB: chunked `POST /echo` bodies with small trailers (the body
/// echoed, the pipelined request after it answered), trailers over the limit in many
/// lines and in one (431), and trailer lines without a colon, with NUL, with a bare CR
/// (400); each refusal is one response with `connection: close`, then FIN.
pub fn trailers(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("small trailers: the body echoed, then the next request answered");
    o.expect("trailers over max_header_bytes (4 KiB), in many lines or one → 431; a trailer line without colon, with NUL or a bare CR → 400; each one response with connection: close, then FIN");
    let cfg = engine::Config {
        max_header_bytes: 4096,
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    // Without the test routes there is no /echo: the framing shows in the next answer.
    let echoes = ctx.target.capabilities().contains(&Capability::TestRoutes);
    let mut streams = Vec::new();
    let cases = trailer_cases();
    for (_, trailer, _) in &cases {
        let mut req =
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                .to_vec();
        req.extend_from_slice(trailer);
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(&client::get("/"));
        streams.push(send(ctx, server.addr(), &req)?);
    }
    let watch = Watch::until_end(ctx.ms(2000)).responses(2);
    for (obs, (name, _, status)) in client::observe_all(streams, watch).iter().zip(&cases) {
        o.saw(format!("{name}: [{}], {obs}", briefs(&obs.responses)));
        let rs: &[Resp] = &obs.responses;
        if *status == 200 {
            o.check(
                rs.len() == 2
                    && rs[0].status == 200
                    && (rs[0].body == b"hello" || !echoes)
                    && rs[1].status == 200,
                || format!("{name}: [{}] (expected the body \"hello\" echoed (where /echo exists), then the next request answered)", briefs(rs)),
            );
            continue;
        }
        o.check(
            rs.len() == 1 && rs[0].status == *status && rs[0].closes(),
            || {
                format!(
                    "{name}: [{}] (expected exactly one {status} with connection: close)",
                    briefs(rs)
                )
            },
        );
        o.check(matches!(obs.class, Class::Fin | Class::FinThenRst), || {
            format!("{name}: ended {} (expected EOF)", obs.class)
        });
    }
    Ok(())
}

// ---- hostile.request-target ----

/// Absolute-form `GET http://authority.test:81/inspect?abs` with `Host: other.test`
/// (routed to `/inspect`, which shows target `/inspect?abs` and Host
/// `authority.test:81`); `GET *` (400, close); `OPTIONS *` (anything but 400); and a
/// request after an empty line, in the same write and in a later one (answered).
pub fn request_target(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("GET http://authority.test:81/inspect?abs with Host: other.test: routed to /inspect, target /inspect?abs, Host authority.test:81");
    o.expect("GET * → 400 with connection: close; OPTIONS * → not 400");
    o.expect("an empty line before the request line is ignored, whether it arrives with the request or alone");
    let server = Server::start(ctx, ctx.config())?;
    let addr = server.addr();
    let ask = |req: &[u8]| -> Result<Vec<Resp>, Abort> {
        let mut s = send(ctx, addr, req)?;
        Ok(client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1)).responses)
    };

    let rs = ask(b"GET http://authority.test:81/inspect?abs HTTP/1.1\r\nHost: other.test\r\n\r\n")?;
    o.saw(format!("absolute form: [{}]", briefs(&rs)));
    let text = rs
        .first()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    o.check(
        rs.first().is_some_and(|r| r.status == 200) && text.starts_with("GET /inspect?abs 1\n"),
        || format!("absolute form: [{}] (expected /inspect to answer, showing target /inspect?abs: routed by the path)", briefs(&rs)),
    );
    let hosts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("h "))
        .filter(|h| h.to_ascii_lowercase().starts_with("host:"))
        .collect();
    o.check(hosts == ["Host: authority.test:81"], || {
        format!("absolute form: the handler saw Host {hosts:?} (expected the authority authority.test:81 to replace Host: other.test)")
    });

    let rs = ask(b"GET * HTTP/1.1\r\nHost: test\r\n\r\n")?;
    o.saw(format!("GET *: [{}]", briefs(&rs)));
    o.check(
        rs.len() == 1 && rs[0].status == 400 && rs[0].closes(),
        || {
            format!(
                "GET *: [{}] (expected 400 with connection: close: * is for OPTIONS only)",
                briefs(&rs)
            )
        },
    );
    let rs = ask(b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n")?;
    o.saw(format!("OPTIONS *: [{}]", briefs(&rs)));
    o.check(rs.first().is_some_and(|r| r.status != 400), || {
        format!(
            "OPTIONS *: [{}] (expected a response other than 400)",
            briefs(&rs)
        )
    });

    let req = client::get("/inspect?after-empty-line");
    let answered = |rs: &[Resp]| {
        rs.first().is_some_and(|r| {
            r.status == 200 && r.body.starts_with(b"GET /inspect?after-empty-line 1\n")
        })
    };
    let mut with = b"\r\n".to_vec();
    with.extend_from_slice(&req);
    let rs = ask(&with)?;
    o.saw(format!("empty line, then the request: [{}]", briefs(&rs)));
    o.check(answered(&rs), || {
        format!(
            "empty line before the request line: [{}] (expected it ignored and the request answered)",
            briefs(&rs)
        )
    });
    let mut s = send(ctx, addr, b"\r\n")?;
    // The empty line alone first: the engine reads it before the request arrives.
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&req)
        .map_err(|e| format!("send after the empty line: {e}"))?;
    let rs = client::observe(&mut s, Watch::until_end(ctx.ms(1500)).responses(1)).responses;
    o.saw(format!(
        "empty line alone, then the request: [{}]",
        briefs(&rs)
    ));
    o.check(answered(&rs), || {
        format!(
            "an empty line in its own write, then the request: [{}] (expected it ignored and the request answered)",
            briefs(&rs)
        )
    });
    Ok(())
}
