//! Section 2: accept control.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::with_workers;
use crate::client::{self, Class, Observation, Watch};
use crate::ctx::Ctx;
use crate::harness::Server;
use crate::outcome::{Abort, Checked, OrError, Outcome};
use crate::wait::wait_until;

/// Keeps the only worker busy in a held handler, queues connections in the kernel
/// accept queue (some silent, some with a complete request), pauses accept from another
/// thread, releases the handler, and watches every queued connection end.
pub fn pause_drain_fin(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("every queued connection: EOF (optionally after a complete response), SO_ERROR 0, and a write 200 ms after EOF draws no RST (class fin)");
    let server = Server::with_workers(ctx, 1)?;
    let addr = server.addr();
    let mut busy = client::connect(addr, ctx.ms(2000)).or_error("connect for the busy request")?;
    if busy.write_all(&client::get("/hold")).is_err() || !server.gate.wait_entered(1, ctx.ms(5000))
    {
        return Err("the worker never entered the held handler".into());
    }
    let mut queued = Vec::new();
    for i in 0..6 {
        let mut s = client::connect(addr, ctx.ms(2000))
            .map_err(|obs| format!("queueing connection {i}: {obs}"))?;
        if i % 2 == 1 && s.write_all(&client::get("/")).is_err() {
            return Err("sending on a queued connection failed".into());
        }
        queued.push(s);
    }
    let engine = Arc::clone(server.engine());
    let pauser = std::thread::spawn(move || engine.pause_accept());
    if !wait_until(ctx.ms(2000), || server.engine().accept_paused()) {
        return Err("pause_accept did not start".into());
    }
    server.gate.release();
    match pauser.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("pause_accept failed: {e}").into()),
        Err(_) => return Err("pause_accept panicked".into()),
    }
    let busy_obs = client::observe(&mut busy, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("busy connection: {busy_obs}"));
    let watch = Watch::until_end(ctx.ms(3000)).probe(Duration::from_millis(200));
    for (i, obs) in client::observe_all(queued, watch).into_iter().enumerate() {
        let kind = if i % 2 == 1 { "request sent" } else { "silent" };
        o.saw(format!("queued connection {i} ({kind}): {obs}"));
        o.check(obs.class == Class::Fin, || {
            format!("queued connection {i} ended {} (expected fin)", obs.class)
        });
    }
    Ok(())
}

/// Holds one of two workers in `/hold`, calls `pause_accept` from another thread and
/// releases the worker after a 200 ms window (a pause that returns inside the window
/// returned before the held worker could close its socket). Right after the return, the
/// pausing thread dials the port several times: every dial must be refused, and the
/// engine's accepted count must not grow after the return.
pub fn pause_sync(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const DIALS: usize = 6;
    o.expect(format!(
        "each of {DIALS} connects made right after pause_accept returns: refused (ECONNREFUSED)"
    ));
    o.expect("the engine's accepted count does not grow after pause_accept returns");
    let server = Server::with_workers(ctx, 2)?;
    let addr = server.addr();
    let mut held = hold_worker(&server, ctx)?;
    let engine = Arc::clone(server.engine());
    let dial_deadline = ctx.ms(1000);
    let called = Instant::now();
    let pauser = std::thread::spawn(move || {
        let result = engine.pause_accept();
        let returned = called.elapsed();
        let accepted = engine.metrics().accepted;
        let mut dials = Vec::new();
        if result.is_ok() {
            for _ in 0..DIALS {
                let t = Instant::now();
                dials.push((client::connect(addr, dial_deadline), t.elapsed()));
            }
        }
        (result, returned, accepted, dials)
    });
    if !wait_until(ctx.ms(2000), || server.engine().accept_paused()) {
        return Err("pause_accept did not start".into());
    }
    // The window during which the held worker cannot close its listen socket.
    let early = wait_until(ctx.ms(200), || pauser.is_finished());
    let released = called.elapsed();
    server.gate.release();
    let (result, returned, accepted_at_return, dials) =
        pauser.join().map_err(|_| "the pausing thread panicked")?;
    result.or_error("pause_accept failed")?;
    o.saw(format!(
        "pause_accept returned {} ms after the call; the held worker was released at {} ms{}",
        returned.as_millis(),
        released.as_millis(),
        if early {
            " (the pause returned while the worker was still held)"
        } else {
            ""
        }
    ));
    let mut connected = Vec::new();
    for (i, (dial, took)) in dials.into_iter().enumerate() {
        match dial {
            Ok(s) => {
                o.saw(format!(
                    "dial {i} after the return: connected in {} us",
                    took.as_micros()
                ));
                o.fail(format!(
                    "dial {i} right after pause_accept returned connected (expected refused)"
                ));
                connected.push(s);
            }
            Err(obs) => {
                o.saw(format!("dial {i} after the return: {obs}"));
                o.check(obs.class == Class::Refused, || {
                    format!(
                        "dial {i} right after pause_accept returned ended {} (expected refused)",
                        obs.class
                    )
                });
            }
        }
    }
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("held connection: {held_obs}"));
    // A connection that slipped into a listen queue is accepted once the worker is free.
    wait_until(ctx.ms(300), || {
        server.engine().metrics().accepted > accepted_at_return
    });
    let accepted = server.engine().metrics().accepted;
    o.saw(format!(
        "accepted: {accepted_at_return} when pause_accept returned, {accepted} 300 ms after the release"
    ));
    o.check(accepted == accepted_at_return, || {
        format!(
            "the engine accepted {} connection(s) after pause_accept returned (expected none)",
            accepted - accepted_at_return
        )
    });
    drop(connected);
    Ok(())
}

/// Holds the only worker, queues connections that each sent a complete request with a
/// distinct body, pauses accept from another thread, releases the worker and watches
/// every queued connection: each must get its own response, marked `connection: close`,
/// before a clean FIN.
pub fn pause_zero_loss(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const QUEUED: usize = 5;
    o.expect("every queued connection: one 200 response echoing its own request body, with connection: close, then EOF and no RST on a write 200 ms later (class fin)");
    let server = Server::with_workers(ctx, 1)?;
    let mut held = hold_worker(&server, ctx)?;
    let bodies: Vec<String> = (0..QUEUED).map(|i| format!("queued-{i}")).collect();
    let mut queued = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match queue_connection(server.addr(), Some(req.as_bytes()), ctx) {
            Ok(s) => queued.push(s),
            Err(e) => return Err(format!("queueing connection {i}: {e}").into()),
        }
    }
    pause_while_held(&server, ctx)?;
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("held connection: {held_obs}"));
    let watch = Watch::until_end(ctx.ms(3000)).probe(Duration::from_millis(200));
    for (i, obs) in client::observe_all(queued, watch).into_iter().enumerate() {
        o.saw(format!("queued connection {i}: {obs}"));
        let answered = obs.responses.len() == 1
            && obs.responses[0].status == 200
            && obs.responses[0].body == bodies[i].as_bytes();
        o.check(answered, || {
            format!(
                "queued connection {i}: {} response(s) (expected its own 200 response)",
                obs.responses.len()
            )
        });
        o.check(obs.responses.iter().all(|r| r.closes()), || {
            format!("queued connection {i}: the response lacks connection: close")
        });
        o.check(obs.class == Class::Fin, || {
            format!("queued connection {i} ended {} (expected fin)", obs.class)
        });
    }
    Ok(())
}

/// Starts engine A (one worker) and engine B on A's port (both `SO_REUSEPORT`, each
/// answering with its name), holds A's worker in `/hold` on a connection A accepted,
/// lets three client threads dial continuously (one request per dial), calls
/// `pause_accept` on A from another thread and releases A's worker after a 200 ms
/// window; right after the return, that thread dials 16 more times. Every dial that
/// started after the return must be served by B; no dial may see RST, refusal or
/// silence. (The held worker makes A's queue non-empty at the pause, and keeps a pause
/// that returns early from closing A's socket in time.)
pub fn pause_handover(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const THREADS: usize = 3;
    const AFTER: usize = 16;
    o.expect("every dial that started after pause_accept(A) returned: a 200 response from B");
    o.expect("every earlier dial: a 200 response from A or B, or a FIN from A's drain; never RST, refused or timeout");
    let pair = Pair::start(ctx)?;
    let addr = pair.a.addr();
    let mut held = connection_to_a(&pair, ctx)?;
    if held.write_all(&client::get("/hold")).is_err() || !pair.a.gate.wait_entered(1, ctx.ms(5000))
    {
        return Err("engine A's worker never entered the held handler".into());
    }
    let dial_deadline = ctx.ms(3000);
    let dialers = Dialers::spawn(addr, THREADS, 2000, dial_deadline);
    if !wait_until(ctx.ms(2000), || dialers.started() >= THREADS) {
        return Err("the dialing threads did not start".into());
    }
    let engine = Arc::clone(pair.a.engine());
    let pauser = std::thread::spawn(move || {
        let result = engine.pause_accept();
        let returned = Instant::now();
        let mut after = Vec::new();
        if result.is_ok() {
            for _ in 0..AFTER {
                let started = Instant::now();
                let conn = client::connect(addr, dial_deadline).map(|mut s| {
                    // A failed send shows up as a reset when the stream is observed.
                    let _ = s.write_all(&client::get("/id"));
                    s
                });
                after.push((started, conn));
            }
        }
        (result, returned, after)
    });
    if !wait_until(ctx.ms(2000), || pair.a.engine().accept_paused()) {
        return Err("pause_accept did not start".into());
    }
    // The window during which A's held worker cannot close its listen socket.
    wait_until(ctx.ms(200), || pauser.is_finished());
    pair.a.gate.release();
    let (result, returned, after) = pauser.join().map_err(|_| "the pausing thread panicked")?;
    result.or_error("pause_accept on A failed")?;
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("held connection to A: {held_obs}"));
    // Keep dialing for a while after the return.
    let at_return = dialers.started();
    wait_until(ctx.ms(1000), || dialers.started() >= at_return + 200);
    let mut dials = dialers.finish();
    let mut streams = Vec::new();
    let mut starts = Vec::new();
    for (started, conn) in after {
        match conn {
            Ok(s) => {
                streams.push(s);
                starts.push(started);
            }
            Err(obs) => dials.push(Dial {
                started,
                connected: None,
                obs,
            }),
        }
    }
    let watch = Watch::until_end(dial_deadline).responses(1);
    for (started, obs) in starts.into_iter().zip(client::observe_all(streams, watch)) {
        dials.push(Dial {
            started,
            connected: Some(started),
            obs,
        });
    }
    let mut before = Tally::default();
    let mut later = Tally::default();
    for d in &dials {
        let is_later = d.started >= returned;
        let label = d.label();
        let ok = if is_later {
            label == "B"
        } else {
            matches!(label, "A" | "B" | "fin")
        };
        let tally = if is_later { &mut later } else { &mut before };
        tally.add(label, ok, || d.obs.to_string());
    }
    o.saw(format!(
        "dials started before pause_accept returned: {before}"
    ));
    o.saw(format!(
        "dials started after pause_accept returned: {later}"
    ));
    for (when, t) in [("before", &before), ("after", &later)] {
        for bad in &t.bad_examples {
            o.saw(format!("bad dial started {when} the return: {bad}"));
        }
    }
    o.check(later.total > 0, || {
        "no dial started after pause_accept returned".into()
    });
    o.check(later.bad == 0, || {
        format!(
            "{} of {} dials started after pause_accept(A) returned were not served by B ({later})",
            later.bad, later.total
        )
    });
    o.check(before.bad == 0, || {
        format!(
            "{} of {} dials started before the return ended in RST, refusal or timeout ({before})",
            before.bad, before.total
        )
    });
    Ok(())
}

/// Engines A and B share a port; four client threads dial it as fast as they can
/// (one request per dial) while A goes through 100 pause/resume cycles (15 ms paused,
/// 15 ms listening). Counts every dial by outcome: RSTs (reset after connect, or a
/// refused connect) are reported per 10,000 dials and must be zero; every dial that
/// connected while A was paused must be served by B.
pub fn pause_handover_race(ctx: &Ctx, o: &mut Outcome) -> Checked {
    handover_storm(ctx, o).map(|_| ())
}

/// What the dial storm of [`pause_handover_race`] counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Storm {
    /// Dials made.
    pub dials: usize,
    /// Dials answered with RST (after connect, or a refused connect).
    pub resets: usize,
}

/// The storm of [`pause_handover_race`], its checks recorded in `o`; also returns the
/// counts (`accept.pause.migrate` reports them next to its namespace's counters).
pub(super) fn handover_storm(ctx: &Ctx, o: &mut Outcome) -> Result<Storm, Abort> {
    const THREADS: usize = 4;
    const CYCLES: usize = 100;
    o.expect("no dial of the storm is answered with RST (reset after connect, or refused connect): 0 per 10,000 dials");
    o.expect("every dial that connected while A was paused (after pause_accept returned, before resume_accept was called): a 200 response from B");
    o.expect("every other dial: a 200 response from A or B, or a FIN from A's drain");
    let pair = Pair::start(ctx)?;
    // A dial may connect only on its third SYN: an engine that steers handshakes away
    // from a closing socket by dropping their SYNs costs the client its retransmission
    // timeouts (1 s, then 2 s more), and a retry can land in a later cycle's closing
    // instant. That is slow, not reset: the deadline lets it finish.
    let dialers = Dialers::spawn(pair.a.addr(), THREADS, 20_000, ctx.ms(8000));
    if !wait_until(ctx.ms(2000), || dialers.started() >= THREADS * 10) {
        return Err("the dialing threads did not start".into());
    }
    let engine = pair.a.engine();
    let phase = ctx.ms(15);
    let budget = Instant::now() + ctx.ms(7000);
    let start = Instant::now();
    let mut paused_windows = Vec::with_capacity(CYCLES);
    let mut error = None;
    for cycle in 0..CYCLES {
        if Instant::now() >= budget {
            o.saw(format!("stopped after {cycle} cycles (time budget)"));
            break;
        }
        if let Err(e) = engine.pause_accept() {
            error = Some(format!("pause_accept on A (cycle {cycle}) failed: {e}"));
            break;
        }
        let paused = Instant::now();
        // A stays paused for a while under the storm: part of the measurement.
        std::thread::sleep(phase);
        let resuming = Instant::now();
        if let Err(e) = engine.resume_accept() {
            error = Some(format!("resume_accept on A (cycle {cycle}) failed: {e}"));
            break;
        }
        paused_windows.push((paused, resuming));
        std::thread::sleep(phase);
    }
    let elapsed = start.elapsed();
    let dials = dialers.finish();
    if let Some(e) = error {
        return Err(e.into());
    }
    let mut paused_tally = Tally::default();
    let mut other = Tally::default();
    let mut rst = 0usize;
    for d in &dials {
        let label = d.label();
        if matches!(label, "rst" | "fin-then-rst" | "refused") {
            rst += 1;
        }
        let in_pause = d.connected.is_some_and(|c| {
            let i = paused_windows.partition_point(|(p, _)| *p <= d.started);
            i > 0 && c <= paused_windows[i - 1].1
        });
        let describe = || {
            let (what, t) = match d.connected {
                Some(c) => ("connected", c),
                None => ("started", d.started),
            };
            format!(
                "{}; {what} {} from the nearest return of pause_accept, {} from the nearest call of resume_accept",
                d.obs,
                offset_to_nearest(t, paused_windows.iter().map(|w| w.0)),
                offset_to_nearest(t, paused_windows.iter().map(|w| w.1))
            )
        };
        if in_pause {
            paused_tally.add(label, label == "B", describe);
        } else {
            other.add(label, matches!(label, "A" | "B" | "fin"), describe);
        }
    }
    let total = dials.len();
    let per_10k = rst as f64 * 10_000.0 / total.max(1) as f64;
    o.saw(format!(
        "{} pause/resume cycles in {} ms; {total} dials ({:.0}/s); {rst} RST = {per_10k:.2} per 10,000 dials",
        paused_windows.len(),
        elapsed.as_millis(),
        total as f64 / elapsed.as_secs_f64().max(0.001)
    ));
    o.saw(format!(
        "resets {rst} in {total} dials, net.ipv4.tcp_migrate_req = {} where the storm ran",
        match engine::sys::netns::tcp_migrate_req() {
            Ok(Some(on)) => u8::from(on).to_string(),
            Ok(None) => "absent (kernel < 5.14)".into(),
            Err(e) => format!("unreadable ({e})"),
        }
    ));
    // What steering costs the clients: a SYN dropped (by the engine or by a full
    // queue) connects only on its retransmission, 1 s or more later.
    let waits: Vec<Duration> = dials
        .iter()
        .filter_map(|d| d.connected.map(|c| c - d.started))
        .filter(|w| *w >= Duration::from_millis(900))
        .collect();
    o.saw(format!(
        "{} of {total} dials connected only after 0.9 s or more (a SYN retransmission){}",
        waits.len(),
        waits.iter().max().map_or(String::new(), |m| format!(
            ", the longest after {} ms",
            m.as_millis()
        ))
    ));
    o.saw(format!(
        "dials connected while A was paused: {paused_tally}"
    ));
    o.saw(format!("other dials: {other}"));
    for bad in paused_tally.bad_examples.iter().chain(&other.bad_examples) {
        o.saw(format!("bad dial: {bad}"));
    }
    o.check(paused_windows.len() >= CYCLES / 2, || {
        format!(
            "only {} pause/resume cycles fit in the time budget",
            paused_windows.len()
        )
    });
    o.check(rst == 0, || {
        format!("{per_10k:.2} RST per 10,000 dials ({rst} of {total}; allowed 0)")
    });
    o.check(paused_tally.bad == 0, || {
        format!(
            "{} of {} dials that connected while A was paused were not served by B ({paused_tally})",
            paused_tally.bad, paused_tally.total
        )
    });
    o.check(other.bad == 0, || {
        format!(
            "{} of {} other dials ended badly ({other})",
            other.bad, other.total
        )
    });
    Ok(Storm {
        dials: total,
        resets: rst,
    })
}

/// `t` relative to the nearest of `marks`, e.g. `-12 us` (before it) or `+3 us`.
fn offset_to_nearest(t: Instant, marks: impl Iterator<Item = Instant>) -> String {
    let signed = |m: Instant| -> i128 {
        if t >= m {
            (t - m).as_micros() as i128
        } else {
            -((m - t).as_micros() as i128)
        }
    };
    match marks.map(signed).min_by_key(|us| us.abs()) {
        Some(us) => format!("{us:+} us"),
        None => "(no pause)".into(),
    }
}

/// Opens keep-alive connections on a two-worker engine and has each answer a request,
/// pauses accept, then sends several more requests on each: every one must be answered
/// (200, no `connection: close`) on the same connection.
pub fn pause_keep_serving(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const CONNS: usize = 4;
    const ROUNDS: usize = 3;
    o.expect(format!("each of {CONNS} keep-alive connections accepted before the pause answers {ROUNDS} more requests after pause_accept returns: 200 without connection: close, the connection still open"));
    let server = Server::with_workers(ctx, 2)?;
    let mut conns = Vec::new();
    for i in 0..CONNS {
        let mut s = client::connect(server.addr(), ctx.ms(2000))
            .map_err(|obs| format!("connection {i}: {obs}"))?;
        if s.write_all(&client::get("/worker")).is_err() {
            return Err(format!("connection {i}: sending the first request failed").into());
        }
        let obs = client::observe(&mut s, Watch::until_end(ctx.ms(2000)).responses(1));
        let Some(r) = obs
            .responses
            .first()
            .filter(|_| obs.class == Class::Response)
        else {
            return Err(format!("connection {i} before the pause: {obs}").into());
        };
        o.saw(format!(
            "connection {i}: served by worker {} before the pause",
            String::from_utf8_lossy(&r.body)
        ));
        conns.push(s);
    }
    server
        .engine()
        .pause_accept()
        .or_error("pause_accept failed")?;
    for round in 0..ROUNDS {
        for (i, s) in conns.iter_mut().enumerate() {
            let obs = if let Err(e) = s.write_all(&client::get("/")) {
                o.fail(format!(
                    "connection {i}, request {round} after the pause: send failed: {e}"
                ));
                continue;
            } else {
                client::observe(s, Watch::until_end(ctx.ms(2000)).responses(1))
            };
            o.saw(format!(
                "connection {i}, request {round} after the pause: {obs}"
            ));
            let ok = obs.class == Class::Response
                && obs
                    .responses
                    .first()
                    .is_some_and(|r| r.status == 200 && !r.closes());
            o.check(ok, || {
                format!("connection {i}, request {round} after the pause: {obs} (expected a 200 response on the open connection)")
            });
        }
    }
    Ok(())
}

/// Pauses accept on a two-worker engine with a keep-alive connection open, then calls
/// `pause_accept` again: it must return `Ok` within 100 ms and change nothing (still
/// paused, worker states unchanged, new dials refused, nothing accepted, the open
/// connection still served).
pub fn pause_idempotent(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("the second pause_accept returns Ok within 100 ms");
    o.expect("afterwards: still paused, worker states unchanged, 3 new dials refused, accepted count unchanged, the open keep-alive connection still answered");
    let server = Server::with_workers(ctx, 2)?;
    let engine = server.engine();
    let mut conn = client::connect(server.addr(), ctx.ms(2000)).or_error("connect")?;
    let first = request_on(&mut conn, ctx);
    if first.class != Class::Response {
        return Err(format!("the keep-alive connection before the pause: {first}").into());
    }
    engine
        .pause_accept()
        .or_error("the first pause_accept failed")?;
    let states = |e: &dyn crate::targets::Instance| -> Vec<String> {
        (0..e.num_workers())
            .map(|i| match e.worker_state(i) {
                Ok(s) => s.to_string(),
                Err(err) => err.to_string(),
            })
            .collect()
    };
    let states_before = states(engine);
    let accepted_before = engine.metrics().accepted;
    let t = Instant::now();
    let second = engine.pause_accept();
    let took = t.elapsed();
    o.saw(format!(
        "second pause_accept: {:?} after {} us",
        second.as_ref().map_err(|e| e.to_string()),
        took.as_micros()
    ));
    o.check(second.is_ok(), || {
        format!("the second pause_accept failed: {second:?}")
    });
    o.check(took <= ctx.ms(100), || {
        format!(
            "the second pause_accept took {} ms (allowed {} ms)",
            took.as_millis(),
            ctx.ms(100).as_millis()
        )
    });
    o.check(engine.accept_paused(), || {
        "accept_paused() is false after the second pause".into()
    });
    let states_after = states(engine);
    o.saw(format!(
        "worker states: {states_before:?} before, {states_after:?} after"
    ));
    o.check(states_after == states_before, || {
        format!("worker states changed: {states_before:?} -> {states_after:?}")
    });
    let mut connected = Vec::new();
    for i in 0..3 {
        match client::connect(server.addr(), ctx.ms(1000)) {
            Ok(s) => {
                o.fail(format!(
                    "dial {i} after the second pause connected (expected refused)"
                ));
                connected.push(s);
            }
            Err(obs) => {
                o.saw(format!("dial {i} after the second pause: {obs}"));
                o.check(obs.class == Class::Refused, || {
                    format!(
                        "dial {i} after the second pause ended {} (expected refused)",
                        obs.class
                    )
                });
            }
        }
    }
    let again = request_on(&mut conn, ctx);
    o.saw(format!(
        "keep-alive connection after the second pause: {again}"
    ));
    o.check(
        again.class == Class::Response && again.responses.first().is_some_and(|r| r.status == 200),
        || format!("the open connection after the second pause: {again} (expected a 200 response)"),
    );
    let accepted = engine.metrics().accepted;
    o.check(accepted == accepted_before, || {
        format!("accepted went from {accepted_before} to {accepted} while paused")
    });
    drop(connected);
    Ok(())
}

/// Checks that `Config::default()` leaves `TCP_DEFER_ACCEPT` off, then holds the only
/// worker, queues connections that complete the handshake but send nothing, pauses
/// accept from another thread and releases the worker: every silent connection must end
/// with a clean FIN (a deferred connection hides from the drain and is reset, or left
/// hanging: both fail).
pub fn no_deferred(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const SILENT: usize = 4;
    o.expect("Config::default().tcp_defer_accept is false");
    o.expect("every silent queued connection: EOF, SO_ERROR 0, no RST on a write 200 ms later (class fin)");
    let default_defer = engine::Config::default().tcp_defer_accept;
    o.saw(format!(
        "Config::default().tcp_defer_accept = {default_defer}"
    ));
    o.check(!default_defer, || {
        "TCP_DEFER_ACCEPT is on by default".into()
    });
    let server = Server::with_workers(ctx, 1)?;
    let mut held = hold_worker(&server, ctx)?;
    let mut queued = Vec::new();
    for i in 0..SILENT {
        match queue_connection(server.addr(), None, ctx) {
            Ok(s) => queued.push(s),
            Err(e) => return Err(format!("queueing silent connection {i}: {e}").into()),
        }
    }
    pause_while_held(&server, ctx)?;
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("held connection: {held_obs}"));
    let watch = Watch::until_end(ctx.ms(2000)).probe(Duration::from_millis(200));
    for (i, obs) in client::observe_all(queued, watch).into_iter().enumerate() {
        o.saw(format!("silent connection {i}: {obs}"));
        o.check(obs.class == Class::Fin && obs.responses.is_empty(), || {
            format!("silent connection {i} ended {} (expected fin)", obs.class)
        });
    }
    Ok(())
}

/// Pauses accept on a two-worker engine (a dial is then refused), resumes it, and dials
/// right after `resume_accept` returns, with no retry: each of several dials must be
/// served, and every worker must report `Active`.
pub fn resume(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const DIALS: usize = 8;
    o.expect(format!(
        "each of {DIALS} dials made right after resume_accept returns (first try, no retry): a 200 response"
    ));
    o.expect("every worker reports Active once resume_accept returned");
    let server = Server::with_workers(ctx, 2)?;
    let engine = server.engine();
    engine.pause_accept().or_error("pause_accept failed")?;
    match client::connect(server.addr(), ctx.ms(1000)) {
        Ok(_) => o.saw("dial while paused: connected (accept.pause.sync's business)"),
        Err(obs) => o.saw(format!("dial while paused: {obs}")),
    }
    if let Err(e) = engine.resume_accept() {
        o.fail(format!("resume_accept failed: {e}"));
        return Ok(());
    }
    let first = client::request(server.addr(), &client::get("/"), ctx.ms(2000));
    let states: Vec<_> = (0..engine.num_workers())
        .map(|i| engine.worker_state(i).map_err(|e| e.to_string()))
        .collect();
    o.saw(format!("worker states after the return: {states:?}"));
    o.check(
        !states.is_empty() && states.iter().all(|s| *s == Ok(engine::WorkerState::Active)),
        || format!("worker states after resume_accept returned: {states:?} (expected all active)"),
    );
    let mut dials = vec![first];
    for _ in 1..DIALS {
        dials.push(client::request(
            server.addr(),
            &client::get("/"),
            ctx.ms(2000),
        ));
    }
    for (i, obs) in dials.iter().enumerate() {
        o.saw(format!("dial {i} after resume_accept returned: {obs}"));
        o.check(
            obs.class == Class::Response && obs.responses.first().is_some_and(|r| r.status == 200),
            || format!("dial {i} after resume_accept returned: {obs} (expected a 200 response)"),
        );
    }
    if !o.failures.is_empty() {
        // The engine does not listen again after a resume: the parts below need it to.
        return Ok(());
    }
    resume_waits_for_held_worker(&server, ctx, o)?;
    resume_keeps_worker_pause(&server, ctx, o)
}

/// The synchronous return, judged where transport latency cannot hide it: with accept
/// paused, one worker is held in a handler (on a connection it accepted before the
/// pause), so it cannot listen again until it is released. `resume_accept` called now
/// must still be waiting after a window; it may return only once the worker is released.
/// A `resume_accept` that returns before its workers listen returns inside the window,
/// in process and through a control protocol alike.
fn resume_waits_for_held_worker(server: &Server, ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("with accept paused and a worker held in a handler, resume_accept has not returned after 300 ms; it returns once the worker is released, and a dial right after is served");
    let engine = server.engine();
    let n = engine.num_workers();
    // Whatever the first part saw, start from every worker listening.
    let _ = wait_until(ctx.ms(2000), || {
        (0..n).all(|w| engine.worker_state(w).ok() == Some(engine::WorkerState::Active))
    });
    // A request answered on it: the connection is accepted (not queued) before the pause.
    let mut kept =
        client::connect(server.addr(), ctx.ms(2000)).or_error("connect the connection to hold")?;
    let first = request_on(&mut kept, ctx);
    if first.responses.is_empty() {
        return Err(
            format!("the connection to hold got no response before the pause: {first}").into(),
        );
    }
    engine.pause_accept().or_error("pause_accept failed")?;
    let entered = server.gate.entered();
    kept.write_all(&client::get("/hold"))
        .or_error("sending /hold on the kept connection")?;
    if !server.gate.wait_entered(entered + 1, ctx.ms(5000)) {
        server.gate.release();
        return Err("the worker never entered the held handler".into());
    }
    let e = Arc::clone(engine);
    let (tx, rx) = std::sync::mpsc::channel();
    let resumer = std::thread::spawn(move || {
        let r = e.resume_accept();
        let _ = tx.send(());
        r
    });
    let window = ctx.ms(300);
    let early = rx.recv_timeout(window).is_ok();
    server.gate.release();
    let result = match resumer.join() {
        Ok(r) => r,
        Err(_) => return Err("resume_accept panicked".into()),
    };
    o.saw(format!(
        "resume_accept with a worker held: {} the {} ms window; result {result:?}",
        if early {
            "returned inside"
        } else {
            "still waiting after"
        },
        window.as_millis()
    ));
    o.check(!early, || {
        format!(
            "resume_accept returned within {} ms while a worker was held in a handler and could not listen: it returns before its workers listen again",
            window.as_millis()
        )
    });
    if let Err(e) = result {
        o.fail(format!(
            "resume_accept (worker held, then released) failed: {e}"
        ));
        return Ok(());
    }
    let held = client::observe(&mut kept, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("the held request after release: {held}"));
    let dial = client::request(server.addr(), &client::get("/"), ctx.ms(2000));
    o.saw(format!(
        "dial right after that resume_accept returned: {dial}"
    ));
    o.check(
        dial.class == Class::Response && dial.responses.first().is_some_and(|r| r.status == 200),
        || format!("dial right after resume_accept returned: {dial} (expected a 200 response)"),
    );
    Ok(())
}

/// A worker paused on its own stays non-listening across `pause_accept` /
/// `resume_accept` (a worker listens iff accept is not paused engine-wide and it is not
/// paused on its own), serves nothing new, and listens again at `resume_worker`.
fn resume_keeps_worker_pause(server: &Server, ctx: &Ctx, o: &mut Outcome) -> Checked {
    const DIALS: usize = 16;
    o.expect(format!("worker paused on its own, then pause_accept + resume_accept: it stays suspended and none of {DIALS} dials reaches it; resume_worker makes it active again"));
    let engine = server.engine();
    let n = engine.num_workers();
    let i = n - 1;
    super::worker::pause_until_suspended(ctx, engine.as_ref(), i, "suspend on its own")?;
    engine.pause_accept().or_error("pause_accept failed")?;
    engine.resume_accept().or_error("resume_accept failed")?;
    let states: Vec<_> = (0..n)
        .map(|w| super::worker::state(engine.as_ref(), w))
        .collect();
    o.saw(format!(
        "worker {i} paused on its own; after pause_accept + resume_accept: states {states:?}"
    ));
    o.check(states[i] == Some(engine::WorkerState::Suspended), || {
        format!("worker {i}, paused on its own, is {:?} after resume_accept (expected Suspended until resume_worker)", states[i])
    });
    let mut reached = Vec::new();
    for _ in 0..DIALS {
        let obs = client::request(server.addr(), &client::get("/worker"), ctx.ms(2000));
        match obs.responses.first().and_then(super::worker::worker_of) {
            Some(w) if obs.class == Class::Response => reached.push(w),
            _ => {
                o.fail(format!(
                    "dial after resume_accept: {obs} (expected a /worker response)"
                ));
                break;
            }
        }
    }
    o.saw(format!(
        "{} dials served by workers {reached:?}",
        reached.len()
    ));
    o.check(!reached.contains(&i), || {
        format!("worker {i}, paused on its own, served a new connection after resume_accept")
    });
    engine.resume_worker(i).or_error("resume_worker failed")?;
    let active = wait_until(ctx.ms(1000), || {
        super::worker::state(engine.as_ref(), i) == Some(engine::WorkerState::Active)
    });
    o.check(active, || {
        format!(
            "worker {i} is {:?} 1 s after resume_worker (expected Active)",
            super::worker::state(engine.as_ref(), i)
        )
    });
    Ok(())
}

/// Holds the only worker in `/hold`, opens 1,000 connections that each send one GET
/// (the kernel queues them), then releases the worker and opens nothing more: every
/// one of the 1,000 must get its response within 5 s. Raises `RLIMIT_NOFILE` when the
/// soft limit is too low for both ends of 1,000 connections.
pub fn backlog_drain(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const BURST: usize = 1000;
    o.expect(format!("all {BURST} queued connections get a 200 response within 5 s of the release, with no further connection arriving"));
    let want = (crate::harness::fd_count() + 2 * BURST + 1024).max(4096) as u64;
    match engine::sys::rlimit::raise_nofile_limit(want) {
        Ok(lim) if lim >= want => {}
        Ok(lim) => {
            return Err(
                format!("RLIMIT_NOFILE is {lim} (hard limit); the check needs {want}").into(),
            )
        }
        Err(e) => return Err(format!("raising RLIMIT_NOFILE to {want}: {e}").into()),
    }
    let server = Server::with_workers(ctx, 1)?;
    let mut held = hold_worker(&server, ctx)?;
    let queueing = Instant::now();
    let mut conns = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let s = queue_connection(server.addr(), Some(&client::get("/")), ctx)
            .map_err(|e| format!("queueing connection {i}: {e}"))?;
        if let Err(e) = s.set_nonblocking(true) {
            return Err(format!("connection {i}: set_nonblocking: {e}").into());
        }
        conns.push(s);
    }
    let accepted_held = server.engine().metrics().accepted;
    o.saw(format!(
        "{BURST} connections queued in {} ms; accepted before the release: {accepted_held}",
        queueing.elapsed().as_millis()
    ));
    let released = Instant::now();
    server.gate.release();
    let deadline = ctx.ms(5000);
    let mut bufs = vec![Vec::new(); BURST];
    let mut ended: Vec<Option<Result<Duration, String>>> = vec![None; BURST];
    let mut pending = BURST;
    let mut chunk = [0u8; 4096];
    while pending > 0 && released.elapsed() < deadline {
        let mut progress = false;
        for i in 0..BURST {
            if ended[i].is_some() {
                continue;
            }
            let end = match conns[i].read(&mut chunk) {
                Ok(0) => Some(Err("EOF before a response".to_string())),
                Ok(n) => {
                    progress = true;
                    bufs[i].extend_from_slice(&chunk[..n]);
                    client::parse_response(&bufs[i]).map(|(r, _)| {
                        if r.status == 200 {
                            Ok(released.elapsed())
                        } else {
                            Err(format!("status {}", r.status))
                        }
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(e.to_string())),
            };
            if end.is_some() {
                ended[i] = end;
                pending -= 1;
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let served: Vec<Duration> = ended
        .iter()
        .filter_map(|e| e.as_ref().and_then(|r| r.as_ref().ok()).copied())
        .collect();
    let errors: Vec<(usize, &String)> = ended
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_ref().and_then(|r| r.as_ref().err()).map(|m| (i, m)))
        .collect();
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!("held connection: {held_obs}"));
    o.saw(format!(
        "{} of {BURST} served (last at {} ms after the release), {} ended without a response, {pending} still waiting at {} ms; engine accepted {}",
        served.len(),
        served.iter().max().map_or(0, |d| d.as_millis()),
        errors.len(),
        deadline.as_millis(),
        server.engine().metrics().accepted
    ));
    for (i, e) in errors.iter().take(5) {
        o.saw(format!("connection {i}: {e}"));
    }
    o.check(served.len() == BURST, || {
        format!(
            "{} of {BURST} queued connections were not served within {} ms ({pending} stranded, {} failed)",
            BURST - served.len(),
            deadline.as_millis(),
            errors.len()
        )
    });
    Ok(())
}

// ---- helpers ----

/// Sends `/hold` on a new connection and waits until a worker is inside the held
/// handler; returns the connection (its response comes once the gate is released).
pub(super) fn hold_worker(server: &Server, ctx: &Ctx) -> Result<TcpStream, String> {
    let entered = server.gate.entered();
    let mut s = client::connect(server.addr(), ctx.ms(2000))
        .map_err(|obs| format!("connect for the held request: {obs}"))?;
    s.write_all(&client::get("/hold"))
        .map_err(|e| format!("sending /hold: {e}"))?;
    if !server.gate.wait_entered(entered + 1, ctx.ms(5000)) {
        return Err("the worker never entered the held handler".into());
    }
    Ok(s)
}

/// A connection that completed its handshake (it waits in the accept queue while the
/// worker is held), having sent `request` if any.
pub(super) fn queue_connection(
    addr: SocketAddr,
    request: Option<&[u8]>,
    ctx: &Ctx,
) -> Result<TcpStream, String> {
    let mut s = client::connect(addr, ctx.ms(2000)).map_err(|obs| obs.to_string())?;
    if let Some(req) = request {
        s.write_all(req).map_err(|e| format!("send: {e}"))?;
    }
    Ok(s)
}

/// With a worker held, calls `pause_accept` on another thread, waits until the pause
/// is under way, releases the gate and waits for `pause_accept` to return `Ok`.
pub(super) fn pause_while_held(server: &Server, ctx: &Ctx) -> Result<(), String> {
    let engine = Arc::clone(server.engine());
    let pauser = std::thread::spawn(move || engine.pause_accept());
    if !wait_until(ctx.ms(2000), || server.engine().accept_paused()) {
        server.gate.release();
        return Err("pause_accept did not start".into());
    }
    server.gate.release();
    match pauser.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("pause_accept failed: {e}")),
        Err(_) => Err("pause_accept panicked".into()),
    }
}

/// Sends one `GET /` on an open connection and watches for its response.
fn request_on(s: &mut TcpStream, ctx: &Ctx) -> Observation {
    if let Err(e) = s.write_all(&client::get("/id")) {
        return failed_send(Instant::now(), e);
    }
    client::observe(s, Watch::until_end(ctx.ms(2000)).responses(1))
}

fn failed_send(started: Instant, e: std::io::Error) -> Observation {
    Observation {
        class: Class::Rst,
        responses: Vec::new(),
        trailing_bytes: 0,
        at: started.elapsed(),
        detail: format!("send failed: {e}"),
    }
}

/// Engines A and B on one port (both `SO_REUSEPORT`, one worker each), answering `A`
/// and `B` on `/id`.
struct Pair {
    a: Server,
    /// Only has to listen (and shut down when the check ends).
    _b: Server,
}

impl Pair {
    fn start(ctx: &Ctx) -> Result<Pair, String> {
        let cfg_a = with_workers(ctx, 1);
        let a = Server::start_tagged(ctx, cfg_a, "A").map_err(|e| format!("engine A: {e}"))?;
        let cfg_b = engine::Config {
            workers: 1,
            address: a.addr().to_string(),
            ..ctx.config()
        };
        let b = Server::start_tagged(ctx, cfg_b, "B").map_err(|e| format!("engine B: {e}"))?;
        if b.addr() != a.addr() {
            return Err(format!("engine B bound {}, not A's {}", b.addr(), a.addr()));
        }
        Ok(Pair { a, _b: b })
    }
}

/// A keep-alive connection to the pair's port that engine A accepted (dials until the
/// port's hash picks A).
fn connection_to_a(pair: &Pair, ctx: &Ctx) -> Result<TcpStream, String> {
    for _ in 0..64 {
        let mut s = client::connect(pair.a.addr(), ctx.ms(2000))
            .map_err(|obs| format!("connect: {obs}"))?;
        let obs = request_on(&mut s, ctx);
        match obs.responses.first() {
            Some(r) if obs.class == Class::Response && r.body == b"A" => return Ok(s),
            Some(_) => {}
            None => return Err(format!("a request to the pair: {obs}")),
        }
    }
    Err("64 connections in a row went to engine B".into())
}

/// One dial: connect, send `GET /`, watch for the response.
#[derive(Debug)]
struct Dial {
    started: Instant,
    connected: Option<Instant>,
    obs: Observation,
}

impl Dial {
    fn run(addr: SocketAddr, deadline: Duration) -> Dial {
        let started = Instant::now();
        let mut s = match client::connect(addr, deadline) {
            Ok(s) => s,
            Err(obs) => {
                return Dial {
                    started,
                    connected: None,
                    obs,
                }
            }
        };
        let connected = Some(Instant::now());
        let obs = match s.write_all(&client::get("/id")) {
            Err(e) => failed_send(started, e),
            Ok(()) => client::observe(&mut s, Watch::until_end(deadline).responses(1)),
        };
        Dial {
            started,
            connected,
            obs,
        }
    }

    /// `A` or `B` (who answered), `fin` (EOF without a response) or the class.
    fn label(&self) -> &'static str {
        match (self.obs.class, self.obs.responses.first()) {
            (Class::Response, Some(r)) if r.status == 200 && r.body == b"A" => "A",
            (Class::Response, Some(r)) if r.status == 200 && r.body == b"B" => "B",
            (Class::Response, _) => "other-response",
            (Class::Fin, None) => "fin",
            (Class::Fin, Some(_)) => "fin-after-response",
            (Class::FinThenRst, _) => "fin-then-rst",
            (Class::Rst, _) => "rst",
            (Class::Refused, _) => "refused",
            (Class::Timeout, _) => "timeout",
        }
    }
}

/// Client threads that dial continuously until stopped (or `max` dials each).
struct Dialers {
    stop: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Vec<Dial>>>,
}

impl Dialers {
    fn spawn(addr: SocketAddr, threads: usize, max: usize, deadline: Duration) -> Dialers {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let started = Arc::clone(&started);
                std::thread::spawn(move || {
                    let mut dials = Vec::new();
                    while !stop.load(SeqCst) && dials.len() < max {
                        started.fetch_add(1, SeqCst);
                        dials.push(Dial::run(addr, deadline));
                    }
                    dials
                })
            })
            .collect();
        Dialers {
            stop,
            started,
            threads,
        }
    }

    fn started(&self) -> usize {
        self.started.load(SeqCst)
    }

    fn finish(mut self) -> Vec<Dial> {
        self.stop.store(true, SeqCst);
        self.threads
            .drain(..)
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

impl Drop for Dialers {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}

/// Dials counted by label; a few bad ones kept as examples.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    bad: usize,
    by_label: std::collections::BTreeMap<&'static str, usize>,
    bad_examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, label: &'static str, ok: bool, describe: impl FnOnce() -> String) {
        self.total += 1;
        *self.by_label.entry(label).or_default() += 1;
        if !ok {
            self.bad += 1;
            if self.bad_examples.len() < 5 {
                self.bad_examples.push(describe());
            }
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} dials", self.total)?;
        for (label, n) in &self.by_label {
            write!(f, ", {label} {n}")?;
        }
        Ok(())
    }
}
