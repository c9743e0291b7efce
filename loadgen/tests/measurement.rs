//! Measurement truth: the load generator's numbers against servers whose behaviour
//! is known exactly.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::EngineServer;
use engine::{Request, Response};
use loadgen::load::{run, RunConfig};
use reports::histogram::decode;

#[test]
fn a_one_second_stall_shows_in_corrected_p99_not_in_uncorrected() {
    // The worker stalls once for 1 s, 2 s into a 6 s open-model run at 500/s.
    let start = Arc::new(Mutex::new(None::<Instant>));
    let stalled = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (Arc::clone(&start), Arc::clone(&stalled));
    let server = EngineServer::start(move |_: &Request<'_>, res: &mut Response| {
        let t0 = *s2.lock().unwrap().get_or_insert_with(Instant::now);
        if t0.elapsed() > Duration::from_secs(2) && !st2.swap(true, SeqCst) {
            std::thread::sleep(Duration::from_secs(1));
        }
        res.body(b"ok");
    });
    let mut cfg = RunConfig::new(&server.url(), 4, Duration::from_secs(6)).unwrap();
    cfg.rate = Some(500.0);
    let r = run(&cfg).unwrap();
    assert!(stalled.load(SeqCst), "the server never stalled");
    // Requests due during the stall wait up to 1 s: 1/6 of the run, spread from 1 s
    // down to 0, so the top 1 % sit near 1 s x (1 - 0.01 x 6) = 940 ms.
    let c = &r.latency_corrected;
    let u = &r.latency_uncorrected;
    assert!(
        (700_000..=1_200_000).contains(&c.p99_us),
        "corrected p99 {} us does not reflect the 1 s stall",
        c.p99_us
    );
    assert!(
        c.p90_us >= 200_000,
        "corrected p90 {} us: expected about 400 ms",
        c.p90_us
    );
    assert!(
        u.p99_us < 100_000,
        "uncorrected p99 {} us: the stall should hide from it",
        u.p99_us
    );
    assert!(
        u.max_us >= 900_000,
        "uncorrected max {} us: the stalled requests",
        u.max_us
    );
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
}

#[test]
fn every_tenth_request_delayed_puts_the_split_between_p90_and_p95() {
    let n = Arc::new(AtomicU64::new(0));
    let n2 = Arc::clone(&n);
    let server = EngineServer::start(move |_: &Request<'_>, res: &mut Response| {
        if n2.fetch_add(1, SeqCst) % 10 == 9 {
            std::thread::sleep(Duration::from_millis(20));
        }
        res.body(b"ok");
    });
    let mut cfg = RunConfig::new(&server.url(), 1, Duration::from_secs(1)).unwrap();
    cfg.duration = None;
    cfg.requests = Some(500);
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 500, "{:?}", r.errors);
    let h = decode(&r.histogram_corrected).unwrap();
    let p90 = h.value_at_quantile(0.90);
    let p95 = h.value_at_quantile(0.95);
    assert!(p90 < 20_000, "p90 {p90} us must be a fast request");
    assert!(p95 >= 20_000, "p95 {p95} us must be a delayed request");
    let slow = h.count_between(20_000, 60_000_000);
    assert_eq!(slow, 50, "exactly every tenth request is slow");
}

/// Accepts connections, reads a request, and resets the connection (linger 0).
fn resetting_server() -> (String, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        while !stop2.load(SeqCst) && Instant::now() < end {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                    engine::sys::socket::set_linger(fd, Some(Duration::ZERO)).unwrap();
                    drop(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    (url, stop)
}

#[test]
fn resets_are_counted_never_dropped() {
    let (url, stop) = resetting_server();
    let cfg = RunConfig::new(&url, 2, Duration::from_millis(500)).unwrap();
    let r = run(&cfg).unwrap();
    stop.store(true, SeqCst);
    assert_eq!(r.requests, 0);
    assert!(r.errors.reset > 10, "resets not counted: {:?}", r.errors);
    let request_failures = r.errors.total() - r.errors.connect_refused - r.errors.connect_timeout;
    assert_eq!(r.latency_errors.count, request_failures);
    assert!(r.warnings.iter().any(|w| w.kind == "errors"));
}

#[test]
fn pipelined_latencies_are_per_request() {
    // A server that answers each request of a pipelined batch 50 ms after the previous
    // one: per-request latencies are 50, 100, 150, 200 ms; a per-batch timer sees 200 ms
    // for all four. The steps are wide so that a client descheduled for a few ms on a
    // loaded machine still tells them apart.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    std::thread::spawn(move || {
        // The first connection is the load generator's reachability check.
        let _probe = l.accept().unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = Instant::now() + Duration::from_secs(10);
        let mut answered = 0;
        while Instant::now() < end && answered < 4 {
            let k = s.read(&mut chunk).unwrap_or(0);
            if k == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
            while let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..p + 4);
                std::thread::sleep(Duration::from_millis(50));
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                answered += 1;
            }
        }
        let _ = s.read(&mut chunk);
    });
    // One batch of four.
    let mut cfg = RunConfig::new(&url, 1, Duration::from_secs(5)).unwrap();
    cfg.pipeline = 4;
    cfg.duration = None;
    cfg.requests = Some(4);
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 4, "{:?}", r.errors);
    let h = decode(&r.histogram_uncorrected).unwrap();
    let mut lat: Vec<u64> = h
        .iter_recorded()
        .flat_map(|v| std::iter::repeat_n(v.value_iterated_to(), v.count_at_value() as usize))
        .collect();
    lat.sort_unstable();
    assert_eq!(lat.len(), 4);
    assert!(
        lat[3] - lat[0] >= 100_000,
        "latencies {lat:?} us: each pipelined request must be timed to its own response (about 50 ms apart)"
    );
    assert!(
        lat[1] - lat[0] >= 25_000 && lat[3] - lat[2] >= 25_000,
        "latencies {lat:?} us: expected steps of about 50 ms"
    );
}

#[test]
fn a_request_budget_ends_even_when_every_connect_fails() {
    // Reachable for the check, then gone: every connect fails, the run still ends.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let _probe = l.accept();
    });
    let mut cfg = RunConfig::new(&url, 2, Duration::from_secs(1)).unwrap();
    cfg.duration = None;
    cfg.requests = Some(30);
    let started = Instant::now();
    let r = run(&cfg).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.requests, 0);
    assert!(r.errors.total() >= 30, "{:?}", r.errors);
}

#[test]
fn unreachable_server_is_one_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let cfg = RunConfig::new(&url, 1, Duration::from_secs(1)).unwrap();
    let e = run(&cfg).unwrap_err();
    assert!(e.contains("cannot connect") && !e.contains('\n'), "{e}");
}

#[test]
fn churn_opens_a_connection_per_request_and_counts_every_one() {
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    });
    let mut cfg = RunConfig::new(&server.url(), 2, Duration::from_secs(1)).unwrap();
    cfg.duration = None;
    cfg.requests = Some(200);
    cfg.requests_per_conn = Some(1);
    cfg.expect_body = Some(b"ok".to_vec());
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 200, "{:?}", r.errors);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    let accepted = server.engine().metrics().accepted;
    assert!(
        accepted >= 200,
        "only {accepted} connections for 200 requests"
    );
}

#[test]
fn expect_body_mismatch_is_a_parse_error() {
    let server = EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"nope");
    });
    let mut cfg = RunConfig::new(&server.url(), 1, Duration::from_secs(1)).unwrap();
    cfg.duration = None;
    cfg.requests = Some(20);
    cfg.expect_body = Some(b"ok".to_vec());
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 0);
    assert_eq!(r.errors.parse, 20, "{:?}", r.errors);
}

#[test]
fn requests_in_flight_when_the_window_ends_are_waited_for_and_recorded() {
    // Every request is answered 300 ms after it arrives: each connection sends at
    // about 0, 0.3, 0.6 and 0.9 s of a 1 s window, and the last answer comes at about
    // 1.2 s, after the end. All 4 x 2 are recorded, none dropped or failed.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        for s in l.incoming().take(3) {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while Instant::now() < end {
                    match s.read(&mut buf) {
                        Ok(k) if k > 0 => {
                            std::thread::sleep(Duration::from_millis(300));
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    let mut cfg = RunConfig::new(&url, 2, Duration::from_secs(1)).unwrap();
    cfg.timeout = Duration::from_secs(2);
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(
        r.requests, 8,
        "the requests in flight at the end must be recorded"
    );
    assert!(
        r.latency_uncorrected.min_us >= 300_000,
        "{:?}",
        r.latency_uncorrected
    );
}
