//! Section 1: the engine's lifecycle, addresses, metrics and shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{ConfigError, EngineError, EngineType, Metrics};

use super::with_workers;
use crate::client::{self, Class, Watch};
use crate::ctx::Ctx;
use crate::harness::Server;
use crate::outcome::{Checked, OrError, Outcome};
use crate::targets::{BuildError, Built, Host, ListenState, Rejected, Status, TypeReport};
use crate::wait::wait_until;

/// What a process's fd table and sockets look like, read from `/proc/<pid>`.
mod proc_fds {
    use std::collections::{BTreeMap, BTreeSet};

    /// One open fd: its link target and, for an eventfd, its kernel id (unique among
    /// live eventfds, so it tells two eventfds that got the same number apart).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FdEntry {
        pub target: String,
        pub eventfd_id: Option<u64>,
    }

    impl FdEntry {
        pub fn is_eventfd(&self) -> bool {
            self.target == "anon_inode:[eventfd]"
        }
        pub fn is_epoll(&self) -> bool {
            self.target == "anon_inode:[eventpoll]"
        }
        pub fn socket_inode(&self) -> Option<u64> {
            self.target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        }
    }

    fn fdinfo(pid: u32, fd: i32) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default()
    }

    /// Every open fd of process `pid`.
    pub fn table(pid: u32) -> BTreeMap<i32, FdEntry> {
        let mut out = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return out;
        };
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            let eventfd_id = if target == "anon_inode:[eventfd]" {
                fdinfo(pid, fd)
                    .lines()
                    .find_map(|l| l.strip_prefix("eventfd-id:"))
                    .and_then(|v| v.trim().parse().ok())
            } else {
                None
            };
            out.insert(fd, FdEntry { target, eventfd_id });
        }
        out
    }

    /// `Ok` if process `pid`'s fds, threads and sockets can be read: the checks that
    /// look there must not pass by seeing nothing.
    pub fn readable(pid: u32) -> Result<(), String> {
        for what in ["fd", "task", "net/tcp"] {
            let path = format!("/proc/{pid}/{what}");
            let ok = if what == "net/tcp" {
                std::fs::read_to_string(&path).map(drop)
            } else {
                std::fs::read_dir(&path).map(drop)
            };
            ok.map_err(|e| {
                format!("cannot read {path}: {e} (the engine's process must be on this machine and readable: run as its user or root)")
            })?;
        }
        Ok(())
    }

    /// How many fds and threads process `pid` has.
    pub fn counts(pid: u32) -> (usize, usize) {
        let count = |what: &str| {
            std::fs::read_dir(format!("/proc/{pid}/{what}"))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        (count("fd"), count("task"))
    }

    /// Does thread `tid` of process `pid` still exist?
    pub fn thread_alive(pid: u32, tid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
    }

    /// The fds registered in epoll instance `fd` of process `pid`, with their event
    /// data.
    pub fn epoll_targets(pid: u32, fd: i32) -> Vec<(i32, u64)> {
        fdinfo(pid, fd)
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("tfd:")?;
                let mut it = rest.split_whitespace();
                let tfd = it.next()?.parse().ok()?;
                let data = it
                    .skip_while(|w| *w != "data:")
                    .nth(1)
                    .and_then(|d| u64::from_str_radix(d, 16).ok())?;
                Some((tfd, data))
            })
            .collect()
    }

    /// TCP sockets (IPv4 and IPv6) of process `pid`'s network namespace: (inode,
    /// local port, state).
    pub fn tcp_sockets(pid: u32) -> Vec<(u64, u16, u8)> {
        let mut out = Vec::new();
        for file in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                let port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                let state = u8::from_str_radix(f[3], 16).ok();
                let inode = f[9].parse::<u64>().ok();
                if let (Some(port), Some(state), Some(inode)) = (port, state, inode) {
                    if inode != 0 {
                        out.push((inode, port, state));
                    }
                }
            }
        }
        out
    }

    /// `TCP_LISTEN` in `/proc/net/tcp`.
    pub const LISTEN: u8 = 0x0A;

    /// Inodes of process `pid`'s TCP sockets whose local port is `port` (in `state`,
    /// or any state when `None`).
    pub fn own_sockets_on(pid: u32, port: u16, state: Option<u8>) -> BTreeSet<u64> {
        let own: BTreeSet<u64> = table(pid)
            .values()
            .filter_map(FdEntry::socket_inode)
            .collect();
        tcp_sockets(pid)
            .into_iter()
            .filter(|&(ino, p, st)| {
                p == port && state.is_none_or(|s| s == st) && own.contains(&ino)
            })
            .map(|(ino, _, _)| ino)
            .collect()
    }

    /// Eventfds registered in no epoll instance and epoll instances watching nothing,
    /// in process `pid`, that are not in `before` (same number, same target, same
    /// eventfd id).
    pub fn orphans(pid: u32, before: &BTreeMap<i32, FdEntry>) -> BTreeMap<i32, FdEntry> {
        let now = table(pid);
        let watched: BTreeSet<i32> = now
            .iter()
            .filter(|(_, e)| e.is_epoll())
            .flat_map(|(&fd, _)| epoll_targets(pid, fd).into_iter().map(|(t, _)| t))
            .collect();
        now.into_iter()
            .filter(|(fd, e)| before.get(fd) != Some(e))
            .filter(|(fd, e)| {
                (e.is_eventfd() && !watched.contains(fd))
                    || (e.is_epoll() && epoll_targets(pid, *fd).is_empty())
            })
            .collect()
    }
}

/// An engine of the context's target, built (not listening) on a host of its own.
struct Building {
    host: Box<dyn Host>,
    engine: Box<dyn Built>,
}

impl Building {
    /// `new` with `cfg` on a fresh host whose `/proc` can be read.
    fn new(ctx: &Ctx, cfg: engine::Config) -> Result<Building, String> {
        let host = ctx.target.host()?;
        proc_fds::readable(host.pid())?;
        let engine = host.build(&cfg, "").map_err(|e| e.to_string())?;
        Ok(Building { host, engine })
    }

    fn pid(&self) -> u32 {
        self.host.pid()
    }

    fn status(&self) -> Result<Status, String> {
        self.engine.status()
    }

    /// Polls the status (up to `within`) until `done` says so; the last status seen,
    /// and whether `done` was reached.
    fn poll(
        &self,
        within: Duration,
        mut done: impl FnMut(&Status) -> bool,
    ) -> Result<(Status, bool), String> {
        let mut last = self.status()?;
        let mut failed = None;
        let reached = wait_until(within, || match self.status() {
            Ok(s) => {
                let d = done(&s);
                last = s;
                d
            }
            Err(e) => {
                failed = Some(e);
                true
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok((last, reached)),
        }
    }

    /// Starts `listen` and waits (up to `within`) until `addr()` is set; `Err` if it
    /// is not, or `listen` returned first.
    fn listen(&self, within: Duration) -> Result<SocketAddr, String> {
        self.engine.listen()?;
        let (s, _) = self.poll(within, |s| {
            s.addr.is_some() || matches!(s.listen, ListenState::Returned(_))
        })?;
        match (s.addr, s.listen) {
            (Some(a), _) => Ok(a),
            (None, ListenState::Returned(r)) => {
                Err(format!("listen returned before listening: {r:?}"))
            }
            (None, _) => Err(format!(
                "the engine did not listen within {} ms",
                within.as_millis()
            )),
        }
    }

    /// Waits (up to `within`) until `listen` has returned: `Ok(None)` if it has not.
    fn returned_within(&self, within: Duration) -> Result<Option<Result<(), String>>, String> {
        let (s, _) = self.poll(within, |s| matches!(s.listen, ListenState::Returned(_)))?;
        Ok(match s.listen {
            ListenState::Returned(r) => Some(r),
            _ => None,
        })
    }
}

/// Calls the target's `new` ([`Host::build`]) with each bad field in turn (on a port
/// reserved for the check): the error must be `EngineError::Config` of the right
/// kind, its message must name the field, the handler must have been released by the
/// time `new` returns when the target can tell (a spawned thread or a kept socket
/// would hold it), nothing may listen on the port, and the engine's process must not
/// gain fds or threads (taken over up to 50 tries, so that other tests' activity in
/// a shared process cannot be mistaken for the engine's).
pub fn new_validate(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("each bad config: Err(EngineError::Config(..)) of the field's kind, message naming the field; handler dropped, nothing listening on the port, fd and thread counts unchanged");
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => return Err(format!("reserving a port: {e}").into()),
    };
    let base = engine::Config {
        address: format!("127.0.0.1:{port}"),
        ..ctx.config()
    };
    type Kind = fn(&ConfigError) -> bool;
    let huge = Duration::from_secs(10 * 365 * 24 * 3600);
    let cases: Vec<(&str, engine::Config, Kind)> = vec![
        (
            "workers",
            engine::Config {
                workers: 0,
                ..base.clone()
            },
            |e| matches!(e, ConfigError::ZeroWorkers),
        ),
        (
            "address",
            engine::Config {
                address: "not-an-address".into(),
                ..base.clone()
            },
            |e| matches!(e, ConfigError::BadAddress(_)),
        ),
        (
            "address",
            engine::Config {
                address: "127.0.0.1".into(),
                ..base.clone()
            },
            |e| matches!(e, ConfigError::BadAddress(_)),
        ),
        (
            "read_buffer_size",
            engine::Config {
                read_buffer_size: 0,
                ..base.clone()
            },
            |e| matches!(e, ConfigError::ZeroSize("read_buffer_size")),
        ),
        (
            "max_header_bytes",
            engine::Config {
                max_header_bytes: 0,
                ..base.clone()
            },
            |e| matches!(e, ConfigError::ZeroSize("max_header_bytes")),
        ),
        (
            "max_body_bytes",
            engine::Config {
                max_body_bytes: 0,
                ..base.clone()
            },
            |e| matches!(e, ConfigError::ZeroSize("max_body_bytes")),
        ),
        (
            "driver_write_cap",
            engine::Config {
                driver_write_cap: 0,
                ..base.clone()
            },
            |e| matches!(e, ConfigError::ZeroSize("driver_write_cap")),
        ),
        (
            "idle_timeout",
            engine::Config {
                idle_timeout: Duration::ZERO,
                ..base.clone()
            },
            |e| {
                matches!(
                    e,
                    ConfigError::BadTimeout {
                        field: "idle_timeout",
                        ..
                    }
                )
            },
        ),
        (
            "header_timeout",
            engine::Config {
                header_timeout: huge,
                ..base.clone()
            },
            |e| {
                matches!(
                    e,
                    ConfigError::BadTimeout {
                        field: "header_timeout",
                        ..
                    }
                )
            },
        ),
        (
            "write_timeout",
            engine::Config {
                write_timeout: Duration::ZERO,
                ..base.clone()
            },
            |e| {
                matches!(
                    e,
                    ConfigError::BadTimeout {
                        field: "write_timeout",
                        ..
                    }
                )
            },
        ),
        (
            "drain_linger",
            engine::Config {
                drain_linger: huge,
                ..base.clone()
            },
            |e| {
                matches!(
                    e,
                    ConfigError::BadTimeout {
                        field: "drain_linger",
                        ..
                    }
                )
            },
        ),
    ];
    let fresh_host = || -> Result<Box<dyn Host>, String> {
        let host = ctx.target.host()?;
        proc_fds::readable(host.pid())?;
        Ok(host)
    };
    let mut host = fresh_host()?;
    for (field, cfg, kind) in cases {
        let pid = host.pid();
        let mut quiet = None;
        for _ in 0..50 {
            let (fds, tasks) = proc_fds::counts(pid);
            let result = host.build(&cfg, "");
            let (fds2, tasks2) = proc_fds::counts(pid);
            // An accepted config is the answer; a rejection is retried until the
            // counts are quiet.
            let done = result.is_ok() || (fds2 <= fds && tasks2 <= tasks);
            quiet = Some((result, fds, fds2, tasks, tasks2));
            if done {
                break;
            }
        }
        let Some((result, fds, fds2, tasks, tasks2)) = quiet else {
            continue;
        };
        match result {
            Ok(engine) => {
                o.saw(format!("{field}: new returned Ok"));
                o.fail(format!("a bad {field} was accepted by new"));
                drop(engine);
                // The host holds that engine now: the next case gets a fresh one.
                host = fresh_host()?;
            }
            Err(BuildError::Host(e)) => {
                return Err(format!("{field}: the target could not be asked: {e}").into())
            }
            Err(BuildError::Rejected(Rejected {
                error,
                message: msg,
                handler_released,
            })) => {
                o.saw(format!("{field}: Err({error:?}) \"{msg}\"; handler released: {handler_released:?}; fds {fds} -> {fds2}, threads {tasks} -> {tasks2}"));
                match &error {
                    EngineError::Config(ce) => {
                        o.check(kind(ce), || {
                            format!("{field}: error {ce:?} is not the kind for this field")
                        });
                    }
                    other => o.fail(format!(
                        "{field}: error {other:?} is not EngineError::Config"
                    )),
                }
                o.check(msg.contains(field), || {
                    format!("{field}: the message \"{msg}\" does not name the field")
                });
                o.check(handler_released != Some(false), || {
                    format!("{field}: the handler was still held after new failed (something was spawned or kept)")
                });
                o.check(fds2 <= fds && tasks2 <= tasks, || {
                    format!("{field}: fd count {fds} -> {fds2}, thread count {tasks} -> {tasks2} in each of 50 tries (allowed: no growth)")
                });
            }
        }
        let bound = proc_fds::own_sockets_on(pid, port, None);
        o.check(bound.is_empty(), || {
            format!(
                "{field}: the engine's process has {} socket(s) on port {port} after new failed",
                bound.len()
            )
        });
    }
    Ok(())
}

/// Starts a 3-worker engine on port 0 and reads `/proc/<pid>/net/tcp{,6}`: the
/// engine's process must own 3 LISTEN sockets on the port `addr()` names (matched by
/// inode with `/proc/<pid>/fd`); then dials 60 connections and requires every worker to have
/// accepted some (`metrics().workers[i].accepted`, and the `/worker` answers).
pub fn listen_bind(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("3 LISTEN sockets owned by the engine's process on its port; each of 3 workers accepts some of 60 dials");
    let n = 3;
    let server = Server::start(ctx, with_workers(ctx, n))?;
    let Some(pid) = server.engine().pid() else {
        return Err("the target does not say which process the engine runs in".into());
    };
    let port = server.addr().port();
    let listening = proc_fds::own_sockets_on(pid, port, Some(proc_fds::LISTEN));
    o.saw(format!(
        "{} LISTEN socket(s) of the engine's process on port {port} (inodes {listening:?})",
        listening.len()
    ));
    o.check(listening.len() == n, || {
        format!(
            "{} listen sockets on port {port}, expected {n} (one per worker)",
            listening.len()
        )
    });
    let dials = 60;
    let mut by_body = vec![0u64; n];
    for i in 0..dials {
        let obs = client::request(server.addr(), &client::get("/worker"), ctx.ms(2000));
        let Some(r) = obs.responses.first() else {
            return Err(format!("dial {i} got no response: {obs}").into());
        };
        if let Some(w) = std::str::from_utf8(&r.body)
            .ok()
            .and_then(|b| b.parse::<usize>().ok())
            .filter(|&w| w < n)
        {
            by_body[w] += 1;
        }
    }
    let engine = server.engine();
    wait_until(ctx.ms(1000), || engine.metrics().accepted >= dials);
    let m = engine.metrics();
    let accepted: Vec<u64> = m.workers.iter().map(|w| w.accepted).collect();
    o.saw(format!(
        "{dials} dials: accepted per worker {accepted:?}, served per worker (from /worker) {by_body:?}"
    ));
    o.check(accepted.len() == n && accepted.iter().all(|&a| a > 0), || {
        format!("accepted per worker {accepted:?}: every one of {n} workers must accept some of {dials} dials")
    });
    Ok(())
}

/// Builds a 3-worker engine: `addr()` must be `None` before `listen`; the first
/// `Some` seen while `listen` starts must carry a real port on which this process
/// then owns one LISTEN socket per worker, and a request to it is served.
pub fn listen_addr(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("addr() None before listen; then Some(127.0.0.1:p), p != 0, with 3 LISTEN sockets on p, and a GET to it answered 200");
    let n = 3;
    let b = Building::new(ctx, with_workers(ctx, n))?;
    let before = b.status()?.addr;
    o.saw(format!("before listen: addr() = {before:?}"));
    o.check(before.is_none(), || {
        format!("addr() is {before:?} before listen")
    });
    let addr = b.listen(ctx.ms(5000))?;
    let listening = proc_fds::own_sockets_on(b.pid(), addr.port(), Some(proc_fds::LISTEN));
    o.saw(format!(
        "once listening: addr() = {addr}; {} LISTEN socket(s) of the engine's process on that port",
        listening.len()
    ));
    o.check(addr.port() != 0, || "addr() reports port 0".into());
    o.check(addr.ip() == std::net::Ipv4Addr::LOCALHOST, || {
        format!("addr() {addr} is not the configured 127.0.0.1")
    });
    o.check(listening.len() == n, || {
        format!(
            "addr() names port {} but {} of {n} workers listen on it",
            addr.port(),
            listening.len()
        )
    });
    let obs = client::request(addr, &client::get("/"), ctx.ms(2000));
    o.saw(format!("GET / to addr(): {obs}"));
    o.check(
        obs.responses.first().is_some_and(|r| r.status == 200),
        || format!("a request to addr() was not served: {obs}"),
    );
    if b.engine.shutdown(ctx.ms(1000)).is_ok() {
        if let Ok((st, true)) = b.poll(ctx.ms(2000), |s| {
            matches!(s.listen, ListenState::Returned(_))
        }) {
            o.saw(format!(
                "after shutdown and listen returned: addr() = {:?}",
                st.addr
            ));
        }
    }
    Ok(())
}

fn engine_fd_summary(table: &BTreeMap<i32, proc_fds::FdEntry>, fds: &BTreeSet<i32>) -> String {
    fds.iter()
        .map(|fd| match table.get(fd) {
            Some(e) => format!("{fd}={}", e.target),
            None => format!("{fd}=?"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `listen` (3 workers) on a thread of its own and serves a keep-alive
/// connection: `listen` must still be running after 300 ms of serving, and return
/// within 2 s of `shutdown`. Afterwards every worker thread must be gone
/// (`/proc/self/task/<tid>`), no socket the engine had (its listen and connection
/// sockets, by inode) may be open, and no eventfd or epoll fd created meanwhile may be
/// left orphaned (an eventfd no epoll watches, an epoll watching nothing) for 300 ms:
/// live engines of other tests always keep their eventfd registered in their epoll, so
/// only a leak stays orphaned.
pub fn listen_blocks(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("listen still running after 300 ms of serving; returns Ok within 2 s of shutdown; worker threads gone; engine sockets closed; no orphaned eventfd/epoll left");
    let n = 3;
    let b = Building::new(ctx, with_workers(ctx, n))?;
    let pid = b.pid();
    let before = proc_fds::table(pid);
    let count_before = before.len();
    let addr = b.listen(ctx.ms(5000))?;
    let tids: Vec<i32> = (0..n)
        .filter_map(|i| b.engine.select(i as i64, false).ok().flatten())
        .map(|w| w.thread_id)
        .collect();
    let mut conn = client::connect(addr, ctx.ms(2000)).or_error("connect")?;
    let serve_until = Instant::now() + ctx.ms(300);
    let mut served = 0;
    while Instant::now() < serve_until {
        if conn.write_all(&client::get("/")).is_err() {
            return Err("sending a request failed".into());
        }
        let obs = client::observe(&mut conn, Watch::until_end(ctx.ms(2000)).responses(1));
        if obs.class != Class::Response {
            return Err(format!("request {served} was not answered: {obs}").into());
        }
        served += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The engine's own sockets, by inode: listen sockets and accepted connections.
    let engine_sockets = proc_fds::own_sockets_on(pid, addr.port(), None);
    let during = proc_fds::table(pid);
    let engine_fds: BTreeSet<i32> = during
        .iter()
        .filter(|(_, e)| {
            e.socket_inode()
                .is_some_and(|i| engine_sockets.contains(&i))
        })
        .map(|(&fd, _)| fd)
        .collect();
    let still_running = !matches!(b.status()?.listen, ListenState::Returned(_));
    // What is looked for afterwards must be seen now: the listen sockets and the
    // worker threads (else reading /proc tells nothing, and the check must not pass).
    let threads_seen = tids.iter().all(|&t| proc_fds::thread_alive(pid, t));
    if engine_fds.len() < n || tids.len() != n || !threads_seen {
        return Err(format!(
            "cannot see the engine in /proc/{pid}: {} of its sockets (at least {n} expected), worker tids {tids:?} (alive: {threads_seen})",
            engine_fds.len()
        ).into());
    }
    o.saw(format!(
        "listening on {addr}: {served} requests served over 300 ms; listen still running: {still_running}; worker tids {tids:?}; engine sockets: {}",
        engine_fd_summary(&during, &engine_fds)
    ));
    o.check(still_running, || {
        "listen returned before shutdown was requested".into()
    });
    drop(conn);
    let t0 = Instant::now();
    if let Err(e) = b.engine.shutdown(ctx.ms(1000)) {
        o.fail(format!("shutdown failed: {e}"));
    }
    match b.returned_within(ctx.ms(2000)) {
        Err(e) => return Err(e.into()),
        Ok(None) => {
            o.fail("listen did not return within 2 s of shutdown");
            return Ok(());
        }
        Ok(Some(r)) => {
            o.saw(format!(
                "listen returned {r:?} {} ms after shutdown was called",
                t0.elapsed().as_millis()
            ));
            if let Err(e) = r {
                o.fail(e);
            }
        }
    }
    let alive: Vec<i32> = tids
        .iter()
        .copied()
        .filter(|&t| proc_fds::thread_alive(pid, t))
        .collect();
    o.check(tids.len() == n && alive.is_empty(), || {
        format!("worker threads {alive:?} of {tids:?} still exist after listen returned")
    });
    let after = proc_fds::table(pid);
    let open_sockets: Vec<String> = after
        .iter()
        .filter(|(_, e)| {
            e.socket_inode()
                .is_some_and(|i| engine_sockets.contains(&i))
        })
        .map(|(fd, e)| format!("{fd}={}", e.target))
        .collect();
    o.check(open_sockets.is_empty(), || {
        format!("engine sockets still open after listen returned: {open_sockets:?}")
    });
    // Orphans that stay orphans for the whole window are leaks.
    let mut leaked = proc_fds::orphans(pid, &before);
    let window_end = Instant::now() + ctx.ms(300);
    while !leaked.is_empty() && Instant::now() < window_end {
        std::thread::sleep(Duration::from_millis(10));
        let now = proc_fds::orphans(pid, &before);
        leaked.retain(|fd, e| now.get(fd) == Some(e));
    }
    o.saw(format!(
        "fd count: {count_before} before listen, {} after listen returned (other tests' fds included when the engine shares this process); orphaned eventfd/epoll fds left: {}",
        after.len(),
        engine_fd_summary(&after, &leaked.keys().copied().collect())
    ));
    o.check(leaked.is_empty(), || {
        format!(
            "{} eventfd/epoll fd(s) opened while the engine ran stay open, watched by no epoll, after listen returned: {:?}",
            leaked.len(),
            leaked
        )
    });
    Ok(())
}

/// `engine_type()` of a new engine (and of a listening one) is `EngineType::Epoll`
/// and displays as `epoll`.
pub fn engine_type(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect(
        "engine_type() == EngineType::Epoll, to_string() == \"epoll\", before and while listening",
    );
    let b = Building::new(ctx, with_workers(ctx, 1))?;
    let check = |o: &mut Outcome, when: &str, t: TypeReport| {
        let TypeReport { typed, shown } = t;
        o.saw(format!(
            "{when}: engine_type() = {typed:?}, displayed {shown:?}"
        ));
        o.check(typed == Some(EngineType::Epoll), || {
            format!("{when}: engine_type() is {typed:?} (displayed {shown:?})")
        });
        o.check(shown == "epoll", || {
            format!("{when}: engine_type() displays {shown:?}")
        });
    };
    check(o, "before listen", b.status()?.engine_type);
    b.listen(ctx.ms(5000))?;
    check(o, "listening", b.status()?.engine_type);
    Ok(())
}

/// For N = 1 and 3: `num_workers()` is 0 after `new`, only ever 0 or N while `listen`
/// starts (sampled as fast as the target answers), and N once `addr()` is set.
pub fn workers_count(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("num_workers() == 0 before listen, never other than 0 or N while starting, N once listening (N = 1, 3)");
    for n in [1usize, 3] {
        let b = Building::new(ctx, with_workers(ctx, n))?;
        let before = b.status()?.workers;
        b.engine.listen()?;
        let mut seen = BTreeSet::new();
        let polled = b.poll(ctx.ms(5000), |s| {
            seen.insert(s.workers);
            s.addr.is_some() || matches!(s.listen, ListenState::Returned(_))
        });
        let once = match polled {
            Ok((st, true)) if st.addr.is_some() => st.workers,
            Ok(_) => return Err(format!("the {n}-worker engine did not listen within 5 s").into()),
            Err(e) => return Err(e.into()),
        };
        o.saw(format!(
            "N = {n}: before listen {before}; while starting {seen:?}; once listening {once}"
        ));
        o.check(before == 0, || {
            format!("N = {n}: num_workers() is {before} before listen")
        });
        o.check(seen.iter().all(|&c| c == 0 || c == n), || {
            format!("N = {n}: num_workers() took values {seen:?} while starting")
        });
        o.check(once == n, || {
            format!("N = {n}: num_workers() is {once} once listening")
        });
    }
    Ok(())
}

fn counters(m: &Metrics) -> [(&'static str, u64); 6] {
    [
        ("requests_served", m.requests_served),
        ("accepted", m.accepted),
        ("closed", m.closed),
        ("errors", m.errors),
        ("bytes_read", m.bytes_read),
        ("bytes_written", m.bytes_written),
    ]
}

fn show(m: &Metrics) -> String {
    let per: Vec<String> = m
        .workers
        .iter()
        .map(|w| {
            format!(
                "w{} {} active {} accepted {}",
                w.index, w.state, w.active_connections, w.accepted
            )
        })
        .collect();
    format!(
        "requests {} active {} accepted {} closed {} errors {} read {} B written {} B [{}]",
        m.requests_served,
        m.active_connections,
        m.accepted,
        m.closed,
        m.errors,
        m.bytes_read,
        m.bytes_written,
        per.join("; ")
    )
}

/// On a fresh 2-worker engine: one GET, then 5 pipelined GETs in one write, then a
/// close. After each step the counters must show it within 50 ms (requests exactly
/// +1, then exactly +5; bytes read exactly what was sent, bytes written exactly what
/// the client received; accepted 1 and the per-worker accepted summing to it; active
/// 1 then 0, closed 1), and every counter of every snapshot must be >= the previous.
pub fn metrics(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("requests_served +1 then +5 (pipelined), exactly, each visible within 50 ms; bytes_read/bytes_written equal to the bytes exchanged; accepted 1 = sum of per-worker accepted; active 1 then 0; closed 1; counters monotonic; one worker entry per worker");
    let n = 2;
    let server = Server::start(ctx, with_workers(ctx, n))?;
    let engine = Arc::clone(server.engine());
    let mut snaps: Vec<(String, Metrics)> = vec![("start".into(), engine.metrics())];
    let m0 = snaps[0].1.clone();
    o.saw(format!("start: {}", show(&m0)));
    o.check(
        m0.workers.len() == n && m0.workers.iter().enumerate().all(|(i, w)| w.index == i),
        || {
            format!(
                "{} worker entries (indexes {:?}), expected {n}",
                m0.workers.len(),
                m0.workers.iter().map(|w| w.index).collect::<Vec<_>>()
            )
        },
    );
    let mut conn = client::connect(server.addr(), ctx.ms(2000)).or_error("connect")?;
    let mut sent = 0;
    let mut received = 0;
    // Step 1: one request.
    let req = client::get("/");
    if conn.write_all(&req).is_err() {
        return Err("sending the request failed".into());
    }
    sent += req.len();
    let Some((k, _)) = client::read_responses(&mut conn, 1, ctx.ms(2000)) else {
        return Err("the first request got no response".into());
    };
    received += k;
    let got = Instant::now();
    let visible = wait_until(ctx.ms(50), || {
        engine.metrics().requests_served > m0.requests_served
    });
    let m1 = engine.metrics();
    o.saw(format!(
        "after 1 response (+{} ms): {}",
        got.elapsed().as_millis(),
        show(&m1)
    ));
    o.check(visible, || {
        "the served response was not counted within 50 ms".into()
    });
    o.check(m1.requests_served == m0.requests_served + 1, || {
        format!(
            "requests_served {} -> {} after one response (expected +1)",
            m0.requests_served, m1.requests_served
        )
    });
    o.check(m1.accepted == 1 && m1.workers.iter().map(|w| w.accepted).sum::<u64>() == m1.accepted, || {
        format!("accepted {} and per-worker accepted {:?} after one connection (expected 1, summing to it)", m1.accepted, m1.workers.iter().map(|w| w.accepted).collect::<Vec<_>>())
    });
    o.check(
        m1.active_connections == 1
            && m1.workers.iter().map(|w| w.active_connections).sum::<u64>() == 1,
        || {
            format!(
                "active_connections {} (per worker {:?}) with one open connection",
                m1.active_connections,
                m1.workers
                    .iter()
                    .map(|w| w.active_connections)
                    .collect::<Vec<_>>()
            )
        },
    );
    o.check(
        m1.workers
            .iter()
            .all(|w| w.state == engine::WorkerState::Active),
        || "a worker of a listening engine is not reported Active".into(),
    );
    snaps.push(("after one request".into(), m1.clone()));
    // Step 2: five pipelined requests in one write.
    let batch: Vec<u8> = (0..5).flat_map(|_| client::get("/")).collect();
    if conn.write_all(&batch).is_err() {
        return Err("sending the pipelined requests failed".into());
    }
    sent += batch.len();
    let Some((k, rs)) = client::read_responses(&mut conn, 5, ctx.ms(2000)) else {
        return Err("the pipelined requests did not get 5 responses".into());
    };
    received += k;
    let visible = wait_until(ctx.ms(50), || {
        let m = engine.metrics();
        m.requests_served >= m1.requests_served + 5 && m.bytes_written >= received as u64
    });
    let m2 = engine.metrics();
    o.saw(format!(
        "after {} pipelined responses: {}",
        rs.len(),
        show(&m2)
    ));
    o.check(visible && m2.requests_served == m1.requests_served + 5, || {
        format!("requests_served {} -> {} after 5 pipelined responses (expected exactly +5 within 50 ms)", m1.requests_served, m2.requests_served)
    });
    o.check(m2.bytes_read == sent as u64, || {
        format!(
            "bytes_read {} after the client sent {sent} bytes",
            m2.bytes_read
        )
    });
    o.check(m2.bytes_written == received as u64, || {
        format!(
            "bytes_written {} after the client received {received} bytes",
            m2.bytes_written
        )
    });
    snaps.push(("after pipelined requests".into(), m2.clone()));
    // Step 3: close.
    drop(conn);
    let closed = wait_until(ctx.ms(1000), || {
        let m = engine.metrics();
        m.closed >= 1 && m.active_connections == 0
    });
    let m3 = engine.metrics();
    o.saw(format!("after the client closed: {}", show(&m3)));
    o.check(closed && m3.closed == 1, || {
        format!(
            "closed {} active {} after the only connection closed (expected 1 and 0)",
            m3.closed, m3.active_connections
        )
    });
    snaps.push(("after close".into(), m3));
    across_pause(&server, ctx, o, &mut snaps)?;
    for w in snaps.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        for ((name, x), (_, y)) in counters(&a.1).into_iter().zip(counters(&b.1)) {
            o.check(y >= x, || {
                format!("{name} went down from {x} ({}) to {y} ({})", a.0, b.0)
            });
        }
        for (wa, wb) in a.1.workers.iter().zip(&b.1.workers) {
            o.check(wb.accepted >= wa.accepted, || {
                format!(
                    "worker {} accepted went down from {} to {}",
                    wa.index, wa.accepted, wb.accepted
                )
            });
        }
    }
    Ok(())
}

/// The counters across `pause_worker`, a drain, `pause_accept`, `resume_accept` and
/// `resume_worker` (pushed onto `snaps`, which the caller checks for monotonicity):
/// with worker 1 paused on its own, worker 0 is held in a handler while one connection
/// waits in its accept queue; `pause_accept` drains it. The held connection, the
/// drained one and one dial after `resume_accept` are three accepts, all on worker 0.
fn across_pause(
    server: &Server,
    ctx: &Ctx,
    o: &mut Outcome,
    snaps: &mut Vec<(String, Metrics)>,
) -> Checked {
    o.expect("across pause_worker, a drain, pause_accept, resume_accept and resume_worker: every counter monotonic; the held, the drained and one new connection count as 3 accepted, on worker 0 and in the total");
    let engine = server.engine();
    let before = engine.metrics();
    super::worker::pause_until_suspended(ctx, engine.as_ref(), 1, "suspend")?;
    snaps.push(("worker 1 paused".into(), engine.metrics()));
    let mut held = super::accept::hold_worker(server, ctx)?;
    let mut queued = super::accept::queue_connection(server.addr(), Some(&client::get("/")), ctx)
        .map_err(|e| format!("queueing a connection: {e}"))?;
    super::accept::pause_while_held(server, ctx)?;
    let held_obs = client::observe(&mut held, Watch::until_end(ctx.ms(2000)).responses(1));
    let drained = client::observe(&mut queued, Watch::until_end(ctx.ms(2000)).responses(1));
    o.saw(format!(
        "held connection: {held_obs}; drained connection: {drained}"
    ));
    let paused = engine.metrics();
    o.saw(format!("after pause_accept drained one: {}", show(&paused)));
    snaps.push(("after pause_accept (one drained)".into(), paused.clone()));
    engine.resume_accept().or_error("resume_accept failed")?;
    let dial = client::request(server.addr(), &client::get("/"), ctx.ms(2000));
    o.saw(format!("dial after resume_accept: {dial}"));
    let resumed = engine.metrics();
    snaps.push(("after resume_accept and a dial".into(), resumed.clone()));
    engine
        .resume_worker(1)
        .or_error("resume_worker(1) failed")?;
    let _ = wait_until(ctx.ms(1000), || {
        engine.worker_state(1).ok() == Some(engine::WorkerState::Active)
    });
    let after = engine.metrics();
    o.saw(format!("after resume_worker(1): {}", show(&after)));
    snaps.push(("after resume_worker(1)".into(), after.clone()));
    let w0 = |m: &Metrics| m.workers.first().map_or(0, |w| w.accepted);
    o.check(after.accepted == before.accepted + 3, || {
        format!(
            "accepted {} -> {} over a held, a drained and a new connection (expected +3: drained connections count as accepted)",
            before.accepted, after.accepted
        )
    });
    o.check(w0(&after) == w0(&before) + 3, || {
        format!(
            "worker 0 accepted {} -> {} over its held, drained and new connection (expected +3)",
            w0(&before),
            w0(&after)
        )
    });
    Ok(())
}

/// Sets up, on a 2-worker engine: an idle keep-alive connection (B), a 16 MiB
/// response the client has started to read with a small receive buffer (C), a
/// request whose body is half sent (A), and a request held in its handler (D). Calls
/// `shutdown(5 s)`, waits until a worker stopped listening, releases D and sends the
/// rest of A. Then: B ends with FIN (a probe write draws no RST), C, D and A get
/// their whole response then FIN, a new connect is refused once no worker listens, and
/// `shutdown` and `listen` return.
pub fn shutdown_graceful(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("idle keep-alive: fin (probe draws no RST); large response being read: complete (16 MiB) then fin; held request: complete response then fin; half-sent request: completed, answered, then fin; connect after the listeners closed: refused; shutdown Ok and listen returns");
    let server = Server::start(ctx, with_workers(ctx, 2))?;
    let addr = server.addr();
    let engine = Arc::clone(server.engine());
    let connect = |what: &str| {
        client::connect(addr, ctx.ms(2000)).map_err(|obs| format!("connect ({what}): {obs}"))
    };
    let mut sent = 0u64;
    // B: idle keep-alive.
    let mut idle = connect("idle")?;
    let req = client::get("/");
    if idle.write_all(&req).is_err() || client::read_responses(&mut idle, 1, ctx.ms(2000)).is_none()
    {
        return Err("the idle connection's first request was not answered".into());
    }
    sent += req.len() as u64;
    // C: a large response, started.
    let big_len = 16 << 20;
    let mut big = connect("large response")?;
    let _ = engine::sys::socket::set_buffer_sizes(big.as_raw_fd(), None, Some(64 * 1024));
    let req = client::get(&format!("/big?bytes={big_len}"));
    if big.write_all(&req).is_err() {
        return Err("sending the large request failed".into());
    }
    sent += req.len() as u64;
    // Started: its first bytes wait in the client's receive queue (left there, so that
    // the observation below parses the whole response).
    let started = wait_until(ctx.ms(2000), || {
        engine::sys::socket::recv_queue_len(big.as_raw_fd()).is_ok_and(|q| q > 0)
    });
    if !started {
        return Err("the large response did not start".into());
    }
    // A: half a request.
    let mut half = connect("half-sent request")?;
    let first = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello";
    if half.write_all(first).is_err() {
        return Err("sending the first half failed".into());
    }
    sent += first.len() as u64;
    if !wait_until(ctx.ms(2000), || engine.metrics().bytes_read >= sent) {
        return Err("the engine did not read the requests sent so far".into());
    }
    // D: held in its handler.
    let mut held = connect("held request")?;
    if held.write_all(&client::get("/hold")).is_err() || !server.gate.wait_entered(1, ctx.ms(2000))
    {
        return Err("the held request did not reach its handler".into());
    }
    let m = engine.metrics();
    o.saw(format!("before shutdown: {}", show(&m)));
    let stopper = {
        let engine = Arc::clone(&engine);
        let grace = ctx.ms(5000);
        std::thread::spawn(move || {
            let t = Instant::now();
            (engine.shutdown(grace), t.elapsed())
        })
    };
    let started = wait_until(ctx.ms(2000), || {
        (0..2).any(|i| {
            engine
                .worker_state(i)
                .map_or(true, |s| s != engine::WorkerState::Active)
        })
    });
    if !started {
        server.gate.release();
        return Err("no worker stopped listening within 2 s of shutdown".into());
    }
    server.gate.release();
    let rest = b"world";
    let rest_sent = half.write_all(rest).is_ok();
    o.saw(format!(
        "shutdown started; held request released; rest of the half request sent: {rest_sent}"
    ));
    let closed = wait_until(ctx.ms(2000), || {
        (0..2).all(|i| {
            engine
                .worker_state(i)
                .map_or(true, |s| s != engine::WorkerState::Active)
        })
    });
    let late = client::connect(addr, ctx.ms(1000));
    let late_class = match &late {
        Ok(_) => "connected".to_string(),
        Err(obs) => obs.class.to_string(),
    };
    o.saw(format!(
        "connect after every worker stopped listening ({closed}): {late_class}"
    ));
    o.check(
        closed && matches!(&late, Err(obs) if obs.class == Class::Refused),
        || {
            format!(
                "a connect after shutdown closed the listeners was {late_class} (expected refused)"
            )
        },
    );
    drop(late);
    let watch = Watch::until_end(ctx.ms(5000)).probe(Duration::from_millis(200));
    let obs = client::observe_all(vec![idle, big, held, half], watch);
    let names = [
        "idle keep-alive",
        "large response",
        "held request",
        "half-sent request",
    ];
    for (name, ob) in names.iter().zip(&obs) {
        o.saw(format!("{name}: {ob}"));
    }
    o.check(
        obs[0].class == Class::Fin && obs[0].responses.is_empty(),
        || {
            format!(
                "the idle keep-alive connection ended {} (expected fin, no response)",
                obs[0]
            )
        },
    );
    let big_ok = obs[1].class == Class::Fin
        && obs[1].responses.len() == 1
        && obs[1].responses[0].body.len() == big_len;
    o.check(big_ok, || {
        format!(
            "the large response ended {} (expected the whole {big_len}-byte response, then fin)",
            obs[1]
        )
    });
    let answered = |ob: &client::Observation, body: &[u8]| {
        ob.class == Class::Fin
            && ob.responses.len() == 1
            && ob.responses[0].status == 200
            && ob.responses[0].body == body
    };
    o.check(answered(&obs[2], b"held"), || {
        format!(
            "the held request got {} (expected its complete response, then fin)",
            obs[2]
        )
    });
    o.check(rest_sent && answered(&obs[3], b"helloworld"), || {
        format!(
            "the half-sent request got {} (expected its complete echo, then fin)",
            obs[3]
        )
    });
    match stopper.join() {
        Ok((Ok(()), took)) => o.saw(format!(
            "shutdown returned Ok after {} ms",
            took.as_millis()
        )),
        Ok((Err(e), _)) => o.fail(format!("shutdown failed: {e}")),
        Err(_) => o.fail("shutdown panicked"),
    }
    if let Err(e) = server.stop(ctx.ms(1000)) {
        o.fail(format!("after shutdown: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::proc_fds;

    #[test]
    fn an_unreadable_process_is_an_error_not_an_empty_table() {
        assert_eq!(proc_fds::readable(std::process::id()), Ok(()));
        // Above pid_max (4194304 at most): no such process.
        let e = proc_fds::readable(9_999_999).unwrap_err();
        assert!(e.contains("/proc/9999999/fd"), "{e}");
    }
}
