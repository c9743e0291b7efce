//! `loadgen run` at the edges: small hostile servers (each a std-thread TCP server on
//! 127.0.0.1:0 that stops when dropped) and the `loadgen` binary against them. Each
//! test checks the counts, the failure classes, the latencies and the exit code; the
//! body cases also the child's peak RSS (VmHWM, read from /proc while it runs).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_refused_up_front, loadgen, slack, EngineServer};
use engine::{Request, Response};
use reports::{Results, RunResult};

/// No server thread outlives this, whatever the test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
const RESULT_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../reports/schema/loadgen.result.v1.json"
);
/// Peak RSS allowed to the client in the body cases.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// What a hostile server does with connection number `n` (0 is the client's
/// reachability probe).
type Behaviour = fn(TcpStream, u64, &Shared);

/// What the connection threads of one server share.
struct Shared {
    stop: AtomicBool,
    /// Requests seen, all connections.
    requests: AtomicU64,
    deadline: Instant,
}

impl Shared {
    fn over(&self) -> bool {
        self.stop.load(SeqCst) || Instant::now() >= self.deadline
    }
}

/// A hostile server; stops its threads when dropped.
struct Hostile {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Hostile {
    fn start(behaviour: Behaviour) -> Hostile {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            deadline: Instant::now() + SERVER_LIFETIME,
        });
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut n = 0;
            while !sh.over() {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                        let sh = Arc::clone(&sh);
                        std::thread::spawn(move || behaviour(s, n, &sh));
                        n += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Hostile { addr, shared }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
    }
}

/// Reads requests (heads ending in a blank line) and calls `each` once per request
/// with the request's number among all the server's requests (1, 2, ...);
/// returns when the peer closes, on an error other than a read timeout, or when the
/// server stops.
fn each_request(s: &mut TcpStream, sh: &Shared, mut each: impl FnMut(&mut TcpStream, u64) -> bool) {
    let mut buf = [0u8; 4096];
    let mut tail = 0usize; // bytes of "\r\n\r\n" matched so far
    while !sh.over() {
        let k = match s.read(&mut buf) {
            Ok(0) => return,
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        for &b in &buf[..k] {
            let want = b"\r\n\r\n"[tail];
            tail = if b == want {
                tail + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if tail == 4 {
                tail = 0;
                let number = sh.requests.fetch_add(1, SeqCst) + 1;
                if !each(s, number) {
                    return;
                }
            }
        }
    }
}

fn hold(mut s: TcpStream, _: u64, sh: &Shared) {
    each_request(&mut s, sh, |_, _| true);
}

fn answer_ok(s: &mut TcpStream, _: u64) -> bool {
    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .is_ok()
}

fn quarter(mut s: TcpStream, n: u64, sh: &Shared) {
    if n.is_multiple_of(4) {
        return hold(s, n, sh);
    }
    each_request(&mut s, sh, answer_ok);
}

/// Writes `block` until the peer goes, the server stops, or `limit` bytes.
fn stream(s: &mut TcpStream, sh: &Shared, block: &[u8], limit: u64) {
    let mut sent = 0u64;
    while !sh.over() && sent < limit {
        match s.write(block) {
            Ok(0) => return,
            Ok(k) => sent += k as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn endless_headers(mut s: TcpStream, _: u64, sh: &Shared) {
    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let block: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 200)
        .collect();
    each_request(&mut s, sh, |s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        stream(s, sh, &block, u64::MAX);
        false
    });
}

fn endless_body(mut s: TcpStream, _: u64, sh: &Shared) {
    let block = vec![b'a'; 64 * 1024];
    each_request(&mut s, sh, |s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
        stream(s, sh, &block, u64::MAX);
        false
    });
}

fn gigabyte(mut s: TcpStream, _: u64, sh: &Shared) {
    let block = vec![b'a'; 64 * 1024];
    each_request(&mut s, sh, |s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n");
        stream(s, sh, &block, 1 << 30);
        false
    });
}

fn garbage(mut s: TcpStream, _: u64, sh: &Shared) {
    let mut first = true;
    each_request(&mut s, sh, |s, _| {
        if first {
            first = false;
            let _ = s.write_all(b"\x16\x03\x01\x00\xa5garbage without a line end");
        }
        true
    });
}

fn rst_every_50th(mut s: TcpStream, _: u64, sh: &Shared) {
    let mut reset = false;
    each_request(&mut s, sh, |s, number| {
        if number.is_multiple_of(50) {
            reset = true;
            return false;
        }
        answer_ok(s, number)
    });
    if reset {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        engine::sys::socket::set_linger(fd, Some(Duration::ZERO)).unwrap();
    }
}

fn all_5xx(mut s: TcpStream, _: u64, sh: &Shared) {
    each_request(&mut s, sh, |s, _| {
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
            .is_ok()
    });
}

fn never_reads(s: TcpStream, _: u64, sh: &Shared) {
    while !sh.over() {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
}

/// A finished run of the binary: its output, results and peak RSS.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    result: Option<RunResult>,
    /// The results file as written.
    doc: Option<serde_json::Value>,
    peak_rss_kib: u64,
}

impl Run {
    #[track_caller]
    fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("loadgen died of a signal: {self:?}"))
    }

    /// Fails unless the results file validates against the schema.
    #[track_caller]
    fn assert_schema_valid(&self) {
        let doc = self.doc.as_ref().expect("a results file");
        let v = common::schema_validator(RESULT_SCHEMA);
        common::assert_schema_valid(&v, doc, RESULT_SCHEMA);
    }

    #[track_caller]
    fn result(&self) -> &RunResult {
        self.result
            .as_ref()
            .unwrap_or_else(|| panic!("no results file: {self:?}"))
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn threads_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn results_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("edges-{name}-{}.json", std::process::id()))
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` (polling its peak RSS), calling `poke` once when it has started
/// its client threads; kills it and fails after the deadline.
fn finish(name: &str, mut child: Child, poke: Option<&dyn Fn(u32)>) -> Run {
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60) * slack();
    let mut peak = 0;
    let mut poked = poke.is_none();
    let status = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        if !poked && threads_of(pid) >= 2 {
            poked = true;
            if let Some(p) = poke {
                p(pid);
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen ({name}) still running after the deadline");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let path = results_path(name);
    let text = std::fs::read_to_string(&path).ok();
    let doc: Option<serde_json::Value> = text.as_ref().map(|t| {
        serde_json::from_str(t).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    });
    let result = doc.as_ref().map(|d| {
        let doc: Results = serde_json::from_value(d.clone())
            .unwrap_or_else(|e| panic!("{} is not a results file: {e}", path.display()));
        doc.runs.into_iter().next().expect("one run")
    });
    let _ = std::fs::remove_file(&path);
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        result,
        doc,
        peak_rss_kib: peak,
    }
}

/// `loadgen run URL -t 1 -q --json F ARGS...`.
fn run(name: &str, url: &str, args: &[&str]) -> Run {
    run_poked(name, url, args, None)
}

fn run_poked(name: &str, url: &str, args: &[&str], poke: Option<&dyn Fn(u32)>) -> Run {
    let path = results_path(name);
    let _ = std::fs::remove_file(&path);
    let file = path.to_str().unwrap();
    let mut all = vec!["run", url, "-t", "1", "-q", "--json", file];
    all.extend_from_slice(args);
    finish(name, spawn(env!("CARGO_BIN_EXE_loadgen"), &all), poke)
}

#[track_caller]
fn assert_bounded(r: &Run) {
    assert!(
        r.peak_rss_kib > 0 && r.peak_rss_kib < RSS_LIMIT_KIB,
        "peak RSS {} KiB (limit {RSS_LIMIT_KIB} KiB)",
        r.peak_rss_kib
    );
}

#[track_caller]
fn assert_no_success(r: &Run) {
    let res = r.result();
    assert_eq!(res.requests, 0, "{:?}", res.errors);
    assert_eq!(
        r.code(),
        1,
        "no request succeeded must exit 1: {}",
        r.stdout
    );
    assert!(res.warnings.iter().any(|w| w.kind == "no_success"), "{r:?}");
}

#[test]
fn a_server_that_never_answers_fails_every_request_as_timeout() {
    let server = Hostile::start(hold);
    let r = run(
        "never",
        &server.url(),
        &["-c", "4", "-d", "1s", "--timeout", "500ms"],
    );
    assert_no_success(&r);
    let res = r.result();
    // Each connection: one request timed out inside the window, one in flight at its end.
    assert!(res.errors.timeout >= 4, "{:?}", res.errors);
    assert_eq!(res.errors.total(), res.errors.timeout, "{:?}", res.errors);
    assert_eq!(res.latency_errors.count, res.errors.timeout);
    assert!(
        res.latency_errors.min_us >= 500_000,
        "a timeout after {} us",
        res.latency_errors.min_us
    );
    assert!(!res.warnings.iter().any(|w| w.kind == "littles_law"));
}

#[test]
fn open_model_against_a_silent_server_accounts_for_every_due_request() {
    let server = Hostile::start(hold);
    let r = run(
        "never-open",
        &server.url(),
        &["-c", "2", "-d", "1s", "--timeout", "500ms", "--rate", "100"],
    );
    assert_no_success(&r);
    let res = r.result();
    // 100/s for 1 s: exactly 100 requests were due, and each one is a timeout.
    assert_eq!(res.errors.timeout, 100, "{:?}", res.errors);
    assert_eq!(res.errors.total(), 100, "{:?}", res.errors);
    assert_eq!(res.latency_errors.count, 100);
    assert!(
        res.latency_errors.min_us >= 500_000,
        "{:?}",
        res.latency_errors
    );
    let open = res.open_model.as_ref().unwrap();
    assert!(open.never_sent > 0 && open.never_sent < 100, "{open:?}");
    let lag = res.warnings.iter().find(|w| w.kind == "schedule_lag");
    let lag = lag.unwrap_or_else(|| panic!("no schedule_lag warning: {:?}", res.warnings));
    assert!(lag.message.contains("server"), "{}", lag.message);
    assert!(!lag.message.contains("add connections"), "{}", lag.message);
}

#[test]
fn a_quarter_of_the_connections_hanging_shows_as_timeouts() {
    let server = Hostile::start(quarter);
    let r = run(
        "quarter",
        &server.url(),
        &["-c", "8", "-d", "1s", "--timeout", "400ms"],
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let res = r.result();
    assert!(res.requests > 0, "{:?}", res.errors);
    // Two of the eight first connections hang: at least their first requests time out.
    assert!(res.errors.timeout >= 2, "{:?}", res.errors);
    assert_eq!(res.errors.total(), res.errors.timeout, "{:?}", res.errors);
    assert!(
        res.latency_errors.min_us >= 400_000,
        "{:?}",
        res.latency_errors
    );
    let errors = res.warnings.iter().find(|w| w.kind == "errors").unwrap();
    assert!(
        errors.message.contains("did not answer"),
        "{}",
        errors.message
    );
    assert!(!res.warnings.iter().any(|w| w.kind == "littles_law"));
}

#[test]
fn endless_headers_are_a_parse_error_in_bounded_memory() {
    let server = Hostile::start(endless_headers);
    let r = run(
        "headers",
        &server.url(),
        &["-c", "2", "-d", "1s", "--timeout", "2s"],
    );
    assert_no_success(&r);
    let res = r.result();
    assert!(res.errors.parse >= 2, "{:?}", res.errors);
    assert_eq!(
        res.errors.timeout, 0,
        "refused at the head limit, not timed out"
    );
    assert_bounded(&r);
    r.assert_schema_valid();
}

#[test]
fn an_endless_body_is_read_through_in_bounded_memory() {
    let server = Hostile::start(endless_body);
    let r = run(
        "body",
        &server.url(),
        &[
            "-c",
            "2",
            "-d",
            "1s",
            "--timeout",
            "500ms",
            "--expect-body",
            "ok",
        ],
    );
    assert_no_success(&r);
    let res = r.result();
    assert!(res.errors.timeout >= 2, "{:?}", res.errors);
    assert!(
        res.latency_errors.min_us >= 500_000,
        "{:?}",
        res.latency_errors
    );
    assert!(res.bytes_read > 1 << 20, "read {} bytes", res.bytes_read);
    assert_bounded(&r);
}

#[test]
fn a_gigabyte_content_length_with_expect_body_stays_in_bounded_memory() {
    let server = Hostile::start(gigabyte);
    let r = run(
        "gigabyte",
        &server.url(),
        &[
            "-c",
            "2",
            "-d",
            "1s",
            "--timeout",
            "1s",
            "--expect-body",
            "ok",
        ],
    );
    assert_no_success(&r);
    let res = r.result();
    // Read through to the end (a wrong body: parse) or cut by the timeout; the server
    // closes after its gigabyte, failing the next request on that connection as eof.
    assert!(
        res.errors.parse + res.errors.timeout >= 2,
        "{:?}",
        res.errors
    );
    assert_eq!(
        res.errors.total(),
        res.errors.parse + res.errors.timeout + res.errors.eof,
        "{:?}",
        res.errors
    );
    assert!(res.bytes_read > 1 << 20, "read {} bytes", res.bytes_read);
    assert_bounded(&r);
}

#[test]
fn garbage_is_a_parse_error_at_once() {
    let server = Hostile::start(garbage);
    let r = run(
        "garbage",
        &server.url(),
        &["-c", "2", "-d", "1s", "--timeout", "5s"],
    );
    assert_no_success(&r);
    let res = r.result();
    assert!(res.errors.parse >= 2, "{:?}", res.errors);
    assert_eq!(res.errors.timeout, 0, "{:?}", res.errors);
    // At once: well before the 5 s timeout.
    let fast = 500_000 * u64::from(slack());
    assert!(
        res.latency_errors.max_us < fast,
        "garbage recognised after {} us",
        res.latency_errors.max_us
    );
}

#[test]
fn a_reset_every_50th_request_is_counted_per_request() {
    let server = Hostile::start(rst_every_50th);
    let r = run(
        "rst",
        &server.url(),
        &["-c", "2", "-d", "1s", "--timeout", "1s"],
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let res = r.result();
    let failed = res.errors.reset + res.errors.eof;
    assert_eq!(res.errors.total(), failed, "{:?}", res.errors);
    let seen = server.shared.requests.load(SeqCst);
    assert!(seen >= 100, "the server saw only {seen} requests");
    // The server reset exactly seen / 50 requests; each one fails once on the client.
    assert_eq!(failed, seen / 50, "{:?} for {seen} requests", res.errors);
    assert_eq!(
        res.requests + failed,
        seen,
        "every request the server saw is counted"
    );
}

#[test]
fn all_5xx_exits_1_with_every_request_failed() {
    let server = Hostile::start(all_5xx);
    let r = run("5xx", &server.url(), &["-c", "2", "-d", "1s"]);
    assert_no_success(&r);
    let res = r.result();
    assert!(res.errors.status_5xx > 10, "{:?}", res.errors);
    assert_eq!(res.errors.total(), res.errors.status_5xx);
    assert_eq!(res.latency_errors.count, res.errors.status_5xx);
}

#[test]
fn a_server_that_accepts_and_never_reads_times_out() {
    let server = Hostile::start(never_reads);
    let r = run(
        "never-reads",
        &server.url(),
        &["-c", "2", "-d", "1s", "--timeout", "500ms"],
    );
    assert_no_success(&r);
    let res = r.result();
    assert!(res.errors.timeout >= 2, "{:?}", res.errors);
    assert_eq!(res.errors.total(), res.errors.timeout, "{:?}", res.errors);
    assert!(
        res.latency_errors.min_us >= 500_000,
        "{:?}",
        res.latency_errors
    );
}

fn healthy() -> EngineServer {
    EngineServer::start(|_: &Request<'_>, res: &mut Response| {
        res.body(b"ok");
    })
}

fn signal(name: &'static str) -> impl Fn(u32) {
    move |pid| {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {pid} failed");
    }
}

#[test]
fn sigint_ends_the_run_with_a_summary_and_results_marked_interrupted() {
    let server = healthy();
    let poke = signal("INT");
    let r = run_poked(
        "sigint",
        &server.url(),
        &["-c", "2", "-d", "60s"],
        Some(&poke),
    );
    assert_eq!(r.code(), 130, "{r:?}");
    assert!(
        r.stdout.contains("interrupted") && r.stdout.contains("latency"),
        "{}",
        r.stdout
    );
    let res = r.result();
    let record = res.config.run.as_ref().expect("the run's record");
    assert!(record.interrupted);
    r.assert_schema_valid();
    assert!(
        res.duration_s < 30.0,
        "ran {} s after the interrupt",
        res.duration_s
    );
}

#[test]
fn sigterm_ends_the_run_the_same_way() {
    let server = healthy();
    let poke = signal("TERM");
    let r = run_poked(
        "sigterm",
        &server.url(),
        &["-c", "2", "-d", "60s"],
        Some(&poke),
    );
    assert_eq!(r.code(), 130, "{r:?}");
    assert!(r.result().config.run.as_ref().unwrap().interrupted);
}

#[test]
fn checks_pass_fail_and_are_stored() {
    let server = healthy();
    let r = run(
        "checks",
        &server.url(),
        &[
            "-c",
            "2",
            "-d",
            "1s",
            "--check",
            "p99<30s",
            "--check",
            "errors<1%",
            "--check",
            "errors<1",
            "--check",
            "rps>1",
            "--check",
            "p50<1us",
        ],
    );
    assert_eq!(r.code(), 1, "p50<1us cannot hold: {r:?}");
    let res = r.result();
    let checks = &res.config.run.as_ref().unwrap().checks;
    let verdicts: Vec<_> = checks
        .iter()
        .map(|c| (c.expression.as_str(), c.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("p99<30s", true),
            ("errors<1%", true),
            ("errors<1", true),
            ("rps>1", true),
            ("p50<1us", false)
        ]
    );
    let p50 = &checks[4];
    assert!(
        p50.measured >= 1.0 && p50.unit == "us" && p50.threshold == 1.0,
        "{p50:?}"
    );
    assert!(
        r.stdout.contains("p50<1us") && r.stdout.contains("FAIL"),
        "{}",
        r.stdout
    );
    r.assert_schema_valid();
    let r = run(
        "checks-pass",
        &server.url(),
        &["-c", "2", "-d", "1s", "--check", "p99<30s"],
    );
    assert_eq!(r.code(), 0, "{r:?}");
}

#[test]
fn a_bad_check_or_a_negative_value_is_one_line_of_our_own() {
    let url = "http://127.0.0.1:1/";
    let deadline = Duration::from_secs(20);
    let out = loadgen(&["run", url, "--check", "p99<10"], deadline);
    assert_refused_up_front(&out, "--check");
    for (args, flag) in [
        (&["-d", "-1s"][..], "--duration"),
        (&["--rate", "-5"][..], "--rate"),
        (&["-c", "-1"][..], "--connections"),
        (&["-n", "-3"][..], "--requests"),
        (&["--timeout", "-1s"][..], "--timeout"),
        (&["-p", "-2"][..], "--pipeline"),
    ] {
        let mut all = vec!["run", url];
        all.extend_from_slice(args);
        let out = loadgen(&all, deadline);
        assert_refused_up_front(&out, "is negative");
        assert!(out.stderr.contains(flag), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("'--"), "clap's advice: {}", out.stderr);
    }
    // The other commands: one line naming the flag, never clap's "use '-- -1'".
    for args in [
        &["bench", "-d", "-1s"][..],
        &["bench", "--repeat", "-1"][..],
        &["sweep", url, "--slo", "10ms", "--start", "-5"][..],
        &["scenario", "--slack", "-2"][..],
        &["scenario", "--repeat=-3"][..],
    ] {
        let out = loadgen(args, deadline);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        let last = args[args.len() - 1];
        let flag = match last.split_once('=') {
            Some((flag, _)) => flag,
            None => args[args.len() - 2],
        };
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("is negative") && out.stderr.contains(flag),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("'--"), "clap's advice: {}", out.stderr);
    }
}

#[test]
fn running_out_of_descriptors_is_a_client_failure_told_once() {
    let server = healthy();
    let path = results_path("emfile");
    let _ = std::fs::remove_file(&path);
    let script = format!(
        "ulimit -n 40 && exec {} run {} -t 1 -q -c 80 -d 1s --json {}",
        env!("CARGO_BIN_EXE_loadgen"),
        server.url(),
        path.display()
    );
    let r = finish("emfile", spawn("sh", &["-c", &script]), None);
    let res = r.result();
    assert!(res.errors.client > 0, "{:?}", res.errors);
    assert!(res.requests > 0, "{:?}", res.errors);
    assert_eq!(r.code(), 0, "{r:?}");
    let told = r.stderr.lines().filter(|l| l.contains("ulimit -n")).count();
    assert_eq!(told, 1, "{}", r.stderr);
    assert!(res.warnings.iter().any(|w| w.kind == "client_exhausted"));
}

#[test]
fn the_hdr_log_has_real_interval_lengths_and_the_uncorrected_histogram() {
    let server = healthy();
    let log = results_path("hdr").with_extension("hlog");
    let log_s = log.to_str().unwrap().to_string();
    let r = run(
        "hdr",
        &server.url(),
        &["-c", "2", "-d", "1500ms", "--hdr-log", &log_s],
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(text
        .lines()
        .any(|l| l.starts_with("#[") && l.contains("microseconds")));
    let fields = |l: &str| -> (f64, f64) {
        let f: Vec<&str> = l.split(',').collect();
        (f[0].parse().unwrap(), f[1].parse().unwrap())
    };
    let data: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"'))
        .collect();
    let corrected: Vec<(f64, f64)> = data
        .iter()
        .filter(|l| !l.starts_with("Tag="))
        .map(|l| fields(l))
        .collect();
    let uncorrected: Vec<(f64, f64)> = data
        .iter()
        .filter_map(|l| l.strip_prefix("Tag=uncorrected,"))
        .map(fields)
        .collect();
    assert_eq!(corrected, uncorrected, "{text}");
    assert_eq!(corrected.len(), 2, "{text}");
    assert_eq!(corrected[0], (0.0, 1.0));
    let (start, length) = corrected[1];
    assert_eq!(start, 1.0);
    assert!(
        length > 0.2 && length < 0.99,
        "the last interval lasted {length} s"
    );
}

/// The Debian package `libhdrhistogram-java` (and a JRE) provide the reference reader.
const HDR_JAR: &str = "/usr/share/java/hdrhistogram.jar";

/// `HistogramLogProcessor`'s "Total count" of the histograms of `log` with `tag`.
fn java_total_count(log: &str, tag: Option<&str>) -> u64 {
    let mut args = vec![
        "-cp",
        HDR_JAR,
        "org.HdrHistogram.HistogramLogProcessor",
        "-i",
        log,
        "-outputValueUnitRatio",
        "1000",
    ];
    if let Some(t) = tag {
        args.extend(["-tag", t]);
    }
    let out = Command::new("java").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "java {args:?}: {out:?}");
    let line = text
        .lines()
        .find(|l| l.contains("Total count"))
        .unwrap_or_else(|| panic!("no total count in {text}"));
    line.rsplit('=')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(']')
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_java_hdrhistogram_reader_accepts_the_log() {
    let java = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !java || !std::path::Path::new(HDR_JAR).exists() {
        eprintln!("skipped: needs java and {HDR_JAR} (apt-get install libhdrhistogram-java)");
        return;
    }
    let server = healthy();
    let log = results_path("java").with_extension("hlog");
    let log_s = log.to_str().unwrap().to_string();
    let r = run(
        "java",
        &server.url(),
        &[
            "-c",
            "2",
            "-d",
            "1500ms",
            "--rate",
            "200",
            "--hdr-log",
            &log_s,
        ],
    );
    assert_eq!(r.code(), 0, "{r:?}");
    let res = r.result();
    let corrected = java_total_count(&log_s, None);
    let uncorrected = java_total_count(&log_s, Some("uncorrected"));
    let _ = std::fs::remove_file(&log);
    assert_eq!(corrected, res.requests);
    assert_eq!(uncorrected, res.requests);
}

#[test]
fn sigint_ends_a_sweep_or_a_bench_with_what_it_measured_and_the_gate_refuses_it() {
    let server = healthy();
    let url = server.url();
    let poke = signal("INT");
    let bin = env!("CARGO_BIN_EXE_loadgen");
    for (name, args) in [
        (
            "sweep-int",
            vec![
                "sweep", &url, "--slo", "1s", "--start", "200", "-d", "30s", "--warmup", "0s",
                "-c", "2", "-t", "1", "-q",
            ],
        ),
        (
            "bench-int",
            vec![
                "bench",
                "--target",
                &url,
                "--workload",
                "plaintext",
                "-d",
                "30s",
                "--repeat",
                "3",
            ],
        ),
    ] {
        let path = results_path(name);
        let _ = std::fs::remove_file(&path);
        let mut all = args.clone();
        all.extend(["--json", path.to_str().unwrap()]);
        let file = path.clone();
        let gate = move || {
            loadgen(
                &[
                    "gate",
                    "--baseline",
                    file.to_str().unwrap(),
                    "--candidate",
                    file.to_str().unwrap(),
                ],
                Duration::from_secs(30),
            )
        };
        let r = finish(name, spawn(bin, &all), Some(&poke));
        assert_eq!(r.code(), 130, "{name}: {r:?}");
        assert!(
            r.stdout.contains("interrupted") || r.stderr.contains("interrupted"),
            "{name}: {r:?}"
        );
        let doc = r.doc.as_ref().expect("the results are written");
        let runs = doc["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{name}: one run, cut short");
        assert_eq!(
            runs[0]["config"]["interrupted"],
            serde_json::json!(true),
            "{name}"
        );
        r.assert_schema_valid();
        // `finish` removed the file once read: write it back for the gate.
        std::fs::write(&path, serde_json::to_string(doc).unwrap()).unwrap();
        let g = gate();
        let _ = std::fs::remove_file(&path);
        assert_eq!(g.code(), 2, "{name}: {g:?}");
        assert!(g.stderr.contains("interrupted"), "{name}: {}", g.stderr);
    }
}
