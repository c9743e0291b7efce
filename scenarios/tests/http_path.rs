//! The minimal HTTP/1.1 path the accept and worker clauses are observed through.

// Unsafe code is for engine::sys alone, tests included.
#![deny(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Config, Engine, Request, Response};

struct Running {
    engine: Arc<Engine>,
    thread: Option<std::thread::JoinHandle<Result<(), engine::EngineError>>>,
}

impl Running {
    #[track_caller]
    fn start(cfg: Config) -> Running {
        let handler = |req: &Request<'_>, res: &mut Response| match req.path() {
            b"/echo" => {
                res.body(req.body());
            }
            b"/big" => {
                res.body_mut().resize(8 << 20, b'z');
            }
            b"/stream" => {
                // 8 MiB + 7 bytes of a counting pattern, produced 100,000 bytes at a time.
                let mut next = 0u64;
                res.stream((8 << 20) + 7, move |out: &mut Vec<u8>| {
                    for _ in 0..100_000 {
                        out.push((next % 251) as u8);
                        next += 1;
                    }
                });
            }
            b"/stall" => {
                res.stream(10, |_: &mut Vec<u8>| {});
            }
            p => {
                let mut body = b"path=".to_vec();
                body.extend_from_slice(p);
                res.body(&body);
            }
        };
        let engine = Arc::new(Engine::new(cfg, handler).expect("valid config"));
        let e = Arc::clone(&engine);
        let thread = Some(std::thread::spawn(move || e.listen()));
        let end = Instant::now() + Duration::from_secs(5);
        while engine.addr().is_none() {
            assert!(Instant::now() < end, "engine did not listen within 5 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        Running { engine, thread }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.engine.addr().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.engine.shutdown(Duration::from_secs(1)).unwrap();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

/// Reads until `n` complete responses (Content-Length framed) or EOF.
fn read_responses(s: &mut TcpStream, n: usize) -> (Vec<(u16, String, Vec<u8>)>, bool) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut eof = false;
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            out.push((status, head, body));
        }
        if out.len() >= n || eof {
            return (out, eof);
        }
        match s.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

fn cfg() -> Config {
    Config {
        workers: 2,
        ..Config::default()
    }
}

#[test]
fn keep_alive_and_pipelining_in_order() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (resp, _) = read_responses(&mut s, 1);
    assert_eq!(resp[0].2, b"path=/a");
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz")
        .unwrap();
    let (resp, eof) = read_responses(&mut s, 3);
    assert!(!eof);
    let bodies: Vec<_> = resp.iter().map(|r| r.2.clone()).collect();
    assert_eq!(
        bodies,
        [b"path=/1".to_vec(), b"path=/2".to_vec(), b"xyz".to_vec()]
    );
    assert!(resp[0].1.contains("date: "));
}

#[test]
fn connection_close_gets_a_response_then_eof_and_later_requests_are_not_answered() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp.len(), 1);
    assert!(resp[0].1.contains("connection: close"));
    assert!(eof);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (_, eof) = read_responses(&mut s, 2);
    assert!(eof);
    let mut s = r.connect();
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (resp, eof) = read_responses(&mut s, 1);
    assert_eq!(resp.len(), 1);
    assert!(!eof);
}

#[test]
fn malformed_request_gets_400_with_close() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GARBAGE\r\n\r\n").unwrap();
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp[0].0, 400);
    assert!(resp[0].1.contains("connection: close"));
    assert!(eof);
}

#[test]
fn one_byte_per_write_parses_like_one_write() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.set_nodelay(true).unwrap();
    let req = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for b in req.iter() {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    let (resp, _) = read_responses(&mut s, 1);
    assert_eq!(resp[0].2, b"hello");
}

#[test]
fn large_response_reaches_a_slow_reader_whole() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Let the server fill the socket buffers before reading.
    std::thread::sleep(Duration::from_millis(100));
    let (resp, _) = read_responses(&mut s, 2);
    assert_eq!(resp[0].2.len(), 8 << 20);
    assert!(resp[0].2.iter().all(|&b| b == b'z'));
    assert_eq!(resp[1].2, b"path=/after");
}

#[test]
fn metrics_count_requests_and_connections() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_responses(&mut s, 2);
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let m = r.engine.metrics();
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
    let r = Running::start(cfg());
    let req: &[u8] = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";
    for cut in [1, 3, 40, 60, 70, req.len() - 3] {
        let mut s = r.connect();
        s.set_nodelay(true).unwrap();
        s.write_all(&req[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        s.write_all(&req[cut..]).unwrap();
        let (resp, _) = read_responses(&mut s, 2);
        assert_eq!(resp[0].2, b"Wikipedia", "cut {cut}");
        assert_eq!(resp[1].2, b"path=/after", "cut {cut}");
    }
}

#[test]
fn smuggling_and_oversize_are_refused() {
    let r = Running::start(Config {
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
        let mut s = r.connect();
        s.write_all(req).unwrap();
        if status == 431 {
            s.write_all(&[b'a'; 2048]).unwrap();
        }
        let (resp, eof) = read_responses(&mut s, 2);
        assert_eq!(resp[0].0, status, "{}", String::from_utf8_lossy(req));
        assert!(resp[0].1.contains("connection: close"));
        assert!(eof);
    }
}

#[test]
fn streamed_bodies_reach_a_slow_reader_whole_and_in_order() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (resp, eof) = read_responses(&mut s, 2);
    assert!(!eof);
    assert_eq!(resp[0].2.len(), (8 << 20) + 7);
    assert!(resp[0]
        .2
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i as u64 % 251) as u8));
    assert_eq!(resp[1].2, b"path=/after");
    // HEAD announces the streamed length and sends no body: the next response follows.
    s.write_all(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.ends_with(b"path=/next") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("content-length: 8388615"), "{head}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK"),
        "HEAD sent a body: {rest:?}"
    );
    // With Connection: close the stream ends the connection.
    let mut s = r.connect();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (resp, eof) = read_responses(&mut s, 2);
    assert_eq!(resp.len(), 1);
    assert_eq!(resp[0].2.len(), (8 << 20) + 7);
    assert!(eof);
}

#[test]
fn a_stalled_stream_closes_the_connection_instead_of_misframing() {
    let r = Running::start(cfg());
    let mut s = r.connect();
    s.write_all(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK") && text.contains("content-length: 10"));
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body byte may follow: {text:?}"
    );
}
