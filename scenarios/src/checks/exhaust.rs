//! Section 7, exhaustion: the input budget, descriptors running out, bodies that stop
//! arriving. Each check attacks from raw client sockets and watches the target from
//! outside: its memory and CPU time in `/proc/<pid>` (or its worker threads'), and what
//! a normal client gets meanwhile.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::{self, Class, Watch};
use crate::ctx::Ctx;
use crate::harness::{thread_cpu_time, Server};
use crate::outcome::{Abort, Checked, OrError, Outcome};
use crate::targets::Capability;
use crate::wait::wait_until;

const MIB: u64 = 1024 * 1024;

// ---- /proc readings of the target's process ----

/// Resident memory of a process (`VmRSS` of `/proc/<pid>/status`), bytes.
fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The smallest of a few RSS samples 40 ms apart: the engine's held memory is steady
/// while a transient allocation (of the harness, in process) comes and goes.
fn steady_rss(pid: u32) -> Result<u64, Abort> {
    let mut least = None::<u64>;
    for _ in 0..5 {
        let r = rss(pid).ok_or_else(|| format!("cannot read /proc/{pid}/status"))?;
        least = Some(least.map_or(r, |l| l.min(r)));
        std::thread::sleep(Duration::from_millis(40));
    }
    Ok(least.unwrap_or(0))
}

/// CPU time of every thread of a process (`/proc/<pid>/task/*`).
fn process_cpu(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = Duration::ZERO;
    for t in tasks.flatten() {
        if let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) {
            total += thread_cpu_time(tid).unwrap_or_default();
        }
    }
    Some(total)
}

/// Whose CPU time a check can watch: the target's worker threads (selection), else
/// its whole process when it is not the harness's own.
enum CpuProbe {
    Threads(Vec<i32>),
    Process(u32),
}

impl CpuProbe {
    fn of(ctx: &Ctx, server: &Server) -> Option<CpuProbe> {
        if ctx.target.has(Capability::Selection) {
            let n = server.engine().num_workers().max(1) as i64;
            let tids = (0..n).map(|i| server.worker_loop(i).thread_id()).collect();
            return Some(CpuProbe::Threads(tids));
        }
        match server.engine().pid() {
            Some(pid) if pid != std::process::id() => Some(CpuProbe::Process(pid)),
            _ => None,
        }
    }

    fn read(&self) -> Option<Duration> {
        match self {
            CpuProbe::Threads(tids) => tids
                .iter()
                .map(|&t| thread_cpu_time(t))
                .sum::<Option<Duration>>(),
            CpuProbe::Process(pid) => process_cpu(*pid),
        }
    }
}

fn target_pid(server: &Server) -> Result<u32, Abort> {
    server.engine().pid().ok_or_else(|| {
        Abort::Skipped(
            "the target's process is not readable here (no pid): its memory and CPU cannot be observed"
                .into(),
        )
    })
}

fn connect(ctx: &Ctx, addr: SocketAddr) -> Result<TcpStream, String> {
    client::connect(addr, ctx.ms(2000)).map_err(|obs| format!("connect: {obs}"))
}

/// Closes with RST (linger 0): the peer's input is gone at once.
fn reset(s: TcpStream) {
    let _ = engine::sys::socket::set_linger(s.as_raw_fd(), Some(Duration::ZERO));
    drop(s);
}

// ---- hostile.memory-budget ----

/// `max_buffered_input` 16 MiB: 24 connections each send half of a 16 MiB `/echo`
/// body as fast as the target reads. The target's RSS grows by at most the budget plus
/// 32 MiB (without a budget: about 192 MiB). Then the attackers reset, memory comes
/// back near its level before the attack, and a 1 MiB `/echo` is answered whole; then
/// four 10 MiB `/echo` bodies in a row (40 MiB through the 16 MiB budget, each held whole
/// before its answer) are all answered: the budget is given back as requests complete.
pub fn memory_budget(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const BUDGET: u64 = 16 * MIB;
    const CONNS: usize = 24;
    const HALF: usize = 8 << 20;
    let allowed = BUDGET + 32 * MIB;
    let back = 12 * MIB;
    o.expect(format!("RSS growth while {CONNS} connections each send half of a 16 MiB body: at most max_buffered_input (16 MiB) + 32 MiB = {} MiB", allowed / MIB));
    o.expect(format!(
        "after they reset: growth back under {} MiB, and a 1 MiB POST /echo answered whole",
        back / MIB
    ));
    o.expect("then four 10 MiB POST /echo in a row, 40 MiB through the 16 MiB budget, each answered whole");
    let cfg = engine::Config {
        max_buffered_input: BUDGET as usize,
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    let pid = target_pid(&server)?;
    let addr = server.addr();
    // The harness's own memory for the attack is allocated before the baseline.
    let chunk = vec![b'a'; 256 << 10];
    let mut conns: Vec<(TcpStream, usize)> = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let mut s = connect(ctx, addr)?;
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 16777216\r\n\r\n")
            .or_error("sending a head")?;
        s.set_nonblocking(true).or_error("set_nonblocking")?;
        conns.push((s, 0));
    }
    let base = steady_rss(pid)?;
    let deadline = Instant::now() + ctx.ms(6000);
    let mut last_progress = Instant::now();
    while Instant::now() < deadline && last_progress.elapsed() < Duration::from_millis(300) {
        let mut moved = false;
        for (s, sent) in conns.iter_mut().filter(|(_, sent)| *sent < HALF) {
            let want = chunk.len().min(HALF - *sent);
            match s.write(&chunk[..want]) {
                Ok(n) => {
                    *sent += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("sending a body: {e}").into()),
            }
        }
        if moved {
            last_progress = Instant::now();
        } else if conns.iter().all(|(_, sent)| *sent >= HALF) {
            break;
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let sent: usize = conns.iter().map(|(_, n)| n).sum();
    let during = steady_rss(pid)?;
    let growth = during.saturating_sub(base);
    o.saw(format!(
        "baseline RSS {} MiB; {} MiB of bodies sent; RSS then {} MiB (growth {} MiB)",
        base / MIB,
        sent as u64 / MIB,
        during / MIB,
        growth / MIB
    ));
    o.check(growth <= allowed, || {
        format!(
            "RSS grew by {} MiB while the bodies were held (allowed {} MiB: the budget is 16 MiB)",
            growth / MIB,
            allowed / MIB
        )
    });
    for (s, _) in conns {
        reset(s);
    }
    let mut now_growth = growth;
    let released = wait_until(ctx.ms(3000), || {
        now_growth = rss(pid).unwrap_or(u64::MAX).saturating_sub(base);
        now_growth <= back
    });
    o.saw(format!("after the resets: growth {} MiB", now_growth / MIB));
    // In process the RSS is also the harness's: scenarios running beside this one come
    // and go in it, so the return to idle is judged only for a target of its own.
    let shared = pid == std::process::id();
    if shared {
        o.saw("the return to idle is not judged in process (the RSS is shared with the harness)");
    }
    o.check(released || shared, || {
        format!(
            "RSS stayed {} MiB above its level before the attack once the attackers were gone (allowed {} MiB)",
            now_growth / MIB,
            back / MIB
        )
    });
    let body = vec![b'e'; 1 << 20];
    let obs = client::request(addr, &client::post("/echo", &body), ctx.ms(3000));
    let whole = obs
        .responses
        .first()
        .is_some_and(|r| r.status == 200 && r.body == body);
    o.saw(format!("1 MiB POST /echo after the attack: {obs}"));
    o.check(whole, || {
        format!("a 1 MiB POST /echo after the attack was not answered whole: {obs}")
    });

    // The budget is given back as requests complete: bodies of 10 MiB, each held whole
    // before it is answered, one after another add up to more than the budget. An
    // engine that counts input in but not out stalls on the second.
    let body = vec![b'r'; 10 << 20];
    let req = client::post("/echo", &body);
    for round in 1..=4 {
        let obs = client::request(addr, &req, ctx.ms(5000));
        let whole = obs
            .responses
            .first()
            .is_some_and(|r| r.status == 200 && r.body.len() == body.len() && r.body == body);
        o.saw(format!("10 MiB POST /echo #{round} of 4 in a row: {obs}"));
        o.check(whole, || {
            format!("10 MiB POST /echo #{round} of 4 in a row (40 MiB through a 16 MiB budget) was not answered whole: the budget was not given back when the requests completed: {obs}")
        });
        if !whole {
            break;
        }
    }
    Ok(())
}

// ---- hostile.emfile ----

/// Restores a process's descriptor limit on drop.
struct LimitGuard {
    pid: u32,
    old: u64,
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        let _ = engine::sys::rlimit::set_nofile_limit_of(self.pid, self.old);
    }
}

/// The target's descriptor limit is set to its open descriptors + 64 and 400 clients
/// connect: `accept` fails with `EMFILE`. Over 500 ms its CPU stays under 10 %
/// (scaled; a worker that retries at once burns a core), a keep-alive connection made
/// before is still served, and once the clients have gone a new one is served.
pub fn emfile(ctx: &Ctx, o: &mut Outcome) -> Checked {
    const CLIENTS: usize = 400;
    let budget = ctx.ms(50);
    let window = Duration::from_millis(500);
    o.expect(format!(
        "with accept failing (EMFILE): target CPU under {} ms over {} ms",
        budget.as_millis(),
        window.as_millis()
    ));
    o.expect("a keep-alive connection made before is served meanwhile; after the clients close, a new connection is served within 2 s (scaled)");
    let server = Server::start(ctx, ctx.config())?;
    let pid = target_pid(&server)?;
    if pid == std::process::id() {
        return Err(Abort::Skipped("the target runs in the harness's own process, whose descriptor limit the scenarios running beside it share: run it out of process (--target-cmd 'loadgen serve --control')".into()));
    }
    let addr = server.addr();
    let mut keep = connect(ctx, addr)?;
    let get = client::get("/");
    let served = |s: &mut TcpStream, what: &str| -> Result<client::Observation, String> {
        s.write_all(&get).map_err(|e| format!("{what}: {e}"))?;
        Ok(client::observe(
            s,
            Watch::until_end(ctx.ms(2000)).responses(1),
        ))
    };
    let first = served(&mut keep, "keep-alive request")?;
    if first.class != Class::Response {
        return Err(
            format!("the keep-alive connection was not served before the attack: {first}").into(),
        );
    }
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .or_error("reading the target's descriptors")?;
    let old = engine::sys::rlimit::set_nofile_limit_of(pid, open + 64)
        .or_error("lowering the target's descriptor limit (prlimit)")?;
    let guard = LimitGuard { pid, old };
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        match client::connect(addr, ctx.ms(2000)) {
            Ok(s) => clients.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let probe =
        CpuProbe::of(ctx, &server).ok_or("cannot tell which threads or process to watch")?;
    let c0 = probe.read().ok_or("cannot read the target's CPU time")?;
    let t0 = Instant::now();
    std::thread::sleep(window);
    let used = probe.read().unwrap_or(c0).saturating_sub(c0);
    let took = t0.elapsed();
    o.saw(format!(
        "{} clients connected with the limit at {} descriptors; target CPU {} ms over {} ms",
        clients.len(),
        open + 64,
        used.as_millis(),
        took.as_millis()
    ));
    o.check(used < budget, || {
        format!(
            "the target used {} ms of CPU over {} ms while accept failed (allowed {} ms): it spins",
            used.as_millis(),
            took.as_millis(),
            budget.as_millis()
        )
    });
    let during = served(&mut keep, "keep-alive request during the attack")?;
    o.saw(format!("keep-alive request during the attack: {during}"));
    o.check(during.class == Class::Response, || {
        format!("the connection made before was not served while accept failed: {during}")
    });
    drop(clients);
    let t1 = Instant::now();
    let after = client::request(addr, &get, ctx.ms(2000));
    o.saw(format!(
        "a new connection after the clients closed: {after} after {} ms",
        t1.elapsed().as_millis()
    ));
    o.check(after.class == Class::Response, || {
        format!("a new connection was not served once descriptors were free: {after}")
    });
    drop(guard);
    Ok(())
}

// ---- hostile.slow-body ----

/// `body_timeout` 400 ms: a POST sends its head and 10 of 1,000 body bytes, then
/// stops. The target answers 408 (or closes) and sends FIN between the timeout and the
/// timeout + 1 s (scaled), its worker CPU staying near idle while it waits.
pub fn slow_body(ctx: &Ctx, o: &mut Outcome) -> Checked {
    let asked = Duration::from_millis(400);
    let cfg = engine::Config {
        body_timeout: asked,
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    let eff = server.engine().effective_config();
    let timeout = eff.as_ref().map_or(asked, |c| c.body_timeout);
    let low = timeout.saturating_sub(ctx.ms(20));
    let high = timeout + ctx.ms(1000);
    o.expect(format!("a body stalled after 10 of 1000 bytes: 408 (if anything) then FIN, between {} ms and {} ms (scaled) after the last byte", low.as_millis(), high.as_millis()));
    o.expect("CPU while waiting: under 30 ms (scaled) for the target's workers");
    let addr = server.addr();
    let probe = CpuProbe::of(ctx, &server);
    let mut s = connect(ctx, addr)?;
    let c0 = probe.as_ref().and_then(CpuProbe::read);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n0123456789")
        .or_error("sending the head")?;
    // Observed from right after the last byte was written.
    let obs = client::observe(&mut s, Watch::until_end(high + ctx.ms(500)));
    let fin_at = obs.at;
    let used = match (&probe, c0) {
        (Some(p), Some(c0)) => p.read().map(|c| c.saturating_sub(c0)),
        _ => None,
    };
    o.saw(format!(
        "{obs}; worker CPU {}",
        used.map_or(
            "not observable (no threads or process to watch)".into(),
            |u| format!("{} ms", u.as_millis())
        )
    ));
    let statuses: Vec<u16> = obs.responses.iter().map(|r| r.status).collect();
    o.check(statuses.iter().all(|&st| st == 408), || {
        format!("the stalled body got {statuses:?} (expected 408 or nothing)")
    });
    o.check(
        obs.class == Class::Fin && fin_at >= low && fin_at <= high,
        || {
            format!(
                "the stalled body's connection ended {} at {} ms (expected fin within {}..{} ms)",
                obs.class,
                fin_at.as_millis(),
                low.as_millis(),
                high.as_millis()
            )
        },
    );
    if let Some(u) = used {
        o.check(u < ctx.ms(30), || {
            format!(
                "the target's workers used {} ms of CPU while the body was stalled (allowed {} ms)",
                u.as_millis(),
                ctx.ms(30).as_millis()
            )
        });
    }
    Ok(())
}
