//! Section 8: handover without resets where the kernel migrates a closing listener's
//! queue (`net.ipv4.tcp_migrate_req = 1`). Everything runs on one thread inside a fresh
//! network namespace with the setting on: the engines it starts (their workers, or
//! their processes for an out-of-process target) live there too, and the namespace's
//! own counters hold only this check's traffic.

use engine::sys::netns;

use super::accept;
use crate::ctx::Ctx;
use crate::harness::Server;
use crate::outcome::{Abort, Checked, Outcome};
use crate::targets::Capability;

/// In a fresh network namespace with `tcp_migrate_req = 1`: the engine reports that it
/// migrates (`metrics()`), the dial storm of `accept.pause.handover-race` has zero
/// resets by the client's view and by the namespace's `Tcp OutRsts`, and
/// `accept.pause.drain-fin` and `accept.pause.zero-loss` still hold for an engine alone
/// on its port (no RST in the namespace either).
pub fn pause_migrate(ctx: &Ctx, o: &mut Outcome) -> Checked {
    if !netns::is_root() {
        return Err(Abort::Skipped(
            "needs root (CAP_SYS_ADMIN) to create a network namespace with net.ipv4.tcp_migrate_req = 1".into(),
        ));
    }
    if !ctx.target.can_isolate() {
        return Err(Abort::Skipped(format!(
            "target {} runs outside the harness's network namespaces, so its listen sockets cannot be placed where tcp_migrate_req is set",
            ctx.target.name()
        )));
    }
    let inner = ctx.clone();
    let thread = std::thread::Builder::new()
        .name("scenario-migrate".into())
        .spawn(move || {
            let mut sub = Outcome::new();
            let result = in_migrating_namespace(&inner, &mut sub);
            (sub, result)
        })
        .map_err(|e| format!("spawning the namespace thread: {e}"))?;
    let (sub, result) = thread.join().map_err(|_| "the namespace thread panicked")?;
    o.expected.extend(sub.expected);
    o.actual.extend(sub.actual);
    o.failures.extend(sub.failures);
    result
}

/// The body of the check, on a thread of its own that moves into a new namespace.
fn in_migrating_namespace(ctx: &Ctx, o: &mut Outcome) -> Checked {
    netns::enter_new_net_namespace().map_err(|e| {
        Abort::Skipped(format!(
            "cannot create a network namespace (unshare(CLONE_NEWNET)): {e}"
        ))
    })?;
    match netns::tcp_migrate_req() {
        Ok(Some(_)) => {}
        Ok(None) => return Err(Abort::Skipped(
            "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+ migrates listener queues)"
                .into(),
        )),
        Err(e) => return Err(format!("reading net.ipv4.tcp_migrate_req: {e}").into()),
    }
    netns::set_tcp_migrate_req(true)
        .map_err(|e| format!("setting net.ipv4.tcp_migrate_req = 1 in the namespace: {e}"))?;
    o.saw("a fresh network namespace with net.ipv4.tcp_migrate_req = 1 (the host's setting is untouched)");
    reports_migration(ctx, o)?;
    let (storm, counts) = part(ctx, o, "handover storm", accept::handover_storm)?;
    o.saw(format!(
        "resets {} in {} dials by the client's view; the namespace: {counts}",
        storm.resets, storm.dials
    ));
    let (_, counts) = part(
        ctx,
        o,
        "alone on its port, drain-fin",
        accept::pause_drain_fin,
    )?;
    o.saw(format!(
        "drain-fin alone on its port: the namespace: {counts}"
    ));
    let (_, counts) = part(
        ctx,
        o,
        "alone on its port, zero-loss",
        accept::pause_zero_loss,
    )?;
    o.saw(format!(
        "zero-loss alone on its port: the namespace: {counts}"
    ));
    Ok(())
}

/// `metrics().migrates_listener_queue` of an engine started in the namespace.
fn reports_migration(ctx: &Ctx, o: &mut Outcome) -> Checked {
    if !ctx.target.has(Capability::Metrics) {
        o.saw(format!(
            "target {} has no metrics(): whether it reports migration is not checked",
            ctx.target.name()
        ));
        return Ok(());
    }
    o.expect(
        "an engine started in the namespace reports metrics().migrates_listener_queue = Some(true)",
    );
    let server = Server::with_workers(ctx, 1)?;
    let reported = server.engine().metrics().migrates_listener_queue;
    o.saw(format!(
        "metrics().migrates_listener_queue in the namespace: {reported:?}"
    ));
    o.check(reported == Some(true), || {
        format!("the engine reports migrates_listener_queue = {reported:?} where tcp_migrate_req = 1 (expected Some(true))")
    });
    server.stop(ctx.ms(2000))?;
    Ok(())
}

/// What the namespace counted during one part.
#[derive(Debug, Clone, Copy)]
struct Counts {
    out_rsts: u64,
    abort_on_close: u64,
    /// `TcpExt: TCPMigrateReqSuccess` and `TCPMigrateReqFailure` (connections and
    /// requests the kernel moved, or failed to move, to another listener), when it has
    /// them.
    migrated: Option<(u64, u64)>,
}

impl Counts {
    fn read() -> Result<Counts, String> {
        let rst = netns::rst_counters().map_err(|e| format!("reading RST counters: {e}"))?;
        let tcp_ext =
            |name| netns::tcp_ext_counter(name).map_err(|e| format!("reading TcpExt {name}: {e}"));
        let migrated = tcp_ext("TCPMigrateReqSuccess")?.zip(tcp_ext("TCPMigrateReqFailure")?);
        Ok(Counts {
            out_rsts: rst.out_rsts,
            abort_on_close: rst.abort_on_close,
            migrated,
        })
    }

    fn since(self, before: Counts) -> Counts {
        Counts {
            out_rsts: self.out_rsts - before.out_rsts,
            abort_on_close: self.abort_on_close - before.abort_on_close,
            migrated: self
                .migrated
                .zip(before.migrated)
                .map(|((s, f), (s0, f0))| (s - s0, f - f0)),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tcp OutRsts +{}, TcpExt TCPAbortOnClose +{}",
            self.out_rsts, self.abort_on_close
        )?;
        if let Some((moved, failed)) = self.migrated {
            write!(
                f,
                ", TcpExt TCPMigrateReqSuccess +{moved}, TCPMigrateReqFailure +{failed}"
            )?;
        }
        Ok(())
    }
}

/// Runs `check` in the namespace with its lines prefixed by `name`, and fails the part
/// when the namespace sent any RST meanwhile.
fn part<T>(
    ctx: &Ctx,
    o: &mut Outcome,
    name: &str,
    check: fn(&Ctx, &mut Outcome) -> Result<T, Abort>,
) -> Result<(T, Counts), Abort> {
    let before = Counts::read()?;
    let mut sub = Outcome::new();
    let result = check(ctx, &mut sub);
    let counts = Counts::read()?.since(before);
    for line in sub.expected {
        o.expect(format!("{name}: {line}"));
    }
    for line in sub.actual {
        o.saw(format!("{name}: {line}"));
    }
    for line in sub.failures {
        o.fail(format!("{name}: {line}"));
    }
    let value = result.map_err(|abort| match abort {
        Abort::Error(why) => Abort::Error(format!("{name}: {why}")),
        Abort::Skipped(why) => Abort::Skipped(format!("{name}: {why}")),
    })?;
    o.expect(format!(
        "{name}: the namespace sends no RST (Tcp OutRsts +0)"
    ));
    o.check(counts.out_rsts == 0, || {
        format!(
            "{name}: the namespace sent {} RSTs ({} on close with unread data); allowed 0",
            counts.out_rsts, counts.abort_on_close
        )
    });
    Ok((value, counts))
}
