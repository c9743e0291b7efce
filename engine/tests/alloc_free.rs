//! perf.alloc-free: serving keep-alive plaintext requests in steady state makes zero
//! heap allocations, counted by a global allocator over 10,000 requests.

// Unsafe code is for engine::sys alone, tests included.
#![deny(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Config, Engine, Request, Response};

#[global_allocator]
static GLOBAL: engine::sys::alloc::Counting = engine::sys::alloc::Counting;

const REQUEST: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: bench\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n";

fn one(s: &mut TcpStream, resp: &mut [u8]) {
    s.write_all(REQUEST).unwrap();
    s.read_exact(resp).unwrap();
}

#[test]
fn steady_state_keep_alive_requests_allocate_nothing() {
    let handler = |_: &Request<'_>, res: &mut Response| {
        res.header("content-type", b"text/plain")
            .body(b"Hello, World!");
    };
    let cfg = Config {
        workers: 1,
        ..Config::default()
    };
    let engine = Arc::new(Engine::new(cfg, handler).unwrap());
    let e = Arc::clone(&engine);
    let t = std::thread::spawn(move || e.listen());
    let end = Instant::now() + Duration::from_secs(5);
    while engine.addr().is_none() {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut s = TcpStream::connect(engine.addr().unwrap()).unwrap();
    s.set_nodelay(true).unwrap();
    // Learn the response length once (it is the same for every request: the date
    // header has a fixed width).
    s.write_all(REQUEST).unwrap();
    let mut first = vec![0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(
        first[..n].ends_with(b"Hello, World!"),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
    let mut resp = vec![0u8; n];
    for _ in 0..1000 {
        one(&mut s, &mut resp);
    }
    let before = engine::sys::alloc::allocations();
    for _ in 0..10_000 {
        one(&mut s, &mut resp);
    }
    let after = engine::sys::alloc::allocations();
    assert!(resp.ends_with(b"Hello, World!"));
    drop(s);
    engine.shutdown(Duration::from_secs(1)).unwrap();
    t.join().unwrap().unwrap();
    assert_eq!(
        after - before,
        0,
        "{} allocations over 10,000 keep-alive requests",
        after - before
    );
}
