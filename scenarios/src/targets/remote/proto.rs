//! The control protocol's messages (`docs/control-protocol.md`): JSON codecs for the
//! configuration, metrics and errors, shared by the harness ([`super::RemoteTarget`])
//! and the reference implementation (`loadgen serve --control`).

use std::io;
use std::time::Duration;

use base64::Engine as _;
use engine::{
    Config, ConfigError, DriverError, EngineError, EngineType, Metrics, WorkerMetrics, WorkerState,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::messages::to_value;

/// The protocol's name, in the target's `hello`.
pub const PROTOCOL: &str = "loadgen-control";
/// The protocol version this side speaks.
pub const VERSION: u64 = 1;
/// The environment variable holding the control socket's path.
pub const ENV_SOCKET: &str = "LOADGEN_CONTROL";
/// The environment variable naming a file the harness appends every control line to
/// (`> ` sent, `< ` received): a transcript for debugging and replay.
pub const ENV_TRACE: &str = "LOADGEN_CONTROL_TRACE";

/// Base64 (standard, padded) of `data`.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes base64 (standard, padded).
pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("bad base64: {e}"))
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// A `config` object as the target receives it (durations in microseconds).
#[derive(Serialize)]
struct WireConfig<'a> {
    workers: usize,
    address: &'a str,
    pin_workers: bool,
    cpus: &'a [usize],
    listen_backlog: u32,
    read_buffer_size: usize,
    max_header_bytes: usize,
    max_body_bytes: usize,
    /// Added after version 1: sent only when not the default (see the protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_buffered_input: Option<usize>,
    idle_timeout_us: u64,
    header_timeout_us: u64,
    /// Added after version 1: sent only when not the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_timeout_us: Option<u64>,
    write_timeout_us: u64,
    drain_linger_us: u64,
    driver_write_cap: usize,
    tcp_defer_accept: bool,
    /// The fault to inject, by name; absent when there is none (only negative
    /// controls send it, so a target without faults never sees the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<String>,
}

/// The configuration as a `config` object (durations in microseconds).
pub fn config_to_json(cfg: &Config) -> Value {
    #[allow(unused_mut)]
    let mut fault = None;
    #[cfg(feature = "faults")]
    if let Some(f) = cfg.fault {
        fault = Some(f.name());
    }
    let defaults = Config::default();
    to_value(&WireConfig {
        workers: cfg.workers,
        address: &cfg.address,
        pin_workers: cfg.pin_workers,
        cpus: &cfg.cpus,
        listen_backlog: cfg.listen_backlog,
        read_buffer_size: cfg.read_buffer_size,
        max_header_bytes: cfg.max_header_bytes,
        max_body_bytes: cfg.max_body_bytes,
        max_buffered_input: (cfg.max_buffered_input != defaults.max_buffered_input)
            .then_some(cfg.max_buffered_input),
        idle_timeout_us: us(cfg.idle_timeout),
        header_timeout_us: us(cfg.header_timeout),
        body_timeout_us: (cfg.body_timeout != defaults.body_timeout).then(|| us(cfg.body_timeout)),
        write_timeout_us: us(cfg.write_timeout),
        drain_linger_us: us(cfg.drain_linger),
        driver_write_cap: cfg.driver_write_cap,
        tcp_defer_accept: cfg.tcp_defer_accept,
        fault,
    })
}

fn num(v: &Value, key: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("config.{key}: want a non-negative integer, got {v}"))
}

fn flag(v: &Value, key: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("config.{key}: want true or false, got {v}"))
}

/// A `config` object back into a [`Config`] (absent keys keep their defaults; an
/// unknown key is an error, so that a limit is never silently ignored).
pub fn config_from_json(v: &Value) -> Result<Config, String> {
    let obj = v.as_object().ok_or("config: want an object")?;
    let mut cfg = Config::default();
    for (key, v) in obj {
        match key.as_str() {
            "workers" => cfg.workers = num(v, key)? as usize,
            "address" => {
                cfg.address = v
                    .as_str()
                    .ok_or("config.address: want a string")?
                    .to_string()
            }
            "pin_workers" => cfg.pin_workers = flag(v, key)?,
            "cpus" => {
                cfg.cpus = v
                    .as_array()
                    .ok_or("config.cpus: want an array")?
                    .iter()
                    .map(|c| num(c, key).map(|c| c as usize))
                    .collect::<Result<_, _>>()?
            }
            "listen_backlog" => cfg.listen_backlog = num(v, key)?.min(u32::MAX as u64) as u32,
            "read_buffer_size" => cfg.read_buffer_size = num(v, key)? as usize,
            "max_header_bytes" => cfg.max_header_bytes = num(v, key)? as usize,
            "max_body_bytes" => cfg.max_body_bytes = num(v, key)? as usize,
            "max_buffered_input" => cfg.max_buffered_input = num(v, key)? as usize,
            "idle_timeout_us" => cfg.idle_timeout = Duration::from_micros(num(v, key)?),
            "header_timeout_us" => cfg.header_timeout = Duration::from_micros(num(v, key)?),
            "body_timeout_us" => cfg.body_timeout = Duration::from_micros(num(v, key)?),
            "write_timeout_us" => cfg.write_timeout = Duration::from_micros(num(v, key)?),
            "drain_linger_us" => cfg.drain_linger = Duration::from_micros(num(v, key)?),
            "driver_write_cap" => cfg.driver_write_cap = num(v, key)? as usize,
            "tcp_defer_accept" => cfg.tcp_defer_accept = flag(v, key)?,
            "fault" => match v {
                Value::Null => {}
                Value::String(name) => set_fault(&mut cfg, name)?,
                _ => return Err("config.fault: want a fault name or null".into()),
            },
            other => return Err(format!("config.{other}: unknown setting")),
        }
    }
    Ok(cfg)
}

#[cfg(feature = "faults")]
fn set_fault(cfg: &mut Config, name: &str) -> Result<(), String> {
    cfg.fault = Some(
        engine::faults::Fault::from_name(name)
            .ok_or(format!("config.fault: unknown fault {name:?}"))?,
    );
    Ok(())
}

#[cfg(not(feature = "faults"))]
fn set_fault(_cfg: &mut Config, name: &str) -> Result<(), String> {
    Err(format!(
        "config.fault {name:?}: this target is built without the faults feature"
    ))
}

/// A worker state's name.
pub fn state_name(s: WorkerState) -> &'static str {
    match s {
        WorkerState::Active => "active",
        WorkerState::Draining => "draining",
        WorkerState::Suspended => "suspended",
    }
}

/// A worker state from its name.
pub fn state_from_name(s: &str) -> Result<WorkerState, String> {
    match s {
        "active" => Ok(WorkerState::Active),
        "draining" => Ok(WorkerState::Draining),
        "suspended" => Ok(WorkerState::Suspended),
        other => Err(format!("unknown worker state {other:?}")),
    }
}

/// A `metrics` object.
#[derive(Serialize)]
struct WireMetrics {
    requests_served: u64,
    active_connections: u64,
    accepted: u64,
    closed: u64,
    errors: u64,
    bytes_read: u64,
    bytes_written: u64,
    workers: Vec<WireWorker>,
    migrates_listener_queue: Option<bool>,
}

/// One worker's entry of a `metrics` object.
#[derive(Serialize)]
struct WireWorker {
    index: usize,
    state: &'static str,
    active_connections: u64,
    accepted: u64,
}

/// A metrics snapshot as an object.
pub fn metrics_to_json(m: &Metrics) -> Value {
    to_value(&WireMetrics {
        requests_served: m.requests_served,
        active_connections: m.active_connections,
        accepted: m.accepted,
        closed: m.closed,
        errors: m.errors,
        bytes_read: m.bytes_read,
        bytes_written: m.bytes_written,
        workers: m
            .workers
            .iter()
            .map(|w| WireWorker {
                index: w.index,
                state: state_name(w.state),
                active_connections: w.active_connections,
                accepted: w.accepted,
            })
            .collect(),
        migrates_listener_queue: m.migrates_listener_queue,
    })
}

fn field(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A metrics object back into a snapshot.
pub fn metrics_from_json(v: &Value) -> Result<Metrics, String> {
    let mut m = Metrics::default();
    m.requests_served = field(v, "requests_served");
    m.active_connections = field(v, "active_connections");
    m.accepted = field(v, "accepted");
    m.closed = field(v, "closed");
    m.errors = field(v, "errors");
    m.bytes_read = field(v, "bytes_read");
    m.bytes_written = field(v, "bytes_written");
    m.migrates_listener_queue = v.get("migrates_listener_queue").and_then(Value::as_bool);
    for w in v
        .get("workers")
        .and_then(Value::as_array)
        .ok_or("metrics.workers: want an array")?
    {
        let state = state_from_name(w.get("state").and_then(Value::as_str).unwrap_or(""))?;
        m.workers.push(WorkerMetrics::new(
            field(w, "index") as usize,
            state,
            field(w, "active_connections"),
            field(w, "accepted"),
        ));
    }
    Ok(m)
}

/// An engine error as an `error` object.
pub fn engine_error_to_json(e: &EngineError) -> Value {
    let (kind, extra) = match e {
        EngineError::Config(ce) => ("config", config_error_fields(ce)),
        EngineError::AlreadyListening => ("already-listening", json!({})),
        EngineError::NotListening => ("not-listening", json!({})),
        EngineError::NoSuchWorker { index, count } => {
            ("no-such-worker", json!({ "index": index, "count": count }))
        }
        EngineError::WorkerGone(i) => ("worker-gone", json!({ "index": i })),
        EngineError::Io { what, source } => (
            "io",
            json!({ "what": what, "errno": source.raw_os_error() }),
        ),
        _ => ("other", json!({})),
    };
    error_object(kind, &e.to_string(), extra)
}

/// The sizes and timeouts a config error can name (the harness's `&'static str`s).
const SIZE_FIELDS: [&str; 5] = [
    "read_buffer_size",
    "max_header_bytes",
    "max_body_bytes",
    "max_buffered_input",
    "driver_write_cap",
];
const TIMEOUT_FIELDS: [&str; 5] = [
    "idle_timeout",
    "header_timeout",
    "body_timeout",
    "write_timeout",
    "drain_linger",
];

/// A config error's `field`, `reason` and `value` (see the protocol document).
fn config_error_fields(e: &ConfigError) -> Value {
    match e {
        ConfigError::ZeroWorkers => json!({"field": "workers", "reason": "zero"}),
        ConfigError::TooManyWorkers(n) => {
            json!({"field": "workers", "reason": "too-many", "value": n})
        }
        ConfigError::BadAddress(a) => {
            json!({"field": "address", "reason": "bad-address", "value": a})
        }
        ConfigError::ZeroSize(f) => json!({"field": f, "reason": "zero"}),
        ConfigError::BadTimeout { field, value } => {
            json!({"field": field, "reason": "bad-timeout", "value": us(*value)})
        }
        ConfigError::BadBacklog(n) => {
            json!({"field": "listen_backlog", "reason": "out-of-range", "value": n})
        }
        ConfigError::BadCpu(c) => json!({"field": "cpus", "reason": "out-of-range", "value": c}),
        #[allow(unreachable_patterns)]
        _ => json!({"reason": "other"}),
    }
}

/// A `config` error object back into the [`ConfigError`] it names (`None`: a field or
/// reason the harness does not know).
fn config_error_from_json(v: &Value) -> Option<ConfigError> {
    let field = v.get("field").and_then(Value::as_str)?;
    let reason = v.get("reason").and_then(Value::as_str)?;
    let value = v.get("value");
    let num = || value.and_then(Value::as_u64);
    Some(match (field, reason) {
        ("workers", "zero") => ConfigError::ZeroWorkers,
        ("workers", "too-many") => ConfigError::TooManyWorkers(num()? as usize),
        ("address", "bad-address") => {
            ConfigError::BadAddress(value.and_then(Value::as_str)?.to_string())
        }
        (f, "zero") => ConfigError::ZeroSize(SIZE_FIELDS.into_iter().find(|&k| k == f)?),
        (f, "bad-timeout") => ConfigError::BadTimeout {
            field: TIMEOUT_FIELDS.into_iter().find(|&k| k == f)?,
            value: Duration::from_micros(num()?),
        },
        ("listen_backlog", "out-of-range") => ConfigError::BadBacklog(num()? as u32),
        ("cpus", "out-of-range") => ConfigError::BadCpu(num()? as usize),
        _ => return None,
    })
}

/// The [`EngineType`] an `engine_type` name displays as (`None`: a name the harness
/// does not know).
pub fn engine_type_from_name(name: &str) -> Option<EngineType> {
    match name {
        "epoll" => Some(EngineType::Epoll),
        #[cfg(feature = "faults")]
        "unknown" => Some(EngineType::Unknown),
        _ => None,
    }
}

/// The same driver error, naming `fd` instead of the engine's own number.
fn renumbered(e: &DriverError, fd: i32) -> DriverError {
    match e {
        DriverError::UnknownFd(_) => DriverError::UnknownFd(fd),
        DriverError::QueueFull {
            pending, len, cap, ..
        } => DriverError::QueueFull {
            fd,
            pending: *pending,
            len: *len,
            cap: *cap,
        },
        DriverError::NegativeFd(_) => DriverError::NegativeFd(fd),
        DriverError::AlreadyRegistered(_) => DriverError::AlreadyRegistered(fd),
        DriverError::HttpConn(_) => DriverError::HttpConn(fd),
        DriverError::Blocking(_) => DriverError::Blocking(fd),
        DriverError::Io { source, .. } => DriverError::Io {
            fd,
            source: match source.raw_os_error() {
                Some(n) => io::Error::from_raw_os_error(n),
                None => io::Error::new(source.kind(), source.to_string()),
            },
        },
        DriverError::WorkerGone => DriverError::WorkerGone,
        other => DriverError::Io {
            fd,
            source: io::Error::other(other.to_string()),
        },
    }
}

/// A driver error as an `error` object (`fd` as the harness numbers it, in the
/// fields and in the message).
pub fn driver_error_to_json(e: &DriverError, harness_fd: i32) -> Value {
    let e = &renumbered(e, harness_fd);
    let fd = json!({ "fd": harness_fd });
    let (kind, extra) = match e {
        DriverError::UnknownFd(_) => ("unknown-fd", fd),
        DriverError::QueueFull {
            pending, len, cap, ..
        } => (
            "queue-full",
            json!({ "fd": harness_fd, "pending": pending, "len": len, "cap": cap }),
        ),
        DriverError::NegativeFd(_) => ("negative-fd", fd),
        DriverError::AlreadyRegistered(_) => ("already-registered", fd),
        DriverError::HttpConn(_) => ("http-conn", fd),
        DriverError::Blocking(_) => ("blocking", fd),
        DriverError::WorkerGone => ("worker-gone", json!({})),
        DriverError::Io { source, .. } => (
            "io",
            json!({ "fd": harness_fd, "errno": source.raw_os_error() }),
        ),
        _ => ("other", json!({})),
    };
    error_object(kind, &e.to_string(), extra)
}

/// `{"kind": .., "message": .., ...extra}`.
pub fn error_object(kind: &str, message: &str, extra: Value) -> Value {
    let mut obj = Map::new();
    obj.insert("kind".into(), kind.into());
    obj.insert("message".into(), message.into());
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    Value::Object(obj)
}

fn errno_error(v: &Value) -> io::Error {
    match v.get("errno").and_then(Value::as_i64) {
        Some(n) => io::Error::from_raw_os_error(n as i32),
        None => io::Error::other(
            v.get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string(),
        ),
    }
}

/// An `error` object back into an engine error (anything unknown: `Io` with the
/// message).
pub fn engine_error_from_json(v: &Value) -> EngineError {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    match kind {
        "config" => match config_error_from_json(v) {
            Some(ce) => EngineError::Config(ce),
            None => EngineError::Io {
                what: format!(
                    "config error the harness cannot map (field {:?}, reason {:?}): {}",
                    v.get("field"),
                    v.get("reason"),
                    v.get("message").and_then(Value::as_str).unwrap_or("")
                ),
                source: io::Error::other("unmapped config error"),
            },
        },
        "already-listening" => EngineError::AlreadyListening,
        "not-listening" => EngineError::NotListening,
        "no-such-worker" => EngineError::NoSuchWorker {
            index: field(v, "index") as usize,
            count: field(v, "count") as usize,
        },
        "worker-gone" => EngineError::WorkerGone(field(v, "index") as usize),
        _ => EngineError::Io {
            what: format!(
                "{kind}: {}",
                v.get("message").and_then(Value::as_str).unwrap_or("")
            ),
            source: errno_error(v),
        },
    }
}

/// An `error` object back into a driver error.
pub fn driver_error_from_json(v: &Value) -> DriverError {
    let fd = v.get("fd").and_then(Value::as_i64).unwrap_or(-1) as i32;
    match v.get("kind").and_then(Value::as_str).unwrap_or("") {
        "unknown-fd" => DriverError::UnknownFd(fd),
        "queue-full" => DriverError::QueueFull {
            fd,
            pending: field(v, "pending") as usize,
            len: field(v, "len") as usize,
            cap: field(v, "cap") as usize,
        },
        "negative-fd" => DriverError::NegativeFd(fd),
        "already-registered" => DriverError::AlreadyRegistered(fd),
        "http-conn" => DriverError::HttpConn(fd),
        "blocking" => DriverError::Blocking(fd),
        "worker-gone" => DriverError::WorkerGone,
        _ => DriverError::Io {
            fd,
            source: errno_error(v),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips() {
        let cfg = Config {
            workers: 3,
            max_header_bytes: 4096,
            idle_timeout: Duration::from_millis(300),
            tcp_defer_accept: true,
            cpus: vec![1, 0],
            ..Config::default()
        };
        let back = config_from_json(&config_to_json(&cfg)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{cfg:?}"));
        // Keys added after version 1 go out only when set, so an older target keeps
        // working; set, they round-trip.
        let plain = config_to_json(&Config::default());
        for key in ["max_buffered_input", "body_timeout_us"] {
            assert!(
                plain.get(key).is_none(),
                "{key} sent at its default: {plain}"
            );
        }
        let set = Config {
            max_buffered_input: 1 << 20,
            body_timeout: Duration::from_millis(700),
            ..Config::default()
        };
        let back = config_from_json(&config_to_json(&set)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{set:?}"));
        // Every config error the engine can return survives the trip.
        for ce in [
            ConfigError::ZeroWorkers,
            ConfigError::TooManyWorkers(2000),
            ConfigError::BadAddress("x".into()),
            ConfigError::ZeroSize("max_body_bytes"),
            ConfigError::BadTimeout {
                field: "drain_linger",
                value: Duration::from_secs(90_000),
            },
            ConfigError::BadBacklog(0),
            ConfigError::BadCpu(5000),
        ] {
            let shown = ce.to_string();
            let back = engine_error_from_json(&engine_error_to_json(&EngineError::Config(ce)));
            assert!(
                matches!(&back, EngineError::Config(b) if b.to_string() == shown),
                "{shown} came back as {back:?}"
            );
        }
        let unknown = json!({"kind": "config", "message": "m", "field": "frobs", "reason": "zero"});
        assert!(matches!(
            engine_error_from_json(&unknown),
            EngineError::Io { .. }
        ));
        let err = config_from_json(&json!({"max_headers": 1})).unwrap_err();
        assert!(err.contains("config.max_headers: unknown setting"), "{err}");
    }

    #[test]
    fn errors_round_trip() {
        let e = DriverError::QueueFull {
            fd: 99,
            pending: 5,
            len: 7,
            cap: 10,
        };
        let back = driver_error_from_json(&driver_error_to_json(&e, 12));
        assert!(
            matches!(
                back,
                DriverError::QueueFull {
                    fd: 12,
                    pending: 5,
                    len: 7,
                    cap: 10
                }
            ),
            "{back:?}"
        );
        let e = EngineError::NoSuchWorker { index: 9, count: 2 };
        let back = engine_error_from_json(&engine_error_to_json(&e));
        assert!(matches!(
            back,
            EngineError::NoSuchWorker { index: 9, count: 2 }
        ));
        let e = DriverError::Io {
            fd: 3,
            source: io::Error::from_raw_os_error(libc::EPIPE),
        };
        let back = driver_error_from_json(&driver_error_to_json(&e, 4));
        assert_eq!(back.raw_os_error(), Some(libc::EPIPE));
    }
}
