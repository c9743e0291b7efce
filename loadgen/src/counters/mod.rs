//! `loadgen counters`: deterministic per-request counters of the reference engine
//! (heap allocations, syscalls by kind), compared exactly with a committed baseline.
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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::sys::count::{self, KINDS, NAMES};
use engine::{Config, Engine, Request, Response};
use serde_json::{json, Value};

use crate::{EXIT_OK, EXIT_REGRESSION};

/// The schema tag of the counters document (`--json`, `--check`).
pub const COUNTERS_SCHEMA: &str = "loadgen.counters/v1";

/// The route whose response carries the counters.
pub const SNAPSHOT_PATH: &str = "/__counters";

/// Arguments of `loadgen counters`.
#[derive(Debug, Default, clap::Args)]
pub struct CountersArgs {
    /// Compare exactly with this baseline (loadgen.counters/v1): any difference, up or
    /// down, exits 3.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// Write the measured counters (loadgen.counters/v1) to FILE; `--write` is the
    /// same option, meant for updating the baseline.
    #[arg(long, visible_alias = "write", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure this many times, each on a fresh engine; the counts must agree (exit 2
    /// if they do not: something is timing-dependent).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
}

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

/// Counters of one workload: gated totals over `requests` and the untimed rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Workload name.
    pub name: String,
    /// Requests served in the workload.
    pub requests: u64,
    /// Gated counters (totals over `requests`), by name.
    pub counters: BTreeMap<String, u64>,
    /// Counters shown but not gated (timer wakeups), by name.
    pub untimed: BTreeMap<String, u64>,
    /// What the workload does.
    pub description: String,
}

/// Counter names that depend on time and are never gated.
fn is_untimed(name: &str) -> bool {
    name.ends_with("_empty")
}

/// Runs `loadgen counters`.
pub fn run(args: CountersArgs) -> Result<u8, String> {
    if args.repeat == 0 {
        return Err("--repeat 0: use at least 1".into());
    }
    // Read the baseline first: a bad file fails now, not after the measurement.
    let baseline = match &args.check {
        Some(path) => Some(read_baseline(path)?),
        None => None,
    };
    // Then open the output (a bad path fails before measuring; after reading the
    // baseline, which may be the same file).
    let json_file = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("--json {}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut measured = measure()?;
    for _ in 1..args.repeat {
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
    print!("{}", table(&measured, args.repeat));
    if let (Some(mut file), Some(path)) = (json_file, &args.json) {
        let text = serde_json::to_string_pretty(&to_json(&measured))
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))?;
    }
    let Some((path, base)) = args.check.as_ref().zip(baseline) else {
        return Ok(EXIT_OK);
    };
    let diffs = compare(&base, &measured);
    if diffs.is_empty() {
        println!(
            "counters: all {} equal to {}",
            base.iter().map(|w| w.counters.len()).sum::<usize>(),
            path.display()
        );
        return Ok(EXIT_OK);
    }
    for d in &diffs {
        println!("counters: {}", d.line(true));
    }
    println!(
        "counters: {} differ from {}; if the change is intended, update the baseline \
         with `loadgen counters --write {}` and commit it",
        diffs.len(),
        path.display(),
        path.display()
    );
    Ok(EXIT_REGRESSION)
}

// ---- measurement ----

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

/// Allocations and syscalls by kind, as the snapshot route reports them.
type Snapshot = [u64; KINDS + 1];

/// A blocking HTTP/1.1 client that reads responses into one fixed buffer: after
/// construction it does not allocate.
struct Client {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: counters\r\nUser-Agent: loadgen\r\n\r\n";
const GET_SNAPSHOT: &[u8] = b"GET /__counters HTTP/1.1\r\nHost: counters\r\n\r\n";

impl Client {
    fn new() -> Client {
        Client {
            stream: None,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn connect(&mut self, addr: SocketAddr) -> Result<(), String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
        s.set_nodelay(true)
            .and_then(|()| s.set_read_timeout(Some(IO_TIMEOUT)))
            .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("socket options: {e}"))?;
        self.stream = Some(s);
        self.start = 0;
        self.end = 0;
        Ok(())
    }

    fn close(&mut self) {
        self.stream = None;
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        s.write_all(bytes)
            .map_err(|e| format!("sending to the engine: {e}"))
    }

    /// Reads one whole response (status 200, `content-length` framing); returns the
    /// body's range in `self.buf`, valid until the next call.
    fn response(&mut self) -> Result<std::ops::Range<usize>, String> {
        loop {
            let data = &self.buf[self.start..self.end];
            if let Some(head) = memchr::memmem::find(data, b"\r\n\r\n") {
                let (status, len) = parse_head(&data[..head])?;
                let total = head + 4 + len;
                if data.len() >= total {
                    if status != 200 {
                        return Err(format!("the engine answered {status}, expected 200"));
                    }
                    let body = self.start + head + 4..self.start + total;
                    self.start += total;
                    return Ok(body);
                }
                if total > self.buf.len() {
                    return Err(format!("response of {total} bytes: too large"));
                }
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let s = self.stream.as_mut().ok_or("not connected")?;
            let n = s
                .read(&mut self.buf[self.end..])
                .map_err(|e| format!("reading a response: {e}"))?;
            if n == 0 {
                return Err("the engine closed the connection before a whole response".into());
            }
            self.end += n;
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.send(GET_SNAPSHOT)?;
        let body = self.response()?;
        let mut out = [0u64; KINDS + 1];
        let mut fields = self.buf[body].split(|&b| b == b' ');
        for slot in &mut out {
            *slot = fields.next().and_then(parse_u64).ok_or(
                "the snapshot response is not a list of counters (is another engine answering?)",
            )?;
        }
        Ok(out)
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// The status and `content-length` of a response head (without the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, usize), String> {
    let mut lines = head.split(|&b| b == b'\n');
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(parse_u64)
        .ok_or("a response without a status line")?;
    let mut len = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon].eq_ignore_ascii_case(b"content-length") {
                len = parse_u64(line[colon + 1..].trim_ascii());
            }
        }
    }
    let len = len.ok_or("a response without content-length")?;
    Ok((status as u16, len as usize))
}

/// The engine under measurement, shut down when dropped.
struct Server {
    engine: Arc<Engine>,
    thread: Option<std::thread::JoinHandle<Result<(), engine::EngineError>>>,
}

impl Server {
    fn start() -> Result<Server, String> {
        let cfg = Config {
            workers: 1,
            address: "127.0.0.1:0".into(),
            ..Config::default()
        };
        let engine =
            Arc::new(Engine::new(cfg, handle).map_err(|e| format!("starting the engine: {e}"))?);
        let e = Arc::clone(&engine);
        let thread = Some(std::thread::spawn(move || e.listen()));
        let mut server = Server { engine, thread };
        let end = Instant::now() + IO_TIMEOUT;
        while server.engine.addr().is_none() {
            if server.thread.as_ref().is_some_and(|t| t.is_finished()) || Instant::now() > end {
                let why = match server.thread.take().map(|t| t.join()) {
                    Some(Ok(Err(e))) => e.to_string(),
                    _ => "not listening after 5 s".into(),
                };
                return Err(format!("starting the engine on 127.0.0.1:0: {why}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(server)
    }

    fn addr(&self) -> Result<SocketAddr, String> {
        self.engine
            .addr()
            .ok_or_else(|| "the engine stopped".into())
    }

    /// Waits until the engine has closed `n` connections in all.
    fn wait_closed(&self, n: u64, polls: &mut u64) -> Result<(), String> {
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            *polls += 1;
            if self.engine.metrics().closed >= n {
                return Ok(());
            }
            if Instant::now() > end {
                return Err("the engine did not close a connection within 5 s".into());
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.engine.shutdown(Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Measures every workload once, on a fresh engine.
fn measure() -> Result<Vec<Measured>, String> {
    let server = Server::start()?;
    let addr = server.addr()?;
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
        std::hint::black_box(server.engine.metrics());
    }
    let per_poll = engine::sys::alloc::allocations() - before;
    if per_poll == 0 {
        return Err(
            "allocations are not being counted: the binary must install \
             engine::sys::alloc::Counting as its #[global_allocator]"
                .into(),
        );
    }
    if per_poll % 8 != 0 {
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
fn finish(server: &Server, load: &mut Client, kind: Kind) -> Result<(), String> {
    if kind != Kind::NewConnection {
        close_and_wait(server, load, &mut 0)?;
    }
    Ok(())
}

/// Runs `n` requests of a workload (`n` rounded down to whole batches); returns how
/// many were served. `polls` counts the calls of `Engine::metrics`.
fn drive(
    server: &Server,
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
fn close_and_wait(server: &Server, load: &mut Client, polls: &mut u64) -> Result<(), String> {
    *polls += 1;
    let closed = server.engine.metrics().closed;
    load.close();
    server.wait_closed(closed + 1, polls)
}

// ---- comparison ----

/// One counter that differs from the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Workload name.
    pub workload: String,
    /// Counter name.
    pub counter: String,
    /// (total, requests) in the baseline, if it has the counter.
    pub baseline: Option<(u64, u64)>,
    /// (total, requests) now, if the run has the counter.
    pub measured: Option<(u64, u64)>,
}

impl Difference {
    /// One line: what differs, which way, by how much per request.
    pub fn line(&self, advice: bool) -> String {
        let per = |v: Option<(u64, u64)>| match v {
            Some((t, r)) => format!("{} per request ({t} over {r})", ratio(t, r)),
            None => "absent".into(),
        };
        let which = match (self.baseline, self.measured) {
            (Some(b), Some(m))
                if u128::from(m.0) * u128::from(b.1) > u128::from(b.0) * u128::from(m.1) =>
            {
                "higher: regression"
            }
            (Some(_), Some(_)) => {
                if advice {
                    "lower: an improvement, but the baseline must equal reality"
                } else {
                    "lower"
                }
            }
            (None, _) => "not in the baseline",
            (_, None) => "no longer measured",
        };
        format!(
            "{} {}: {}, baseline {} ({which})",
            self.workload,
            self.counter,
            per(self.measured),
            per(self.baseline)
        )
    }
}

/// Every counter that is not exactly equal per request (compared as exact ratios),
/// plus workloads or counters present on one side only.
pub fn compare(baseline: &[Measured], measured: &[Measured]) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |w: &str, c: &str, b: Option<(u64, u64)>, m: Option<(u64, u64)>| Difference {
        workload: w.into(),
        counter: c.into(),
        baseline: b,
        measured: m,
    };
    for b in baseline {
        let Some(m) = measured.iter().find(|m| m.name == b.name) else {
            out.push(diff(&b.name, "(workload)", Some((0, b.requests)), None));
            continue;
        };
        for (name, &bv) in &b.counters {
            match m.counters.get(name) {
                Some(&mv)
                    if u128::from(mv) * u128::from(b.requests)
                        == u128::from(bv) * u128::from(m.requests) => {}
                Some(&mv) => out.push(diff(
                    &b.name,
                    name,
                    Some((bv, b.requests)),
                    Some((mv, m.requests)),
                )),
                None => out.push(diff(&b.name, name, Some((bv, b.requests)), None)),
            }
        }
        for (name, &mv) in &m.counters {
            if !b.counters.contains_key(name) {
                out.push(diff(&b.name, name, None, Some((mv, m.requests))));
            }
        }
    }
    for m in measured {
        if !baseline.iter().any(|b| b.name == m.name) {
            out.push(diff(&m.name, "(workload)", None, Some((0, m.requests))));
        }
    }
    out
}

/// `t / r` as a short exact decimal where there is one (`0.0625`), else 4 places.
fn ratio(t: u64, r: u64) -> String {
    if r == 0 {
        return "-".into();
    }
    if t % r == 0 {
        return (t / r).to_string();
    }
    let v = t as f64 / r as f64;
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    s.to_string()
}

// ---- output and baseline files ----

fn table(measured: &[Measured], repeat: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "counters of the reference engine, per request ({} run{}, 1 worker):",
        repeat,
        if repeat == 1 { "" } else { "s, all equal" }
    );
    let _ = write!(out, "{:<20}", "counter");
    for m in measured {
        let _ = write!(out, "{:>16}", m.name);
    }
    out.push('\n');
    let names: Vec<&String> = measured
        .first()
        .map(|m| m.counters.keys().collect())
        .unwrap_or_default();
    let row = |out: &mut String, name: &str, get: &dyn Fn(&Measured) -> Option<u64>| {
        let _ = write!(out, "{name:<20}");
        for m in measured {
            let v = get(m).map_or("-".into(), |t| ratio(t, m.requests));
            let _ = write!(out, "{v:>16}");
        }
        out.push('\n');
    };
    // Allocations first, then syscalls in the engine's kind order.
    row(&mut out, "allocations", &|m| {
        m.counters.get("allocations").copied()
    });
    for name in NAMES.iter().filter(|n| !is_untimed(n)) {
        row(&mut out, name, &|m| m.counters.get(*name).copied());
    }
    for name in names {
        if name != "allocations" && !NAMES.contains(&name.as_str()) {
            row(&mut out, name, &|m| m.counters.get(name).copied());
        }
    }
    let _ = write!(out, "{:<20}", "requests");
    for m in measured {
        let _ = write!(out, "{:>16}", m.requests);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "not gated (timer wakeups, vary with time), totals: {}",
        measured
            .iter()
            .map(|m| {
                let parts: Vec<String> =
                    m.untimed.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{} {}", m.name, parts.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        out,
        "not counted: close(2) (OwnedFd drop), clock_gettime (vDSO)"
    );
    out
}

fn to_json(measured: &[Measured]) -> Value {
    json!({
        "schema": COUNTERS_SCHEMA,
        "about": "Exact counters of the reference engine (1 worker) over fixed workloads: \
                  heap allocations (process-wide) and syscalls by kind made by the worker \
                  thread through engine::sys, totals over `requests`. Written by \
                  `loadgen counters --write FILE`; compared exactly by `--check FILE`.",
        "workloads": measured.iter().map(|m| json!({
            "name": m.name,
            "description": m.description,
            "requests": m.requests,
            "counters": m.counters,
        })).collect::<Vec<_>>(),
    })
}

/// Parses a counters document (the format `--json` writes).
pub fn parse_counters(text: &str) -> Result<Vec<Measured>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let schema = v.get("schema").and_then(Value::as_str).unwrap_or("");
    if schema != COUNTERS_SCHEMA {
        return Err(format!("schema {schema:?}, expected {COUNTERS_SCHEMA:?}"));
    }
    let workloads = v
        .get("workloads")
        .and_then(Value::as_array)
        .ok_or("no \"workloads\" array")?;
    let mut out = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let name = w
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("workloads[{i}]: no \"name\""))?;
        let requests = w
            .get("requests")
            .and_then(Value::as_u64)
            .filter(|&r| r > 0)
            .ok_or_else(|| format!("workload {name}: \"requests\" is not a positive integer"))?;
        let counters = w
            .get("counters")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("workload {name}: no \"counters\" object"))?
            .iter()
            .map(|(k, v)| {
                v.as_u64().map(|v| (k.clone(), v)).ok_or_else(|| {
                    format!("workload {name}: counter {k} is not a non-negative integer")
                })
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        if out.iter().any(|m: &Measured| m.name == name) {
            return Err(format!("workload {name} appears twice"));
        }
        out.push(Measured {
            name: name.into(),
            requests,
            counters,
            untimed: BTreeMap::new(),
            description: w
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        });
    }
    Ok(out)
}

fn read_baseline(path: &Path) -> Result<Vec<Measured>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--check {}: cannot read: {e}", path.display()))?;
    parse_counters(&text).map_err(|e| {
        format!(
            "--check {}: {e}; write a valid one with `loadgen counters --write {}`",
            path.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, requests: u64, counters: &[(&str, u64)]) -> Measured {
        Measured {
            name: name.into(),
            requests,
            counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            untimed: BTreeMap::new(),
            description: String::new(),
        }
    }

    #[test]
    fn equal_counts_and_equal_ratios_pass() {
        let base = [m("a", 1000, &[("read", 1000), ("send", 63)])];
        assert!(compare(&base, &base).is_empty());
        // 126 over 2000 is the same ratio as 63 over 1000.
        let now = [m("a", 2000, &[("read", 2000), ("send", 126)])];
        assert!(compare(&base, &now).is_empty());
    }

    #[test]
    fn any_difference_is_reported_with_its_direction() {
        let base = [m("a", 1000, &[("read", 1000), ("send", 1000), ("x", 0)])];
        let now = [m("a", 1000, &[("read", 1001), ("send", 999), ("y", 1)])];
        let d = compare(&base, &now);
        let lines: Vec<String> = d.iter().map(|d| d.line(true)).collect();
        assert_eq!(d.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("a read: 1.001 per request (1001 over 1000), baseline 1 per request (1000 over 1000) (higher: regression)"), "{}", lines[0]);
        assert!(
            lines[1].contains("a send:") && lines[1].contains("(lower"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("a x: absent") && lines[2].contains("no longer measured"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("a y:") && lines[3].contains("not in the baseline"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn missing_and_extra_workloads_are_differences() {
        let base = [m("a", 10, &[("read", 10)]), m("b", 10, &[])];
        let now = [m("a", 10, &[("read", 10)]), m("c", 10, &[])];
        let d = compare(&base, &now);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].workload.as_str(), d[0].measured), ("b", None));
        assert_eq!((d[1].workload.as_str(), d[1].baseline), ("c", None));
    }

    #[test]
    fn documents_round_trip_and_bad_ones_say_why() {
        let ms = vec![m("a", 16, &[("allocations", 0), ("send", 1)])];
        let text = serde_json::to_string(&to_json(&ms)).unwrap();
        assert_eq!(parse_counters(&text).unwrap(), ms);
        let bad = [
            ("{", "not JSON"),
            (r#"{"schema":"x","workloads":[]}"#, "schema \"x\""),
            (r#"{"schema":"loadgen.counters/v1"}"#, "no \"workloads\""),
            (
                r#"{"schema":"loadgen.counters/v1","workloads":[{"name":"a","requests":0,"counters":{}}]}"#,
                "positive integer",
            ),
            (
                r#"{"schema":"loadgen.counters/v1","workloads":[{"name":"a","requests":1,"counters":{"r":-1}}]}"#,
                "counter r",
            ),
        ];
        for (text, want) in bad {
            let e = parse_counters(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn response_heads_parse_without_surprises() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ndate: x").unwrap(),
            (200, 13)
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").is_err());
        assert_eq!(parse_u64(b"18446744073709551615"), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"0042"), Some(42));
        assert_eq!(ratio(64, 1024), "0.0625");
        assert_eq!(ratio(3000, 1000), "3");
    }
}
