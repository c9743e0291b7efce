//! Helpers shared by the `loadgen` binary's integration tests: an in-process engine to
//! load, a port nobody listens on, and the binary run with a deadline.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use engine::{Config, Engine};
use scenarios::targets::reference::Running;

/// An engine with one worker and `handler`, listening on `127.0.0.1:0` until dropped
/// (`scenarios`' in-process [`Running`]).
pub struct EngineServer {
    server: Running,
}

impl EngineServer {
    #[track_caller]
    pub fn start(handler: impl engine::Handler) -> EngineServer {
        let cfg = Config {
            workers: 1,
            ..Config::default()
        };
        let server =
            Running::start(cfg, handler).unwrap_or_else(|e| panic!("engine did not start: {e}"));
        EngineServer { server }
    }

    pub fn engine(&self) -> &Engine {
        self.server.engine()
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.server.addr())
    }
}

/// A loopback port that was free a moment ago and has no listener now.
pub fn unused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code (a signal death fails the test).
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("loadgen died of a signal: {self:?}"))
    }
}

/// Fails unless `out` is a usage error (exit 2) of one stderr line containing `want`,
/// with nothing on stdout: the command refused before doing anything.
#[track_caller]
pub fn assert_refused_up_front(out: &Output, want: &str) {
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains(want), "{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "ran scenarios anyway: {}",
        out.stdout
    );
}

/// Runs the `loadgen` binary with `args`; kills it and fails after `deadline`.
#[track_caller]
pub fn loadgen(args: &[&str], deadline: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes on their own threads so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen {args:?} still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A draft 2020-12 validator of the JSON Schema at `path`, with `format` checked too.
pub fn schema_validator(path: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{path} does not compile: {e}"))
}

/// Fails with every schema violation of `doc`, each with its path.
#[track_caller]
pub fn assert_schema_valid(v: &jsonschema::Validator, doc: &serde_json::Value, schema: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "document does not match {schema}:\n  {}",
        errors.join("\n  ")
    );
}

/// Tolerances for a busy machine: `LOADGEN_TEST_SLACK` (default 1) multiplies them.
pub fn slack() -> u32 {
    std::env::var("LOADGEN_TEST_SLACK")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1)
}

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The container arguments of the manifest `file` under `deploy/kubernetes/` (its
/// one-line `args: [...]` list, the first one when there are several), with each
/// `$(NAME)` replaced from `vars` as Kubernetes expands them from the pod's env.
#[track_caller]
pub fn pod_args(file: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let path = deploy_dir().join("kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("args:"))
        .unwrap_or_else(|| panic!("{path:?} has no one-line `args: [...]`"));
    let args: Vec<String> = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("{path:?}: the args line is not a list of strings: {e}"));
    args.into_iter()
        .map(|a| {
            vars.iter()
                .fold(a, |a, (k, v)| a.replace(&format!("$({k})"), v))
        })
        .collect()
}
