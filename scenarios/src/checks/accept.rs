//! Section 2: accept control.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{self, Class, Watch};
use crate::harness::{wait_until, Server};
use crate::registry::{Ctx, Outcome};

macro_rules! todo_check {
    ($($name:ident),*) => {$(
        /// Not written yet.
        pub fn $name(_ctx: &Ctx) -> Outcome {
            Outcome::new().error("check not written yet")
        }
    )*};
}

todo_check!(
    pause_sync,
    pause_zero_loss,
    pause_handover,
    pause_handover_race,
    pause_keep_serving,
    pause_idempotent,
    no_deferred,
    resume,
    backlog_drain
);

/// Keeps the only worker busy in a held handler, queues connections in the kernel
/// accept queue (some silent, some with a complete request), pauses accept from another
/// thread, releases the handler, and watches every queued connection end.
pub fn pause_drain_fin(ctx: &Ctx) -> Outcome {
    let mut o = Outcome::new();
    o.expect("every queued connection: EOF (optionally after a complete response), SO_ERROR 0, and a write 200 ms after EOF draws no RST (class fin)");
    let cfg = engine::Config {
        workers: 1,
        ..ctx.config()
    };
    let server = match Server::start(cfg) {
        Ok(s) => s,
        Err(e) => return o.error(e),
    };
    let addr = server.addr();
    let mut busy = match client::connect(addr, ctx.ms(2000)) {
        Ok(s) => s,
        Err(obs) => return o.error(format!("connect for the busy request: {obs}")),
    };
    if busy.write_all(&client::get("/hold")).is_err() || !server.gate.wait_entered(1, ctx.ms(5000))
    {
        return o.error("the worker never entered the held handler");
    }
    let mut queued = Vec::new();
    for i in 0..6 {
        let mut s = match client::connect(addr, ctx.ms(2000)) {
            Ok(s) => s,
            Err(obs) => return o.error(format!("queueing connection {i}: {obs}")),
        };
        if i % 2 == 1 && s.write_all(&client::get("/")).is_err() {
            return o.error("sending on a queued connection failed");
        }
        queued.push(s);
    }
    let engine = Arc::clone(server.engine());
    let pauser = std::thread::spawn(move || engine.pause_accept());
    if !wait_until(ctx.ms(2000), || server.engine().accept_paused()) {
        return o.error("pause_accept did not start");
    }
    server.gate.release();
    match pauser.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return o.error(format!("pause_accept failed: {e}")),
        Err(_) => return o.error("pause_accept panicked"),
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
    o
}
