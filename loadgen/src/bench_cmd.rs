//! `loadgen bench`: the workload matrix against one or more targets, repeated with the
//! targets interleaved, into one results file (or, for an A/B, one file per side).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reports::{RunResult, Warning};
use scenarios::targets::{on_free_port, StartError};

use crate::cli::BenchArgs;
use crate::run::config::{parse_duration, Target};
use crate::run::{run as run_load, RunConfig};
use crate::EXIT_OK;

/// How long the embedded server may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(5);

/// Descriptors kept free for everything but the idle connections (client threads,
/// active connections, pipes, files).
const FD_RESERVE: u64 = 256;

/// One point of the matrix, independent of the target.
struct Workload {
    name: &'static str,
    connections: usize,
    pipeline: usize,
    requests_per_conn: Option<u64>,
    method: &'static str,
    path: &'static str,
    body: Vec<u8>,
    expect_body: bool,
    /// Idle keep-alive connections held open during the run (`--idle`).
    idle: bool,
}

fn workloads() -> Vec<Workload> {
    let w = |name, connections, pipeline, requests_per_conn, method, path, body: Vec<u8>| {
        let expect_body = !body.is_empty();
        Workload {
            name,
            connections,
            pipeline,
            requests_per_conn,
            method,
            path,
            body,
            expect_body,
            idle: false,
        }
    };
    vec![
        w("plaintext", 64, 1, None, "GET", "/", Vec::new()),
        w("pipelined-16", 64, 16, None, "GET", "/", Vec::new()),
        w("churn", 8, 1, Some(1), "GET", "/", Vec::new()),
        w("post-4k", 16, 1, None, "POST", "/echo", post_body()),
        w(
            "response-1m",
            8,
            1,
            None,
            "GET",
            "/big?bytes=1048576",
            Vec::new(),
        ),
        Workload {
            idle: true,
            ..w("idle-active", 8, 1, None, "GET", "/", Vec::new())
        },
    ]
}

/// The workloads `names` select (all when empty), in matrix order.
fn select_workloads(names: &[String]) -> Result<Vec<Workload>, String> {
    let all = workloads();
    if let Some(bad) = names.iter().find(|n| !all.iter().any(|w| w.name == **n)) {
        let valid: Vec<&str> = all.iter().map(|w| w.name).collect();
        return Err(format!(
            "--workload {bad:?}: unknown workload; use one of {}",
            valid.join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|w| names.is_empty() || names.iter().any(|n| n == w.name))
        .collect())
}

/// 4096 bytes of printable, non-repeating-looking text.
fn post_body() -> Vec<u8> {
    (0..4096u32).map(|i| b'a' + (i * 7 % 26) as u8).collect()
}

/// A server the bench started (the embedded engine, nginx or a command), killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    pinned_cpu: Option<usize>,
    clk_tck: f64,
    /// The last lines of its stderr, for error messages.
    tail: Arc<Mutex<Vec<String>>>,
    /// A temporary directory of its own (nginx), removed on drop.
    dir: Option<PathBuf>,
}

/// The CPU started servers are pinned to: the last one this process may use.
fn server_cpu() -> Option<usize> {
    engine::sys::thread::allowed_cpus()
        .ok()
        .and_then(|c| c.last().copied())
}

/// Starts `program args` pinned with `taskset` (which execs it, so the pid is the
/// server's), or unpinned when taskset cannot run; stderr piped, the rest null.
fn spawn_pinned(program: &Path, args: &[String]) -> Result<(Child, Option<usize>), String> {
    let spawn = |cmd: &mut Command| {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
    };
    if let Some(cpu) = server_cpu() {
        let pinned = spawn(
            Command::new("taskset")
                .arg("-c")
                .arg(cpu.to_string())
                .arg(program)
                .args(args),
        );
        if let Ok(child) = pinned {
            return Ok((child, Some(cpu)));
        }
    }
    let child = spawn(Command::new(program).args(args))
        .map_err(|e| format!("bench: cannot start {}: {e}", program.display()))?;
    Ok((child, None))
}

/// Reads the child's stderr to the end (so it never blocks on a full pipe): every line
/// goes to the returned channel and the last few to `tail`.
fn drain_stderr(child: &mut Child, tail: &Arc<Mutex<Vec<String>>>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(stderr) = child.stderr.take() {
        let tail = Arc::clone(tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut t) = tail.lock() {
                    if t.len() == 5 {
                        t.remove(0);
                    }
                    t.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
    }
    rx
}

impl Server {
    fn new(child: Child, addr: SocketAddr, pinned_cpu: Option<usize>) -> Server {
        Server {
            child,
            addr,
            pinned_cpu,
            clk_tck: clk_tck(),
            tail: Arc::new(Mutex::new(Vec::new())),
            dir: None,
        }
    }

    /// `loadgen serve --workers 1` on port 0; the address comes from its first line.
    fn embedded() -> Result<Server, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("bench: cannot find the loadgen executable: {e}"))?;
        let args: Vec<String> = ["serve", "--addr", "127.0.0.1:0", "--workers", "1"]
            .map(String::from)
            .into();
        let (child, cpu) = spawn_pinned(&exe, &args)?;
        let mut server = Server::new(child, SocketAddr::from(([127, 0, 0, 1], 0)), cpu);
        let rx = drain_stderr(&mut server.child, &server.tail);
        let end = Instant::now() + START_DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = serving_addr(&line) {
                        server.addr = addr;
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
    fn command(template: &str, deadline: Duration) -> Result<Server, String> {
        on_free_port(|addr| {
            Server::command_on(template, deadline, addr).map_err(StartError::from_output)
        })
        .map_err(String::from)
    }

    fn command_on(template: &str, deadline: Duration, addr: SocketAddr) -> Result<Server, String> {
        let cmd = template
            .replace("{addr}", &addr.to_string())
            .replace("{port}", &addr.port().to_string());
        let args = vec!["-c".to_string(), format!("exec {cmd}")];
        let (child, cpu) = spawn_pinned(Path::new("sh"), &args)?;
        let mut server = Server::new(child, addr, cpu);
        drain_stderr(&mut server.child, &server.tail);
        server.wait_listening(&format!("the command {cmd:?}"), deadline)?;
        Ok(server)
    }

    /// nginx with a generated config in a temporary directory: one process (no master)
    /// serving `/` (13 bytes) and `/big` (a 1 MiB file).
    fn nginx(idle: usize, deadline: Duration) -> Result<Server, String> {
        let nginx = find_on_path("nginx").ok_or(
            "--target nginx: nginx is not on PATH: install nginx-light (apt-get install nginx-light)",
        )?;
        on_free_port(|addr| {
            Server::nginx_on(&nginx, idle, deadline, addr).map_err(StartError::from_output)
        })
        .map_err(String::from)
    }

    fn nginx_on(
        nginx: &Path,
        idle: usize,
        deadline: Duration,
        addr: SocketAddr,
    ) -> Result<Server, String> {
        let dir = nginx_dir(addr, idle)?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let args = vec![
            "-p".to_string(),
            s(&dir),
            "-c".into(),
            s(&dir.join("nginx.conf")),
            "-e".into(),
            s(&dir.join("error.log")),
        ];
        let spawned = spawn_pinned(nginx, &args);
        let (child, cpu) = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut server = Server::new(child, addr, cpu);
        server.dir = Some(dir);
        drain_stderr(&mut server.child, &server.tail);
        if let Err(e) = server.wait_listening("nginx", deadline) {
            // nginx writes why to its error log, not to stderr.
            let log = server
                .dir
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join("error.log")).ok())
                .unwrap_or_default();
            let why = log
                .lines()
                .rev()
                .find(|l| l.contains("Address already in use"))
                .or_else(|| log.lines().rev().find(|l| l.contains("[emerg]")))
                .unwrap_or("");
            return Err(if why.is_empty() {
                e
            } else {
                format!("{e}; its error log: {why}")
            });
        }
        Ok(server)
    }

    /// Polls until the server accepts a connection on its address; an error (the server
    /// is then killed by drop) when it exits or does not within `deadline`.
    fn wait_listening(&mut self, what: &str, deadline: Duration) -> Result<(), String> {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the stderr reader catch up with the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!(
                    "bench: {what} exited ({status}) before accepting connections on {} (stderr: {:?})",
                    self.addr,
                    self.stderr_tail()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "bench: {what} did not accept connections on {} within {:.1} s (stderr: {:?}): check that it listens on {{addr}} (or raise --start-timeout)",
                    self.addr,
                    deadline.as_secs_f64(),
                    self.stderr_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr_tail(&self) -> String {
        self.tail.lock().map(|t| t.join(" | ")).unwrap_or_default()
    }

    /// CPU seconds (user + system, all threads) the child has used so far.
    fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the command name: state is field 3, utime 14, stime 15.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / self.clk_tck)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Writes nginx's config, its 1 MiB `/big` file and temp directories into a new
/// directory.
fn nginx_dir(addr: SocketAddr, idle: usize) -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "loadgen-bench-nginx-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let d = dir.display();
    let conf = format!(
        "# Generated by loadgen bench: one process, no access log.
worker_processes 1;
master_process off;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {addr};
        location = /big {{
            default_type application/octet-stream;
            root {d}/www;
        }}
        location / {{
            default_type text/plain;
            return 200 'Hello, World!';
        }}
    }}
}}
",
        conns = 4096.max(idle + 1024)
    );
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("www"))?;
        std::fs::write(dir.join("nginx.conf"), conf)?;
        std::fs::write(dir.join("www/big"), vec![b'a'; 1 << 20])
    };
    write().map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        format!("--target nginx: cannot write its config under {d}: {e}")
    })?;
    Ok(dir)
}

/// The address in `serving on http://ADDR/ with N workers`.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("serving on http://")?;
    rest[..rest.find('/')?].parse().ok()
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// What a target spec names.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    Embedded,
    Nginx,
    Url(Target),
    Command(String),
}

fn parse_spec(flag: &str, spec: &str) -> Result<Spec, String> {
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
struct BenchTarget {
    name: String,
    /// What the user gave: `embedded`, `nginx`, the URL or the command.
    spec: String,
    /// `http://host:port` (no trailing slash).
    base: String,
    addr: SocketAddr,
    server: Option<Server>,
    /// Workloads this target cannot serve, with the reason.
    skips: Vec<(&'static str, &'static str)>,
}

fn start_target(
    flag: &str,
    name: &str,
    spec: &str,
    idle: usize,
    deadline: Duration,
) -> Result<BenchTarget, String> {
    let parsed = parse_spec(flag, spec)?;
    let server = match &parsed {
        Spec::Embedded => Some(Server::embedded()?),
        Spec::Nginx => Some(Server::nginx(idle, deadline)?),
        Spec::Command(c) => Some(Server::command(c, deadline)?),
        Spec::Url(_) => None,
    };
    let (base, addr) = match (&parsed, &server) {
        (Spec::Url(t), _) => (format!("http://{}", t.host), t.addr),
        (_, Some(s)) => (format!("http://{}", s.addr), s.addr),
        (_, None) => unreachable!("every other spec starts a server"),
    };
    if let Some(s) = &server {
        let pin = match s.pinned_cpu {
            Some(c) => format!("pinned to CPU {c}"),
            None => "not pinned (no taskset)".into(),
        };
        eprintln!("bench: {name}: pid {} on {base}, {pin}", s.child.id());
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

/// The targets in order, with their names: `--target` specs are their own names;
/// `--ab` / `--aa` sides are named `--name-a` / `--name-b`.
fn target_list(args: &BenchArgs) -> Result<Vec<(String, String, &'static str)>, String> {
    if let Some(ab) = &args.ab {
        let [a, b] = ab.as_slice() else {
            return Err("--ab needs two targets: --ab A B".into());
        };
        return Ok(vec![
            (args.name_a.clone(), a.clone(), "--ab"),
            (args.name_b.clone(), b.clone(), "--ab"),
        ]);
    }
    if let Some(a) = &args.aa {
        return Ok(vec![
            (args.name_a.clone(), a.clone(), "--aa"),
            (args.name_b.clone(), a.clone(), "--aa"),
        ]);
    }
    let specs = if args.target.is_empty() {
        vec!["embedded".to_string()]
    } else {
        args.target.clone()
    };
    Ok(specs
        .into_iter()
        .map(|s| (s.clone(), s, "--target"))
        .collect())
}

/// Idle keep-alive connections: each has had one request answered and then waits.
struct IdleConns {
    conns: Vec<TcpStream>,
}

impl IdleConns {
    /// Opens `n` connections to `addr` and has each answer one `GET path`; keeps those
    /// that did.
    fn open(addr: SocketAddr, host: &str, path: &str, n: usize) -> Result<IdleConns, String> {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => conns.push(s),
                Err(e) if i == 0 => {
                    return Err(format!("idle-active: cannot connect to {addr}: {e}"))
                }
                Err(e) => {
                    eprintln!("bench: idle-active: connection {} of {n} failed ({e}): holding {i} idle connections", i + 1);
                    break;
                }
            }
        }
        let mut idle = IdleConns { conns };
        idle.conns = idle.answering(host, path);
        Ok(idle)
    }

    /// Sends `GET path` on every connection, then reads every response; returns the
    /// connections that answered 2xx (bounded: about 5 s in all).
    fn answering(&mut self, host: &str, path: &str) -> Vec<TcpStream> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let sent: Vec<TcpStream> = std::mem::take(&mut self.conns)
            .into_iter()
            .filter_map(|mut s| s.write_all(req.as_bytes()).ok().map(|()| s))
            .collect();
        let end = Instant::now() + Duration::from_secs(5);
        sent.into_iter()
            .filter_map(|mut s| read_response(&mut s, end).then_some(s))
            .collect()
    }

    /// How many of the held connections still answer a request now.
    fn probe(&mut self, host: &str, path: &str) -> usize {
        self.conns = self.answering(host, path);
        self.conns.len()
    }
}

/// Reads one response with a Content-Length body; true when it is complete and 2xx
/// before `end`.
fn read_response(s: &mut TcpStream, end: Instant) -> bool {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let mut need: Option<usize> = None;
    loop {
        if let Some(n) = need {
            if buf.len() >= n {
                return buf.starts_with(b"HTTP/1.1 2") || buf.starts_with(b"HTTP/1.0 2");
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if need.is_none() {
            if let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head_text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
                let len = head_text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match len {
                    Some(len) => need = Some(head + 4 + len),
                    None => return false,
                }
            }
        }
    }
}

/// Raises the open-files limit for `idle` idle connections (children started later
/// inherit it) and returns how many idle connections fit.
fn idle_capacity(idle: usize, max_conns: usize) -> usize {
    let want = 2 * idle as u64 + FD_RESERVE + max_conns as u64;
    let limit = match engine::sys::rlimit::raise_nofile_limit(want) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench: cannot read the open-files limit ({e}); assuming 1024");
            1024
        }
    };
    let fit = limit.saturating_sub(FD_RESERVE + max_conns as u64) as usize;
    if fit < idle {
        eprintln!(
            "bench: open-files limit {limit} (hard limit reached): idle-active holds {fit} idle connections instead of {idle}; raise `ulimit -Hn` for more"
        );
    }
    fit.min(idle)
}

struct RunPlan {
    duration: Duration,
    threads: usize,
    idle: usize,
}

fn one_run(
    target: &BenchTarget,
    w: &Workload,
    plan: &RunPlan,
    round: u32,
) -> Result<RunResult, String> {
    let url = format!("{}{}", target.base, w.path);
    let mut cfg = RunConfig::new(&url, w.connections, plan.duration)?;
    cfg.threads = plan.threads.min(w.connections).max(1);
    cfg.pipeline = w.pipeline;
    cfg.requests_per_conn = w.requests_per_conn;
    cfg.method = w.method.into();
    cfg.body = w.body.clone();
    if w.expect_body {
        cfg.expect_body = Some(w.body.clone());
    }
    cfg.validate()?;
    let host = target.base.trim_start_matches("http://").to_string();
    let mut idle = if w.idle {
        Some(IdleConns::open(target.addr, &host, w.path, plan.idle)?)
    } else {
        None
    };
    let cpu_before = target.server.as_ref().and_then(Server::cpu_s);
    let mut r = run_load(&cfg).map_err(|e| format!("{} on {}: {e}", w.name, target.name))?;
    let cpu_after = target.server.as_ref().and_then(Server::cpu_s);
    r.server_cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    r.workload = w.name.into();
    r.target = target.name.clone();
    r.config.insert("bench_round".into(), round.into());
    r.config.insert("bench_url".into(), url.into());
    if target.spec != target.name {
        r.config
            .insert("bench_target".into(), target.spec.clone().into());
    }
    if !target.skips.is_empty() {
        let skipped: Vec<&str> = target.skips.iter().map(|(w, _)| *w).collect();
        r.config
            .insert("bench_skipped_workloads".into(), skipped.into());
    }
    if let Some(idle) = idle.as_mut() {
        let held = idle.conns.len();
        let after = idle.probe(&host, w.path);
        r.config.insert("idle_requested".into(), plan.idle.into());
        r.config.insert("idle_connections".into(), held.into());
        r.config.insert("idle_answered_after".into(), after.into());
        if held < plan.idle || after < held {
            r.warnings.push(Warning {
                kind: "idle".into(),
                message: format!(
                    "{held} of {} idle connections were open during the run and {after} still answered after it: the server refused or closed some",
                    plan.idle
                ),
            });
        }
    }
    drop(idle);
    Ok(r)
}

fn table(runs: &[RunResult], targets: &[BenchTarget]) -> String {
    let width = runs
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 40);
    let mut out = format!(
        "{:<width$} {:<14} {:>5} {:>12} {:>10} {:>14}\n",
        "target", "workload", "round", "req/s", "p99 ms", "srv CPU µs/req"
    );
    for r in runs {
        let round = r
            .config
            .get("bench_round")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let cpu = match r.server_cpu_s {
            Some(c) if r.requests > 0 => format!("{:.2}", c / r.requests as f64 * 1e6),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<width$} {:<14} {:>5} {:>12.1} {:>10.3} {:>14}\n",
            r.target,
            r.workload,
            round,
            r.requests_per_s,
            r.latency_corrected.p99_us as f64 / 1000.0,
            cpu
        ));
    }
    for t in targets {
        for (w, why) in &t.skips {
            out.push_str(&format!("skipped: {w} on {}: {why}\n", t.name));
        }
    }
    out
}

fn create(flag: &str, path: &Option<PathBuf>) -> Result<Option<std::fs::File>, String> {
    match path {
        Some(p) => std::fs::File::create(p)
            .map(Some)
            .map_err(|e| format!("{flag} {}: cannot create: {e}", p.display())),
        None => Ok(None),
    }
}

fn write_results(
    flag: &str,
    path: &Path,
    mut file: std::fs::File,
    runs: Vec<RunResult>,
    started: SystemTime,
) -> Result<(), String> {
    let results = crate::run::output::results(runs, started);
    serde_json::to_writer_pretty(&mut file, &results)
        .map_err(std::io::Error::from)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| format!("{flag} {}: cannot write: {e}", path.display()))
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: BenchArgs) -> Result<u8, String> {
    let duration = match &args.duration {
        Some(d) => parse_duration(d).map_err(|e| format!("--duration {d:?}: {e}"))?,
        None if args.quick => Duration::from_secs(1),
        None => Duration::from_secs(10),
    };
    if duration.is_zero() {
        return Err("--duration 0: use a positive duration, e.g. 1s".into());
    }
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 });
    if repeat == 0 {
        return Err("--repeat 0: use at least 1 round".into());
    }
    let start_timeout = parse_duration(&args.start_timeout)
        .map_err(|e| format!("--start-timeout {:?}: {e}", args.start_timeout))?;
    let paired = args.ab.is_some() || args.aa.is_some();
    if !paired && (args.json_a.is_some() || args.json_b.is_some()) {
        return Err(
            "--json-a / --json-b split an A/B: use them with --ab A B or --aa A (else --json)"
                .into(),
        );
    }
    if paired && args.name_a == args.name_b {
        return Err(format!(
            "--name-a and --name-b are both {:?}: give the two sides different names",
            args.name_a
        ));
    }
    let workloads = select_workloads(&args.workload)?;
    let specs = target_list(&args)?;
    for (_, spec, flag) in &specs {
        parse_spec(flag, spec)?;
    }
    // Open the results files first: a bad path fails now, not after the whole matrix.
    let json_file = create("--json", &args.json)?;
    let json_a_file = create("--json-a", &args.json_a)?;
    let json_b_file = create("--json-b", &args.json_b)?;
    let idle = match workloads.iter().find(|w| w.idle) {
        // Before any server starts: they inherit the raised limit.
        Some(w) => idle_capacity(args.idle, w.connections),
        None => args.idle,
    };
    let cpus = engine::sys::thread::allowed_cpus()
        .map(|c| c.len())
        .unwrap_or(1);
    let mut targets = Vec::with_capacity(specs.len());
    for (name, spec, flag) in &specs {
        targets.push(start_target(flag, name, spec, idle, start_timeout)?);
    }
    for t in &targets {
        for (w, why) in &t.skips {
            if workloads.iter().any(|x| x.name == *w) {
                eprintln!("bench: {} skips {w}: {why}", t.name);
            }
        }
    }
    // Keep the load generator off the CPUs the servers are pinned to: its client
    // threads, created per run from this thread, inherit the restriction.
    let server_cpus: Vec<usize> = targets
        .iter()
        .filter_map(|t| t.server.as_ref().and_then(|s| s.pinned_cpu))
        .collect();
    if !server_cpus.is_empty() {
        let client: Vec<usize> = engine::sys::thread::allowed_cpus()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !server_cpus.contains(c))
            .collect();
        match engine::sys::thread::pin_current_thread_to(&client) {
            Ok(()) => eprintln!("bench: load generator pinned to CPUs {client:?}"),
            Err(e) => eprintln!(
                "bench: could not keep the load generator off CPUs {server_cpus:?} ({e}): it shares them"
            ),
        }
    }
    // Leave the server's CPU alone when it is pinned on this machine.
    let threads = if targets.iter().any(|t| t.server.is_some()) {
        cpus.saturating_sub(1).max(1)
    } else {
        cpus.max(1)
    };
    let plan = RunPlan {
        duration,
        threads,
        idle,
    };
    let total: usize = repeat as usize
        * workloads
            .iter()
            .map(|w| {
                targets
                    .iter()
                    .filter(|t| !t.skips.iter().any(|(s, _)| *s == w.name))
                    .count()
            })
            .sum::<usize>();
    let started = SystemTime::now();
    let mut runs = Vec::with_capacity(total);
    for round in 1..=repeat {
        for w in &workloads {
            // The order of the targets reverses every round (A B, B A, A B ...) rather
            // than staying A B: a slow drift (CPU frequency, other load) then favours
            // neither side, and neither side always runs right after the other one (whose
            // TIME_WAIT sockets, cache state or leftover work it would otherwise inherit).
            // The gate pairs the i-th runs of each side, so the pairs stay the same.
            let mut order: Vec<&BenchTarget> = targets.iter().collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for t in order {
                if t.skips.iter().any(|(s, _)| *s == w.name) {
                    continue;
                }
                let r = one_run(t, w, &plan, round)?;
                eprintln!(
                    "[{}/{total}] round {round} {} on {}: {:.1} req/s, p99 {:.3} ms, {} errors",
                    runs.len() + 1,
                    w.name,
                    t.name,
                    r.requests_per_s,
                    r.latency_corrected.p99_us as f64 / 1000.0,
                    r.errors.total()
                );
                runs.push(r);
            }
        }
    }
    print!("{}", table(&runs, &targets));
    drop(targets);
    let side = |name: &str| -> Vec<RunResult> {
        runs.iter().filter(|r| r.target == name).cloned().collect()
    };
    if let (Some(file), Some(path)) = (json_a_file, &args.json_a) {
        write_results("--json-a", path, file, side(&args.name_a), started)?;
    }
    if let (Some(file), Some(path)) = (json_b_file, &args.json_b) {
        write_results("--json-b", path, file, side(&args.name_b), started)?;
    }
    if let (Some(a), Some(b)) = (&args.json_a, &args.json_b) {
        eprintln!(
            "bench: compare with: loadgen gate --baseline {} --candidate {}",
            a.display(),
            b.display()
        );
    }
    if let (Some(file), Some(path)) = (json_file, &args.json) {
        write_results("--json", path, file, runs, started)?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::{parse_spec, select_workloads, Spec};

    #[test]
    fn serving_line() {
        assert_eq!(
            super::serving_addr("serving on http://127.0.0.1:4321/ with 1 workers"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(super::serving_addr("something else"), None);
    }

    #[test]
    fn big_matrix_names() {
        let names: Vec<_> = super::workloads().iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "plaintext",
                "pipelined-16",
                "churn",
                "post-4k",
                "response-1m",
                "idle-active"
            ]
        );
    }

    #[test]
    fn workload_selection_keeps_matrix_order_and_refuses_unknown_names() {
        let names = |sel: &[&str]| -> Vec<&str> {
            let sel: Vec<String> = sel.iter().map(|s| s.to_string()).collect();
            select_workloads(&sel)
                .unwrap()
                .iter()
                .map(|w| w.name)
                .collect()
        };
        assert_eq!(names(&["churn", "plaintext"]), ["plaintext", "churn"]);
        assert_eq!(names(&[]).len(), 6);
        let e = select_workloads(&["plain".to_string()])
            .err()
            .expect("unknown name refused");
        assert!(e.contains("\"plain\"") && e.contains("idle-active"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn target_specs() {
        assert_eq!(parse_spec("--ab", "embedded"), Ok(Spec::Embedded));
        assert_eq!(parse_spec("--ab", "nginx"), Ok(Spec::Nginx));
        assert_eq!(
            parse_spec("--ab", "./srv --listen {addr}"),
            Ok(Spec::Command("./srv --listen {addr}".into()))
        );
        assert!(matches!(
            parse_spec("--ab", "http://127.0.0.1:1/"),
            Ok(Spec::Url(_))
        ));
        let e = parse_spec("--ab", "./srv").unwrap_err();
        assert!(e.contains("{addr}"), "{e}");
    }
}
