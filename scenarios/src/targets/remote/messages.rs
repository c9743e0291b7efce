//! The control protocol's lines as serde types (`docs/control-protocol.md`), shared by
//! the harness ([`super::RemoteTarget`]) and the server end ([`super::serve_control`]).
//!
//! The wire format is the document's: field names, `null`s and absent fields are as
//! it says (an `Option` serializes as `null` unless marked to be left out). Error
//! objects and the `config` / `metrics` objects have their own codecs in
//! [`super::proto`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The target's first line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Hello {
    /// The protocol's name ([`super::proto::PROTOCOL`]).
    #[serde(deserialize_with = "lenient")]
    pub hello: Option<String>,
    /// The protocol version it speaks.
    #[serde(deserialize_with = "lenient")]
    pub version: Option<u64>,
    /// Its name in reports.
    #[serde(deserialize_with = "lenient")]
    pub target: Option<String>,
    /// The capabilities it declares, by name.
    #[serde(deserialize_with = "lenient")]
    pub capabilities: Option<Vec<Value>>,
    /// The engine's process.
    #[serde(deserialize_with = "lenient")]
    pub pid: Option<u64>,
}

/// A request from the harness (`op` names it), without its `id`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `new`: build an engine without listening.
    New {
        /// The configuration ([`super::proto::config_to_json`]).
        config: Value,
        /// What the instance answers on `/id`.
        tag: String,
    },
    /// `start`: `new`, then `listen`, answered once it listens ([`Started`]).
    Start {
        /// The configuration ([`super::proto::config_to_json`]).
        config: Value,
        /// What the instance answers on `/id`.
        tag: String,
    },
    /// `listen` in the background.
    Listen,
    /// The built engine's [`StatusAnswer`].
    Status,
    /// `shutdown(grace)`.
    Shutdown {
        /// The grace period, in milliseconds.
        grace_ms: u64,
    },
    /// `pause_accept()`.
    PauseAccept,
    /// `resume_accept()`.
    ResumeAccept,
    /// `accept_paused()` ([`Paused`]).
    AcceptPaused,
    /// `pause_worker(index)`.
    PauseWorker {
        /// The worker.
        index: usize,
    },
    /// `resume_worker(index)`.
    ResumeWorker {
        /// The worker.
        index: usize,
    },
    /// `worker_state(index)` ([`StateAnswer`]).
    WorkerState {
        /// The worker.
        index: usize,
    },
    /// `worker_loop(n)` ([`SelectedAnswer`]).
    WorkerLoop {
        /// The number to select with.
        n: i64,
        /// `worker_loop` (which panics before listening) rather than `try_worker_loop`;
        /// left out for the latter.
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
    /// `metrics()`.
    Metrics,
    /// How many `/hold` requests entered the handler ([`Entered`]).
    Holds,
    /// Lets the `/hold` requests through.
    ReleaseHolds,
    /// The target process's SIGPIPE count ([`Count`]).
    Sigpipes,
    /// `register_conn` on a worker (the fd comes with the line when `attached`).
    Register {
        /// The worker.
        worker: u64,
        /// The harness's fd number.
        fd: i32,
        /// Whether the fd is attached (`SCM_RIGHTS`).
        attached: bool,
    },
    /// `unregister_conn` ([`Unregistered`]).
    Unregister {
        /// The worker.
        worker: u64,
        /// The harness's fd number.
        fd: i32,
    },
    /// The driver's `write`.
    Write {
        /// The worker.
        worker: u64,
        /// The harness's fd number.
        fd: i32,
        /// The bytes, base64.
        data: String,
    },
    /// Registers the engine's own fd of its HTTP connection from `peer` ([`Fd`]).
    RegisterEngineFd {
        /// The worker.
        worker: u64,
        /// The client's address, `host:port`.
        peer: String,
    },
}

impl Request {
    /// Its `op`.
    pub fn op(&self) -> &'static str {
        match self {
            Request::New { .. } => "new",
            Request::Start { .. } => "start",
            Request::Listen => "listen",
            Request::Status => "status",
            Request::Shutdown { .. } => "shutdown",
            Request::PauseAccept => "pause_accept",
            Request::ResumeAccept => "resume_accept",
            Request::AcceptPaused => "accept_paused",
            Request::PauseWorker { .. } => "pause_worker",
            Request::ResumeWorker { .. } => "resume_worker",
            Request::WorkerState { .. } => "worker_state",
            Request::WorkerLoop { .. } => "worker_loop",
            Request::Metrics => "metrics",
            Request::Holds => "holds",
            Request::ReleaseHolds => "release_holds",
            Request::Sigpipes => "sigpipes",
            Request::Register { .. } => "register",
            Request::Unregister { .. } => "unregister",
            Request::Write { .. } => "write",
            Request::RegisterEngineFd { .. } => "register_engine_fd",
        }
    }
}

/// A request on the wire: its `id` and the request.
#[derive(Debug, Serialize)]
pub struct Numbered<'a> {
    /// Matches the answer to the request.
    pub id: u64,
    /// The request.
    #[serde(flatten)]
    pub request: &'a Request,
}

/// The answer to a request: `{"id", "ok"}` or `{"id", "error"}`.
#[derive(Debug, Serialize)]
pub struct Reply {
    /// The request's `id` (`null` for a line that was not JSON).
    pub id: Value,
    /// The outcome.
    #[serde(flatten)]
    pub body: ReplyBody,
}

/// What a [`Reply`] carries.
#[derive(Debug, Serialize)]
pub enum ReplyBody {
    /// The operation's answer.
    #[serde(rename = "ok")]
    Ok(Value),
    /// An error object ([`super::proto::error_object`]).
    #[serde(rename = "error")]
    Error(Value),
}

/// A driver callback, sent by the target from its worker thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `on_recv(data)`.
    Recv {
        /// The worker.
        #[serde(default)]
        worker: u64,
        /// The harness's fd number.
        #[serde(default = "no_fd")]
        fd: i32,
        /// The bytes, base64.
        #[serde(default)]
        data: String,
    },
    /// `on_close(errno)`.
    Close {
        /// The worker.
        #[serde(default)]
        worker: u64,
        /// The harness's fd number.
        #[serde(default = "no_fd")]
        fd: i32,
        /// The error (`null`: a clean close).
        #[serde(default)]
        errno: Option<i32>,
    },
}

fn no_fd() -> i32 {
    -1
}

/// An event on the wire: its sequence number (for the ack) and the worker thread.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sequenced {
    /// What the harness acknowledges.
    #[serde(default)]
    pub seq: Option<u64>,
    /// The worker thread's kernel thread id.
    #[serde(default)]
    pub tid: i32,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// The harness's acknowledgement that an event's callback returned.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ack {
    /// The event's `seq`.
    pub ack: Option<u64>,
}

/// `start`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Started {
    /// Where it listens, `host:port`.
    #[serde(deserialize_with = "lenient")]
    pub addr: Option<String>,
    /// Its workers.
    pub workers: u64,
}

/// `status`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusAnswer {
    /// `addr()`, `null` until every worker listens.
    #[serde(deserialize_with = "lenient")]
    pub addr: Option<String>,
    /// `num_workers()`.
    #[serde(deserialize_with = "lenient")]
    pub workers: Option<u64>,
    /// `engine_type()` as displayed.
    #[serde(deserialize_with = "lenient")]
    pub engine_type: Option<String>,
    /// `idle`, `running` or `returned`.
    #[serde(deserialize_with = "lenient")]
    pub listen: Option<String>,
    /// What `listen` returned, when it returned an error.
    #[serde(deserialize_with = "lenient")]
    pub listen_error: Option<String>,
}

/// `worker_loop`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectedAnswer {
    /// The worker's index.
    #[serde(deserialize_with = "lenient")]
    pub index: Option<u64>,
    /// Its pinned CPU or -1.
    #[serde(deserialize_with = "lenient")]
    pub cpu_id: Option<i64>,
    /// Its kernel thread id.
    #[serde(deserialize_with = "lenient")]
    pub thread_id: Option<i64>,
}

/// `accept_paused`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Paused {
    /// Whether accepting is paused engine-wide.
    #[serde(deserialize_with = "lenient")]
    pub paused: Option<bool>,
}

/// `worker_state`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StateAnswer {
    /// `active`, `draining` or `suspended`.
    #[serde(deserialize_with = "lenient")]
    pub state: Option<String>,
}

/// `holds`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Entered {
    /// `/hold` requests that entered the handler so far.
    #[serde(deserialize_with = "lenient")]
    pub entered: Option<u64>,
}

/// `sigpipes`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Count {
    /// SIGPIPEs the target's process received so far.
    #[serde(deserialize_with = "lenient")]
    pub count: Option<u64>,
}

/// `unregister`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Unregistered {
    /// Whether the engine closed its copy of the fd (which it must not).
    #[serde(deserialize_with = "lenient")]
    pub closed: Option<bool>,
}

/// `register_engine_fd`'s answer.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Fd {
    /// The engine's fd number.
    #[serde(deserialize_with = "lenient")]
    pub fd: Option<i64>,
}

/// An answer with no fields.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Done {}

/// An answer as JSON (what [`ReplyBody::Ok`] carries).
pub fn to_value(answer: &impl Serialize) -> Value {
    serde_json::to_value(answer).unwrap_or(Value::Null)
}

/// A field of a peer's line that is there but of another type reads as absent, like
/// a missing one: the harness's use of each field then says what it wanted (and a
/// peer that gets one field wrong is told about that field, not about the line).
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// An answer read from JSON; one that does not fit reads as empty (every field
/// absent), and the harness's use of each field says what it wanted.
pub fn from_value<T: for<'de> Deserialize<'de> + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}
