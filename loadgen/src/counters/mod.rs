//! Deterministic per-request counters of the reference engine (heap allocations,
//! syscalls by kind), compared exactly with a committed baseline ([`model`]).
//!
//! The engine runs in this process with one worker and two routes: `/` (the 13-byte
//! plaintext) and [`SNAPSHOT_PATH`], whose handler, running on the worker thread,
//! answers with the process's allocation count and the worker thread's syscall
//! counters ([`engine::sys::count`]). A client thread of this process drives fixed
//! workloads, one request (or one pipelined batch, or one connection) in flight at a
//! time, so that the worker never finds two things ready in one wakeup and every count
//! is an exact integer: it takes a snapshot, runs the workload, takes another, and
//! subtracts the cost of a snapshot request (two snapshots back to back). The client
//! does not allocate between the snapshots (fixed buffers), except for the polls of
//! `Engine::metrics` in the new-connection workload, whose allocations are counted
//! beforehand and subtracted.
//!
//! Not gated: `epoll_wait` calls that return no event. The worker wakes on a timer
//! (every 250 ms while it has connections) to sweep timeouts, so their number depends
//! on how long the run takes; they are shown, not compared.

pub mod client;
pub mod model;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::sys::count::{self, KINDS, NAMES};
use engine::{Config, Engine, Request, Response};
use scenarios::targets::reference::Running;

use client::{Client, Snapshot, GET, IO_TIMEOUT};
use model::{compare, is_untimed, Measured};

/// The route whose response carries the counters.
pub const SNAPSHOT_PATH: &str = "/__counters";

/// One workload: what the client does between the two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    KeepAlive,
    Pipelined,
    NewConnection,
}

/// The workloads, in report order.
const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "keep-alive",
        kind: Kind::KeepAlive,
        requests: 1000,
        description: "one connection, 1000 GET / one at a time (each response read before the next request)",
    },
    Workload {
        name: "pipelined-16",
        kind: Kind::Pipelined,
        requests: 1024,
        description: "one connection, 64 batches of 16 GET / in one write each, all 16 responses read before the next batch",
    },
    Workload {
        name: "new-connection",
        kind: Kind::NewConnection,
        requests: 200,
        description: "200 connections one after another, one GET / each; the client closes after the response and waits until the engine has closed too",
    },
];

/// Pipelining depth of the `pipelined-16` workload.
const DEPTH: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    kind: Kind,
    requests: u64,
    description: &'static str,
}

fn handle(req: &Request<'_>, res: &mut Response) {
    if req.path() == SNAPSHOT_PATH.as_bytes() {
        // Runs on the worker thread: the syscall counts are the worker's.
        let allocations = engine::sys::alloc::allocations();
        let calls = count::snapshot();
        let mut buf = [0u8; 32 * (KINDS + 1)];
        let len = buf.len();
        let mut w = &mut buf[..];
        let mut ok = write!(w, "{allocations}").is_ok();
        for (_, v) in calls.iter() {
            ok &= write!(w, " {v}").is_ok();
        }
        let used = len - w.len();
        if ok {
            res.header("content-type", b"text/plain").body(&buf[..used]);
        } else {
            res.status(500);
        }
    } else {
        res.header("content-type", b"text/plain")
            .body(b"Hello, World!");
    }
}

/// Measures every workload `repeat` times, each on a fresh engine; the counts must
/// agree (timer wakeups may differ: the largest seen is kept).
pub fn measure_repeated(repeat: u32) -> Result<Vec<Measured>, String> {
    let mut measured = measure()?;
    for _ in 1..repeat {
        let again = measure()?;
        let diffs = compare(&measured, &again);
        if let Some(first) = diffs.first() {
            return Err(format!(
                "the counters differ between repeats ({}, and {} more): a count \
                 depends on timing; report it with the output of --repeat",
                first.line(false),
                diffs.len() - 1
            ));
        }
        // Timer wakeups may differ; show the largest seen.
        for (m, a) in measured.iter_mut().zip(&again) {
            for (k, v) in &a.untimed {
                let e = m.untimed.entry(k.clone()).or_insert(0);
                *e = (*e).max(*v);
            }
        }
    }
    Ok(measured)
}

/// The engine [`measure`] started.
fn engine(server: &Running) -> &Engine {
    server.engine()
}

/// Waits until the engine has closed `n` connections in all.
fn wait_closed(server: &Running, n: u64, polls: &mut u64) -> Result<(), String> {
    let end = Instant::now() + IO_TIMEOUT;
    loop {
        *polls += 1;
        if engine(server).metrics().closed >= n {
            return Ok(());
        }
        if Instant::now() > end {
            return Err("the engine did not close a connection within 5 s".into());
        }
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Measures every workload once, on a fresh engine.
fn measure() -> Result<Vec<Measured>, String> {
    let cfg = Config {
        workers: 1,
        address: "127.0.0.1:0".into(),
        ..Config::default()
    };
    let server = Running::start(cfg, handle).map_err(|e| format!("starting the engine: {e}"))?;
    let addr = server.addr();
    let mut control = Client::new();
    control.connect(addr)?;
    let mut load = Client::new();
    // Warm up every path once (buffers grow to their steady size, the connection
    // table to its steady length).
    for w in &WORKLOADS {
        open(&mut load, addr, w.kind)?;
        drive(&server, &mut load, addr, w.kind, 2 * DEPTH as u64, &mut 0)?;
        finish(&server, &mut load, w.kind)?;
    }
    // The cost of the snapshot request itself: two snapshots back to back.
    let a = control.snapshot()?;
    let b = control.snapshot()?;
    let own = delta(&a, &b)?;
    // Allocations of one `Engine::metrics` poll (new-connection workload).
    let before = engine::sys::alloc::allocations();
    for _ in 0..8 {
        std::hint::black_box(engine(&server).metrics());
    }
    let per_poll = engine::sys::alloc::allocations() - before;
    if per_poll == 0 {
        return Err(
            "allocations are not being counted: the binary must install \
             engine::sys::alloc::Counting as its #[global_allocator]"
                .into(),
        );
    }
    if !per_poll.is_multiple_of(8) {
        return Err(format!(
            "8 polls of the engine's metrics made {per_poll} allocations, not a multiple of 8: \
             something else allocates while the engine is idle"
        ));
    }
    let per_poll = per_poll / 8;

    let mut out = Vec::new();
    for w in &WORKLOADS {
        let mut polls = 0;
        open(&mut load, addr, w.kind)?;
        let a = control.snapshot()?;
        let requests = drive(&server, &mut load, addr, w.kind, w.requests, &mut polls)?;
        let b = control.snapshot()?;
        finish(&server, &mut load, w.kind)?;
        let mut d = delta(&a, &b)?;
        d[0] = d[0].checked_sub(polls * per_poll).ok_or_else(|| {
            format!(
                "{}: fewer allocations than the client's own polls: counts are not exact",
                w.name
            )
        })?;
        let d = delta(&own, &d).map_err(|e| format!("{}: {e}", w.name))?;
        let mut counters = BTreeMap::new();
        let mut untimed = BTreeMap::new();
        counters.insert("allocations".to_string(), d[0]);
        for (i, name) in NAMES.iter().enumerate() {
            if is_untimed(name) {
                untimed.insert(name.to_string(), d[i + 1]);
            } else {
                counters.insert(name.to_string(), d[i + 1]);
            }
        }
        out.push(Measured {
            name: w.name.into(),
            requests,
            counters,
            untimed,
            description: w.description.into(),
        });
    }
    Ok(out)
}

/// `later - earlier`, counter by counter (the untimed ones saturate at zero).
fn delta(earlier: &Snapshot, later: &Snapshot) -> Result<Snapshot, String> {
    let mut out = [0u64; KINDS + 1];
    for i in 0..out.len() {
        let name = if i == 0 { "allocations" } else { NAMES[i - 1] };
        out[i] = match later[i].checked_sub(earlier[i]) {
            Some(v) => v,
            None if is_untimed(name) => 0,
            None => {
                return Err(format!(
                    "{name} went down between snapshots: counts are not exact"
                ))
            }
        };
    }
    Ok(out)
}

/// Opens what the workload uses before the first snapshot: the connection, with one
/// request answered, so that the engine has accepted and registered it.
fn open(load: &mut Client, addr: SocketAddr, kind: Kind) -> Result<(), String> {
    if kind != Kind::NewConnection {
        load.connect(addr)?;
        load.send(GET)?;
        load.response()?;
    }
    Ok(())
}

/// Closes what [`open`] opened, after the second snapshot.
fn finish(server: &Running, load: &mut Client, kind: Kind) -> Result<(), String> {
    if kind != Kind::NewConnection {
        close_and_wait(server, load, &mut 0)?;
    }
    Ok(())
}

/// Runs `n` requests of a workload (`n` rounded down to whole batches); returns how
/// many were served. `polls` counts the calls of `Engine::metrics`.
fn drive(
    server: &Running,
    load: &mut Client,
    addr: SocketAddr,
    kind: Kind,
    n: u64,
    polls: &mut u64,
) -> Result<u64, String> {
    match kind {
        Kind::KeepAlive => {
            for _ in 0..n {
                load.send(GET)?;
                load.response()?;
            }
            Ok(n)
        }
        Kind::Pipelined => {
            let mut batch = [0u8; GET.len() * DEPTH];
            for chunk in batch.chunks_mut(GET.len()) {
                chunk.copy_from_slice(GET);
            }
            let batches = n / DEPTH as u64;
            for _ in 0..batches {
                load.send(&batch)?;
                for _ in 0..DEPTH {
                    load.response()?;
                }
            }
            Ok(batches * DEPTH as u64)
        }
        Kind::NewConnection => {
            for _ in 0..n {
                load.connect(addr)?;
                load.send(GET)?;
                load.response()?;
                close_and_wait(server, load, polls)?;
            }
            Ok(n)
        }
    }
}

/// Closes the client's connection and waits until the engine has closed its end, so
/// that the engine sees the end of this connection and the next event in separate
/// wakeups.
fn close_and_wait(server: &Running, load: &mut Client, polls: &mut u64) -> Result<(), String> {
    *polls += 1;
    let closed = engine(server).metrics().closed;
    load.close();
    wait_closed(server, closed + 1, polls)
}
