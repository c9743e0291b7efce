//! Proof on one machine that a sharded run adds up to one run: three "pods" as three
//! network namespaces, each with a veth pair to a server namespace where `loadgen
//! serve` runs the reference engine, each running exactly the command line of the
//! Kubernetes Job's pod template (`deploy/kubernetes/job.yaml`, with its own
//! `JOB_COMPLETION_INDEX`), the open model. Then `loadgen merge`, and checks: the
//! merged count is the sum of the shards', the offered and achieved rates are the
//! total's within 1 %, every shard is there once, and the merged histogram is the sum
//! of the shards' bucket by bucket. Second, the server stopped (SIGSTOP) for one
//! second in the middle of the window: the merged p99 matches a single-process run of
//! the same total load within ±10 %.
//!
//! Root only (network namespaces need CAP_SYS_ADMIN) and `ip` (iproute2); otherwise
//! skipped with the reason. About 30 s.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reports::histogram::{decode, LatencyHistogram};
use reports::Results;

const SHARDS: usize = 3;
/// The server's address, the same from every shard (on the server namespace's lo,
/// routed through each shard's veth), so that every shard loads one target.
const SERVER_IP: &str = "10.201.0.1";
const RATE: f64 = 3000.0;
const CONNS: &str = "30";

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and the processes in them; dropped, it kills the processes and
/// deletes the namespaces (and with them the veths).
struct Topology {
    server_ns: String,
    shard_ns: Vec<String>,
    children: Vec<Child>,
}

impl Topology {
    fn create() -> Topology {
        let pid = std::process::id();
        let mut t = Topology {
            server_ns: format!("lgsrv{pid}"),
            shard_ns: Vec::new(),
            children: Vec::new(),
        };
        let srv = t.server_ns.clone();
        ip(&["netns", "add", &srv]);
        ip(&["-n", &srv, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &srv,
            "addr",
            "add",
            &format!("{SERVER_IP}/32"),
            "dev",
            "lo",
        ]);
        for i in 0..SHARDS {
            let ns = format!("lgsh{i}x{pid}");
            ip(&["netns", "add", &ns]);
            t.shard_ns.push(ns.clone());
            let (vs, vc) = (format!("vs{i}x{pid}"), format!("vc{i}x{pid}"));
            ip(&["link", "add", &vs, "type", "veth", "peer", "name", &vc]);
            ip(&["link", "set", &vs, "netns", &srv]);
            ip(&["link", "set", &vc, "netns", &ns]);
            let (s_addr, c_addr, gw) = (
                format!("10.200.{i}.1/30"),
                format!("10.200.{i}.2/30"),
                format!("10.200.{i}.1"),
            );
            ip(&["-n", &srv, "addr", "add", &s_addr, "dev", &vs]);
            ip(&["-n", &srv, "link", "set", &vs, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "addr", "add", &c_addr, "dev", &vc]);
            ip(&["-n", &ns, "link", "set", &vc, "up"]);
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                &format!("{SERVER_IP}/32"),
                "via",
                &gw,
            ]);
        }
        t
    }

    /// Starts `loadgen serve` in the server namespace on port 0; returns its port and
    /// its pid (for SIGSTOP).
    fn serve(&mut self) -> (u16, u32) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server_ns,
                env!("CARGO_BIN_EXE_loadgen"),
            ])
            .args(["serve", "--addr", "0.0.0.0:0", "--workers", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let pid = child.id();
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("serving on http://") {
                    let port = rest
                        .split(['/', ' '])
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("loadgen serve did not announce its address")
            .expect("unparsable address line");
        (port, pid)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.shard_ns.iter().chain([&self.server_ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shards-netns-{}-{name}", std::process::id()))
}

/// RFC 3339 UTC of a wall-clock instant `lead` from now, whole milliseconds.
fn start_at(lead: Duration) -> (String, SystemTime) {
    let at = SystemTime::now() + lead;
    let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    (
        loadgen::export::results::rfc3339(ms),
        UNIX_EPOCH + Duration::from_millis(ms),
    )
}

/// The pod template's command line with the test's (smaller) load: the values of
/// `-c`, `--rate`, `-d` and `--warmup` replaced, everything else as in the Job, the
/// `$(VAR)`s expanded as the kubelet expands them.
fn pod_command(vars: &[(&str, &str)], duration: &str, out_dir: &Path) -> Vec<String> {
    let mut args = common::pod_args("job.yaml", vars);
    for (flag, value) in [
        ("-c", CONNS),
        ("--rate", &RATE.to_string()),
        ("-d", duration),
        ("--warmup", "1s"),
    ] {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("job.yaml's command has no {flag}"));
        args[i + 1] = value.to_string();
    }
    for a in &mut args {
        if let Some(file) = a.strip_prefix("/results/") {
            *a = out_dir.join(file).display().to_string();
        }
    }
    args
}

/// Runs `args` in namespace `ns` with `index` as the Job's completion index.
fn spawn_in(ns: &str, index: Option<usize>, args: &[String]) -> Child {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_loadgen")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(i) = index {
        c.env("JOB_COMPLETION_INDEX", i.to_string());
    }
    c.spawn().unwrap()
}

#[track_caller]
fn finish(child: Child, what: &str, deadline: Instant) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    let Ok(out) = rx.recv_timeout(left) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
        panic!("{what} still running at its deadline");
    };
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &Path) -> Results {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn buckets(h: &LatencyHistogram) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Sleeps until the wall-clock instant `at` (scheduling the fault, not waiting for
/// a condition).
fn sleep_until(at: SystemTime) {
    if let Ok(d) = at.duration_since(SystemTime::now()) {
        std::thread::sleep(d);
    }
}

/// Stops the server for `length` from `at` (the window's start plus an offset).
fn stall(server_pid: u32, at: SystemTime, length: Duration) {
    sleep_until(at);
    let pid = server_pid.to_string();
    let stop = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    std::thread::sleep(length);
    let cont = Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    assert!(stop.success() && cont.success(), "cannot stop the server");
}

/// One sharded run: every shard started as the Job starts them; merged. Returns the
/// shards' results and the merged results.
fn sharded_run(
    t: &Topology,
    url: &str,
    run_id: &str,
    duration: &str,
    fault: Option<(u32, Duration)>,
) -> (Vec<Results>, Results) {
    let dir = tmp(run_id);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (at_text, at) = start_at(Duration::from_secs(4));
    let deadline = Instant::now() + Duration::from_secs(25);
    let children: Vec<Child> = (0..SHARDS)
        .map(|i| {
            let index = i.to_string();
            let vars = [
                ("TARGET_URL", url),
                ("START_AT", &at_text),
                ("RUN_ID", run_id),
                ("JOB_COMPLETION_INDEX", &index),
            ];
            spawn_in(&t.shard_ns[i], Some(i), &pod_command(&vars, duration, &dir))
        })
        .collect();
    if let Some((pid, offset)) = fault {
        stall(pid, at + offset, Duration::from_secs(1));
    }
    for (i, c) in children.into_iter().enumerate() {
        finish(c, &format!("shard {i}"), deadline);
    }
    let files: Vec<PathBuf> = (0..SHARDS)
        .map(|i| dir.join(format!("shard-{i}.json")))
        .collect();
    let merged = dir.join("merged.json");
    let out = common::loadgen(
        &[
            &["merge"],
            &files
                .iter()
                .map(|f| f.to_str().unwrap())
                .collect::<Vec<_>>()[..],
            &["--tolerance", "1s", "--out", merged.to_str().unwrap()],
        ]
        .concat(),
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 0, "merge: {out:?}");
    let shards = files.iter().map(|f| read(f)).collect();
    (shards, read(&merged))
}

#[test]
fn three_shards_in_network_namespaces_add_up_to_one_run() {
    if !engine::sys::netns::is_root() {
        println!("SKIPPED: network namespaces need root (CAP_SYS_ADMIN); run the test as root");
        return;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`ip` (iproute2) is not installed and CI is set: .ci/run must install it"
        );
        println!("SKIPPED: `ip` (iproute2) is not installed");
        return;
    }
    let started = Instant::now();
    let mut t = Topology::create();
    let (port, server_pid) = t.serve();
    let url = format!("http://{SERVER_IP}:{port}/");

    // 1. A steady run: exact sums.
    let (shards, merged) = sharded_run(&t, &url, "steady", "3s", None);
    let run_id = merged.identity.run_id.clone().unwrap();
    assert_eq!(run_id, "steady");
    let mut indices: Vec<u32> = shards
        .iter()
        .map(|s| {
            assert_eq!(s.identity.run_id.as_deref(), Some("steady"));
            let sh = s.identity.shard.expect("a shard without its shard record");
            assert_eq!(sh.count, SHARDS as u32);
            sh.index
        })
        .collect();
    // Shard i's schedule is shifted by i/R: the shards' arrivals interleave.
    for s in &shards {
        let i = s.identity.shard.unwrap().index;
        let phase = &s.runs[0].config.settings["schedule_phase_ns"];
        let want = (f64::from(i) / RATE * 1e9) as u64;
        assert!(
            phase.as_u64().unwrap().abs_diff(want) <= 1,
            "shard {i}: phase {phase}"
        );
    }
    indices.sort();
    assert_eq!(indices, [0, 1, 2], "a shard missing or duplicated");
    let m = &merged.runs[0];
    assert_eq!(m.config.merged_runs, Some(SHARDS as u64));
    let per_shard: Vec<u64> = shards.iter().map(|s| s.runs[0].requests).collect();
    assert_eq!(m.requests, per_shard.iter().sum::<u64>(), "merged != sum");
    let offered: f64 = shards
        .iter()
        .map(|s| s.runs[0].open_model.as_ref().unwrap().rate_per_s)
        .sum();
    assert!((offered - RATE).abs() <= RATE * 0.01, "offered {offered}");
    let achieved = m.requests as f64 / 3.0;
    assert!(
        (achieved - RATE).abs() <= RATE * 0.01,
        "achieved {achieved:.1}/s, offered {RATE}/s"
    );
    assert_eq!(m.errors.total(), 0, "{:?}", m.errors);
    let mut sum = reports::histogram::new_histogram();
    for s in &shards {
        sum.add(decode(&s.runs[0].histogram_corrected).unwrap())
            .unwrap();
    }
    let merged_h = decode(&m.histogram_corrected).unwrap();
    assert_eq!(buckets(&merged_h), buckets(&sum), "merged histogram != sum");
    assert_eq!(merged_h.len(), m.requests);
    let windows: Vec<u64> = shards
        .iter()
        .map(|s| s.identity.window.as_ref().unwrap().start_unix_ns)
        .collect();
    let offsets: Vec<String> = shards
        .iter()
        .map(|s| {
            let w = s.identity.window.as_ref().unwrap();
            match w.clock_offset_ns {
                Some(ns) => format!("{:.2} ms ({})", ns as f64 / 1e6, w.clock_offset_source),
                None => w.clock_offset_source.clone(),
            }
        })
        .collect();
    println!(
        "steady: shards {per_shard:?} requests, merged {} ({} buckets equal); offered {offered}/s, achieved {achieved:.1}/s; window starts {:?} ns apart; clock offsets {offsets:?}",
        m.requests,
        buckets(&sum).len(),
        windows.iter().map(|w| w - windows[0]).collect::<Vec<_>>()
    );

    // 2. The server stopped for 1 s, 1.5 s into a 4 s window: sharded vs one process.
    let offset = Duration::from_millis(1500);
    let (_, merged) = sharded_run(&t, &url, "stalled", "4s", Some((server_pid, offset)));
    let sharded = &merged.runs[0].latency_corrected;
    let dir = tmp("single");
    std::fs::create_dir_all(&dir).unwrap();
    let (at_text, at) = start_at(Duration::from_secs(4));
    let file = dir.join("single.json");
    let single_args: Vec<String> = [
        "run",
        &url,
        "-c",
        CONNS,
        "--rate",
        &RATE.to_string(),
        "-d",
        "4s",
        "--warmup",
        "1s",
        "--start-at",
        &at_text,
        "-q",
        "-o",
        file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn_in(&t.shard_ns[0], None, &single_args);
    stall(server_pid, at + offset, Duration::from_secs(1));
    finish(
        child,
        "single-process run",
        Instant::now() + Duration::from_secs(20),
    );
    let single = read(&file).runs[0].latency_corrected.clone();
    println!(
        "stalled 1 s: merged p50 {:.2} ms p99 {:.1} ms ({} requests); single process p50 {:.2} ms p99 {:.1} ms ({} requests)",
        sharded.p50_us as f64 / 1000.0,
        sharded.p99_us as f64 / 1000.0,
        sharded.count,
        single.p50_us as f64 / 1000.0,
        single.p99_us as f64 / 1000.0,
        single.count
    );
    let ratio = sharded.p99_us as f64 / single.p99_us as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "merged p99 {} us vs single-process {} us ({ratio:.3})",
        sharded.p99_us,
        single.p99_us
    );
    assert!(
        sharded.p99_us > 500_000,
        "the stall does not show: {sharded:?}"
    );
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
