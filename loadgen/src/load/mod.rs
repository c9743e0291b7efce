//! The load engine: one load test against one HTTP/1.1 server (`loadgen run`, and
//! every point of `bench` and `sweep`).

pub mod check;
pub mod client;
pub mod clock;
pub mod config;
pub mod interrupt;
pub mod response;
pub mod shard;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reports::histogram::{encode, new_histogram, summarize, LatencyHistogram};
use reports::{ErrorCounts, OpenModel, RunResult, TimelinePoint, Warning};

use client::{run_thread, Interval, Shared, ThreadOutcome};
pub use config::{Arrivals, RunConfig, Target};

/// Runs the load test. Errors (server unreachable, setup failures) are one line.
pub fn run(cfg: &RunConfig) -> Result<RunResult, String> {
    run_until(cfg, &Arc::new(AtomicBool::new(false)))
}

/// Runs the load test, ending it early (with everything measured so far) once `stop`
/// is set, e.g. by [`interrupt::on_signals`].
pub fn run_until(cfg: &RunConfig, stop: &Arc<AtomicBool>) -> Result<RunResult, String> {
    let addr = cfg.target.addr;
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| {
        format!(
            "cannot connect to {addr} ({}): {e}: is the server running?",
            cfg.target.url
        )
    })?;
    let cfg = Arc::new(cfg.clone());
    let start = Instant::now();
    let now_wall = SystemTime::now();
    let ahead = match cfg.start_at {
        Some(at) => start_ahead(at, now_wall, cfg.warmup)?,
        None => cfg.warmup,
    };
    let measure_start = start + ahead;
    // The wall-clock time of `measure_start`, for the run's `started_unix_ms`.
    let wall_measure_start = cfg.start_at.unwrap_or(now_wall + ahead);
    let shared = Arc::new(Shared {
        request: cfg.request_bytes(),
        start,
        measure_start,
        end: cfg.duration.map(|d| measure_start + d),
        budget: AtomicI64::new(
            cfg.requests
                .map_or(i64::MAX, |r| r.min(i64::MAX as u64) as i64),
        ),
        succeeded: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        stop: Arc::clone(stop),
        client_exhaustion_told: AtomicBool::new(false),
        cfg: Arc::clone(&cfg),
    });
    let (tx, rx) = mpsc::channel::<Interval>();
    let mut handles = Vec::with_capacity(cfg.threads);
    for t in 0..cfg.threads {
        let first = t * cfg.connections / cfg.threads;
        let last = (t + 1) * cfg.connections / cfg.threads;
        let sh = Arc::clone(&shared);
        let tx = tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || run_thread(sh, first, last - first, tx))
            .map_err(|e| format!("spawning client thread {t}: {e}"))?;
        handles.push(h);
    }
    drop(tx);

    let mut log = match &cfg.hdr_log {
        Some(path) => Some(HdrLog::create(path, wall_measure_start)?),
        None => None,
    };
    let progress = cfg.progress && std::io::stderr().is_terminal();
    let mut merger = IntervalMerger::new(cfg.threads);
    let mut timeline = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(iv) => {
                if let Some(m) = merger.add(iv) {
                    if let Some(l) = log.as_mut() {
                        l.write(&m)?;
                    }
                    timeline.push(m.point);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            print_progress(&cfg, &shared, start, timeline.last());
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    for m in merger.flush() {
        if let Some(l) = log.as_mut() {
            l.write(&m)?;
        }
        timeline.push(m.point);
    }
    let mut outcomes = Vec::with_capacity(handles.len());
    for h in handles {
        match h.join() {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a client thread panicked".into()),
        }
    }
    let mut result = summarize_run(&cfg, outcomes, timeline);
    result.started_unix_ms = Some(unix_ms(wall_measure_start));
    Ok(result)
}

/// How long from `now` to `--start-at` `at`: refused when `at` has passed or leaves
/// less than `warmup` to warm up.
fn start_ahead(at: SystemTime, now: SystemTime, warmup: Duration) -> Result<Duration, String> {
    let ahead = at.duration_since(now).map_err(|e| {
        format!(
            "--start-at passed {:.1} s ago while connecting: give a later time (e.g. +10s)",
            e.duration().as_secs_f64()
        )
    })?;
    if ahead < warmup {
        return Err(format!(
            "--start-at is {:.1} s away, less than --warmup {:.1} s: give a later time or a shorter warmup",
            ahead.as_secs_f64(),
            warmup.as_secs_f64()
        ));
    }
    Ok(ahead)
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The progress line: time, successes and failures apart, and the last whole
/// second's req/s and corrected p99.
fn print_progress(cfg: &RunConfig, sh: &Shared, start: Instant, last: Option<&TimelinePoint>) {
    let ok = sh.succeeded.load(Relaxed);
    let failed = sh.failed.load(Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let time = match (cfg.duration, cfg.requests) {
        (Some(d), _) => format!("{elapsed:5.1}/{:.0} s", (d + cfg.warmup).as_secs_f64()),
        (None, Some(n)) => format!("{elapsed:5.1} s  {}/{n}", ok + failed),
        _ => format!("{elapsed:5.1} s"),
    };
    let live = match last {
        Some(p) => format!(
            "  {} req/s  p99 {:.2} ms",
            p.requests,
            p.p99_us as f64 / 1000.0
        ),
        None => String::new(),
    };
    let warm = if start.elapsed() < cfg.warmup {
        "  (warmup)"
    } else {
        ""
    };
    eprint!("\r\x1b[2K{time}  ok {ok}  failed {failed}{live}{warm}");
}

/// Merges per-thread intervals of the same second; a second is complete when every
/// thread has reported it. Memory stays bounded by the threads' skew, not the run.
struct IntervalMerger {
    threads: usize,
    pending: BTreeMap<u64, Pending>,
}

/// A second being merged.
struct Pending {
    reported: usize,
    requests: u64,
    errors: u64,
    length: Duration,
    hist: LatencyHistogram,
    uncorrected: LatencyHistogram,
}

/// A merged second: its timeline point and histograms.
struct Merged {
    point: TimelinePoint,
    length: Duration,
    hist: LatencyHistogram,
    uncorrected: LatencyHistogram,
}

impl Pending {
    fn merged(self, second: u64) -> Merged {
        Merged {
            point: point(second, self.requests, self.errors, &self.hist),
            length: self.length,
            hist: self.hist,
            uncorrected: self.uncorrected,
        }
    }
}

impl IntervalMerger {
    fn new(threads: usize) -> Self {
        IntervalMerger {
            threads,
            pending: BTreeMap::new(),
        }
    }

    fn add(&mut self, iv: Interval) -> Option<Merged> {
        let e = self.pending.entry(iv.second).or_insert_with(|| Pending {
            reported: 0,
            requests: 0,
            errors: 0,
            length: Duration::ZERO,
            hist: new_histogram(),
            uncorrected: new_histogram(),
        });
        e.reported += 1;
        e.requests += iv.requests;
        e.errors += iv.errors;
        e.length = e.length.max(iv.length);
        let _ = e.hist.add(&iv.hist);
        let _ = e.uncorrected.add(&iv.uncorrected);
        if e.reported < self.threads {
            return None;
        }
        Some(self.pending.remove(&iv.second)?.merged(iv.second))
    }

    fn flush(&mut self) -> Vec<Merged> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(s, p)| p.merged(s))
            .collect()
    }
}

fn point(second: u64, requests: u64, errors: u64, h: &LatencyHistogram) -> TimelinePoint {
    let s = summarize(h);
    TimelinePoint {
        second,
        requests,
        errors,
        p50_us: s.p50_us,
        p99_us: s.p99_us,
        max_us: s.max_us,
    }
}

/// An HdrHistogram interval log (`--hdr-log`) in the standard format (version 1.3):
/// header lines, the column legend, then per interval two lines with its
/// V2-compressed histograms: the corrected one untagged, the uncorrected one tagged
/// `Tag=uncorrected`. Intervals are 1 s but the last, which has its real length.
/// Values are µs (the Java `HistogramLogProcessor` needs `-outputValueUnitRatio 1000`
/// to print ms); the `Interval_Max` column is in ms.
struct HdrLog {
    out: BufWriter<File>,
    path: std::path::PathBuf,
}

impl HdrLog {
    fn create(path: &std::path::Path, start: SystemTime) -> Result<HdrLog, String> {
        let err = |e: std::io::Error| format!("--hdr-log {}: {e}", path.display());
        let f = File::create(path).map_err(err)?;
        let mut out = BufWriter::new(f);
        let t = start
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        write!(
            out,
            "#[Histogram log format version 1.3]\n\
             #[Written by loadgen {}; values in microseconds, Interval_Max in milliseconds]\n\
             #[Untagged: corrected latencies (from each request's due time); Tag=uncorrected: from its send]\n\
             #[StartTime: {t:.3} (seconds since epoch)]\n\
             #[BaseTime: {t:.3} (seconds since epoch)]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            env!("CARGO_PKG_VERSION")
        )
        .map_err(err)?;
        Ok(HdrLog {
            out,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, m: &Merged) -> Result<(), String> {
        let max_ms = |h: &LatencyHistogram| {
            if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            }
        };
        let (second, length) = (m.point.second, m.length.as_secs_f64());
        writeln!(
            self.out,
            "{second}.000,{length:.3},{:.3},{}",
            max_ms(&m.hist),
            encode(&m.hist)
        )
        .and_then(|_| {
            writeln!(
                self.out,
                "Tag=uncorrected,{second}.000,{length:.3},{:.3},{}",
                max_ms(&m.uncorrected),
                encode(&m.uncorrected)
            )
        })
        .and_then(|_| self.out.flush())
        .map_err(|e| format!("--hdr-log {}: {e}", self.path.display()))
    }
}

fn summarize_run(
    cfg: &RunConfig,
    outcomes: Vec<ThreadOutcome>,
    mut timeline: Vec<TimelinePoint>,
) -> RunResult {
    timeline.sort_by_key(|p| p.second);
    let mut corrected = new_histogram();
    let mut uncorrected = new_histogram();
    let mut failed = new_histogram();
    let mut errors = ErrorCounts::default();
    let (mut requests, mut bytes_read, mut bytes_written) = (0u64, 0u64, 0u64);
    let (mut late, mut never_sent, mut lag_sum, mut lagged, mut lag_max) = (0, 0, 0u64, 0u64, 0u64);
    let mut cpu = Duration::ZERO;
    let mut wall = Duration::ZERO;
    let mut busiest = 0.0f64;
    for o in &outcomes {
        let _ = corrected.add(&o.corrected);
        let _ = uncorrected.add(&o.uncorrected);
        let _ = failed.add(&o.failed);
        errors.add(&o.errors);
        requests += o.requests;
        bytes_read += o.bytes_read;
        bytes_written += o.bytes_written;
        late += o.late;
        never_sent += o.never_sent;
        lag_sum += o.lag_sum_us;
        lagged += o.lagged;
        lag_max = lag_max.max(o.lag_max_us);
        cpu += o.cpu;
        wall = wall.max(o.wall);
        if !o.wall.is_zero() {
            busiest = busiest.max(o.cpu.as_secs_f64() / o.wall.as_secs_f64());
        }
    }
    let secs = wall.as_secs_f64().max(1e-9);
    let lat_c = summarize(&corrected);
    let lat_u = summarize(&uncorrected);
    let mut warnings = Vec::new();
    if busiest >= 0.9 {
        warnings.push(Warning {
            kind: "client_bound".into(),
            message: format!(
                "a client thread was busy {:.0}% of the time: the figures may measure the client; add --threads or run the client on its own cores",
                busiest * 100.0
            ),
        });
    }
    let total_errors = errors.total();
    // Requests sent that got no answer within --timeout (never-sent ones excluded).
    let unanswered = errors.timeout.saturating_sub(never_sent) + errors.connect_timeout;
    if requests == 0 {
        warnings.push(Warning {
            kind: "no_success".into(),
            message: format!(
                "no request succeeded ({total_errors} failed): the figures describe failures only"
            ),
        });
    }
    if total_errors > 0 {
        let why = if unanswered > 0 {
            format!(
                ": the server did not answer {unanswered} of them within --timeout {:.1?}",
                cfg.timeout
            )
        } else {
            String::new()
        };
        warnings.push(Warning {
            kind: "errors".into(),
            message: format!("{total_errors} requests failed{why}: see the error counts"),
        });
    }
    if errors.client > 0 {
        warnings.push(Warning {
            kind: "client_exhausted".into(),
            message: format!(
                "{} connects failed in the client itself (out of descriptors, ports or memory): the figures measure the client; raise ulimit -n or use fewer connections (-c)",
                errors.client
            ),
        });
    }
    let open_model = cfg.rate.map(|rate| {
        let sent = lagged.max(1);
        if late * 100 > sent || never_sent > 0 {
            let hint = if unanswered > 0 {
                "the server did not answer in time and each connection waits for its answer, so the schedule stalled behind the server, not the client"
            } else if busiest < 0.5 {
                "each connection has one request in flight, so the rate is capped at connections / round-trip: add connections (-c)"
            } else {
                "the client is busy: add threads (-t) or lower the rate"
            };
            warnings.push(Warning {
                kind: "schedule_lag".into(),
                message: format!(
                    "the schedule fell behind: {late} of {lagged} sends over 1 ms late (max {:.1} ms), {never_sent} due but never sent (counted as timeout); corrected latencies include the lag; {hint}",
                    lag_max as f64 / 1000.0
                ),
            });
        }
        OpenModel {
            rate_per_s: rate,
            arrivals: cfg.arrivals.name().into(),
            late,
            never_sent,
            mean_lag_us: lag_sum as f64 / sent as f64,
            max_lag_us: lag_max,
        }
    });
    if cfg.rate.is_none() && total_errors == 0 && cfg.duration.is_some() && requests > 100 {
        // Little's law: requests in flight = throughput × mean time in the system.
        let throughput = requests as f64 / secs;
        let in_flight = throughput * lat_u.mean_us / 1e6;
        let expected = (cfg.connections * cfg.pipeline) as f64;
        let ratio = in_flight / expected;
        if !(0.8..=1.2).contains(&ratio) {
            warnings.push(Warning {
                kind: "littles_law".into(),
                message: format!(
                    "throughput × mean latency gives {in_flight:.1} requests in flight, but {expected:.0} were kept in flight ({:.0}%): time was lost outside the measured requests (connects, client stalls)",
                    ratio * 100.0
                ),
            });
        }
    }
    RunResult {
        target: cfg.target.url.clone(),
        workload: workload_name(cfg),
        config: reports::RunSettings {
            settings: cfg.to_json(),
            ..Default::default()
        },
        duration_s: wall.as_secs_f64(),
        requests,
        errors,
        requests_per_s: requests as f64 / secs,
        bytes_per_s: bytes_read as f64 / secs,
        bytes_read,
        bytes_written,
        latency_corrected: lat_c,
        latency_uncorrected: lat_u,
        latency_errors: summarize(&failed),
        histogram_corrected: encode(&corrected),
        histogram_uncorrected: encode(&uncorrected),
        histogram_errors: encode(&failed),
        timeline,
        open_model,
        client_cpu_s: Some(cpu.as_secs_f64()),
        server_cpu_s: None,
        warnings,
        started_unix_ms: None,
    }
}

/// The workload's label; a shard's is the whole run's (its total connections and
/// rate), so that `loadgen merge` pairs the shards of one run.
fn workload_name(cfg: &RunConfig) -> String {
    let (connections, rate) = match &cfg.shard {
        Some(p) => (p.total_connections, p.total_rate),
        None => (cfg.connections, cfg.rate),
    };
    let model = match rate {
        Some(r) => format!("open {r}/s"),
        None => format!("closed p{}", cfg.pipeline),
    };
    format!(
        "{} {}, {} conns{model_sep}{model}",
        cfg.method,
        cfg.target.path,
        connections,
        model_sep = ", "
    )
}
