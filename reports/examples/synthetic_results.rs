//! Writes synthetic `loadgen.result/v1` files for the plot gallery (`ci/gallery.sh`):
//! deterministic latencies, rates and timelines, no server needed.
//!
//! ```text
//! cargo run -p reports --example synthetic_results -- 18 /tmp/gallery-18
//! ```
//!
//! Sets: `1` (one run), `2` (two targets), `18` (what `loadgen bench` writes: six
//! workloads × three rounds, one round of `churn` failed outright, plus a sweep, a
//! lone `run --rate` run and a run whose every request was refused), `40` (ten
//! targets × four workloads, and four sweeps).

use std::path::{Path, PathBuf};

use reports::histogram::{self, encode, new_histogram, record};
use reports::{
    ErrorCounts, Host, OpenModel, Results, RunResult, SweepRecord, TimelinePoint, Tool, Warning,
};

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// About normal (0, 1): twelve uniforms.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

fn settings(url: &str, connections: u64, rate: Option<f64>) -> serde_json::Value {
    serde_json::json!({
        "url": url, "threads": 2, "connections": connections, "duration_ms": 10000.0,
        "requests": null, "warmup_ms": 2000.0, "timeout_ms": 5000.0, "pipeline": 1,
        "rate_per_s": rate, "arrivals": if rate.is_some() { "poisson" } else { "closed" },
        "seed": 1, "method": "GET", "headers": [], "body_bytes": 0, "expect_status": 200,
        "expect_body": null, "requests_per_conn": null, "json": null, "hdr_log": null,
        "quiet": true
    })
}

/// A run of `workload` against `url`: median latency `base_us`, `rps` requests per
/// second for ten seconds; `failed`: every request refused.
fn run(
    rng: &mut Lcg,
    url: &str,
    workload: &str,
    base_us: f64,
    rps: f64,
    failed: bool,
) -> RunResult {
    let mut corrected = new_histogram();
    let mut uncorrected = new_histogram();
    let samples = if failed { 0 } else { 20_000 };
    for i in 0..samples {
        let tail = if i % 400 == 0 {
            8.0 + 20.0 * rng.next()
        } else {
            1.0
        };
        let v = base_us * (0.35 * rng.normal()).exp() * tail;
        record(&mut uncorrected, v.max(1.0) as u64);
        record(
            &mut corrected,
            (v * (1.0 + 0.2 * rng.next())).max(1.0) as u64,
        );
    }
    let (requests, errors) = if failed {
        (0, (rps * 10.0) as u64)
    } else {
        ((rps * 10.0) as u64, 0)
    };
    let timeline = (0..10)
        .map(|s| {
            let wobble = 1.0 + 0.04 * rng.normal();
            let burst = !failed && s == 6 && workload == "churn";
            TimelinePoint {
                second: s,
                requests: if failed { 0 } else { (rps * wobble) as u64 },
                errors: if failed {
                    (rps * wobble) as u64
                } else if burst {
                    (rps * 0.02) as u64
                } else {
                    0
                },
                p50_us: if failed { 0 } else { base_us as u64 },
                p99_us: if failed {
                    0
                } else {
                    (base_us * 2.6 * wobble * if burst { 3.0 } else { 1.0 }) as u64
                },
                max_us: if failed { 0 } else { (base_us * 30.0) as u64 },
            }
        })
        .collect();
    let config: reports::RunSettings =
        serde_json::from_value(settings(url, 64, None)).unwrap_or_default();
    RunResult {
        target: url.into(),
        workload: workload.into(),
        config,
        duration_s: 10.0,
        requests,
        errors: ErrorCounts {
            connect_refused: errors,
            ..ErrorCounts::default()
        },
        requests_per_s: requests as f64 / 10.0,
        bytes_per_s: requests as f64 * 13.0,
        bytes_read: requests * 130,
        bytes_written: requests * 40,
        latency_corrected: histogram::summarize(&corrected),
        latency_uncorrected: histogram::summarize(&uncorrected),
        latency_errors: Default::default(),
        histogram_corrected: encode(&corrected),
        histogram_uncorrected: encode(&uncorrected),
        histogram_errors: encode(&new_histogram()),
        timeline,
        open_model: None,
        client_cpu_s: Some(3.2),
        server_cpu_s: None,
        warnings: if failed {
            vec![Warning {
                kind: "errors".into(),
                message: "every request failed (connect refused): is the target up?".into(),
            }]
        } else {
            Vec::new()
        },
        started_unix_ms: None,
    }
}

fn file(runs: Vec<RunResult>) -> Results {
    Results {
        schema: reports::RESULT_SCHEMA.into(),
        tool: Tool {
            name: "loadgen".into(),
            version: "0.1.0".into(),
            git_revision: Some("0123abc (synthetic)".into()),
        },
        host: Host {
            hostname: Some("loadhost-1".into()),
            kernel: "6.1.0-synthetic".into(),
            cpu_model: "Synthetic CPU @ 3.00GHz".into(),
            cores: 2,
            governor: Some("performance".into()),
        },
        started_at: "2026-12-04T01:00:00Z".into(),
        started_unix_ms: 1_796_346_000_000,
        identity: Default::default(),
        runs,
    }
}

/// A sweep of `url`: rising rates, p99 climbing past a 5 ms SLO from `knee` on.
fn sweep(rng: &mut Lcg, url: &str, knee: f64) -> Results {
    let rates = [2000.0, 4000.0, 6000.0, 8000.0, 10000.0, 12000.0];
    let runs = rates
        .iter()
        .enumerate()
        .map(|(i, &rate)| {
            let over = (rate / knee).powi(6);
            let mut r = run(rng, url, "sweep", 300.0 * (1.0 + over), rate * 0.99, false);
            r.open_model = Some(OpenModel {
                rate_per_s: rate,
                arrivals: "poisson".into(),
                ..Default::default()
            });
            r.config.sweep = Some(SweepRecord {
                sweep_step: i as u64 + 1,
                sweep_rate: rate,
                sweep_slo_us: 5_000,
                sweep_held: r.latency_corrected.p99_us <= 5_000,
                ..Default::default()
            });
            r
        })
        .collect();
    file(runs)
}

const WORKLOADS: [(&str, f64, f64); 6] = [
    ("plaintext", 180.0, 52_000.0),
    ("pipelined-16", 650.0, 190_000.0),
    ("churn", 420.0, 9_000.0),
    ("post-4k", 260.0, 31_000.0),
    ("response-1m", 2_400.0, 900.0),
    ("idle-active", 210.0, 40_000.0),
];

fn write(dir: &Path, name: &str, r: &Results) -> Result<(), String> {
    let path = dir.join(name);
    let text = serde_json::to_string(r).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [set, dir] = args.as_slice() else {
        return Err("usage: synthetic_results 1|2|18|40 DIR".into());
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut rng = Lcg(42);
    let a = "http://127.0.0.1:8080/";
    let b = "http://127.0.0.1:8081/";
    match set.as_str() {
        "1" => write(
            &dir,
            "results.json",
            &file(vec![run(&mut rng, a, "plaintext", 180.0, 52_000.0, false)]),
        ),
        "2" => write(
            &dir,
            "results.json",
            &file(vec![
                run(&mut rng, a, "plaintext", 180.0, 52_000.0, false),
                run(&mut rng, b, "plaintext", 240.0, 44_000.0, false),
            ]),
        ),
        "18" => {
            for round in 1..=3 {
                let runs = WORKLOADS
                    .iter()
                    .map(|&(w, base, rps)| {
                        let failed = round == 2 && w == "churn";
                        let k = 1.0 + 0.05 * rng.normal();
                        run(&mut rng, a, w, base * k, rps / k, failed)
                    })
                    .collect();
                write(&dir, &format!("bench-round-{round}.json"), &file(runs))?;
            }
            write(&dir, "sweep.json", &sweep(&mut rng, a, 9000.0))?;
            let mut lone = run(&mut rng, b, "plaintext", 200.0, 5_000.0, false);
            lone.open_model = Some(OpenModel {
                rate_per_s: 5_000.0,
                arrivals: "poisson".into(),
                ..Default::default()
            });
            write(&dir, "run-rate.json", &file(vec![lone]))?;
            let refused = run(
                &mut rng,
                "http://127.0.0.1:8082/",
                "plaintext",
                0.0,
                3_000.0,
                true,
            );
            write(&dir, "run-refused.json", &file(vec![refused]))
        }
        "40" => {
            let mut runs = Vec::new();
            for t in 0..10 {
                let url = format!("http://10.0.0.{}:8080/", t + 1);
                for &(w, base, rps) in &WORKLOADS[..4] {
                    let k = 1.0 + 0.08 * t as f64;
                    runs.push(run(&mut rng, &url, w, base * k, rps / k, false));
                }
            }
            write(&dir, "results.json", &file(runs))?;
            for t in 0..4 {
                let url = format!("http://10.0.0.{}:8080/", t + 1);
                let knee = 7000.0 + 1500.0 * t as f64;
                write(
                    &dir,
                    &format!("sweep-{t}.json"),
                    &sweep(&mut rng, &url, knee),
                )?;
            }
            Ok(())
        }
        other => Err(format!("{other:?}: no such set; use 1, 2, 18 or 40")),
    }
}
