//! Section 3: worker control.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::{EngineError, WorkerState};

use crate::targets::Instance;

use super::nothing_yet;
use crate::client::{self, Class, Watch};
use crate::ctx::Ctx;
use crate::harness::{thread_cpu_time, thread_switches, Server};
use crate::outcome::{Abort, Checked, OrError, Outcome};
use crate::wait::wait_until;

/// The worker index a `GET /worker` response names.
pub(super) fn worker_of(resp: &client::Resp) -> Option<usize> {
    std::str::from_utf8(&resp.body).ok()?.trim().parse().ok()
}

/// Opens a keep-alive connection and asks which worker serves it; the stream stays open.
pub(super) fn dial_worker(addr: SocketAddr, ctx: &Ctx) -> Result<(TcpStream, usize), String> {
    let mut s = client::connect(addr, ctx.ms(2000)).map_err(|o| format!("connect: {o}"))?;
    s.write_all(&client::get("/worker"))
        .map_err(|e| format!("sending GET /worker: {e}"))?;
    let obs = client::observe(&mut s, Watch::until_end(ctx.ms(2000)).responses(1));
    match obs.responses.first().and_then(worker_of) {
        Some(w) if obs.class == Class::Response => Ok((s, w)),
        _ => Err(format!("GET /worker: {obs}")),
    }
}

/// Dials one connection at a time (each closed after its answer) until one is served
/// by worker `i`; that one (still open) and how many were dialled, or `None` if none
/// reached it in `tries`.
fn dial_until_served_by(
    addr: SocketAddr,
    i: usize,
    tries: usize,
    ctx: &Ctx,
) -> Result<Option<(TcpStream, usize)>, String> {
    for n in 1..=tries {
        let (s, w) = dial_worker(addr, ctx)?;
        if w == i {
            return Ok(Some((s, n)));
        }
    }
    Ok(None)
}

pub(super) fn state(engine: &dyn Instance, i: usize) -> Option<WorkerState> {
    engine.worker_state(i).ok()
}

/// `pause_worker(i)`, then up to 2 s for worker i to report suspended (no connection
/// holds it); the error says it did not `what` (each scenario's words for it).
pub(super) fn pause_until_suspended(
    ctx: &Ctx,
    engine: &dyn Instance,
    i: usize,
    what: &str,
) -> Checked {
    if let Err(e) = engine.pause_worker(i) {
        return Err(format!("pause_worker({i}): {e}").into());
    }
    if !wait_until(ctx.ms(2000), || {
        state(engine, i) == Some(WorkerState::Suspended)
    }) {
        return Err(format!(
            "worker {i} did not {what} within 2 s (state {:?})",
            state(engine, i)
        )
        .into());
    }
    Ok(())
}

/// Holds a keep-alive connection open on worker i, calls `pause_worker(i)` from another
/// thread and times it (it must return at once although i cannot suspend yet), then
/// watches i go `Draining` while still answering on that connection, and `Suspended`
/// once the client closes it.
pub fn pause_async(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("pause_worker(i) returns within 50 ms while worker i holds an open connection");
    o.expect("worker i then reports draining and still answers a request on that connection");
    o.expect("after the client closes the connection, worker i reports suspended");
    let server = Server::start(ctx, ctx.config())?;
    let addr = server.addr();
    let (mut conn, i) = dial_worker(addr, ctx)?;
    o.saw(format!("the held connection is served by worker {i}"));

    let engine = Arc::clone(server.engine());
    let (tx, rx) = mpsc::channel();
    let pauser = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = engine.pause_worker(i);
        let _ = tx.send((t0.elapsed(), r.map_err(|e| e.to_string())));
    });
    let returned = match rx.recv_timeout(ctx.ms(1000)) {
        Ok((took, r)) => {
            o.saw(format!(
                "pause_worker({i}) returned {r:?} after {} us",
                took.as_micros()
            ));
            if let Err(e) = r {
                return Err(format!("pause_worker({i}) failed: {e}").into());
            }
            o.check(took <= ctx.ms(50), || {
                format!(
                    "pause_worker({i}) took {} ms, allowed 50 ms",
                    took.as_millis()
                )
            });
            true
        }
        Err(_) => {
            o.saw(format!(
                "pause_worker({i}) had not returned after {} ms",
                ctx.ms(1000).as_millis()
            ));
            o.fail(format!(
                "pause_worker({i}) blocked (> {} ms) while worker {i} had an open connection",
                ctx.ms(1000).as_millis()
            ));
            false
        }
    };
    if !returned {
        // Let a blocking pause finish so the thread can be joined.
        drop(conn);
        let _ = pauser.join();
        return Ok(());
    }
    let _ = pauser.join();

    let left_active = wait_until(ctx.ms(1000), || {
        state(server.engine(), i) != Some(WorkerState::Active)
    });
    let st = state(server.engine(), i);
    o.saw(format!("worker {i} state after the pause: {st:?}"));
    if !o.check(left_active, || {
        format!("worker {i} still active 1 s after pause_worker")
    }) {
        return Ok(());
    }
    o.check(st == Some(WorkerState::Draining), || {
        format!("worker {i} is {st:?} with an open connection, expected draining")
    });

    if conn.write_all(&client::get("/worker")).is_err() {
        o.fail("sending a request on the held connection after the pause failed");
    } else {
        let obs = client::observe(&mut conn, Watch::until_end(ctx.ms(2000)).responses(1));
        o.saw(format!(
            "request on the held connection after the pause: {obs}"
        ));
        let by = obs.responses.first().and_then(worker_of);
        o.check(obs.class == Class::Response && by == Some(i), || {
            format!("the held connection was not served by worker {i} after the pause: {obs}")
        });
    }
    let st = state(server.engine(), i);
    o.check(st == Some(WorkerState::Draining), || {
        format!("worker {i} is {st:?} while its connection is open, expected draining")
    });

    drop(conn);
    let t0 = Instant::now();
    let suspended = wait_until(ctx.ms(2000), || {
        state(server.engine(), i) == Some(WorkerState::Suspended)
    });
    o.saw(format!(
        "after the client closed: worker {i} {:?} at {} ms",
        state(server.engine(), i),
        t0.elapsed().as_millis()
    ));
    o.check(suspended, || {
        format!("worker {i} did not become suspended within 2 s of its last connection closing")
    });
    Ok(())
}

/// Pauses worker i, waits until it no longer listens, then dials 40 connections (one
/// `GET /worker` each): every one must be answered by another worker, and worker i's
/// `accepted` counter must not move.
pub fn pause_routing(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("after worker i stopped listening: every new connection is answered by a worker other than i; worker i's accepted counter is unchanged");
    let server = Server::start(ctx, ctx.config())?;
    let engine = server.engine();
    let n = engine.num_workers();
    if n < 2 {
        return Err(Abort::Skipped(format!(
            "needs at least 2 workers, the engine has {n}"
        )));
    }
    let i = 0;
    // Worker i keeps a connection, so it is draining (not suspended) while dialled.
    let held = match dial_until_served_by(server.addr(), i, 100, ctx) {
        Ok(Some((s, k))) => {
            o.saw(format!("connection {k} landed on worker {i}; held open"));
            s
        }
        Ok(None) => return Err(format!("no connection of 100 landed on worker {i}").into()),
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = engine.pause_worker(i) {
        return Err(format!("pause_worker({i}): {e}").into());
    }
    let left = wait_until(ctx.ms(1000), || {
        state(engine, i) != Some(WorkerState::Active)
    });
    o.saw(format!(
        "worker {i} state after pause_worker: {:?}",
        state(engine, i)
    ));
    o.check(left, || {
        format!("worker {i} still reports active (listening) 1 s after pause_worker")
    });
    let accepted_before = engine.metrics().workers[i].accepted;

    let mut streams = Vec::new();
    for k in 0..40 {
        let mut s = client::connect(server.addr(), ctx.ms(2000))
            .map_err(|obs| format!("connection {k}: {obs}"))?;
        if s.write_all(&client::get("/worker")).is_err() {
            return Err(format!("sending on connection {k} failed").into());
        }
        streams.push(s);
    }
    let obs = client::observe_all(streams, Watch::until_end(ctx.ms(1000)).responses(1));
    let mut by_worker = vec![0usize; n];
    let mut unanswered = 0;
    for (k, ob) in obs.iter().enumerate() {
        match ob.responses.first().and_then(worker_of) {
            Some(w) if w < n => by_worker[w] += 1,
            _ => {
                unanswered += 1;
                o.saw(format!("connection {k}: {ob}"));
            }
        }
    }
    o.saw(format!(
        "40 connections answered per worker: {by_worker:?}, unanswered: {unanswered}"
    ));
    o.check(by_worker[i] == 0, || {
        format!(
            "paused worker {i} served {} new connections, allowed 0",
            by_worker[i]
        )
    });
    o.check(unanswered == 0, || {
        format!("{unanswered} of 40 new connections got no response, expected other workers to take all")
    });
    let accepted_after = engine.metrics().workers[i].accepted;
    o.saw(format!(
        "worker {i} accepted: {accepted_before} before, {accepted_after} after"
    ));
    o.check(accepted_after == accepted_before, || {
        format!(
            "paused worker {i} accepted {} new connections, allowed 0",
            accepted_after - accepted_before
        )
    });
    drop(held);
    Ok(())
}

/// Pauses a worker that has no connections, waits until it is `Suspended` and its
/// thread has settled, then measures the thread's CPU time (schedstat) and context
/// switches over a 500 ms window: neither may advance.
pub fn suspended_idle(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect(
        "over 3 s, the suspended worker's thread uses < 1 ms CPU and makes no context switch (a timer of any period up to 3 s is seen)",
    );
    let server = Server::start(ctx, ctx.config())?;
    let engine = server.engine();
    let i = engine.num_workers() - 1;
    let tid = server.worker_loop(i as i64).thread_id();
    if thread_switches(tid).is_none() || thread_cpu_time(tid).is_none() {
        return Err(format!("cannot read /proc/{tid}").into());
    }
    pause_until_suspended(ctx, engine, i, "become suspended")?;
    // The state flips just before the worker finishes its iteration: wait until its
    // switch count holds still for 20 ms (an engine that never settles is measured anyway).
    let mut last = thread_switches(tid);
    let mut since = Instant::now();
    let settled = wait_until(ctx.ms(500), || {
        let now = thread_switches(tid);
        if now != last {
            last = now;
            since = Instant::now();
        }
        since.elapsed() >= Duration::from_millis(20)
    });
    o.saw(format!(
        "worker {i} (tid {tid}) suspended; settled: {settled}"
    ));

    let (Some(cpu0), Some(sw0)) = (thread_cpu_time(tid), thread_switches(tid)) else {
        return Err(format!("cannot read /proc/{tid}").into());
    };
    // At least 3 s (SPEC): a housekeeping timer of any period up to 3 s wakes the
    // thread at least once inside the window, wherever its phase falls.
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let (Some(cpu1), Some(sw1)) = (thread_cpu_time(tid), thread_switches(tid)) else {
        return Err(format!("cannot read /proc/{tid}").into());
    };
    let cpu = cpu1.saturating_sub(cpu0);
    let switches = sw1.saturating_sub(sw0);
    o.saw(format!(
        "over {} ms: CPU {} us, context switches {switches}, state {:?}",
        window.as_millis(),
        cpu.as_micros(),
        state(engine, i)
    ));
    o.check(cpu < Duration::from_millis(1), || {
        format!(
            "suspended worker used {} us of CPU in {} ms, allowed < 1000 us",
            cpu.as_micros(),
            window.as_millis()
        )
    });
    o.check(switches == 0, || {
        format!(
            "suspended worker woke {switches} times in {} ms, allowed 0",
            window.as_millis()
        )
    });
    Ok(())
}

/// Pauses worker i until `Suspended`, resumes it: it must listen again and a new
/// connection must reach it; resuming it again changes nothing. Then with accept paused
/// engine-wide, pauses and resumes i: it must stay non-listening (connects refused)
/// until `resume_accept()`, after which it is active.
pub fn resume(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("after resume_worker(i): worker i active and serving new connections within 1 s");
    o.expect("resume_worker on an active worker: it stays active and keeps serving");
    o.expect("with accept paused engine-wide, resume_worker(i) leaves worker i non-listening (connect refused) for 300 ms, until resume_accept() makes it active");
    let server = Server::start(ctx, ctx.config())?;
    let engine = server.engine();
    let addr = server.addr();
    let n = engine.num_workers();
    let i = n - 1;
    let tries = 100;

    // 1. Suspend, resume: listens and accepts again.
    pause_until_suspended(ctx, engine, i, "suspend")?;
    if let Err(e) = engine.resume_worker(i) {
        return Err(format!("resume_worker({i}): {e}").into());
    }
    let active = wait_until(ctx.ms(1000), || {
        state(engine, i) == Some(WorkerState::Active)
    });
    o.saw(format!(
        "after resume_worker({i}): state {:?}",
        state(engine, i)
    ));
    o.check(active, || {
        format!(
            "worker {i} not active 1 s after resume_worker (state {:?})",
            state(engine, i)
        )
    });
    match dial_until_served_by(addr, i, tries, ctx) {
        Ok(Some((_, k))) => o.saw(format!(
            "connection {k} after the resume was served by worker {i}"
        )),
        Ok(None) => o.fail(format!(
            "none of {tries} new connections reached resumed worker {i}"
        )),
        Err(e) => return Err(e.into()),
    }

    // 2. Resuming an active worker changes nothing.
    if let Err(e) = engine.resume_worker(i) {
        o.fail(format!(
            "resume_worker({i}) on an active worker failed: {e}"
        ));
    }
    let left = wait_until(ctx.ms(100), || {
        state(engine, i) != Some(WorkerState::Active)
    });
    o.check(!left, || {
        format!("resuming active worker {i} made it {:?}", state(engine, i))
    });
    match dial_until_served_by(addr, i, tries, ctx) {
        Ok(Some((_, k))) => o.saw(format!(
            "after resuming the active worker, connection {k} was served by worker {i}"
        )),
        Ok(None) => o.fail(format!(
            "after resuming active worker {i}, none of {tries} connections reached it"
        )),
        Err(e) => return Err(e.into()),
    }

    // 3. Engine-wide pause wins over resume_worker, whichever pause came first. Worker
    // first: its pause is seen to take effect (active → suspended) before accept pauses.
    for worker_first in [true, false] {
        engine_pause_wins(o, engine, addr, i, worker_first, ctx)?;
    }
    Ok(())
}

/// Pauses worker i and accept engine-wide (in either order), resumes worker i: it must
/// stay non-listening (connects refused) until `resume_accept()`, then be active.
fn engine_pause_wins(
    o: &mut Outcome,
    engine: &dyn Instance,
    addr: SocketAddr,
    i: usize,
    worker_first: bool,
    ctx: &Ctx,
) -> Result<(), String> {
    let order = if worker_first {
        "pause_worker then pause_accept"
    } else {
        "pause_accept then pause_worker"
    };
    let suspend = |why: &str| {
        if wait_until(ctx.ms(2000), || {
            state(engine, i) == Some(WorkerState::Suspended)
        }) {
            Ok(())
        } else {
            Err(format!(
                "worker {i} did not suspend within 2 s {why} (state {:?})",
                state(engine, i)
            ))
        }
    };
    if worker_first {
        engine
            .pause_worker(i)
            .map_err(|e| format!("pause_worker({i}): {e}"))?;
        suspend("after pause_worker")?;
        engine
            .pause_accept()
            .map_err(|e| format!("pause_accept: {e}"))?;
    } else {
        engine
            .pause_accept()
            .map_err(|e| format!("pause_accept: {e}"))?;
        engine
            .pause_worker(i)
            .map_err(|e| format!("pause_worker({i}): {e}"))?;
        suspend("under pause_accept")?;
    }
    engine
        .resume_worker(i)
        .map_err(|e| format!("resume_worker({i}): {e}"))?;
    let relistened = wait_until(ctx.ms(300), || {
        state(engine, i) == Some(WorkerState::Active)
    });
    o.saw(format!(
        "{order}, resume_worker({i}): state {:?}",
        state(engine, i)
    ));
    o.check(!relistened, || {
        format!("{order}: worker {i} listens again after resume_worker although accept is paused engine-wide")
    });
    match client::connect(addr, ctx.ms(1000)) {
        Err(obs) if obs.class == Class::Refused => {
            o.saw(format!("{order}: connect while accept is paused: refused"))
        }
        Err(obs) => o.fail(format!(
            "{order}: connect while accept is paused: {obs}, expected refused"
        )),
        Ok(_) => o.fail(format!(
            "{order}: a connect succeeded while accept is paused engine-wide, expected refused"
        )),
    }
    engine
        .resume_accept()
        .map_err(|e| format!("resume_accept: {e}"))?;
    let active = wait_until(ctx.ms(1000), || {
        state(engine, i) == Some(WorkerState::Active)
    });
    o.saw(format!(
        "{order}: after resume_accept worker {i} is {:?}",
        state(engine, i)
    ));
    o.check(active, || {
        format!(
            "{order}: worker {i} not active 1 s after resume_accept (state {:?})",
            state(engine, i)
        )
    });
    Ok(())
}

/// One engine call under test, its result rendered.
type Call<'a> = dyn Fn() -> Result<String, EngineError> + 'a;

/// Calls `pause_worker`, `resume_worker` and `worker_state` with `N` and `usize::MAX`
/// (each under `catch_unwind`): each must return `Err(NoSuchWorker { index, count: N })`;
/// afterwards every worker is still active and the engine still serves.
pub fn index(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("every call with an out-of-range index: Err(NoSuchWorker { index, count }), no panic");
    o.expect("all workers still active and serving afterwards");
    let server = Server::start(ctx, ctx.config())?;
    let engine = server.engine();
    let n = engine.num_workers();
    for bad in [n, n + 1, usize::MAX] {
        let calls: [(&str, Box<Call>); 3] = [
            (
                "pause_worker",
                Box::new(|| engine.pause_worker(bad).map(|()| "()".to_string())),
            ),
            (
                "resume_worker",
                Box::new(|| engine.resume_worker(bad).map(|()| "()".to_string())),
            ),
            (
                "worker_state",
                Box::new(|| engine.worker_state(bad).map(|s| s.to_string())),
            ),
        ];
        for (name, call) in calls {
            match catch_unwind(AssertUnwindSafe(call)) {
                Err(_) => o.fail(format!("{name}({bad}) panicked")),
                Ok(Ok(v)) => {
                    o.saw(format!("{name}({bad}) = Ok({v})"));
                    o.fail(format!(
                        "{name}({bad}) returned Ok({v}), expected Err(NoSuchWorker)"
                    ));
                }
                Ok(Err(e)) => {
                    o.saw(format!("{name}({bad}) = Err({e})"));
                    o.check(
                        matches!(e, EngineError::NoSuchWorker { index, count } if index == bad && count == n),
                        || format!("{name}({bad}) returned {e:?}, expected NoSuchWorker {{ index: {bad}, count: {n} }}"),
                    );
                }
            }
        }
    }
    for w in 0..n {
        let st = state(engine, w);
        o.check(st == Some(WorkerState::Active), || {
            format!("worker {w} is {st:?} after the out-of-range calls, expected active")
        });
    }
    let obs = client::request(server.addr(), &client::get("/"), ctx.ms(2000));
    o.saw(format!("a request afterwards: {obs}"));
    o.check(obs.class == Class::Response, || {
        format!("the engine no longer serves after the out-of-range calls: {obs}")
    });
    Ok(())
}

/// Bytes a driver callback collected, and whether `on_close` ran.
#[derive(Default)]
struct Received {
    bytes: Mutex<Vec<u8>>,
    closed: AtomicBool,
}

impl Received {
    fn ends_with(&self, tail: &[u8]) -> bool {
        lock(&self.bytes).ends_with(tail)
    }
}

/// Reads exactly `want` bytes from `peer` within `within`; what arrived.
fn read_exact_within(peer: &mut TcpStream, want: usize, within: Duration) -> Vec<u8> {
    let end = Instant::now() + within;
    let mut got = Vec::with_capacity(want);
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < want {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = peer.set_read_timeout(Some(left.min(Duration::from_millis(50))));
        match peer.read(&mut buf[..(want - got.len()).min(64 * 1024)]) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if nothing_yet(&e) => {}
            Err(_) => break,
        }
    }
    got
}

/// Registers a driver connection (a connected TCP pair from a private listener) on
/// worker i, then pauses i and accept engine-wide: bytes from the peer must still reach
/// `on_recv`, a 4 MiB `write` (mostly queued, flushed on EPOLLOUT) must reach the peer
/// whole, and i must stay `Draining`; after `unregister_conn` it must become `Suspended`.
pub fn drivers_serviced(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("while worker i is paused (and accept paused engine-wide) with a driver fd: peer bytes reach on_recv, a 4 MiB write reaches the peer whole, state draining");
    o.expect("after unregister_conn: worker i suspended");
    // Declared before the server so the engine is shut down before these fds close.
    let pair = TcpListener::bind("127.0.0.1:0").and_then(|l| {
        let a = l.local_addr()?;
        let c = TcpStream::connect(a)?;
        let (p, _) = l.accept()?;
        Ok((c, p))
    });
    let (driver, mut peer) = pair.or_error("making a TCP pair")?;
    driver.set_nonblocking(true).or_error("set_nonblocking")?;
    let fd = driver.as_raw_fd();
    let _ = engine::sys::socket::set_buffer_sizes(fd, Some(64 * 1024), None);
    let _ = engine::sys::socket::set_buffer_sizes(peer.as_raw_fd(), None, Some(64 * 1024));

    let server = Server::start(ctx, ctx.config())?;
    let engine = server.engine();
    let i = engine.num_workers() - 1;
    let wl = server.worker_loop(i as i64);
    let rx = Arc::new(Received::default());
    let (rx_recv, rx_close) = (Arc::clone(&rx), Arc::clone(&rx));
    let registered = wl.register_conn(
        fd,
        move |b: &[u8]| lock(&rx_recv.bytes).extend_from_slice(b),
        move |_| rx_close.closed.store(true, SeqCst),
    );
    if let Err(e) = registered {
        return Err(format!("register_conn({fd}) on worker {i}: {e}").into());
    }
    if peer.write_all(b"before-pause;").is_err()
        || !wait_until(ctx.ms(2000), || rx.ends_with(b"before-pause;"))
    {
        return Err("the driver fd does not receive even before the pause".into());
    }

    if let Err(e) = engine.pause_worker(i) {
        return Err(format!("pause_worker({i}): {e}").into());
    }
    let left = wait_until(ctx.ms(1000), || {
        state(engine, i) != Some(WorkerState::Active)
    });
    if !left {
        return Err(format!("worker {i} still active 1 s after pause_worker").into());
    }
    let st = state(engine, i);
    o.saw(format!("worker {i} paused with a driver fd: {st:?}"));
    o.check(st == Some(WorkerState::Draining), || {
        format!("worker {i} is {st:?} with a registered driver fd, expected draining")
    });

    let mut phase = |o: &mut Outcome, label: &str, tag: &[u8]| {
        if peer.write_all(tag).is_err() {
            o.fail(format!("{label}: the peer could not send"));
            return;
        }
        let t0 = Instant::now();
        let got = wait_until(ctx.ms(1000), || rx.ends_with(tag));
        o.saw(format!(
            "{label}: peer bytes {} on_recv ({} ms)",
            if got { "reached" } else { "did not reach" },
            t0.elapsed().as_millis()
        ));
        o.check(got, || {
            format!("{label}: bytes sent by the peer never reached on_recv within 1 s")
        });
        let data: Vec<u8> = (0..4usize << 20).map(|k| (k % 251) as u8).collect();
        match wl.write(fd, &data) {
            Err(e) => o.fail(format!("{label}: write of 4 MiB failed: {e}")),
            Ok(()) => {
                let in_kernel = engine::sys::socket::send_queue_len(fd).unwrap_or(0)
                    + engine::sys::socket::recv_queue_len(peer.as_raw_fd()).unwrap_or(0);
                o.saw(format!(
                    "{label}: write(4 MiB) returned Ok; the kernel held about {in_kernel} bytes, the engine queued the rest"
                ));
                let t0 = Instant::now();
                let got = read_exact_within(&mut peer, data.len(), ctx.ms(3000));
                o.saw(format!(
                    "{label}: peer read {} of {} bytes written ({} ms)",
                    got.len(),
                    data.len(),
                    t0.elapsed().as_millis()
                ));
                o.check(got == data, || {
                    format!(
                        "{label}: the peer got {} of {} bytes (or out of order): the queued rest was not flushed",
                        got.len(),
                        data.len()
                    )
                });
            }
        }
    };
    phase(o, "worker paused", b"after-pause;");

    engine.pause_accept().or_error("pause_accept")?;
    phase(o, "worker and accept paused", b"after-accept-pause;");

    let suspended = wait_until(ctx.ms(200), || {
        state(engine, i) == Some(WorkerState::Suspended)
    });
    let st = state(engine, i);
    o.check(!suspended && st == Some(WorkerState::Draining), || {
        format!("worker {i} is {st:?} while a driver fd is registered, expected draining")
    });
    o.check(!rx.closed.load(SeqCst), || {
        "on_close ran although the driver fd was neither closed nor unregistered".to_string()
    });

    if let Err(e) = wl.unregister_conn(fd) {
        o.fail(format!("unregister_conn({fd}): {e}"));
        return Ok(());
    }
    let t0 = Instant::now();
    let suspended = wait_until(ctx.ms(1000), || {
        state(engine, i) == Some(WorkerState::Suspended)
    });
    o.saw(format!(
        "after unregister_conn: worker {i} {:?} ({} ms)",
        state(engine, i),
        t0.elapsed().as_millis()
    ));
    o.check(suspended, || {
        format!("worker {i} did not suspend within 1 s after its last driver fd was unregistered")
    });
    Ok(())
}
