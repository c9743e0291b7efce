//! The targets of the bench matrix: what a spec names, and the servers it starts
//! (the embedded engine as `loadgen serve`, a user's command, nginx).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use scenarios::targets::{on_free_port, StartError};

use crate::load::Target;
use crate::server::Server;

/// How long the embedded server may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(5);

/// What a target spec names.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// `embedded`.
    Embedded,
    /// `nginx`.
    Nginx,
    /// A URL, loaded as it is.
    Url(Target),
    /// A command with `{addr}` or `{port}`.
    Command(String),
}

/// Parses what `flag` names.
pub fn parse_spec(flag: &str, spec: &str) -> Result<Spec, String> {
    let spec = spec.trim();
    if spec == "embedded" {
        Ok(Spec::Embedded)
    } else if spec == "nginx" {
        Ok(Spec::Nginx)
    } else if spec.contains("{addr}") || spec.contains("{port}") {
        Ok(Spec::Command(spec.to_string()))
    } else if spec.contains("://") {
        Target::parse(spec)
            .map(Spec::Url)
            .map_err(|e| format!("{flag} {e}"))
    } else {
        Err(format!(
            "{flag} {spec:?}: not `embedded`, `nginx`, a URL http://host:port/ or a command with {{addr}} or {{port}} where the server should listen"
        ))
    }
}

/// A target of the matrix.
#[derive(Debug)]
pub struct BenchTarget {
    /// Its name in the results.
    pub name: String,
    /// What the user gave: `embedded`, `nginx`, the URL or the command.
    pub spec: String,
    /// `http://host:port` (no trailing slash).
    pub base: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server, when the bench started it.
    pub server: Option<Server>,
    /// Workloads this target cannot serve, with the reason.
    pub skips: Vec<(&'static str, &'static str)>,
}

/// Starts (or, for a URL, names) the target `spec` of `flag`, called `name`.
pub fn start_target(
    flag: &str,
    name: &str,
    spec: &str,
    idle: usize,
    deadline: Duration,
    note: &mut dyn FnMut(String),
) -> Result<BenchTarget, String> {
    let parsed = parse_spec(flag, spec)?;
    let server = match &parsed {
        Spec::Embedded => Some(embedded()?),
        Spec::Nginx => Some(super::nginx::start(idle, deadline)?),
        Spec::Command(c) => Some(command(c, deadline)?),
        Spec::Url(_) => None,
    };
    let (base, addr) = match (&parsed, &server) {
        (Spec::Url(t), _) => (format!("http://{}", t.host), t.addr),
        (_, Some(s)) => (format!("http://{}", s.addr()), s.addr()),
        (_, None) => unreachable!("every other spec starts a server"),
    };
    if let Some(s) = &server {
        let pin = match s.pinned_cpu() {
            Some(c) => format!("pinned to CPU {c}"),
            None => "not pinned (no taskset)".into(),
        };
        note(format!("bench: {name}: pid {} on {base}, {pin}", s.pid()));
    }
    let skips = match parsed {
        Spec::Nginx => vec![(
            "post-4k",
            "nginx cannot echo a request body without third-party modules",
        )],
        _ => Vec::new(),
    };
    Ok(BenchTarget {
        name: name.to_string(),
        spec: spec.to_string(),
        base,
        addr,
        server,
        skips,
    })
}

/// `loadgen serve --workers 1` on port 0; the address comes from its first line.
pub fn embedded() -> Result<Server, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("bench: cannot find the loadgen executable: {e}"))?;
    let args: Vec<String> = ["serve", "--addr", "127.0.0.1:0", "--workers", "1"]
        .map(String::from)
        .into();
    let (mut server, rx) = Server::spawn(&exe, &args, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let end = Instant::now() + START_DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = serving_addr(&line) {
                    server.set_addr(addr);
                    return Ok(server);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "bench: the embedded server did not report its address within {}s \
                     (stderr: {:?}): check that `loadgen serve` starts",
                    START_DEADLINE.as_secs(),
                    server.stderr_tail()
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "bench: the embedded server exited before listening (stderr: {:?})",
                    server.stderr_tail()
                ))
            }
        }
    }
}

/// A user's command with `{addr}` / `{port}` replaced by a free loopback port, run
/// as `sh -c 'exec CMD'` so that the child's pid is the server's.
pub fn command(template: &str, deadline: Duration) -> Result<Server, String> {
    on_free_port(|addr| command_on(template, deadline, addr).map_err(StartError::from_output))
        .map_err(String::from)
}

fn command_on(template: &str, deadline: Duration, addr: SocketAddr) -> Result<Server, String> {
    let cmd = template
        .replace("{addr}", &addr.to_string())
        .replace("{port}", &addr.port().to_string());
    let args = vec!["-c".to_string(), format!("exec {cmd}")];
    let (mut server, _) = Server::spawn(Path::new("sh"), &args, addr)?;
    server.wait_listening(&format!("the command {cmd:?}"), deadline)?;
    Ok(server)
}

/// The address in `serving on http://ADDR/ with N workers`.
pub fn serving_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("serving on http://")?;
    rest[..rest.find('/')?].parse().ok()
}
