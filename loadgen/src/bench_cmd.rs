//! `loadgen bench`: the workload matrix against one or more targets, repeated with the
//! targets interleaved (A B A B), into one results file.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use reports::RunResult;

use crate::cli::BenchArgs;
use crate::run::config::{parse_duration, Target};
use crate::run::{run as run_load, RunConfig};
use crate::EXIT_OK;

/// How long the embedded server may take to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(5);

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
    ]
}

/// 4096 bytes of printable, non-repeating-looking text.
fn post_body() -> Vec<u8> {
    (0..4096u32).map(|i| b'a' + (i * 7 % 26) as u8).collect()
}

/// The reference engine as a child process (`loadgen serve`), killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    pinned_cpu: Option<usize>,
    clk_tck: f64,
}

impl Server {
    fn start() -> Result<Server, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("bench: cannot find the loadgen executable: {e}"))?;
        let serve_args = ["serve", "--addr", "127.0.0.1:0", "--workers", "1"];
        let cpu = engine::sys::thread::allowed_cpus()
            .ok()
            .and_then(|c| c.last().copied());
        let spawn = |cmd: &mut Command| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        };
        let (child, pinned_cpu) = match cpu.map(|c| {
            (
                spawn(
                    Command::new("taskset")
                        .arg("-c")
                        .arg(c.to_string())
                        .arg(&exe)
                        .args(serve_args),
                ),
                c,
            )
        }) {
            Some((Ok(child), c)) => (child, Some(c)),
            _ => (
                spawn(Command::new(&exe).args(serve_args))
                    .map_err(|e| format!("bench: cannot start {} serve: {e}", exe.display()))?,
                None,
            ),
        };
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pinned_cpu,
            clk_tck: clk_tck(),
        };
        let stderr = server.child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel::<String>();
        // Reads every line (so the child never blocks on a full pipe); the first ones
        // go to the caller.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let end = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = serving_addr(&line) {
                        server.addr = addr;
                        return Ok(server);
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "bench: the embedded server did not report its address within {}s \
                         (stderr: {:?}): check that `loadgen serve` starts",
                        START_DEADLINE.as_secs(),
                        seen.join(" | ")
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "bench: the embedded server exited before listening (stderr: {:?})",
                        seen.join(" | ")
                    ))
                }
            }
        }
    }

    /// CPU seconds (user + system) the child has used so far.
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
    }
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

/// A target of the matrix.
struct BenchTarget {
    name: String,
    /// `http://host:port` (no trailing slash).
    base: String,
    server: Option<Server>,
}

fn targets(specs: &[String]) -> Result<Vec<BenchTarget>, String> {
    let specs: Vec<String> = if specs.is_empty() {
        vec!["embedded".into()]
    } else {
        specs.to_vec()
    };
    let mut out = Vec::new();
    for spec in specs {
        if spec == "embedded" {
            let server = Server::start()?;
            let base = format!("http://{}", server.addr);
            let pin = match server.pinned_cpu {
                Some(c) => format!("pinned to CPU {c}"),
                None => "not pinned (no taskset)".into(),
            };
            eprintln!(
                "bench: embedded server pid {} on {base}, {pin}",
                server.child.id()
            );
            out.push(BenchTarget {
                name: spec,
                base,
                server: Some(server),
            });
        } else {
            let t = Target::parse(&spec).map_err(|e| format!("--target {e}"))?;
            out.push(BenchTarget {
                name: spec,
                base: format!("http://{}", t.host),
                server: None,
            });
        }
    }
    Ok(out)
}

fn one_run(
    target: &BenchTarget,
    w: &Workload,
    duration: Duration,
    threads: usize,
    round: u32,
) -> Result<RunResult, String> {
    let url = format!("{}{}", target.base, w.path);
    let mut cfg = RunConfig::new(&url, w.connections, duration)?;
    cfg.threads = threads.min(w.connections).max(1);
    cfg.pipeline = w.pipeline;
    cfg.requests_per_conn = w.requests_per_conn;
    cfg.method = w.method.into();
    cfg.body = w.body.clone();
    if w.expect_body {
        cfg.expect_body = Some(w.body.clone());
    }
    cfg.validate()?;
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
    Ok(r)
}

fn table(runs: &[RunResult]) -> String {
    let mut out = format!(
        "{:<24} {:<14} {:>5} {:>12} {:>10} {:>14}\n",
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
            "{:<24} {:<14} {:>5} {:>12.1} {:>10.3} {:>14}\n",
            r.target,
            r.workload,
            round,
            r.requests_per_s,
            r.latency_corrected.p99_us as f64 / 1000.0,
            cpu
        ));
    }
    out
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
    // Open the results file first: a bad path fails now, not after the whole matrix.
    let json_file = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("--json {}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let cpus = engine::sys::thread::allowed_cpus()
        .map(|c| c.len())
        .unwrap_or(1);
    let targets = targets(&args.target)?;
    // Leave the server's CPU alone when it is pinned on this machine.
    let threads = if targets.iter().any(|t| t.server.is_some()) {
        cpus.saturating_sub(1).max(1)
    } else {
        cpus.max(1)
    };
    let workloads = workloads();
    let total = repeat as usize * workloads.len() * targets.len();
    let started = SystemTime::now();
    let mut runs = Vec::with_capacity(total);
    for round in 1..=repeat {
        for w in &workloads {
            for t in &targets {
                let r = one_run(t, w, duration, threads, round)?;
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
    drop(targets);
    print!("{}", table(&runs));
    if let (Some(mut file), Some(path)) = (json_file, &args.json) {
        let results = crate::run::output::results(runs, started);
        serde_json::to_writer_pretty(&mut file, &results)
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
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
                "response-1m"
            ]
        );
    }
}
