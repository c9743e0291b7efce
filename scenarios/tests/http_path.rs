//! The minimal HTTP/1.1 path the accept and worker clauses are observed through, seen
//! with `scenarios::client` against the reference engine's test routes. (It lives
//! here, not in `engine/tests`, because `scenarios` depends on `engine`.)

// Unsafe code is for engine::sys alone, tests included.
#![deny(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use engine::Config;
use scenarios::client::{observe, read_raw, Class, Resp, Watch};
use scenarios::targets::reference::Running;
use scenarios::test_handler::{count_byte, fnv1a, TestHandler};

/// An engine for one test; dropped, it must shut down cleanly and `listen` return Ok
/// (each test asserts that too).
struct Serving(Running);

impl std::ops::Deref for Serving {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.0
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let clean = self.0.shutdown(Duration::from_secs(1));
        if !std::thread::panicking() {
            clean.expect("the engine shuts down cleanly and listen returns Ok");
        }
    }
}

/// The engine with the test routes ([`TestHandler`]).
#[track_caller]
fn start(cfg: Config) -> Serving {
    start_with(cfg, TestHandler::default())
}

#[track_caller]
fn start_with(cfg: Config, handler: TestHandler) -> Serving {
    Serving(Running::start(cfg, handler).unwrap_or_else(|e| panic!("{e}")))
}

#[track_caller]
fn connect(r: &Running) -> TcpStream {
    let s = TcpStream::connect(r.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Connects and sends `req`.
#[track_caller]
fn send(r: &Running, req: impl AsRef<[u8]>) -> TcpStream {
    let mut s = connect(r);
    s.write_all(req.as_ref()).unwrap();
    s
}

/// Reads until `n` complete final responses or the end of the connection; whether it
/// ended (EOF) before `n` came. A reset or 10 s without either fails.
#[track_caller]
fn read_responses(s: &mut TcpStream, n: usize) -> (Vec<Resp>, bool) {
    let o = observe(s, Watch::until_end(Duration::from_secs(10)).responses(n));
    let eof = match o.class {
        Class::Response => false,
        Class::Fin | Class::FinThenRst => true,
        _ => panic!("read failed: {o}"),
    };
    (o.responses, eof)
}

/// `GET /inspect?TAG`: a body that names the request, to tell responses apart.
fn tagged_get(tag: &str) -> String {
    format!("GET /inspect?{tag} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// The whole `/inspect` body [`tagged_get`] draws.
fn tagged_body(tag: &str) -> Vec<u8> {
    format!(
        "GET /inspect?{tag} 1\nbody 0 {:016x}\nh Host: x\n",
        fnv1a(b"")
    )
    .into_bytes()
}

/// Closes with `connection: close` (the exact field the engine sends).
fn closes(r: &Resp) -> bool {
    r.header("connection") == Some("close")
}

fn cfg() -> Config {
    Config {
        workers: 2,
        ..Config::default()
    }
}

#[test]
fn keep_alive_and_pipelining_in_order() {
    let r = start(cfg());
    let mut s = send(&r, tagged_get("a"));
    let (resp, _) = read_responses(&mut s, 1);
    assert_eq!(resp[0].body, tagged_body("a"));
    let pipelined = format!(
        "{}{}POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz",
        tagged_get("1"),
        tagged_get("2")
    );
    s.write_all(pipelined.as_bytes()).unwrap();
    let (resp, eof) = read_responses(&mut s, 3);
    assert!(!eof);
    let bodies: Vec<_> = resp.iter().map(|r| r.body.clone()).collect();
    assert_eq!(
        bodies,
        [tagged_body("1"), tagged_body("2"), b"xyz".to_vec()]
    );
    assert!(resp[0].header("date").is_some(), "{:?}", resp[0].headers);
}

#[test]
fn connection_close_gets_a_response_then_eof_and_later_requests_are_not_answered() {
    let r = start(cfg());
    let mut s = send(&r, b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n");
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp.len(), 1);
    assert!(closes(&resp[0]), "{:?}", resp[0].headers);
    assert!(eof);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let r = start(cfg());
    let mut s = send(&r, b"GET / HTTP/1.0\r\n\r\n");
    let (_, eof) = read_responses(&mut s, 2);
    assert!(eof);
    let mut s = send(&r, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let (resp, eof) = read_responses(&mut s, 1);
    assert_eq!(resp.len(), 1);
    assert!(!eof);
}

#[test]
fn malformed_request_gets_400_with_close() {
    let r = start(cfg());
    let mut s = send(&r, b"GARBAGE\r\n\r\n");
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp[0].status, 400);
    assert!(closes(&resp[0]), "{:?}", resp[0].headers);
    assert!(eof);
}

#[test]
fn one_byte_per_write_parses_like_one_write() {
    let r = start(cfg());
    let mut s = connect(&r);
    s.set_nodelay(true).unwrap();
    let req = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for b in req.iter() {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    let (resp, _) = read_responses(&mut s, 1);
    assert_eq!(resp[0].body, b"hello");
}

#[test]
fn large_response_reaches_a_slow_reader_whole() {
    let r = start(cfg());
    let mut s = connect(&r);
    let req = format!(
        "GET /big?bytes={} HTTP/1.1\r\nHost: x\r\n\r\n{}",
        8 << 20,
        tagged_get("after")
    );
    s.write_all(req.as_bytes()).unwrap();
    // Let the server fill the socket buffers before reading.
    std::thread::sleep(Duration::from_millis(100));
    let (resp, _) = read_responses(&mut s, 2);
    assert_eq!(resp[0].body.len(), 8 << 20);
    assert!(resp[0].body.iter().all(|&b| b == b'a'));
    assert_eq!(resp[1].body, tagged_body("after"));
}

#[test]
fn metrics_count_requests_and_connections() {
    let r = start(cfg());
    let mut s = send(
        &r,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    read_responses(&mut s, 2);
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let m = r.engine().metrics();
        if m.requests_served >= 2 {
            assert_eq!(m.accepted, 1);
            assert_eq!(m.workers.len(), 2);
            assert!(m.bytes_read > 0 && m.bytes_written > 0);
            break;
        }
        assert!(Instant::now() < end, "requests not counted: {m:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_split_anywhere() {
    let r = start(cfg());
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n{}",
        tagged_get("after")
    );
    let req = req.as_bytes();
    for cut in [1, 3, 40, 60, 70, req.len() - 3] {
        let mut s = connect(&r);
        s.set_nodelay(true).unwrap();
        s.write_all(&req[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        s.write_all(&req[cut..]).unwrap();
        let (resp, _) = read_responses(&mut s, 2);
        assert_eq!(resp[0].body, b"Wikipedia", "cut {cut}");
        assert_eq!(resp[1].body, tagged_body("after"), "cut {cut}");
    }
}

#[test]
fn smuggling_and_oversize_are_refused() {
    let r = start(Config {
        workers: 1,
        max_header_bytes: 1024,
        max_body_bytes: 64,
        ..Config::default()
    });
    let cases: [(&[u8], u16); 4] = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", 431),
    ];
    for (req, status) in cases {
        let mut s = send(&r, req);
        if status == 431 {
            s.write_all(&[b'a'; 2048]).unwrap();
        }
        let (resp, eof) = read_responses(&mut s, 2);
        assert_eq!(resp[0].status, status, "{}", String::from_utf8_lossy(req));
        assert!(closes(&resp[0]), "{:?}", resp[0].headers);
        assert!(eof);
    }
}

/// The streamed counting body: 8 MiB + 7 bytes, produced 100,000 bytes at a time.
const COUNT_LEN: usize = (8 << 20) + 7;

#[test]
fn streamed_bodies_reach_a_slow_reader_whole_and_in_order() {
    let r = start(cfg());
    let count = format!("GET /count?bytes={COUNT_LEN} HTTP/1.1\r\nHost: x\r\n");
    let mut s = send(&r, format!("{count}\r\n{}", tagged_get("after")));
    std::thread::sleep(Duration::from_millis(100));
    let (resp, eof) = read_responses(&mut s, 2);
    assert!(!eof);
    assert_eq!(resp[0].body.len(), COUNT_LEN);
    assert!(resp[0]
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == count_byte(i as u64)));
    assert_eq!(resp[1].body, tagged_body("after"));
    // HEAD announces the streamed length and sends no body: the next response follows.
    let head = format!("HEAD /count?bytes={COUNT_LEN} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(format!("{head}{}", tagged_get("next")).as_bytes())
        .unwrap();
    let next = tagged_body("next");
    let (got, stop) = read_raw(&mut s, Duration::from_secs(10), |b| b.ends_with(&next));
    assert_eq!(stop, "done", "after {:?}", String::from_utf8_lossy(&got));
    let text = String::from_utf8_lossy(&got);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("content-length: 8388615"), "{head}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK"),
        "HEAD sent a body: {rest:?}"
    );
    // With Connection: close the stream ends the connection.
    let mut s = send(&r, format!("{count}Connection: close\r\n\r\n"));
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp.len(), 1);
    assert_eq!(resp[0].body.len(), COUNT_LEN);
    assert!(eof);
}

#[test]
fn a_stalled_stream_closes_the_connection_instead_of_misframing() {
    let r = start(cfg());
    let mut s = send(&r, b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK") && text.contains("content-length: 10"));
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body byte may follow: {text:?}"
    );
}

/// `loadgen serve`'s table: the public routes alone; a test route's path falls through
/// to `/`, and `/big` refuses more than 64 MiB.
#[test]
fn the_public_table_serves_no_test_route() {
    let r = start_with(cfg(), TestHandler::public());
    let mut s = connect(&r);
    let started = Instant::now();
    for path in [
        "/slow?ms=5000",
        "/hold",
        "/id",
        "/inspect",
        "/count?bytes=9",
        "/stall",
    ] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let (resp, eof) = read_responses(&mut s, 1);
        assert!(!eof, "{path}");
        assert_eq!(resp[0].body, b"Hello, World!", "{path}");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "/slow slept");
    s.write_all(b"GET /big?bytes=67108865 HTTP/1.1\r\nHost: x\r\n\r\nGET /big?bytes=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (resp, _) = read_responses(&mut s, 2);
    assert_eq!(resp[0].status, 400);
    assert_eq!(resp[0].body, b"use /big?bytes=N with N <= 67108864\n");
    assert_eq!(resp[1].body, b"aaaaa");
    assert_eq!(
        resp[1].header("content-type"),
        Some("application/octet-stream")
    );
}
