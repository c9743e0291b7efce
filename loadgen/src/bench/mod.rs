//! `loadgen bench`'s library: the workload matrix run against one or more targets,
//! repeated with the targets interleaved. The targets and the servers it starts are
//! in [`targets`] and [`nginx`], the idle connections in [`idle`].

pub mod idle;
pub mod nginx;
pub mod targets;

/// Where the bench's progress and diagnostic lines go.
pub type Notes<'a> = dyn FnMut(String) + 'a;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reports::{BenchRecord, RunRecord, RunResult, Warning};

use crate::load::{self, RunConfig};
use crate::server::Server;
use idle::{idle_capacity, IdleConns};
use targets::{start_target, BenchTarget};

/// One point of the matrix, independent of the target.
#[derive(Debug)]
pub struct Workload {
    /// Its name in the results.
    pub name: &'static str,
    /// Connections.
    pub connections: usize,
    pipeline: usize,
    requests_per_conn: Option<u64>,
    method: &'static str,
    path: &'static str,
    body: Vec<u8>,
    expect_body: bool,
    /// Idle keep-alive connections held open during the run (`--idle`).
    pub idle: bool,
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
pub fn select_workloads(names: &[String]) -> Result<Vec<Workload>, String> {
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

/// What to run: the workloads on every target, `repeat` rounds.
#[derive(Debug)]
pub struct Matrix {
    /// The workloads, in matrix order.
    pub workloads: Vec<Workload>,
    /// The targets in order: (name, spec, the flag that named it).
    pub targets: Vec<(String, String, &'static str)>,
    /// How long each point measures.
    pub duration: Duration,
    /// Rounds.
    pub repeat: u32,
    /// Idle connections wanted during idle-active.
    pub idle: usize,
    /// How long a started server may take to accept connections.
    pub start_timeout: Duration,
}

/// What the matrix measured.
#[derive(Debug)]
pub struct BenchRun {
    /// When the first run started.
    pub started: SystemTime,
    /// Ctrl-C or SIGTERM ended it early: the last run is cut short (and marked so),
    /// the runs after it were never made.
    pub interrupted: bool,
    /// Every run, in the order they ran.
    pub runs: Vec<RunResult>,
    /// Workloads a target skipped: (target, workload, why).
    pub skipped: Vec<(String, &'static str, &'static str)>,
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
    note: &mut Notes<'_>,
    stop: &Arc<AtomicBool>,
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
        Some(IdleConns::open(
            target.addr,
            &host,
            w.path,
            plan.idle,
            note,
        )?)
    } else {
        None
    };
    let cpu_before = target.server.as_ref().and_then(Server::cpu_s);
    let mut r =
        load::run_until(&cfg, stop).map_err(|e| format!("{} on {}: {e}", w.name, target.name))?;
    if stop.load(SeqCst) {
        r.config.run = Some(RunRecord {
            interrupted: true,
            checks: Vec::new(),
        });
    }
    let cpu_after = target.server.as_ref().and_then(Server::cpu_s);
    r.server_cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    r.workload = w.name.into();
    r.target = target.name.clone();
    let mut record = BenchRecord {
        bench_round: round,
        bench_url: url,
        bench_target: (target.spec != target.name).then(|| target.spec.clone()),
        bench_skipped_workloads: (!target.skips.is_empty())
            .then(|| target.skips.iter().map(|(w, _)| w.to_string()).collect()),
        ..BenchRecord::default()
    };
    if let Some(idle) = idle.as_mut() {
        let held = idle.len();
        let after = idle.probe(&host, w.path);
        record.idle_requested = Some(plan.idle as u64);
        record.idle_connections = Some(held as u64);
        record.idle_answered_after = Some(after as u64);
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
    r.config.bench = Some(record);
    drop(idle);
    Ok(r)
}

/// Starts the targets, runs the matrix and stops the targets again; `note` gets the
/// progress and diagnostic lines (the console prints them on stderr).
///
/// When `stop` is set (Ctrl-C) the run under way ends early, is kept marked
/// interrupted, and no further run starts.
pub fn run(m: &Matrix, note: &mut Notes<'_>, stop: &Arc<AtomicBool>) -> Result<BenchRun, String> {
    let idle = match m.workloads.iter().find(|w| w.idle) {
        // Before any server starts: they inherit the raised limit.
        Some(w) => idle_capacity(m.idle, w.connections, note),
        None => m.idle,
    };
    let cpus = engine::sys::thread::allowed_cpus()
        .map(|c| c.len())
        .unwrap_or(1);
    let mut targets = Vec::with_capacity(m.targets.len());
    for (name, spec, flag) in &m.targets {
        targets.push(start_target(flag, name, spec, idle, m.start_timeout, note)?);
    }
    for t in &targets {
        for (w, why) in &t.skips {
            if m.workloads.iter().any(|x| x.name == *w) {
                note(format!("bench: {} skips {w}: {why}", t.name));
            }
        }
    }
    // Keep the load generator off the CPUs the servers are pinned to: its client
    // threads, created per run from this thread, inherit the restriction.
    let server_cpus: Vec<usize> = targets
        .iter()
        .filter_map(|t| t.server.as_ref().and_then(Server::pinned_cpu))
        .collect();
    if !server_cpus.is_empty() {
        let client: Vec<usize> = engine::sys::thread::allowed_cpus()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !server_cpus.contains(c))
            .collect();
        match engine::sys::thread::pin_current_thread_to(&client) {
            Ok(()) => note(format!("bench: load generator pinned to CPUs {client:?}")),
            Err(e) => note(format!(
                "bench: could not keep the load generator off CPUs {server_cpus:?} ({e}): it shares them"
            )),
        }
    }
    // Leave the server's CPU alone when it is pinned on this machine.
    let threads = if targets.iter().any(|t| t.server.is_some()) {
        cpus.saturating_sub(1).max(1)
    } else {
        cpus.max(1)
    };
    let plan = RunPlan {
        duration: m.duration,
        threads,
        idle,
    };
    let total: usize = m.repeat as usize
        * m.workloads
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
    'rounds: for round in 1..=m.repeat {
        for w in &m.workloads {
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
                if stop.load(SeqCst) {
                    break 'rounds;
                }
                let r = one_run(t, w, &plan, round, note, stop)?;
                note(format!(
                    "[{}/{total}] round {round} {} on {}: {:.1} req/s, p99 {:.3} ms, {} errors",
                    runs.len() + 1,
                    w.name,
                    t.name,
                    r.requests_per_s,
                    r.latency_corrected.p99_us as f64 / 1000.0,
                    r.errors.total()
                ));
                runs.push(r);
            }
        }
    }
    let skipped = targets
        .iter()
        .flat_map(|t| t.skips.iter().map(|(w, why)| (t.name.clone(), *w, *why)))
        .collect();
    Ok(BenchRun {
        started,
        interrupted: stop.load(SeqCst),
        runs,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::select_workloads;
    use super::targets::{parse_spec, serving_addr, Spec};

    #[test]
    fn serving_line() {
        assert_eq!(
            serving_addr("serving on http://127.0.0.1:4321/ with 1 workers"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(serving_addr("something else"), None);
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
        let e = select_workloads(&["plain".to_string()]).expect_err("unknown name refused");
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
