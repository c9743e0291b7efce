//! `loadgen serve` shuts down gracefully on SIGTERM and SIGINT: a response in flight
//! completes, an idle keep-alive connection gets FIN, the process exits 0; a second
//! signal exits at once with 130.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::slack;

/// A started `loadgen serve` and the address it announced.
struct Served {
    child: Child,
    addr: SocketAddr,
    stderr: std::thread::JoinHandle<String>,
}

fn serve(extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let addr = first
        .strip_prefix("serving on http://")
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no serving line: {first:?}"));
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = lines.read_to_string(&mut rest);
        rest
    });
    Served {
        child,
        addr,
        stderr,
    }
}

fn kill(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Waits for the child's exit code (fails after the deadline).
fn exit_code(child: &mut Child, within: Duration) -> i32 {
    let end = Instant::now() + within * slack();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s
                .code()
                .unwrap_or_else(|| panic!("died of a signal: {s:?}"));
        }
        if Instant::now() >= end {
            let _ = child.kill();
            panic!("loadgen serve still running {within:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10) * slack()))
        .unwrap();
    s
}

/// Reads until EOF; returns what was read, or panics on a reset or a timeout.
fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .unwrap_or_else(|e| panic!("after {} bytes: {e}", all.len()));
    all
}

#[test]
fn sigterm_completes_the_response_in_flight_closes_idle_connections_and_exits_0() {
    for sig in ["TERM", "INT"] {
        let mut s = serve(&["--grace", "5s"]);
        // Idle: one request answered, then the connection sits in keep-alive.
        let mut idle = connect(s.addr);
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 17];
        idle.read_exact(&mut head).unwrap();
        assert_eq!(&head[..], b"HTTP/1.1 200 OK\r\n");
        // In flight: 32 MiB asked for and not read yet, so most of it is still queued
        // in the engine when the signal arrives.
        const BYTES: usize = 32 << 20;
        let mut busy = connect(s.addr);
        busy.write_all(format!("GET /big?bytes={BYTES} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut first = [0u8; 1];
        busy.read_exact(&mut first).unwrap();
        kill(&s.child, sig);
        let rest = read_to_eof(&mut busy);
        let body_at = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head")
            + 4;
        assert_eq!(
            rest.len() - body_at,
            BYTES,
            "SIG{sig}: the whole body, then FIN"
        );
        // The rest of the first response, then FIN (a reset or a timeout panics).
        let after = read_to_eof(&mut idle);
        assert!(
            !after.windows(8).any(|w| w == b"HTTP/1.1"),
            "SIG{sig}: nothing but the rest of the first response"
        );
        assert_eq!(
            exit_code(&mut s.child, Duration::from_secs(5)),
            0,
            "SIG{sig}"
        );
        let stderr = s.stderr.join().unwrap();
        assert!(stderr.contains("serve: stopping"), "SIG{sig}: {stderr}");
    }
}

#[test]
fn a_second_signal_exits_at_once_with_130() {
    let mut s = serve(&["--grace", "60s"]);
    // A response the client never reads keeps the graceful shutdown waiting.
    let mut stuck = connect(s.addr);
    stuck
        .write_all(b"GET /big?bytes=67108864 HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1];
    stuck.read_exact(&mut first).unwrap();
    kill(&s.child, "TERM");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        assert!(
            s.child.try_wait().unwrap().is_none(),
            "exited on the first signal although a response was in flight"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(&s.child, "TERM");
    assert_eq!(exit_code(&mut s.child, Duration::from_secs(5)), 130);
    let stderr = s.stderr.join().unwrap();
    assert!(stderr.contains("second signal"), "{stderr}");
}
