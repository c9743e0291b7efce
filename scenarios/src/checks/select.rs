//! Section 4: worker selection.

use std::collections::BTreeMap;

use engine::WorkerState;

use crate::targets::Instance;

use super::with_workers;
use crate::client;
use crate::ctx::Ctx;
use crate::harness::Server;
use crate::outcome::{Checked, Outcome};
use crate::wait::wait_until;

fn start(ctx: &Ctx, workers: usize) -> Result<Server, String> {
    Server::start(
        ctx,
        engine::Config {
            workers,
            ..ctx.config()
        },
    )
}

/// The index `worker_loop(n)` selects.
fn select(engine: &dyn Instance, n: i64) -> Result<usize, String> {
    engine
        .worker_loop(n)
        .map(|w| w.index())
        .ok_or_else(|| "the target has no worker_loop".to_string())
}

/// For N = 1, 2 and 3 workers: `worker_loop(n).index()` must be `n % N` for every n
/// in 0..10N and for `i64::MAX`.
pub fn modulo(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("worker_loop(n).index() == n % N for n in 0..10N and n = i64::MAX (N = 1, 2, 3)");
    for workers in [1usize, 2, 3] {
        let server = start(ctx, workers)?;
        let engine = server.engine();
        let big = (i64::MAX as u64 % workers as u64) as usize;
        let ns = (0..10 * workers as i64).chain([i64::MAX]);
        let mut wrong = Vec::new();
        let mut got = Vec::new();
        for n in ns {
            let want = if n == i64::MAX {
                big
            } else {
                n as usize % workers
            };
            let idx = select(engine, n);
            if n < 10 {
                got.push(format!("{n}->{idx:?}"));
            }
            if idx.as_ref() != Ok(&want) {
                wrong.push(format!("worker_loop({n}) = {idx:?}, expected {want}"));
            }
        }
        o.saw(format!(
            "N = {workers}: {} ...; i64::MAX -> {:?}",
            got.join(" "),
            select(engine, i64::MAX)
        ));
        o.check(wrong.is_empty(), || {
            format!("N = {workers}: {}", wrong.join("; "))
        });
    }
    Ok(())
}

/// With 3 workers (so that -1 mirrored, 1, differs from the Euclidean 2):
/// `worker_loop(-n)` must equal `worker_loop(n)` and `n % 3` for n in 1..30, and
/// `worker_loop(i64::MIN)` must be `2^63 % 3` (2).
pub fn mirror(ctx: &Ctx, o: &mut Outcome) -> Checked {
    let workers = 3usize;
    o.expect("worker_loop(-n) == worker_loop(n) == n % 3 for n in 1..30; worker_loop(i64::MIN) == 2^63 % 3 = 2");
    let server = start(ctx, workers)?;
    let engine = server.engine();
    let mut wrong = Vec::new();
    let mut got = Vec::new();
    for n in 1..10 * workers as i64 {
        let (neg, pos) = (select(engine, -n), select(engine, n));
        let want = n as usize % workers;
        if n < 7 {
            got.push(format!("-{n}->{neg:?}"));
        }
        if neg.as_ref() != Ok(&want) || pos.as_ref() != Ok(&want) {
            wrong.push(format!(
                "worker_loop(-{n}) = {neg:?}, worker_loop({n}) = {pos:?}, expected {want}"
            ));
        }
    }
    let min_want = ((1u64 << 63) % workers as u64) as usize;
    let min = select(engine, i64::MIN);
    o.saw(format!("N = 3: {} ...; i64::MIN -> {min:?}", got.join(" ")));
    o.check(wrong.is_empty(), || wrong.join("; "));
    o.check(min.as_ref() == Ok(&min_want), || {
        format!("worker_loop(i64::MIN) = {min:?}, expected 2^63 % 3 = {min_want}")
    });
    Ok(())
}

/// On an engine that has not listened yet (`new` only): `worker_loop(5)` must refuse
/// (in Rust: panic, caught) with a message saying the engine is not listening, and
/// `try_worker_loop(5)` must return `None` without refusing.
pub fn before_listen(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("before listen: worker_loop(5) panics with a message containing \"not listening\"; try_worker_loop(5) returns None");
    let host = ctx.target.host()?;
    let engine = host
        .build(&with_workers(ctx, 2), "")
        .map_err(|e| e.to_string())?;
    match engine.select(5, true) {
        Ok(w) => {
            o.saw(format!("worker_loop(5) returned {w:?}"));
            o.fail("worker_loop(5) returned a worker before the engine listens");
        }
        Err(msg) => {
            o.saw(format!("worker_loop(5) panicked: {msg:?}"));
            o.check(msg.contains("not listening"), || {
                format!("the panic message {msg:?} does not say the engine is not listening")
            });
        }
    }
    match engine.select(5, false) {
        Ok(w) => {
            o.saw(format!("try_worker_loop(5) returned {w:?}"));
            o.check(w.is_none(), || {
                format!("try_worker_loop(5) returned {w:?} before listen")
            });
        }
        Err(msg) => {
            o.saw(format!("try_worker_loop(5) panicked: {msg:?}"));
            o.fail("try_worker_loop(5) panicked before listen (expected None)");
        }
    }
    Ok(())
}

/// With 3 workers: records the worker (index and thread id) of every n in -30..=30
/// and the extremes, then asks again 20 times while the engine's life goes on
/// (requests served, worker 1 paused and resumed, accept paused and resumed): every
/// answer must equal the first.
pub fn stable(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("the same n gives the same worker (index and thread) on every call, across requests, pause/resume of a worker and of accept");
    let server = start(ctx, 3)?;
    let engine = server.engine();
    let ns: Vec<i64> = (-30..=30)
        .chain([i64::MIN, i64::MIN + 1, i64::MAX])
        .collect();
    let pick = |n: i64| {
        engine
            .worker_loop(n)
            .map(|w| (w.index(), w.thread_id()))
            .ok_or_else(|| "the target has no worker_loop".to_string())
    };
    let worker_1_becomes = |state: WorkerState| {
        wait_until(ctx.ms(1000), || {
            engine.worker_state(1).is_ok_and(|s| s == state)
        })
    };
    let first: BTreeMap<i64, _> = ns.iter().map(|&n| (n, pick(n))).collect();
    let mut changes = Vec::new();
    let mut events = Vec::new();
    for round in 0..20 {
        match round % 5 {
            1 => {
                let obs = client::request(server.addr(), &client::get("/"), ctx.ms(2000));
                events.push(format!("round {round}: request {}", obs.class));
            }
            2 => {
                let r = engine.pause_worker(1);
                let suspended = worker_1_becomes(WorkerState::Suspended);
                events.push(format!(
                    "round {round}: pause_worker(1) {r:?}, suspended {suspended}"
                ));
            }
            3 => {
                let r = engine.resume_worker(1);
                let active = worker_1_becomes(WorkerState::Active);
                events.push(format!(
                    "round {round}: resume_worker(1) {r:?}, active {active}"
                ));
            }
            4 => {
                let (p, r) = (engine.pause_accept(), engine.resume_accept());
                events.push(format!(
                    "round {round}: pause_accept {p:?}, resume_accept {r:?}"
                ));
            }
            _ => std::thread::yield_now(),
        }
        for &n in &ns {
            let now = pick(n);
            if now != first[&n] && changes.len() < 10 {
                changes.push(format!(
                    "round {round}: worker_loop({n}) = {now:?}, first {:?}",
                    first[&n]
                ));
            }
        }
    }
    let sample: Vec<String> = [-4, -1, 0, 1, 2, 5, i64::MIN, i64::MAX]
        .iter()
        .map(|n| format!("{n}->{:?}", first[n].as_ref().map(|w| w.0)))
        .collect();
    o.saw(format!("first answers: {}", sample.join(" ")));
    o.saw(events.join("; "));
    o.check(changes.is_empty(), || {
        format!("the selected worker changed: {}", changes.join("; "))
    });
    Ok(())
}
