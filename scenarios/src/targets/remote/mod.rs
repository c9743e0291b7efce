//! An engine in another process, driven over the control protocol
//! (`docs/control-protocol.md`): [`RemoteTarget`] starts the target's command once per
//! instance, with the path of a Unix socket in `LOADGEN_CONTROL`, and speaks JSON
//! lines over it. Driver connections are handed over with `SCM_RIGHTS`; the target's
//! `on_recv` / `on_close` callbacks come back as events, run here on one thread per
//! worker, and are acknowledged when they return (so that a callback that blocks here
//! blocks that worker there, as it would in process).

pub mod messages;
pub mod proto;
mod server;

pub use server::serve_control;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::{Config, DriverError, EngineError, Metrics, WorkerState};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    set_callback_thread, BuildError, Built, Capability, DriverLoop, Host, Instance, ListenState,
    OnClose, OnRecv, Rejected, Selected, Status, Target, TypeReport,
};
use messages::{
    from_value, Ack, Count, Entered, Fd, Numbered, Paused, Request, SelectedAnswer, Sequenced,
    Started, StateAnswer, StatusAnswer, Unregistered,
};
use proto::{ENV_SOCKET, PROTOCOL, VERSION};

/// How long the command may take to connect and say hello.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// How long one request may take (a 64 MiB write included).
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// What the target said in its `hello`.
#[derive(Debug, Clone)]
struct Hello {
    name: String,
    capabilities: Vec<Capability>,
    /// The target's process (0 if it did not say).
    pid: u32,
}

/// A target started from a command line, one process per instance.
#[derive(Debug)]
pub struct RemoteTarget {
    command: String,
    hello: Hello,
}

impl RemoteTarget {
    /// Checks the command: starts it once, reads its `hello` (name, capabilities,
    /// protocol version) and stops it. Errors are one line.
    pub fn new(command: &str) -> Result<RemoteTarget, String> {
        if command.trim().is_empty() {
            return Err("--target-cmd is empty: give the command that starts your target, e.g. 'loadgen serve --control'".into());
        }
        let process = Process::spawn(command)?;
        let hello = process.hello.clone();
        drop(process);
        Ok(RemoteTarget {
            command: command.to_string(),
            hello,
        })
    }
}

impl Target for RemoteTarget {
    fn name(&self) -> String {
        format!("{} (via {})", self.hello.name, self.command)
    }
    fn capabilities(&self) -> &[Capability] {
        &self.hello.capabilities
    }
    fn start(&self, cfg: &Config, tag: &str) -> Result<Arc<dyn Instance>, String> {
        let process = Process::spawn(&self.command)?;
        let ok = process
            .conn
            .request(
                Request::Start {
                    config: proto::config_to_json(cfg),
                    tag: tag.to_string(),
                },
                None,
            )
            .map_err(|e| format!("start: {}", message(&e)))?;
        let started: Started = from_value(&ok);
        let addr: SocketAddr = started
            .addr
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("start: the answer has no valid addr: {ok}"))?;
        let workers = started.workers as usize;
        Ok(Arc::new(RemoteInstance {
            process,
            addr,
            workers,
            config: cfg.clone(),
        }))
    }
    fn host(&self) -> Result<Box<dyn Host>, String> {
        Ok(Box::new(RemoteHost {
            process: Arc::new(Process::spawn(&self.command)?),
        }))
    }
}

/// A fresh target process, before `new`.
struct RemoteHost {
    process: Arc<Process>,
}

impl Host for RemoteHost {
    fn pid(&self) -> u32 {
        self.process.pid
    }
    fn build(&self, cfg: &Config, tag: &str) -> Result<Box<dyn Built>, BuildError> {
        let msg = Request::New {
            config: proto::config_to_json(cfg),
            tag: tag.to_string(),
        };
        match self.process.conn.request(msg, None) {
            Ok(_) => Ok(Box::new(RemoteBuilt {
                process: Arc::clone(&self.process),
            })),
            // Not the engine's answer: the target could not be asked.
            Err(e)
                if matches!(
                    e.get("kind").and_then(Value::as_str),
                    Some("transport" | "bad-request" | "unsupported") | None
                ) =>
            {
                Err(BuildError::Host(format!(
                    "{}: {}",
                    e.get("kind").and_then(Value::as_str).unwrap_or("error"),
                    message(&e)
                )))
            }
            // The engine's answer (right or wrong: the check judges it).
            Err(e) => Err(BuildError::Rejected(Rejected {
                error: proto::engine_error_from_json(&e),
                message: message(&e),
                handler_released: e.get("handler_released").and_then(Value::as_bool),
            })),
        }
    }
}

/// An engine the target built with `new` (its process stops when this and the host
/// are dropped).
struct RemoteBuilt {
    process: Arc<Process>,
}

impl Built for RemoteBuilt {
    fn status(&self) -> Result<Status, String> {
        let v = self
            .process
            .conn
            .request(Request::Status, None)
            .map_err(|e| format!("status: {}", message(&e)))?;
        let answer: StatusAnswer = from_value(&v);
        let addr = match answer.addr {
            None => None,
            Some(a) => Some(
                a.parse()
                    .map_err(|_| format!("status: addr {a:?} is not host:port"))?,
            ),
        };
        let shown = answer
            .engine_type
            .ok_or_else(|| format!("status: no engine_type in {v}"))?;
        let listen = match answer.listen.as_deref() {
            Some("idle") => ListenState::Idle,
            Some("running") => ListenState::Running,
            Some("returned") => ListenState::Returned(match answer.listen_error {
                Some(e) => Err(e),
                None => Ok(()),
            }),
            _ => {
                return Err(format!(
                    "status: listen is not idle, running or returned: {v}"
                ))
            }
        };
        Ok(Status {
            addr,
            workers: answer
                .workers
                .ok_or_else(|| format!("status: no workers in {v}"))? as usize,
            engine_type: TypeReport {
                typed: proto::engine_type_from_name(&shown),
                shown,
            },
            listen,
        })
    }
    fn select(&self, n: i64, strict: bool) -> Result<Option<Selected>, String> {
        let msg = Request::WorkerLoop {
            n,
            strict: Some(strict),
        };
        match self.process.conn.request(msg, None) {
            Ok(v) => {
                let answer: SelectedAnswer = from_value(&v);
                match (answer.index, answer.thread_id) {
                    (Some(index), Some(tid)) => Ok(Some(Selected {
                        index: index as usize,
                        thread_id: tid as i32,
                    })),
                    _ => Err(format!(
                        "worker_loop: an answer without index and thread_id: {v}"
                    )),
                }
            }
            Err(e) => match e.get("kind").and_then(Value::as_str) {
                // try_worker_loop's None.
                Some("not-listening") if !strict => Ok(None),
                // worker_loop's refusal: the engine's own words.
                Some("panic" | "not-listening") => Err(message(&e)),
                kind => Err(format!(
                    "worker_loop: not a refusal but a {} error: {}",
                    kind.unwrap_or("malformed"),
                    message(&e)
                )),
            },
        }
    }
    fn listen(&self) -> Result<(), String> {
        self.process
            .conn
            .request(Request::Listen, None)
            .map(drop)
            .map_err(|e| format!("listen: {}", message(&e)))
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.process
            .conn
            .request(
                Request::Shutdown {
                    grace_ms: grace.as_millis() as u64,
                },
                None,
            )
            .map(drop)
            .map_err(|e| proto::engine_error_from_json(&e))
    }
}

fn message(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_string)
}

/// The callbacks of one registration.
struct Callbacks {
    on_recv: OnRecv,
    on_close: Option<OnClose>,
}

/// A registration's callbacks, keyed by (worker, harness fd).
type Shared = Arc<Mutex<Callbacks>>;

/// An event for a worker's callback thread.
struct Event {
    msg: Value,
}

/// The control connection: requests with ids, their answers, and events.
struct Conn {
    /// The instance's number in this process: marks its lines in the trace.
    instance: u64,
    writer: Mutex<UnixStream>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Sender<Result<Value, Value>>>>,
    callbacks: Mutex<HashMap<(u64, i32), Shared>>,
    workers: Mutex<HashMap<u64, Sender<Event>>>,
}

/// `LOADGEN_CONTROL_TRACE`: the file every control line is appended to.
static TRACE: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();

/// Appends `line` to the trace file, marked with its direction (`>` sent, `<`
/// received) and the instance it belongs to: `>3 {...}`.
fn trace(direction: &str, instance: u64, line: &[u8]) {
    let file = TRACE.get_or_init(|| {
        let path = std::env::var_os(proto::ENV_TRACE)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    });
    if let Some(f) = file {
        let line = String::from_utf8_lossy(line);
        let _ = writeln!(lock(f), "{direction}{instance} {}", line.trim_end());
    }
}

impl Conn {
    fn send(&self, msg: &impl Serialize, fds: &[RawFd]) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        trace(">", self.instance, &line);
        line.push(b'\n');
        let w = lock(&self.writer);
        if fds.is_empty() {
            (&*w).write_all(&line)
        } else {
            engine::sys::unix::send_with_fds(&w, &line, fds)
        }
    }

    /// Sends `msg` (with an id) and waits for its answer: `Ok(ok)` or `Err(error)`.
    fn request(&self, request: Request, fd: Option<RawFd>) -> Result<Value, Value> {
        let id = self.next_id.fetch_add(1, SeqCst);
        let msg = Numbered {
            id,
            request: &request,
        };
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(id, tx);
        let fds: Vec<RawFd> = fd.into_iter().collect();
        if let Err(e) = self.send(&msg, &fds) {
            lock(&self.pending).remove(&id);
            return Err(proto::error_object(
                "transport",
                &format!("sending to the target: {e}"),
                json!({}),
            ));
        }
        match rx.recv_timeout(REQUEST_DEADLINE) {
            Ok(r) => r,
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(proto::error_object(
                    "transport",
                    &format!(
                        "no answer to {:?} within {} s (the target died or hangs)",
                        request.op(),
                        REQUEST_DEADLINE.as_secs()
                    ),
                    json!({}),
                ))
            }
        }
    }

    /// Routes one message from the target.
    fn dispatch(self: &Arc<Conn>, msg: Value) {
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            if let Some(tx) = lock(&self.pending).remove(&id) {
                let r = match msg.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(msg.get("ok").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(r);
            }
            return;
        }
        if msg.get("event").is_some() {
            let worker = msg.get("worker").and_then(Value::as_u64).unwrap_or(0);
            let mut workers = lock(&self.workers);
            let tx = workers.entry(worker).or_insert_with(|| {
                let (tx, rx) = mpsc::channel();
                let conn = Arc::clone(self);
                std::thread::Builder::new()
                    .name(format!("remote-callbacks-{worker}"))
                    .spawn(move || conn.run_callbacks(rx))
                    .expect("spawning a callback thread");
                tx
            });
            let _ = tx.send(Event { msg });
        }
    }

    /// Runs one worker's callbacks in order, acknowledging each when it returns.
    fn run_callbacks(self: Arc<Conn>, rx: Receiver<Event>) {
        for Event { msg } in rx {
            let seq = msg.get("seq").and_then(Value::as_u64);
            // An event this side does not know is acknowledged and otherwise ignored.
            if let Ok(Sequenced { tid, event, .. }) = serde_json::from_value::<Sequenced>(msg) {
                set_callback_thread(Some(tid));
                self.callback(event);
                set_callback_thread(None);
            }
            let _ = self.send(&Ack { ack: seq }, &[]);
        }
    }

    /// Runs the callback of `event`'s registration, if it has one.
    fn callback(&self, event: messages::Event) {
        match event {
            messages::Event::Recv { worker, fd, data } => {
                let Some(cbs) = lock(&self.callbacks).get(&(worker, fd)).cloned() else {
                    return;
                };
                let data = proto::unb64(&data).unwrap_or_default();
                (lock(&cbs).on_recv)(&data);
            }
            messages::Event::Close { worker, fd, errno } => {
                let Some(cbs) = lock(&self.callbacks).remove(&(worker, fd)) else {
                    return;
                };
                let err = errno.map(std::io::Error::from_raw_os_error);
                let on_close = lock(&cbs).on_close.take();
                if let Some(f) = on_close {
                    f(err);
                }
            }
        }
    }
}

/// One target process and its control connection; stopped on drop.
struct Process {
    child: Mutex<Option<Child>>,
    conn: Arc<Conn>,
    hello: Hello,
    /// The process at the other end of the control socket (`SO_PEERCRED`): the one
    /// whose `/proc` the lifecycle checks read.
    pid: u32,
    path: PathBuf,
}

/// Unique socket names within this process.
static SOCKETS: AtomicU64 = AtomicU64::new(0);

impl Process {
    fn spawn(command: &str) -> Result<Process, String> {
        let instance = SOCKETS.fetch_add(1, SeqCst);
        let path = std::env::temp_dir().join(format!(
            "loadgen-control-{}-{instance}.sock",
            std::process::id(),
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket: {e}"))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .env(ENV_SOCKET, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("--target-cmd {command:?}: cannot start: {e}"))?;
        let stderr = child.stderr.take();
        let tail = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = stderr.map(|stderr| {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut t = lock(&tail);
                    t.push(line);
                    if t.len() > 5 {
                        t.remove(0);
                    }
                }
            })
        });
        // Every failure names how the target ended and the last lines it wrote: the
        // stderr reader is given time to reach the end of what the dead process wrote
        // (bounded: a grandchild may hold the pipe open).
        let fail = |child: &mut Child, what: String| {
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&path);
            if let Some(r) = &reader {
                let end = Instant::now() + Duration::from_secs(1);
                while !r.is_finished() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            let mut msg = what;
            if let Some(status) = exited.filter(|_| !msg.contains(" exited (")) {
                msg = format!("{msg} (it exited: {status})");
            }
            let said = lock(&tail).join(" | ");
            if !said.is_empty() {
                msg = format!("{msg} (its stderr: {said})");
            }
            if let Some(hint) = shell_syntax_hint(command) {
                msg = format!("{msg}; {hint}");
            }
            msg
        };
        let end = Instant::now() + CONNECT_DEADLINE;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(fail(&mut child, format!("control socket accept: {e}"))),
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(
                    &mut child,
                    format!("--target-cmd {command:?} exited ({status}) before connecting to ${ENV_SOCKET}"),
                ));
            }
            if Instant::now() >= end {
                return Err(fail(
                    &mut child,
                    format!(
                        "--target-cmd {command:?} did not connect to ${ENV_SOCKET} within {} s: does it speak the control protocol (docs/control-protocol.md)?",
                        CONNECT_DEADLINE.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = stream.set_nonblocking(false);
        let reader = stream
            .try_clone()
            .map_err(|e| fail(&mut child, format!("control socket: {e}")))?;
        let _ = reader.set_read_timeout(Some(CONNECT_DEADLINE));
        let mut lines = BufReader::new(reader);
        let mut first = String::new();
        let hello = match lines.read_line(&mut first) {
            Ok(n) if n > 0 => {
                trace("<", instance, first.as_bytes());
                parse_hello(&first)
            }
            Ok(_) => Err("the target closed the control socket before its hello".into()),
            Err(e) => Err(format!("reading the target's hello: {e}")),
        };
        let hello = match hello {
            Ok(h) => h,
            Err(e) => return Err(fail(&mut child, format!("--target-cmd {command:?}: {e}"))),
        };
        let peer = engine::sys::unix::peer_pid(lines.get_ref()).ok();
        let pid = match engine_pid(hello.pid, peer) {
            Ok(p) => p,
            Err(e) => return Err(fail(&mut child, format!("--target-cmd {command:?}: {e}"))),
        };
        let _ = lines.get_ref().set_read_timeout(None);
        let conn = Arc::new(Conn {
            instance,
            writer: Mutex::new(stream),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            callbacks: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
        });
        let reader_conn = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("remote-control".into())
            .spawn(move || read_loop(lines, reader_conn))
            .map_err(|e| format!("spawning the control reader: {e}"))?;
        Ok(Process {
            child: Mutex::new(Some(child)),
            conn,
            hello,
            pid,
            path,
        })
    }
}

/// A hint for a `--target-cmd` that uses shell syntax: it runs as `sh -c 'exec CMD'`,
/// so `cd dir && ./engine` execs `cd` (and fails) before `&&` is ever reached.
fn shell_syntax_hint(command: &str) -> Option<String> {
    ["&&", "||", ";", "|"]
        .iter()
        .find(|op| command.contains(**op))
        .map(|op| {
            format!(
                "the command runs as `sh -c 'exec COMMAND'`, so `{op}` does not do what it would in a shell; wrap it: --target-cmd \"sh -c '{}'\" (or use a script)",
                command.replace('\'', "'\\''")
            )
        })
}

/// The engine's process: the one at the other end of the control socket, which the
/// hello's `pid` (if given) must name; the harness reads its `/proc`, so it must not
/// take a target's word for it.
fn engine_pid(hello: u32, peer: Option<u32>) -> Result<u32, String> {
    match peer {
        Some(p) if hello == 0 || hello == p => Ok(p),
        Some(p) => Err(format!(
            "its hello names pid {hello}, but the process connected to ${ENV_SOCKET} is {p}: the engine must speak the protocol from its own process"
        )),
        None if hello != 0 => Ok(hello),
        None => Err("cannot tell which process it is (no SO_PEERCRED, no pid in its hello)".into()),
    }
}

fn read_loop(mut lines: BufReader<UnixStream>, conn: Arc<Conn>) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                trace("<", conn.instance, &line);
                if let Ok(msg) = serde_json::from_slice::<Value>(&line) {
                    conn.dispatch(msg);
                }
            }
        }
    }
    // The target is gone: every waiting request fails now rather than at its deadline.
    for (_, tx) in lock(&conn.pending).drain() {
        let _ = tx.send(Err(proto::error_object(
            "transport",
            "the target closed the control socket",
            json!({}),
        )));
    }
}

fn parse_hello(line: &str) -> Result<Hello, String> {
    let v: Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("its hello is not JSON: {e}"))?;
    let not_hello = || format!("its first line is not a {PROTOCOL} hello: {}", line.trim());
    let hello: messages::Hello = serde_json::from_value(v).map_err(|_| not_hello())?;
    if hello.hello.as_deref() != Some(PROTOCOL) {
        return Err(not_hello());
    }
    let version = hello.version.unwrap_or(0);
    if version != VERSION {
        return Err(format!(
            "it speaks {PROTOCOL} version {version}; this harness speaks version {VERSION}"
        ));
    }
    let mut capabilities = Vec::new();
    for c in hello
        .capabilities
        .ok_or("its hello has no capabilities array")?
    {
        let name = c.as_str().unwrap_or("");
        // Unknown capabilities (a newer target) are ignored.
        if let Some(cap) = Capability::ALL.into_iter().find(|k| k.name() == name) {
            capabilities.push(cap);
        }
    }
    Ok(Hello {
        name: hello.target.unwrap_or_else(|| "remote".to_string()),
        capabilities,
        pid: hello.pid.unwrap_or(0) as u32,
    })
}

impl Drop for Process {
    fn drop(&mut self) {
        // Closing the socket tells the target to exit; give it a moment, then kill.
        let _ = lock(&self.conn.writer).shutdown(std::net::Shutdown::Both);
        if let Some(mut child) = lock(&self.child).take() {
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running remote instance.
struct RemoteInstance {
    process: Process,
    addr: SocketAddr,
    workers: usize,
    config: Config,
}

impl RemoteInstance {
    fn call(&self, msg: Request) -> Result<Value, EngineError> {
        self.process
            .conn
            .request(msg, None)
            .map_err(|e| proto::engine_error_from_json(&e))
    }
}

impl Instance for RemoteInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn effective_config(&self) -> Option<Config> {
        Some(self.config.clone())
    }
    fn num_workers(&self) -> usize {
        self.workers
    }
    fn pid(&self) -> Option<u32> {
        Some(self.process.pid)
    }
    fn pause_accept(&self) -> Result<(), EngineError> {
        self.call(Request::PauseAccept).map(drop)
    }
    fn accept_paused(&self) -> bool {
        self.call(Request::AcceptPaused)
            .ok()
            .and_then(|v| from_value::<Paused>(&v).paused)
            .unwrap_or(false)
    }
    fn resume_accept(&self) -> Result<(), EngineError> {
        self.call(Request::ResumeAccept).map(drop)
    }
    fn pause_worker(&self, index: usize) -> Result<(), EngineError> {
        self.call(Request::PauseWorker { index }).map(drop)
    }
    fn resume_worker(&self, index: usize) -> Result<(), EngineError> {
        self.call(Request::ResumeWorker { index }).map(drop)
    }
    fn worker_state(&self, index: usize) -> Result<WorkerState, EngineError> {
        let v = self.call(Request::WorkerState { index })?;
        let state = from_value::<StateAnswer>(&v).state.unwrap_or_default();
        proto::state_from_name(&state).map_err(|e| EngineError::Io {
            what: e,
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })
    }
    fn worker_loop(&self, n: i64) -> Option<Arc<dyn DriverLoop>> {
        let v = self.call(Request::WorkerLoop { n, strict: None }).ok()?;
        let answer: SelectedAnswer = from_value(&v);
        Some(Arc::new(RemoteLoop {
            conn: Arc::clone(&self.process.conn),
            index: answer.index?,
            cpu_id: answer.cpu_id? as i32,
            tid: answer.thread_id? as i32,
        }))
    }
    fn metrics(&self) -> Metrics {
        self.call(Request::Metrics)
            .ok()
            .and_then(|v| proto::metrics_from_json(&v).ok())
            .unwrap_or_default()
    }
    fn shutdown(&self, grace: Duration) -> Result<(), EngineError> {
        self.call(Request::Shutdown {
            grace_ms: grace.as_millis() as u64,
        })
        .map(drop)
    }
    fn holds_entered(&self) -> u64 {
        self.call(Request::Holds)
            .ok()
            .and_then(|v| from_value::<Entered>(&v).entered)
            .unwrap_or(0)
    }
    fn release_holds(&self) {
        let _ = self.call(Request::ReleaseHolds);
    }
    fn sigpipes(&self) -> Option<Result<u64, String>> {
        Some(
            self.process
                .conn
                .request(Request::Sigpipes, None)
                .map_err(|e| message(&e))
                .and_then(|v| {
                    from_value::<Count>(&v)
                        .count
                        .ok_or_else(|| format!("sigpipes: no count in {v}"))
                }),
        )
    }
}

/// One worker of a remote instance.
struct RemoteLoop {
    conn: Arc<Conn>,
    index: u64,
    cpu_id: i32,
    tid: i32,
}

impl RemoteLoop {
    fn call(&self, msg: Request, fd: Option<RawFd>) -> Result<Value, DriverError> {
        self.conn
            .request(msg, fd)
            .map_err(|e| proto::driver_error_from_json(&e))
    }
}

impl DriverLoop for RemoteLoop {
    fn index(&self) -> usize {
        self.index as usize
    }
    fn cpu_id(&self) -> i32 {
        self.cpu_id
    }
    fn thread_id(&self) -> i32 {
        self.tid
    }
    fn register_boxed(
        &self,
        fd: RawFd,
        on_recv: OnRecv,
        on_close: OnClose,
    ) -> Result<(), DriverError> {
        let key = (self.index, fd);
        // A second registration of a registered fd must fail and leave the first one's
        // callbacks in place.
        let inserted = {
            let mut cbs = lock(&self.conn.callbacks);
            if fd >= 0 && !cbs.contains_key(&key) {
                cbs.insert(
                    key,
                    Arc::new(Mutex::new(Callbacks {
                        on_recv,
                        on_close: Some(on_close),
                    })),
                );
                true
            } else {
                false
            }
        };
        // A descriptor that is not open here cannot be attached: the target passes
        // the number through, and its engine answers for it.
        let open = fd >= 0 && engine::sys::socket::is_nonblocking(fd).is_ok();
        let r = self.call(
            Request::Register {
                worker: self.index,
                fd,
                attached: open,
            },
            open.then_some(fd),
        );
        if r.is_err() && inserted {
            lock(&self.conn.callbacks).remove(&key);
        }
        r.map(drop)
    }
    fn unregister_conn(&self, fd: RawFd) -> Result<(), DriverError> {
        let ok = self.call(
            Request::Unregister {
                worker: self.index,
                fd,
            },
            None,
        )?;
        if from_value::<Unregistered>(&ok).closed == Some(true) {
            // The engine closed its copy (which it must not). In process, the peer
            // would read EOF: make it so here, without closing a number the caller
            // still owns.
            let _ = engine::sys::socket::shutdown(fd, engine::sys::socket::Shutdown::Both);
        }
        Ok(())
    }
    fn write(&self, fd: RawFd, data: &[u8]) -> Result<(), DriverError> {
        self.write_timed(fd, data).0
    }
    /// The target's own measure of its call (`took_us` in the answer), or the round
    /// trip when a target does not send it.
    fn write_timed(&self, fd: RawFd, data: &[u8]) -> (Result<(), DriverError>, Duration) {
        let t0 = Instant::now();
        let r = self.call(
            Request::Write {
                worker: self.index,
                fd,
                data: proto::b64(data),
            },
            None,
        );
        let round_trip = t0.elapsed();
        match r {
            Ok(v) => {
                let took = v
                    .get("took_us")
                    .and_then(Value::as_u64)
                    .map_or(round_trip, Duration::from_micros);
                (Ok(()), took)
            }
            Err(e) => (Err(e), round_trip),
        }
    }
    fn register_engine_fd(
        &self,
        _local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<(RawFd, Result<(), DriverError>)> {
        match self.conn.request(
            Request::RegisterEngineFd {
                worker: self.index,
                peer: peer.to_string(),
            },
            None,
        ) {
            Ok(v) => Some((from_value::<Fd>(&v).fd? as RawFd, Ok(()))),
            Err(e) if e.get("kind").and_then(Value::as_str) == Some("not-found") => None,
            Err(e) => {
                let err = proto::driver_error_from_json(&e);
                let fd = e.get("fd").and_then(Value::as_i64).unwrap_or(-1) as RawFd;
                Some((fd, Err(err)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{engine_pid, parse_hello, PROTOCOL, VERSION};

    #[test]
    fn a_hello_with_a_mistyped_field_reads_that_field_as_absent() {
        let line = format!(
            r#"{{"hello":"{PROTOCOL}","version":{VERSION},"target":5,"pid":"12","capabilities":["http"]}}"#
        );
        let hello = parse_hello(&line).expect("the hello is accepted");
        assert_eq!((hello.name.as_str(), hello.pid), ("remote", 0));
        assert_eq!(hello.capabilities.len(), 1);
        let old = format!(r#"{{"hello":"{PROTOCOL}","version":"1","capabilities":[]}}"#);
        let e = parse_hello(&old).expect_err("a version that is not a number");
        assert!(e.contains("version 0; this harness speaks version"), "{e}");
        let e = parse_hello(r#"{"hello":"other"}"#).expect_err("another protocol");
        assert!(e.contains("is not a"), "{e}");
    }

    #[test]
    fn the_engine_pid_is_the_connected_process() {
        assert_eq!(engine_pid(0, Some(42)), Ok(42));
        assert_eq!(engine_pid(42, Some(42)), Ok(42));
        assert_eq!(engine_pid(42, None), Ok(42));
        let e = engine_pid(7, Some(42)).unwrap_err();
        assert!(e.contains("names pid 7") && e.contains("is 42"), "{e}");
        assert!(engine_pid(0, None).is_err());
    }
}
