//! The control protocol's server end (`docs/control-protocol.md`): the reference
//! engine as an out-of-process target, what `loadgen serve --control` runs.
//!
//! Connects to the Unix socket named by `$LOADGEN_CONTROL`, says hello, then serves
//! the harness's requests (each on its own thread, so that a request waiting on the
//! engine never holds up the acknowledgements a blocked callback waits for). Exits
//! when the harness closes the socket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::sys::socket;
use engine::{Engine, EngineError};
use serde::Serialize;
use serde_json::{json, Value};

use super::messages::{
    to_value, Count, Done, Entered, Event, Fd, Hello, Paused, Reply, ReplyBody, SelectedAnswer,
    Sequenced, Started, StateAnswer, StatusAnswer, Unregistered,
};
use super::proto::{self, ENV_SOCKET, PROTOCOL, VERSION};
use crate::targets::reference::{new_reference, panic_text, ListenThread};
use crate::targets::{engine_fd_of, Capability, ListenState};
use crate::test_handler::TestHandler;

/// The capabilities this target declares: all of them.
fn capabilities() -> Vec<Value> {
    Capability::ALL
        .into_iter()
        .map(|c| Value::from(c.name()))
        .collect()
}

/// An answer with no fields: `{}`.
fn done() -> Value {
    to_value(&Done {})
}

/// An fd number the engine has never been given: operations on a harness fd this
/// side does not hold go to it, so that the engine answers `UnknownFd` itself.
const UNMAPPED_FD: RawFd = i32::MAX - 1;

/// The engine `new` (or `start`) built, and its `listen`.
struct Served {
    engine: Arc<Engine>,
    listen: ListenThread,
    handler: TestHandler,
}

struct State {
    writer: Mutex<UnixStream>,
    running: Mutex<Option<Served>>,
    /// Harness fd number → this process's copy and how many registrations use it.
    fds: Mutex<HashMap<RawFd, (OwnedFd, usize)>>,
    seq: AtomicU64,
    acks: Mutex<HashSet<u64>>,
    acked: Condvar,
    closed: AtomicBool,
    /// Whether this process counts its SIGPIPEs (a counter installed for its life).
    counting_sigpipes: bool,
}

impl State {
    fn send(&self, msg: &impl Serialize) {
        use std::io::Write;
        let mut line = serde_json::to_vec(msg).unwrap_or_default();
        line.push(b'\n');
        let w = lock(&self.writer);
        let _ = (&*w).write_all(&line);
    }

    /// Sends a callback event and waits until the harness's callback has returned.
    fn event(&self, event: Event) {
        let seq = self.seq.fetch_add(1, SeqCst);
        self.send(&Sequenced {
            seq: Some(seq),
            tid: engine::sys::thread::gettid(),
            event,
        });
        let mut acks = lock(&self.acks);
        while !acks.remove(&seq) && !self.closed.load(SeqCst) {
            acks = self
                .acked
                .wait_timeout(acks, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn engine(&self) -> Result<(Arc<Engine>, TestHandler), Value> {
        lock(&self.running)
            .as_ref()
            .map(|r| (Arc::clone(&r.engine), r.handler.clone()))
            .ok_or_else(|| proto::engine_error_to_json(&EngineError::NotListening))
    }

    fn local_fd(&self, hfd: RawFd) -> RawFd {
        lock(&self.fds)
            .get(&hfd)
            .map_or(UNMAPPED_FD, |(fd, _)| fd.as_raw_fd())
    }

    /// One more user of the copy of `hfd` (released with [`State::release_fd`]).
    fn hold_fd(&self, hfd: RawFd) {
        if let Some((_, n)) = lock(&self.fds).get_mut(&hfd) {
            *n += 1;
        }
    }

    /// Drops the copy of `hfd` without closing it: the engine closed it.
    fn forget_fd(&self, hfd: RawFd) {
        use std::os::fd::IntoRawFd;
        if let Some((fd, _)) = lock(&self.fds).remove(&hfd) {
            let _ = fd.into_raw_fd();
        }
    }

    fn release_fd(&self, hfd: RawFd) {
        let mut fds = lock(&self.fds);
        if let Some((_, n)) = fds.get_mut(&hfd) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                fds.remove(&hfd);
            }
        }
    }
}

/// Connects to the harness's socket (`$LOADGEN_CONTROL`), says hello and serves its
/// requests until it closes the socket. Errors (one line) when it cannot connect.
pub fn serve_control() -> Result<(), String> {
    let path = std::env::var_os(ENV_SOCKET).ok_or_else(|| {
        format!(
            "serve --control: ${ENV_SOCKET} is not set: the harness starts this command, e.g. \
             loadgen scenario --all --target-cmd 'loadgen serve --control'"
        )
    })?;
    let sock = UnixStream::connect(&path).map_err(|e| {
        format!(
            "serve --control: cannot connect to {}: {e}",
            std::path::Path::new(&path).display()
        )
    })?;
    let writer = sock
        .try_clone()
        .map_err(|e| format!("serve --control: {e}"))?;
    // Counts this process's SIGPIPEs (and keeps one from killing it, as the harness's
    // own counter does in process) until the control loop ends.
    let sigpipe_counter = engine::sys::signal::SigpipeCounter::install().ok();
    let state = Arc::new(State {
        writer: Mutex::new(writer),
        running: Mutex::new(None),
        fds: Mutex::new(HashMap::new()),
        seq: AtomicU64::new(1),
        acks: Mutex::new(HashSet::new()),
        acked: Condvar::new(),
        closed: AtomicBool::new(false),
        counting_sigpipes: sigpipe_counter.is_some(),
    });
    state.send(&Hello {
        hello: Some(PROTOCOL.to_string()),
        version: Some(VERSION),
        target: Some("reference engine (loadgen serve --control)".to_string()),
        capabilities: Some(capabilities()),
        pid: Some(u64::from(std::process::id())),
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::new();
    let mut received: Vec<OwnedFd> = Vec::new();
    let mut fd_queue: VecDeque<OwnedFd> = VecDeque::new();
    loop {
        let n = match engine::sys::unix::recv_with_fds(&sock, &mut buf, &mut received) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        fd_queue.extend(received.drain(..));
        // Only the new bytes are searched: a write's line may be tens of megabytes.
        let from = pending.len();
        pending.extend_from_slice(&buf[..n]);
        let mut search = from;
        while let Some(at) = pending[search..].iter().position(|&b| b == b'\n') {
            let end = search + at;
            let line: Vec<u8> = pending.drain(..=end).collect();
            search = 0;
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                state.send(&Reply {
                    id: Value::Null,
                    body: ReplyBody::Error(proto::error_object(
                        "bad-request",
                        "a line that is not JSON",
                        json!({}),
                    )),
                });
                continue;
            };
            if let Some(seq) = msg.get("ack").and_then(Value::as_u64) {
                lock(&state.acks).insert(seq);
                state.acked.notify_all();
                continue;
            }
            let wants_fd = msg.get("op").and_then(Value::as_str) == Some("register")
                && msg.get("attached").and_then(Value::as_bool).unwrap_or(true)
                && msg
                    .get("fd")
                    .and_then(Value::as_i64)
                    .is_some_and(|fd| fd >= 0);
            let fd = if wants_fd { fd_queue.pop_front() } else { None };
            let inline = msg.get("op").and_then(Value::as_str) == Some("new");
            let st = Arc::clone(&state);
            let answer = move || {
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                let reply = match handle(&st, &msg, fd) {
                    Ok(ok) => Reply {
                        id,
                        body: ReplyBody::Ok(ok),
                    },
                    Err(error) => Reply {
                        id,
                        body: ReplyBody::Error(error),
                    },
                };
                st.send(&reply);
            };
            if inline {
                // Here, not on a thread of its own: the harness counts this process's
                // threads around `new`, which must not start any.
                answer();
            } else {
                std::thread::spawn(answer);
            }
        }
    }
    state.closed.store(true, SeqCst);
    state.acked.notify_all();
    let running = lock(&state.running).take();
    if let Some(mut r) = running {
        r.handler.gate.release();
        let _ = r.engine.shutdown(Duration::from_millis(100));
        let _ = r.listen.join();
    }
    drop(sigpipe_counter);
    Ok(())
}

/// The message's `fd` (the harness's number).
fn harness_fd(msg: &Value) -> Result<RawFd, Value> {
    msg.get("fd")
        .and_then(Value::as_i64)
        .map(|fd| fd as RawFd)
        .ok_or_else(|| bad("fd: want an integer"))
}

/// The message's `worker` and its loop (`not-listening` before `start`).
fn worker_loop(st: &State, msg: &Value) -> Result<(u64, engine::WorkerLoop), Value> {
    let worker = uint(msg, "worker")?;
    let wl = st
        .engine()?
        .0
        .try_worker_loop(worker as i64)
        .ok_or_else(|| proto::engine_error_to_json(&EngineError::NotListening))?;
    Ok((worker, wl))
}

fn bad(message: &str) -> Value {
    proto::error_object("bad-request", message, json!({}))
}

fn uint(msg: &Value, key: &str) -> Result<u64, Value> {
    msg.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&format!("{key}: want a non-negative integer")))
}

/// Answers one request; a panic in the engine (e.g. `worker_loop` before `listen`)
/// is answered as a `panic` error with its message.
fn handle(st: &Arc<State>, msg: &Value, fd: Option<OwnedFd>) -> Result<Value, Value> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    catch_unwind(AssertUnwindSafe(|| dispatch(st, msg, fd)))
        .unwrap_or_else(|p| Err(proto::error_object("panic", &panic_text(&*p), json!({}))))
}

fn dispatch(st: &Arc<State>, msg: &Value, fd: Option<OwnedFd>) -> Result<Value, Value> {
    let op = msg.get("op").and_then(Value::as_str).unwrap_or("");
    let eng = |r: Result<(), EngineError>| {
        r.map(|()| done())
            .map_err(|e| proto::engine_error_to_json(&e))
    };
    match op {
        "new" => new(st, msg).map(|_| done()),
        "listen" => {
            let mut running = lock(&st.running);
            let r = running
                .as_mut()
                .ok_or_else(|| bad("listen before new: build the engine first"))?;
            eng(r.listen.start(&r.engine))
        }
        "status" => {
            let mut running = lock(&st.running);
            let r = running
                .as_mut()
                .ok_or_else(|| proto::engine_error_to_json(&EngineError::NotListening))?;
            let (listen, error) = match r.listen.state() {
                ListenState::Idle => ("idle", None),
                ListenState::Running => ("running", None),
                ListenState::Returned(r) => ("returned", r.err()),
            };
            Ok(to_value(&StatusAnswer {
                addr: r.engine.addr().map(|a| a.to_string()),
                workers: Some(r.engine.num_workers() as u64),
                engine_type: Some(r.engine.engine_type().to_string()),
                listen: Some(listen.to_string()),
                listen_error: error,
            }))
        }
        "start" => start(st, msg),
        "pause_accept" => eng(st.engine()?.0.pause_accept()),
        "resume_accept" => eng(st.engine()?.0.resume_accept()),
        "accept_paused" => Ok(to_value(&Paused {
            paused: Some(st.engine()?.0.accept_paused()),
        })),
        "pause_worker" => eng(st.engine()?.0.pause_worker(uint(msg, "index")? as usize)),
        "resume_worker" => eng(st.engine()?.0.resume_worker(uint(msg, "index")? as usize)),
        "worker_state" => st
            .engine()?
            .0
            .worker_state(uint(msg, "index")? as usize)
            .map(|s| {
                to_value(&StateAnswer {
                    state: Some(proto::state_name(s).to_string()),
                })
            })
            .map_err(|e| proto::engine_error_to_json(&e)),
        "worker_loop" => {
            let n = msg
                .get("n")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("n: want an integer"))?;
            let engine = st.engine()?.0;
            let wl = if msg.get("strict").and_then(Value::as_bool) == Some(true) {
                // Panics before listen (answered as a `panic` error).
                engine.worker_loop(n)
            } else {
                engine
                    .try_worker_loop(n)
                    .ok_or_else(|| proto::engine_error_to_json(&EngineError::NotListening))?
            };
            Ok(to_value(&SelectedAnswer {
                index: Some(wl.index() as u64),
                cpu_id: Some(i64::from(wl.cpu_id())),
                thread_id: Some(i64::from(wl.thread_id())),
            }))
        }
        "metrics" => Ok(proto::metrics_to_json(&st.engine()?.0.metrics())),
        "holds" => Ok(to_value(&Entered {
            entered: Some(st.engine()?.1.gate.entered()),
        })),
        "release_holds" => {
            st.engine()?.1.gate.release();
            Ok(done())
        }
        "shutdown" => {
            let grace = Duration::from_millis(uint(msg, "grace_ms")?);
            let Ok((engine, handler)) = st.engine() else {
                return Ok(done());
            };
            handler.gate.release();
            engine
                .shutdown(grace)
                .map_err(|e| proto::engine_error_to_json(&e))?;
            // The engine's shutdown returns once listen has; join it (a bounded wait:
            // `status` tells the harness if it has not), and answer listen's error.
            let end = Instant::now() + Duration::from_secs(5);
            loop {
                let returned = lock(&st.running).as_mut().and_then(|r| {
                    if matches!(r.listen, ListenThread::Idle) {
                        Some(Ok(()))
                    } else {
                        r.listen.returned()
                    }
                });
                match returned {
                    Some(Err(e)) => return Err(proto::engine_error_to_json(&e)),
                    Some(Ok(())) => return Ok(done()),
                    None if Instant::now() >= end => return Ok(done()),
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
        "register" => register(st, msg, fd),
        "register_engine_fd" => register_engine_fd(st, msg),
        "sigpipes" => st
            .counting_sigpipes
            .then(|| {
                to_value(&Count {
                    count: Some(engine::sys::signal::delivered()),
                })
            })
            .ok_or_else(|| {
                proto::error_object(
                    "unsupported",
                    "no SIGPIPE counter could be installed",
                    json!({}),
                )
            }),
        "unregister" | "write" => {
            let hfd = harness_fd(msg)?;
            let (_, wl) = worker_loop(st, msg)?;
            let local = st.local_fd(hfd);
            if op == "write" {
                let data = proto::unb64(msg.get("data").and_then(Value::as_str).unwrap_or(""))
                    .map_err(|e| bad(&format!("data: {e}")))?;
                let t0 = Instant::now();
                let r = wl.write(local, &data);
                let took_us = t0.elapsed().as_micros() as u64;
                return r
                    .map(|()| json!({ "took_us": took_us }))
                    .map_err(|e| proto::driver_error_to_json(&e, hfd));
            }
            // Our copy is held across the call (its close callback may run meanwhile
            // and release the registration's hold): the number cannot be closed by us
            // or reused before the look after.
            st.hold_fd(hfd);
            let before = socket::identity(local).ok();
            let r = wl.unregister_conn(local);
            // The engine must not close the fd; if it closed this copy, say so (the
            // harness then makes its peer see the end, as in process) and forget the
            // number, which is no longer ours.
            let closed = before.is_some() && socket::identity(local).ok() != before;
            if closed {
                st.forget_fd(hfd);
            } else {
                st.release_fd(hfd);
            }
            r.map_err(|e| proto::driver_error_to_json(&e, hfd))?;
            Ok(to_value(&Unregistered {
                closed: Some(closed),
            }))
        }
        other => Err(bad(&format!("unknown op {other:?}"))),
    }
}

/// `new`: builds the engine (one per process), not listening yet. A rejected config
/// is answered with the engine's error and whether the handler was released.
fn new(st: &Arc<State>, msg: &Value) -> Result<Arc<Engine>, Value> {
    let cfg =
        proto::config_from_json(msg.get("config").unwrap_or(&json!({}))).map_err(|e| bad(&e))?;
    let tag = msg.get("tag").and_then(Value::as_str).unwrap_or("");
    let handler = TestHandler::tagged(tag);
    let mut running = lock(&st.running);
    if running.is_some() {
        return Err(proto::engine_error_to_json(&EngineError::AlreadyListening));
    }
    let (engine, released) = new_reference(&cfg, handler.clone());
    let engine = match engine {
        Ok(e) => Arc::new(e),
        Err(e) => {
            let mut error = proto::engine_error_to_json(&e);
            error["handler_released"] = released().into();
            return Err(error);
        }
    };
    *running = Some(Served {
        engine: Arc::clone(&engine),
        listen: ListenThread::Idle,
        handler,
    });
    Ok(engine)
}

/// `start`: `new`, then `listen`, answered once every worker listens. On failure the
/// engine is dropped (a later `start` or `new` may try again).
fn start(st: &Arc<State>, msg: &Value) -> Result<Value, Value> {
    let engine = new(st, msg)?;
    let r = listening(st, &engine);
    if r.is_err() {
        let _ = engine.shutdown(Duration::ZERO);
        lock(&st.running).take();
    }
    r
}

/// Starts the built engine's `listen` and waits (5 s at most) until it listens.
fn listening(st: &Arc<State>, engine: &Arc<Engine>) -> Result<Value, Value> {
    lock(&st.running)
        .as_mut()
        .map_or(Err(EngineError::NotListening), |r| r.listen.start(engine))
        .map_err(|e| proto::engine_error_to_json(&e))?;
    let end = Instant::now() + Duration::from_secs(5);
    let addr = loop {
        if let Some(a) = engine.addr() {
            break a;
        }
        let returned = lock(&st.running).as_mut().and_then(|r| r.listen.returned());
        match returned {
            Some(Err(e)) => return Err(proto::engine_error_to_json(&e)),
            Some(Ok(())) => return Err(bad("listen returned before listening")),
            None if Instant::now() >= end => {
                return Err(bad("the engine did not listen within 5 s"))
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    Ok(to_value(&Started {
        addr: Some(addr.to_string()),
        workers: engine.num_workers() as u64,
    }))
}

fn register(st: &Arc<State>, msg: &Value, fd: Option<OwnedFd>) -> Result<Value, Value> {
    let hfd = harness_fd(msg)?;
    let (worker, wl) = worker_loop(st, msg)?;
    let attached = msg.get("attached").and_then(Value::as_bool).unwrap_or(true);
    if hfd < 0 || !attached {
        // -1, or a number the harness does not have open: passed through as is.
        return wl
            .register_conn(hfd, |_: &[u8]| {}, |_| {})
            .map(|()| done())
            .map_err(|e| proto::driver_error_to_json(&e, hfd));
    }
    let fd = fd.ok_or_else(|| bad("register: no descriptor came with the message"))?;
    // The same harness fd again: hand the engine the copy it already has, so that it
    // sees the same fd (AlreadyRegistered) as it would in process.
    // Counted before registering: the close callback may run (and release it) before
    // register_conn returns.
    let local = {
        let mut fds = lock(&st.fds);
        let entry = fds.entry(hfd).or_insert((fd, 0));
        entry.1 += 1;
        entry.0.as_raw_fd()
    };
    let (recv_st, close_st) = (Arc::clone(st), Arc::clone(st));
    let r = wl.register_conn(
        local,
        move |data: &[u8]| {
            recv_st.event(Event::Recv {
                worker,
                fd: hfd,
                data: proto::b64(data),
            });
        },
        move |err: Option<std::io::Error>| {
            close_st.event(Event::Close {
                worker,
                fd: hfd,
                errno: err.and_then(|e| e.raw_os_error()),
            });
            close_st.release_fd(hfd);
        },
    );
    match r {
        Ok(()) => Ok(done()),
        Err(e) => {
            st.release_fd(hfd);
            Err(proto::driver_error_to_json(&e, hfd))
        }
    }
}

/// Registers the engine's own fd of its HTTP connection from `peer` on a worker (the
/// engine must refuse: `http-conn`). `not-found` when no such connection exists.
fn register_engine_fd(st: &Arc<State>, msg: &Value) -> Result<Value, Value> {
    let (_, wl) = worker_loop(st, msg)?;
    let peer: std::net::SocketAddr = msg
        .get("peer")
        .and_then(Value::as_str)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("peer: want host:port"))?;
    let (engine, _) = st.engine()?;
    let local = engine
        .addr()
        .ok_or_else(|| proto::engine_error_to_json(&EngineError::NotListening))?;
    let fd = engine_fd_of(local, peer).ok_or_else(|| {
        proto::error_object(
            "not-found",
            &format!("no connection from {peer} to {local}"),
            json!({}),
        )
    })?;
    match wl.register_conn(fd, |_: &[u8]| {}, |_| {}) {
        Ok(()) => {
            let _ = wl.unregister_conn(fd);
            Ok(to_value(&Fd {
                fd: Some(i64::from(fd)),
            }))
        }
        Err(e) => Err(proto::driver_error_to_json(&e, fd)),
    }
}
